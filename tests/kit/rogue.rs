//! A misbehaving libp2p peer for tests: a real swarm (TCP, Noise, Yamux) on loopback that
//! speaks Bitswap 1.2.0 badly on purpose, and can open raw streams on any protocol to write
//! arbitrary bytes (malformed kad or bitswap frames). It runs on its own tokio runtime.
//!
//! As a Bitswap peer it answers every want-have with HAVE and every want-block, in
//! [`Mode::Corrupt`], with a block under the wanted CID's prefix whose data is garbage, as a
//! holder with corrupt storage (and no verification) would; in [`Mode::Stall`] it never
//! sends the block, so a fetch from it stays in flight. [`Rogue::corrupt_sent`] counts the
//! corrupt blocks sent, [`Rogue::block_wants`] the want-blocks received.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use distribute::net::bitswap::message::{Block, BlockPresence, PresenceType};
use distribute::net::bitswap::{Message, ProtocolVersion, WantType, encode_framed};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{Multiaddr, PeerId, StreamProtocol, noise, tcp, yamux};

const BITSWAP: &str = "/ipfs/bitswap/1.2.0";

/// How the rogue answers want-blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Corrupt,
    Stall,
}

pub struct Rogue {
    pub peer_id: PeerId,
    /// Dialable address with the peer ID.
    pub addr: String,
    control: libp2p_stream::Control,
    runtime: tokio::runtime::Runtime,
    corrupt_sent: Arc<AtomicU64>,
    block_wants: Arc<AtomicU64>,
}

impl Rogue {
    pub fn start(mode: Mode) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let corrupt_sent = Arc::new(AtomicU64::new(0));
        let block_wants = Arc::new(AtomicU64::new(0));
        let (peer_id, addr, control) = runtime.block_on(async {
            let mut swarm = libp2p::SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .unwrap()
                .with_behaviour(|_| libp2p_stream::Behaviour::new())
                .unwrap()
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
                .build();
            swarm
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .unwrap();
            let addr: Multiaddr = loop {
                if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } =
                    swarm.select_next_some().await
                {
                    break address;
                }
            };
            let peer_id = *swarm.local_peer_id();
            let control = swarm.behaviour().new_control();
            tokio::spawn(async move {
                loop {
                    swarm.select_next_some().await;
                }
            });
            (peer_id, format!("{addr}/p2p/{peer_id}"), control)
        });
        let mut incoming = control
            .clone()
            .accept(StreamProtocol::new(BITSWAP))
            .unwrap();
        let counters = Counters {
            sent: Arc::clone(&corrupt_sent),
            wants: Arc::clone(&block_wants),
        };
        let ctl = control.clone();
        runtime.spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                tokio::spawn(serve(mode, peer, stream, ctl.clone(), counters.clone()));
            }
        });
        Self {
            peer_id,
            addr,
            control,
            runtime,
            corrupt_sent,
            block_wants,
        }
    }

    pub fn block_wants(&self) -> u64 {
        self.block_wants.load(Ordering::SeqCst)
    }

    pub fn corrupt_sent(&self) -> u64 {
        self.corrupt_sent.load(Ordering::SeqCst)
    }

    /// Open a stream to `peer` (already connected to us) on `protocol`, write `bytes`, close
    /// the write side and read whatever comes back until the peer closes or 5 s pass.
    /// Errors (the peer resetting the stream, refusing the protocol) are returned as text.
    pub fn send_raw(&self, peer: &str, protocol: &'static str, bytes: &[u8]) -> Result<(), String> {
        let peer: PeerId = peer.parse().map_err(|e| format!("{e}"))?;
        let mut control = self.control.clone();
        self.runtime.block_on(async move {
            let mut stream = tokio::time::timeout(
                Duration::from_secs(30),
                control.open_stream(peer, StreamProtocol::new(protocol)),
            )
            .await
            .map_err(|_| "opening the stream timed out".to_owned())?
            .map_err(|e| e.to_string())?;
            // The peer may reset the stream part-way (that is the point): not an error here.
            let _ = stream.write_all(bytes).await;
            let _ = stream.close().await;
            let mut sink = vec![0u8; 64 << 10];
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            Ok(())
        })
    }
}

#[derive(Clone)]
struct Counters {
    sent: Arc<AtomicU64>,
    wants: Arc<AtomicU64>,
}

/// Read want messages from one inbound stream and answer on our own outbound stream.
async fn serve(
    mode: Mode,
    peer: PeerId,
    mut inbound: libp2p::Stream,
    mut control: libp2p_stream::Control,
    counters: Counters,
) {
    let Ok(mut out) = control
        .open_stream(peer, StreamProtocol::new(BITSWAP))
        .await
    else {
        return;
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        while let Ok(Some((msg, used))) = distribute::net::bitswap::decode_framed(&buf) {
            buf.drain(..used);
            let mut reply = Message::default();
            for want in msg.wantlist.iter().filter(|w| !w.cancel) {
                match want.want_type {
                    WantType::Have => reply.presences.push(BlockPresence {
                        cid: want.cid,
                        presence: PresenceType::Have,
                    }),
                    WantType::Block => {
                        counters.wants.fetch_add(1, Ordering::SeqCst);
                    }
                }
                if want.want_type == WantType::Block && mode == Mode::Corrupt {
                    reply.blocks.push(Block {
                        cid: want.cid,
                        data: format!("corrupt bytes standing in for {}", want.cid)
                            .into_bytes()
                            .into(),
                    });
                }
            }
            let blocks = reply.blocks.len() as u64;
            if reply.is_empty() {
                continue;
            }
            let Ok(frame) = encode_framed(&reply, ProtocolVersion::V1_2_0) else {
                return;
            };
            if out.write_all(&frame.to_vec()).await.is_err() || out.flush().await.is_err() {
                return;
            }
            counters.sent.fetch_add(blocks, Ordering::SeqCst);
        }
        match inbound.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
