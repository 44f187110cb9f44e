//! Block store in a sled database handed in by the repo (which keeps pins in the same database).
//!
//! Two trees: `blocks` maps a multihash to the block's size (8 bytes, big-endian), and
//! `block_chunks` maps `multihash ‖ index` (u32, big-endian) to the block's bytes in
//! [`CHUNK_SIZE`] pieces. Multihashes are self-delimiting, so one block's chunk keys are exactly
//! the keys under its multihash prefix. A block of at most [`INLINE_MAX`] bytes is kept inline
//! instead: its `blocks` value is the size followed by the bytes, and it has no chunks — one
//! entry instead of two, which for a store of many tiny blocks (directory nodes, small files,
//! NFT metadata) halves sled's entries and the memory its page cache holds for them. Entries
//! of exactly 8 bytes (every block written before inline storage, and empty blocks) read their
//! bytes from the chunks.
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

use ::sled::{Batch, Db, Tree};

use super::{Keys, Multihash, RawBlocks, StoreError};

/// Name of the tree mapping multihashes to block sizes.
pub const BLOCKS_TREE: &str = "blocks";
/// Name of the tree holding the blocks' bytes.
pub const CHUNKS_TREE: &str = "block_chunks";
/// Bytes per stored chunk: small enough for sled's cache limit to bound memory.
pub const CHUNK_SIZE: usize = 4096;
/// Blocks up to this size are stored inline in their `blocks` entry.
pub const INLINE_MAX: usize = 1024;

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

/// A `blocks` entry: the size, and the bytes when they are stored inline. An inline entry's
/// size is its bytes' length (a damaged size field cannot misreport it; damaged bytes fail the
/// hash check on read like damaged chunks do).
fn decode_entry<'a>(
    mh: &Multihash,
    value: &'a [u8],
) -> Result<(u64, Option<&'a [u8]>), StoreError> {
    match value.split_first_chunk::<8>() {
        Some((size, [])) => Ok((u64::from_be_bytes(*size), None)),
        Some((_, bytes)) => Ok((bytes.len() as u64, Some(bytes))),
        None => Err(StoreError::BadKey {
            key: format!("{mh:?}"),
            reason: format!("size entry is {} bytes, under 8", value.len()),
        }),
    }
}

fn inline_entry(data: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + data.len());
    value.extend_from_slice(&(data.len() as u64).to_be_bytes());
    value.extend_from_slice(data);
    value
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
        self.delete_raw(mh)?;
        self.write(mh.to_bytes(), data)
    }

    /// Store a block known to be absent: inline, or chunks first and then the size entry, so
    /// a size entry is only ever durable after the bytes it describes.
    fn write(&self, key: Vec<u8>, data: &[u8]) -> Result<(), StoreError> {
        let value = if !data.is_empty() && data.len() <= INLINE_MAX {
            inline_entry(data)
        } else {
            self.write_chunks(&key, data)?;
            (data.len() as u64).to_be_bytes().to_vec()
        };
        self.sizes
            .insert(key, value)
            .map_err(sled_err("write size"))?;
        Ok(())
    }
}

impl RawBlocks for SledStore {
    fn put_raw(&self, mh: &Multihash, data: &[u8]) -> Result<(), StoreError> {
        if self.has_raw(mh)? {
            return Ok(());
        }
        self.write(mh.to_bytes(), data)
    }

    fn get_raw(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError> {
        let key = mh.to_bytes();
        let Some(value) = self.sizes.get(&key).map_err(sled_err("read size"))? else {
            return Ok(None);
        };
        let (size, inline) = decode_entry(mh, &value)?;
        if let Some(bytes) = inline {
            return Ok(Some(bytes.to_vec()));
        }
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
            Some(value) => decode_entry(mh, &value).map(|(size, _)| Some(size)),
            None => Ok(None),
        }
    }

    fn delete_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        let key = mh.to_bytes();
        // Size entry first: the block disappears before its bytes do.
        let Some(old) = self.sizes.remove(&key).map_err(sled_err("delete block"))? else {
            // No entry: chunks left by a put cut short are still removed.
            self.remove_chunks(&key)?;
            return Ok(false);
        };
        if !matches!(decode_entry(mh, &old), Ok((_, Some(_)))) {
            self.remove_chunks(&key)?;
        }
        Ok(true)
    }

    fn keys_raw(&self) -> Result<Keys<'_>, StoreError> {
        Ok(multihash_keys(&self.sizes))
    }

    fn flush_raw(&self) -> Result<(), StoreError> {
        self.sizes.flush().map_err(sled_err("flush"))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::content::cid::{CODEC_RAW, block_cid};

    fn open() -> (tempfile::TempDir, Db, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = ::sled::Config::new().path(dir.path()).open().unwrap();
        let store = SledStore::new(&db).unwrap();
        (dir, db, store)
    }

    fn chunk_count(store: &SledStore, mh: &Multihash) -> usize {
        store.chunks.scan_prefix(mh.to_bytes()).count()
    }

    #[test]
    fn small_blocks_are_one_entry_and_larger_ones_are_chunked() {
        let (_dir, _db, store) = open();
        for (len, chunks) in [
            (1, 0),
            (INLINE_MAX, 0),
            (INLINE_MAX + 1, 1),
            (3 * CHUNK_SIZE, 3),
        ] {
            let data = vec![7u8; len];
            let cid = block_cid(CODEC_RAW, 1, &data);
            store.put_raw(cid.hash(), &data).unwrap();
            assert_eq!(chunk_count(&store, cid.hash()), chunks, "{len} bytes");
            assert_eq!(store.size_raw(cid.hash()).unwrap(), Some(len as u64));
            assert_eq!(store.get_raw(cid.hash()).unwrap(), Some(data));
            assert!(store.delete_raw(cid.hash()).unwrap());
            assert_eq!(store.get_raw(cid.hash()).unwrap(), None);
        }
        assert!(store.chunks.is_empty(), "delete left chunks behind");
    }

    /// Repos written before inline storage keep every block as a size entry plus chunks.
    #[test]
    fn blocks_written_as_size_and_chunks_still_read_and_delete() {
        let (_dir, _db, store) = open();
        let data = b"a small block from an older repo".to_vec();
        let cid = block_cid(CODEC_RAW, 1, &data);
        let key = cid.hash().to_bytes();
        store.write_chunks(&key, &data).unwrap();
        store
            .sizes
            .insert(&key, &(data.len() as u64).to_be_bytes())
            .unwrap();
        assert!(store.has_raw(cid.hash()).unwrap());
        assert_eq!(store.size_raw(cid.hash()).unwrap(), Some(data.len() as u64));
        assert_eq!(store.get_raw(cid.hash()).unwrap(), Some(data));
        assert!(store.delete_raw(cid.hash()).unwrap());
        assert!(store.chunks.is_empty() && store.sizes.is_empty());
    }

    #[test]
    fn a_size_entry_under_8_bytes_is_a_named_error() {
        let (_dir, _db, store) = open();
        let cid = block_cid(CODEC_RAW, 1, b"x");
        store
            .sizes
            .insert(cid.hash().to_bytes(), &[1u8, 2])
            .unwrap();
        let err = store.get_raw(cid.hash()).unwrap_err();
        assert!(err.to_string().contains("under 8"), "{err}");
    }
}
