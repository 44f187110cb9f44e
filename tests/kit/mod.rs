//! Shared test kit: the vector input generator, the vector file loader, and small sinks.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cid::Cid;
use distribute::content::importer::{BlockSink, ImportOptions, SinkError};
use sha2::{Digest, Sha256};

/// `gen(seed, size)` from the vectors README: SHA-256 of successive big-endian u64 counters.
pub fn gen_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 32);
    let mut counter = seed;
    while out.len() < size {
        out.extend_from_slice(&Sha256::digest(counter.to_be_bytes()));
        counter += 1;
    }
    out.truncate(size);
    out
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Vector {
    pub kind: String,
    pub seed: Option<u64>,
    pub size: Option<usize>,
    pub name: Option<String>,
    pub profile: String,
    pub cid: String,
}

pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub fn load_vectors() -> Vec<Vector> {
    let path = shared_dir().join("vectors/unixfs.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The importer options a vector's profile names.
pub fn options_for(profile: &str) -> ImportOptions {
    match profile {
        "v0" => ImportOptions::default(),
        "v1" => ImportOptions::default().with_cid_version(1),
        other => panic!("unknown profile {other}"),
    }
}

/// Counts blocks without keeping them (for large vectors).
#[derive(Default)]
pub struct CountingSink {
    pub blocks: usize,
    pub bytes: u64,
}

impl BlockSink for CountingSink {
    fn put(&mut self, _cid: &Cid, data: &[u8]) -> Result<(), SinkError> {
        self.blocks += 1;
        self.bytes += data.len() as u64;
        Ok(())
    }
}
