//! The exporter: UnixFS DAGs back into bytes, listings and paths.
//!
//! Everything reads blocks through a [`BlockSource`], whose contract is to return only bytes
//! that match the CID asked for (the store re-hashes on read; a network source must too). Byte
//! ranges use each file node's `blocksizes` to skip subtrees outside the range, so reading a
//! range fetches only the blocks that cover it.

use std::io::Write;

use cid::Cid;
use thiserror::Error;

use super::cid::{CODEC_DAG_PB, CODEC_RAW, IpfsPath};
use super::dagpb::PbNode;
use super::murmur3::hamt_hash;
use super::unixfs::{DataType, UnixfsData};

/// Error a [`BlockSource`] reports.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where the exporter reads blocks from. Returned bytes must already be verified against `cid`.
pub trait BlockSource {
    /// The block's bytes; `Ok(None)` when the source does not have it.
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, SourceError>;

    /// The network fetches this source made since the last call (for commands that tell the
    /// user where content came from). Local sources fetch nothing.
    fn take_fetch_reports(&self) -> Vec<FetchReport> {
        Vec::new()
    }
}

/// One completed network fetch of a DAG, as a [`BlockSource`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The peer that delivered the most bytes.
    pub peer: String,
    pub bytes: u64,
    pub blocks: u64,
    pub elapsed: std::time::Duration,
}

impl BlockSource for std::collections::HashMap<Cid, Vec<u8>> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.get(cid).cloned())
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
    Raw(Vec<u8>),
    Unixfs(PbNode, UnixfsData),
}

fn fetch(src: &dyn BlockSource, cid: &Cid) -> Result<Vec<u8>, ExportError> {
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
            let node = PbNode::decode(&bytes).map_err(|e| malformed(e.to_string()))?;
            let data = node
                .data
                .as_deref()
                .ok_or_else(|| malformed("dag-pb node without UnixFS data".into()))?;
            let unixfs = UnixfsData::decode(data).map_err(|e| malformed(e.to_string()))?;
            Ok(Decoded::Unixfs(node, unixfs))
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

/// Follow `path` from its root through directories (basic and sharded) to the CID it names.
pub fn resolve(src: &dyn BlockSource, path: &IpfsPath) -> Result<Cid, ExportError> {
    let mut current = path.root;
    for name in &path.segments {
        current = lookup(src, &current, name)?;
    }
    Ok(current)
}

/// The child named `name` of the directory at `dir`.
pub fn lookup(src: &dyn BlockSource, dir: &Cid, name: &str) -> Result<Cid, ExportError> {
    let not_found = || ExportError::NotFound {
        cid: *dir,
        name: name.to_owned(),
    };
    match decode(src, dir)? {
        Decoded::Unixfs(node, data) if data.kind == DataType::Directory => node
            .links
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.cid)
            .ok_or_else(not_found),
        Decoded::Unixfs(node, data) if data.kind == DataType::HamtShard => {
            let hash = hamt_hash(name.as_bytes());
            let (mut node, mut shard_cid) = (node, *dir);
            for &byte in hash.iter() {
                let prefix = format!("{byte:02X}");
                let link = node
                    .links
                    .iter()
                    .find(|l| l.name().starts_with(&prefix))
                    .ok_or_else(not_found)?;
                if link.name().len() > 2 {
                    return if &link.name()[2..] == name {
                        Ok(link.cid)
                    } else {
                        Err(not_found())
                    };
                }
                shard_cid = link.cid;
                node = match decode(src, &shard_cid)? {
                    Decoded::Unixfs(n, d) if d.kind == DataType::HamtShard => n,
                    _ => {
                        return Err(ExportError::Malformed {
                            cid: shard_cid,
                            reason: "HAMT link to a non-shard node".into(),
                        });
                    }
                };
            }
            Err(ExportError::TooDeep(shard_cid))
        }
        _ => Err(ExportError::NotDirectory(*dir)),
    }
}

/// Entries of the directory at `dir`, in stored order (name order; hash order for shards).
pub fn list(src: &dyn BlockSource, dir: &Cid) -> Result<Vec<ListEntry>, ExportError> {
    let mut out = Vec::new();
    match decode(src, dir)? {
        Decoded::Unixfs(node, data) if data.kind == DataType::Directory => {
            out.extend(node.links.iter().map(|l| ListEntry {
                name: l.name().to_owned(),
                cid: l.cid,
                tsize: l.tsize.unwrap_or(0),
            }));
        }
        Decoded::Unixfs(node, data) if data.kind == DataType::HamtShard => {
            list_shard(src, dir, &node, 0, &mut out)?
        }
        _ => return Err(ExportError::NotDirectory(*dir)),
    }
    Ok(out)
}

fn list_shard(
    src: &dyn BlockSource,
    cid: &Cid,
    node: &PbNode,
    depth: usize,
    out: &mut Vec<ListEntry>,
) -> Result<(), ExportError> {
    if depth > 8 {
        return Err(ExportError::TooDeep(*cid));
    }
    for link in &node.links {
        let name = link.name();
        if !name.is_char_boundary(2.min(name.len())) || name.len() < 2 {
            return Err(ExportError::Malformed {
                cid: *cid,
                reason: format!("bad HAMT link name {name:?}"),
            });
        }
        if name.len() == 2 {
            match decode(src, &link.cid)? {
                Decoded::Unixfs(child, d) if d.kind == DataType::HamtShard => {
                    list_shard(src, &link.cid, &child, depth + 1, out)?
                }
                _ => {
                    return Err(ExportError::Malformed {
                        cid: link.cid,
                        reason: "HAMT link to a non-shard node".into(),
                    });
                }
            }
        } else {
            out.push(ListEntry {
                name: name[2..].to_owned(),
                cid: link.cid,
                tsize: link.tsize.unwrap_or(0),
            });
        }
    }
    Ok(())
}

/// Write bytes `[offset, offset + length)` of the file at `cid` to `out` (to the end when
/// `length` is `None`). Returns the number of bytes written.
pub fn read_range(
    src: &dyn BlockSource,
    cid: &Cid,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let end = length.map_or(u64::MAX, |l| offset.saturating_add(l));
    let mut written = 0;
    if offset < end {
        read_node(src, cid, 0, offset, end, out, &mut written, 0)?;
    }
    Ok(written)
}

/// Write the part of node `cid` (whose content starts at file position `start`) inside
/// `[from, to)`.
#[allow(clippy::too_many_arguments)]
fn read_node(
    src: &dyn BlockSource,
    cid: &Cid,
    start: u64,
    from: u64,
    to: u64,
    out: &mut dyn Write,
    written: &mut u64,
    depth: usize,
) -> Result<(), ExportError> {
    if depth > MAX_DEPTH {
        return Err(ExportError::TooDeep(*cid));
    }
    let (node, data) = match decode(src, cid)? {
        Decoded::Raw(bytes) => return emit(&bytes, start, from, to, out, written),
        Decoded::Unixfs(node, data) => (node, data),
    };
    match data.kind {
        DataType::File | DataType::Raw => {}
        DataType::Directory | DataType::HamtShard => return Err(ExportError::IsDirectory(*cid)),
        _ => {
            return Err(ExportError::Malformed {
                cid: *cid,
                reason: "not a file node".into(),
            });
        }
    }
    let inline = data.data.as_deref().unwrap_or_default();
    emit(inline, start, from, to, out, written)?;
    if node.links.len() != data.blocksizes.len() {
        return Err(ExportError::Malformed {
            cid: *cid,
            reason: "blocksizes do not match links".into(),
        });
    }
    let mut child_start = start + inline.len() as u64;
    for (link, &size) in node.links.iter().zip(&data.blocksizes) {
        let child_end = child_start.saturating_add(size);
        if child_start >= to {
            break;
        }
        if child_end > from {
            read_node(
                src,
                &link.cid,
                child_start,
                from,
                to,
                out,
                written,
                depth + 1,
            )?;
        }
        child_start = child_end;
    }
    Ok(())
}

fn emit(
    bytes: &[u8],
    start: u64,
    from: u64,
    to: u64,
    out: &mut dyn Write,
    written: &mut u64,
) -> Result<(), ExportError> {
    let len = bytes.len() as u64;
    let lo = from.saturating_sub(start).min(len);
    let hi = to.saturating_sub(start).min(len);
    if lo < hi {
        // lo and hi are within bytes.len(), which is a usize.
        let slice = &bytes[lo as usize..hi as usize];
        out.write_all(slice)?;
        *written += slice.len() as u64;
    }
    Ok(())
}
