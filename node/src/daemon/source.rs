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
//! arrived. The fetches hand back the delivered bytes ([`Bitswap::fetch_keeping`]), and the
//! exporter's read of such a block takes them from memory instead of reading the block back
//! from the store; past [`KEPT_BYTES`] held, a delivered block is read back from the store
//! without the store's second hash of it. Either way a read hashes everything it fetches once.
//! Blocks that were already local are read verified as always.
//!
//! Commands run in `spawn_blocking`, so `get_block` may block on the runtime handle.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cid::Cid;
use tokio::runtime::Handle;

use crate::content::exporter::{BlockSource, FetchReport, PREFETCH_WINDOW, SourceError};
use crate::net::bitswap::Bitswap;
use crate::net::bitswap::fetch::{Depth, FetchError, FetchStats};
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
    fresh: Mutex<Fresh>,
}

/// Bytes of delivered blocks one fetch hands back: a prefetch window's leaves and the nodes
/// above them.
const KEEP_PER_FETCH: usize = PREFETCH_WINDOW as usize + (1 << 20);

/// Delivered bytes a source holds at most: the window being read and the one fetched ahead.
pub const KEPT_BYTES: usize = 2 * KEEP_PER_FETCH;

/// Delivered blocks not read yet, with the bytes of some of them (at most `limit` bytes).
struct Fresh {
    blocks: HashMap<Multihash, Option<Bytes>>,
    /// Bytes held in `blocks`.
    bytes: usize,
    limit: usize,
}

impl Fresh {
    fn new(limit: usize) -> Self {
        Self {
            blocks: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// Note `hash` as delivered (bytes already held for it stay).
    fn note(&mut self, hash: Multihash) {
        self.blocks.entry(hash).or_insert(None);
    }

    /// Note `hash` as delivered and hold `data` for it, unless that would pass the limit;
    /// false (and nothing changed) when it would.
    fn keep(&mut self, hash: Multihash, data: Bytes) -> bool {
        let replaced = self.held(&hash);
        if self.bytes - replaced + data.len() > self.limit {
            return false;
        }
        self.bytes = self.bytes - replaced + data.len();
        self.blocks.insert(hash, Some(data));
        true
    }

    fn held(&self, hash: &Multihash) -> usize {
        self.blocks
            .get(hash)
            .and_then(Option::as_ref)
            .map_or(0, Bytes::len)
    }

    /// Whether `hash` was delivered and not read since, with its bytes when held; it is no
    /// longer fresh afterwards.
    fn take(&mut self, hash: &Multihash) -> Option<Option<Bytes>> {
        self.bytes -= self.held(hash);
        self.blocks.remove(hash)
    }
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
            fresh: Mutex::new(Fresh::new(KEPT_BYTES)),
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

    /// The block as our fetch just delivered (and verified) it: from memory when kept, else
    /// read back from the store as stored. Any other block is read and verified by the store.
    fn read_local(&self, cid: &Cid) -> Result<Option<Bytes>, crate::store::StoreError> {
        let fresh = self.fresh.lock().ok().and_then(|mut f| f.take(cid.hash()));
        match fresh {
            Some(Some(data)) => return Ok(Some(data)),
            Some(None) => {
                if let Some(data) = self.store.get_unverified(cid.hash())? {
                    return Ok(Some(data.into()));
                }
            }
            None => {}
        }
        Ok(self.store.get(cid)?.map(Bytes::from))
    }

    /// Fetch `cids` to `depth`, keeping what it delivers for the reads that follow.
    fn fetch(&self, cids: &[Cid], depth: Depth) -> Result<(), SourceError> {
        let stats = self.runtime.block_on(self.bitswap.fetch_keeping(
            cids,
            depth,
            self.timeout,
            KEEP_PER_FETCH,
        ))?;
        if depth == Depth::Dags {
            log_dag_fetch(&stats, false);
        }
        self.record(stats);
        Ok(())
    }

    /// Note a finished fetch: its blocks as fresh, the bytes it kept while there is room,
    /// its bytes in its top peer's report.
    fn record(&self, stats: FetchStats) {
        if let Ok(mut fresh) = self.fresh.lock() {
            for cid in &stats.delivered {
                fresh.note(*cid.hash());
            }
            for (cid, data) in stats.kept {
                if !fresh.keep(*cid.hash(), data) {
                    break; // the rest are read back from the store
                }
            }
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
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, SourceError> {
        if let Some(data) = self.read_local(cid)? {
            return Ok(Some(data));
        }
        tracing::debug!(%cid, "block not local; fetching it over bitswap");
        self.fetch(&[*cid], Depth::Blocks)?;
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
                self.record(stats);
            }
        }
        let missing = self.missing(cids)?;
        if missing.is_empty() {
            return Ok(());
        }
        tracing::debug!(roots = missing.len(), first = %missing[0], "fetching DAGs over bitswap");
        self.fetch(&missing, Depth::Dags)?;
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
        let task = self.runtime.spawn(async move {
            bitswap
                .fetch_keeping(&missing, Depth::Dags, timeout, KEEP_PER_FETCH)
                .await
        });
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
        self.fetch(&missing, Depth::Blocks)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::cid::sha256_multihash;

    #[test]
    fn kept_blocks_stay_within_the_limit_and_are_taken_once() {
        let (a, b, c, d) = (
            sha256_multihash(b"a"),
            sha256_multihash(b"b"),
            sha256_multihash(b"c"),
            sha256_multihash(b"d"),
        );
        let held = |data: &'static [u8]| Some(Some(Bytes::from_static(data)));
        let mut fresh = Fresh::new(10);
        assert!(fresh.keep(a, Bytes::from_static(b"123456")));
        assert!(!fresh.keep(b, Bytes::from_static(b"12345")), "6 + 5 > 10");
        assert!(fresh.keep(b, Bytes::from_static(b"1234")));
        assert_eq!(fresh.bytes, 10);
        // The same block again replaces, not adds to, what is held for it.
        assert!(fresh.keep(a, Bytes::from_static(b"123456")));
        assert_eq!(fresh.bytes, 10);
        assert!(!fresh.keep(c, Bytes::from_static(b"1")));
        assert_eq!(fresh.take(&a), held(b"123456"));
        assert_eq!(fresh.take(&a), None, "taken once");
        assert_eq!(fresh.bytes, 4);
        assert!(fresh.keep(c, Bytes::from_static(b"1")));
        assert_eq!(fresh.take(&b), held(b"1234"));
        assert_eq!(fresh.take(&c), held(b"1"));
        assert_eq!(fresh.bytes, 0);

        // A block noted without bytes is fresh once; noting a held one keeps its bytes.
        fresh.note(d);
        assert!(fresh.keep(a, Bytes::from_static(b"12")));
        fresh.note(a);
        assert_eq!(fresh.take(&d), Some(None));
        assert_eq!(fresh.take(&d), None);
        assert_eq!(fresh.take(&a), held(b"12"));
        assert_eq!(fresh.bytes, 0);
    }
}
