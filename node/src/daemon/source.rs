//! [`NetworkSource`]: the block source commands read through while the daemon runs. A block
//! comes from the local store when it is there; otherwise the DAG below it is fetched over
//! Bitswap (with a timeout), stored, and the block is read back from the store, so what the
//! exporter sees is always verified by `Blockstore::get`.
//!
//! Commands run in `spawn_blocking`, so `get_block` may block on the runtime handle.

use std::sync::Mutex;
use std::time::Duration;

use cid::Cid;
use tokio::runtime::Handle;

use crate::content::exporter::{BlockSource, FetchReport, SourceError};
use crate::net::bitswap::Bitswap;
use crate::store::Blockstore;

/// Store first, then the network.
pub struct NetworkSource<'a> {
    store: &'a dyn Blockstore,
    bitswap: Bitswap,
    runtime: Handle,
    timeout: Duration,
    reports: Mutex<Vec<FetchReport>>,
}

impl<'a> NetworkSource<'a> {
    pub fn new(
        store: &'a dyn Blockstore,
        bitswap: Bitswap,
        runtime: Handle,
        timeout: Duration,
    ) -> Self {
        Self {
            store,
            bitswap,
            runtime,
            timeout,
            reports: Mutex::new(Vec::new()),
        }
    }
}

impl BlockSource for NetworkSource<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, SourceError> {
        if let Some(data) = self.store.get(cid)? {
            return Ok(Some(data));
        }
        tracing::info!(%cid, "block not local; fetching its DAG over bitswap");
        let stats = self
            .runtime
            .block_on(self.bitswap.fetch_dag(*cid, self.timeout))?;
        tracing::info!(%cid, blocks = stats.blocks, bytes = stats.bytes, "fetched");
        if let (Some(peer), Ok(mut reports)) = (stats.top_peer, self.reports.lock()) {
            reports.push(FetchReport {
                peer: peer.to_string(),
                bytes: stats.bytes,
                blocks: stats.blocks,
                elapsed: stats.elapsed,
            });
        }
        Ok(self.store.get(cid)?)
    }

    fn take_fetch_reports(&self) -> Vec<FetchReport> {
        self.reports
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}
