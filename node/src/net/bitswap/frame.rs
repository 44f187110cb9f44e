//! Bitswap framing: each message on a stream is an unsigned-varint length prefix followed by
//! that many bytes of protobuf ([`super::message`]), at most [`MAX_MESSAGE_SIZE`] of them.
//! [`encode_framed`] builds a frame as pieces that leave block bytes where they are;
//! [`frame_header`] reads a prefix as soon as its bytes are there, refusing an oversize or
//! padded one at once; [`decode_framed`] takes the first whole frame off a buffer.

use bytes::Bytes;

use super::message::{EncodeSink, MAX_MESSAGE_SIZE, Message, MessageError, ProtocolVersion};
use crate::content::proto::{ProtoError, put_varint, read_varint};

/// Longest valid length prefix for a [`MAX_MESSAGE_SIZE`] message (4 MiB needs 23 bits).
const MAX_PREFIX_LEN: usize = 4;

/// Encode `msg` for `version` with its length prefix, refusing anything over
/// [`MAX_MESSAGE_SIZE`] (which the peer would refuse too). Block bytes are not copied: the
/// frame is the fields around them and the blocks' own buffers, written one after another.
pub fn encode_framed(msg: &Message, version: ProtocolVersion) -> Result<Frame, MessageError> {
    let mut pieces = Pieces::default();
    // Room for the longest prefix; the real one is written just before the body once its
    // length is known.
    pieces.cur.resize(MAX_PREFIX_LEN, 0);
    msg.encode_into(&mut pieces, version);
    let len = pieces.len() - MAX_PREFIX_LEN;
    if len > MAX_MESSAGE_SIZE {
        return Err(MessageError::TooLarge { len });
    }
    pieces.close();
    let mut prefix = Vec::with_capacity(MAX_PREFIX_LEN);
    put_varint(&mut prefix, len as u64);
    let start = MAX_PREFIX_LEN - prefix.len();
    let mut parts = pieces.done;
    if let Some(first) = parts.first_mut() {
        // The first piece was opened with the prefix room, so it is ours and not shared.
        let mut head = Vec::from(std::mem::take(first));
        head[start..MAX_PREFIX_LEN].copy_from_slice(&prefix);
        *first = Bytes::from(head).slice(start..);
    }
    Ok(Frame { pieces: parts })
}

/// Builds a frame's pieces: fields accumulate in `cur`, block bytes close it and go in whole.
#[derive(Default)]
struct Pieces {
    done: Vec<Bytes>,
    cur: Vec<u8>,
}

impl Pieces {
    fn close(&mut self) {
        if !self.cur.is_empty() {
            self.done.push(Bytes::from(std::mem::take(&mut self.cur)));
        }
    }

    /// Bytes so far.
    fn len(&self) -> usize {
        self.done.iter().map(Bytes::len).sum::<usize>() + self.cur.len()
    }
}

impl EncodeSink for Pieces {
    fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.cur
    }

    fn data(&mut self, data: &Bytes) {
        if data.is_empty() {
            return;
        }
        self.close();
        self.done.push(data.clone());
    }
}

/// One length-prefixed message, ready to write: its bytes are [`pieces`](Self::pieces) in
/// order (fields, then each block's own buffer), never copied into one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pieces: Vec<Bytes>,
}

impl Frame {
    /// The frame's bytes, in order.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The whole frame in one buffer (a copy).
    pub fn to_vec(&self) -> Vec<u8> {
        self.pieces.concat()
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
