//! Garbage collection and verification of a block store against the local pins.
//!
//! [`gc`] marks every block reachable from a recursive pin plus every directly pinned block,
//! then sweeps the rest, then has the store compact itself (packs give back deleted blocks'
//! space only then). A block missing from a pinned DAG is reported, not fatal; a pinned block
//! whose links cannot be decoded aborts the collection before anything is removed, since its
//! children cannot be told apart from garbage. [`verify`] re-hashes every stored block, removes
//! the corrupt ones, and lists what each pin is missing.
//!
//! Neither holds a lock over the store: run them when no import is adding blocks that are not
//! yet pinned (the repo lock keeps other processes out; within a process that is the caller's
//! job).

use std::collections::HashSet;

use cid::Cid;
use thiserror::Error;

use super::pins::{PinError, PinMode, Pins};
use super::walk::walk_dag;
use super::{Blockstore, Multihash, StoreError, matches_multihash};
use crate::content::cid::CODEC_RAW;
use crate::content::links::LinksError;

/// What a garbage collection did.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Multihashes of the blocks removed.
    pub removed: Vec<Multihash>,
    /// Bytes those blocks took.
    pub freed_bytes: u64,
    /// Disk space given back by compacting the store after the sweep (pack files).
    pub reclaimed_bytes: u64,
    /// Number of stored blocks kept because a pin reaches them.
    pub kept: u64,
    /// Blocks pinned DAGs link to but the store lacks: `(pin, missing block)`.
    pub missing: Vec<(Cid, Cid)>,
}

/// What `repo verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Number of stored blocks re-hashed.
    pub checked: u64,
    /// Blocks whose bytes did not match their multihash; they have been removed.
    pub corrupt: Vec<Multihash>,
    /// Blocks under a hash function we cannot compute; kept.
    pub unverifiable: Vec<Multihash>,
    /// Pins whose blocks are not all present and readable.
    pub incomplete: Vec<IncompletePin>,
}

impl VerifyReport {
    /// Whether the store is sound: nothing corrupt, unverifiable or missing.
    pub fn is_healthy(&self) -> bool {
        self.corrupt.is_empty() && self.unverifiable.is_empty() && self.incomplete.is_empty()
    }
}

/// A pin whose DAG cannot be fully read from the store.
#[derive(Debug)]
pub struct IncompletePin {
    pub root: Cid,
    pub mode: PinMode,
    /// Blocks of the DAG not in the store.
    pub missing: Vec<Cid>,
    /// Blocks of the DAG whose links could not be decoded.
    pub undecodable: Vec<Cid>,
}

/// A garbage collection or verification that could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GcError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pins(#[from] PinError),
    /// `source` names the block; its children are unknown, so nothing could be swept safely.
    #[error("pinned DAG {root}: {source}; nothing was removed: run `repo verify`, or unpin {root}")]
    Undecodable { root: Cid, source: Box<LinksError> },
}

/// Remove every block no pin reaches, then compact the store to give their space back.
pub fn gc(store: &dyn Blockstore, pins: &Pins) -> Result<GcReport, GcError> {
    let mut report = GcReport::default();
    let mut marked = HashSet::new();
    let pinned = pins.list()?;
    for (root, _) in pinned.iter().filter(|(_, m)| *m == PinMode::Recursive) {
        let walk = walk_dag(store, root, &mut marked, |_| true)?;
        if let Some((_, source)) = walk.undecodable.into_iter().next() {
            return Err(GcError::Undecodable {
                root: *root,
                source: Box::new(source),
            });
        }
        report
            .missing
            .extend(walk.missing.into_iter().map(|m| (*root, m)));
    }
    // Direct pins are marked after the walks, so that a walk never skips a directly pinned
    // block's children as already seen.
    marked.extend(pinned.iter().map(|(cid, _)| *cid.hash()));

    let mut doomed = Vec::new();
    for mh in store.keys()? {
        let mh = mh?;
        if marked.contains(&mh) {
            report.kept += 1;
        } else {
            doomed.push(mh);
        }
    }
    for mh in doomed {
        let size = store.block_size(&Cid::new_v1(CODEC_RAW, mh))?;
        if store.delete_multihash(&mh)? {
            report.freed_bytes += size.unwrap_or(0);
            report.removed.push(mh);
        }
    }
    store.flush()?;
    report.reclaimed_bytes = store.compact()?;
    tracing::info!(
        removed = report.removed.len(),
        freed_bytes = report.freed_bytes,
        reclaimed_bytes = report.reclaimed_bytes,
        kept = report.kept,
        missing = report.missing.len(),
        "garbage collection done"
    );
    Ok(report)
}

/// Re-hash every stored block (removing corrupt ones), then check every pin is complete.
pub fn verify(store: &dyn Blockstore, pins: &Pins) -> Result<VerifyReport, GcError> {
    let mut report = VerifyReport::default();
    let keys: Vec<Multihash> = store.keys()?.collect::<Result<_, _>>()?;
    for mh in keys {
        let Some(data) = store.get_unverified(&mh)? else {
            continue;
        };
        report.checked += 1;
        match matches_multihash(&mh, &data) {
            Ok(true) => {}
            Ok(false) => {
                store.delete_multihash(&mh)?;
                tracing::warn!(key = ?mh, size = data.len(), "corrupt block deleted");
                report.corrupt.push(mh);
            }
            Err(StoreError::UnsupportedHash { .. }) => report.unverifiable.push(mh),
            Err(e) => return Err(e.into()),
        }
    }
    for (root, mode) in pins.list()? {
        let (missing, undecodable) = match mode {
            PinMode::Recursive => {
                let walk = walk_dag(store, &root, &mut HashSet::new(), |_| true)?;
                let undecodable = walk.undecodable.into_iter().map(|(c, _)| c).collect();
                (walk.missing, undecodable)
            }
            PinMode::Direct if store.has(&root)? => (Vec::new(), Vec::new()),
            PinMode::Direct => (vec![root], Vec::new()),
        };
        if !missing.is_empty() || !undecodable.is_empty() {
            report.incomplete.push(IncompletePin {
                root,
                mode,
                missing,
                undecodable,
            });
        }
    }
    store.flush()?;
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::content::cid::{CODEC_DAG_PB, block_cid};
    use crate::content::dagpb::{PbLink, PbNode};
    use crate::store::memory::MemoryStore;

    struct Fixture {
        _tmp: tempfile::TempDir,
        store: MemoryStore,
        pins: Pins,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let db = ::sled::Config::new().path(tmp.path()).open().unwrap();
        let pins = Pins::open(&db, tmp.path()).unwrap();
        Fixture {
            _tmp: tmp,
            store: MemoryStore::new(),
            pins,
        }
    }

    impl Fixture {
        fn raw(&self, data: &[u8]) -> Cid {
            let cid = block_cid(CODEC_RAW, 1, data);
            self.store.put(&cid, data).unwrap();
            cid
        }

        fn node(&self, children: &[Cid], tag: &[u8]) -> Cid {
            let links = children.iter().map(|c| PbLink::new(*c, "", 1)).collect();
            let bytes = PbNode {
                links,
                data: Some(tag.to_vec()),
            }
            .encode();
            let cid = block_cid(CODEC_DAG_PB, 0, &bytes);
            self.store.put(&cid, &bytes).unwrap();
            cid
        }

        fn stored(&self, cid: &Cid) -> bool {
            self.store.has(cid).unwrap()
        }
    }

    fn sorted(mut v: Vec<Multihash>) -> Vec<Multihash> {
        v.sort_by_key(|m| m.to_bytes());
        v
    }

    #[test]
    fn sweeping_a_pack_store_compacts_it_and_reports_the_space() {
        use crate::store::pack::PackStore;
        let tmp = tempfile::tempdir().unwrap();
        let db = ::sled::Config::new()
            .path(tmp.path().join("db"))
            .open()
            .unwrap();
        let pins = Pins::open(&db, tmp.path()).unwrap();
        let store = PackStore::open(&db, &tmp.path().join("packs")).unwrap();
        let put = |fill: u8| {
            let data = vec![fill; 100_000];
            let cid = block_cid(CODEC_RAW, 1, &data);
            store.put(&cid, &data).unwrap();
            cid
        };
        // Two thirds of the pack become dead, past the half that triggers compaction.
        let (kept, garbage) = (put(1), [put(2), put(3)]);
        pins.add(&kept, PinMode::Direct).unwrap();

        let report = gc(&store, &pins).unwrap();
        assert_eq!(
            sorted(report.removed),
            sorted(garbage.iter().map(|c| *c.hash()).collect())
        );
        assert_eq!(
            report.reclaimed_bytes, 200_000,
            "pack of 300 kB less the kept copy"
        );
        assert_eq!(store.get(&kept).unwrap(), Some(vec![1; 100_000]));
    }

    #[test]
    fn sweeps_unpinned_and_keeps_pinned_dags() {
        let f = fixture();
        let (leaf, shared) = (f.raw(b"leaf"), f.raw(b"shared"));
        let mid = f.node(&[leaf, shared], b"mid");
        let root = f.node(&[mid], b"root");
        let child_of_direct = f.raw(b"child of direct");
        let direct = f.node(&[child_of_direct, shared], b"direct");
        let garbage = f.raw(b"garbage");
        let garbage_node = f.node(&[leaf], b"garbage node");
        f.pins.add(&root, PinMode::Recursive).unwrap();
        f.pins.add(&direct, PinMode::Direct).unwrap();

        let report = gc(&f.store, &f.pins).unwrap();

        let expected = sorted(vec![
            *garbage.hash(),
            *garbage_node.hash(),
            *child_of_direct.hash(),
        ]);
        assert_eq!(sorted(report.removed.clone()), expected);
        let freed = b"garbage".len() + b"child of direct".len();
        assert!(report.freed_bytes > freed as u64);
        assert_eq!(report.kept, 5);
        assert!(report.missing.is_empty());
        for kept in [root, mid, leaf, shared, direct] {
            assert!(f.stored(&kept), "{kept} was swept");
        }
        for gone in [garbage, garbage_node, child_of_direct] {
            assert!(!f.stored(&gone), "{gone} survived");
        }
        assert!(gc(&f.store, &f.pins).unwrap().removed.is_empty());
    }

    #[test]
    fn missing_block_in_pinned_dag_is_reported_not_fatal() {
        let f = fixture();
        let absent = block_cid(CODEC_RAW, 1, b"never stored");
        let leaf = f.raw(b"leaf");
        let root = f.node(&[absent, leaf], b"root");
        let garbage = f.raw(b"garbage");
        f.pins.add(&root, PinMode::Recursive).unwrap();

        let report = gc(&f.store, &f.pins).unwrap();

        assert_eq!(report.missing, vec![(root, absent)]);
        assert_eq!(report.removed, vec![*garbage.hash()]);
        assert!(f.stored(&leaf));
    }

    #[test]
    fn undecodable_pinned_block_aborts_before_removing_anything() {
        let f = fixture();
        let bad = f.raw(b"not dag-pb at all \xff\xff\xff");
        let bad_pb = Cid::new_v1(CODEC_DAG_PB, *bad.hash());
        let garbage = f.raw(b"garbage");
        f.pins.add(&bad_pb, PinMode::Recursive).unwrap();

        let err = gc(&f.store, &f.pins).unwrap_err();

        assert!(
            matches!(err, GcError::Undecodable { root, .. } if root == bad_pb),
            "{err}"
        );
        assert!(err.to_string().contains(&bad_pb.to_string()), "{err}");
        assert!(f.stored(&garbage));
    }

    #[test]
    fn verify_removes_corrupt_blocks_and_lists_incomplete_pins() {
        let f = fixture();
        let (good, rotten) = (f.raw(b"good"), f.raw(b"rotten"));
        let root = f.node(&[good, rotten], b"root");
        let lost = block_cid(CODEC_RAW, 1, b"lost");
        f.pins.add(&root, PinMode::Recursive).unwrap();
        f.pins.add(&lost, PinMode::Direct).unwrap();
        f.store.corrupt(rotten.hash(), b"r0tten");

        let report = verify(&f.store, &f.pins).unwrap();

        assert_eq!(report.checked, 3);
        assert_eq!(report.corrupt, vec![*rotten.hash()]);
        assert!(!f.stored(&rotten));
        assert!(!report.is_healthy());
        let mut incomplete: Vec<(Cid, Vec<Cid>)> = report
            .incomplete
            .iter()
            .map(|p| (p.root, p.missing.clone()))
            .collect();
        incomplete.sort_by_key(|(c, _)| c.to_bytes());
        let mut expected = vec![(root, vec![rotten]), (lost, vec![lost])];
        expected.sort_by_key(|(c, _)| c.to_bytes());
        assert_eq!(incomplete, expected);
    }

    #[test]
    fn verify_of_sound_store_is_healthy() {
        let f = fixture();
        let leaf = f.raw(b"leaf");
        let root = f.node(&[leaf], b"root");
        f.pins.add(&root, PinMode::Recursive).unwrap();
        let report = verify(&f.store, &f.pins).unwrap();
        assert!(report.is_healthy(), "{report:?}");
        assert_eq!(report.checked, 2);
    }
}
