//! Uploads as `multipart/form-data` bodies: [`small_parts`] gathers the parts of a small body
//! in memory, each bounded (`block/put`); [`feed`] parses a body of any size on the async side
//! into [`Feed`]s a blocking consumer reads part by part with [`PartReader`] (`add`,
//! `dag/import`).

use std::io::Read;
use std::sync::Mutex;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use warp::http::header::CONTENT_TYPE;

use super::multipart::{self, Event, MultipartError, Parser, PartHead};
use super::registry::BodyStream;
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

/// The boundary of the request's `multipart/form-data` body.
pub(super) fn boundary(call: &Call) -> Result<String, ApiError> {
    let content_type = call
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    multipart::boundary(content_type).map_err(multipart_error)
}

/// Every part's data, in order; a part over `limit` bytes or more than `max_parts` parts is
/// refused (413) as soon as it is seen. A body with no part is a 400.
pub async fn small_parts(
    call: &mut Call,
    limit: usize,
    max_parts: usize,
) -> Result<Vec<Bytes>, ApiError> {
    let boundary = boundary(call)?;
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

/// What the body parser hands the importer.
pub(super) enum Feed {
    Start(PartHead),
    Data(Bytes),
    End,
    Fail(ApiError),
}

/// Parse the body into [`Feed`]s until it ends, the importer stops listening, or it fails.
pub(super) async fn feed(mut body: BodyStream, mut parser: Parser, tx: mpsc::Sender<Feed>) {
    let mut pending = Vec::new();
    while let Some(chunk) = body.next().await {
        let parsed = chunk.and_then(|chunk| {
            parser
                .feed::<MultipartError>(&chunk, &mut |event| {
                    pending.push(match event {
                        Event::Start(head) => Feed::Start(head),
                        Event::Data(data) => Feed::Data(Bytes::copy_from_slice(data)),
                        Event::End => Feed::End,
                    });
                    Ok(())
                })
                .map_err(multipart_error)
        });
        if let Err(e) = parsed {
            pending.push(Feed::Fail(e));
        }
        let failed = matches!(pending.last(), Some(Feed::Fail(_)));
        for item in pending.drain(..) {
            if tx.send(item).await.is_err() {
                return;
            }
        }
        if failed {
            return;
        }
    }
    if let Err(e) = parser.finish() {
        let _ = tx.send(Feed::Fail(multipart_error(e))).await;
    }
}

/// One part's data as a reader; a feed failure is kept in `failure` for the caller.
pub(super) struct PartReader<'a> {
    rx: &'a mut mpsc::Receiver<Feed>,
    current: Bytes,
    done: bool,
    failure: &'a Mutex<Option<ApiError>>,
}

impl<'a> PartReader<'a> {
    /// The part just started on `rx`.
    pub(super) fn new(
        rx: &'a mut mpsc::Receiver<Feed>,
        failure: &'a Mutex<Option<ApiError>>,
    ) -> Self {
        Self {
            rx,
            current: Bytes::new(),
            done: false,
            failure,
        }
    }
}

impl Read for PartReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() && !self.done {
            match self.rx.blocking_recv() {
                Some(Feed::Data(bytes)) => self.current = bytes,
                Some(Feed::End) => self.done = true,
                Some(Feed::Start(_)) | None => {
                    self.done = true;
                    set(
                        self.failure,
                        ApiError::BadRequest("the multipart body ended inside a part".into()),
                    );
                    return Err(std::io::Error::other("truncated part"));
                }
                Some(Feed::Fail(e)) => {
                    self.done = true;
                    let text = e.to_string();
                    set(self.failure, e);
                    return Err(std::io::Error::other(text));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Keep the first failure of the feed.
pub(super) fn set(slot: &Mutex<Option<ApiError>>, e: ApiError) {
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert(e);
}
