//! Small uploads: the file parts of a `multipart/form-data` request body gathered in memory,
//! each bounded, for commands whose input is a handful of small files (`block/put`).

use bytes::Bytes;
use futures::StreamExt;
use warp::http::header::CONTENT_TYPE;

use super::multipart::{self, Event, MultipartError, Parser};
use super::{ApiError, Call};

/// Malformed multipart input is a 400, oversized a 413.
pub(super) fn multipart_error(e: MultipartError) -> ApiError {
    if e.is_too_large() {
        ApiError::TooLarge(e.to_string())
    } else {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        multipart_error(e)
    }
}

/// Every part's data, in order; a part over `limit` bytes or more than `max_parts` parts is
/// refused (413) as soon as it is seen. A body with no part is a 400.
pub async fn small_parts(
    call: &mut Call,
    limit: usize,
    max_parts: usize,
) -> Result<Vec<Bytes>, ApiError> {
    let content_type = call
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multipart::boundary(content_type).map_err(multipart_error)?;
    let mut parser = Parser::new(&boundary);
    let mut parts: Vec<Vec<u8>> = Vec::new();
    while let Some(chunk) = call.body.next().await {
        let chunk = chunk?;
        parser.feed::<ApiError>(&chunk, &mut |event| {
            match event {
                Event::Start(_) => {
                    if parts.len() >= max_parts {
                        return Err(ApiError::TooLarge(format!(
                            "more than {max_parts} parts in one request"
                        )));
                    }
                    parts.push(Vec::new());
                }
                Event::Data(data) => {
                    if let Some(part) = parts.last_mut() {
                        if part.len() + data.len() > limit {
                            return Err(ApiError::TooLarge(format!(
                                "a part is over the {limit}-byte limit"
                            )));
                        }
                        part.extend_from_slice(data);
                    }
                }
                Event::End => {}
            }
            Ok(())
        })?;
    }
    parser.finish().map_err(multipart_error)?;
    if parts.is_empty() {
        return Err(ApiError::BadRequest(
            "the multipart body holds no file; send the data as a file part".into(),
        ));
    }
    Ok(parts.into_iter().map(Bytes::from).collect())
}
