//! The tar format `get` speaks: [`TarWriter`] writes the archive the RPC API's `get` answers
//! (POSIX ustar headers; a PAX extended header carries a path or link target longer than
//! the 100 bytes a ustar field holds, as Go's `archive/tar` in Kubo does), and [`TarReader`]
//! reads such an archive back for the CLI, which unpacks a daemon's answer. The reader also
//! understands GNU long names (`L`/`K` entries) and ustar name prefixes, and skips global PAX
//! headers; it refuses hard links, devices and FIFOs, which a UnixFS DAG never holds.
//!
//! Both sides stream: a file's bytes go straight through, nothing is held but one header.
//! Timestamps are 0 and owners root, as a UnixFS DAG carries neither.
//!
//! Here: the error and entry types. The writer is in `writer`, the reader in `reader`, and the
//! header block itself (ustar fields, checksums, PAX records, sizes in octal or base-256),
//! encoded and decoded, in `header`.

mod header;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

use std::io;

pub use reader::TarReader;
pub use writer::TarWriter;

/// Bytes in a tar block; headers and padded bodies are multiples of it.
pub const BLOCK: usize = 512;

/// Why writing or reading an archive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarError {
    #[error("tar stream: {0}")]
    Io(#[from] io::Error),
    #[error("tar entry {path}: declared {declared} bytes but {written} were written")]
    SizeMismatch {
        path: String,
        declared: u64,
        written: u64,
    },
    #[error("tar header {index}: bad checksum (not a tar stream, or corrupt)")]
    Checksum { index: u64 },
    #[error("tar header {index}: malformed {field} field")]
    Field { index: u64, field: &'static str },
    #[error("tar stream ends inside an entry")]
    Truncated,
    #[error("tar entry {path}: type {kind:?} is not supported (files, directories, symlinks only)")]
    UnsupportedType { path: String, kind: char },
    #[error("tar extended header of {0} bytes is over the limit")]
    ExtendedTooLarge(u64),
}

/// What an entry of an archive is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink(String),
}

/// One entry's header; a file's bytes are read with [`TarReader::body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The full path, without a trailing slash.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
}
