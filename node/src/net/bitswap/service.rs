//! The async Bitswap service: runs the pure [`Server`] and [`super::Session`]s over
//! `libp2p-stream` streams, outside the swarm's event loop.
//!
//! One actor task owns the [`Server`] ledger, a writer per peer and the registry of running
//! fetches. Inbound streams for `/ipfs/bitswap/1.2.0`, `1.1.0` and `1.0.0` each get a reader
//! task ([`super::streams::FrameReader`]) and a decoder task, which hands decoded messages to
//! the actor through a bounded channel, so a fast peer backs up into its own stream. Wantlists go to the
//! server; store lookups for a turn run in `spawn_blocking` and come back as an input; the
//! response goes to the peer's writer. Blocks and presences are forwarded to every running
//! fetch ([`super::fetch`]). Peer connects and disconnects arrive as [`NetEvent`]s.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot, watch};

use super::ledger::{Lookup, Plan, Server, ServerConfig, Work};
use super::message::{Message, ProtocolVersion};
use super::prefix::CidPrefix;
use super::solicited::Solicited;
use super::streams::{FrameReader, Outgoing, writer};
use crate::metrics::Metrics;
use crate::net::{Client, NetEvent};
use crate::store::Blockstore;

/// Inputs queued towards the actor.
const INPUT_QUEUE: usize = 1024;
/// Messages queued per peer writer; past this, messages to that peer are dropped.
const WRITER_QUEUE: usize = 256;
/// Messages queued per fetch.
pub(super) const SESSION_QUEUE: usize = 1024;

/// What a running fetch is told.
#[derive(Debug, Clone)]
pub(super) enum SessionInput {
    Message(PeerId, Arc<Message>),
    PeerConnected(PeerId),
    PeerGone(PeerId),
    Provider(PeerId),
    /// The peer sent a block under this prefix that hashes to a CID we never asked it for.
    Unsolicited(PeerId, CidPrefix),
}

pub(super) enum Input {
    Inbound {
        peer: PeerId,
        version: ProtocolVersion,
        message: Message,
    },
    Net(NetEvent),
    Send {
        peer: PeerId,
        message: Message,
    },
    Register {
        id: u64,
        tx: mpsc::Sender<SessionInput>,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Unregister {
        id: u64,
    },
    /// A turn's sizes were looked up.
    Served {
        work: Work<PeerId>,
        lookups: Vec<Lookup>,
    },
    /// The blocks a turn's plan sends were read.
    Read {
        plan: Plan<PeerId>,
        blocks: Vec<(Cid, Option<Vec<u8>>)>,
    },
}

/// Cloneable handle to the Bitswap service: [`Bitswap::fetch_dag`] and the like.
#[derive(Clone)]
pub struct Bitswap {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) tx: mpsc::Sender<Input>,
    pub(super) client: Client,
    pub(super) store: Arc<dyn Blockstore>,
    pub(super) metrics: Metrics,
    pub(super) next_session: AtomicU64,
    /// Set once by [`Bitswap::shutdown`]: running fetches stop, new ones refuse to start.
    pub(super) shutdown: watch::Sender<bool>,
    /// Fetches running now ([`Bitswap::shutdown`] waits for none).
    pub(super) active: watch::Sender<usize>,
}

impl Bitswap {
    /// Start the service: accept inbound bitswap streams and run the actor. Must be called
    /// inside a tokio runtime.
    pub fn spawn(
        client: Client,
        mut control: libp2p_stream::Control,
        mut net_events: mpsc::Receiver<NetEvent>,
        store: Arc<dyn Blockstore>,
        metrics: Metrics,
    ) -> Self {
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        for version in ProtocolVersion::ALL {
            let protocol = StreamProtocol::new(version.protocol_id());
            match control.accept(protocol) {
                Ok(incoming) => {
                    tokio::spawn(accept_loop(incoming, version, tx.clone()));
                }
                Err(e) => {
                    tracing::error!(protocol = version.protocol_id(), error = %e, "cannot accept bitswap streams")
                }
            }
        }
        let events_tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = net_events.recv().await {
                if events_tx.send(Input::Net(event)).await.is_err() {
                    break;
                }
            }
        });
        let actor = Actor {
            server: Server::new(ServerConfig::default()),
            control,
            writers: HashMap::new(),
            versions: HashMap::new(),
            sessions: HashMap::new(),
            connected: HashSet::new(),
            solicited: Solicited::default(),
            store: Arc::clone(&store),
            tx: tx.clone(),
            serving: false,
            metrics: metrics.clone(),
        };
        tokio::spawn(actor.run(rx));
        Self {
            inner: Arc::new(Inner {
                tx,
                client,
                store,
                metrics,
                next_session: AtomicU64::new(1),
                shutdown: watch::Sender::new(false),
                active: watch::Sender::new(0),
            }),
        }
    }

    pub(super) fn next_session_id(&self) -> u64 {
        self.inner.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Stop every running fetch (each fails with [`super::FetchError::ShuttingDown`]) and
    /// refuse new ones; returns once none is running, or after `grace`. The daemon calls
    /// this before its runtime shuts down, so no fetch is left polling the runtime's timers
    /// on a blocking thread while they go away.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        self.inner.shutdown.send_replace(true);
        let mut active = self.inner.active.subscribe();
        if tokio::time::timeout(grace, active.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                running = *active.borrow(),
                "bitswap fetches still running at shutdown"
            );
        }
    }
}

async fn accept_loop(
    mut incoming: libp2p_stream::IncomingStreams,
    version: ProtocolVersion,
    tx: mpsc::Sender<Input>,
) {
    while let Some((peer, stream)) = incoming.next().await {
        let tx = tx.clone();
        tokio::spawn(read_stream(peer, stream, version, tx));
    }
}

/// Reads one inbound stream. Frames are decoded (and their blocks hashed) by a second task
/// while the next frame is read, so the peer's sending is not held up by our hashing: with
/// both in one loop, the stream's receive window filled while a message of blocks was being
/// verified, and the sender sat idle.
async fn read_stream(
    peer: PeerId,
    stream: libp2p::Stream,
    version: ProtocolVersion,
    tx: mpsc::Sender<Input>,
) {
    // One frame read ahead of the one being decoded: at most three frames held per stream.
    let (frames_tx, mut frames_rx) = mpsc::channel::<Bytes>(1);
    let decoder = tokio::spawn(async move {
        while let Some(frame) = frames_rx.recv().await {
            let message = match Message::decode_shared(&frame) {
                Ok(message) => message,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "closing an inbound bitswap stream");
                    return;
                }
            };
            let input = Input::Inbound {
                peer,
                version,
                message,
            };
            if tx.send(input).await.is_err() {
                return;
            }
        }
    });
    let mut reader = FrameReader::new(stream);
    loop {
        match reader.next_frame().await {
            Ok(Some(frame)) => {
                if frames_tx.send(frame).await.is_err() {
                    break; // the decoder stopped: bad message or shutting down
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "closing an inbound bitswap stream");
                break;
            }
        }
    }
    drop(frames_tx);
    let _ = decoder.await;
}

struct Actor {
    server: Server<PeerId>,
    control: libp2p_stream::Control,
    writers: HashMap<PeerId, mpsc::Sender<Outgoing>>,
    /// The version each peer last used towards us.
    versions: HashMap<PeerId, ProtocolVersion>,
    sessions: HashMap<u64, mpsc::Sender<SessionInput>>,
    connected: HashSet<PeerId>,
    /// What we asked each peer for: a block outside it is corrupt or junk.
    solicited: Solicited<PeerId>,
    store: Arc<dyn Blockstore>,
    tx: mpsc::Sender<Input>,
    /// A turn's store lookups are running.
    serving: bool,
    metrics: Metrics,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        while let Some(input) = rx.recv().await {
            self.handle(input);
            self.serve();
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Inbound {
                peer,
                version,
                mut message,
            } => {
                self.versions.insert(peer, version);
                self.drop_unsolicited(peer, &mut message);
                if !message.wantlist.is_empty() || message.full {
                    self.server.receive(&peer, version, &message);
                }
                if !message.blocks.is_empty() || !message.presences.is_empty() {
                    let message = Arc::new(message);
                    self.broadcast(|| SessionInput::Message(peer, Arc::clone(&message)));
                }
            }
            Input::Net(NetEvent::PeerConnected(peer)) => {
                self.connected.insert(peer);
                self.broadcast(|| SessionInput::PeerConnected(peer));
            }
            Input::Net(NetEvent::PeerDisconnected(peer)) => {
                self.connected.remove(&peer);
                self.server.peer_disconnected(&peer);
                self.solicited.forget(&peer);
                self.writers.remove(&peer);
                self.versions.remove(&peer);
                self.broadcast(|| SessionInput::PeerGone(peer));
            }
            Input::Send { peer, message } => self.send(peer, message),
            Input::Register { id, tx, reply } => {
                self.sessions.insert(id, tx);
                let _ = reply.send(self.connected.iter().copied().collect());
            }
            Input::Unregister { id } => {
                self.sessions.remove(&id);
            }
            Input::Served { work, lookups } => {
                let plan = self.server.plan(work, &lookups);
                let cids: Vec<Cid> = plan.reads().copied().collect();
                if cids.is_empty() {
                    self.respond(plan, Vec::new());
                } else {
                    // Only the blocks this turn sends are read (and verified) from the store.
                    let store = Arc::clone(&self.store);
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let read =
                            tokio::task::spawn_blocking(move || read_blocks(store.as_ref(), cids))
                                .await
                                .unwrap_or_else(|e| {
                                    tracing::error!(error = %e, "bitswap store read task failed");
                                    Vec::new()
                                });
                        let _ = tx.send(Input::Read { plan, blocks: read }).await;
                    });
                }
            }
            Input::Read { plan, blocks } => self.respond(plan, blocks),
        }
    }

    /// Finish a turn: build the peer's message from the read blocks and hand it to its writer.
    fn respond(&mut self, plan: Plan<PeerId>, blocks: Vec<(Cid, Option<Vec<u8>>)>) {
        self.serving = false;
        if let Some(response) = self.server.build_response(plan, blocks) {
            self.metrics
                .blocks_sent
                .inc_by(response.message.blocks.len() as u64);
            self.send(response.peer, response.message);
        }
    }

    /// Remove the blocks `peer` was not asked for; each is counted, logged and reported to
    /// the sessions, which penalise the peer and re-request elsewhere.
    fn drop_unsolicited(&mut self, peer: PeerId, message: &mut Message) {
        let mut bad = Vec::new();
        let now = Instant::now();
        message.blocks.retain(|b| {
            let asked = self.solicited.take(&peer, &b.cid, now);
            if !asked {
                bad.push((b.cid, b.data.len()));
            }
            asked
        });
        for (cid, len) in bad {
            self.metrics.blocks_rejected.inc();
            tracing::warn!(%peer, %cid, len, "dropped a block we did not ask this peer for (corrupt data or junk)");
            let prefix = CidPrefix::of(&cid);
            self.broadcast(|| SessionInput::Unsolicited(peer, prefix));
        }
    }

    fn broadcast(&mut self, mut make: impl FnMut() -> SessionInput) {
        self.sessions.retain(|id, tx| match tx.try_send(make()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    session = id,
                    "fetch is behind; a bitswap message was dropped"
                );
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    fn send(&mut self, peer: PeerId, message: Message) {
        let now = Instant::now();
        for entry in message.wantlist.iter().filter(|e| !e.cancel) {
            self.solicited.asked(&peer, &entry.cid, now);
        }
        let version = self
            .versions
            .get(&peer)
            .copied()
            .unwrap_or(ProtocolVersion::V1_2_0);
        let tx = self.writers.entry(peer).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(WRITER_QUEUE);
            tokio::spawn(writer(peer, self.control.clone(), rx));
            tx
        });
        match tx.try_send((version, message)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(%peer, "bitswap writer queue full; message dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.writers.remove(&peer);
            }
        }
    }

    /// Start the next turn's store lookups if none are running.
    fn serve(&mut self) {
        if self.serving {
            return;
        }
        let Some(work) = self.server.next_work() else {
            return;
        };
        self.serving = true;
        let store = Arc::clone(&self.store);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let wants = work.wants.clone();
            let looked_up =
                tokio::task::spawn_blocking(move || lookup(store.as_ref(), &wants)).await;
            let lookups = looked_up.unwrap_or_else(|e| {
                tracing::error!(error = %e, "bitswap store lookup task failed");
                Vec::new()
            });
            let _ = tx.send(Input::Served { work, lookups }).await;
        });
    }
}

/// Sizes of a turn's wants from the store (no block is read here: a turn sends only what
/// fits the peer's credit, and [`read_blocks`] reads just that).
fn lookup(store: &dyn Blockstore, wants: &[super::ledger::Want]) -> Vec<Lookup> {
    wants
        .iter()
        .map(|want| {
            let size = match store.block_size(&want.cid) {
                Ok(size) => size.and_then(|s| usize::try_from(s).ok()),
                Err(e) => {
                    tracing::warn!(cid = %want.cid, error = %e, "block size unreadable; answering DONT_HAVE");
                    None
                }
            };
            size.map_or(Lookup::Missing, |size| Lookup::Present { size })
        })
        .collect()
}

/// Read (and verify) the blocks a turn sends; a block that is gone or corrupt is `None`,
/// which the ledger answers with DONT_HAVE.
fn read_blocks(store: &dyn Blockstore, cids: Vec<Cid>) -> Vec<(Cid, Option<Vec<u8>>)> {
    cids.into_iter()
        .map(|cid| {
            let data = store.get(&cid).unwrap_or_else(|e| {
                tracing::warn!(%cid, error = %e, "block unreadable; answering DONT_HAVE");
                None
            });
            (cid, data)
        })
        .collect()
}
