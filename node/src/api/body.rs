//! Response bodies: one JSON value, NDJSON and raw bytes streamed from a producer running on
//! a blocking thread (the store and the importer are synchronous).
//!
//! [`ndjson_blocking`] and [`bytes_blocking`] start the producer and wait for its first
//! output: a producer that fails before sending anything gets a proper error status; once
//! bytes have gone out the status is fixed, so a later NDJSON error is sent as a last line in
//! Kubo's error shape and a later byte-stream error cuts the transfer short (the client sees
//! an incomplete chunked body). NDJSON answers carry Kubo's `X-Chunked-Output: 1` and
//! announce the `X-Stream-Error` trailer.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reply::{Reply, Response};

use super::error::{ApiError, ErrorBody};

/// Chunks in flight between a producer and the connection.
const CHANNEL_DEPTH: usize = 16;
/// Bytes a [`ByteSink`] gathers before sending a chunk.
const CHUNK: usize = 256 << 10;

/// Shorter block slices are copied into a [`ByteSink`]'s chunk rather than sent alone.
const SHARE_AT_LEAST: usize = 16 << 10;

type Chunk = Result<Bytes, std::io::Error>;

/// One JSON value as the whole answer.
pub fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            json_bytes(bytes)
        }
        Err(e) => {
            let mut r = Response::new(format!("serializing the answer: {e}").into());
            *r.status_mut() = warp::http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// Bytes that already are one JSON answer (built by the handler piece by piece).
pub fn json_bytes(bytes: Vec<u8>) -> Response {
    with_type(Response::new(bytes.into()), "application/json")
}

/// [`json`] as a handler's result.
pub fn ok_json<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    Ok(json(value))
}

/// Several JSON values, one per line, as the whole answer.
pub fn json_lines<T: Serialize>(values: &[T]) -> Result<Response, ApiError> {
    let mut body = Vec::new();
    for value in values {
        body.extend_from_slice(&ndjson_line(value)?);
    }
    Ok(with_type(Response::new(body.into()), "application/json"))
}

fn with_type(mut response: Response, content_type: &'static str) -> Response {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Chunks received from a channel, after an optional first one already taken, as a body
/// stream (`Send + Sync`, which warp requires).
struct ChannelStream {
    first: Option<Chunk>,
    rx: mpsc::Receiver<Chunk>,
}

impl futures::Stream for ChannelStream {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        self.rx.poll_recv(cx)
    }
}

/// The producer's end of a streamed body.
struct Sender {
    tx: mpsc::Sender<Chunk>,
    sent: bool,
}

impl Sender {
    /// Send unless the channel is full (the client is not reading); `false` if dropped.
    fn try_send(&mut self, bytes: Bytes) -> bool {
        let sent = self.tx.try_send(Ok(bytes)).is_ok();
        self.sent |= sent;
        sent
    }

    fn send(&mut self, bytes: Bytes) -> Result<(), ApiError> {
        self.sent = true;
        self.tx
            .blocking_send(Ok(bytes))
            .map_err(|_| ApiError::Internal("the client went away".into()))
    }
}

/// Where an NDJSON producer sends its values.
pub struct NdjsonSink(Sender);

impl NdjsonSink {
    /// Send one value as a line; fails once the client has gone away.
    pub fn send<T: Serialize>(&mut self, value: &T) -> Result<(), ApiError> {
        self.0.send(ndjson_line(value)?)
    }

    /// Send one advisory value (progress) unless the client is behind: it is then dropped.
    pub fn send_lossy<T: Serialize>(&mut self, value: &T) {
        if let Ok(line) = ndjson_line(value) {
            self.0.try_send(line);
        }
    }
}

fn ndjson_line<T: Serialize>(value: &T) -> Result<Bytes, ApiError> {
    let mut bytes = serde_json::to_vec(value).map_err(ApiError::internal)?;
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}

/// Where a byte-stream producer writes; buffered into chunks of [`CHUNK`] bytes.
pub struct ByteSink {
    sender: Sender,
    buf: Vec<u8>,
}

impl Write for ByteSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.sender
                .send(chunk)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        }
        Ok(())
    }
}

/// Block slices go out as they are, without a copy into the sink's buffer; small ones are
/// gathered like written bytes, so a body is not a stream of tiny chunks.
impl crate::content::exporter::ByteOut for ByteSink {
    fn put(&mut self, bytes: Bytes) -> std::io::Result<()> {
        if bytes.len() < SHARE_AT_LEAST {
            return self.write_all(&bytes);
        }
        self.flush()?;
        self.sender
            .send(bytes)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// Stream the values `produce` sends as NDJSON.
pub async fn ndjson_blocking<F>(produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(&mut NdjsonSink) -> Result<(), ApiError> + Send + 'static,
{
    ndjson_blocking_deep(CHANNEL_DEPTH, produce).await
}

/// [`ndjson_blocking`] with room for `depth` lines the client has not read yet. For commands
/// that read a request body while answering: HTTP/1.1 clients commonly send the whole body
/// before reading the answer, so its lines must not hold up the reading of the body.
pub async fn ndjson_blocking_deep<F>(depth: usize, produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(&mut NdjsonSink) -> Result<(), ApiError> + Send + 'static,
{
    let mut response = spawn_stream("application/json", depth, move |sender| {
        let mut sink = NdjsonSink(sender);
        match produce(&mut sink) {
            Err(e) if sink.0.sent => {
                let mut line = serde_json::to_vec(&ErrorBody::new(&e)).unwrap_or_default();
                line.push(b'\n');
                let _ = sink.0.send(Bytes::from(line));
                Ok(())
            }
            other => other,
        }
    })
    .await?;
    let headers = response.headers_mut();
    headers.insert("x-chunked-output", HeaderValue::from_static("1"));
    headers.insert("trailer", HeaderValue::from_static("X-Stream-Error"));
    Ok(response)
}

/// Stream the bytes `produce` writes, as `content_type`.
pub async fn bytes_blocking<F>(content_type: &'static str, produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(&mut ByteSink) -> Result<(), ApiError> + Send + 'static,
{
    spawn_stream(content_type, CHANNEL_DEPTH, move |sender| {
        let mut sink = ByteSink {
            sender,
            buf: Vec::new(),
        };
        let result = produce(&mut sink).and_then(|()| sink.flush().map_err(ApiError::internal));
        match result {
            Err(e) if sink.sender.sent => {
                let _ = sink
                    .sender
                    .tx
                    .blocking_send(Err(std::io::Error::other(e.to_string())));
                Ok(())
            }
            other => other,
        }
    })
    .await
}

/// Run `produce` on a blocking thread; answer once it has sent its first chunk (streaming
/// the rest) or finished (with its error if it failed before sending anything). A producer
/// that has not finished keeps running when the client goes away until its next send fails.
async fn spawn_stream<F>(
    content_type: &'static str,
    depth: usize,
    produce: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Sender) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(depth);
    let task = tokio::task::spawn_blocking(move || produce(Sender { tx, sent: false }));
    // `None` means the producer is done (it dropped its sender) without sending anything.
    let first = match rx.recv().await {
        Some(chunk) => Some(chunk),
        None => {
            task.await.map_err(ApiError::internal)??;
            None
        }
    };
    let stream = ChannelStream { first, rx };
    Ok(with_type(
        warp::reply::stream(stream).into_response(),
        content_type,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::exporter::ByteOut;

    /// A sink over a channel deep enough for the test, and the receiving end.
    fn sink() -> (ByteSink, mpsc::Receiver<Chunk>) {
        let (tx, rx) = mpsc::channel(64);
        let sink = ByteSink {
            sender: Sender { tx, sent: false },
            buf: Vec::new(),
        };
        (sink, rx)
    }

    fn chunks(mut rx: mpsc::Receiver<Chunk>) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            out.push(chunk.unwrap());
        }
        out
    }

    #[test]
    fn large_slices_go_out_as_they_are_and_small_ones_are_gathered() {
        let (mut sink, rx) = sink();
        let big = Bytes::from(vec![7u8; SHARE_AT_LEAST]);
        sink.put(Bytes::from_static(b"ab")).unwrap();
        sink.put(Bytes::from_static(b"cd")).unwrap();
        // A large slice first sends what was gathered, then itself, not copied.
        sink.put(big.clone()).unwrap();
        sink.put(Bytes::from(vec![1u8; SHARE_AT_LEAST - 1]))
            .unwrap();
        sink.flush().unwrap();
        let got = chunks(rx);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Bytes::from_static(b"abcd"));
        assert_eq!(got[1], big);
        assert_eq!(got[1].as_ptr(), big.as_ptr(), "the large slice was copied");
        assert_eq!(got[2].len(), SHARE_AT_LEAST - 1);
    }

    #[test]
    fn a_gone_client_is_a_broken_pipe() {
        let (mut sink, rx) = sink();
        drop(rx);
        let err = sink
            .put(Bytes::from(vec![0u8; SHARE_AT_LEAST]))
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
