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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::content::cid::{CODEC_DAG_PB, CODEC_RAW, block_cid};
    use crate::content::dagpb::{PbLink, PbNode};
    use crate::store::memory::MemoryStore;

    fn db() -> (tempfile::TempDir, Db) {
        let tmp = tempfile::tempdir().unwrap();
        let db = ::sled::Config::new()
            .path(tmp.path().join("db"))
            .open()
            .unwrap();
        (tmp, db)
    }

    fn raw(data: &[u8]) -> Cid {
        block_cid(CODEC_RAW, 1, data)
    }

    /// Store a dag-pb node linking to `children`; return its CIDv0.
    fn node(store: &MemoryStore, children: &[Cid], tag: &[u8]) -> Cid {
        let node = PbNode {
            links: children.iter().map(|c| PbLink::new(*c, "", 1)).collect(),
            data: Some(tag.to_vec()),
        };
        let bytes = node.encode();
        let cid = block_cid(CODEC_DAG_PB, 0, &bytes);
        store.put(&cid, &bytes).unwrap();
        cid
    }

    #[test]
    fn add_get_remove_list() {
        let (_tmp, db) = db();
        let pins = Pins::open(&db, _tmp.path()).unwrap();
        let (a, b) = (raw(b"a"), raw(b"b"));
        assert_eq!(pins.get(&a).unwrap(), None);
        pins.add(&a, PinMode::Recursive).unwrap();
        pins.add(&b, PinMode::Direct).unwrap();
        assert_eq!(pins.get(&a).unwrap(), Some(PinMode::Recursive));
        assert_eq!(pins.get(&b).unwrap(), Some(PinMode::Direct));
        let mut listed = pins.list().unwrap();
        listed.sort_by_key(|(c, _)| c.to_bytes());
        let mut expected = vec![(a, PinMode::Recursive), (b, PinMode::Direct)];
        expected.sort_by_key(|(c, _)| c.to_bytes());
        assert_eq!(listed, expected);
        assert!(pins.remove(&a).unwrap());
        assert!(!pins.remove(&a).unwrap());
        assert_eq!(pins.list().unwrap(), vec![(b, PinMode::Direct)]);
    }

    #[test]
    fn recursive_wins_over_direct_in_either_order() {
        let (_tmp, db) = db();
        let pins = Pins::open(&db, _tmp.path()).unwrap();
        let (a, b) = (raw(b"a"), raw(b"b"));
        pins.add(&a, PinMode::Direct).unwrap();
        pins.add(&a, PinMode::Recursive).unwrap();
        pins.add(&b, PinMode::Recursive).unwrap();
        pins.add(&b, PinMode::Direct).unwrap();
        assert_eq!(pins.get(&a).unwrap(), Some(PinMode::Recursive));
        assert_eq!(pins.get(&b).unwrap(), Some(PinMode::Recursive));
    }

    #[test]
    fn pin_remembers_the_cid_version_given() {
        let (_tmp, db) = db();
        let pins = Pins::open(&db, _tmp.path()).unwrap();
        let v0 = block_cid(CODEC_DAG_PB, 0, b"node");
        let v1 = Cid::new_v1(CODEC_DAG_PB, *v0.hash());
        pins.add(&v0, PinMode::Recursive).unwrap();
        assert_eq!(pins.list().unwrap(), vec![(v0, PinMode::Recursive)]);
        assert_eq!(pins.get(&v1).unwrap(), None);
        assert!(!pins.remove(&v1).unwrap());
        let store = MemoryStore::new();
        assert_eq!(pins.is_pinned(&store, &v1).unwrap(), PinStatus::Recursive);
    }

    #[test]
    fn pins_survive_reopening_the_repository() {
        let (tmp, db) = db();
        let (a, b) = (raw(b"a"), raw(b"b"));
        {
            let pins = Pins::open(&db, tmp.path()).unwrap();
            pins.add(&a, PinMode::Direct).unwrap();
            pins.add(&b, PinMode::Direct).unwrap();
            pins.add(&b, PinMode::Recursive).unwrap();
            pins.remove(&a).unwrap();
            pins.add(&a, PinMode::Recursive).unwrap();
            pins.flush().unwrap();
        }
        let pins = Pins::open(&db, tmp.path()).unwrap();
        assert_eq!(pins.get(&a).unwrap(), Some(PinMode::Recursive));
        assert_eq!(pins.get(&b).unwrap(), Some(PinMode::Recursive));
        assert_eq!(pins.list().unwrap().len(), 2);
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_the_rest_kept() {
        let (tmp, db) = db();
        let (a, b) = (raw(b"a"), raw(b"b"));
        {
            let pins = Pins::open(&db, tmp.path()).unwrap();
            pins.add(&a, PinMode::Recursive).unwrap();
            pins.add(&b, PinMode::Recursive).unwrap();
        }
        let path = tmp.path().join(PINS_JOURNAL);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 5).unwrap();
        drop(f);
        {
            let pins = Pins::open(&db, tmp.path()).unwrap();
            assert_eq!(pins.list().unwrap(), vec![(a, PinMode::Recursive)]);
            // Appends go after the last whole record, not after the torn bytes.
            pins.add(&b, PinMode::Direct).unwrap();
        }
        let pins = Pins::open(&db, tmp.path()).unwrap();
        assert_eq!(pins.get(&a).unwrap(), Some(PinMode::Recursive));
        assert_eq!(pins.get(&b).unwrap(), Some(PinMode::Direct));
    }

    #[test]
    fn churn_is_compacted_away() {
        let (tmp, db) = db();
        let keep = raw(b"keep");
        let path = tmp.path().join(PINS_JOURNAL);
        {
            let pins = Pins::open(&db, tmp.path()).unwrap();
            pins.add(&keep, PinMode::Recursive).unwrap();
            for i in 0..3 * MIN_GROWTH {
                let c = raw(&i.to_le_bytes());
                pins.add(&c, PinMode::Direct).unwrap();
                pins.remove(&c).unwrap();
            }
            let records = frames(&std::fs::read(&path).unwrap()).0.len() as u64;
            assert!(
                records <= 2 * MIN_GROWTH + 2,
                "{records} records for one pin: the journal was not rewritten"
            );
        }
        let pins = Pins::open(&db, tmp.path()).unwrap();
        assert_eq!(pins.list().unwrap(), vec![(keep, PinMode::Recursive)]);
    }

    #[test]
    fn pins_kept_in_sled_by_earlier_versions_are_moved_to_the_journal() {
        let (tmp, db) = db();
        let (a, b) = (raw(b"a"), raw(b"b"));
        let tree = db.open_tree(OLD_TREE).unwrap();
        tree.insert(a.to_bytes(), &[RECURSIVE]).unwrap();
        tree.insert(b.to_bytes(), &[DIRECT]).unwrap();
        drop(tree);
        {
            let pins = Pins::open(&db, tmp.path()).unwrap();
            assert_eq!(pins.get(&a).unwrap(), Some(PinMode::Recursive));
            assert_eq!(pins.get(&b).unwrap(), Some(PinMode::Direct));
        }
        assert!(
            !db.tree_names()
                .iter()
                .any(|n| n.as_ref() == OLD_TREE.as_bytes()),
            "the old tree is dropped"
        );
        let pins = Pins::open(&db, tmp.path()).unwrap();
        assert_eq!(pins.list().unwrap().len(), 2, "and the journal has them");
    }

    #[test]
    fn is_pinned_derives_indirect_through_the_dag() {
        let (_tmp, db) = db();
        let pins = Pins::open(&db, _tmp.path()).unwrap();
        let store = MemoryStore::new();
        let leaf = raw(b"leaf");
        store.put(&leaf, b"leaf").unwrap();
        let missing = raw(b"never stored");
        let mid = node(&store, &[missing, leaf], b"mid");
        let root = node(&store, &[mid], b"root");
        let lone = raw(b"lone");
        let other = raw(b"other");
        pins.add(&root, PinMode::Recursive).unwrap();
        pins.add(&lone, PinMode::Direct).unwrap();

        assert_eq!(pins.is_pinned(&store, &root).unwrap(), PinStatus::Recursive);
        assert_eq!(pins.is_pinned(&store, &lone).unwrap(), PinStatus::Direct);
        let via_root = PinStatus::Indirect { via: root };
        assert_eq!(pins.is_pinned(&store, &mid).unwrap(), via_root);
        assert_eq!(pins.is_pinned(&store, &leaf).unwrap(), via_root);
        assert_eq!(
            pins.is_pinned(&store, &other).unwrap(),
            PinStatus::NotPinned
        );
    }

    #[test]
    fn damaged_record_is_reported_not_ignored() {
        let (tmp, db) = db();
        let a = raw(b"a");
        // A whole frame (its checksum holds) with a mode no version writes.
        let mut bytes = Vec::new();
        put_frame(&mut bytes, &payload(b'X', &a.to_bytes()));
        std::fs::write(tmp.path().join(PINS_JOURNAL), &bytes).unwrap();
        let err = Pins::open(&db, tmp.path()).unwrap_err();
        assert!(matches!(err, PinError::BadRecord { .. }), "{err}");
        assert!(err.to_string().contains("unknown mode"), "{err}");
        assert_eq!(
            std::fs::read(tmp.path().join(PINS_JOURNAL)).unwrap(),
            bytes,
            "nothing is cut or rewritten"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the journal holds, opening it ends in pins or a named error.
        #[test]
        fn any_journal_opens_or_is_refused_by_name(
            records in proptest::collection::vec(
                (proptest::sample::select(vec![RECURSIVE, DIRECT, UNPINNED, b'X']),
                 proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)),
                0..8,
            ),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
        ) {
            let (tmp, db) = db();
            let mut bytes = Vec::new();
            for (tag, key) in &records {
                put_frame(&mut bytes, &payload(*tag, key));
            }
            bytes.extend_from_slice(&tail);
            std::fs::write(tmp.path().join(PINS_JOURNAL), &bytes).unwrap();
            match Pins::open(&db, tmp.path()) {
                Ok(pins) => {
                    if let Err(e) = pins.list() {
                        proptest::prop_assert!(matches!(e, PinError::BadRecord { .. }), "{e}");
                    }
                }
                Err(e) => proptest::prop_assert!(matches!(e, PinError::BadRecord { .. }), "{e}"),
            }
        }
    }

    #[test]
    fn a_damaged_old_sled_record_stops_the_move() {
        let (tmp, db) = db();
        db.open_tree(OLD_TREE)
            .unwrap()
            .insert(raw(b"a").to_bytes(), b"X")
            .unwrap();
        let err = Pins::open(&db, tmp.path()).unwrap_err();
        assert!(matches!(err, PinError::BadRecord { .. }), "{err}");
        assert!(
            db.tree_names()
                .iter()
                .any(|n| n.as_ref() == OLD_TREE.as_bytes()),
            "the tree is kept while it cannot be moved"
        );
    }
}
