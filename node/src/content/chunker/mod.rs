//! Chunkers split a byte stream into the leaves of a file DAG.
//!
//! [`ChunkerSpec`] is the user-facing choice (`size-N`, `buzhash`), parsed with Kubo's syntax;
//! [`ChunkerSpec::build`] turns it into a streaming [`Chunker`] over any `Read`. Chunkers never
//! hold more than one chunk (plus a read buffer) in memory.

mod buzhash;
mod fixed;

use std::io::Read;

use thiserror::Error;

pub use buzhash::Buzhash;
pub use fixed::FixedSize;

/// Largest chunk any chunker may produce: Kubo refuses chunk sizes over 1 MiB.
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;
/// Kubo's default chunk size (`size-262144`).
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// A chunker specification that could not be understood.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkerError {
    #[error("unknown chunker {0:?} (expected size-<bytes> or buzhash)")]
    Unknown(String),
    #[error("invalid chunk size {0:?}: must be between 1 and {MAX_CHUNK_SIZE} bytes")]
    BadSize(String),
}

/// Produces the chunks of one stream, in order.
pub trait Chunker {
    /// The next chunk, or `None` at the end of the stream. A non-empty stream never yields an
    /// empty chunk; an empty stream yields `None` straight away.
    fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>>;
}

/// Which chunker to use, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkerSpec {
    /// Fixed-size chunks of this many bytes.
    Size(usize),
    /// Content-defined chunks with Kubo's buzhash parameters.
    Buzhash,
}

impl Default for ChunkerSpec {
    fn default() -> Self {
        Self::Size(DEFAULT_CHUNK_SIZE)
    }
}

impl std::str::FromStr for ChunkerSpec {
    type Err = ChunkerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "buzhash" {
            return Ok(Self::Buzhash);
        }
        let Some(size) = s.strip_prefix("size-") else {
            return Err(ChunkerError::Unknown(s.to_owned()));
        };
        match size.parse::<usize>() {
            Ok(n) if (1..=MAX_CHUNK_SIZE).contains(&n) => Ok(Self::Size(n)),
            _ => Err(ChunkerError::BadSize(size.to_owned())),
        }
    }
}

impl std::fmt::Display for ChunkerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Size(n) => write!(f, "size-{n}"),
            Self::Buzhash => f.write_str("buzhash"),
        }
    }
}

impl ChunkerSpec {
    /// A streaming chunker reading from `reader`.
    pub fn build<'a, R: Read + 'a>(self, reader: R) -> Box<dyn Chunker + 'a> {
        match self {
            Self::Size(n) => Box::new(FixedSize::new(reader, n)),
            Self::Buzhash => Box::new(Buzhash::new(reader)),
        }
    }
}

/// Read until `buf` is full or the stream ends; returns how many bytes were read.
pub(crate) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubo_chunker_syntax() {
        assert_eq!("size-262144".parse(), Ok(ChunkerSpec::Size(262_144)));
        assert_eq!("buzhash".parse(), Ok(ChunkerSpec::Buzhash));
        assert!(matches!(
            "rabin".parse::<ChunkerSpec>(),
            Err(ChunkerError::Unknown(_))
        ));
        assert!(matches!(
            "size-0".parse::<ChunkerSpec>(),
            Err(ChunkerError::BadSize(_))
        ));
        assert!(matches!(
            "size-2000000".parse::<ChunkerSpec>(),
            Err(ChunkerError::BadSize(_))
        ));
        assert!(matches!(
            "size-x".parse::<ChunkerSpec>(),
            Err(ChunkerError::BadSize(_))
        ));
    }
}
