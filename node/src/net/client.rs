//! [`Client`]: the cloneable handle to the network. Each method sends a typed
//! [`Command`] with a reply channel to the [`super::EventLoop`], which alone owns the swarm,
//! and awaits the answer. Provider lookups stream their results through a bounded channel.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::NetError;

/// One connected peer, for `distribute peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer: PeerId,
    pub addr: Option<Multiaddr>,
    /// Last ping round trip.
    pub latency: Option<Duration>,
    /// Agent string the peer sent in identify.
    pub agent: Option<String>,
}

/// One non-empty k-bucket, for `distribute dht inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// log2 of the bucket's largest XOR distance from us.
    pub index: u32,
    pub peers: Vec<PeerId>,
}

/// What the event loop can be asked to do.
#[derive(Debug)]
pub enum Command {
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, NetError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    /// Providers of a DHT key (multihash bytes) are sent on `found` as they arrive; the
    /// channel closes when the query ends.
    FindProviders {
        key: Vec<u8>,
        found: mpsc::Sender<PeerId>,
    },
    StartProviding {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    /// Which of `keys` this node does not provide yet.
    Unprovided {
        keys: Vec<Vec<u8>>,
        reply: oneshot::Sender<Vec<Vec<u8>>>,
    },
    /// Stop providing every key not in `keep`; answers how many were dropped.
    RetainProviding {
        keep: Vec<Vec<u8>>,
        reply: oneshot::Sender<usize>,
    },
    RoutingTable {
        reply: oneshot::Sender<Vec<BucketInfo>>,
    },
    Bootstrap {
        reply: oneshot::Sender<Result<(), NetError>>,
    },
}

/// Cloneable handle to the network task.
#[derive(Debug, Clone)]
pub struct Client {
    pub(super) sender: mpsc::Sender<Command>,
    pub(super) local_peer: PeerId,
}

impl Client {
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.sender
            .send(make(reply))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Connect to `addr`; returns the peer's ID once the connection is up.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// The addresses we listen on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// Start a provider lookup for `key` (a multihash's bytes); results stream in on the
    /// returned channel, which closes when the query is over.
    pub async fn find_providers(&self, key: Vec<u8>) -> Result<mpsc::Receiver<PeerId>, NetError> {
        let (found, rx) = mpsc::channel(64);
        self.sender
            .send(Command::FindProviders { key, found })
            .await
            .map_err(|_| NetError::Stopped)?;
        Ok(rx)
    }

    /// Announce that we provide `key` (a multihash's bytes); returns when the DHT put ends.
    pub async fn start_providing(&self, key: Vec<u8>) -> Result<(), NetError> {
        self.ask(|reply| Command::StartProviding { key, reply })
            .await?
    }

    /// The keys of `keys` that this node does not provide yet.
    pub async fn unprovided(&self, keys: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, NetError> {
        self.ask(|reply| Command::Unprovided { keys, reply }).await
    }

    /// Stop providing every key not in `keep` (the keys of content no longer held); returns
    /// how many were dropped.
    pub async fn retain_providing(&self, keep: Vec<Vec<u8>>) -> Result<usize, NetError> {
        self.ask(|reply| Command::RetainProviding { keep, reply })
            .await
    }

    pub async fn routing_table(&self) -> Result<Vec<BucketInfo>, NetError> {
        self.ask(|reply| Command::RoutingTable { reply }).await
    }

    /// Start a DHT bootstrap (fails if the routing table is empty).
    pub async fn bootstrap(&self) -> Result<(), NetError> {
        self.ask(|reply| Command::Bootstrap { reply }).await?
    }
}
