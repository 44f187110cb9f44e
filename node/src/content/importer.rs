//! The file importer: a byte stream in, a UnixFS file DAG out, exactly as Kubo's `ipfs add`
//! builds it for the same options.
//!
//! Data flow: a producer thread reads the stream through the chosen [`Chunker`], encodes each
//! chunk as a leaf (raw block or dag-pb `File` node) and hashes it; leaves cross a small bounded
//! channel (so memory stays a few chunks whatever the file size) to the caller's thread, which
//! writes them to the [`BlockSink`] and feeds the layout. Hashing and storing thus run on two
//! cores at once.

use std::io::Read;

use cid::Cid;
use thiserror::Error;

use super::chunker::{Chunker, ChunkerSpec};
use super::cid::{CODEC_DAG_PB, CODEC_RAW, block_cid};
use super::dagpb::PbNode;
use super::layout::{Balanced, Child, trickle};
use super::unixfs::{DataType, UnixfsData};

/// Error a [`BlockSink`] reports; carried through unchanged.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where the importer writes the blocks it makes.
pub trait BlockSink {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), SinkError>;
}

impl BlockSink for std::collections::HashMap<Cid, Vec<u8>> {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), SinkError> {
        self.insert(*cid, data.to_vec());
        Ok(())
    }
}

/// An import that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("reading input: {0}")]
    Read(#[from] std::io::Error),
    #[error("storing block: {0}")]
    Sink(SinkError),
    #[error("directory entry name {0:?} is not valid (empty, `.`, `..` or contains `/`)")]
    BadName(String),
    #[error("duplicate directory entry {0:?}")]
    DuplicateName(String),
    #[error("{0} entries collide on all 64 hash bits; cannot shard")]
    HashCollision(usize),
    #[error("import worker thread failed")]
    Worker,
}

/// How a file's leaves are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    #[default]
    Balanced,
    Trickle,
}

/// How directory size is estimated when deciding whether to shard it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardEstimate {
    /// Sum over links of name length plus CID length (Kubo's historical estimate).
    Links,
    /// The exact size of the encoded directory block.
    Block,
}

/// Everything that decides the CIDs of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    pub cid_version: u8,
    pub raw_leaves: bool,
    pub chunker: ChunkerSpec,
    pub layout: Layout,
    pub max_links: usize,
    /// A directory whose estimated size is over this many bytes becomes a HAMT.
    pub shard_threshold: usize,
    pub shard_estimate: ShardEstimate,
}

/// Named import profiles, as Kubo's `Import` profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Kubo's default: CIDv0, 256 KiB chunks, balanced, 174 links, dag-pb leaves.
    UnixfsV0_2015,
    /// CIDv1, 1 MiB chunks, 1024 links, raw leaves.
    UnixfsV1_2025,
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unixfs-v0-2015" => Ok(Self::UnixfsV0_2015),
            "unixfs-v1-2025" => Ok(Self::UnixfsV1_2025),
            other => Err(format!(
                "unknown profile {other:?} (expected unixfs-v0-2015 or unixfs-v1-2025)"
            )),
        }
    }
}

/// Kubo's sharding threshold: 256 KiB.
pub const SHARD_THRESHOLD: usize = 256 * 1024;

impl ImportOptions {
    pub fn profile(profile: Profile) -> Self {
        match profile {
            Profile::UnixfsV0_2015 => Self {
                cid_version: 0,
                raw_leaves: false,
                chunker: ChunkerSpec::Size(256 * 1024),
                layout: Layout::Balanced,
                max_links: 174,
                shard_threshold: SHARD_THRESHOLD,
                shard_estimate: ShardEstimate::Links,
            },
            Profile::UnixfsV1_2025 => Self {
                cid_version: 1,
                raw_leaves: true,
                chunker: ChunkerSpec::Size(1024 * 1024),
                layout: Layout::Balanced,
                max_links: 1024,
                shard_threshold: SHARD_THRESHOLD,
                shard_estimate: ShardEstimate::Block,
            },
        }
    }

    /// Kubo's `--cid-version 1`: CIDv1 and, unless said otherwise, raw leaves.
    pub fn with_cid_version(mut self, version: u8) -> Self {
        self.cid_version = version;
        if version == 1 {
            self.raw_leaves = true;
        }
        self
    }
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self::profile(Profile::UnixfsV0_2015)
    }
}

/// One encoded leaf, ready to store.
struct Leaf {
    child: Child,
    block: Vec<u8>,
}

fn encode_leaf(chunk: Vec<u8>, opts: &ImportOptions) -> Leaf {
    let filesize = chunk.len() as u64;
    if opts.raw_leaves {
        // Raw blocks cannot be CIDv0; Kubo gives them CIDv1 even under a v0 root.
        let cid = block_cid(CODEC_RAW, 1, &chunk);
        return Leaf {
            child: Child {
                cid,
                tsize: filesize,
                filesize,
            },
            block: chunk,
        };
    }
    let mut data = UnixfsData::new(DataType::File);
    data.filesize = Some(filesize);
    if !chunk.is_empty() {
        data.data = Some(chunk.into());
    }
    let block = PbNode {
        links: Vec::new(),
        data: Some(data.encode()),
    }
    .encode();
    let cid = block_cid(CODEC_DAG_PB, opts.cid_version, &block);
    Leaf {
        child: Child {
            cid,
            tsize: block.len() as u64,
            filesize,
        },
        block,
    }
}

/// Leaves kept in flight between the hashing thread and the storing thread.
const LEAVES_IN_FLIGHT: usize = 8;

/// Import one file from `reader`. `on_progress` is called with the bytes read so far.
pub fn import_file<R: Read + Send>(
    reader: R,
    opts: &ImportOptions,
    sink: &mut dyn BlockSink,
    on_progress: &mut dyn FnMut(u64),
) -> Result<Child, ImportError> {
    let (tx, rx) = crossbeam_channel::bounded::<std::io::Result<Leaf>>(LEAVES_IN_FLIGHT);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut chunker: Box<dyn Chunker + '_> = opts.chunker.build(reader);
            loop {
                let next = match chunker.next_chunk() {
                    Ok(Some(chunk)) => Ok(encode_leaf(chunk, opts)),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let failed = next.is_err();
                if tx.send(next).is_err() || failed {
                    break;
                }
            }
        });
        let result = consume_leaves(&rx, opts, sink, on_progress);
        drop(rx);
        producer.join().map_err(|_| ImportError::Worker)?;
        result
    })
}

fn consume_leaves(
    rx: &crossbeam_channel::Receiver<std::io::Result<Leaf>>,
    opts: &ImportOptions,
    sink: &mut dyn BlockSink,
    on_progress: &mut dyn FnMut(u64),
) -> Result<Child, ImportError> {
    let mut read = 0u64;
    let mut balanced = Balanced::new(opts.max_links, opts.cid_version);
    let mut trickle_leaves = Vec::new();
    for leaf in rx.iter() {
        let leaf = leaf?;
        sink.put(&leaf.child.cid, &leaf.block)
            .map_err(ImportError::Sink)?;
        read += leaf.child.filesize;
        on_progress(read);
        match opts.layout {
            Layout::Balanced => balanced.push(leaf.child, sink)?,
            Layout::Trickle => trickle_leaves.push(leaf.child),
        }
    }
    match opts.layout {
        Layout::Balanced => match balanced.finish(sink)? {
            Some(root) => Ok(root),
            None => {
                let leaf = encode_leaf(Vec::new(), opts);
                sink.put(&leaf.child.cid, &leaf.block)
                    .map_err(ImportError::Sink)?;
                Ok(leaf.child)
            }
        },
        Layout::Trickle => trickle(&trickle_leaves, opts.max_links, opts.cid_version, sink),
    }
}

/// Import a symbolic link pointing at `target`.
pub fn import_symlink(
    target: &[u8],
    opts: &ImportOptions,
    sink: &mut dyn BlockSink,
) -> Result<Child, ImportError> {
    let mut data = UnixfsData::new(DataType::Symlink);
    data.data = Some(bytes::Bytes::copy_from_slice(target));
    let block = PbNode {
        links: Vec::new(),
        data: Some(data.encode()),
    }
    .encode();
    let cid = block_cid(CODEC_DAG_PB, opts.cid_version, &block);
    sink.put(&cid, &block).map_err(ImportError::Sink)?;
    Ok(Child {
        cid,
        tsize: block.len() as u64,
        filesize: 0,
    })
}

/// Import an in-memory byte slice (tests, small API payloads).
pub fn import_bytes(
    bytes: &[u8],
    opts: &ImportOptions,
    sink: &mut dyn BlockSink,
) -> Result<Child, ImportError> {
    import_file(bytes, opts, sink, &mut |_| {})
}
