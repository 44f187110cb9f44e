//! The running cluster member: [`Cluster`] is the cloneable handle the daemon, the API and
//! the CLI forwarding use; [`Cluster::spawn`] starts its tasks:
//! - [`super::sync`]: accepting cluster streams, heartbeats, pushing updates, pulling the
//!   full state when digests differ (anti-entropy);
//! - [`super::tracker`]: pinning what is allocated here, releasing what is not, metrics;
//! - [`super::scrub`]: re-hashing held DAGs at a bounded rate and repairing them.
//!
//! All cluster knowledge sits in one [`Core`] behind a mutex held only for short, non-async
//! sections; persistence goes through [`ClusterStore`] right after each change.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cid::Cid;
use libp2p::StreamProtocol;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::Notify;

use super::core::{Core, SelfInfo};
use super::membership::{MemberState, Timing};
use super::metrics::ClusterMetrics;
use super::pinset::{PinSpec, Pinset};
use super::status::{LocalState, PinStatus};
use super::store::{ClusterStore, ClusterStoreError};
use super::wire::{Message, Secret, protocol_name};
use crate::net::Client;
use crate::net::bitswap::Bitswap;
use crate::repo::Repo;

/// How a node takes part in a cluster (from `distribute node` flags).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub secret: Secret,
    pub zone: Option<String>,
    /// Default (min, max) copies of a pin that names none.
    pub replication: (u32, u32),
    pub heartbeat_timeout: Duration,
    pub rereplicate_after: Duration,
    pub drain_timeout: Duration,
    pub fetch_timeout: Duration,
    /// Bytes per second the scrub may re-hash; 0 turns it off.
    pub scrub_rate: u64,
    /// Pause between scrub passes.
    pub scrub_interval: Duration,
    /// A removal's tombstone is kept at least this long (see [`super::pinset`]).
    pub tombstone_ttl: Duration,
}

impl ClusterConfig {
    /// Heartbeats go out three times per timeout, so one lost beat does not mark a member down.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.heartbeat_timeout / 3).max(Duration::from_millis(200))
    }
}

/// A cluster request that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("{cid} is not pinned in the cluster; see `distribute pin ls --cluster`")]
    NotPinned { cid: String },
    #[error("bad replication: {0}")]
    BadReplication(String),
    #[error("{peer:?} is not a peer ID of this cluster; see `distribute cluster peers`")]
    UnknownPeer { peer: String },
    #[error(transparent)]
    Store(#[from] ClusterStoreError),
    #[error("reading the repository: {0}")]
    Repo(String),
    #[error("pinning {cid} failed: {reason}")]
    PinFailed { cid: String, reason: String },
    #[error(
        "{cid} is still {state} after {secs} s: {pinned} copies pinned, replication factor {min}/{max}; the pin stays, see `distribute status {cid} --verbose`"
    )]
    WaitTimeout {
        cid: String,
        state: &'static str,
        pinned: u32,
        min: u32,
        max: u32,
        secs: u64,
    },
}

/// `cluster peers` / `POST /api/v0/cluster/peers`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeersView {
    #[serde(rename = "Self")]
    pub self_id: String,
    pub peers: Vec<PeerView>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerView {
    pub peer_id: String,
    pub addrs: Vec<String>,
    pub state: MemberState,
    pub zone: Option<String>,
    pub free_space: u64,
    pub last_seen_secs: u64,
}

/// `cluster drain` / `POST /api/v0/cluster/drain`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DrainView {
    pub peer: String,
    pub done: bool,
    pub remaining: u32,
}

pub(super) struct Inner {
    pub(super) core: Mutex<Core>,
    pub(super) store: ClusterStore,
    pub(super) secret: Secret,
    pub(super) protocol: StreamProtocol,
    pub(super) control: libp2p_stream::Control,
    pub(super) client: Client,
    pub(super) repo: Arc<Repo>,
    pub(super) bitswap: Bitswap,
    pub(super) config: ClusterConfig,
    pub(super) metrics: ClusterMetrics,
    /// Wakes the tracker when the pinset, membership or a local state changed.
    pub(super) changed: Notify,
    /// Sends a heartbeat now (our own pin states changed), not at the next tick.
    pub(super) beat_now: Notify,
    /// Bumped with every `changed`: wakes callers waiting for a pin's status
    /// ([`Cluster::wait_pinned`]).
    pub(super) statuses: tokio::sync::watch::Sender<u64>,
    /// Set once `leave` is asked for; the daemon waits on it.
    pub(super) leave: Notify,
    /// Tells the DHT announcer that local pins changed.
    pub(super) pins_changed: tokio::sync::mpsc::Sender<()>,
}

/// Handle on the running cluster member; clones share it.
#[derive(Clone)]
pub struct Cluster {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Concurrent pin jobs (fetch + pin) per node.
pub(super) const PIN_SLOTS: usize = 4;

/// What [`Cluster::spawn`] needs from the daemon.
pub struct ClusterParts {
    pub repo: Arc<Repo>,
    pub client: Client,
    pub control: libp2p_stream::Control,
    pub bitswap: Bitswap,
    pub metrics: ClusterMetrics,
    pub pins_changed: tokio::sync::mpsc::Sender<()>,
}

impl Cluster {
    /// Load the persisted pinset and start the cluster tasks.
    pub fn spawn(config: ClusterConfig, parts: ClusterParts) -> Result<Self, ClusterError> {
        let store = ClusterStore::open(parts.repo.db(), parts.repo.path())?;
        let pinset = store.load()?;
        let me = SelfInfo {
            peer: parts.client.local_peer_id().to_string(),
            zone: config.zone.clone(),
            free_space: free_space(parts.repo.path().to_owned()),
            addrs: Vec::new(),
            leaving: false,
        };
        let timing = Timing {
            heartbeat_timeout: config.heartbeat_timeout,
            rereplicate_after: config.rereplicate_after,
        };
        let mut core = Core::new(me, pinset, timing, config.heartbeat_timeout);
        core.set_tombstone_ttl(config.tombstone_ttl);
        let now = Instant::now();
        for cid in store.held()? {
            core.set_local(&cid, LocalState::Pinned, None, now);
        }
        let protocol = StreamProtocol::try_from_owned(protocol_name(&config.secret))
            .map_err(|e| ClusterError::Repo(e.to_string()))?;
        let cluster = Self {
            inner: Arc::new(Inner {
                core: Mutex::new(core),
                store,
                secret: config.secret.clone(),
                protocol,
                control: parts.control,
                client: parts.client,
                repo: parts.repo,
                bitswap: parts.bitswap,
                config,
                metrics: parts.metrics,
                changed: Notify::new(),
                beat_now: Notify::new(),
                statuses: tokio::sync::watch::Sender::new(0),
                leave: Notify::new(),
                pins_changed: parts.pins_changed,
            }),
        };
        cluster.start_sync();
        tokio::spawn(cluster.clone().track());
        tokio::spawn(cluster.clone().scrub());
        Ok(cluster)
    }

    pub(super) fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock leaves plain data; keep serving it.
        self.inner
            .core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn local_peer(&self) -> String {
        self.core().me.peer.clone()
    }

    /// Add `cids` to the cluster pinset with the same options; pinning proceeds in the
    /// background. The entries are written to the store in one batch (one flush) and pushed
    /// to the members in one update.
    pub async fn pin_all(
        &self,
        cids: &[Cid],
        min: Option<u32>,
        max: Option<u32>,
        name: Option<String>,
    ) -> Result<(), ClusterError> {
        let (min, max) = replication(min, max, self.inner.config.replication)?;
        let sizes = self.dag_sizes(cids).await?;
        let entries = {
            let mut core = self.core();
            cids.iter()
                .zip(sizes)
                .map(|(cid, size)| {
                    let text = cid.to_string();
                    let entry = new_entry(&mut core, &text, min, max, name.clone(), size, None);
                    (text, entry)
                })
                .collect()
        };
        self.commit_pins(entries)
    }

    /// [`Cluster::pin_all`] of one CID with metadata (`None` keeps what an earlier pin of the CID had);
    /// returns the stamp of the new entry (which names the pin request).
    pub async fn pin_with(
        &self,
        cid: &Cid,
        min: Option<u32>,
        max: Option<u32>,
        name: Option<String>,
        metadata: Option<std::collections::BTreeMap<String, String>>,
    ) -> Result<super::pinset::Stamp, ClusterError> {
        let (min, max) = replication(min, max, self.inner.config.replication)?;
        let size = self
            .dag_sizes(std::slice::from_ref(cid))
            .await?
            .pop()
            .flatten();
        let text = cid.to_string();
        let entry = new_entry(&mut self.core(), &text, min, max, name, size, metadata);
        let stamp = entry.stamp.clone();
        self.commit_pins(vec![(text, entry)])?;
        Ok(stamp)
    }

    /// The DAG size of each of `cids` when the whole DAG is here.
    async fn dag_sizes(&self, cids: &[Cid]) -> Result<Vec<Option<u64>>, ClusterError> {
        let repo = Arc::clone(&self.inner.repo);
        let roots = cids.to_vec();
        tokio::task::spawn_blocking(move || {
            roots.iter().map(|root| dag_size(&repo, root)).collect()
        })
        .await
        .map_err(|e| ClusterError::Repo(e.to_string()))
    }

    /// Remove `cid` from the cluster pinset; holders release it.
    pub fn unpin(&self, cid: &Cid) -> Result<(), ClusterError> {
        let text = cid.to_string();
        let entry = self
            .core()
            .remove_pin(&text, now_ms())
            .ok_or_else(|| ClusterError::NotPinned { cid: text.clone() })?;
        self.commit_pins(vec![(text, entry)])
    }

    /// The pinset, membership, a report or a local state changed: wake the tracker and
    /// whoever waits on a status.
    pub(super) fn note_change(&self) {
        self.inner.changed.notify_one();
        self.inner.statuses.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Persist pin entries we wrote (one batch, one flush), push them to every member in one
    /// update, wake the tracker.
    fn commit_pins(
        &self,
        entries: Vec<(String, super::pinset::Entry)>,
    ) -> Result<(), ClusterError> {
        self.inner
            .store
            .put_pins(entries.iter().map(|(cid, e)| (cid.as_str(), e)))?;
        self.inner.store.flush()?;
        let mut delta = Pinset::default();
        delta
            .pins
            .extend(entries.into_iter().map(|(cid, e)| (cid.into(), e)));
        self.broadcast(Message::Update(delta));
        self.note_change();
        Ok(())
    }

    /// This node's listen addresses with its peer ID (the Pinning Service API's delegates).
    pub async fn delegates(&self) -> Vec<String> {
        let me = self.local_peer();
        let addrs = self.inner.client.listen_addrs().await.unwrap_or_default();
        addrs.iter().map(|a| format!("{a}/p2p/{me}")).collect()
    }

    /// Dial `addrs` in the background (a pin request's origins, which likely hold the DAG).
    pub fn dial(&self, addrs: Vec<libp2p::Multiaddr>) {
        for addr in addrs {
            let client = self.inner.client.clone();
            tokio::spawn(async move {
                let dialed = tokio::time::timeout(Duration::from_secs(20), client.dial(addr));
                if let Ok(Err(e)) = dialed.await {
                    tracing::debug!(error = %e, "dialing a pin origin failed");
                }
            });
        }
    }

    pub fn status(&self, cid: &Cid) -> Result<PinStatus, ClusterError> {
        let text = cid.to_string();
        self.core()
            .status(&text, Instant::now())
            .ok_or(ClusterError::NotPinned { cid: text })
    }

    /// Every pin's status, one at a time, under the core's lock.
    pub fn for_each_status(&self, f: impl FnMut(PinStatus)) {
        self.core().for_each_status(Instant::now(), f);
    }

    /// This node's own state for `cid`.
    pub fn local_state(&self, cid: &Cid) -> Option<LocalState> {
        self.core().local_state(&cid.to_string())
    }

    pub fn peers(&self) -> PeersView {
        let now = Instant::now();
        let core = self.core();
        let mut peers: Vec<PeerView> = core
            .members()
            .list(now)
            .into_iter()
            .map(|(hb, state, secs)| PeerView {
                peer_id: hb.peer.clone(),
                addrs: hb.addrs.clone(),
                state,
                zone: hb.zone.clone(),
                free_space: hb.free_space,
                last_seen_secs: secs,
            })
            .collect();
        peers.push(PeerView {
            peer_id: core.me.peer.clone(),
            addrs: core.me.addrs.clone(),
            state: core
                .member_state(&core.me.peer, now)
                .unwrap_or(MemberState::Alive),
            zone: core.me.zone.clone(),
            free_space: core.me.free_space,
            last_seen_secs: 0,
        });
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        PeersView {
            self_id: core.me.peer.clone(),
            peers,
        }
    }

    /// Start (or keep) draining `peer` and say how far it is. Draining ourselves is leaving.
    pub fn drain(&self, peer: &str) -> Result<DrainView, ClusterError> {
        let now = Instant::now();
        let me = self.local_peer();
        if peer == me {
            self.leave();
        } else {
            let entry = {
                let mut core = self.core();
                if core.member_state(peer, now).is_none() {
                    return Err(ClusterError::UnknownPeer {
                        peer: peer.to_owned(),
                    });
                }
                (!core.pinset().is_draining(peer)).then(|| core.set_drain(peer, true, now_ms()))
            };
            if let Some(entry) = entry {
                self.inner.store.put_drain(peer, &entry)?;
                let mut delta = Pinset::default();
                delta.drains.insert(peer.to_owned(), entry);
                self.broadcast(Message::Update(delta));
                self.note_change();
            }
        }
        let remaining = self.core().drain_progress(peer, now).remaining;
        Ok(DrainView {
            peer: peer.to_owned(),
            done: remaining == 0,
            remaining,
        })
    }

    /// Mark this node leaving: it gets no new pins, and the daemon exits once its pins are
    /// held elsewhere (see [`Cluster::drain_self`]).
    pub fn leave(&self) {
        self.core().me.leaving = true;
        self.note_change();
        self.inner.beat_now.notify_one();
        self.inner.leave.notify_one();
    }

    /// Resolves when `leave` was asked for.
    pub async fn leave_requested(&self) {
        self.inner.leave.notified().await;
    }

    /// Leave and wait until no pin needs our copy, at most `--drain-timeout`. Returns how many
    /// pins still needed us when it stopped waiting.
    pub async fn drain_self(&self) -> u32 {
        self.leave();
        let me = self.local_peer();
        let deadline = Instant::now() + self.inner.config.drain_timeout;
        let interval = self.inner.config.heartbeat_interval();
        loop {
            let now = Instant::now();
            let (remaining, alone) = {
                let core = self.core();
                let alone = !core
                    .members()
                    .list(now)
                    .iter()
                    .any(|(_, state, _)| *state == MemberState::Alive);
                (core.drain_progress(&me, now).remaining, alone)
            };
            if alone && remaining > 0 {
                tracing::warn!(remaining, "no other live member to take the pins held here");
                return remaining;
            }
            if remaining == 0 || now >= deadline {
                if remaining > 0 {
                    tracing::warn!(
                        remaining,
                        "drain timeout: leaving with pins not yet held elsewhere"
                    );
                }
                return remaining;
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// `--replication N` or `--replication-min A --replication-max B`, checked.
fn replication(
    min: Option<u32>,
    max: Option<u32>,
    (default_min, default_max): (u32, u32),
) -> Result<(u32, u32), ClusterError> {
    let (min, max) = match (min, max) {
        (None, None) => (default_min, default_max),
        (Some(n), None) => (n, n.max(default_max)),
        (None, Some(m)) => (m.min(default_min), m),
        (Some(a), Some(b)) => (a, b),
    };
    if min == 0 {
        return Err(ClusterError::BadReplication(
            "replication-min must be at least 1".into(),
        ));
    }
    if min > max {
        return Err(ClusterError::BadReplication(format!(
            "replication-min {min} is larger than replication-max {max}"
        )));
    }
    Ok((min, max))
}

/// A new pinset entry for `cid` in `core` (stamped, merged); its creation time and, unless
/// given, its metadata carry over from an earlier pin of the CID.
fn new_entry(
    core: &mut Core,
    cid: &str,
    min: u32,
    max: u32,
    name: Option<String>,
    size: Option<u64>,
    metadata: Option<std::collections::BTreeMap<String, String>>,
) -> super::pinset::Entry {
    let (created_ms, old_metadata) = core
        .pinset()
        .get(cid)
        .map(|p| (p.created_ms, p.metadata.clone()))
        .unwrap_or_else(|| (now_ms(), Default::default()));
    let spec = PinSpec {
        name: name.unwrap_or_default(),
        replication_min: min,
        replication_max: max,
        size,
        created_ms,
        metadata: metadata.unwrap_or(old_metadata),
    };
    core.add_pin(cid, spec, now_ms())
}

/// Cumulative size of `root`'s DAG when it is complete here.
fn dag_size(repo: &Repo, root: &Cid) -> Option<u64> {
    let store = repo.blocks();
    let mut total = 0u64;
    let report = crate::store::walk::walk_dag_present(
        store,
        root,
        &mut std::collections::HashSet::new(),
        |c| {
            total += store.block_size(c).ok().flatten().unwrap_or(0);
            true
        },
    )
    .ok()?;
    report.is_complete().then_some(total)
}

/// Free bytes on the repository's file system (0 when unknown).
pub(super) fn free_space(path: PathBuf) -> u64 {
    fs2::available_space(&path).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn replication_flags() {
        assert_eq!(replication(None, None, (3, 3)).unwrap(), (3, 3));
        assert_eq!(replication(None, None, (2, 4)).unwrap(), (2, 4));
        assert_eq!(replication(Some(2), Some(4), (3, 3)).unwrap(), (2, 4));
        assert_eq!(replication(Some(5), None, (2, 4)).unwrap(), (5, 5));
        assert_eq!(replication(Some(1), None, (2, 4)).unwrap(), (1, 4));
        assert_eq!(replication(None, Some(1), (2, 4)).unwrap(), (1, 1));
        assert!(replication(Some(0), None, (3, 3)).is_err());
        assert!(replication(Some(4), Some(2), (3, 3)).is_err());
    }
}
