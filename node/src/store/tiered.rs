//! The `sled` backend as repositories use it: small blocks in sled, large blocks as files.
//!
//! sled 0.34 keeps large values resident whatever its cache size (a 1 GiB add peaked at
//! 1 GiB RSS with whole blocks, 65 MiB with blocks split into 4 KiB sled values but at a
//! fraction of the throughput), while many tiny blocks are what files are worst at. So blocks up
//! to [`INLINE_LIMIT`] bytes (directory nodes, inner file nodes, small files) live in sled and
//! larger ones (file leaves) in a flatfs folder beside it. Which tier holds a block follows from
//! its size alone, so no index is needed; reads try sled first, then the file.

use super::flatfs::FlatFsStore;
use super::sled::SledStore;
use super::{Keys, Multihash, RawBlocks, StoreError, StoreStat};

/// Largest block kept inside sled.
pub const INLINE_LIMIT: usize = 64 * 1024;

/// Small blocks in sled, large ones as files.
#[derive(Debug)]
pub struct TieredStore {
    small: SledStore,
    large: FlatFsStore,
}

impl TieredStore {
    pub fn new(small: SledStore, large: FlatFsStore) -> Self {
        Self { small, large }
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

    fn get_raw(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError> {
        match self.small.get_raw(mh)? {
            Some(data) => Ok(Some(data)),
            None => self.large.get_raw(mh),
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
}
