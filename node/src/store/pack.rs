//! Blocks appended to large pack files, located through an index tree in the repo's sled
//! database: what [`TieredStore`](super::tiered::TieredStore) uses for its large blocks.
//!
//! Creating one file per 256 KiB block cost most of an add's time on ext4 (inode allocation in
//! `ext4_create`), so blocks are appended to `<dir>/NNNNNNNN.pack` instead, a new pack starting
//! once the current one would pass [`PACK_LIMIT`]. The [`INDEX_TREE`] maps a multihash to a
//! [`Location`] (pack number, offset, length; 16 bytes), and the [`CHECKSUM_TREE`] to the
//! CRC-32 of the block's bytes, written with them. Reads check the checksum
//! ([`super::Integrity`]); [`Blockstore::get`](super::Blockstore::get) takes an intact one for
//! its hash check, scrubs and `repo verify` hash regardless, and a block without a checksum
//! (stored before checksums) is hashed. The checksum has its own tree, not a wider index
//! record, so a repo stays readable by a binary from before it: that one reads the index as it
//! always did and ignores the checksums. A block's checksum depends on its content only,
//! which its multihash fixes, so no move or re-put can make one stale. Appends are serialized
//! by one mutex
//! over the current pack and its length; reads are positional reads through a small cache of
//! open pack files, so they never wait on writers.
//!
//! Crash safety follows from order: a put writes the bytes, then the index entry;
//! [`RawBlocks::flush_raw`] syncs the packs written since the last flush, then sled, so an index
//! entry is only ever durable after its bytes. A killed process leaves at worst a partial
//! append at the end of a pack, which nothing points at and the next append follows. Should
//! power loss leave an entry pointing past the end of a pack or at the wrong bytes, a read
//! returns what is there (never more than [`MAX_BLOCK_SIZE`]), the checksum (or the hash) is
//! wrong, and [`Blockstore::get`](super::Blockstore::get) deletes the entry and reports the
//! block corrupt. A delete only removes the index entry: the bytes stay in their
//! pack as dead space until [`PackStore::compact`] (in [`compact`]) rewrites the live blocks of
//! mostly dead packs and deletes those files. One process uses a store at a time (the repo lock
//! sees to it).

mod compact;
mod direct;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use ::sled::{Db, IVec, Tree};

pub use compact::CompactReport;

use super::sled::{multihash_keys, sled_err};
use super::{Integrity, Keys, MAX_BLOCK_SIZE, Multihash, RawBlocks, StoreError, StoreStat};

/// Name of the tree mapping multihashes to their [`Location`].
pub const INDEX_TREE: &str = "pack_index";
/// Name of the tree mapping multihashes to the CRC-32 (IEEE, 4 bytes big-endian) of their bytes.
pub const CHECKSUM_TREE: &str = "pack_crc";
/// A pack file takes no more appends once this long (a single block may end past it).
pub const PACK_LIMIT: u64 = 256 << 20;
const EXTENSION: &str = "pack";
/// Open pack files kept for reading.
const READERS: usize = 8;

/// Where a block's bytes are: `len` bytes at `offset` in pack `pack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pack: u32,
    pub offset: u64,
    pub len: u32,
}

impl Location {
    const WIDTH: usize = 16;

    fn encode(self) -> [u8; Self::WIDTH] {
        let mut out = [0; Self::WIDTH];
        out[..4].copy_from_slice(&self.pack.to_be_bytes());
        out[4..12].copy_from_slice(&self.offset.to_be_bytes());
        out[12..].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// `None` for a record of the wrong width.
    fn decode(value: &[u8]) -> Option<Self> {
        let record: &[u8; Self::WIDTH] = value.try_into().ok()?;
        let (pack, rest) = record.split_at(4);
        let (offset, len) = rest.split_at(8);
        Some(Self {
            pack: u32::from_be_bytes(pack.try_into().ok()?),
            offset: u64::from_be_bytes(offset.try_into().ok()?),
            len: u32::from_be_bytes(len.try_into().ok()?),
        })
    }
}

/// The pack taking appends, and the packs written since the last flush.
#[derive(Debug)]
struct Writer {
    number: u32,
    /// Opened on the first append, so a store that is only read creates nothing.
    file: Option<Arc<File>>,
    len: u64,
    /// Whether `file` has had appends since the last flush.
    dirty: bool,
    /// Packs rotated out with appends not yet synced.
    unsynced: Vec<Arc<File>>,
    /// Whether a pack was created since the last flush (its folder entry needs a sync).
    created: bool,
    /// Appends that bypass the page cache (`put_many_raw_uncached`).
    direct: direct::Direct,
}

/// Blocks in pack files, indexed in sled.
#[derive(Debug)]
pub struct PackStore {
    dir: PathBuf,
    index: Tree,
    checksums: Tree,
    pack_limit: u64,
    writer: Mutex<Writer>,
    readers: Mutex<VecDeque<(u32, Arc<File>)>>,
    /// Held shared from an index look-up to the end of the read, exclusively while compaction
    /// deletes packs, so a read never finds its pack gone.
    removal: RwLock<()>,
    /// One compaction at a time.
    compacting: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The number of a pack file name, `None` for anything else in the folder.
fn pack_number(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    (stem.len() == 8 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync folder", dir, e))
}

impl PackStore {
    /// Open (or create) the packs in `dir`, indexed in `db`, with the default [`PACK_LIMIT`].
    pub fn open(db: &Db, dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_limit(db, dir, PACK_LIMIT)
    }

    /// Open with packs rotated once `pack_limit` bytes long (small limits are for tests).
    pub fn open_with_limit(db: &Db, dir: &Path, pack_limit: u64) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io("create folder", dir, e))?;
        let index = db.open_tree(INDEX_TREE).map_err(sled_err("open tree"))?;
        let checksums = db.open_tree(CHECKSUM_TREE).map_err(sled_err("open tree"))?;
        let store = Self {
            dir: dir.to_owned(),
            index,
            checksums,
            pack_limit,
            writer: Mutex::new(Writer {
                number: 0,
                file: None,
                len: 0,
                dirty: false,
                unsynced: Vec::new(),
                created: false,
                direct: direct::Direct::default(),
            }),
            readers: Mutex::new(VecDeque::new()),
            removal: RwLock::new(()),
            compacting: Mutex::new(()),
        };
        // Appends continue the newest pack, after whatever a crash left at its end.
        if let Some(&last) = store.pack_numbers()?.last() {
            let path = store.pack_path(last);
            let file = store.open_for_append(&path)?;
            let len = file
                .metadata()
                .map_err(|e| StoreError::io("stat", &path, e))?
                .len();
            let mut writer = lock(&store.writer);
            writer.number = last;
            writer.file = Some(Arc::new(file));
            writer.len = len;
        }
        Ok(store)
    }

    /// The file holding pack `number`.
    pub fn pack_path(&self, number: u32) -> PathBuf {
        self.dir.join(format!("{number:08}.{EXTENSION}"))
    }

    /// Where a block's bytes are stored, if it is.
    pub fn location(&self, mh: &Multihash) -> Result<Option<Location>, StoreError> {
        let Some(value) = self
            .index
            .get(mh.to_bytes())
            .map_err(sled_err("read index"))?
        else {
            return Ok(None);
        };
        Location::decode(&value)
            .map(Some)
            .ok_or_else(|| bad_record(mh, &value))
    }

    /// Numbers of the pack files in the folder, ascending.
    fn pack_numbers(&self) -> Result<Vec<u32>, StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| StoreError::io("list", &self.dir, e))?;
        let mut numbers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &self.dir, e))?;
            if let Some(n) = entry.file_name().to_str().and_then(pack_number) {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn open_for_append(&self, path: &Path) -> Result<File, StoreError> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| StoreError::io("open pack", path, e))
    }

    /// Append `blocks` one after another (rotating to a new pack whenever the next would pass
    /// the limit) and return where each went. `uncached` writes them past the page cache where
    /// the filesystem allows ([`direct`]), up to [`direct::RUN`] bytes per write.
    fn append(
        &self,
        writer: &mut Writer,
        blocks: &[&[u8]],
        uncached: bool,
    ) -> Result<Vec<Location>, StoreError> {
        let lens = blocks
            .iter()
            .map(|b| u32::try_from(b.len()))
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|_| {
                StoreError::io(
                    "append to",
                    self.pack_path(writer.number),
                    io::Error::new(io::ErrorKind::InvalidInput, "block over 4 GiB"),
                )
            })?;
        let mut at = Vec::with_capacity(blocks.len());
        let mut first = 0;
        while first < blocks.len() {
            if writer.len > 0 && writer.len + u64::from(lens[first]) > self.pack_limit {
                self.rotate(writer);
            }
            // The run: the first block and those after it that fit in this pack and one write.
            let mut end = first + 1;
            let mut run_bytes = u64::from(lens[first]);
            while let Some(&len) = lens.get(end) {
                let len = u64::from(len);
                if writer.len + run_bytes + len > self.pack_limit
                    || run_bytes + len > direct::RUN as u64
                {
                    break;
                }
                run_bytes += len;
                end += 1;
            }
            let run = &blocks[first..end];
            let path = self.pack_path(writer.number);
            let file = match &writer.file {
                Some(file) => Arc::clone(file),
                None => {
                    let file = Arc::new(self.open_for_append(&path)?);
                    writer.file = Some(Arc::clone(&file));
                    writer.created = true;
                    file
                }
            };
            let offset = writer.len;
            // Marked before writing: a failed write may still have changed the file.
            writer.dirty = true;
            let to = direct::Target {
                path: &path,
                number: writer.number,
                file: &file,
                offset,
            };
            let direct = uncached && writer.direct.write(&to, run);
            if !direct {
                let mut next = offset;
                for block in run {
                    file.write_all_at(block, next)
                        .map_err(|e| StoreError::io("append to", &path, e))?;
                    next += block.len() as u64;
                }
            }
            for &len in &lens[first..end] {
                at.push(Location {
                    pack: writer.number,
                    offset: writer.len,
                    len,
                });
                writer.len += u64::from(len);
            }
            first = end;
        }
        Ok(at)
    }

    /// Store each block unless it is there; `uncached` as in [`PackStore::append`]. The bytes
    /// of all are appended before any index entry is written.
    fn store_blocks(
        &self,
        blocks: &[(&Multihash, &[u8])],
        uncached: bool,
    ) -> Result<(), StoreError> {
        // Outside the lock: puts of different blocks checksum in parallel.
        let mut todo = Vec::with_capacity(blocks.len());
        for &(mh, data) in blocks {
            if !self.has_raw(mh)? {
                todo.push((mh, data, crc32fast::hash(data)));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let mut writer = lock(&self.writer);
        // Another thread may have stored some while this one waited; a repeat is stored once.
        let mut seen = std::collections::HashSet::new();
        let mut fresh = Vec::with_capacity(todo.len());
        for block in todo {
            if seen.insert(*block.0) && !self.has_raw(block.0)? {
                fresh.push(block);
            }
        }
        let data: Vec<&[u8]> = fresh.iter().map(|(_, data, _)| *data).collect();
        let at = self.append(&mut writer, &data, uncached)?;
        for ((mh, _, crc), at) in fresh.iter().zip(at) {
            let key = mh.to_bytes();
            // Bytes first: the entry never points at an append that has not happened. The
            // checksum before the entry, so an indexed block normally has one.
            self.checksums
                .insert(&key, &crc.to_be_bytes())
                .map_err(sled_err("write checksum"))?;
            self.index
                .insert(key, &at.encode())
                .map_err(sled_err("write index"))?;
        }
        Ok(())
    }

    /// Start a new pack; the old one is synced at the next flush if it has unsynced appends.
    fn rotate(&self, writer: &mut Writer) {
        if let Some(file) = writer.file.take()
            && writer.dirty
        {
            writer.unsynced.push(file);
        }
        writer.number += 1;
        writer.len = 0;
        writer.dirty = false;
        writer.direct.release();
    }

    /// An open handle on pack `number`, from the cache if possible.
    fn reader(&self, number: u32) -> io::Result<Arc<File>> {
        if let Some((_, file)) = lock(&self.readers).iter().find(|(n, _)| *n == number) {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(File::open(self.pack_path(number))?);
        let mut readers = lock(&self.readers);
        if readers.len() >= READERS {
            readers.pop_front();
        }
        readers.push_back((number, Arc::clone(&file)));
        Ok(file)
    }

    /// The bytes at `at`, or as much of them as the pack holds: a short or empty result is
    /// for the caller's hash check to reject.
    fn read(&self, at: Location) -> Result<Vec<u8>, StoreError> {
        let len = u64::from(at.len);
        if len > MAX_BLOCK_SIZE as u64 {
            return Ok(Vec::new());
        }
        let path = || self.pack_path(at.pack);
        let file = match self.reader(at.pack) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("open pack", path(), e)),
        };
        let size = file
            .metadata()
            .map_err(|e| StoreError::io("stat", path(), e))?
            .len();
        let available = size.saturating_sub(at.offset).min(len);
        // At most MAX_BLOCK_SIZE, checked above.
        let want = usize::try_from(available).unwrap_or(0);
        read_exact_at(&file, want, at.offset).map_err(|e| StoreError::io("read pack", path(), e))
    }

    /// What the stored checksum of the block under `key` says of `data`.
    fn integrity(&self, key: &[u8], data: &[u8]) -> Result<Integrity, StoreError> {
        Ok(match self.stored_crc(key)? {
            // None also for a value that is not a checksum we wrote: fall back to hashing.
            None => Integrity::Unknown,
            Some(crc) if crc32fast::hash(data) == crc => Integrity::Intact,
            Some(_) => Integrity::Damaged,
        })
    }

    /// The CRC-32 stored for the block under `key`, if there is a well-formed one.
    fn stored_crc(&self, key: &[u8]) -> Result<Option<u32>, StoreError> {
        let value = self.checksums.get(key).map_err(sled_err("read checksum"))?;
        Ok(value.and_then(|v| <[u8; 4]>::try_from(&v[..]).ok().map(u32::from_be_bytes)))
    }

    /// Forget cached handles on a pack about to be deleted.
    fn evict_reader(&self, number: u32) {
        lock(&self.readers).retain(|(n, _)| *n != number);
    }
}

fn bad_record(mh: &Multihash, value: &IVec) -> StoreError {
    StoreError::BadKey {
        key: format!("{mh:?}"),
        reason: format!(
            "pack index entry is {} bytes, not {}",
            value.len(),
            Location::WIDTH
        ),
    }
}

impl RawBlocks for PackStore {
    fn put_raw(&self, mh: &Multihash, data: &[u8]) -> Result<(), StoreError> {
        self.store_blocks(&[(mh, data)], false)
    }

    fn put_many_raw_uncached(&self, blocks: &[(&Multihash, &[u8])]) -> Result<(), StoreError> {
        self.store_blocks(blocks, true)
    }

    fn get_raw(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_checked(mh)?.map(|(data, _)| data))
    }

    fn get_checked(&self, mh: &Multihash) -> Result<Option<(Vec<u8>, Integrity)>, StoreError> {
        let _guard = self.removal.read().unwrap_or_else(PoisonError::into_inner);
        let key = mh.to_bytes();
        let Some(value) = self.index.get(&key).map_err(sled_err("read index"))? else {
            return Ok(None);
        };
        match Location::decode(&value) {
            Some(at) => {
                let data = self.read(at)?;
                let integrity = self.integrity(&key, &data)?;
                Ok(Some((data, integrity)))
            }
            // A damaged entry: no bytes, which the hash check reports and removes.
            None => Ok(Some((Vec::new(), Integrity::Unknown))),
        }
    }

    fn has_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        self.index
            .contains_key(mh.to_bytes())
            .map_err(sled_err("look up block"))
    }

    fn size_raw(&self, mh: &Multihash) -> Result<Option<u64>, StoreError> {
        Ok(self.location(mh)?.map(|at| u64::from(at.len)))
    }

    fn delete_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        let key = mh.to_bytes();
        let removed = self.index.remove(&key).map_err(sled_err("delete block"))?;
        self.checksums
            .remove(&key)
            .map_err(sled_err("delete checksum"))?;
        Ok(removed.is_some())
    }

    fn keys_raw(&self) -> Result<Keys<'_>, StoreError> {
        Ok(multihash_keys(&self.index))
    }

    fn flush_raw(&self) -> Result<(), StoreError> {
        let (files, created) = {
            let mut writer = lock(&self.writer);
            let mut files = std::mem::take(&mut writer.unsynced);
            if writer.dirty
                && let Some(file) = &writer.file
            {
                files.push(Arc::clone(file));
            }
            writer.dirty = false;
            (files, std::mem::take(&mut writer.created))
        };
        // Outside the lock, so writers carry on; appends after the take are synced next time.
        let synced = files
            .iter()
            .try_for_each(|file| file.sync_data())
            .map_err(|e| StoreError::io("sync pack in", &self.dir, e))
            .and_then(|()| if created { sync_dir(&self.dir) } else { Ok(()) });
        if let Err(e) = synced {
            // Try them all again at the next flush.
            let mut writer = lock(&self.writer);
            writer.unsynced.extend(files);
            writer.created |= created;
            return Err(e);
        }
        self.index.flush().map_err(sled_err("flush"))?;
        Ok(())
    }

    fn stat_raw(&self) -> Result<StoreStat, StoreError> {
        let mut stat = StoreStat::default();
        for value in self.index.iter().values() {
            let value = value.map_err(sled_err("list blocks"))?;
            stat.blocks += 1;
            stat.bytes += Location::decode(&value).map_or(0, |at| u64::from(at.len));
        }
        Ok(stat)
    }

    fn compact_raw(&self) -> Result<u64, StoreError> {
        Ok(self.compact()?.reclaimed_bytes)
    }
}

/// `len` bytes of `file` from `offset`, read straight into a new buffer's spare capacity (a
/// block-sized buffer is not zeroed only to be overwritten).
fn read_exact_at(file: &File, len: usize, offset: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        let at = offset + data.len() as u64;
        let n = rustix::io::pread(file, rustix::buffer::spare_capacity(&mut data), at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    // The capacity may be more than asked for; what was read past `len` is not the block's.
    data.truncate(len);
    Ok(data)
}

#[cfg(test)]
mod tests;
