//! One test suite run against every backend: each test is a function over a [`Fixture`], and
//! the `suite!` macro instantiates all of them once per backend module.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::fs;
use std::sync::Arc;

use cid::Cid;

use super::flatfs::FlatFsStore;
use super::memory::MemoryStore;
use super::pack::PackStore;
use super::sled::SledStore;
use super::tiered::TieredStore;
use super::{Blockstore, MAX_BLOCK_SIZE, Multihash, StoreError, StoreStat};
use crate::content::cid::{CODEC_DAG_PB, CODEC_RAW, block_cid};

/// Overwrites a block's stored bytes without going through the store.
type Corrupter = Box<dyn Fn(&Multihash, &[u8])>;

/// A store under test and a way to damage its bytes behind its back.
struct Fixture {
    store: Arc<dyn Blockstore>,
    corrupt: Corrupter,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let raw = Arc::clone(&store);
    Fixture {
        store,
        corrupt: Box::new(move |mh, data| raw.corrupt(mh, data)),
        _dir: None,
    }
}

fn sled() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = ::sled::Config::new()
        .path(dir.path())
        .cache_capacity(8 << 20)
        .open()
        .unwrap();
    let store = Arc::new(SledStore::new(&db).unwrap());
    let raw = Arc::clone(&store);
    Fixture {
        store,
        corrupt: Box::new(move |mh, data| raw.overwrite(mh, data).unwrap()),
        _dir: Some(dir),
    }
}

fn flatfs() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FlatFsStore::open(&dir.path().join("blocks")).unwrap());
    let raw = Arc::clone(&store);
    Fixture {
        store,
        corrupt: Box::new(move |mh, data| fs::write(raw.block_path(mh), data).unwrap()),
        _dir: Some(dir),
    }
}

fn open_db(path: &std::path::Path) -> ::sled::Db {
    ::sled::Config::new()
        .path(path)
        .cache_capacity(8 << 20)
        .open()
        .unwrap()
}

/// Overwrite a packed block's bytes in its pack file, at the offset its index entry names.
pub(super) fn overwrite_in_pack(store: &PackStore, mh: &Multihash, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let at = store.location(mh).unwrap().expect("block is packed");
    let file = fs::OpenOptions::new()
        .write(true)
        .open(store.pack_path(at.pack))
        .unwrap();
    file.write_all_at(data, at.offset).unwrap();
}

fn pack() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir.path().join("db"));
    let store = Arc::new(PackStore::open(&db, &dir.path().join("blobs")).unwrap());
    let raw = Arc::clone(&store);
    Fixture {
        store,
        corrupt: Box::new(move |mh, data| overwrite_in_pack(&raw, mh, data)),
        _dir: Some(dir),
    }
}

fn tiered() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir.path().join("db"));
    let small = SledStore::new(&db).unwrap();
    let large = PackStore::open(&db, &dir.path().join("blobs")).unwrap();
    let store = Arc::new(TieredStore::new(small, large));
    let raw = Arc::clone(&store);
    Fixture {
        store,
        corrupt: Box::new(move |mh, data| {
            let (small, large) = raw.tiers();
            if large.location(mh).unwrap().is_some() {
                overwrite_in_pack(large, mh, data);
            } else {
                small.overwrite(mh, data).unwrap();
            }
        }),
        _dir: Some(dir),
    }
}

/// Distinct, non-repeating bytes, so a test never collides with another block by accident.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

fn raw_cid(data: &[u8]) -> Cid {
    block_cid(CODEC_RAW, 1, data)
}

/// Put a block of `len` bytes, read it back, and check every accessor agrees.
fn check_round_trip(f: &Fixture, len: usize) {
    let data = bytes(len, 7);
    let cid = raw_cid(&data);
    let s = &f.store;
    assert!(!s.has(&cid).unwrap());
    s.put(&cid, &data).unwrap();
    assert!(s.has(&cid).unwrap());
    assert_eq!(s.block_size(&cid).unwrap(), Some(len as u64));
    assert_eq!(s.get(&cid).unwrap(), Some(data));
    let stat = s.stat().unwrap();
    assert_eq!(
        stat,
        StoreStat {
            blocks: 1,
            bytes: len as u64
        }
    );
}

fn empty_block_round_trips(f: Fixture) {
    check_round_trip(&f, 0);
}

fn one_byte_block_round_trips(f: Fixture) {
    check_round_trip(&f, 1);
}

fn max_minus_one_byte_block_round_trips(f: Fixture) {
    check_round_trip(&f, MAX_BLOCK_SIZE - 1);
}

fn exactly_max_size_block_is_accepted(f: Fixture) {
    check_round_trip(&f, MAX_BLOCK_SIZE);
}

fn max_plus_one_byte_block_is_refused_naming_its_size(f: Fixture) {
    let data = bytes(MAX_BLOCK_SIZE + 1, 1);
    let cid = raw_cid(&data);
    for result in [f.store.put(&cid, &data), f.store.put_verified(&cid, &data)] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { size, .. } if size == MAX_BLOCK_SIZE + 1),
            "{err}"
        );
        assert!(err.to_string().contains("2097153 bytes"), "{err}");
    }
    assert!(!f.store.has(&cid).unwrap());
    assert_eq!(f.store.stat().unwrap(), StoreStat::default());
}

fn put_is_idempotent(f: Fixture) {
    let data = bytes(1000, 2);
    let cid = raw_cid(&data);
    f.store.put(&cid, &data).unwrap();
    f.store.put(&cid, &data).unwrap();
    f.store.put_verified(&cid, &data).unwrap();
    assert_eq!(f.store.keys().unwrap().count(), 1);
    assert_eq!(f.store.stat().unwrap().bytes, 1000);
}

fn v0_and_v1_of_the_same_bytes_are_one_block(f: Fixture) {
    let data = bytes(300, 3);
    let v0 = block_cid(CODEC_DAG_PB, 0, &data);
    let v1 = Cid::new_v1(CODEC_DAG_PB, *v0.hash());
    let v1_raw = Cid::new_v1(CODEC_RAW, *v0.hash());
    assert_eq!(v0.version(), cid::Version::V0);
    f.store.put(&v0, &data).unwrap();
    f.store.put(&v1, &data).unwrap();
    assert_eq!(f.store.stat().unwrap().blocks, 1);
    assert_eq!(f.store.get(&v1).unwrap(), Some(data.clone()));
    assert_eq!(f.store.get(&v1_raw).unwrap(), Some(data));
    assert!(f.store.delete(&v1).unwrap());
    assert!(!f.store.has(&v0).unwrap());
}

fn corrupt_block_is_deleted_and_reported(f: Fixture) {
    check_corrupt_block_is_deleted_and_reported(&f, 4096);
}

/// Small enough to be stored inline by the sled store.
fn corrupt_small_block_is_deleted_and_reported(f: Fixture) {
    check_corrupt_block_is_deleted_and_reported(&f, 300);
}

/// Large enough for the tiered store's pack tier.
fn corrupt_large_block_is_deleted_and_reported(f: Fixture) {
    check_corrupt_block_is_deleted_and_reported(&f, 256 * 1024);
}

fn check_corrupt_block_is_deleted_and_reported(f: &Fixture, len: usize) {
    let data = bytes(len, 4);
    let cid = raw_cid(&data);
    f.store.put(&cid, &data).unwrap();
    let mut damaged = data.clone();
    damaged[100] ^= 0x01;
    (f.corrupt)(cid.hash(), &damaged);
    assert_eq!(
        f.store.get_unverified(cid.hash()).unwrap(),
        Some(damaged),
        "the damage did not reach the store"
    );

    let err = f.store.get(&cid).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { cid: c } if c == cid),
        "{err}"
    );
    assert!(!f.store.has(&cid).unwrap(), "corrupt block was kept");
    assert_eq!(f.store.get(&cid).unwrap(), None);
    // The good bytes can be stored again.
    f.store.put(&cid, &data).unwrap();
    assert_eq!(f.store.get(&cid).unwrap(), Some(data));
}

fn absent_block_is_none_everywhere(f: Fixture) {
    let cid = raw_cid(b"absent");
    assert_eq!(f.store.get(&cid).unwrap(), None);
    assert_eq!(f.store.get_unverified(cid.hash()).unwrap(), None);
    assert!(!f.store.has(&cid).unwrap());
    assert_eq!(f.store.block_size(&cid).unwrap(), None);
    assert!(!f.store.delete(&cid).unwrap());
}

fn identity_cid_is_inline_and_never_stored(f: Fixture) {
    let mh = Multihash::wrap(crate::content::cid::MH_IDENTITY, b"tiny").unwrap();
    let cid = Cid::new_v1(CODEC_RAW, mh);
    f.store.put(&cid, b"tiny").unwrap();
    assert_eq!(f.store.get(&cid).unwrap(), Some(b"tiny".to_vec()));
    assert!(f.store.has(&cid).unwrap());
    assert_eq!(f.store.block_size(&cid).unwrap(), Some(4));
    assert!(!f.store.delete(&cid).unwrap());
    assert_eq!(f.store.stat().unwrap(), StoreStat::default());
}

fn put_verified_refuses_bytes_that_do_not_match(f: Fixture) {
    let cid = raw_cid(b"claimed");
    let err = f.store.put_verified(&cid, b"actual").unwrap_err();
    assert!(
        matches!(err, StoreError::HashMismatch { cid: c } if c == cid),
        "{err}"
    );
    assert!(!f.store.has(&cid).unwrap());
    f.store.put_verified(&cid, b"claimed").unwrap();
    assert!(f.store.has(&cid).unwrap());
}

fn unsupported_hash_is_refused(f: Fixture) {
    let blake3 = Multihash::wrap(0x1e, &[7; 32]).unwrap();
    let cid = Cid::new_v1(CODEC_RAW, blake3);
    let err = f.store.put(&cid, b"data").unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedHash { code: 0x1e, .. }),
        "{err}"
    );
    assert_eq!(f.store.stat().unwrap(), StoreStat::default());
}

fn sha2_512_blocks_are_stored_and_verified(f: Fixture) {
    let data = b"a sha2-512 block".to_vec();
    let cid = Cid::new_v1(CODEC_RAW, crate::content::cid::sha512_multihash(&data));
    let err = f.store.put_verified(&cid, b"other bytes").unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{err}");
    f.store.put_verified(&cid, &data).unwrap();
    assert_eq!(f.store.get(&cid).unwrap(), Some(data.clone()));
    assert!(f.store.keys().unwrap().any(|k| k.unwrap() == *cid.hash()));
    (f.corrupt)(cid.hash(), b"rotten");
    assert!(matches!(f.store.get(&cid), Err(StoreError::Corrupt { .. })));
}

fn keys_lists_exactly_the_stored_blocks(f: Fixture) {
    let mut expected = HashSet::new();
    for i in 0..20u8 {
        let data = bytes(10 + usize::from(i), i);
        let cid = raw_cid(&data);
        f.store.put(&cid, &data).unwrap();
        expected.insert(*cid.hash());
    }
    let listed: HashSet<Multihash> = f.store.keys().unwrap().map(Result::unwrap).collect();
    assert_eq!(listed, expected);
}

fn delete_removes_only_that_block(f: Fixture) {
    let (a, b) = (bytes(50, 1), bytes(60, 2));
    let (ca, cb) = (raw_cid(&a), raw_cid(&b));
    f.store.put(&ca, &a).unwrap();
    f.store.put(&cb, &b).unwrap();
    assert!(f.store.delete(&ca).unwrap());
    assert!(!f.store.delete(&ca).unwrap());
    assert!(!f.store.has(&ca).unwrap());
    assert_eq!(f.store.get(&cb).unwrap(), Some(b));
    assert_eq!(
        f.store.stat().unwrap(),
        StoreStat {
            blocks: 1,
            bytes: 60
        }
    );
}

fn concurrent_puts_all_land(f: Fixture) {
    let blocks: Vec<Vec<u8>> = (0..64u8).map(|i| bytes(5000, i)).collect();
    std::thread::scope(|scope| {
        for chunk in blocks.chunks(16) {
            let store = Arc::clone(&f.store);
            scope.spawn(move || {
                for data in chunk {
                    store.put(&raw_cid(data), data).unwrap();
                }
            });
        }
    });
    f.store.flush().unwrap();
    assert_eq!(f.store.stat().unwrap().blocks, 64);
    for data in &blocks {
        assert_eq!(f.store.get(&raw_cid(data)).unwrap().as_ref(), Some(data));
    }
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod memory { $( #[test] fn $test() { super::$test(super::memory()) } )* }
        mod sled { $( #[test] fn $test() { super::$test(super::sled()) } )* }
        mod flatfs { $( #[test] fn $test() { super::$test(super::flatfs()) } )* }
        mod pack { $( #[test] fn $test() { super::$test(super::pack()) } )* }
        mod tiered { $( #[test] fn $test() { super::$test(super::tiered()) } )* }
    };
}

suite!(
    empty_block_round_trips,
    one_byte_block_round_trips,
    max_minus_one_byte_block_round_trips,
    exactly_max_size_block_is_accepted,
    max_plus_one_byte_block_is_refused_naming_its_size,
    put_is_idempotent,
    v0_and_v1_of_the_same_bytes_are_one_block,
    corrupt_block_is_deleted_and_reported,
    corrupt_small_block_is_deleted_and_reported,
    corrupt_large_block_is_deleted_and_reported,
    absent_block_is_none_everywhere,
    identity_cid_is_inline_and_never_stored,
    put_verified_refuses_bytes_that_do_not_match,
    unsupported_hash_is_refused,
    sha2_512_blocks_are_stored_and_verified,
    keys_lists_exactly_the_stored_blocks,
    delete_removes_only_that_block,
    concurrent_puts_all_land,
);

/// Blocks flushed before the store is dropped are there when it is reopened.
#[test]
fn persistent_backends_keep_flushed_blocks_across_reopen() {
    let data = bytes(10_000, 9);
    let cid = raw_cid(&data);
    let dir = tempfile::tempdir().unwrap();
    let open_sled = || {
        let db = ::sled::Config::new()
            .path(dir.path().join("sled"))
            .open()
            .unwrap();
        SledStore::new(&db).unwrap()
    };
    let open_flatfs = || FlatFsStore::open(&dir.path().join("flatfs")).unwrap();
    {
        let (s, f) = (open_sled(), open_flatfs());
        for store in [&s as &dyn Blockstore, &f] {
            store.put(&cid, &data).unwrap();
            store.flush().unwrap();
        }
    }
    let (s, f) = (open_sled(), open_flatfs());
    for store in [&s as &dyn Blockstore, &f] {
        assert_eq!(store.get(&cid).unwrap().as_ref(), Some(&data));
    }
}
