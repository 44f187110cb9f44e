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
use std::collections::{HashMap, HashSet};
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
    fresh: Mutex<HashSet<Multihash>>,
    /// The bytes of some of the `fresh` blocks (at most [`KEPT_BYTES`]), taken when read.
    kept: Mutex<Kept>,
}

/// Bytes of delivered blocks one fetch hands back: a prefetch window's leaves and the nodes
/// above them.
const KEEP_PER_FETCH: usize = PREFETCH_WINDOW as usize + (1 << 20);

/// Delivered bytes a source holds at most: the window being read and the one fetched ahead.
pub const KEPT_BYTES: usize = 2 * KEEP_PER_FETCH;

/// Delivered blocks held for their first read, at most `limit` bytes of them.
struct Kept {
    blocks: HashMap<Multihash, Bytes>,
    bytes: usize,
    limit: usize,
}

impl Kept {
    fn new(limit: usize) -> Self {
        Self {
            blocks: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// Hold `data` for `hash` unless that would pass the limit; false when it was not held.
    fn add(&mut self, hash: Multihash, data: Bytes) -> bool {
        let replaced = self.blocks.get(&hash).map_or(0, Bytes::len);
        if self.bytes - replaced + data.len() > self.limit {
            return false;
        }
        self.bytes = self.bytes - replaced + data.len();
        self.blocks.insert(hash, data);
        true
    }

    /// The bytes held for `hash`, no longer held.
    fn take(&mut self, hash: &Multihash) -> Option<Bytes> {
        let data = self.blocks.remove(hash)?;
        self.bytes -= data.len();
        Some(data)
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
            fresh: Mutex::new(HashSet::new()),
            kept: Mutex::new(Kept::new(KEPT_BYTES)),
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
        if self.take_fresh(cid) {
            if let Some(data) = self.take_kept(cid) {
                return Ok(Some(data));
            }
            if let Some(data) = self.store.get_unverified(cid.hash())? {
                return Ok(Some(data.into()));
            }
        }
        Ok(self.store.get(cid)?.map(Bytes::from))
    }

    fn take_kept(&self, cid: &Cid) -> Option<Bytes> {
        self.kept.lock().ok()?.take(cid.hash())
    }

    /// Whether `cid` was delivered by one of our fetches and not read since.
    fn take_fresh(&self, cid: &Cid) -> bool {
        self.fresh
            .lock()
            .is_ok_and(|mut fresh| fresh.remove(cid.hash()))
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
            fresh.extend(stats.delivered.iter().map(|cid| *cid.hash()));
        }
        if let Ok(mut kept) = self.kept.lock() {
            for (cid, data) in stats.kept {
                if !kept.add(*cid.hash(), data) {
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
        let (a, b, c) = (
            sha256_multihash(b"a"),
            sha256_multihash(b"b"),
            sha256_multihash(b"c"),
        );
        let mut kept = Kept::new(10);
        assert!(kept.add(a, Bytes::from_static(b"123456")));
        assert!(!kept.add(b, Bytes::from_static(b"12345")), "6 + 5 > 10");
        assert!(kept.add(b, Bytes::from_static(b"1234")));
        assert_eq!(kept.bytes, 10);
        // The same block again replaces, not adds to, what is held for it.
        assert!(kept.add(a, Bytes::from_static(b"123456")));
        assert_eq!(kept.bytes, 10);
        assert!(!kept.add(c, Bytes::from_static(b"1")));
        assert_eq!(kept.take(&a).as_deref(), Some(&b"123456"[..]));
        assert_eq!(kept.take(&a), None, "taken once");
        assert_eq!(kept.bytes, 4);
        assert!(kept.add(c, Bytes::from_static(b"1")));
        assert_eq!(kept.take(&b).as_deref(), Some(&b"1234"[..]));
        assert_eq!(kept.take(&c).as_deref(), Some(&b"1"[..]));
        assert_eq!(kept.bytes, 0);
    }
}
