//! Answering on the connection's own task when that is cheap: [`InlineSource`] reads blocks
//! from the local store only, within a small budget, and gives up (marking itself
//! [`deferred`](InlineSource::deferred)) on the first block that is not local or past the
//! budget. The server then answers the request again on a blocking thread, where reads may
//! wait for Bitswap. Most gateway hits are small local files; a hop to the blocking pool and
//! back costs them more than the reads themselves (two thread wake-ups per request).
//!
//! Blocks it reads go through the gateway's [`BlockCache`]: a hit is served (while the store
//! still has the block) without reading and re-hashing it, a miss is read, verified by the
//! store, and kept.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use cid::Cid;

use super::cache::BlockCache;

use crate::content::exporter::{BlockSource, SourceError};
use crate::store::Blockstore;

/// Bytes of blocks one inline answer may read: a file up to the inline body limit, its
/// sniffed first leaf read again, the file's and the path's nodes.
pub const INLINE_READ_BYTES: u64 = 2 << 20;
/// Blocks one inline answer may read.
pub const INLINE_READ_BLOCKS: u64 = 128;

/// Why an inline read stopped; the request is answered again on a blocking thread.
#[derive(Debug, thiserror::Error)]
#[error("answer needs the network or more reads than an inline answer may do")]
pub struct Deferred;

/// Local, bounded reads; see the module docs.
pub struct InlineSource<'a> {
    store: &'a dyn Blockstore,
    cache: &'a BlockCache,
    bytes: AtomicU64,
    blocks: AtomicU64,
    deferred: AtomicBool,
}

impl<'a> InlineSource<'a> {
    pub fn new(store: &'a dyn Blockstore, cache: &'a BlockCache) -> Self {
        Self {
            store,
            cache,
            bytes: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            deferred: AtomicBool::new(false),
        }
    }

    /// Whether some read was refused: whatever the answer was, it must be made again by a
    /// source that may wait.
    pub fn deferred(&self) -> bool {
        self.deferred.load(Ordering::Relaxed)
    }

    /// Count `size` bytes read against the budget.
    fn spend(&self, size: u64) -> Result<(), SourceError> {
        if self.bytes.fetch_add(size, Ordering::Relaxed) + size > INLINE_READ_BYTES {
            return Err(self.defer());
        }
        Ok(())
    }

    fn defer(&self) -> SourceError {
        self.deferred.store(true, Ordering::Relaxed);
        Box::new(Deferred)
    }
}

impl BlockSource for InlineSource<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, SourceError> {
        if self.deferred() || self.blocks.fetch_add(1, Ordering::Relaxed) >= INLINE_READ_BLOCKS {
            return Err(self.defer());
        }
        if let Some(bytes) = self.cache.get(cid) {
            if self.store.has(cid)? {
                self.spend(bytes.len() as u64)?;
                return Ok(Some(bytes));
            }
            self.cache.remove(cid);
        }
        // The size first, so a large block is not read only to be thrown away.
        let Some(size) = self.store.block_size(cid)? else {
            return Err(self.defer());
        };
        self.spend(size)?;
        match self.store.get(cid)? {
            Some(data) => {
                let data = Bytes::from(data);
                self.cache.insert(*cid, data.clone());
                Ok(Some(data))
            }
            // Deleted (or found corrupt and deleted) since its size was read.
            None => Err(self.defer()),
        }
    }

    fn prefetch(&self, cids: &[Cid]) -> Result<(), SourceError> {
        self.prefetch_blocks(cids)
    }

    fn prefetch_blocks(&self, cids: &[Cid]) -> Result<(), SourceError> {
        // A hint about many blocks is a read larger than an inline answer does.
        if cids.len() as u64 > INLINE_READ_BLOCKS {
            return Err(self.defer());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::content::cid::block_cid;
    use crate::store::memory::MemoryStore;

    #[test]
    fn local_blocks_are_read_and_missing_ones_defer() {
        let store = MemoryStore::default();
        let here = block_cid(0x55, 1, b"here");
        store.put(&here, b"here").unwrap();
        let cache = BlockCache::new(1 << 20);
        let src = InlineSource::new(&store, &cache);
        assert_eq!(src.get_block(&here).unwrap().as_deref(), Some(&b"here"[..]));
        assert!(!src.deferred());
        let gone = block_cid(0x55, 1, b"gone");
        assert!(src.get_block(&gone).unwrap_err().is::<Deferred>());
        assert!(src.deferred());
        // Once deferred, nothing more is read.
        assert!(src.get_block(&here).is_err());
    }

    #[test]
    fn reads_past_the_budget_defer() {
        let store = MemoryStore::default();
        let big = vec![7u8; 1 << 20];
        let cid = block_cid(0x55, 1, &big);
        store.put(&cid, &big).unwrap();
        let cache = BlockCache::new(0);
        let src = InlineSource::new(&store, &cache);
        assert!(src.get_block(&cid).unwrap().is_some());
        assert!(src.get_block(&cid).unwrap().is_some());
        assert!(
            src.get_block(&cid).is_err(),
            "a third MiB is past the budget"
        );
        assert!(src.deferred());

        let small = block_cid(0x55, 1, b"s");
        store.put(&small, b"s").unwrap();
        let src = InlineSource::new(&store, &cache);
        for _ in 0..INLINE_READ_BLOCKS {
            src.get_block(&small).unwrap();
        }
        assert!(src.get_block(&small).is_err(), "too many blocks");
        let many = vec![small; INLINE_READ_BLOCKS as usize + 1];
        assert!(InlineSource::new(&store, &cache).prefetch(&many).is_err());
    }

    #[test]
    fn cached_blocks_are_served_while_the_store_has_them() {
        let store = MemoryStore::default();
        let cache = BlockCache::new(1 << 20);
        let cid = block_cid(0x55, 1, b"hot");
        store.put(&cid, b"hot").unwrap();
        InlineSource::new(&store, &cache).get_block(&cid).unwrap();
        assert_eq!(
            cache.get(&cid).as_deref(),
            Some(&b"hot"[..]),
            "kept after a read"
        );
        assert_eq!(
            InlineSource::new(&store, &cache)
                .get_block(&cid)
                .unwrap()
                .as_deref(),
            Some(&b"hot"[..])
        );
        // Collected from the store: the cached copy is not served, and is dropped.
        store.delete(&cid).unwrap();
        let src = InlineSource::new(&store, &cache);
        assert!(src.get_block(&cid).is_err());
        assert!(src.deferred());
        assert!(cache.get(&cid).is_none());
    }
}
