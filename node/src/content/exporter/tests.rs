//! Exporter tests with a block source that records what is read and hinted: reads and
//! listings fetch only what they need, and file reads hint their prefetch runs.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use super::file::FileRead;
use super::*;
use crate::content::directory::{DirEntry, build_directory};
use crate::content::importer::{ImportOptions, import_bytes};
use crate::content::links::links;

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
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, SourceError> {
        self.read.borrow_mut().push(*cid);
        Ok(self
            .blocks
            .get(cid)
            .map(|data| Bytes::copy_from_slice(data)))
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

/// The whole file at `file`, read with a prefetch window of `window` bytes.
fn read_whole(src: &Recorder, file: &Cid, window: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut written = 0;
    let mut read = FileRead {
        src,
        from: 0,
        to: u64::MAX,
        window,
        out: &mut out,
        written: &mut written,
    };
    read.node(file, 0, 0, None).unwrap();
    out
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
    // A 600-byte window: the root's ten 200-byte children in runs of three.
    assert_eq!(read_whole(&src, &file, 600), data);
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
fn the_next_subtree_is_announced_from_the_last_run_of_the_one_before() {
    let mut src = Recorder::default();
    let (file, data) = two_level_file(&mut src);
    let file = file.cid;
    let children = |cid: &Cid| -> Vec<Cid> {
        PbNode::decode(&src.blocks[cid])
            .unwrap()
            .links
            .iter()
            .map(|l| l.cid)
            .collect()
    };
    let inner = children(&file);
    // An 80-byte window: the 200-byte inner nodes are in no run of the root; each inner
    // node's twenty 10-byte leaves go in runs of 8, 8 and 4.
    assert_eq!(read_whole(&src, &file, 80), data);
    let mut expected = Vec::new();
    for (j, node) in inner.iter().enumerate() {
        let leaves = children(node);
        expected.push(leaves[8..16].to_vec());
        expected.push(leaves[16..20].to_vec());
        // From the last run of node j, the first run of node j + 1.
        if let Some(next) = inner.get(j + 1) {
            expected.push(children(next)[0..8].to_vec());
        }
    }
    assert_eq!(*src.announced.borrow(), expected);
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
