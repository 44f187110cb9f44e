//! Block store in a `blocks` tree of a sled database: key = multihash bytes, value = block.
//!
//! The database is handed in by the repo, which sizes its page cache (a small cache keeps the
//! memory of a large import bounded) and keeps pins in another tree of the same database.
//! [`RawBlocks::flush_raw`] flushes the whole database, which is sled's durability barrier.

use ::sled::{Db, IVec, Tree};

use super::{Keys, Multihash, RawBlocks, StoreError};

/// Name of the tree holding the blocks.
pub const BLOCKS_TREE: &str = "blocks";

/// Blocks in a sled tree.
#[derive(Debug, Clone)]
pub struct SledStore {
    tree: Tree,
}

impl SledStore {
    /// Open (or create) the `blocks` tree of `db`.
    pub fn new(db: &Db) -> Result<Self, StoreError> {
        let tree = db.open_tree(BLOCKS_TREE).map_err(sled_err("open tree"))?;
        Ok(Self { tree })
    }

    /// The tree itself, to damage blocks behind the store's back in tests.
    #[cfg(test)]
    pub(crate) fn tree(&self) -> &Tree {
        &self.tree
    }
}

fn sled_err(op: &'static str) -> impl Fn(::sled::Error) -> StoreError {
    move |source| StoreError::Sled { op, source }
}

fn decode_key(key: &IVec) -> Result<Multihash, StoreError> {
    Multihash::from_bytes(key).map_err(|e| StoreError::BadKey {
        key: format!("{key:02x?}"),
        reason: e.to_string(),
    })
}

impl RawBlocks for SledStore {
    fn put_raw(&self, mh: &Multihash, data: &[u8]) -> Result<(), StoreError> {
        // Insert only if absent: re-adding content does not rewrite it into the log.
        self.tree
            .compare_and_swap(mh.to_bytes(), None as Option<&[u8]>, Some(data))
            .map_err(sled_err("insert block"))?
            .or(Ok(()))
    }

    fn get_raw(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .tree
            .get(mh.to_bytes())
            .map_err(sled_err("read block"))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn has_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        self.tree
            .contains_key(mh.to_bytes())
            .map_err(sled_err("look up block"))
    }

    fn size_raw(&self, mh: &Multihash) -> Result<Option<u64>, StoreError> {
        let value = self
            .tree
            .get(mh.to_bytes())
            .map_err(sled_err("read block"))?;
        Ok(value.map(|v| v.len() as u64))
    }

    fn delete_raw(&self, mh: &Multihash) -> Result<bool, StoreError> {
        let old = self
            .tree
            .remove(mh.to_bytes())
            .map_err(sled_err("delete block"))?;
        Ok(old.is_some())
    }

    fn keys_raw(&self) -> Result<Keys<'_>, StoreError> {
        let keys = self.tree.iter().keys().map(|key| match key {
            Ok(key) => decode_key(&key),
            Err(source) => Err(StoreError::Sled {
                op: "list blocks",
                source,
            }),
        });
        Ok(Box::new(keys))
    }

    fn flush_raw(&self) -> Result<(), StoreError> {
        self.tree.flush().map_err(sled_err("flush"))?;
        Ok(())
    }
}
