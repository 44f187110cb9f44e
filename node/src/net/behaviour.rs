//! The composed libp2p behaviour and the swarm built around it.
//!
//! [`Behaviour`] is one `#[derive(NetworkBehaviour)]` struct: connection and memory limits,
//! identify (`/ipfs/id/1.0.0`), ping, mDNS (optional), Kademlia on `/ipfs/kad/1.0.0` with
//! packets large enough for Go and JS peers, AutoNAT, the relay client, DCUtR hole punching,
//! and `libp2p-stream`, over which [`super::bitswap::service`] speaks Bitswap. [`build_swarm`]
//! picks the transports: TCP + QUIC normally, TCP with a pre-shared key (Kubo's `swarm.key`
//! format) for a private network; TCP and relayed connections are secured with TLS, or Noise
//! for peers without it ([`super::security`]). Only [`super::event_loop::EventLoop`] drives the
//! swarm.

use std::num::NonZeroUsize;
use std::time::Duration;

use libp2p::core::upgrade;
use libp2p::identity::Keypair;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, Transport, autonat, connection_limits, dcutr, identify,
    kad, mdns, memory_connection_limits, ping, relay, tcp,
};

use super::NetError;
use super::muxer::yamux_upgrade;
use super::records::ProviderStore;
use super::security::tls_then_noise;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Kademlia protocol of the public IPFS DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");
/// Identify protocol version string IPFS peers announce.
pub const IDENTIFY_PROTOCOL: &str = "/ipfs/id/1.0.0";
/// Largest DHT message accepted; Go and JS peers send provider lists near 1 MiB.
pub const KAD_MAX_PACKET: usize = 4 << 20;
/// Connections kept open without streams, so bitswap peers stay reachable between fetches.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// What the swarm is built from.
#[derive(Debug, Clone)]
pub struct SwarmOptions {
    pub mdns: bool,
    /// Force DHT client mode (no inbound DHT queries); servers are the default.
    pub kad_client: bool,
    /// Private network key: TCP only, every connection goes through the pnet handshake.
    pub psk: Option<PreSharedKey>,
    pub max_connections: u32,
}

impl Default for SwarmOptions {
    fn default() -> Self {
        Self {
            mdns: true,
            kad_client: false,
            psk: None,
            max_connections: 2048,
        }
    }
}

/// Every protocol the node speaks, composed.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub memory: memory_connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub kad: kad::Behaviour<ProviderStore>,
    pub autonat: autonat::Behaviour,
    pub relay: relay::client::Behaviour,
    pub dcutr: dcutr::Behaviour,
    pub stream: libp2p_stream::Behaviour,
}

/// The agent string peers see in identify.
pub fn agent_version() -> String {
    format!("distribute/{}", env!("CARGO_PKG_VERSION"))
}

fn behaviour(
    key: &Keypair,
    relay: relay::client::Behaviour,
    opts: &SwarmOptions,
) -> Result<Behaviour, NetError> {
    let peer = key.public().to_peer_id();
    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config
        .set_replication_factor(NonZeroUsize::MIN.saturating_add(19))
        .set_max_packet_size(KAD_MAX_PACKET)
        .set_query_timeout(Duration::from_secs(30))
        // The announcer re-announces what the provide strategy selects (and stops announcing
        // what was unpinned); kad's own 12-hourly republish of every key ever provided would
        // double that work.
        .set_provider_publication_interval(None);
    let mut kad = kad::Behaviour::with_config(peer, ProviderStore::new(peer), kad_config);
    kad.set_mode(Some(if opts.kad_client {
        kad::Mode::Client
    } else {
        kad::Mode::Server
    }));
    let mdns = if opts.mdns {
        Some(
            mdns::tokio::Behaviour::new(mdns::Config::default(), peer)
                .map_err(|e| NetError::Transport(format!("starting mDNS: {e}")))?,
        )
    } else {
        None
    };
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(opts.max_connections))
        .with_max_established_per_peer(Some(4))
        .with_max_pending_incoming(Some(64));
    Ok(Behaviour {
        limits: connection_limits::Behaviour::new(limits),
        memory: memory_connection_limits::Behaviour::with_max_percentage(0.9),
        identify: identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                .with_agent_version(agent_version()),
        ),
        ping: ping::Behaviour::new(ping::Config::new()),
        mdns: Toggle::from(mdns),
        kad,
        autonat: autonat::Behaviour::new(peer, autonat::Config::default()),
        relay,
        dcutr: dcutr::Behaviour::new(peer),
        stream: libp2p_stream::Behaviour::new(),
    })
}

/// The swarm for `key`: TCP + QUIC + DNS + relay, or TCP with pnet when a key is given.
pub fn build_swarm(key: Keypair, opts: &SwarmOptions) -> Result<Swarm<Behaviour>, NetError> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: &dyn std::fmt::Display| NetError::Transport(format!("{what}: {e}"))
    };
    let swarm = match opts.psk {
        None => SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                tls_then_noise,
                yamux_upgrade,
            )
            .map_err(|e| err("tcp")(&e))?
            .with_quic()
            .with_dns()
            .map_err(|e| err("dns")(&e))?
            .with_relay_client(tls_then_noise, yamux_upgrade)
            .map_err(|e| err("relay")(&e))?
            .with_behaviour(|key, relay| {
                behaviour(key, relay, opts).map_err(|e| -> BoxError { Box::new(e) })
            })
            .map_err(|e| err("behaviour")(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
            .build(),
        Some(psk) => SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_other_transport(|key| {
                let security = tls_then_noise(key).map_err(|e| -> BoxError { Box::new(e) })?;
                Ok::<_, BoxError>(
                    tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                        .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
                        .upgrade(upgrade::Version::V1Lazy)
                        .authenticate(security)
                        .multiplex(yamux_upgrade()),
                )
            })
            .map_err(|e| err("pnet tcp")(&e))?
            .with_dns()
            .map_err(|e| err("dns")(&e))?
            .with_relay_client(tls_then_noise, yamux_upgrade)
            .map_err(|e| err("relay")(&e))?
            .with_behaviour(|key, relay| {
                behaviour(key, relay, opts).map_err(|e| -> BoxError { Box::new(e) })
            })
            .map_err(|e| err("behaviour")(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
            .build(),
    };
    Ok(swarm)
}
