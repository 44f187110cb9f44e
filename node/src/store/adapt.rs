//! Adapters between the store and the content layer: [`StoreSink`] lets the importer write
//! into a [`Blockstore`], [`StoreSource`] lets the exporter read verified blocks from it.

use cid::Cid;

use super::Blockstore;
use crate::content::exporter::{BlockSource, SourceError};
use crate::content::importer::{BlockSink, SinkError};

/// Importer output into a block store.
pub struct StoreSink<'a> {
    store: &'a dyn Blockstore,
}

impl<'a> StoreSink<'a> {
    pub fn new(store: &'a dyn Blockstore) -> Self {
        Self { store }
    }
}

impl BlockSink for StoreSink<'_> {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), SinkError> {
        Ok(self.store.put(cid, data)?)
    }
}

/// Exporter input from a block store; [`Blockstore::get`] has already verified each block.
pub struct StoreSource<'a> {
    store: &'a dyn Blockstore,
}

impl<'a> StoreSource<'a> {
    pub fn new(store: &'a dyn Blockstore) -> Self {
        Self { store }
    }
}

impl BlockSource for StoreSource<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.store.get(cid)?)
    }
}
