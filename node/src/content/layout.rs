//! File DAG layouts: how leaves are grouped under inner dag-pb nodes.
//!
//! - [`Balanced`] (Kubo's default): leaves fill a complete tree left to right, at most
//!   `max_links` children per node; built streaming, holding one pending row per tree level.
//! - [`trickle`] (Kubo's `--trickle`): a root holding a layer of leaves, then runs of 4 subtrees
//!   of growing depth, so the start of a file is reachable quickly; built from the list of leaf
//!   links once all leaves are known (links only, never leaf bytes).
//!
//! Both only plan and encode nodes; blocks leave through the [`BlockSink`] they are given.

use cid::Cid;

use super::cid::{CODEC_DAG_PB, block_cid};
use super::dagpb::{PbLink, PbNode};
use super::importer::{BlockSink, ImportError};
use super::unixfs::{DataType, UnixfsData};

/// A finished subtree of a file: where it is, how big its DAG is, how many file bytes it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    pub cid: Cid,
    /// Cumulative size of the encoded blocks of this subtree (the `Tsize` a parent records).
    pub tsize: u64,
    /// Bytes of file content under this subtree.
    pub filesize: u64,
}

/// Encode an inner file node over `children`, write it to `sink`, and describe it.
pub(crate) fn file_node(
    children: &[Child],
    cid_version: u8,
    sink: &mut dyn BlockSink,
) -> Result<Child, ImportError> {
    let mut data = UnixfsData::new(DataType::File);
    data.filesize = Some(children.iter().map(|c| c.filesize).sum());
    data.blocksizes = children.iter().map(|c| c.filesize).collect();
    let node = PbNode {
        links: children
            .iter()
            .map(|c| PbLink::new(c.cid, "", c.tsize))
            .collect(),
        data: Some(data.encode()),
    };
    let bytes = node.encode();
    let cid = block_cid(CODEC_DAG_PB, cid_version, &bytes);
    sink.put(&cid, &bytes).map_err(ImportError::Sink)?;
    Ok(Child {
        cid,
        tsize: bytes.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>(),
        filesize: data.filesize.unwrap_or(0),
    })
}

/// Streaming balanced-tree builder.
pub struct Balanced {
    max_links: usize,
    cid_version: u8,
    /// `levels[i]` holds finished nodes of height `i` not yet given a parent.
    levels: Vec<Vec<Child>>,
}

impl Balanced {
    pub fn new(max_links: usize, cid_version: u8) -> Self {
        Self {
            max_links: max_links.max(2),
            cid_version,
            levels: vec![Vec::new()],
        }
    }

    /// Add the next leaf. A row is closed into a parent only when one more node than fits
    /// arrives, so a file of exactly `max_links` leaves keeps them all under its root.
    pub fn push(&mut self, leaf: Child, sink: &mut dyn BlockSink) -> Result<(), ImportError> {
        self.levels[0].push(leaf);
        let mut level = 0;
        while self.levels[level].len() > self.max_links {
            let full: Vec<Child> = self.levels[level].drain(..self.max_links).collect();
            self.add_parent(level, &full, sink)?;
            level += 1;
        }
        Ok(())
    }

    fn add_parent(
        &mut self,
        level: usize,
        children: &[Child],
        sink: &mut dyn BlockSink,
    ) -> Result<(), ImportError> {
        let parent = file_node(children, self.cid_version, sink)?;
        if self.levels.len() == level + 1 {
            self.levels.push(Vec::new());
        }
        self.levels[level + 1].push(parent);
        Ok(())
    }

    /// Finish the tree and return its root (`None` for no leaves). A file of one leaf is that leaf.
    pub fn finish(mut self, sink: &mut dyn BlockSink) -> Result<Option<Child>, ImportError> {
        for level in 0.. {
            let higher_pending = self.levels[level + 1..].iter().any(|l| !l.is_empty());
            let row = std::mem::take(&mut self.levels[level]);
            if !higher_pending && row.len() <= 1 {
                return Ok(row.into_iter().next());
            }
            for group in row.chunks(self.max_links) {
                self.add_parent(level, group, sink)?;
            }
        }
        Ok(None)
    }
}

/// Subtrees of each depth a trickle node holds after its leaf layer.
const TRICKLE_DEPTH_REPEAT: usize = 4;

/// Build a trickle DAG over `leaves` (in file order). The root is always an inner node.
pub fn trickle(
    leaves: &[Child],
    max_links: usize,
    cid_version: u8,
    sink: &mut dyn BlockSink,
) -> Result<Child, ImportError> {
    let mut next = 0;
    trickle_node(leaves, &mut next, max_links.max(1), None, cid_version, sink)
}

fn trickle_node(
    leaves: &[Child],
    next: &mut usize,
    max_links: usize,
    max_depth: Option<usize>,
    cid_version: u8,
    sink: &mut dyn BlockSink,
) -> Result<Child, ImportError> {
    let take = max_links.min(leaves.len() - *next);
    let mut children: Vec<Child> = leaves[*next..*next + take].to_vec();
    *next += take;
    let mut depth = 1;
    while max_depth.is_none_or(|max| depth < max) && *next < leaves.len() {
        for _ in 0..TRICKLE_DEPTH_REPEAT {
            if *next >= leaves.len() {
                break;
            }
            children.push(trickle_node(
                leaves,
                next,
                max_links,
                Some(depth),
                cid_version,
                sink,
            )?);
        }
        depth += 1;
    }
    file_node(&children, cid_version, sink)
}
