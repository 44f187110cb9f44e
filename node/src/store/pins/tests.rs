//! Pin bookkeeping and its journal: modes, persistence across reopen, compaction of the
//! journal, the move from the old sled tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
