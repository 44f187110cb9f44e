//! Throughput and peak-memory measurements of a 1 GiB import into each persistent backend.
//!
//! Ignored by default; run one at a time so each process's peak RSS is its own:
//! `cargo test --release -p distribute --lib store::bench::sled -- --ignored --nocapture`
//! (and `store::bench::flatfs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use super::Blockstore;
use super::flatfs::FlatFsStore;
use super::sled::SledStore;
use crate::content::cid::{CODEC_RAW, block_cid};

const BLOCKS: usize = 4096;
const BLOCK_SIZE: usize = 256 * 1024;

/// Peak resident set size of this process, from `/proc/self/status`.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// Put `BLOCKS` distinct blocks of `BLOCK_SIZE` bytes and flush; time puts and flush only.
fn put_one_gib(store: &dyn Blockstore) -> Duration {
    let mut block = vec![0u8; BLOCK_SIZE];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut spent = Duration::ZERO;
    for _ in 0..BLOCKS {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let cid = block_cid(CODEC_RAW, 1, &block);
        let start = Instant::now();
        store.put(&cid, &block).unwrap();
        spent += start.elapsed();
    }
    let start = Instant::now();
    store.flush().unwrap();
    spent + start.elapsed()
}

fn report(name: &str, spent: Duration) {
    let mib = (BLOCKS * BLOCK_SIZE) as f64 / f64::from(1 << 20);
    println!(
        "{name}: {BLOCKS} x {} KiB in {:.2} s = {:.0} MiB/s; peak RSS {} MiB",
        BLOCK_SIZE / 1024,
        spent.as_secs_f64(),
        mib / spent.as_secs_f64(),
        peak_rss_mib()
    );
}

/// The folder to write in: `$DISTRIBUTE_BENCH_DIR`, else the system temp folder.
fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("DISTRIBUTE_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

#[test]
#[ignore = "benchmark: writes 1 GiB"]
fn sled() {
    let dir = bench_dir();
    // The repo's default page cache.
    let db = ::sled::Config::new()
        .path(dir.path())
        .cache_capacity(32 << 20)
        .open()
        .unwrap();
    let store = SledStore::new(&db).unwrap();
    report("sled", put_one_gib(&store));
    assert_eq!(store.stat().unwrap().blocks, BLOCKS as u64);
}

#[test]
#[ignore = "benchmark: writes 1 GiB"]
fn flatfs() {
    let dir = bench_dir();
    let store = FlatFsStore::open(dir.path()).unwrap();
    report("flatfs", put_one_gib(&store));
    assert_eq!(store.stat().unwrap().blocks, BLOCKS as u64);
}
