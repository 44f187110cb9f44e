//! Networking, shaped like rust-libp2p's file-sharing example.
//!
//! - [`bitswap`]: the socket-free Bitswap codec, server ledger and client session, plus
//!   [`bitswap::service`], the async glue that runs them over `libp2p-stream` streams.
//! - [`behaviour`]: the composed `NetworkBehaviour` and the swarm builder.
//! - [`event_loop`]: [`event_loop::EventLoop`] owns the `Swarm` and nothing else touches it;
//!   one `tokio::select!` over swarm events and [`client::Client`] commands.
//! - [`client`]: the cloneable handle the daemon and bitswap use to ask the loop for things.
//! - [`security`]: the handshakes offered (TLS, then Noise); [`tls`]: libp2p TLS with the
//!   cipher suites ordered for the CPU.
//! - [`identity`]: the persistent keypair; [`config`]: listen addresses, network key.
//! - [`records`]: the Kademlia record store (our own provider keys kept apart from the
//!   bounded store of other peers' records).
//!
//! The network task never reads the disk: blocks are looked up by the bitswap service in
//! `spawn_blocking`, and files (`node.json`) are written by the daemon.

pub mod behaviour;
pub mod bitswap;
pub mod client;
pub mod config;
pub mod event_loop;
pub mod identity;
pub mod muxer;
pub mod records;
pub mod security;
pub mod tls;

use std::path::PathBuf;

use thiserror::Error;

pub use client::{BucketInfo, Client, PeerInfo};
pub use event_loop::{EventLoop, NetEvent, new};

/// A network operation that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("bad address {addr:?}: {reason}; use :PORT or a multiaddr like /ip4/0.0.0.0/tcp/4001")]
    BadAddress { addr: String, reason: String },
    #[error("network key {path}: {reason}; expected Kubo's swarm.key format")]
    NetworkKey { path: PathBuf, reason: String },
    #[error("setting up the transport: {0}")]
    Transport(String),
    #[error("listening on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("dialing {addr}: {reason}; check the address and that the peer is running")]
    Dial { addr: String, reason: String },
    #[error("DHT: {0}")]
    Dht(String),
    #[error("the network task has stopped; restart the node")]
    Stopped,
}
