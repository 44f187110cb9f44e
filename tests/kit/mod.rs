//! Shared test kit: the vector input generator, the vector file loader, and small sinks.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod daemon;
pub mod netns;
pub mod port;
pub mod rogue;

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

/// A temporary repository and a way to run the real `distribute` binary against it.
pub struct Node {
    pub dir: tempfile::TempDir,
}

/// Captured result of one command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl Run {
    /// Panic with the command's output unless it succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }

    /// Panic unless the command failed with exit code 1 and one error line, after any logs.
    pub fn fails(self) -> Self {
        assert_eq!(self.code, 1, "expected failure: {self:?}");
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("Error: "))
            .collect();
        assert_eq!(errors.len(), 1, "exactly one error line: {self:?}");
        assert_eq!(
            self.stderr.trim_end().lines().last(),
            Some(errors[0]),
            "error line last: {self:?}"
        );
        self
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_distribute")
}

impl Node {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A node whose repository uses `backend` (sled or flatfs).
    pub fn with_backend(backend: &str) -> Self {
        let node = Self::new();
        node.run(&["init", "--blockstore", backend]).ok();
        node
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("--repo")
            .arg(self.repo())
            .args(args)
            .current_dir(self.dir.path());
        cmd.env_remove("DISTRIBUTE_REPO");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            raw_stdout: out.stdout,
        }
    }

    /// Write a file under the node's scratch folder and return its path as a string.
    pub fn write(&self, rel: &str, data: &[u8]) -> String {
        let path = self.dir.path().join("in").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        path.to_str().unwrap().to_owned()
    }

    pub fn mkdir(&self, rel: &str) -> String {
        let path = self.dir.path().join("in").join(rel);
        std::fs::create_dir_all(&path).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// `add -Q` of a path with extra flags, returning the root CID.
    pub fn add(&self, path: &str, flags: &[&str]) -> String {
        let mut args = vec!["add", "-Q"];
        args.extend_from_slice(flags);
        args.push(path);
        self.run(&args).ok().stdout.trim().to_owned()
    }

    pub fn cat(&self, cid: &str) -> Vec<u8> {
        self.run(&["cat", cid]).ok().raw_stdout
    }
}

/// Poll `cond` until it holds or `timeout` passes; panics naming what it waited for.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
