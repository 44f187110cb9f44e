//! Local pins: the roots the user asked to keep (and the copies the cluster keeps here), in
//! memory and in an append-only journal, `<repo>/pins.journal` (framing: [`super::journal`]).
//!
//! A pin is keyed by the CID bytes the user gave (v0 or v1 is remembered as given) and has a
//! [`PinMode`]. A recursive pin keeps a whole DAG and wins over a direct pin of the same CID,
//! which keeps one block. Indirect pins are not stored: [`Pins::is_pinned`] derives them by
//! walking the recursive pins' DAGs, and GC marks the same way.
//!
//! Journal payloads: `R cid` (recursive), `D cid` (direct), `U cid` (unpinned). The journal is
//! read once at open and rewritten from memory once it holds more superseded records than
//! live ones. Pins used to be a `pins` tree in the repo's sled database, which held each
//! 40-byte pin in a few hundred bytes of page cache (a node holding 10,000 cluster copies
//! spent 3 MiB on them); a repository that still has the tree is moved to the journal on
//! first open and the tree dropped.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ::sled::Db;
use cid::Cid;
use thiserror::Error;

use super::journal::{cut_back, frames, open_append, put_frame, read, replace};
use super::walk::walk_dag;
use super::{Blockstore, StoreError};

/// The journal's file name in the repository.
pub const PINS_JOURNAL: &str = "pins.journal";

/// The sled tree earlier versions kept pins in.
const OLD_TREE: &str = "pins";

const RECURSIVE: u8 = b'R';
const DIRECT: u8 = b'D';
const UNPINNED: u8 = b'U';

/// The journal is rewritten once it has this many superseded records, and more than it has
/// live ones.
const MIN_GROWTH: u64 = 4096;

/// How a pin keeps its CID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinMode {
    /// The block and everything it links to, transitively.
    Recursive,
    /// The block alone.
    Direct,
}

impl PinMode {
    fn to_byte(self) -> u8 {
        match self {
            Self::Recursive => RECURSIVE,
            Self::Direct => DIRECT,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            RECURSIVE => Some(Self::Recursive),
            DIRECT => Some(Self::Direct),
            _ => None,
        }
    }
}

/// Why a block is kept, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    Recursive,
    Direct,
    /// Reachable from the recursive pin `via`.
    Indirect {
        via: Cid,
    },
    NotPinned,
}

/// A pin operation that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PinError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sled {op}: {source}; the datastore may be damaged, run `repo verify`")]
    Sled {
        op: &'static str,
        source: ::sled::Error,
    },
    #[error("pin record {key:02x?} in pins.journal is damaged: {reason}")]
    BadRecord { key: Vec<u8>, reason: String },
    #[error("walking pinned DAGs: {0}")]
    Store(#[from] StoreError),
}

fn sled_err(op: &'static str) -> impl Fn(::sled::Error) -> PinError {
    move |source| PinError::Sled { op, source }
}

fn io_err(op: &'static str, path: &Path) -> impl Fn(std::io::Error) -> PinError {
    let path = path.to_owned();
    move |source| PinError::Io {
        op,
        path: path.clone(),
        source,
    }
}

/// Pins by CID bytes.
type PinMap = BTreeMap<Box<[u8]>, PinMode>;

/// The local pin set.
#[derive(Debug, Clone)]
pub struct Pins {
    inner: Arc<Mutex<Journal>>,
}

#[derive(Debug)]
struct Journal {
    path: PathBuf,
    file: File,
    pins: PinMap,
    /// Records in the file that a later one superseded.
    stale: u64,
}

impl Journal {
    /// Append one record.
    fn append(&mut self, tag: u8, key: &[u8]) -> Result<(), PinError> {
        let mut frame = Vec::with_capacity(9 + key.len());
        put_frame(&mut frame, &payload(tag, key));
        self.file
            .write_all(&frame)
            .map_err(io_err("append to", &self.path))
    }

    /// Rewrite the file from memory once it is mostly superseded records.
    fn compact_if_due(&mut self) -> Result<(), PinError> {
        if self.stale > (self.pins.len() as u64).max(MIN_GROWTH) {
            self.file =
                replace(&self.path, &framed(&self.pins)).map_err(io_err("rewrite", &self.path))?;
            self.stale = 0;
        }
        Ok(())
    }
}

/// Every pin of `pins` as a journal.
fn framed(pins: &PinMap) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, mode) in pins {
        put_frame(&mut out, &payload(mode.to_byte(), key));
    }
    out
}

fn payload(tag: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(tag);
    out.extend_from_slice(key);
    out
}

/// Apply one journal record to `pins`; returns how many records of the journal it leaves
/// superseded (the key's earlier record; a removal itself).
fn apply(pins: &mut PinMap, record: &[u8]) -> Result<u64, PinError> {
    let (&tag, key) = record.split_first().ok_or_else(|| PinError::BadRecord {
        key: Vec::new(),
        reason: "empty journal record".into(),
    })?;
    if tag == UNPINNED {
        return Ok(1 + u64::from(pins.remove(key).is_some()));
    }
    let mode = PinMode::from_byte(tag).ok_or_else(|| PinError::BadRecord {
        key: key.to_vec(),
        reason: format!("unknown mode {tag:02x}"),
    })?;
    Ok(u64::from(pins.insert(key.into(), mode).is_some()))
}

fn has_old_tree(db: &Db) -> bool {
    db.tree_names()
        .iter()
        .any(|n| n.as_ref() == OLD_TREE.as_bytes())
}

/// The pins an earlier version kept in sled, if it did.
fn from_sled(db: &Db) -> Result<Option<PinMap>, PinError> {
    if !has_old_tree(db) {
        return Ok(None);
    }
    let tree = db.open_tree(OLD_TREE).map_err(sled_err("open tree"))?;
    let mut pins = BTreeMap::new();
    for item in tree.iter() {
        let (key, value) = item.map_err(sled_err("read pin"))?;
        let mode = match value.as_ref() {
            [byte] => PinMode::from_byte(*byte),
            _ => None,
        }
        .ok_or_else(|| PinError::BadRecord {
            key: key.to_vec(),
            reason: format!("unknown mode {value:02x?}"),
        })?;
        pins.insert(key.as_ref().into(), mode);
    }
    Ok(Some(pins))
}

impl Pins {
    /// Open the pin journal in `dir` (the repository), moving pins an earlier version kept in
    /// `db` into it and cutting a torn tail off.
    pub fn open(db: &Db, dir: &Path) -> Result<Self, PinError> {
        let path = dir.join(PINS_JOURNAL);
        let bytes = read(&path).map_err(io_err("read", &path))?;
        let (records, good) = frames(&bytes);
        let mut pins = BTreeMap::new();
        let mut stale = 0u64;
        for record in &records {
            stale += apply(&mut pins, record)?;
        }
        let file = if bytes.is_empty()
            && let Some(old) = from_sled(db)?
        {
            let file = replace(&path, &framed(&old)).map_err(io_err("write", &path))?;
            tracing::info!(
                pins = old.len(),
                "pins moved from sled to {}",
                path.display()
            );
            pins = old;
            file
        } else {
            open_append(&path).map_err(io_err("open", &path))?
        };
        // Written to the journal (now or on an earlier open that crashed before this).
        if has_old_tree(db) {
            db.drop_tree(OLD_TREE).map_err(sled_err("drop tree"))?;
        }
        cut_back(&file, &path, good as u64, bytes.len() as u64)
            .map_err(io_err("cut back", &path))?;
        let mut journal = Journal {
            path,
            file,
            pins,
            stale,
        };
        journal.compact_if_due()?;
        Ok(Self {
            inner: Arc::new(Mutex::new(journal)),
        })
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pin `cid`. Pinning again is a no-op, except that recursive upgrades a direct pin.
    pub fn add(&self, cid: &Cid, mode: PinMode) -> Result<(), PinError> {
        let key = cid.to_bytes();
        let mut j = self.journal();
        let old = j.pins.get(key.as_slice()).copied();
        let new = if old == Some(PinMode::Recursive) {
            PinMode::Recursive
        } else {
            mode
        };
        if old == Some(new) {
            return Ok(());
        }
        j.append(new.to_byte(), &key)?;
        j.stale += u64::from(old.is_some());
        j.pins.insert(key.into(), new);
        j.compact_if_due()
    }

    /// Unpin `cid` exactly as it was pinned (the same CID version); false if it was not.
    pub fn remove(&self, cid: &Cid) -> Result<bool, PinError> {
        let key = cid.to_bytes();
        let mut j = self.journal();
        if !j.pins.contains_key(key.as_slice()) {
            return Ok(false);
        }
        j.append(UNPINNED, &key)?;
        // The pin's record and this one.
        j.stale += 2;
        j.pins.remove(key.as_slice());
        j.compact_if_due()?;
        Ok(true)
    }

    /// How `cid` itself is pinned, if it is (indirect pins are [`Pins::is_pinned`]'s job).
    pub fn get(&self, cid: &Cid) -> Result<Option<PinMode>, PinError> {
        Ok(self.journal().pins.get(cid.to_bytes().as_slice()).copied())
    }

    /// Every pin, in key order.
    pub fn list(&self) -> Result<Vec<(Cid, PinMode)>, PinError> {
        self.journal()
            .pins
            .iter()
            .map(|(key, mode)| {
                let cid = Cid::try_from(&key[..]).map_err(|e| PinError::BadRecord {
                    key: key.to_vec(),
                    reason: e.to_string(),
                })?;
                Ok((cid, *mode))
            })
            .collect()
    }

    /// Whether a block is kept, and why. Matches by multihash: pinning a CIDv0 keeps the block
    /// its CIDv1 names. O(size of the pinned DAGs) for blocks that are not pinned themselves.
    pub fn is_pinned(&self, store: &dyn Blockstore, cid: &Cid) -> Result<PinStatus, PinError> {
        let pins = self.list()?;
        let same_block = |pin: &Cid| pin.hash() == cid.hash();
        let recursive = pins.iter().filter(|(_, m)| *m == PinMode::Recursive);
        if recursive.clone().any(|(pin, _)| same_block(pin)) {
            return Ok(PinStatus::Recursive);
        }
        if pins.iter().any(|(pin, _)| same_block(pin)) {
            return Ok(PinStatus::Direct);
        }
        // One visited set for all roots: a subtree already searched is not searched again.
        let mut seen = HashSet::new();
        for (root, _) in recursive {
            let mut found = false;
            walk_dag(store, root, &mut seen, |block| {
                found = same_block(block);
                !found
            })?;
            if found {
                return Ok(PinStatus::Indirect { via: *root });
            }
        }
        Ok(PinStatus::NotPinned)
    }

    /// Make every pin change so far durable.
    pub fn flush(&self) -> Result<(), PinError> {
        let j = self.journal();
        j.file.sync_data().map_err(io_err("sync", &j.path))
    }
}

#[cfg(test)]
mod tests;
