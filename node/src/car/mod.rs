//! CAR (Content Addressable aRchive) files: the transport format for DAGs, as produced by
//! `ipfs dag export` and served by trustless gateways.
//!
//! A CAR v1 is a varint-prefixed DAG-CBOR header `{"roots": [CID...], "version": 1}` followed by
//! sections, each a varint length, a binary CID and the block's bytes. A CAR v2 wraps a v1
//! payload in an 11-byte pragma, a 40-byte header (data offset and size) and an optional index;
//! [`CarReader`] reads both and yields the v1 payload's blocks, [`CarWriter`] writes v1.
//!
//! Both stream: neither holds more than one block. The reader verifies every block against its
//! CID before returning it, and bounds every length it is given ([`MAX_SECTION_LEN`],
//! [`MAX_HEADER_LEN`]) before allocating, because CAR files come from untrusted peers.

mod reader;
mod writer;

#[cfg(test)]
mod tests;

use cid::Cid;
use thiserror::Error;

pub use reader::CarReader;
pub use writer::CarWriter;

/// Largest section accepted: a 2 MiB block (the largest Bitswap and Kubo accept) plus room for
/// its CID.
pub const MAX_SECTION_LEN: u64 = 2 * 1024 * 1024 + 128;
/// Largest header accepted. Real headers are a few hundred bytes.
pub const MAX_HEADER_LEN: u64 = 1024 * 1024;

/// A CAR file that could not be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CarError {
    #[error("CAR I/O error while {context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
    #[error(
        "CAR file truncated in {what} at byte {offset}: the file is incomplete, fetch or export it again"
    )]
    Truncated { what: &'static str, offset: u64 },
    #[error("malformed varint at byte {offset} of the CAR file")]
    BadVarint { offset: u64 },
    #[error("CAR header claims {len} bytes, more than the {MAX_HEADER_LEN} allowed")]
    HeaderTooLarge { len: u64 },
    #[error("invalid CAR header: {reason}")]
    BadHeader { reason: String },
    #[error("unsupported CAR version {0} (only 1 and 2 are understood)")]
    UnsupportedVersion(i128),
    #[error(
        "CAR section at byte {offset} claims {len} bytes, more than the {MAX_SECTION_LEN} allowed"
    )]
    SectionTooLarge { offset: u64, len: u64 },
    #[error("CAR section at byte {offset} is empty")]
    EmptySection { offset: u64 },
    #[error("CAR section at byte {offset} runs past the end of the CARv2 data payload")]
    PastPayload { offset: u64 },
    #[error("CAR section at byte {offset} does not start with a valid CID: {reason}")]
    BadCid { offset: u64, reason: String },
    #[error(
        "block {cid} (CAR section at byte {offset}) does not match its CID: the file is corrupt"
    )]
    HashMismatch { cid: Cid, offset: u64 },
    #[error(
        "block {cid} uses hash function 0x{code:x}; only sha2-256, sha2-512 and identity can be verified"
    )]
    UnsupportedHash { cid: Cid, code: u64 },
    #[error("block {cid} is {len} bytes, too large for a CAR section (at most {MAX_SECTION_LEN})")]
    BlockTooLarge { cid: Cid, len: u64 },
}

/// Multiformats unsigned varints are at most 9 bytes (63 bits).
const MAX_VARINT_BYTES: usize = 9;

/// Append `value` as an unsigned varint.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
