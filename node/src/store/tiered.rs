//! The `sled` backend as repositories use it: small blocks in sled, large blocks in pack files.
//!
//! sled 0.34 keeps large values resident whatever its cache size (a 1 GiB add peaked at
//! 1 GiB RSS with whole blocks, 65 MiB with blocks split into 4 KiB sled values but at a
//! fraction of the throughput), and one file per block spent most of an add in the kernel's
//! file creation on ext4 (0.6–0.7× `sha256sum`). So blocks up to [`INLINE_LIMIT`] bytes
//! (directory nodes, inner file nodes, small files) live in sled and larger ones (file leaves)
//! are appended to a [`PackStore`] folder beside it, indexed in the same database. Which tier
//! holds a block follows from its size alone; reads try sled first, then the packs. Compaction
//! is the packs' (sled frees space itself). Repos whose large blocks were still files in flatfs
//! layout under the same folder have them moved into packs on open ([`adopt_flatfs_blocks`]).

use std::path::Path;

use super::flatfs::FlatFsStore;
use super::pack::PackStore;
use super::sled::SledStore;
use super::{Integrity, Keys, Multihash, RawBlocks, StoreError, StoreStat};

/// Largest block kept inside sled.
pub const INLINE_LIMIT: usize = 64 * 1024;

/// Move the blocks of a flatfs folder at `dir` (the large-block layout before packs) into
/// `packs`, which may live in the same folder; returns how many moved.
///
/// Does nothing without a `SHARDING` file. Blocks are packed and flushed before any file is
/// removed, and `SHARDING` goes last, so a crash part-way is finished by the next open.
pub fn adopt_flatfs_blocks(dir: &Path, packs: &PackStore) -> Result<u64, StoreError> {
    let sharding = dir.join("SHARDING");
    if !sharding.exists() {
        return Ok(0);
    }
    let files = FlatFsStore::open(dir)?;
    let mut moved = 0;
    for mh in files.keys_raw()? {
        let mh = mh?;
        if let Some(data) = files.get_raw(&mh)? {
            packs.put_raw(&mh, &data)?;
            moved += 1;
        }
    }
    packs.flush_raw()?;
    let keys: Vec<Multihash> = files.keys_raw()?.collect::<Result<_, _>>()?;
    for mh in &keys {
        files.delete_raw(mh)?;
    }
    files.flush_raw()?;
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))? {
        // Shard folders, now empty; anything else is left alone (remove_dir refuses).
        if let Ok(entry) = entry
            && entry.file_name().len() == 2
        {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
    std::fs::remove_file(&sharding).map_err(|e| StoreError::io("remove", &sharding, e))?;
    tracing::info!(blocks = moved, dir = %dir.display(), "large blocks moved into packs");
    Ok(moved)
}

/// Small blocks in sled, large ones in packs.
#[derive(Debug)]
pub struct TieredStore {
    small: SledStore,
    large: PackStore,
}

impl TieredStore {
    pub fn new(small: SledStore, large: PackStore) -> Self {
        Self { small, large }
    }

    /// The two tiers, for tests that damage blocks behind the store's back.
    #[cfg(test)]
    pub(crate) fn tiers(&self) -> (&SledStore, &PackStore) {
        (&self.small, &self.large)
    }
}

impl RawBlocks for TieredStore {
    fn put_raw(&self, mh: &Multihash, data: &[u8]) -> Result<(), StoreError> {
        if data.len() <= INLINE_LIMIT {
            self.small.put_raw(mh, data)
        } else {
            self.large.put_raw(mh, data)
        }
    }

    fn put_many_raw_uncached(&self, blocks: &[(&Multihash, &[u8])]) -> Result<(), StoreError> {
        let (small, large): (Vec<_>, Vec<_>) = blocks
            .iter()
            .partition(|(_, data)| data.len() <= INLINE_LIMIT);
        small
            .iter()
            .try_for_each(|&(mh, data)| self.small.put_raw(mh, data))?;
        self.large.put_many_raw_uncached(&large)
    }

    fn get_raw(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError> {
        match self.small.get_raw(mh)? {
            Some(data) => Ok(Some(data)),
            None => self.large.get_raw(mh),
        }
    }

    fn get_checked(&self, mh: &Multihash) -> Result<Option<(Vec<u8>, Integrity)>, StoreError> {
        match self.small.get_checked(mh)? {
            Some(found) => Ok(Some(found)),
            None => self.large.get_checked(mh),
        }
    }

    fn has_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        Ok(self.small.has_raw(mh)? || self.large.has_raw(mh)?)
    }

    fn size_raw(&self, mh: &Multihash) -> Result<Option<u64>, StoreError> {
        match self.small.size_raw(mh)? {
            Some(size) => Ok(Some(size)),
            None => self.large.size_raw(mh),
        }
    }

    fn delete_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        let small = self.small.delete_raw(mh)?;
        let large = self.large.delete_raw(mh)?;
        Ok(small || large)
    }

    fn keys_raw(&self) -> Result<Keys<'_>, StoreError> {
        Ok(Box::new(
            self.small.keys_raw()?.chain(self.large.keys_raw()?),
        ))
    }

    fn flush_raw(&self) -> Result<(), StoreError> {
        self.large.flush_raw()?;
        self.small.flush_raw()
    }

    fn stat_raw(&self) -> Result<StoreStat, StoreError> {
        let (a, b) = (self.small.stat_raw()?, self.large.stat_raw()?);
        Ok(StoreStat {
            blocks: a.blocks + b.blocks,
            bytes: a.bytes + b.bytes,
        })
    }

    fn compact_raw(&self) -> Result<u64, StoreError> {
        self.large.compact_raw()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::content::cid::{CODEC_RAW, block_cid};
    use crate::store::Blockstore;

    #[test]
    fn flatfs_blocks_of_an_older_repo_move_into_packs() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        let data = vec![5u8; 100_000];
        let cid = block_cid(CODEC_RAW, 1, &data);
        FlatFsStore::open(&blobs).unwrap().put(&cid, &data).unwrap();

        let db = ::sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        let packs = PackStore::open(&db, &blobs).unwrap();
        assert_eq!(adopt_flatfs_blocks(&blobs, &packs).unwrap(), 1);
        assert_eq!(packs.get(&cid).unwrap(), Some(data));
        let left: Vec<_> = std::fs::read_dir(&blobs)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec!["00000000.pack".to_owned()]);
        assert_eq!(adopt_flatfs_blocks(&blobs, &packs).unwrap(), 0, "done once");
    }
}
