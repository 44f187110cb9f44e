//! [`NetworkSource`]: the block source commands and the gateway read through while the daemon
//! runs. A block comes from the local store when it is there; otherwise just that block is
//! fetched over Bitswap (with a timeout), stored, and read back from the store, so what the
//! exporter sees is always verified: by `Blockstore::get`, or on arrival (see below).
//!
//! Fetching only what is read keeps a byte range, a path lookup or a directory listing from
//! pulling whole DAGs. Whole-DAG reads stay fast through the exporter's hints:
//! [`BlockSource::prefetch`] fetches the missing DAGs under the CIDs hinted in one Bitswap
//! session (many blocks in flight), [`BlockSource::prefetch_blocks`] the missing blocks
//! themselves, and [`BlockSource::prefetch_next`] starts the next window's fetch in a task
//! ([`Ahead`]) that the `prefetch` of that window then waits for, so the network keeps
//! working while a window is written out. The fetch policy (what is hinted when) lives in `content::exporter` and
//! `content::walk`; this file only turns hints into fetches.
//!
//! A block this source's own fetches just delivered was verified against its CID when it
//! arrived; reading it back for the exporter skips the store's second hash of it (one pass
//! of SHA-256 over everything a read fetches). Blocks that were already local are read
//! verified as always.
//!
//! Commands run in `spawn_blocking`, so `get_block` may block on the runtime handle.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use cid::Cid;
use tokio::runtime::Handle;

use crate::content::exporter::{BlockSource, FetchReport, SourceError};
use crate::net::bitswap::Bitswap;
use crate::net::bitswap::fetch::{FetchError, FetchStats};
use crate::store::{Blockstore, Multihash};

/// Store first, then the network.
pub struct NetworkSource<'a> {
    store: &'a dyn Blockstore,
    bitswap: Bitswap,
    runtime: Handle,
    timeout: Duration,
    /// One entry per peer that delivered the most bytes of some fetch.
    reports: Mutex<Vec<FetchReport>>,
    /// The fetch started by the last `prefetch_next`, if nobody has waited for it yet.
    ahead: Mutex<Option<Ahead>>,
    /// Blocks our fetches delivered (verified on arrival) that have not been read yet.
    fresh: Mutex<HashSet<Multihash>>,
}

/// A DAG fetch running in the background for CIDs hinted by `prefetch_next`; aborted if the
/// source is dropped first (the read failed or ended early).
struct Ahead {
    cids: Vec<Cid>,
    task: tokio::task::JoinHandle<Result<FetchStats, FetchError>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
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
            ahead: Mutex::new(None),
            fresh: Mutex::new(HashSet::new()),
        }
    }

    /// The CIDs of `cids` the store lacks, each once.
    fn missing(&self, cids: &[Cid]) -> Result<Vec<Cid>, SourceError> {
        let mut seen = std::collections::HashSet::new();
        let mut missing: Vec<Cid> = Vec::new();
        for cid in cids {
            if seen.insert(*cid) && !self.store.has(cid)? {
                missing.push(*cid);
            }
        }
        Ok(missing)
    }

    /// The stored block: as stored when our fetch just delivered (and verified) it,
    /// otherwise verified by the store.
    fn read_local(&self, cid: &Cid) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
        if self.take_fresh(cid)
            && let Some(data) = self.store.get_unverified(cid.hash())?
        {
            return Ok(Some(data));
        }
        self.store.get(cid)
    }

    /// Whether `cid` was delivered by one of our fetches and not read since.
    fn take_fresh(&self, cid: &Cid) -> bool {
        self.fresh
            .lock()
            .is_ok_and(|mut fresh| fresh.remove(cid.hash()))
    }

    /// Note a finished fetch: its blocks as fresh, its bytes in its top peer's report.
    fn record(&self, stats: &FetchStats) {
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.extend(stats.delivered.iter().map(|cid| *cid.hash()));
        }
        let (Some(peer), Ok(mut reports)) = (stats.top_peer, self.reports.lock()) else {
            return;
        };
        let peer = peer.to_string();
        match reports.iter_mut().find(|r| r.peer == peer) {
            Some(report) => {
                report.bytes += stats.bytes;
                report.blocks += stats.blocks;
                report.elapsed += stats.elapsed;
            }
            None => reports.push(FetchReport {
                peer,
                bytes: stats.bytes,
                blocks: stats.blocks,
                elapsed: stats.elapsed,
            }),
        }
    }
}

impl BlockSource for NetworkSource<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, SourceError> {
        if let Some(data) = self.read_local(cid)? {
            return Ok(Some(data));
        }
        tracing::debug!(%cid, "block not local; fetching it over bitswap");
        let stats = self
            .runtime
            .block_on(self.bitswap.fetch_blocks(&[*cid], self.timeout))?;
        self.record(&stats);
        Ok(self.read_local(cid)?)
    }

    fn prefetch(&self, cids: &[Cid]) -> Result<(), SourceError> {
        let ahead = self
            .ahead
            .lock()
            .ok()
            .and_then(|mut ahead| ahead.take_if(|a| a.cids == cids));
        if let Some(mut ahead) = ahead {
            // Started while the previous window was read: wait for it. A task that did not
            // finish (aborted, panicked) leaves whatever is still missing to the fetch below.
            if let Ok(done) = self.runtime.block_on(&mut ahead.task) {
                let stats = done?;
                log_dag_fetch(&stats, true);
                self.record(&stats);
            }
        }
        let missing = self.missing(cids)?;
        if missing.is_empty() {
            return Ok(());
        }
        tracing::debug!(roots = missing.len(), first = %missing[0], "fetching DAGs over bitswap");
        let stats = self
            .runtime
            .block_on(self.bitswap.fetch_dags(&missing, self.timeout))?;
        log_dag_fetch(&stats, false);
        self.record(&stats);
        Ok(())
    }

    fn prefetch_next(&self, cids: &[Cid]) {
        let Ok(missing) = self.missing(cids) else {
            return; // the later prefetch meets the same store error
        };
        if missing.is_empty() {
            return;
        }
        let bitswap = self.bitswap.clone();
        let timeout = self.timeout;
        let task = self
            .runtime
            .spawn(async move { bitswap.fetch_dags(&missing, timeout).await });
        if let Ok(mut ahead) = self.ahead.lock() {
            // Replacing an earlier one drops (aborts) it; its blocks are fetched when read.
            *ahead = Some(Ahead {
                cids: cids.to_vec(),
                task,
            });
        }
    }

    fn prefetch_blocks(&self, cids: &[Cid]) -> Result<(), SourceError> {
        let missing = self.missing(cids)?;
        if missing.is_empty() {
            return Ok(());
        }
        let stats = self
            .runtime
            .block_on(self.bitswap.fetch_blocks(&missing, self.timeout))?;
        self.record(&stats);
        Ok(())
    }

    fn take_fetch_reports(&self) -> Vec<FetchReport> {
        self.reports
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

fn log_dag_fetch(stats: &FetchStats, ahead: bool) {
    tracing::debug!(
        blocks = stats.blocks,
        bytes = stats.bytes,
        ms = stats.elapsed.as_millis() as u64,
        ahead,
        "DAGs fetched"
    );
}
