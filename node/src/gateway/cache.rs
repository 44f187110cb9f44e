//! The gateway's cache of hot blocks: the bytes of blocks recently served, already verified
//! against their CIDs when they were read from the store, kept up to a byte budget
//! (`--gateway-cache-mib`) and evicted least recently used first.
//!
//! A popular file is then served from memory instead of being read and re-hashed on every
//! request (SHA-256 was over half of the gateway's CPU for a 1 MiB file). A cached block is
//! only served while the store still has it, so `pin rm` + `repo gc` take content off the
//! gateway as before; a block too large for an eighth of the budget is not cached, so one
//! request cannot flush the rest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use cid::Cid;

/// Default budget of the cache.
pub const DEFAULT_CACHE_MIB: u64 = 32;

/// Verified blocks by CID, least recently used evicted first.
#[derive(Debug)]
pub struct BlockCache {
    capacity: u64,
    inner: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    /// Block bytes and the tick of their last use.
    blocks: HashMap<Cid, (Bytes, u64)>,
    /// Last-use tick → CID: the first entry is the one to evict.
    order: BTreeMap<u64, Cid>,
    bytes: u64,
    tick: u64,
}

impl BlockCache {
    /// A cache holding up to `capacity` bytes of blocks (0 turns it off).
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Lru::default()),
        }
    }

    /// The cached bytes of `cid`, marked as just used.
    pub fn get(&self, cid: &Cid) -> Option<Bytes> {
        let mut lru = self.inner.lock().ok()?;
        lru.tick += 1;
        let tick = lru.tick;
        let (bytes, used) = lru.blocks.get_mut(cid)?;
        let (bytes, old) = (bytes.clone(), std::mem::replace(used, tick));
        lru.order.remove(&old);
        lru.order.insert(tick, *cid);
        Some(bytes)
    }

    /// Keep `bytes` (which must hash to `cid`) if they fit the budget, evicting as needed.
    pub fn insert(&self, cid: Cid, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size > self.capacity / 8 {
            return;
        }
        let Ok(mut lru) = self.inner.lock() else {
            return;
        };
        lru.remove(&cid);
        while lru.bytes + size > self.capacity {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            lru.remove(&oldest);
        }
        lru.tick += 1;
        let tick = lru.tick;
        lru.order.insert(tick, cid);
        lru.blocks.insert(cid, (bytes, tick));
        lru.bytes += size;
    }

    /// Forget `cid` (the store no longer has it).
    pub fn remove(&self, cid: &Cid) {
        if let Ok(mut lru) = self.inner.lock() {
            lru.remove(cid);
        }
    }

    /// Bytes of blocks held.
    pub fn held_bytes(&self) -> u64 {
        self.inner.lock().map_or(0, |lru| lru.bytes)
    }
}

impl Lru {
    fn remove(&mut self, cid: &Cid) {
        if let Some((bytes, tick)) = self.blocks.remove(cid) {
            self.order.remove(&tick);
            self.bytes -= bytes.len() as u64;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::content::cid::block_cid;

    fn block(n: u8, len: usize) -> (Cid, Bytes) {
        let data = vec![n; len];
        (block_cid(0x55, 1, &data), Bytes::from(data))
    }

    #[test]
    fn least_recently_used_blocks_go_first() {
        let cache = BlockCache::new(8 * 100);
        let (a, b, c) = (block(1, 100), block(2, 100), block(3, 100));
        for (cid, bytes) in [&a, &b, &c] {
            cache.insert(*cid, bytes.clone());
        }
        assert_eq!(cache.held_bytes(), 300);
        assert_eq!(
            cache.get(&a.0),
            Some(a.1.clone()),
            "a is now the most recent"
        );
        for n in 4..=9 {
            let (cid, bytes) = block(n, 100);
            cache.insert(cid, bytes);
        }
        assert_eq!(cache.held_bytes(), 800);
        assert!(cache.get(&b.0).is_none(), "b was the least recently used");
        assert!(cache.get(&a.0).is_some());
        assert!(cache.get(&c.0).is_some());
        // Reinserting does not count a block twice.
        cache.insert(a.0, a.1.clone());
        assert_eq!(cache.held_bytes(), 800);
    }

    #[test]
    fn large_blocks_and_a_zero_budget_are_not_kept() {
        let cache = BlockCache::new(800);
        let (cid, bytes) = block(1, 101);
        cache.insert(cid, bytes);
        assert!(cache.get(&cid).is_none(), "over an eighth of the budget");
        let off = BlockCache::new(0);
        let (cid, bytes) = block(2, 1);
        off.insert(cid, bytes);
        assert!(off.get(&cid).is_none());
        assert_eq!(off.held_bytes(), 0);
    }

    #[test]
    fn removed_blocks_are_gone() {
        let cache = BlockCache::new(800);
        let (cid, bytes) = block(1, 10);
        cache.insert(cid, bytes);
        cache.remove(&cid);
        assert!(cache.get(&cid).is_none());
        assert_eq!(cache.held_bytes(), 0);
    }
}
