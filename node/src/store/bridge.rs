//! The block store as the importer's [`BlockSink`] and the exporter's [`BlockSource`], so
//! `add` writes straight into a repo and `cat` reads verified blocks out of it.
//!
//! Implemented for `&dyn Blockstore` (a sized type), so `&mut repo.blocks()` and
//! `&repo.blocks()` coerce to `&mut dyn BlockSink` and `&dyn BlockSource`.

use cid::Cid;

use super::Blockstore;
use crate::content::exporter::{BlockSource, SourceError};
use crate::content::importer::{BlockSink, SinkError};

impl BlockSink for &dyn Blockstore {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), SinkError> {
        Ok(Blockstore::put(*self, cid, data)?)
    }
}

impl BlockSource for &dyn Blockstore {
    /// Verified by [`Blockstore::get`], as the exporter requires.
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(Blockstore::get(*self, cid)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::content::exporter::read_range;
    use crate::content::importer::{ImportOptions, import_bytes};
    use crate::store::memory::MemoryStore;

    #[test]
    fn imported_file_reads_back_through_the_store() {
        let memory = MemoryStore::new();
        let store: &dyn Blockstore = &memory;
        let content: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let root = import_bytes(&content, &ImportOptions::default(), &mut { store }).unwrap();
        assert!(
            store.stat().unwrap().blocks > 2,
            "expected a multi-block file"
        );
        let mut out = Vec::new();
        read_range(&store, &root.cid, 0, None, &mut out).unwrap();
        assert_eq!(out, content);
    }
}
