//! The on-disk repository every command opens: a folder holding the config, the lock, the
//! metadata database and the blocks.
//!
//! Layout of a repo at `<path>` (by default `$DISTRIBUTE_REPO`, else `~/.distribute`):
//! - `config.toml`: [`Config`]; `[store] backend` is chosen at init and never changed by opening.
//! - `repo.lock`: held with an exclusive `flock` while a [`Repo`] is open, and holding the PID of
//!   the process that has it. The kernel drops the lock when the holder exits, however it dies.
//! - `datastore/`: the sled database: with the sled backend, the small blocks and the index of
//!   `blobs/`: the sled backend's large blocks, appended to `NNNNNNNN.pack` files (see
//!   `store::tiered` and `store::pack`).
//! - `blocks/`: Kubo-layout flatfs, with the flatfs backend.
//! - `pins.journal`: the local pins (`store::pins`); `cluster.journal`: a cluster member's
//!   state (`cluster::store`).
//!
//! The lock is taken before anything else is read or created, so two processes never both
//! initialise or open one repo.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use fs2::FileExt;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::store::flatfs::FlatFsStore;
use crate::store::gc::{self, GcError, GcReport, VerifyReport};
use crate::store::pack::PackStore;
use crate::store::pins::{PinError, Pins};
use crate::store::sled::SledStore;
use crate::store::tiered::{TieredStore, adopt_flatfs_blocks};
use crate::store::{Blockstore, StoreError};

const CONFIG_FILE: &str = "config.toml";
const LOCK_FILE: &str = "repo.lock";
const DATASTORE_DIR: &str = "datastore";
const BLOCKS_DIR: &str = "blocks";
/// Large blocks of the sled backend (see [`TieredStore`]).
const BLOBS_DIR: &str = "blobs";

/// Which backend holds a repo's blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockstoreKind {
    /// A tree in the repo's sled database.
    #[default]
    Sled,
    /// One file per block in `blocks/`, in Kubo's flatfs layout.
    Flatfs,
}

impl BlockstoreKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Flatfs => "flatfs",
        }
    }
}

impl fmt::Display for BlockstoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BlockstoreKind {
    type Err = RepoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sled" => Ok(Self::Sled),
            "flatfs" => Ok(Self::Flatfs),
            other => Err(RepoError::UnknownBackend(other.to_owned())),
        }
    }
}

/// `config.toml`. Every section and field has a default, so older files keep loading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub store: StoreConfig,
}

/// `[store]`: where and how blocks are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// Set at init; opening a repo never changes it.
    pub backend: BlockstoreKind,
    /// sled page cache, in MiB: bounds the memory of large imports.
    pub sled_cache_mib: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: BlockstoreKind::default(),
            sled_cache_mib: 32,
        }
    }
}

/// Who holds a repo's lock, as read from the lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder(pub Option<u32>);

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(pid) => write!(f, "{pid}"),
            None => f.write_str("unknown"),
        }
    }
}

/// A repo that could not be created or opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RepoError {
    #[error("repo is locked by PID {holder}; is a daemon running?")]
    Locked { path: PathBuf, holder: LockHolder },
    #[error("{path} is already a repo; open it instead, or choose another folder")]
    AlreadyInitialised { path: PathBuf },
    #[error("no repo at {path}; initialise one first (`distribute init`)")]
    NotInitialised { path: PathBuf },
    #[error("unknown block store backend {0:?}; use \"sled\" or \"flatfs\"")]
    UnknownBackend(String),
    #[error("{path}: {source}; fix or remove the file")]
    BadConfig {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("writing the config: {0}")]
    WriteConfig(#[from] toml::ser::Error),
    #[error("{op} {path}: {source}; check the path and its permissions")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("opening the datastore at {path}: {source}; check that no other program uses it")]
    Datastore { path: PathBuf, source: sled::Error },
    #[error("no repo path: set $DISTRIBUTE_REPO or $HOME")]
    NoHome,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pins(#[from] PinError),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RepoError + use<> {
    let path = path.to_owned();
    move |source| RepoError::Io { op, path, source }
}

/// `$DISTRIBUTE_REPO`, else `~/.distribute`.
pub fn default_repo_path() -> Result<PathBuf, RepoError> {
    repo_path_from(
        std::env::var_os("DISTRIBUTE_REPO"),
        std::env::var_os("HOME"),
    )
}

fn repo_path_from(
    explicit: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf, RepoError> {
    match (explicit, home) {
        (Some(path), _) if !path.is_empty() => Ok(PathBuf::from(path)),
        (_, Some(home)) if !home.is_empty() => Ok(PathBuf::from(home).join(".distribute")),
        _ => Err(RepoError::NoHome),
    }
}

/// An open repository. Holds the repo lock until dropped.
pub struct Repo {
    path: PathBuf,
    config: Config,
    blocks: Arc<dyn Blockstore>,
    pins: Pins,
    db: sled::Db,
    // Last, so it is released after the stores are closed.
    _lock: File,
}

impl fmt::Debug for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repo")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Repo {
    /// Create a repo at `path` with the given backend; fails if one is already there.
    pub fn init(path: &Path, kind: BlockstoreKind) -> Result<Self, RepoError> {
        let lock = lock(path, true)?;
        if path.join(CONFIG_FILE).exists() {
            return Err(RepoError::AlreadyInitialised {
                path: path.to_owned(),
            });
        }
        Self::create(path, kind, lock)
    }

    /// Open the repo at `path`, with the backend it was created with.
    pub fn open(path: &Path) -> Result<Self, RepoError> {
        if !path.join(CONFIG_FILE).exists() {
            return Err(RepoError::NotInitialised {
                path: path.to_owned(),
            });
        }
        let lock = lock(path, false)?;
        let config = read_config(path)?;
        Self::assemble(path, config, lock)
    }

    /// Open the repo at `path`, creating it with `kind` on first use. An existing repo keeps
    /// its backend whatever `kind` says.
    pub fn open_or_init(path: &Path, kind: BlockstoreKind) -> Result<Self, RepoError> {
        let lock = lock(path, true)?;
        if path.join(CONFIG_FILE).exists() {
            let config = read_config(path)?;
            if config.store.backend != kind {
                tracing::debug!(repo = %path.display(), backend = %config.store.backend, "keeping the repo's backend");
            }
            return Self::assemble(path, config, lock);
        }
        Self::create(path, kind, lock)
    }

    fn create(path: &Path, kind: BlockstoreKind, lock: File) -> Result<Self, RepoError> {
        let config = Config {
            store: StoreConfig {
                backend: kind,
                ..StoreConfig::default()
            },
        };
        // Open the stores first: config.toml appears only once the repo is usable, so a crash
        // half-way leaves a folder that init can retry.
        let repo = Self::assemble(path, config, lock)?;
        write_config(path, &repo.config)?;
        tracing::info!(repo = %path.display(), backend = %kind, "repo initialised");
        Ok(repo)
    }

    fn assemble(path: &Path, config: Config, lock: File) -> Result<Self, RepoError> {
        let datastore = path.join(DATASTORE_DIR);
        let db = sled::Config::new()
            .path(&datastore)
            .cache_capacity(config.store.sled_cache_mib.saturating_mul(1 << 20))
            .open()
            .map_err(|source| RepoError::Datastore {
                path: datastore,
                source,
            })?;
        let blocks: Arc<dyn Blockstore> = match config.store.backend {
            BlockstoreKind::Sled => {
                let blobs = path.join(BLOBS_DIR);
                let large = PackStore::open(&db, &blobs)?;
                adopt_flatfs_blocks(&blobs, &large)?;
                Arc::new(TieredStore::new(SledStore::new(&db)?, large))
            }
            BlockstoreKind::Flatfs => Arc::new(FlatFsStore::open(&path.join(BLOCKS_DIR))?),
        };
        let pins = Pins::open(&db, path)?;
        Ok(Self {
            path: path.to_owned(),
            config,
            blocks,
            pins,
            db,
            _lock: lock,
        })
    }

    /// The repo's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The block store.
    pub fn blocks(&self) -> &dyn Blockstore {
        self.blocks.as_ref()
    }

    /// The block store, to share with other threads.
    pub fn blocks_arc(&self) -> Arc<dyn Blockstore> {
        Arc::clone(&self.blocks)
    }

    /// The local pins.
    /// The block store as the exporter reads it (every block verified).
    pub fn source(&self) -> crate::store::StoreSource<'_> {
        crate::store::StoreSource::new(self.blocks())
    }

    pub fn pins(&self) -> &Pins {
        &self.pins
    }

    /// The metadata database, for subsystems that keep their own trees (the cluster pinset).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Make every block and pin written so far survive a crash.
    pub fn flush(&self) -> Result<(), RepoError> {
        self.blocks.flush()?;
        self.db.flush().map_err(|source| StoreError::Sled {
            op: "flush",
            source,
        })?;
        self.pins.flush()?;
        Ok(())
    }

    /// Remove every block no pin reaches.
    pub fn gc(&self) -> Result<GcReport, GcError> {
        gc::gc(self.blocks(), &self.pins)
    }

    /// Re-hash every block and check every pin is complete.
    pub fn verify(&self) -> Result<VerifyReport, GcError> {
        gc::verify(self.blocks(), &self.pins)
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(repo = %self.path.display(), "flushing on close: {e}");
        }
    }
}

/// Take the repo lock and record our PID in it; `create` makes the folder if needed.
fn lock(path: &Path, create: bool) -> Result<File, RepoError> {
    if create {
        fs::create_dir_all(path).map_err(io_err("create folder", path))?;
    }
    let lock_path = path.join(LOCK_FILE);
    // No truncation on open: until we hold the lock, the PID in it is the holder's.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err("open", &lock_path))?;
    if let Err(e) = file.try_lock_exclusive() {
        if e.kind() != fs2::lock_contended_error().kind() {
            return Err(io_err("lock", &lock_path)(e));
        }
        let mut text = String::new();
        // An unreadable PID still means locked; the message then says "unknown".
        let _ = file.read_to_string(&mut text);
        return Err(RepoError::Locked {
            path: path.to_owned(),
            holder: LockHolder(text.trim().parse().ok()),
        });
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io_err("write", &lock_path))?;
    Ok(file)
}

fn read_config(path: &Path) -> Result<Config, RepoError> {
    let file = path.join(CONFIG_FILE);
    let text = fs::read_to_string(&file).map_err(io_err("read", &file))?;
    toml::from_str(&text).map_err(|source| RepoError::BadConfig { path: file, source })
}

/// Write the config through a temp file and a rename, so a crash never leaves half a config.
fn write_config(path: &Path, config: &Config) -> Result<(), RepoError> {
    let file = path.join(CONFIG_FILE);
    let temp = path.join(format!("{CONFIG_FILE}.tmp"));
    let text = toml::to_string(config)?;
    let written = File::create(&temp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    written.map_err(io_err("write", &temp))?;
    fs::rename(&temp, &file).map_err(io_err("rename", &file))?;
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync folder", path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
