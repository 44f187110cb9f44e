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

use std::io::Write;
use std::ops::Range;

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
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.get(cid).cloned())
    }
}

/// Deepest file or shard tree the exporter follows; a deeper DAG is treated as hostile.
const MAX_DEPTH: usize = 256;

/// Most file bytes one [`BlockSource::prefetch`] of a file read asks for: enough blocks to
/// keep many in flight, few enough that bytes start flowing soon and that a range never
/// pulls much beyond what it covers.
pub const PREFETCH_WINDOW: u64 = 16 << 20;

/// Which children of a file node to prefetch together, given each child's `(start, size)` in
/// file positions: runs of consecutive children that lie wholly inside `[from, to)`, each
/// run at most `window` bytes. A child larger than `window` is in no run (its own children
/// are planned when it is read), nor is one the range only partly covers (only the blocks on
/// the range's edge are read from it).
pub fn prefetch_runs(
    children: &[(u64, u64)],
    from: u64,
    to: u64,
    window: u64,
) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    // The open run: its first child and its bytes so far.
    let mut open: Option<(usize, u64)> = None;
    for (i, &(start, size)) in children.iter().enumerate() {
        let inside = start >= from && start.saturating_add(size) <= to && size <= window;
        match open {
            Some((first, bytes)) if inside && bytes.saturating_add(size) <= window => {
                open = Some((first, bytes.saturating_add(size)));
            }
            _ => {
                if let Some((first, _)) = open.take() {
                    runs.push(first..i);
                }
                if inside {
                    open = Some((i, size));
                }
            }
        }
    }
    if let Some((first, _)) = open {
        runs.push(first..children.len());
    }
    runs
}

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
    // Sub-shards (two-character names) are read next: ask for them together.
    let shards: Vec<Cid> = node
        .links
        .iter()
        .filter(|l| l.name().len() == 2)
        .map(|l| l.cid)
        .collect();
    if !shards.is_empty() {
        src.prefetch_blocks(&shards)
            .map_err(|source| ExportError::Source { cid: *cid, source })?;
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
        let mut read = FileRead {
            src,
            from: offset,
            to: end,
            window: PREFETCH_WINDOW,
            out,
            written: &mut written,
        };
        read.node(cid, 0, 0)?;
    }
    Ok(written)
}

/// One [`read_range`]: where it reads from and writes to, and what it has written.
struct FileRead<'a> {
    src: &'a dyn BlockSource,
    /// The range, `[from, to)`.
    from: u64,
    to: u64,
    /// The prefetch window ([`PREFETCH_WINDOW`]; smaller in tests).
    window: u64,
    out: &'a mut dyn Write,
    written: &'a mut u64,
}

impl FileRead<'_> {
    /// Write the part of node `cid` (whose content starts at file position `start`) inside
    /// the range.
    fn node(&mut self, cid: &Cid, start: u64, depth: usize) -> Result<(), ExportError> {
        if depth > MAX_DEPTH {
            return Err(ExportError::TooDeep(*cid));
        }
        let (node, data) = match decode(self.src, cid)? {
            Decoded::Raw(bytes) => return self.emit(&bytes, start),
            Decoded::Unixfs(node, data) => (node, data),
        };
        match data.kind {
            DataType::File | DataType::Raw => {}
            DataType::Directory | DataType::HamtShard => {
                return Err(ExportError::IsDirectory(*cid));
            }
            _ => {
                return Err(ExportError::Malformed {
                    cid: *cid,
                    reason: "not a file node".into(),
                });
            }
        }
        let inline = data.data.as_deref().unwrap_or_default();
        self.emit(inline, start)?;
        if node.links.len() != data.blocksizes.len() {
            return Err(ExportError::Malformed {
                cid: *cid,
                reason: "blocksizes do not match links".into(),
            });
        }
        let mut next = start + inline.len() as u64;
        let spans: Vec<(u64, u64)> = data
            .blocksizes
            .iter()
            .map(|&size| {
                let span = (next, size);
                next = next.saturating_add(size);
                span
            })
            .collect();
        let runs = prefetch_runs(&spans, self.from, self.to, self.window);
        let run_cids = |k: usize| -> Option<Vec<Cid>> {
            let run = runs.get(k)?;
            Some(node.links[run.clone()].iter().map(|l| l.cid).collect())
        };
        let mut run = 0;
        for (i, (link, &(child_start, size))) in node.links.iter().zip(&spans).enumerate() {
            if child_start >= self.to {
                break;
            }
            if runs.get(run).is_some_and(|r| r.start == i) {
                if let Some(cids) = run_cids(run) {
                    self.src
                        .prefetch(&cids)
                        .map_err(|source| ExportError::Source { cid: *cid, source })?;
                }
                run += 1;
                if let Some(cids) = run_cids(run) {
                    self.src.prefetch_next(&cids);
                }
            }
            if child_start.saturating_add(size) > self.from {
                self.node(&link.cid, child_start, depth + 1)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, bytes: &[u8], start: u64) -> Result<(), ExportError> {
        emit(bytes, start, self.from, self.to, self.out, self.written)
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::content::directory::{DirEntry, build_directory};
    use crate::content::importer::{ImportOptions, import_bytes};
    use crate::content::links::links;

    #[test]
    fn prefetch_runs_take_whole_children_inside_the_range_up_to_the_window() {
        // Ten children of 10 bytes: [0,10), [10,20), ...
        let tens: Vec<(u64, u64)> = (0..10).map(|i| (i * 10, 10)).collect();
        // Runs as (first, past the last) child indices.
        let check = |children: &[(u64, u64)], from, to, window, expected: &[(usize, usize)]| {
            let runs: Vec<(usize, usize)> = prefetch_runs(children, from, to, window)
                .into_iter()
                .map(|r| (r.start, r.end))
                .collect();
            assert_eq!(runs, expected, "[{from}, {to}) window {window}");
        };
        // The whole file: runs of at most the window.
        check(&tens, 0, u64::MAX, 30, &[(0, 3), (3, 6), (6, 9), (9, 10)]);
        check(&tens, 0, 100, 1000, &[(0, 10)]);
        // A few bytes in the middle: no child lies wholly inside, nothing prefetched.
        check(&tens, 45, 47, 1000, &[]);
        // Partly covered children at the edges stay out of the run.
        check(&tens, 15, 65, 1000, &[(2, 6)]);
        // Exact boundaries are inside.
        check(&tens, 20, 40, 1000, &[(2, 4)]);
        // A child bigger than the window is in no run and splits the runs around it.
        let mixed = [(0, 10), (10, 10), (20, 500), (520, 10)];
        check(&mixed, 0, u64::MAX, 100, &[(0, 2), (3, 4)]);
        // Empty children inside the range ride along; no children, no runs.
        check(&[(0, 0), (0, 5)], 0, 5, 10, &[(0, 2)]);
        check(&[], 0, u64::MAX, 10, &[]);
    }

    /// A map of blocks that records what the exporter reads and hints.
    #[derive(Default)]
    struct Recorder {
        blocks: HashMap<Cid, Vec<u8>>,
        read: RefCell<Vec<Cid>>,
        prefetched: RefCell<Vec<Vec<Cid>>>,
        prefetched_blocks: RefCell<Vec<Vec<Cid>>>,
        announced: RefCell<Vec<Vec<Cid>>>,
    }

    impl BlockSource for Recorder {
        fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, SourceError> {
            self.read.borrow_mut().push(*cid);
            Ok(self.blocks.get(cid).cloned())
        }

        fn prefetch(&self, cids: &[Cid]) -> Result<(), SourceError> {
            self.prefetched.borrow_mut().push(cids.to_vec());
            Ok(())
        }

        fn prefetch_blocks(&self, cids: &[Cid]) -> Result<(), SourceError> {
            self.prefetched_blocks.borrow_mut().push(cids.to_vec());
            Ok(())
        }

        fn prefetch_next(&self, cids: &[Cid]) {
            self.announced.borrow_mut().push(cids.to_vec());
        }
    }

    impl Recorder {
        /// Every block under `root` (root included).
        fn dag(&self, root: &Cid) -> HashSet<Cid> {
            let mut seen = HashSet::new();
            let mut stack = vec![*root];
            while let Some(cid) = stack.pop() {
                if seen.insert(cid) {
                    stack.extend(links(&cid, &self.blocks[&cid]).unwrap());
                }
            }
            seen
        }
    }

    /// A two-level file: 2,000 bytes in 10-byte leaves, at most 20 links a node (10 inner
    /// nodes of 20 leaves, 200 bytes each, under the root).
    fn two_level_file(src: &mut Recorder) -> (crate::content::layout::Child, Vec<u8>) {
        let mut opts = ImportOptions::default().with_cid_version(1);
        opts.chunker = "size-10".parse().unwrap();
        opts.max_links = 20;
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        let file = import_bytes(&data, &opts, &mut src.blocks).unwrap();
        (file, data)
    }

    #[test]
    fn a_small_range_reads_only_the_blocks_on_its_way() {
        let mut src = Recorder::default();
        let (file, data) = two_level_file(&mut src);
        let file = file.cid;
        let mut out = Vec::new();
        read_range(&src, &file, 1005, Some(3), &mut out).unwrap();
        assert_eq!(out, &data[1005..1008]);
        // The root, one inner node, one leaf; nothing hinted.
        assert_eq!(src.read.borrow().len(), 3, "{:?}", src.read.borrow());
        assert!(src.prefetched.borrow().is_empty());
    }

    #[test]
    fn a_whole_file_read_hints_every_block_below_the_root_in_windows() {
        let mut src = Recorder::default();
        let (file, data) = two_level_file(&mut src);
        let file = file.cid;
        let mut out = Vec::new();
        read_range(&src, &file, 0, None, &mut out).unwrap();
        assert_eq!(out, data);
        // The root's ten inner nodes (200 bytes each) fit one window: one hint covering
        // them, then each inner node's leaves (already under a hinted DAG) hinted again,
        // which a network source finds local.
        let hints = src.prefetched.borrow();
        let root_children: Vec<Cid> = PbNode::decode(&src.blocks[&file])
            .unwrap()
            .links
            .iter()
            .map(|l| l.cid)
            .collect();
        assert_eq!(hints[0], root_children);
        let hinted: HashSet<Cid> = hints.iter().flatten().copied().collect();
        let mut below = src.dag(&file);
        below.remove(&file);
        assert_eq!(hinted, below, "every block below the root is hinted");
    }

    #[test]
    fn each_run_is_announced_while_the_one_before_it_is_read() {
        let mut src = Recorder::default();
        let (file, data) = two_level_file(&mut src);
        let file = file.cid;
        let root_children: Vec<Cid> = PbNode::decode(&src.blocks[&file])
            .unwrap()
            .links
            .iter()
            .map(|l| l.cid)
            .collect();
        let mut out = Vec::new();
        let mut written = 0;
        // A 600-byte window: the root's ten 200-byte children in runs of three.
        let mut read = FileRead {
            src: &src,
            from: 0,
            to: u64::MAX,
            window: 600,
            out: &mut out,
            written: &mut written,
        };
        read.node(&file, 0, 0).unwrap();
        assert_eq!(out, data);
        let runs: Vec<Vec<Cid>> = [0..3, 3..6, 6..9, 9..10]
            .into_iter()
            .map(|r| root_children[r].to_vec())
            .collect();
        let root_level: Vec<Vec<Cid>> = src
            .prefetched
            .borrow()
            .iter()
            .filter(|h| root_children.contains(&h[0]))
            .cloned()
            .collect();
        assert_eq!(root_level, runs);
        // Every run but the first is announced before it is prefetched; the inner nodes'
        // single runs have no next one.
        assert_eq!(*src.announced.borrow(), runs[1..]);
    }

    #[test]
    fn a_middle_range_hints_only_the_children_it_covers() {
        let mut src = Recorder::default();
        let (file, data) = two_level_file(&mut src);
        let file = file.cid;
        let mut out = Vec::new();
        // [150, 650): part of inner node 0, all of nodes 1 and 2, part of node 3.
        read_range(&src, &file, 150, Some(500), &mut out).unwrap();
        assert_eq!(out, &data[150..650]);
        let root_children: Vec<Cid> = PbNode::decode(&src.blocks[&file])
            .unwrap()
            .links
            .iter()
            .map(|l| l.cid)
            .collect();
        let hints = src.prefetched.borrow();
        assert!(hints.contains(&root_children[1..3].to_vec()), "{hints:?}");
        let hinted: HashSet<Cid> = hints.iter().flatten().copied().collect();
        // Nothing outside the range is hinted: not node 0's first 15 leaves, not node 4.
        for outside in [0, 4, 9] {
            assert!(!hinted.contains(&root_children[outside]));
        }
    }

    #[test]
    fn listing_and_lookup_read_no_entry() {
        let mut src = Recorder::default();
        let (big, _) = two_level_file(&mut src);
        let file = big.cid;
        let mut opts = ImportOptions::default().with_cid_version(1);
        opts.chunker = "size-10".parse().unwrap();
        let small = import_bytes(b"hello", &opts, &mut src.blocks).unwrap();
        let dir = build_directory(
            vec![
                DirEntry {
                    name: "big".into(),
                    child: big,
                },
                DirEntry {
                    name: "small".into(),
                    child: small,
                },
            ],
            &opts,
            &mut src.blocks,
        )
        .unwrap();
        let entries = list(&src, &dir.cid).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(lookup(&src, &dir.cid, "big").unwrap(), file);
        assert_eq!(*src.read.borrow(), vec![dir.cid, dir.cid]);
        assert!(src.prefetched.borrow().is_empty());
        assert!(src.prefetched_blocks.borrow().is_empty());
    }
}
