//! The cluster protocol on the wire. Members talk over libp2p streams on a protocol whose
//! name is derived from the cluster secret ([`protocol_name`]), so nodes of different clusters
//! do not even negotiate it. Each stream carries one [`Message`] and, for a [`Message::Pull`],
//! one reply. A frame is `u32` big-endian length, JSON body, then a 32-byte HMAC-SHA256 tag
//! keyed by the secret over the sender's peer ID and the body: a peer without the secret
//! cannot inject pins or heartbeats, and a member cannot speak for another member (the
//! sender's peer ID is the one the connection authenticated).
//!
//! Decoding never panics: short, oversized, badly tagged or malformed frames are errors.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::membership::Heartbeat;
use super::pinset::Pinset;

/// Largest frame accepted: a full pinset of about 100,000 pins.
pub const MAX_FRAME: usize = 64 << 20;
const TAG_LEN: usize = 32;

/// One message between members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Heartbeat(Heartbeat),
    /// Entries that changed (a delta), pushed when a pin is added or removed.
    Update(Pinset),
    /// Ask for the whole pinset (anti-entropy after a digest mismatch).
    Pull,
    /// The answer to a pull.
    State(Pinset),
    /// Ask for the CIDs the peer holds pinned (its heartbeat's held digest did not match).
    PullHeld,
    /// The answer to a [`Message::PullHeld`].
    Held(Vec<String>),
}

/// A frame that could not be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is over the {MAX_FRAME} byte limit")]
    TooLarge(usize),
    #[error("frame authentication failed: the peer does not hold this cluster's secret")]
    BadTag,
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// The shared secret of a cluster, as read from `--cluster-secret-file`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret from a file's contents, surrounding whitespace ignored; `None` when empty.
    pub fn from_file_text(text: &[u8]) -> Option<Self> {
        let trimmed = text.trim_ascii();
        (!trimmed.is_empty()).then(|| Self(trimmed.to_vec()))
    }

    fn tag(&self, sender: &str, body: &[u8]) -> Result<[u8; TAG_LEN], WireError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .map_err(|e| WireError::Malformed(e.to_string()))?;
        mac.update(sender.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        Ok(mac.finalize().into_bytes().into())
    }

    fn verify(&self, sender: &str, body: &[u8], tag: &[u8]) -> Result<(), WireError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .map_err(|e| WireError::Malformed(e.to_string()))?;
        mac.update(sender.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| WireError::BadTag)
    }
}

/// The stream protocol of the cluster keyed by `secret`.
pub fn protocol_name(secret: &Secret) -> String {
    let mut hash = Sha256::new();
    hash.update(b"distribute cluster protocol\0");
    hash.update(&secret.0);
    let digest = hash.finalize();
    let id: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("/distribute/cluster/{id}/1.0.0")
}

/// Encode `msg` as sent by `sender`.
pub fn encode(secret: &Secret, sender: &str, msg: &Message) -> Result<Vec<u8>, WireError> {
    let body = serde_json::to_vec(msg).map_err(|e| WireError::Malformed(e.to_string()))?;
    let len = body.len() + TAG_LEN;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let tag = secret.tag(sender, &body)?;
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(
        &u32::try_from(len)
            .map_err(|_| WireError::TooLarge(len))?
            .to_be_bytes(),
    );
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decode a frame's payload (after the length) sent by `sender`.
pub fn decode(secret: &Secret, sender: &str, payload: &[u8]) -> Result<Message, WireError> {
    let split = payload
        .len()
        .checked_sub(TAG_LEN)
        .ok_or_else(|| WireError::Malformed("frame shorter than its tag".into()))?;
    let (body, tag) = payload.split_at(split);
    secret.verify(sender, body, tag)?;
    serde_json::from_slice(body).map_err(|e| WireError::Malformed(e.to_string()))
}

pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    secret: &Secret,
    sender: &str,
    msg: &Message,
) -> Result<(), WireError> {
    let frame = encode(secret, sender, msg)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    secret: &Secret,
    sender: &str,
) -> Result<Message, WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    decode(secret, sender, &payload)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret(s: &str) -> Secret {
        Secret::from_file_text(s.as_bytes()).unwrap()
    }

    #[test]
    fn round_trip_and_authentication() {
        let s = secret("hunter2\n");
        let frame = encode(&s, "peerA", &Message::Pull).unwrap();
        assert_eq!(decode(&s, "peerA", &frame[4..]).unwrap(), Message::Pull);
        assert!(matches!(
            decode(&secret("other"), "peerA", &frame[4..]),
            Err(WireError::BadTag)
        ));
        assert!(
            matches!(decode(&s, "peerB", &frame[4..]), Err(WireError::BadTag)),
            "a member cannot speak for another"
        );
        let mut tampered = frame.clone();
        tampered[6] ^= 1;
        assert!(decode(&s, "peerA", &tampered[4..]).is_err());
    }

    #[test]
    fn protocol_depends_on_the_secret_only() {
        assert_eq!(protocol_name(&secret("a")), protocol_name(&secret(" a\n")));
        assert_ne!(protocol_name(&secret("a")), protocol_name(&secret("b")));
        assert!(Secret::from_file_text(b" \n").is_none());
    }

    #[test]
    fn stream_round_trip() {
        let s = secret("k");
        let mut buf = Vec::new();
        futures::executor::block_on(write_message(&mut buf, &s, "p", &Message::Pull)).unwrap();
        let mut r = futures::io::Cursor::new(buf);
        let got = futures::executor::block_on(read_message(&mut r, &s, "p")).unwrap();
        assert_eq!(got, Message::Pull);
        let mut huge = futures::io::Cursor::new(u32::MAX.to_be_bytes().to_vec());
        assert!(matches!(
            futures::executor::block_on(read_message(&mut huge, &s, "p")),
            Err(WireError::TooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&secret("k"), "p", &bytes);
        }
    }
}
