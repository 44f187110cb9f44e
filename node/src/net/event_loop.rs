//! The network task: [`EventLoop`] owns the `Swarm` and the maps of pending replies, and
//! [`EventLoop::run`] is one `tokio::select!` over swarm events and [`Command`]s, split into
//! [`EventLoop::handle_event`] and [`EventLoop::handle_command`].
//!
//! What leaves the loop: replies to commands, [`NetEvent`]s (peers connecting and leaving)
//! on a bounded channel for the bitswap service, the listen addresses on a `watch` channel
//! for the daemon, and gauge updates. Nothing here reads or writes files, and nothing here
//! panics on what a peer does: odd events are logged and counted.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use libp2p::kad::{self, GetProvidersOk, QueryId, QueryResult, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, ping};
use tokio::sync::{mpsc, oneshot, watch};

use super::NetError;
use super::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL, SwarmOptions, build_swarm};
use super::client::{BucketInfo, Client, Command, PeerInfo};
use crate::metrics::Metrics;

/// Commands queued towards the loop before senders wait.
const COMMAND_QUEUE: usize = 256;
/// Peer events queued towards the bitswap service; past this they are dropped and logged.
const EVENT_QUEUE: usize = 1024;

/// A change the rest of the node cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    PeerConnected(PeerId),
    PeerDisconnected(PeerId),
}

/// What we know about a connected peer.
#[derive(Debug, Default)]
struct PeerState {
    addr: Option<Multiaddr>,
    latency: Option<Duration>,
    agent: Option<String>,
}

/// Owner of the swarm; see the module docs.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    listen: watch::Sender<Vec<Multiaddr>>,
    metrics: Metrics,
    peers: HashMap<PeerId, PeerState>,
    pending_dial: HashMap<ConnectionId, (Multiaddr, oneshot::Sender<Result<PeerId, NetError>>)>,
    pending_providers: HashMap<QueryId, mpsc::Sender<PeerId>>,
    pending_provide: HashMap<QueryId, oneshot::Sender<Result<(), NetError>>>,
    pending_bootstrap: HashMap<QueryId, oneshot::Sender<Result<(), NetError>>>,
}

/// What [`new`] hands back: the client, peer events, listen addresses, the stream control
/// and the loop to spawn.
pub type NetParts = (
    Client,
    mpsc::Receiver<NetEvent>,
    watch::Receiver<Vec<Multiaddr>>,
    libp2p_stream::Control,
    EventLoop,
);

/// Build the swarm and start listening. Returns the [`Client`], the stream of
/// [`NetEvent`]s, the listen-address watch, a `libp2p-stream` control for protocols
/// spoken over raw streams, and the loop to spawn.
pub fn new(
    key: libp2p::identity::Keypair,
    opts: &SwarmOptions,
    listen: &[Multiaddr],
    metrics: Metrics,
) -> Result<NetParts, NetError> {
    let local_peer = key.public().to_peer_id();
    let mut swarm = build_swarm(key, opts)?;
    for addr in listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
    }
    let control = swarm.behaviour().stream.new_control();
    let (sender, commands) = mpsc::channel(COMMAND_QUEUE);
    let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
    let (listen_tx, listen_rx) = watch::channel(Vec::new());
    let event_loop = EventLoop {
        swarm,
        commands,
        events,
        listen: listen_tx,
        metrics,
        peers: HashMap::new(),
        pending_dial: HashMap::new(),
        pending_providers: HashMap::new(),
        pending_provide: HashMap::new(),
        pending_bootstrap: HashMap::new(),
    };
    Ok((
        Client { sender, local_peer },
        events_rx,
        listen_rx,
        control,
        event_loop,
    ))
}

impl EventLoop {
    /// Run until every [`Client`] is dropped.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.handle_event(event),
                command = self.commands.recv() => match command {
                    Some(c) => self.handle_command(c),
                    None => break,
                },
            }
        }
        tracing::debug!("network event loop stopped");
    }

    fn notify(&self, event: NetEvent) {
        if let Err(e) = self.events.try_send(event) {
            tracing::warn!(error = %e, "peer event dropped: bitswap service is behind");
        }
    }

    fn publish_listen_addrs(&self) {
        let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
        self.listen.send_replace(addrs);
    }

    fn update_routing_gauge(&mut self) {
        let size: usize = self
            .swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|b| b.num_entries())
            .sum();
        self.metrics
            .routing_table_size
            .set(i64::try_from(size).unwrap_or(i64::MAX));
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(addr = %address, "listening");
                self.publish_listen_addrs();
            }
            SwarmEvent::ExpiredListenAddr { .. } | SwarmEvent::ListenerClosed { .. } => {
                self.publish_listen_addrs();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let state = self.peers.entry(peer_id).or_default();
                state.addr = Some(endpoint.get_remote_address().clone());
                if let Some((_, reply)) = self.pending_dial.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, "connected");
                    self.metrics
                        .connected_peers
                        .set(i64::try_from(self.peers.len()).unwrap_or(i64::MAX));
                    self.notify(NetEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::debug!(peer = %peer_id, "disconnected");
                self.peers.remove(&peer_id);
                self.metrics
                    .connected_peers
                    .set(i64::try_from(self.peers.len()).unwrap_or(i64::MAX));
                self.notify(NetEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some((addr, reply)) = self.pending_dial.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial {
                        addr: addr.to_string(),
                        reason: error.to_string(),
                    }));
                } else {
                    tracing::debug!(peer = ?peer_id, %error, "outgoing connection failed");
                }
            }
            SwarmEvent::Behaviour(event) => self.handle_behaviour_event(event),
            _ => {}
        }
    }

    fn handle_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let speaks_kad = info.protocols.contains(&KAD_PROTOCOL);
                if speaks_kad {
                    for addr in info.listen_addrs.iter().filter(|a| routable(a)) {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                    self.update_routing_gauge();
                }
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.agent = Some(info.agent_version);
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.latency = Some(rtt);
                }
            }
            BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer)
                        && let Err(e) = self.swarm.dial(addr)
                    {
                        tracing::debug!(%peer, error = %e, "dialing an mDNS peer failed");
                    }
                }
            }
            BehaviourEvent::Kad(event) => self.handle_kad_event(event),
            _ => {}
        }
    }

    fn handle_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => match result {
                QueryResult::GetProviders(Ok(GetProvidersOk::FoundProviders {
                    providers, ..
                })) => {
                    let mut reader_gone = false;
                    if let Some(found) = self.pending_providers.get(&id) {
                        for peer in providers {
                            if found.try_send(peer).is_err() {
                                tracing::debug!(%peer, "provider dropped: reader is slow or gone");
                            }
                        }
                        reader_gone = found.is_closed();
                    }
                    if step.last || reader_gone {
                        // Nobody reads the rest (e.g. `findprovs -n 1`): stop asking peers.
                        self.pending_providers.remove(&id);
                        if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                            query.finish();
                        }
                    }
                }
                QueryResult::GetProviders(_) if step.last => {
                    self.pending_providers.remove(&id);
                }
                QueryResult::StartProviding(result) => {
                    if let Some(reply) = self.pending_provide.remove(&id) {
                        let _ = reply
                            .send(result.map(|_| ()).map_err(|e| NetError::Dht(e.to_string())));
                    }
                }
                QueryResult::Bootstrap(result) => {
                    if step.last
                        && let Some(reply) = self.pending_bootstrap.remove(&id)
                    {
                        let _ = reply
                            .send(result.map(|_| ()).map_err(|e| NetError::Dht(e.to_string())));
                    }
                    self.update_routing_gauge();
                }
                _ => {}
            },
            kad::Event::RoutingUpdated { .. } => self.update_routing_gauge(),
            _ => {}
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Dial { addr, reply } => {
                if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                    let mut bare = addr.clone();
                    bare.pop();
                    self.swarm.behaviour_mut().kad.add_address(&peer, bare);
                    if self.swarm.is_connected(&peer) {
                        let _ = reply.send(Ok(peer));
                        return;
                    }
                }
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dial.insert(id, (addr, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dial {
                            addr: addr.to_string(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Peers { reply } => {
                let mut peers: Vec<PeerInfo> = self
                    .peers
                    .iter()
                    .map(|(peer, s)| PeerInfo {
                        peer: *peer,
                        addr: s.addr.clone(),
                        latency: s.latency,
                        agent: s.agent.clone(),
                    })
                    .collect();
                peers.sort_by_key(|p| p.peer);
                let _ = reply.send(peers);
            }
            Command::FindProviders { key, found } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(RecordKey::new(&key));
                self.pending_providers.insert(id, found);
            }
            Command::Unprovided { keys, reply } => {
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let fresh = keys.into_iter().filter(|k| !store.is_provided(k)).collect();
                let _ = reply.send(fresh);
            }
            Command::RetainProviding { keep, reply } => {
                let keep: std::collections::HashSet<Vec<u8>> = keep.into_iter().collect();
                let kad = &mut self.swarm.behaviour_mut().kad;
                let gone = kad.store_mut().provided_except(&keep);
                for key in &gone {
                    kad.stop_providing(key);
                }
                let _ = reply.send(gone.len());
            }
            Command::StartProviding { key, reply } => {
                match self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(RecordKey::new(&key))
                {
                    Ok(id) => {
                        self.pending_provide.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dht(e.to_string())));
                    }
                }
            }
            Command::RoutingTable { reply } => {
                let buckets = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .kbuckets()
                    .map(|b| BucketInfo {
                        index: b.range().1.ilog2().unwrap_or(0),
                        peers: b.iter().map(|e| *e.node.key.preimage()).collect(),
                    })
                    .collect();
                let _ = reply.send(buckets);
            }
            Command::Bootstrap { reply } => match self.swarm.behaviour_mut().kad.bootstrap() {
                Ok(id) => {
                    self.pending_bootstrap.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NetError::Dht(e.to_string())));
                }
            },
        }
    }
}

/// Whether an address a peer announced is worth putting in the routing table (not an
/// unspecified or link-local one).
fn routable(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => !ip.is_unspecified() && !ip.is_link_local(),
        Some(Protocol::Ip6(ip)) => !ip.is_unspecified(),
        _ => true,
    }
}
