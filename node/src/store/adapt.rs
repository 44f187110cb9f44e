//! Adapters between the store and the content layer: [`StoreSink`] lets the importer write
//! into a [`Blockstore`], [`StoreSource`] lets the exporter read verified blocks from it.

use bytes::Bytes;
use cid::Cid;

use super::{Blockstore, StoreError};
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
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, SourceError> {
        Ok(self.store.get(cid)?.map(Bytes::from))
    }
}

/// Importer output stored by background threads, so storing overlaps reading and hashing.
///
/// `put` hands a copy of the block to one of the writer threads through a bounded queue (a few
/// blocks deep, so memory stays bounded). [`PipelinedSink::finish`] waits for every write and
/// returns the first error; a write error also makes later `put`s fail fast.
pub struct PipelinedSink<'scope> {
    tx: Option<crossbeam_channel::Sender<(Cid, Vec<u8>)>>,
    workers: Vec<std::thread::ScopedJoinHandle<'scope, Result<(), StoreError>>>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Blocks queued per writer thread.
const QUEUE_PER_WRITER: usize = 4;

impl<'scope> PipelinedSink<'scope> {
    pub fn new<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        store: &'env dyn Blockstore,
        writers: usize,
    ) -> Self {
        let writers = writers.max(1);
        let (tx, rx) = crossbeam_channel::bounded::<(Cid, Vec<u8>)>(writers * QUEUE_PER_WRITER);
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers = (0..writers)
            .map(|_| {
                let rx = rx.clone();
                let failed = failed.clone();
                scope.spawn(move || {
                    for (cid, data) in rx.iter() {
                        if let Err(e) = store.put(&cid, &data) {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        Self {
            tx: Some(tx),
            workers,
            failed,
        }
    }

    /// Wait for every queued block to be stored.
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.tx = None;
        let mut first = Ok(());
        for worker in self.workers.drain(..) {
            let result = worker.join().unwrap_or_else(|_| {
                Err(StoreError::io(
                    "write",
                    std::path::Path::new("<writer>"),
                    std::io::Error::other("writer thread panicked"),
                ))
            });
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

impl BlockSink for PipelinedSink<'_> {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), SinkError> {
        let failed = || SinkError::from("a block write failed; see the error that follows");
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(failed());
        }
        let tx = self.tx.as_ref().ok_or_else(failed)?;
        tx.send((*cid, data.to_vec())).map_err(|_| failed())
    }
}
