//! Bitswap over `libp2p-stream` streams: reading length-prefixed frames from inbound streams
//! (bounded by [`super::message::MAX_MESSAGE_SIZE`]) and a writer task per peer that opens an
//! outbound stream, newest protocol version first, and writes the messages it is handed.
//! No state machines here, only bytes on streams; see [`super::service`] for the logic.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::mpsc;

use super::frame::{encode_framed, frame_header};
use super::message::{Message, MessageError, ProtocolVersion};

/// How long opening an outbound stream (dial included) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long writing one message may take before the stream is considered dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How much is read at a time while a frame's length prefix is not known yet.
const READ_CHUNK: usize = 64 << 10;

/// Why reading a stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad message: {0}")]
    Message(#[from] MessageError),
}

/// Reads framed messages off one inbound stream, never buffering more than one frame.
///
/// Bytes are read straight into the frame buffer (no staging chunk), and once a frame's
/// length is known the buffer is sized for exactly that frame, so a 256 KiB block is neither
/// regrown nor read past. The finished frame is split off as shared bytes, and the decoded
/// blocks are slices of it.
pub struct FrameReader<S = Stream> {
    stream: S,
    buf: BytesMut,
    /// How much of `buf` holds bytes read (the rest is room to read into).
    filled: usize,
}

impl<S: AsyncRead + Unpin> FrameReader<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            filled: 0,
        }
    }

    /// The next frame's body, undecoded ([`Message::decode_shared`] decodes it without copying
    /// its blocks), or `None` at a clean end of stream.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, ReadError> {
        loop {
            let want = match frame_header(&self.buf[..self.filled])? {
                Some((head, len)) if self.filled >= head + len => {
                    let mut frame = self.buf.split_to(head + len);
                    self.filled -= head + len;
                    return Ok(Some(frame.split_off(head).freeze()));
                }
                // frame_header refuses lengths over MAX_MESSAGE_SIZE, so this is bounded.
                Some((head, len)) => head + len,
                None => self.filled + READ_CHUNK,
            };
            if self.buf.len() < want {
                // Only the bytes read move if the buffer must be reallocated.
                self.buf.truncate(self.filled);
                self.buf.resize(want, 0);
            }
            let n = self.stream.read(&mut self.buf[self.filled..want]).await?;
            if n == 0 {
                return Ok(None);
            }
            self.filled += n;
        }
    }
}

/// A message for a peer and the version the peer last spoke to us (preferred for the stream).
pub type Outgoing = (ProtocolVersion, Message);

/// Versions to try for an outbound stream: `preferred` first, then older ones.
fn versions_from(preferred: ProtocolVersion) -> impl Iterator<Item = ProtocolVersion> {
    ProtocolVersion::ALL
        .into_iter()
        .skip_while(move |v| *v != preferred)
}

async fn open(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    preferred: ProtocolVersion,
) -> Option<(Stream, ProtocolVersion)> {
    for version in versions_from(preferred) {
        let protocol = StreamProtocol::new(version.protocol_id());
        match tokio::time::timeout(OPEN_TIMEOUT, control.open_stream(peer, protocol)).await {
            Ok(Ok(stream)) => return Some((stream, version)),
            Ok(Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(_))) => continue,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "opening a bitswap stream failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "opening a bitswap stream timed out");
                return None;
            }
        }
    }
    tracing::debug!(%peer, "peer speaks no bitswap version we know");
    None
}

/// Writes every message for `peer` on one outbound stream, reopening it once on failure.
/// Messages that cannot be delivered are dropped (the sessions time out and retry).
pub async fn writer(
    peer: PeerId,
    mut control: libp2p_stream::Control,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let mut current: Option<(Stream, ProtocolVersion)> = None;
    while let Some((preferred, msg)) = rx.recv().await {
        for _attempt in 0..2 {
            if current.is_none() {
                current = open(&mut control, peer, preferred).await;
            }
            let Some((stream, version)) = current.as_mut() else {
                break;
            };
            let frame = match encode_framed(&msg, *version) {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "bitswap message not sent");
                    break;
                }
            };
            let write = async {
                for piece in frame.pieces() {
                    stream.write_all(piece).await?;
                }
                stream.flush().await
            };
            match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "bitswap stream broke"),
                Err(_) => tracing::debug!(%peer, "bitswap write timed out"),
            }
            current = None;
        }
    }
    if let Some((mut stream, _)) = current {
        let _ = stream.close().await;
    }
}
