//! Block store in a sled database handed in by the repo (which keeps pins in the same database).
//!
//! Two trees: `blocks` maps a multihash to the block's size (8 bytes, big-endian), and
//! `block_chunks` maps `multihash ‖ index` (u32, big-endian) to the block's bytes in
//! [`CHUNK_SIZE`] pieces. Multihashes are self-delimiting, so one block's chunk keys are exactly
//! the keys under its multihash prefix.
//!
//! Why chunks: sled 0.34 charges its page cache by on-disk size, and values over about a
//! quarter of a segment are stored as out-of-line blobs whose cache charge is a pointer, so
//! whole 256 KiB blocks stayed in memory: a 1 GiB import peaked at 1 GiB RSS whatever
//! `cache_capacity` said. With 4 KiB chunks the cache bound holds (about 70 MiB peak for the
//! same import; 8 KiB chunks gave 114 MiB).
//!
//! Order makes it crash-safe: a put writes the chunks before the size entry, a delete removes
//! the size entry first, and sled recovers a prefix of its log; a block whose chunks do not add
//! up fails verification in [`Blockstore::get`](super::Blockstore::get) and is deleted.
//! [`RawBlocks::flush_raw`] flushes the database, sled's durability barrier.

use ::sled::{Batch, Db, IVec, Tree};

use super::{Keys, Multihash, RawBlocks, StoreError};

/// Name of the tree mapping multihashes to block sizes.
pub const BLOCKS_TREE: &str = "blocks";
/// Name of the tree holding the blocks' bytes.
pub const CHUNKS_TREE: &str = "block_chunks";
/// Bytes per stored chunk: small enough for sled's cache limit to bound memory.
pub const CHUNK_SIZE: usize = 4096;

/// Blocks in sled trees.
#[derive(Debug, Clone)]
pub struct SledStore {
    sizes: Tree,
    chunks: Tree,
}

pub(super) fn sled_err(op: &'static str) -> impl Fn(::sled::Error) -> StoreError {
    move |source| StoreError::Sled { op, source }
}

/// Every key of a sled tree keyed by multihash bytes (the block trees of sled and pack stores).
pub(super) fn multihash_keys(tree: &::sled::Tree) -> Keys<'_> {
    Box::new(tree.iter().keys().map(|key| {
        let key = key.map_err(sled_err("list blocks"))?;
        Multihash::from_bytes(&key).map_err(|e| StoreError::BadKey {
            key: format!("{key:02x?}"),
            reason: e.to_string(),
        })
    }))
}

fn chunk_key(mh: &[u8], index: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(mh.len() + 4);
    key.extend_from_slice(mh);
    // A 2 MiB block has 512 chunks; u32 is ample.
    key.extend_from_slice(&(index as u32).to_be_bytes());
    key
}

fn decode_size(mh: &Multihash, value: &IVec) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = value.as_ref().try_into().map_err(|_| StoreError::BadKey {
        key: format!("{mh:?}"),
        reason: format!("size entry is {} bytes, not 8", value.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

impl SledStore {
    /// Open (or create) the block trees of `db`.
    pub fn new(db: &Db) -> Result<Self, StoreError> {
        let open = |name| db.open_tree(name).map_err(sled_err("open tree"));
        Ok(Self {
            sizes: open(BLOCKS_TREE)?,
            chunks: open(CHUNKS_TREE)?,
        })
    }

    fn write_chunks(&self, key: &[u8], data: &[u8]) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        for (i, chunk) in data.chunks(CHUNK_SIZE).enumerate() {
            batch.insert(chunk_key(key, i), chunk);
        }
        self.chunks
            .apply_batch(batch)
            .map_err(sled_err("write block"))
    }

    fn remove_chunks(&self, key: &[u8]) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        for entry in self.chunks.scan_prefix(key).keys() {
            batch.remove(entry.map_err(sled_err("list chunks"))?);
        }
        self.chunks
            .apply_batch(batch)
            .map_err(sled_err("delete block"))
    }

    /// Replace a block's bytes without any check, as disk corruption would.
    #[cfg(test)]
    pub(crate) fn overwrite(&self, mh: &Multihash, data: &[u8]) -> Result<(), StoreError> {
        let key = mh.to_bytes();
        self.remove_chunks(&key)?;
        self.write_chunks(&key, data)?;
        self.sizes
            .insert(&key, &(data.len() as u64).to_be_bytes())
            .map_err(sled_err("write size"))?;
        Ok(())
    }
}

impl RawBlocks for SledStore {
    fn put_raw(&self, mh: &Multihash, data: &[u8]) -> Result<(), StoreError> {
        let key = mh.to_bytes();
        if self.has_raw(mh)? {
            return Ok(());
        }
        // Chunks first: a size entry is only ever durable after the bytes it describes.
        self.write_chunks(&key, data)?;
        self.sizes
            .insert(key, &(data.len() as u64).to_be_bytes())
            .map_err(sled_err("write size"))?;
        Ok(())
    }

    fn get_raw(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError> {
        let key = mh.to_bytes();
        let Some(size) = self.size_raw(mh)? else {
            return Ok(None);
        };
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        for entry in self.chunks.scan_prefix(&key).values() {
            data.extend_from_slice(&entry.map_err(sled_err("read block"))?);
        }
        Ok(Some(data))
    }

    fn has_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        self.sizes
            .contains_key(mh.to_bytes())
            .map_err(sled_err("look up block"))
    }

    fn size_raw(&self, mh: &Multihash) -> Result<Option<u64>, StoreError> {
        match self
            .sizes
            .get(mh.to_bytes())
            .map_err(sled_err("read size"))?
        {
            Some(value) => decode_size(mh, &value).map(Some),
            None => Ok(None),
        }
    }

    fn delete_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        let key = mh.to_bytes();
        // Size entry first: the block disappears before its bytes do.
        let existed = self
            .sizes
            .remove(&key)
            .map_err(sled_err("delete block"))?
            .is_some();
        self.remove_chunks(&key)?;
        Ok(existed)
    }

    fn keys_raw(&self) -> Result<Keys<'_>, StoreError> {
        Ok(multihash_keys(&self.sizes))
    }

    fn flush_raw(&self) -> Result<(), StoreError> {
        self.sizes.flush().map_err(sled_err("flush"))?;
        Ok(())
    }
}
