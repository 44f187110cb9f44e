//! Bitswap framing: each message on a stream is an unsigned-varint length prefix followed by
//! that many bytes of protobuf ([`super::message`]), at most [`MAX_MESSAGE_SIZE`] of them.
//! [`encode_framed`] builds a frame in one buffer; [`frame_header`] reads a prefix as soon as
//! its bytes are there, refusing an oversize or padded one at once; [`decode_framed`] takes the
//! first whole frame off a buffer.

use super::message::{MAX_MESSAGE_SIZE, Message, MessageError, ProtocolVersion};
use crate::content::proto::{ProtoError, put_varint, read_varint};

/// Longest valid length prefix for a [`MAX_MESSAGE_SIZE`] message (4 MiB needs 23 bits).
const MAX_PREFIX_LEN: usize = 4;

/// Encode `msg` for `version` with its length prefix, refusing anything over
/// [`MAX_MESSAGE_SIZE`] (which the peer would refuse too).
pub fn encode_framed(msg: &Message, version: ProtocolVersion) -> Result<Frame, MessageError> {
    // The body is encoded after room for the longest prefix; the real prefix is then written
    // just before the body, so the frame is one buffer and the body is never copied again.
    let mut buf = Vec::with_capacity(MAX_PREFIX_LEN + msg.size_hint());
    buf.resize(MAX_PREFIX_LEN, 0);
    msg.encode_into(&mut buf, version);
    let len = buf.len() - MAX_PREFIX_LEN;
    if len > MAX_MESSAGE_SIZE {
        return Err(MessageError::TooLarge { len });
    }
    let mut prefix = Vec::with_capacity(MAX_PREFIX_LEN);
    put_varint(&mut prefix, len as u64);
    let start = MAX_PREFIX_LEN - prefix.len();
    buf[start..MAX_PREFIX_LEN].copy_from_slice(&prefix);
    Ok(Frame { buf, start })
}

/// One length-prefixed message, ready to write: derefs to the frame's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    buf: Vec<u8>,
    start: usize,
}

impl std::ops::Deref for Frame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Read a frame's length prefix: `(prefix length, body length)`, or `None` if `buf` does
/// not hold the whole prefix yet. An oversize or non-minimal length is an error at once, so a
/// reader never waits for (or buffers) a frame it would refuse.
pub fn frame_header(buf: &[u8]) -> Result<Option<(usize, usize)>, MessageError> {
    let window = &buf[..buf.len().min(MAX_PREFIX_LEN)];
    let (len, used) = match read_varint(window) {
        Ok(v) => v,
        Err(ProtoError::Truncated) if window.len() < MAX_PREFIX_LEN => return Ok(None),
        Err(_) => return Err(MessageError::BadLengthPrefix),
    };
    // unsigned-varint forbids padding: a trailing zero byte after the first.
    if used > 1 && window[used - 1] == 0 {
        return Err(MessageError::BadLengthPrefix);
    }
    let len = usize::try_from(len).map_err(|_| MessageError::BadLengthPrefix)?;
    if len > MAX_MESSAGE_SIZE {
        return Err(MessageError::TooLarge { len });
    }
    Ok(Some((used, len)))
}

/// Decode the first frame in `buf`: the message and how many bytes it took, or `None` if
/// more bytes are needed. Call again on the rest of the buffer for the next frame.
pub fn decode_framed(buf: &[u8]) -> Result<Option<(Message, usize)>, MessageError> {
    let Some((head, len)) = frame_header(buf)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(head..head + len) else {
        return Ok(None);
    };
    Ok(Some((Message::decode(body)?, head + len)))
}
