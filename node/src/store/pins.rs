//! Local pins: the roots the user asked to keep, persisted in a `pins` tree of the repo's
//! metadata database.
//!
//! A record is keyed by the CID bytes the user gave (v0 or v1 is remembered as given) and holds
//! one byte of [`PinMode`]. A recursive pin keeps a whole DAG and wins over a direct pin of the
//! same CID, which keeps one block. Indirect pins are not stored: [`Pins::is_pinned`] derives
//! them by walking the recursive pins' DAGs, and GC marks the same way.

use std::collections::HashSet;

use ::sled::{Db, IVec, Tree};
use cid::Cid;
use thiserror::Error;

use super::walk::walk_dag;
use super::{Blockstore, StoreError};

/// Name of the tree holding the pins.
pub const PINS_TREE: &str = "pins";

const RECURSIVE: u8 = b'R';
const DIRECT: u8 = b'D';

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
    #[error("sled {op}: {source}; the datastore may be damaged, run `repo verify`")]
    Sled {
        op: &'static str,
        source: ::sled::Error,
    },
    #[error("pin record {key:02x?} is damaged ({reason}); remove it and pin the CID again")]
    BadRecord { key: Vec<u8>, reason: String },
    #[error("walking pinned DAGs: {0}")]
    Store(#[from] StoreError),
}

fn sled_err(op: &'static str) -> impl Fn(::sled::Error) -> PinError {
    move |source| PinError::Sled { op, source }
}

/// The local pin set.
#[derive(Debug, Clone)]
pub struct Pins {
    tree: Tree,
}

impl Pins {
    /// Open (or create) the `pins` tree of `db`.
    pub fn new(db: &Db) -> Result<Self, PinError> {
        let tree = db.open_tree(PINS_TREE).map_err(sled_err("open tree"))?;
        Ok(Self { tree })
    }

    /// Pin `cid`. Pinning again is a no-op, except that recursive upgrades a direct pin.
    pub fn add(&self, cid: &Cid, mode: PinMode) -> Result<(), PinError> {
        self.tree
            .update_and_fetch(cid.to_bytes(), |old| {
                let keep_recursive = old.is_some_and(|v| v == [RECURSIVE]);
                let byte = if keep_recursive {
                    RECURSIVE
                } else {
                    mode.to_byte()
                };
                Some(vec![byte])
            })
            .map_err(sled_err("write pin"))?;
        Ok(())
    }

    /// Unpin `cid` exactly as it was pinned (the same CID version); false if it was not.
    pub fn remove(&self, cid: &Cid) -> Result<bool, PinError> {
        let old = self
            .tree
            .remove(cid.to_bytes())
            .map_err(sled_err("remove pin"))?;
        Ok(old.is_some())
    }

    /// How `cid` itself is pinned, if it is (indirect pins are [`Pins::is_pinned`]'s job).
    pub fn get(&self, cid: &Cid) -> Result<Option<PinMode>, PinError> {
        let key = cid.to_bytes();
        match self.tree.get(&key).map_err(sled_err("read pin"))? {
            Some(value) => decode_mode(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    /// Every pin, in key order.
    pub fn list(&self) -> Result<Vec<(Cid, PinMode)>, PinError> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(sled_err("list pins"))?;
                let cid = Cid::try_from(key.as_ref()).map_err(|e| PinError::BadRecord {
                    key: key.to_vec(),
                    reason: e.to_string(),
                })?;
                Ok((cid, decode_mode(&key, &value)?))
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
        self.tree.flush().map_err(sled_err("flush"))?;
        Ok(())
    }
}

fn decode_mode(key: &[u8], value: &IVec) -> Result<PinMode, PinError> {
    match value.as_ref() {
        [byte] => PinMode::from_byte(*byte),
        _ => None,
    }
    .ok_or_else(|| PinError::BadRecord {
        key: key.to_vec(),
        reason: format!("unknown mode {value:02x?}"),
    })
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
        let pins = Pins::new(&db).unwrap();
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
        let pins = Pins::new(&db).unwrap();
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
        let pins = Pins::new(&db).unwrap();
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
    fn pins_survive_reopening_the_database() {
        let tmp = tempfile::tempdir().unwrap();
        let a = raw(b"a");
        {
            let db = ::sled::Config::new().path(tmp.path()).open().unwrap();
            Pins::new(&db).unwrap().add(&a, PinMode::Direct).unwrap();
            db.flush().unwrap();
        }
        let db = ::sled::Config::new().path(tmp.path()).open().unwrap();
        let pins = Pins::new(&db).unwrap();
        assert_eq!(pins.get(&a).unwrap(), Some(PinMode::Direct));
    }

    #[test]
    fn is_pinned_derives_indirect_through_the_dag() {
        let (_tmp, db) = db();
        let pins = Pins::new(&db).unwrap();
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
        let (_tmp, db) = db();
        let pins = Pins::new(&db).unwrap();
        let a = raw(b"a");
        db.open_tree(PINS_TREE)
            .unwrap()
            .insert(a.to_bytes(), b"X")
            .unwrap();
        assert!(matches!(pins.get(&a), Err(PinError::BadRecord { .. })));
        assert!(matches!(pins.list(), Err(PinError::BadRecord { .. })));
    }
}
