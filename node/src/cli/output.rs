//! Shared plumbing of the commands: the [`Ctx`] every command runs in (repository, block
//! source, output, working folder), CID argument parsing, and output lines.
//!
//! Commands never open the repository or touch stdout themselves; while a daemon holds the
//! repository they run through its RPC API instead ([`super::remote`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cid::Cid;

use super::args::GlobalArgs;
use crate::content::cid::{IpfsPath, parse_cid_arg};
use crate::content::exporter::BlockSource;
use crate::repo::{BlockstoreKind, Repo, default_repo_path};

/// What a command runs against.
pub struct Ctx<'a> {
    pub repo: &'a Repo,
    /// Where blocks are read from: the store, or the store backed by the network.
    pub source: &'a dyn BlockSource,
    pub out: &'a mut dyn Write,
    /// The caller's working folder: relative paths in arguments are relative to it.
    pub cwd: PathBuf,
    /// Whether a person is watching stderr (progress bars).
    pub interactive: bool,
}

impl Ctx<'_> {
    /// A path argument made absolute against the caller's working folder.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.cwd.join(p)
        }
    }

    pub fn line(&mut self, text: std::fmt::Arguments<'_>) -> Result<()> {
        line(self.out, text)
    }
}

/// The repository folder the user chose (flag, env, or `~/.distribute`).
pub(crate) fn repo_path(global: &GlobalArgs) -> Result<PathBuf> {
    match &global.repo {
        Some(p) => Ok(p.clone()),
        None => Ok(default_repo_path()
            .context("cannot find the repository; pass --repo or set DISTRIBUTE_REPO")?),
    }
}

/// Open the repository, creating it with `kind` on first use.
pub(super) fn open_repo_with(global: &GlobalArgs, kind: BlockstoreKind) -> Result<Repo> {
    let path = repo_path(global)?;
    Ok(Repo::open_or_init(&path, kind)?)
}

pub(super) fn cid_arg(input: &str) -> Result<Cid> {
    Ok(parse_cid_arg(input)?)
}

/// Parse every CID argument, failing on the first that is not one.
pub(crate) fn cid_args(inputs: &[String]) -> Result<Vec<Cid>> {
    inputs.iter().map(|a| cid_arg(a)).collect()
}

pub(super) fn path_arg(input: &str) -> Result<IpfsPath> {
    Ok(IpfsPath::parse(input)?)
}

/// Locked, buffered standard output.
pub(super) fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

pub(super) fn line(out: &mut dyn Write, text: std::fmt::Arguments<'_>) -> Result<()> {
    out.write_fmt(text)?;
    out.write_all(b"\n")?;
    Ok(())
}
