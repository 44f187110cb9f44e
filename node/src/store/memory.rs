//! In-memory block store: a `HashMap` from multihash to bytes under a `Mutex`.
//!
//! For tests and throwaway nodes; nothing survives the process, so [`RawBlocks::flush_raw`]
//! has nothing to do.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Keys, Multihash, RawBlocks, StoreError, StoreStat};

/// Blocks held in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    blocks: Mutex<HashMap<Multihash, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A poisoned lock only means another thread panicked mid-call; the map itself is intact.
    fn map(&self) -> MutexGuard<'_, HashMap<Multihash, Vec<u8>>> {
        self.blocks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Overwrite a block's bytes behind the store's back, as disk corruption would.
    #[cfg(test)]
    pub(crate) fn corrupt(&self, mh: &Multihash, data: &[u8]) {
        self.map().insert(*mh, data.to_vec());
    }
}

impl RawBlocks for MemoryStore {
    fn put_raw(&self, mh: &Multihash, data: &[u8]) -> Result<(), StoreError> {
        if let Entry::Vacant(slot) = self.map().entry(*mh) {
            slot.insert(data.to_vec());
        }
        Ok(())
    }

    fn get_raw(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map().get(mh).cloned())
    }

    fn has_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        Ok(self.map().contains_key(mh))
    }

    fn size_raw(&self, mh: &Multihash) -> Result<Option<u64>, StoreError> {
        Ok(self.map().get(mh).map(|d| d.len() as u64))
    }

    fn delete_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        Ok(self.map().remove(mh).is_some())
    }

    fn keys_raw(&self) -> Result<Keys<'_>, StoreError> {
        let keys: Vec<Multihash> = self.map().keys().copied().collect();
        Ok(Box::new(keys.into_iter().map(Ok)))
    }

    fn flush_raw(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn stat_raw(&self) -> Result<StoreStat, StoreError> {
        let map = self.map();
        Ok(StoreStat {
            blocks: map.len() as u64,
            bytes: map.values().map(|d| d.len() as u64).sum(),
        })
    }
}
