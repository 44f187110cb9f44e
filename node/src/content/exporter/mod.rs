//! The exporter: UnixFS DAGs back into bytes, listings and paths.
//!
//! Everything reads blocks through a [`BlockSource`], whose contract is to return only bytes
//! that match the CID asked for (the store re-hashes on read; a network source must too). Byte
//! ranges use each file node's `blocksizes` to skip subtrees outside the range, so reading a
//! range fetches only the blocks that cover it.
//!
//! What is read is also what is fetched: a source that fetches from the network asks for one
//! missing block per read, and the exporter hints ([`BlockSource::prefetch`]) where it knows
//! more will follow. A file read hints runs of children that lie wholly inside the range, at
//! most [`PREFETCH_WINDOW`] bytes each ([`prefetch_runs`]), and announces a node's next run
//! while it reads one ([`BlockSource::prefetch_next`]): a whole file comes a window of blocks
//! at a time, the next window on its way while one is written. A small range, a path lookup
//! or a listing pulls only the blocks on its way (a listing's sizes come from its links'
//! `Tsize`, never from the entries).
//!
//! Here: the [`BlockSource`] contract, the node types and errors, and [`stat`]. Directory
//! lookups and listings are in `directory`, file byte ranges ([`read_range`]) in `file`, the
//! prefetch planning ([`prefetch_runs`]) in `prefetch`.

mod directory;
mod file;
mod prefetch;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use cid::Cid;
use thiserror::Error;

use super::cid::{CODEC_DAG_PB, CODEC_RAW};
use super::dagpb::PbNode;
use super::unixfs::{DataType, UnixfsData};

pub use directory::{list, lookup, resolve};
pub use file::{ByteOut, read_range, read_range_to};
pub use prefetch::{PREFETCH_WINDOW, prefetch_runs};

/// Error a [`BlockSource`] reports.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where the exporter reads blocks from. Returned bytes must already be verified against `cid`.
pub trait BlockSource {
    /// The block's bytes; `Ok(None)` when the source does not have it.
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, SourceError>;

    /// A hint that the whole DAGs under `cids` are about to be read: a source that fetches
    /// missing blocks may fetch theirs together instead of one read at a time. Local sources
    /// do nothing. An error is what reading them would have failed with.
    fn prefetch(&self, _cids: &[Cid]) -> Result<(), SourceError> {
        Ok(())
    }

    /// A hint that the DAGs under `cids` will be read once what is being read now is done: a
    /// source may start fetching them in the background, and a later
    /// [`prefetch`](Self::prefetch) of the same CIDs then waits for that fetch. Errors show
    /// up there, or when the blocks are read.
    fn prefetch_next(&self, _cids: &[Cid]) {}

    /// A hint that the blocks `cids`, but nothing below them, are about to be read.
    fn prefetch_blocks(&self, _cids: &[Cid]) -> Result<(), SourceError> {
        Ok(())
    }

    /// The network fetches this source made since the last call (for commands that tell the
    /// user where content came from). Local sources fetch nothing.
    fn take_fetch_reports(&self) -> Vec<FetchReport> {
        Vec::new()
    }
}

/// One peer's share of the network fetches a [`BlockSource`] made, as it reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The peer that delivered the most bytes.
    pub peer: String,
    pub bytes: u64,
    pub blocks: u64,
    pub elapsed: std::time::Duration,
}

impl BlockSource for std::collections::HashMap<Cid, Vec<u8>> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, SourceError> {
        Ok(self.get(cid).map(|data| Bytes::copy_from_slice(data)))
    }
}

/// Deepest file or shard tree the exporter follows; a deeper DAG is treated as hostile.
const MAX_DEPTH: usize = 256;

/// Why an export failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("block {0} is not available")]
    Missing(Cid),
    #[error("reading block {cid}: {source}")]
    Source { cid: Cid, source: SourceError },
    #[error("block {cid} is not valid UnixFS: {reason}")]
    Malformed { cid: Cid, reason: String },
    #[error("{cid} uses codec 0x{codec:x}, which is not UnixFS (dag-pb or raw)")]
    UnsupportedCodec { cid: Cid, codec: u64 },
    #[error("no link named {name:?} under {cid}")]
    NotFound { cid: Cid, name: String },
    #[error("{0} is a directory, not a file")]
    IsDirectory(Cid),
    #[error("{0} is not a directory")]
    NotDirectory(Cid),
    #[error("DAG under {0} is deeper than {MAX_DEPTH} levels")]
    TooDeep(Cid),
    #[error("writing output: {0}")]
    Write(#[from] std::io::Error),
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Directory,
    /// A HAMT-sharded directory.
    ShardedDirectory,
    Symlink(String),
}

/// A node's kind and content size (file bytes; 0 for directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub cid: Cid,
    pub kind: NodeKind,
    pub size: u64,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub name: String,
    pub cid: Cid,
    /// The link's `Tsize`: cumulative size of the entry's DAG.
    pub tsize: u64,
}

/// A decoded block: raw bytes, or a dag-pb node with its UnixFS data.
enum Decoded {
    Raw(Bytes),
    Unixfs(PbNode, UnixfsData),
}

fn fetch(src: &dyn BlockSource, cid: &Cid) -> Result<Bytes, ExportError> {
    src.get_block(cid)
        .map_err(|source| ExportError::Source { cid: *cid, source })?
        .ok_or(ExportError::Missing(*cid))
}

fn decode(src: &dyn BlockSource, cid: &Cid) -> Result<Decoded, ExportError> {
    let bytes = fetch(src, cid)?;
    match cid.codec() {
        CODEC_RAW => Ok(Decoded::Raw(bytes)),
        CODEC_DAG_PB => {
            let malformed = |reason: String| ExportError::Malformed { cid: *cid, reason };
            let (links, data) =
                PbNode::decode_parts(&bytes).map_err(|e| malformed(e.to_string()))?;
            let data = data.ok_or_else(|| malformed("dag-pb node without UnixFS data".into()))?;
            let unixfs =
                UnixfsData::decode_in(&bytes, data).map_err(|e| malformed(e.to_string()))?;
            // The UnixFS data is all the exporter reads of the node's data field, and the
            // file bytes in it are a slice of the block: neither is copied.
            Ok(Decoded::Unixfs(PbNode { links, data: None }, unixfs))
        }
        codec => Err(ExportError::UnsupportedCodec { cid: *cid, codec }),
    }
}

/// Kind and size of the node at `cid`.
pub fn stat(src: &dyn BlockSource, cid: &Cid) -> Result<NodeInfo, ExportError> {
    let (kind, size) = match decode(src, cid)? {
        Decoded::Raw(bytes) => (NodeKind::File, bytes.len() as u64),
        Decoded::Unixfs(_, data) => match data.kind {
            DataType::File | DataType::Raw => (NodeKind::File, data.file_size()),
            DataType::Directory => (NodeKind::Directory, 0),
            DataType::HamtShard => (NodeKind::ShardedDirectory, 0),
            DataType::Symlink => {
                let target =
                    String::from_utf8_lossy(data.data.as_deref().unwrap_or_default()).into_owned();
                (NodeKind::Symlink(target), 0)
            }
            DataType::Metadata => {
                return Err(ExportError::Malformed {
                    cid: *cid,
                    reason: "metadata nodes are not supported".into(),
                });
            }
        },
    };
    Ok(NodeInfo {
        cid: *cid,
        kind,
        size,
    })
}
