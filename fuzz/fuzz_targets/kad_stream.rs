//! Arbitrary bytes on a `/ipfs/kad/1.0.0` stream to the node's real network stack.
//!
//! Kademlia messages are decoded inside `libp2p-kad` (its codec and protobuf types are
//! private, so there is no decode function of ours or theirs to call directly). This target
//! therefore drives the decoder the way a peer would: one in-process node (our
//! `net::new` swarm and `EventLoop`, kad in server mode with our packet size, listening on
//! loopback) and a bare libp2p peer that writes each input on a fresh kad stream. After each
//! input the event loop must still answer a command. Any panic, in libp2p-kad's decoder
//! or in our handling of the events it produces, aborts the process (see the panic hook),
//! which libFuzzer reports as a crash.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use distribute::metrics::Metrics;
use distribute::net::behaviour::SwarmOptions;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use libp2p::{Multiaddr, PeerId, StreamProtocol, noise, tcp, yamux};

const KAD: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");

struct Harness {
    runtime: tokio::runtime::Runtime,
    node: distribute::net::Client,
    node_id: PeerId,
    peer: libp2p_stream::Control,
}

impl Harness {
    fn start() -> Self {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            std::process::abort();
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (node, node_id, peer) = runtime.block_on(async {
            let key = libp2p::identity::Keypair::generate_ed25519();
            let opts = SwarmOptions {
                mdns: false,
                ..SwarmOptions::default()
            };
            let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
            let (client, mut events, mut addrs, _control, event_loop) =
                distribute::net::new(key, &opts, &[listen], Metrics::default()).unwrap();
            tokio::spawn(event_loop.run());
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            let addr = loop {
                if let Some(a) = addrs.borrow_and_update().first() {
                    break a.clone();
                }
                addrs.changed().await.unwrap();
            };
            let node_id = client.local_peer_id();
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
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
                .build();
            swarm.add_peer_address(node_id, addr);
            let peer = swarm.behaviour().new_control();
            tokio::spawn(async move {
                loop {
                    swarm.select_next_some().await;
                }
            });
            (client, node_id, peer)
        });
        Self {
            runtime,
            node,
            node_id,
            peer,
        }
    }

    fn run(&self, data: &[u8]) {
        let mut peer = self.peer.clone();
        self.runtime.block_on(async {
            // The node may close the stream or the connection on bad input: fine.
            if let Ok(Ok(mut stream)) =
                tokio::time::timeout(Duration::from_secs(10), peer.open_stream(self.node_id, KAD))
                    .await
            {
                let _ = stream.write_all(data).await;
                let _ = stream.close().await;
                let mut sink = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Ok(n) = stream.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            }
            // The event loop still answers.
            assert!(self.node.routing_table().await.is_ok(), "event loop gone");
        });
    }
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    HARNESS.get_or_init(Harness::start).run(data);
});
