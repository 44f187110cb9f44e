//! Pack-specific behaviour; the shared suite in `store/tests.rs` covers the `RawBlocks` contract.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use cid::Cid;

use super::direct::Direct;
use super::{Location, PackStore, lock, read_exact_at};
use crate::content::cid::{CODEC_RAW, block_cid};
use crate::store::{Blockstore, StoreError};
use crate::store::{Integrity, RawBlocks};

fn open_db(path: &Path) -> ::sled::Db {
    ::sled::Config::new().path(path).open().unwrap()
}

fn open(dir: &Path, limit: u64) -> (::sled::Db, PackStore) {
    let db = open_db(&dir.join("db"));
    let store = PackStore::open_with_limit(&db, &dir.join("blobs"), limit).unwrap();
    (db, store)
}

fn bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            (i ^ seed.wrapping_mul(0x9e37_79b9))
                .wrapping_mul(2_654_435_761)
                .to_le_bytes()[3]
        })
        .collect()
}

fn put(store: &PackStore, data: &[u8]) -> Cid {
    let cid = block_cid(CODEC_RAW, 1, data);
    store.put(&cid, data).unwrap();
    cid
}

fn pack_sizes(store: &PackStore) -> Vec<(u32, u64)> {
    store
        .pack_numbers()
        .unwrap()
        .into_iter()
        .map(|n| (n, fs::metadata(store.pack_path(n)).unwrap().len()))
        .collect()
}

#[test]
fn full_packs_rotate_and_every_pack_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 100_000);
    let blocks: Vec<Vec<u8>> = (0..10).map(|i| bytes(30_000, i)).collect();
    let cids: Vec<Cid> = blocks.iter().map(|b| put(&store, b)).collect();
    // Three 30 kB blocks fit under 100 kB; the fourth starts a new pack.
    assert_eq!(
        pack_sizes(&store),
        vec![(0, 90_000), (1, 90_000), (2, 90_000), (3, 30_000)]
    );
    for (cid, data) in cids.iter().zip(&blocks) {
        assert_eq!(store.get(cid).unwrap().as_ref(), Some(data));
    }
    // A block over the limit still goes in whole, in a pack of its own.
    let big = bytes(250_000, 99);
    let cid = put(&store, &big);
    assert_eq!(store.location(cid.hash()).unwrap().unwrap().pack, 4);
    assert_eq!(store.get(&cid).unwrap(), Some(big));
}

#[test]
fn compaction_reclaims_mostly_dead_packs_and_keeps_every_live_block() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 100_000);
    let blocks: Vec<Vec<u8>> = (0..12).map(|i| bytes(30_000, i)).collect();
    let cids: Vec<Cid> = blocks.iter().map(|b| put(&store, b)).collect();
    // Pack 0 keeps one block of three (two thirds dead), pack 1 none, pack 2 loses one (a
    // third dead: kept), pack 3 (the current one, full) none.
    let deleted: HashSet<usize> = [1, 2, 3, 4, 5, 6].into_iter().collect();
    for &i in &deleted {
        assert!(store.delete(&cids[i]).unwrap());
    }
    assert_eq!(Blockstore::compact(&store).unwrap(), 150_000);
    let numbers: Vec<u32> = pack_sizes(&store).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        numbers,
        vec![2, 3, 4],
        "packs 0 and 1 removed, the moved block in a new one"
    );
    assert_eq!(store.location(cids[0].hash()).unwrap().unwrap().pack, 4);
    let check = |store: &PackStore| {
        for (i, (cid, data)) in cids.iter().zip(&blocks).enumerate() {
            let expected = (!deleted.contains(&i)).then(|| data.clone());
            assert_eq!(store.get(cid).unwrap(), expected, "block {i}");
        }
    };
    check(&store);
    assert_eq!(
        store.compact().unwrap().packs_removed,
        0,
        "nothing left to do"
    );

    drop((_db, store));
    let (_db, store) = open(dir.path(), 100_000);
    check(&store);
}

#[test]
fn compaction_of_a_mostly_dead_current_pack_moves_its_appends_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    let gone = put(&store, &bytes(100_000, 1));
    let kept = bytes(10_000, 2);
    let kept_cid = put(&store, &kept);
    store.delete(&gone).unwrap();
    let report = store.compact().unwrap();
    assert_eq!((report.packs_removed, report.blocks_moved), (1, 1));
    assert_eq!(report.reclaimed_bytes, 100_000);
    assert_eq!(pack_sizes(&store), vec![(1, 10_000)]);
    assert_eq!(store.get(&kept_cid).unwrap(), Some(kept));
    let later = bytes(5_000, 3);
    assert_eq!(store.get(&put(&store, &later)).unwrap(), Some(later));
}

/// Index entries power loss could leave behind: each reads as corrupt and is removed.
#[test]
fn index_entries_pointing_at_nothing_are_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    put(&store, &bytes(70_000, 1));
    let bad_entries: [(&str, Vec<u8>); 5] = [
        ("past the end", enc(0, 60_000, 70_000)),
        ("far past the end", enc(0, u64::MAX - 10, 70_000)),
        ("over the block limit", enc(0, 0, u32::MAX)),
        ("in a missing pack", enc(7, 0, 70_000)),
        ("of the wrong width", vec![1, 2, 3]),
    ];
    for (seed, (what, entry)) in (10..).zip(bad_entries) {
        let cid = block_cid(CODEC_RAW, 1, &bytes(70_000, seed));
        store.index.insert(cid.hash().to_bytes(), entry).unwrap();
        let err = store.get(&cid).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{what}: {err}");
        assert!(!store.has(&cid).unwrap(), "{what}: entry removed");
    }
}

fn enc(pack: u32, offset: u64, len: u32) -> Vec<u8> {
    Location { pack, offset, len }.encode().to_vec()
}

#[test]
fn reopen_keeps_flushed_blocks_and_appends_after_a_partial_write() {
    let dir = tempfile::tempdir().unwrap();
    let first = bytes(80_000, 1);
    let cid = {
        let (_db, store) = open(dir.path(), 1 << 20);
        let cid = put(&store, &first);
        store.flush().unwrap();
        cid
    };
    // What a process killed mid-append leaves: bytes no index entry points at.
    let pack = dir.path().join("blobs/00000000.pack");
    OpenOptions::new()
        .append(true)
        .open(&pack)
        .unwrap()
        .write_all(&[0xab; 1234])
        .unwrap();

    let (_db, store) = open(dir.path(), 1 << 20);
    assert_eq!(store.get(&cid).unwrap(), Some(first));
    let second = bytes(90_000, 2);
    let cid2 = put(&store, &second);
    let at = store.location(cid2.hash()).unwrap().unwrap();
    assert_eq!(
        (at.pack, at.offset),
        (0, 81_234),
        "appends continue the last pack"
    );
    assert_eq!(store.get(&cid2).unwrap(), Some(second));
    assert_eq!(store.stat().unwrap().blocks, 2);
}

#[test]
fn concurrent_puts_from_four_threads_land_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    let store = Arc::new(store);
    let own: Vec<Vec<Vec<u8>>> = (0..4)
        .map(|t| (0..25).map(|i| bytes(70_000, t * 100 + i)).collect())
        .collect();
    let shared: Vec<Vec<u8>> = (0..10).map(|i| bytes(70_000, 1000 + i)).collect();
    std::thread::scope(|scope| {
        for blocks in &own {
            let (store, shared) = (Arc::clone(&store), &shared);
            scope.spawn(move || {
                for data in blocks.iter().chain(shared) {
                    put(&store, data);
                }
            });
        }
    });
    store.flush().unwrap();
    let all: Vec<&Vec<u8>> = own.iter().flatten().chain(&shared).collect();
    assert_eq!(store.stat().unwrap().blocks, all.len() as u64);
    let on_disk: u64 = pack_sizes(&store).iter().map(|(_, size)| size).sum();
    assert_eq!(
        on_disk,
        70_000 * all.len() as u64,
        "each block appended once"
    );
    for data in all {
        let cid = block_cid(CODEC_RAW, 1, data);
        assert_eq!(store.get(&cid).unwrap().as_ref(), Some(data));
    }
}

/// Overwrites the byte at `at` (relative to the block's start) in the block's pack.
fn damage(store: &PackStore, cid: &Cid, at: u64) {
    use std::os::unix::fs::FileExt;
    let loc = store.location(cid.hash()).unwrap().unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(store.pack_path(loc.pack))
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, loc.offset + at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], loc.offset + at)
        .unwrap();
}

#[test]
fn entries_carry_the_crc_of_their_bytes_and_damage_is_caught_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    let data = bytes(200_000, 4);
    let cid = put(&store, &data);
    assert_eq!(
        store.stored_crc(&cid.hash().to_bytes()).unwrap(),
        Some(crc32fast::hash(&data))
    );
    assert_eq!(
        store.get_checked(cid.hash()).unwrap().map(|(_, i)| i),
        Some(Integrity::Intact)
    );
    assert_eq!(store.get(&cid).unwrap(), Some(data));

    damage(&store, &cid, 123_456);
    assert_eq!(
        store.get_checked(cid.hash()).unwrap().map(|(_, i)| i),
        Some(Integrity::Damaged)
    );
    assert!(matches!(store.get(&cid), Err(StoreError::Corrupt { .. })));
    assert!(!store.has(&cid).unwrap(), "damaged block deleted");
    assert_eq!(
        store.stored_crc(&cid.hash().to_bytes()).unwrap(),
        None,
        "with its checksum"
    );
}

/// Blocks stored before checksums (or by a binary from before them) have none: still read,
/// and checked by hash.
#[test]
fn blocks_without_a_checksum_are_read_and_checked_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    let data = bytes(90_000, 5);
    let cid = put(&store, &data);
    store.checksums.remove(cid.hash().to_bytes()).unwrap();
    assert_eq!(
        store.get_checked(cid.hash()).unwrap().map(|(_, i)| i),
        Some(Integrity::Unknown)
    );
    assert_eq!(store.get(&cid).unwrap(), Some(data));

    damage(&store, &cid, 7);
    assert!(matches!(store.get(&cid), Err(StoreError::Corrupt { .. })));
    assert!(!store.has(&cid).unwrap());
}

/// The index record keeps the 16-byte layout of repos from before checksums, so a binary from
/// then still reads blocks stored now.
#[test]
fn index_records_keep_their_old_width() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    let cid = put(&store, &bytes(70_000, 11));
    let record = store.index.get(cid.hash().to_bytes()).unwrap().unwrap();
    assert_eq!(record.len(), 16);
}

/// After compaction a moved block still checks out against its checksum; a damaged block is
/// not copied into a new pack (it is reported corrupt when next read).
#[test]
fn compaction_keeps_checksums_and_leaves_damaged_blocks_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    let gone = put(&store, &bytes(300_000, 6));
    let kept = bytes(20_000, 7);
    let kept_cid = put(&store, &kept);
    let hurt = bytes(20_000, 8);
    let hurt_cid = put(&store, &hurt);
    store.delete(&gone).unwrap();
    damage(&store, &hurt_cid, 19_999);

    let report = store.compact().unwrap();
    assert_eq!((report.packs_removed, report.blocks_moved), (1, 1));
    let moved = store.location(kept_cid.hash()).unwrap().unwrap();
    assert_eq!(moved.pack, 1);
    assert_eq!(
        store.get_checked(kept_cid.hash()).unwrap().map(|(_, i)| i),
        Some(Integrity::Intact)
    );
    assert_eq!(store.get(&kept_cid).unwrap(), Some(kept));
    assert!(matches!(
        store.get(&hurt_cid),
        Err(StoreError::Corrupt { .. })
    ));
}

/// `get` takes an intact checksum for the hash check; `get_rehashed` (scrubs, verifying walks)
/// always hashes, so it still finds bytes that were wrong for their CID when written.
#[test]
fn get_rehashed_hashes_even_when_the_checksum_matches() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    let named = bytes(50_000, 9);
    let cid = block_cid(CODEC_RAW, 1, &named);
    let other = bytes(50_000, 10);
    store.put_raw(cid.hash(), &other).unwrap();
    assert_eq!(store.get(&cid).unwrap(), Some(other));
    assert!(matches!(
        store.get_rehashed(&cid),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(!store.has(&cid).unwrap());

    let good = put(&store, &named);
    assert_eq!(store.get_rehashed(&good).unwrap(), Some(named));
}

#[test]
fn reads_fill_exactly_the_bytes_asked_for_and_a_short_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let content = bytes(300_000, 9);
    fs::write(&path, &content).unwrap();
    let file = fs::File::open(&path).unwrap();
    assert_eq!(read_exact_at(&file, 0, 10).unwrap(), Vec::<u8>::new());
    assert_eq!(read_exact_at(&file, 5, 0).unwrap(), content[..5]);
    let middle = read_exact_at(&file, 262_144, 1_000).unwrap();
    assert_eq!(middle.len(), 262_144);
    assert_eq!(middle, content[1_000..263_144]);
    let past = read_exact_at(&file, 100, 299_950).unwrap_err();
    assert_eq!(past.kind(), std::io::ErrorKind::UnexpectedEof);
}

/// Whether files in `dir` can be opened for direct I/O (not on tmpfs, for one).
fn takes_direct_io(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(dir.join("direct-probe"))
        .is_ok()
}

fn put_uncached(store: &PackStore, blocks: &[&[u8]]) -> Vec<Cid> {
    let cids: Vec<Cid> = blocks.iter().map(|b| block_cid(CODEC_RAW, 1, b)).collect();
    let puts: Vec<(Cid, &[u8])> = cids.iter().copied().zip(blocks.iter().copied()).collect();
    store.put_many_uncached(&puts).unwrap();
    cids
}

#[test]
fn uncached_puts_mixed_with_ordinary_ones_read_back_whole_before_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let direct_io = takes_direct_io(dir.path());
    let (db, store) = open(dir.path(), 700_000);
    // Sizes that leave every kind of partial page, and runs that cross the pack limit.
    let data: Vec<Vec<u8>> = [
        5_000, 262_158, 4_096, 1, 70_000, 300_000, 262_144, 3, 123_457,
    ]
    .iter()
    .enumerate()
    .map(|(i, &len)| bytes(len, i as u32 + 100))
    .collect();
    put(&store, &data[0]);
    put_uncached(&store, &[&data[1], &data[2], &data[3]]);
    put(&store, &data[4]);
    // A repeat inside the batch and a block stored before are stored once.
    put_uncached(&store, &[&data[5], &data[6], &data[5], &data[1], &data[7]]);
    assert_eq!(store.stat_raw().unwrap().blocks, 8);
    assert_eq!(
        matches!(lock(&store.writer).direct, Direct::On(_)),
        direct_io,
        "direct appends are used exactly where the filesystem takes them"
    );
    assert!(
        pack_sizes(&store).len() >= 2,
        "the runs crossed the pack limit"
    );
    let reads_back = |store: &PackStore, data: &[u8]| {
        let cid = block_cid(CODEC_RAW, 1, data);
        let got = store.get(&cid).unwrap();
        assert!(got.as_deref() == Some(data), "{cid} ({} bytes)", data.len());
    };
    data[..8].iter().for_each(|d| reads_back(&store, d));
    store.flush_raw().unwrap();
    drop(store);
    drop(db);

    // A pack may end in padding past its last block; appends after a reopen follow it.
    let (_db, store) = open(dir.path(), 700_000);
    put_uncached(&store, &[&data[8], &data[3][..0]]);
    put(&store, &data[2][..100]);
    for d in data
        .iter()
        .map(|d| &d[..])
        .chain([&data[3][..0], &data[2][..100]])
    {
        reads_back(&store, d);
    }
}

#[test]
fn uncached_puts_check_every_block_before_storing_any() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path(), 1 << 20);
    let small = bytes(10, 1);
    let huge = bytes(crate::store::MAX_BLOCK_SIZE + 1, 2);
    let ok = block_cid(CODEC_RAW, 1, &small);
    let too_large = block_cid(CODEC_RAW, 1, &huge);
    let err = store
        .put_many_uncached(&[(ok, &small[..]), (too_large, &huge[..])])
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(
        !store.has(&ok).unwrap(),
        "nothing stored when one block is refused"
    );
    // Identity CIDs carry their bytes and are not stored.
    let identity = Cid::new_v1(
        CODEC_RAW,
        crate::store::Multihash::wrap(crate::content::cid::MH_IDENTITY, b"hi").unwrap(),
    );
    store
        .put_many_uncached(&[(identity, &b"hi"[..]), (ok, &small[..])])
        .unwrap();
    assert_eq!(store.stat_raw().unwrap().blocks, 1);
    assert_eq!(store.get(&ok).unwrap(), Some(small));
}
