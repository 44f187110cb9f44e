//! Fetching over Bitswap: [`Bitswap::fetch_dag`] (a DAG), [`Bitswap::fetch_dags`] (several
//! at once) and [`Bitswap::fetch_blocks`] (just the blocks named, nothing below) each run one
//! [`Session`] in the caller's task. Peers are the connected peers, peers that connect
//! meanwhile, and DHT providers the session asks for. Delivered blocks are stored on blocking
//! threads while the loop goes on receiving (at most [`STORE_JOBS`] batches at once); for a
//! DAG fetch each job decodes the links and answers with the children the store lacks, which
//! are wanted in turn, until every DAG is local or a CID fails. CIDs beyond what the session
//! may track at once wait in a backlog, so a DAG of any size is fetched completely.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cid::Cid;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::message::{Message, ProtocolVersion, WantlistEntry};
use super::service::{Bitswap, Input, SESSION_QUEUE, SessionInput};
use super::session::{Action, FailReason, Session, SessionConfig};
use crate::content::links::links;

/// Why a fetch did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("block {cid} could not be fetched: {reason:?}; no peer delivered it")]
    Failed { cid: Cid, reason: FailReason },
    #[error(
        "fetching {root} timed out after {secs} s with {pending} blocks still missing; check `distribute peers` and `distribute findprovs {root}`"
    )]
    Timeout {
        root: Cid,
        secs: u64,
        pending: usize,
    },
    #[error("storing block {cid}: {reason}")]
    Store { cid: Cid, reason: String },
    #[error("the bitswap service has stopped")]
    Stopped,
    #[error("the daemon is shutting down; the fetch was cancelled")]
    ShuttingDown,
}

/// How far below the CIDs asked for a fetch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Only the blocks named.
    Blocks,
    /// The blocks named and every block below them that the store lacks (a local block's
    /// DAG is taken to be complete).
    Dags,
}

/// What a finished fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub blocks: u64,
    pub bytes: u64,
    /// The peer that delivered the most bytes, if any block came from the network.
    pub top_peer: Option<PeerId>,
    pub elapsed: Duration,
    /// The blocks that came from the network (verified against their CIDs on arrival) and
    /// were stored, in the order they arrived.
    pub delivered: Vec<Cid>,
    /// Children of delivered blocks that were already stored, so the fetch did not go below
    /// them ([`Depth::Dags`] takes a local block's DAG to be complete): the only parts of the
    /// DAG that a completeness check still has to walk.
    pub already_local: Vec<Cid>,
    /// Delivered blocks whose links could not be decoded: their children, if any, were not
    /// fetched.
    pub undecodable: Vec<Cid>,
    /// The bytes of delivered blocks, in the order they arrived, for a fetch asked to keep
    /// them ([`Bitswap::fetch_keeping`]) and up to the bytes it was allowed; empty otherwise.
    pub kept: Vec<(Cid, Bytes)>,
}

/// Batches of delivered blocks being stored at once; past this the loop waits for one.
const STORE_JOBS: usize = 4;
/// CIDs a fetch's session tracks at once (asked with want-have or want-block); the rest of
/// the DAG waits in the fetch's backlog. Servers bound the wants they keep per peer (this
/// node 8,192, boxo fewer), and wants they drop are never answered.
const LIVE_WANTS: usize = 1024;

/// Counts a fetch as running for [`Bitswap::shutdown`] until dropped.
struct Running(tokio::sync::watch::Sender<usize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Unregisters the session from the actor however the fetch ends.
struct Registration {
    id: u64,
    tx: mpsc::Sender<Input>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Input::Unregister { id: self.id });
    }
}

impl Bitswap {
    /// Fetch `root` and every block below it that the store lacks; returns when all are
    /// stored, or fails after `timeout`.
    pub async fn fetch_dag(&self, root: Cid, timeout: Duration) -> Result<FetchStats, FetchError> {
        self.fetch(&[root], Depth::Dags, timeout, 0).await
    }

    /// [`Bitswap::fetch_dag`] of several roots in one session, so their blocks are wanted
    /// side by side.
    pub async fn fetch_dags(
        &self,
        roots: &[Cid],
        timeout: Duration,
    ) -> Result<FetchStats, FetchError> {
        self.fetch(roots, Depth::Dags, timeout, 0).await
    }

    /// Fetch and store just these blocks, none of their children.
    pub async fn fetch_blocks(
        &self,
        cids: &[Cid],
        timeout: Duration,
    ) -> Result<FetchStats, FetchError> {
        self.fetch(cids, Depth::Blocks, timeout, 0).await
    }

    /// A fetch of `cids` to `depth` that also hands back the delivered blocks' bytes
    /// ([`FetchStats::kept`]), up to `keep` bytes of them, so a caller about to read them
    /// need not read them back from the store. Blocks past `keep` are stored as always.
    pub async fn fetch_keeping(
        &self,
        cids: &[Cid],
        depth: Depth,
        timeout: Duration,
        keep: usize,
    ) -> Result<FetchStats, FetchError> {
        self.fetch(cids, depth, timeout, keep).await
    }

    /// Want `roots` (and with [`Depth::Dags`] the missing blocks below them) in one session
    /// until all are stored, a CID fails, or `timeout` passes; keep up to `keep` bytes of the
    /// delivered blocks for the caller.
    async fn fetch(
        &self,
        roots: &[Cid],
        depth: Depth,
        timeout: Duration,
        keep: usize,
    ) -> Result<FetchStats, FetchError> {
        let inner = &self.inner;
        // Named in a timeout error.
        let root = roots.first().copied().unwrap_or_default();
        // Counted before the flag is read: `shutdown` sets the flag, then waits for none.
        inner.active.send_modify(|n| *n += 1);
        let _running = Running(inner.active.clone());
        let mut shutdown = inner.shutdown.subscribe();
        if *shutdown.borrow_and_update() {
            return Err(FetchError::ShuttingDown);
        }
        let id = self.next_session_id();
        let (session_tx, mut rx) = mpsc::channel(SESSION_QUEUE);
        let (reply, connected) = oneshot::channel();
        inner
            .tx
            .send(Input::Register {
                id,
                tx: session_tx.clone(),
                reply,
            })
            .await
            .map_err(|_| FetchError::Stopped)?;
        let _registration = Registration {
            id,
            tx: inner.tx.clone(),
        };
        let connected = connected.await.map_err(|_| FetchError::Stopped)?;
        let me = inner.client.local_peer_id();
        let mut session: Session<PeerId> = Session::new(SessionConfig {
            max_wants: LIVE_WANTS,
            ..SessionConfig::default()
        });
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        for peer in connected {
            session.add_peer(peer, ProtocolVersion::V1_2_0, start);
        }
        let mut stats = FetchStats::default();
        let mut keep_left = keep;
        let mut by_peer: std::collections::HashMap<PeerId, u64> = Default::default();
        // CIDs the session could not take yet (it tracks at most `max_wants` CIDs): the
        // roots first, then children as their parents are stored.
        let mut backlog: VecDeque<Cid> = VecDeque::new();
        let mut asked = std::collections::HashSet::new();
        backlog.extend(roots.iter().filter(|c| asked.insert(**c)));
        let mut storing: JoinSet<Result<Stored, StoreFailure>> = JoinSet::new();
        let result = 'fetch: loop {
            let mut delivered = Vec::new();
            let mut failed = None;
            for action in session.drain_actions() {
                match action {
                    Action::SendWants { peer, entries } => {
                        self.send(peer, entries).await;
                    }
                    Action::SendCancels { peer, cids } => {
                        self.send(peer, cids.into_iter().map(WantlistEntry::cancel).collect())
                            .await;
                    }
                    Action::Deliver { cid, data, peer } => {
                        *by_peer.entry(peer).or_default() += data.len() as u64;
                        delivered.push((cid, data));
                    }
                    Action::Failed { cid, reason } => {
                        failed = Some(FetchError::Failed { cid, reason })
                    }
                    Action::FindProviders { cid } => {
                        self.spawn_provider_lookup(cid, me, session_tx.clone());
                    }
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            if !delivered.is_empty() {
                inner.metrics.wantlist_size.dec_by(delivered.len() as i64);
                inner.metrics.blocks_received.inc_by(delivered.len() as u64);
                stats.blocks += delivered.len() as u64;
                stats.bytes += delivered.iter().map(|(_, d)| d.len() as u64).sum::<u64>();
                stats
                    .delivered
                    .extend(delivered.iter().map(|(cid, _)| *cid));
                for (cid, data) in &delivered {
                    if data.len() <= keep_left {
                        keep_left -= data.len();
                        stats.kept.push((*cid, data.clone()));
                    }
                }
                storing.spawn_blocking(self.store_job(delivered, depth));
            }
            // Bound the blocks held in memory while stores run; when the network has nothing
            // more to deliver, wait for the stores, whose children come next.
            while storing.len() >= STORE_JOBS || (session.pending() == 0 && !storing.is_empty()) {
                match joined(storing.join_next().await) {
                    Ok(stored) => stored.record(&mut backlog, &mut stats),
                    Err(e) => break 'fetch Err(e.into()),
                }
            }
            let added = refill(&mut session, &mut backlog, Instant::now());
            inner.metrics.wantlist_size.inc_by(added as i64);
            if added > 0 {
                continue; // send the new wants before waiting
            }
            if session.pending() == 0 && backlog.is_empty() && storing.is_empty() {
                stats.top_peer = by_peer.iter().max_by_key(|(_, b)| **b).map(|(p, _)| *p);
                stats.elapsed = start.elapsed();
                break Ok(stats);
            }
            let tick_at = session
                .next_deadline()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(1));
            tokio::select! {
                done = storing.join_next(), if !storing.is_empty() => match joined(done) {
                    Ok(stored) => stored.record(&mut backlog, &mut stats),
                    Err(e) => break 'fetch Err(e.into()),
                },
                input = rx.recv() => {
                    let now = Instant::now();
                    match input {
                        Some(SessionInput::Message(peer, message)) => match Arc::try_unwrap(message) {
                            Ok(message) => session.on_decoded_message(&peer, message, now),
                            Err(shared) => session.on_decoded_message(&peer, (*shared).clone(), now),
                        },
                        Some(SessionInput::PeerConnected(peer) | SessionInput::Provider(peer)) if peer != me => {
                            session.add_peer(peer, ProtocolVersion::V1_2_0, now);
                        }
                        Some(SessionInput::PeerGone(peer)) => session.remove_peer(&peer, now),
                        Some(SessionInput::Unsolicited(peer, prefix)) => {
                            if session.on_unsolicited(&peer, &prefix, now) {
                                tracing::warn!(%peer, "peer answered a want-block with corrupt data; penalised, asking other peers");
                            }
                        }
                        Some(_) => {}
                        None => break Err(FetchError::Stopped),
                    }
                }
                () = tokio::time::sleep_until(tick_at) => session.tick(Instant::now()),
                _ = shutdown.wait_for(|stop| *stop) => break Err(FetchError::ShuttingDown),
                () = tokio::time::sleep_until(deadline) => {
                    break Err(FetchError::Timeout { root, secs: timeout.as_secs(), pending: session.pending() });
                }
            }
        };
        inner.metrics.wantlist_size.dec_by(session.pending() as i64);
        storing.abort_all();
        result
    }

    async fn send(&self, peer: PeerId, wantlist: Vec<WantlistEntry>) {
        let message = Message {
            wantlist,
            ..Message::default()
        };
        let _ = self.inner.tx.send(Input::Send { peer, message }).await;
    }

    fn spawn_provider_lookup(&self, cid: Cid, me: PeerId, tx: mpsc::Sender<SessionInput>) {
        let client = self.inner.client.clone();
        tokio::spawn(async move {
            let Ok(mut found) = client.find_providers(cid.hash().to_bytes()).await else {
                return;
            };
            while let Some(peer) = found.recv().await {
                if peer != me && tx.send(SessionInput::Provider(peer)).await.is_err() {
                    return;
                }
            }
        });
    }

    /// A job for a blocking thread: store the delivered blocks (their CIDs were rebuilt from
    /// these bytes when the message was decoded, so they are not hashed again) and, for a DAG
    /// fetch, sort their children into those the store lacks and those it has.
    fn store_job(
        &self,
        blocks: Vec<(Cid, Bytes)>,
        depth: Depth,
    ) -> impl FnOnce() -> Result<Stored, StoreFailure> + Send + 'static {
        let store = Arc::clone(&self.inner.store);
        move || {
            let mut stored = Stored::default();
            let puts: Vec<(Cid, &[u8])> =
                blocks.iter().map(|(cid, data)| (*cid, &data[..])).collect();
            store.put_many_uncached(&puts).map_err(|e| {
                StoreFailure(
                    blocks.first().map_or_else(Cid::default, |b| b.0),
                    e.to_string(),
                )
            })?;
            for (cid, data) in &blocks {
                if depth == Depth::Blocks {
                    continue;
                }
                // A block whose links we cannot read is still a block; it just has no
                // children we know how to fetch (the stats name it).
                let Ok(children) = links(cid, data) else {
                    stored.undecodable.push(*cid);
                    continue;
                };
                for child in children {
                    if store.has(&child).unwrap_or(false) {
                        stored.local.push(child);
                    } else {
                        stored.missing.push(child);
                    }
                }
            }
            Ok(stored)
        }
    }
}

/// What a store job found below the blocks it stored.
#[derive(Default)]
struct Stored {
    /// Children the store lacks: wanted next.
    missing: Vec<Cid>,
    /// Children already stored, not gone below.
    local: Vec<Cid>,
    /// Stored blocks whose links could not be decoded.
    undecodable: Vec<Cid>,
}

impl Stored {
    fn record(self, backlog: &mut VecDeque<Cid>, stats: &mut FetchStats) {
        backlog.extend(self.missing);
        stats.already_local.extend(self.local);
        stats.undecodable.extend(self.undecodable);
    }
}

/// A block a store job could not store, and why.
struct StoreFailure(Cid, String);

impl From<StoreFailure> for FetchError {
    fn from(StoreFailure(cid, reason): StoreFailure) -> Self {
        FetchError::Store { cid, reason }
    }
}

/// A finished store job's findings, or why it failed.
fn joined(
    done: Option<Result<Result<Stored, StoreFailure>, tokio::task::JoinError>>,
) -> Result<Stored, StoreFailure> {
    match done {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(StoreFailure(
            Cid::default(),
            format!("store task failed: {e}"),
        )),
        None => Ok(Stored::default()),
    }
}

/// Move children from the backlog into the session while it has room; returns how many
/// it took.
fn refill(session: &mut Session<PeerId>, backlog: &mut VecDeque<Cid>, now: Instant) -> usize {
    let mut added = 0;
    while let Some(cid) = backlog.pop_front() {
        if session.want(cid, now).is_err() {
            backlog.push_front(cid);
            break;
        }
        added += 1;
    }
    added
}
