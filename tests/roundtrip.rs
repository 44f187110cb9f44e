//! Property tests: random files and trees, imported with random options, read back equal —
//! whole, by byte range, and through directory listings and path resolution.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use cid::Cid;
use distribute::content::chunker::ChunkerSpec;
use distribute::content::cid::IpfsPath;
use distribute::content::directory::{DirEntry, build_directory};
use distribute::content::exporter::{NodeKind, list, read_range, resolve, stat};
use distribute::content::importer::{ImportOptions, Layout, import_bytes};
use proptest::prelude::*;

fn options() -> impl Strategy<Value = ImportOptions> {
    (
        0u8..2,
        any::<bool>(),
        prop_oneof![
            Just(ChunkerSpec::Buzhash),
            (1usize..5000).prop_map(ChunkerSpec::Size)
        ],
        any::<bool>(),
        2usize..8,
    )
        .prop_map(|(version, raw, chunker, trickle, max_links)| {
            let mut o = ImportOptions::default().with_cid_version(version);
            o.raw_leaves |= raw;
            o.chunker = chunker;
            o.layout = if trickle {
                Layout::Trickle
            } else {
                Layout::Balanced
            };
            o.max_links = max_links;
            o
        })
}

fn read_all(blocks: &HashMap<Cid, Vec<u8>>, cid: &Cid) -> Vec<u8> {
    let mut out = Vec::new();
    read_range(blocks, cid, 0, None, &mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn files_round_trip_whole_and_by_range(
        data in prop::collection::vec(any::<u8>(), 0..40_000),
        opts in options(),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let mut blocks = HashMap::new();
        let root = import_bytes(&data, &opts, &mut blocks).unwrap();
        prop_assert_eq!(root.filesize, data.len() as u64);
        prop_assert_eq!(read_all(&blocks, &root.cid), data.clone());
        let info = stat(&blocks, &root.cid).unwrap();
        prop_assert_eq!(info.kind, NodeKind::File);
        prop_assert_eq!(info.size, data.len() as u64);
        if !data.is_empty() {
            let (x, y) = (a.index(data.len() + 1), b.index(data.len() + 1));
            let (lo, hi) = (x.min(y), x.max(y));
            let mut out = Vec::new();
            read_range(&blocks, &root.cid, lo as u64, Some((hi - lo) as u64), &mut out).unwrap();
            prop_assert_eq!(&out[..], &data[lo..hi]);
        }
    }

    #[test]
    fn trees_round_trip_through_listing_and_paths(
        files in prop::collection::btree_map("[a-zA-Z0-9_.-]{1,12}", prop::collection::vec(any::<u8>(), 0..3000), 0..40),
        shard in any::<bool>(),
        opts in options(),
    ) {
        let files: Vec<_> = files.into_iter().filter(|(n, _)| n != "." && n != "..").collect();
        let mut opts = opts;
        if shard {
            opts.shard_threshold = 0;
        }
        let mut blocks = HashMap::new();
        let entries = files.iter().map(|(name, data)| DirEntry { name: name.clone(), child: import_bytes(data, &opts, &mut blocks).unwrap() }).collect();
        let inner = build_directory(entries, &opts, &mut blocks).unwrap();
        let root = build_directory(vec![DirEntry { name: "sub".into(), child: inner }], &opts, &mut blocks).unwrap();
        let listed = list(&blocks, &inner.cid).unwrap();
        let mut names: Vec<_> = listed.iter().map(|e| e.name.clone()).collect();
        names.sort();
        let expected: Vec<_> = files.iter().map(|(n, _)| n.clone()).collect();
        prop_assert_eq!(names, expected);
        for (name, data) in &files {
            let path = IpfsPath { root: root.cid, segments: vec!["sub".into(), name.clone()] };
            let cid = resolve(&blocks, &path).unwrap();
            prop_assert_eq!(&read_all(&blocks, &cid), data);
        }
        let missing = IpfsPath { root: root.cid, segments: vec!["sub".into(), "no such name!".into()] };
        prop_assert!(resolve(&blocks, &missing).is_err());
    }
}

/// Content-defined chunking: inserting bytes in the middle of a 20 MB file re-uses at least 90%
/// of the original file's blocks (leaves and inner nodes together).
#[test]
fn buzhash_insert_in_middle_shares_most_blocks() {
    let mut data = Vec::with_capacity(20_000_100);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 20_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let mut edited = data.clone();
    edited.splice(10_000_000..10_000_000, std::iter::repeat_n(0xAB, 100));
    let opts = ImportOptions {
        chunker: ChunkerSpec::Buzhash,
        ..ImportOptions::default()
    };
    let mut before = HashMap::new();
    let mut after = HashMap::new();
    import_bytes(&data, &opts, &mut before).unwrap();
    let root = import_bytes(&edited, &opts, &mut after).unwrap();
    assert_eq!(read_all(&after, &root.cid), edited);
    let shared = before.keys().filter(|cid| after.contains_key(cid)).count();
    let ratio = shared as f64 / before.len() as f64;
    assert!(
        ratio >= 0.9,
        "only {shared} of {} blocks shared ({ratio:.3})",
        before.len()
    );
    // The same edit with fixed-size chunks shares far less: the comparison that makes the point.
    let fixed = ImportOptions::default();
    let (mut fb, mut fa) = (HashMap::new(), HashMap::new());
    import_bytes(&data, &fixed, &mut fb).unwrap();
    import_bytes(&edited, &fixed, &mut fa).unwrap();
    let fixed_shared = fb.keys().filter(|cid| fa.contains_key(cid)).count();
    assert!(
        fixed_shared < shared,
        "fixed-size shares {fixed_shared}, buzhash {shared}"
    );
}

/// A byte range is served from the blocks covering it, not the whole file.
#[test]
fn ranges_fetch_only_the_blocks_that_cover_them() {
    use distribute::content::exporter::{BlockSource, SourceError};
    use std::cell::Cell;

    struct Counting<'a>(&'a HashMap<Cid, Vec<u8>>, Cell<usize>);
    impl BlockSource for Counting<'_> {
        fn get_block(&self, cid: &Cid) -> Result<Option<bytes::Bytes>, SourceError> {
            self.1.set(self.1.get() + 1);
            Ok(self
                .0
                .get(cid)
                .map(|data| bytes::Bytes::copy_from_slice(data)))
        }
    }

    let data: Vec<u8> = (0..50_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut blocks = HashMap::new();
    let root = import_bytes(&data, &ImportOptions::default(), &mut blocks).unwrap();
    assert!(
        blocks.len() > 190,
        "a two-level tree: {} blocks",
        blocks.len()
    );
    let source = Counting(&blocks, Cell::new(0));
    let mut out = Vec::new();
    read_range(&source, &root.cid, 30_000_000, Some(10), &mut out).unwrap();
    assert_eq!(out, &data[30_000_000..30_000_010]);
    // Root, one inner node, one leaf.
    assert_eq!(source.1.get(), 3, "blocks fetched for a 10-byte range");
}
