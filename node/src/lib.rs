//! Distribute: an IPFS-compatible content-addressed storage engine.
//!
//! Module map:
//! - [`content`]: CIDs, chunkers, DAG layouts, dag-pb and UnixFS encoding, importer and exporter.
//!   Pure: no file or network I/O beyond the `Read`/`Write` handles it is given.
//! - [`store`]: the [`store::Blockstore`] trait and its sled, flatfs and in-memory backends,
//!   local pins and garbage collection.
//! - [`car`]: CAR v1 reading and writing.
//! - [`repo`]: the on-disk repository (config, lock, store) that commands open.
//! - [`net`]: peer-to-peer networking: the libp2p swarm, its event loop and client, identity,
//!   and Bitswap (pure state machines plus the async service over libp2p streams).
//! - [`daemon`]: `distribute node`: runs the network, announces content, serves the HTTP RPC
//!   API ([`api`]) that the CLI uses while a daemon runs, and metrics.
//! - [`gateway`]: the read-only IPFS HTTP gateway (path, trustless and subdomain modes) on warp.
//! - [`metrics`]: the Prometheus series, registered into one registry the daemon owns.
//! - [`fsimport`]: adding files and folders from the local filesystem.
//! - [`tar`]: the tar stream `get` answers with (writer) and the CLI unpacks (reader).
//! - [`cli`]: the `distribute` command line.

pub mod api;
pub mod car;
pub mod cli;
pub mod cluster;
pub mod content;
pub mod daemon;
pub mod fsimport;
pub mod gateway;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod repo;
pub mod store;
pub mod tar;

/// Unit tests that start child processes and unit tests that close a repo and open it again
/// in this process must not overlap: between fork and exec a child holds a copy of every open
/// file, `flock`ed repo locks included, so a repo just closed can look locked for a moment.
/// Spawners take [`test_guard::spawning`], reopeners [`test_guard::reopening`].
#[cfg(test)]
pub(crate) mod test_guard {
    use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

    static GUARD: RwLock<()> = RwLock::new(());

    pub(crate) fn spawning() -> RwLockWriteGuard<'static, ()> {
        GUARD.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn reopening() -> RwLockReadGuard<'static, ()> {
        GUARD.read().unwrap_or_else(PoisonError::into_inner)
    }
}
