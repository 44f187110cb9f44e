//! The cluster's durable state: an append-only journal, `<repo>/cluster.journal`, of the
//! pinset's entries (CID → [`Entry`] as a [`record`]), drain flags (peer → JSON
//! [`DrainEntry`]), the tombstone horizon, and which CIDs this node pinned locally on the
//! cluster's behalf (so releasing a copy never removes a pin the user made by hand).
//!
//! The pinset lives in memory anyway ([`super::core`]); keeping it in sled as well held a
//! second, larger copy in sled's page cache (about 300 bytes per pin and per held CID). The
//! journal is only read at start, and rewritten with the live records alone once it has
//! grown to twice what it held after the last rewrite. Framing and torn-tail handling:
//! [`super::journal`]. Repositories whose cluster state is still in sled trees
//! (`cluster_pins`, `cluster_drains`, `cluster_held`, `cluster_meta`) are moved to the
//! journal on first open, and the trees dropped.
//!
//! Payloads: `0x01 key_len: u16 LE, cid, record` (pin entry), `0x02 cid` (entry removed),
//! `0x03 key_len: u16 LE, peer, JSON` (drain), `0x04 horizon: u64 BE`, `0x05 cid` (held),
//! `0x06 cid` (no longer held).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use sled::Db;
use thiserror::Error;

use super::membership::{HeldKey, held_key};
use super::pinset::{DrainEntry, Entry, Pinset};
use super::record;
use crate::store::journal::{cut_back, frames, open_append, put_frame, read, replace};

/// A cluster state read or write that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterStoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sled {op}: {source}; the datastore may be damaged, run `repo verify`")]
    Sled {
        op: &'static str,
        source: sled::Error,
    },
    #[error("cluster record {key:?} is damaged: {reason}")]
    BadRecord { key: String, reason: String },
}

fn sled_err(op: &'static str) -> impl Fn(sled::Error) -> ClusterStoreError {
    move |source| ClusterStoreError::Sled { op, source }
}

/// The journal's file name in the repository.
pub const JOURNAL: &str = "cluster.journal";

const PIN: u8 = 1;
const UNPIN: u8 = 2;
const DRAIN: u8 = 3;
const HORIZON: u8 = 4;
const HELD: u8 = 5;
const UNHELD: u8 = 6;

/// The journal is rewritten once it has this many records more than its last rewrite left,
/// and at least as many as that rewrite left.
const MIN_GROWTH: u64 = 4096;

/// The old sled trees.
const TREES: [&str; 4] = [
    "cluster_pins",
    "cluster_drains",
    "cluster_held",
    "cluster_meta",
];

/// Handle on the journal.
#[derive(Debug, Clone)]
pub struct ClusterStore {
    inner: Arc<Mutex<Journal>>,
}

#[derive(Debug)]
struct Journal {
    path: PathBuf,
    file: File,
    /// Records appended since the last rewrite, and how many that rewrite left.
    appended: u64,
    live: u64,
    /// The held CIDs' keys (as members' held sets keep them): enough to answer `is_held`.
    held: HashSet<HeldKey>,
}

/// The record under `key` could not be read.
fn bad_record(key: &[u8], reason: impl std::fmt::Display) -> ClusterStoreError {
    ClusterStoreError::BadRecord {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.to_string(),
    }
}

/// What a journal holds once replayed.
#[derive(Debug, Default)]
struct State {
    pinset: Pinset,
    held: BTreeMap<String, ()>,
}

impl State {
    fn records(&self) -> u64 {
        let n = self.pinset.pins.len() + self.pinset.drains.len() + self.held.len() + 1;
        n as u64
    }

    /// Every record of this state, framed.
    fn frames(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (cid, entry) in &self.pinset.pins {
            put_frame(&mut out, &keyed(PIN, cid, &record::encode(entry)));
        }
        for (peer, entry) in &self.pinset.drains {
            if let Ok(json) = serde_json::to_vec(entry) {
                put_frame(&mut out, &keyed(DRAIN, peer, &json));
            }
        }
        put_frame(&mut out, &horizon(self.pinset.horizon));
        for cid in self.held.keys() {
            put_frame(&mut out, &tagged(HELD, cid));
        }
        out
    }

    fn apply(&mut self, payload: &[u8]) -> Result<(), ClusterStoreError> {
        let (&tag, body) = payload
            .split_first()
            .ok_or_else(|| bad_record(b"", "empty journal record"))?;
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|e| bad_record(b, e))
        };
        match tag {
            PIN | DRAIN => {
                let (key, value) = split_keyed(body)?;
                let key = text(key)?;
                if tag == PIN {
                    let entry = record::decode(value).map_err(|e| bad_record(key.as_bytes(), e))?;
                    self.pinset.pins.insert(key.into(), entry);
                } else {
                    let entry: DrainEntry =
                        serde_json::from_slice(value).map_err(|e| bad_record(key.as_bytes(), e))?;
                    self.pinset.drains.insert(key, entry);
                }
            }
            UNPIN => {
                self.pinset.pins.remove(text(body)?.as_str());
            }
            HORIZON => {
                let bytes: [u8; 8] = body
                    .try_into()
                    .map_err(|_| bad_record(b"horizon", format!("{} bytes, not 8", body.len())))?;
                self.pinset.horizon = u64::from_be_bytes(bytes);
            }
            HELD => {
                self.held.insert(text(body)?, ());
            }
            UNHELD => {
                self.held.remove(&text(body)?);
            }
            other => {
                return Err(bad_record(
                    b"",
                    format!("unknown journal record type {other}"),
                ));
            }
        }
        Ok(())
    }
}

fn tagged(tag: u8, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(tag);
    out.extend_from_slice(key.as_bytes());
    out
}

fn keyed(tag: u8, key: &str, value: &[u8]) -> Vec<u8> {
    // CIDs and peer IDs are far shorter than 64 KiB; a longer key would be cut, and then
    // fail to read back as UTF-8 or as the same key, never silently merge with another.
    let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(3 + key.len() + value.len());
    out.push(tag);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&key.as_bytes()[..usize::from(len)]);
    out.extend_from_slice(value);
    out
}

fn split_keyed(body: &[u8]) -> Result<(&[u8], &[u8]), ClusterStoreError> {
    let short = || bad_record(b"", "journal record ends inside its key");
    let len = body.get(..2).ok_or_else(short)?;
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let key = body.get(2..2 + len).ok_or_else(short)?;
    Ok((key, &body[2 + len..]))
}

fn horizon(h: u64) -> Vec<u8> {
    let mut out = vec![HORIZON];
    out.extend_from_slice(&h.to_be_bytes());
    out
}

fn io_err(op: &'static str, path: &Path) -> impl Fn(std::io::Error) -> ClusterStoreError {
    let path = path.to_owned();
    move |source| ClusterStoreError::Io {
        op,
        path: path.clone(),
        source,
    }
}

/// Replay the journal at `path` (missing: empty). Returns the state and the length of its
/// whole frames.
fn replay(path: &Path) -> Result<(State, u64, usize, u64), ClusterStoreError> {
    let bytes = read(path).map_err(io_err("read", path))?;
    let (payloads, good) = frames(&bytes);
    let mut state = State::default();
    for p in &payloads {
        state.apply(p)?;
    }
    Ok((state, payloads.len() as u64, good, bytes.len() as u64))
}

/// Write `state` as a fresh journal at `path`.
fn rewrite(path: &Path, state: &State) -> Result<File, ClusterStoreError> {
    replace(path, &state.frames()).map_err(io_err("rewrite", path))
}

/// The cluster state still kept in sled trees by earlier versions, if any.
fn from_sled(db: &Db) -> Result<Option<State>, ClusterStoreError> {
    let names = db.tree_names();
    if !TREES
        .iter()
        .any(|t| names.iter().any(|n| n.as_ref() == t.as_bytes()))
    {
        return Ok(None);
    }
    let open = |name: &str| db.open_tree(name).map_err(sled_err("open tree"));
    let mut state = State::default();
    for item in open(TREES[0])?.iter() {
        let (k, v) = item.map_err(sled_err("read"))?;
        let entry = record::decode(&v).map_err(|e| bad_record(&k, e))?;
        state
            .pinset
            .pins
            .insert(String::from_utf8_lossy(&k).into(), entry);
    }
    for item in open(TREES[1])?.iter() {
        let (k, v) = item.map_err(sled_err("read"))?;
        let entry: DrainEntry = serde_json::from_slice(&v).map_err(|e| bad_record(&k, e))?;
        state
            .pinset
            .drains
            .insert(String::from_utf8_lossy(&k).into_owned(), entry);
    }
    for k in open(TREES[2])?.iter().keys() {
        let k = k.map_err(sled_err("read"))?;
        state
            .held
            .insert(String::from_utf8_lossy(&k).into_owned(), ());
    }
    if let Some(v) = open(TREES[3])?.get(b"horizon").map_err(sled_err("read"))? {
        let bytes: [u8; 8] = v
            .as_ref()
            .try_into()
            .map_err(|_| bad_record(b"horizon", format!("{} bytes, not 8", v.len())))?;
        state.pinset.horizon = u64::from_be_bytes(bytes);
    }
    Ok(Some(state))
}

impl ClusterStore {
    /// Open the journal in `dir`, moving state an earlier version kept in `db` into it, and
    /// cutting a torn tail off.
    pub fn open(db: &Db, dir: &Path) -> Result<Self, ClusterStoreError> {
        let path = dir.join(JOURNAL);
        let (mut state, mut records, good, len) = replay(&path)?;
        let fresh = len == 0;
        let mut file = if fresh && let Some(old) = from_sled(db)? {
            let file = rewrite(&path, &old)?;
            for t in TREES {
                db.drop_tree(t).map_err(sled_err("drop tree"))?;
            }
            tracing::info!(
                pins = old.pinset.pins.len(),
                "cluster state moved from sled to {}",
                path.display()
            );
            records = old.records();
            state = old;
            file
        } else {
            open_append(&path).map_err(io_err("open", &path))?
        };
        cut_back(&file, &path, good as u64, len).map_err(io_err("cut back", &path))?;
        let live = state.records();
        if records > 2 * live + MIN_GROWTH {
            file = rewrite(&path, &state)?;
            records = live;
        }
        let held = state.held.keys().map(|c| held_key(c)).collect();
        Ok(Self {
            inner: Arc::new(Mutex::new(Journal {
                path,
                file,
                appended: records.saturating_sub(live),
                live,
                held,
            })),
        })
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The persisted pinset.
    pub fn load(&self) -> Result<Pinset, ClusterStoreError> {
        let path = self.journal().path.clone();
        Ok(replay(&path)?.0.pinset)
    }

    /// Append framed `payloads`; rewrite the journal when it has doubled.
    fn append(&self, payloads: &[Vec<u8>]) -> Result<(), ClusterStoreError> {
        if payloads.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for p in payloads {
            put_frame(&mut bytes, p);
        }
        let mut j = self.journal();
        let path = j.path.clone();
        j.file
            .write_all(&bytes)
            .map_err(io_err("append to", &path))?;
        j.appended += payloads.len() as u64;
        if j.appended > j.live.max(MIN_GROWTH) {
            j.file.sync_data().map_err(io_err("sync", &path))?;
            let (state, ..) = replay(&path)?;
            j.file = rewrite(&path, &state)?;
            j.live = state.records();
            j.appended = 0;
            tracing::debug!(records = j.live, "cluster journal rewritten");
        }
        Ok(())
    }

    /// Delete the entry of `cid` (a pruned tombstone).
    pub fn remove_pin(&self, cid: &str) -> Result<(), ClusterStoreError> {
        self.append(&[tagged(UNPIN, cid)])
    }

    pub fn set_horizon(&self, h: u64) -> Result<(), ClusterStoreError> {
        self.append(&[horizon(h)])
    }

    /// Write pin entries, all in one append.
    pub fn put_pins<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a Entry)>,
    ) -> Result<(), ClusterStoreError> {
        let payloads: Vec<Vec<u8>> = entries
            .into_iter()
            .map(|(cid, entry)| keyed(PIN, cid, &record::encode(entry)))
            .collect();
        self.append(&payloads)
    }

    pub fn put_drain(&self, peer: &str, entry: &DrainEntry) -> Result<(), ClusterStoreError> {
        let json = serde_json::to_vec(entry).map_err(|e| bad_record(peer.as_bytes(), e))?;
        self.append(&[keyed(DRAIN, peer, &json)])
    }

    /// CIDs this node pinned for the cluster.
    pub fn held(&self) -> Result<Vec<String>, ClusterStoreError> {
        let path = self.journal().path.clone();
        Ok(replay(&path)?.0.held.into_keys().collect())
    }

    pub fn is_held(&self, cid: &str) -> Result<bool, ClusterStoreError> {
        Ok(self.journal().held.contains(&held_key(cid)))
    }

    /// Record that our local pin of `cid` is (or no longer is) the cluster's. Synced before
    /// it returns: a held flag lost in a crash would leave a cluster copy that is never
    /// released.
    pub fn set_held(&self, cid: &str, held: bool) -> Result<(), ClusterStoreError> {
        let key = held_key(cid);
        let changed = if held {
            self.journal().held.insert(key)
        } else {
            self.journal().held.remove(&key)
        };
        if changed {
            self.append(&[tagged(if held { HELD } else { UNHELD }, cid)])?;
            self.flush()?;
        }
        Ok(())
    }

    /// Make every append so far durable.
    pub fn flush(&self) -> Result<(), ClusterStoreError> {
        let j = self.journal();
        j.file.sync_data().map_err(io_err("sync", &j.path))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::cluster::pinset::{PinSpec, Stamp};

    fn entry(time: u64) -> Entry {
        Entry {
            stamp: Stamp {
                time,
                peer: "p".into(),
            },
            pin: Some(PinSpec {
                name: "n".into(),
                replication_min: 2,
                replication_max: 3,
                size: Some(5),
                created_ms: 1,
                metadata: Default::default(),
            }),
        }
    }

    fn open(dir: &Path) -> ClusterStore {
        let db = sled::open(dir.join("db")).unwrap();
        ClusterStore::open(&db, dir).unwrap()
    }

    #[test]
    fn pinset_and_held_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let drain = DrainEntry {
            stamp: Stamp {
                time: 3,
                peer: "q".into(),
            },
            draining: true,
        };
        {
            let s = open(dir.path());
            s.put_pins([("cid", &entry(7)), ("gone", &entry(7))])
                .unwrap();
            s.remove_pin("gone").unwrap();
            s.set_horizon(42).unwrap();
            s.put_drain("peer", &drain).unwrap();
            s.set_held("cid", true).unwrap();
            s.set_held("was", true).unwrap();
            s.set_held("was", false).unwrap();
            s.flush().unwrap();
        }
        let s = open(dir.path());
        let set = s.load().unwrap();
        assert_eq!(set.pins["cid"], entry(7));
        assert_eq!(set.pins.len(), 1);
        assert_eq!(set.drains["peer"], drain);
        assert_eq!(set.horizon, 42);
        assert_eq!(s.held().unwrap(), vec!["cid".to_owned()]);
        assert!(s.is_held("cid").unwrap());
        assert!(!s.is_held("was").unwrap());
    }

    #[test]
    fn a_torn_tail_is_cut_and_later_appends_are_read() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path());
            s.put_pins([("a", &entry(1)), ("b", &entry(2))]).unwrap();
            s.flush().unwrap();
        }
        let path = dir.path().join(JOURNAL);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        {
            let s = open(dir.path());
            assert_eq!(
                s.load()
                    .unwrap()
                    .pins
                    .keys()
                    .map(|k| &**k)
                    .collect::<Vec<_>>(),
                ["a"],
                "the torn record is dropped, the whole one kept"
            );
            s.put_pins([("c", &entry(3))]).unwrap();
            s.flush().unwrap();
        }
        let set = open(dir.path()).load().unwrap();
        assert_eq!(
            set.pins.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["a", "c"]
        );
    }

    #[test]
    fn the_journal_is_rewritten_once_it_has_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let s = open(dir.path());
        s.put_pins([("kept", &entry(1))]).unwrap();
        s.set_held("kept", true).unwrap();
        for round in 0..(3 * MIN_GROWTH) {
            s.put_pins([("churn", &entry(round))]).unwrap();
        }
        s.flush().unwrap();
        // Without rewrites the file would hold every one of the 3 × MIN_GROWTH + 2 records.
        let bytes = std::fs::read(&path).unwrap();
        let records = frames(&bytes).0.len() as u64;
        assert!(records <= MIN_GROWTH + 4, "{records} records");
        drop(s);
        let s = open(dir.path());
        let set = s.load().unwrap();
        assert_eq!(set.pins.len(), 2);
        assert_eq!(set.pins["churn"], entry(3 * MIN_GROWTH - 1));
        assert!(s.is_held("kept").unwrap());
    }

    #[test]
    fn state_in_sled_trees_moves_to_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            db.open_tree("cluster_pins")
                .unwrap()
                .insert("old", serde_json::to_vec(&entry(9)).unwrap())
                .unwrap();
            db.open_tree("cluster_held")
                .unwrap()
                .insert("old", &[])
                .unwrap();
            db.open_tree("cluster_meta")
                .unwrap()
                .insert("horizon", &5u64.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let db = sled::open(dir.path().join("db")).unwrap();
        let s = ClusterStore::open(&db, dir.path()).unwrap();
        let set = s.load().unwrap();
        assert_eq!(set.pins["old"], entry(9));
        assert_eq!(set.horizon, 5);
        assert!(s.is_held("old").unwrap());
        assert!(
            !db.tree_names()
                .iter()
                .any(|n| n.as_ref() == b"cluster_pins"),
            "the old trees are dropped"
        );
    }

    #[test]
    fn a_damaged_record_inside_a_whole_frame_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        put_frame(&mut bytes, &keyed(PIN, "cid", b"\x09junk"));
        std::fs::write(dir.path().join(JOURNAL), bytes).unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let err = ClusterStore::open(&db, dir.path()).unwrap_err();
        assert!(err.to_string().contains("\"cid\" is damaged"), "{err}");
    }
}
