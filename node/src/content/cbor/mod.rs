//! DAG-CBOR (multicodec 0x71): a small decoder for untrusted blocks and an encoder for the
//! values Distribute writes itself (the CAR header).
//!
//! [`decode`] turns bytes into a [`Value`] tree; [`links`] walks the bytes without building a
//! tree and returns every tag-42 CID, which is what GC, pinning and DAG export need. Both are
//! iterative or depth-limited ([`MAX_DEPTH`]) and never reserve more memory than the input could
//! fill, so hostile bytes produce a [`CborError`], never a panic, a stack overflow or a huge
//! allocation. Decoding is lenient where the spec only asks encoders to be strict (minimal
//! integer sizes, map key order, float width) and strict where DAG-CBOR's data model is at
//! stake (indefinite lengths, tags other than 42, non-string map keys, duplicate keys).
//! [`encode`] writes the canonical form: minimal heads, 64-bit floats and map keys sorted
//! length-first, then bytewise.
//!
//! Here: the [`Value`] model and [`CborError`]. The decoder and link walker are in `decoder`,
//! the canonical encoder in `encoder`.

mod decoder;
mod encoder;

#[cfg(test)]
mod tests;

use cid::Cid;
use thiserror::Error;

pub use decoder::{decode, links};
pub use encoder::encode;

/// Deepest nesting of arrays and maps [`decode`] accepts.
pub const MAX_DEPTH: usize = 128;
/// The CBOR tag DAG-CBOR uses for CID links.
pub const TAG_CID: u64 = 42;

pub(super) const MAJOR_UNSIGNED: u8 = 0;
pub(super) const MAJOR_NEGATIVE: u8 = 1;
pub(super) const MAJOR_BYTES: u8 = 2;
pub(super) const MAJOR_TEXT: u8 = 3;
pub(super) const MAJOR_ARRAY: u8 = 4;
pub(super) const MAJOR_MAP: u8 = 5;
pub(super) const MAJOR_TAG: u8 = 6;
pub(super) const MAJOR_SIMPLE: u8 = 7;

/// DAG-CBOR bytes that could not be decoded, or a value that cannot be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CborError {
    #[error("truncated DAG-CBOR: item at byte {0} runs past the end")]
    Truncated(usize),
    #[error("DAG-CBOR nested deeper than {MAX_DEPTH} levels at byte {0}")]
    TooDeep(usize),
    #[error("invalid DAG-CBOR at byte {offset}: {reason}")]
    Invalid { offset: usize, reason: &'static str },
    #[error("unsupported CBOR tag {tag} at byte {offset} (DAG-CBOR only allows tag 42, CID links)")]
    UnsupportedTag { offset: usize, tag: u64 },
    #[error("invalid CID link at byte {offset}: {reason}")]
    BadCid { offset: usize, reason: String },
    #[error("{0} trailing bytes after the DAG-CBOR value")]
    TrailingBytes(usize),
    #[error("integer {0} does not fit CBOR's 64-bit range")]
    IntegerOutOfRange(i128),
}

/// A decoded DAG-CBOR value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Any CBOR integer: from -2^64 to 2^64-1.
    Integer(i128),
    Float(f64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    /// Map entries in the order they were decoded (or will be sorted when encoded).
    Map(Vec<(String, Value)>),
    Link(Cid),
}

impl Value {
    /// The value under `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}
