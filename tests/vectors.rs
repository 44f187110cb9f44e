//! Known-answer tests: every UnixFS vector in `../shared/vectors/unixfs.jsonl` (CIDs produced by
//! Kubo and Helia) must come out of the importer byte for byte, plus the classic
//! `"hello world\n"` and empty-directory CIDs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use distribute::content::directory::{DirEntry, build_directory};
use distribute::content::importer::{ImportOptions, import_bytes};
use distribute::content::layout::Child;
use kit::{CountingSink, Vector, gen_bytes, load_vectors, options_for};

fn file(seed: u64, size: usize, opts: &ImportOptions, sink: &mut CountingSink) -> Child {
    import_bytes(&gen_bytes(seed, size), opts, sink).unwrap()
}

fn dir(entries: Vec<(&str, Child)>, opts: &ImportOptions, sink: &mut CountingSink) -> Child {
    let entries = entries
        .into_iter()
        .map(|(name, child)| DirEntry {
            name: name.to_owned(),
            child,
        })
        .collect();
    build_directory(entries, opts, sink).unwrap()
}

fn tree_small(opts: &ImportOptions, sink: &mut CountingSink) -> Child {
    let a = file(1, 10, opts, sink);
    let c = file(2, 300_000, opts, sink);
    let d = file(3, 0, opts, sink);
    let b = dir(vec![("c", c), ("d", d)], opts, sink);
    let e = dir(vec![], opts, sink);
    dir(vec![("a", a), ("b", b), ("e", e)], opts, sink)
}

fn tree_flat10000(opts: &ImportOptions, sink: &mut CountingSink) -> Child {
    let entries = (0..10_000u64)
        .map(|i| DirEntry {
            name: format!("{i}.json"),
            child: file(i, 64, opts, sink),
        })
        .collect();
    build_directory(entries, opts, sink).unwrap()
}

fn check(vector: &Vector) {
    let opts = options_for(&vector.profile);
    let mut sink = CountingSink::default();
    let root = match (vector.kind.as_str(), vector.name.as_deref()) {
        ("file", _) => file(vector.seed.unwrap(), vector.size.unwrap(), &opts, &mut sink),
        ("tree", Some("small")) => tree_small(&opts, &mut sink),
        ("tree", Some("flat10000")) => tree_flat10000(&opts, &mut sink),
        other => panic!("unknown vector kind {other:?}"),
    };
    assert_eq!(root.cid.to_string(), vector.cid, "vector {vector:?}");
}

#[test]
fn every_shared_vector_matches_kubo() {
    let vectors = load_vectors();
    assert!(
        vectors.len() >= 26,
        "expected the full vector file, got {}",
        vectors.len()
    );
    for vector in &vectors {
        check(vector);
    }
}

#[test]
fn hello_world_and_empty_directory() {
    let opts = ImportOptions::default();
    let mut sink = CountingSink::default();
    let hello = import_bytes(b"hello world\n", &opts, &mut sink).unwrap();
    assert_eq!(
        hello.cid.to_string(),
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
    let empty = build_directory(Vec::new(), &opts, &mut sink).unwrap();
    assert_eq!(
        empty.cid.to_string(),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
}
