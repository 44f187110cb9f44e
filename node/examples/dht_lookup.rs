//! Provider-lookup latency in a local Kademlia network (bench/p2p.sh, part 2).
//!
//! Starts `--nodes` in-process nodes, each the node's own swarm and event loop
//! (`distribute::net::new`: TCP + QUIC, TLS (Noise for peers without it), Yamux, identify,
//! kad `/ipfs/kad/1.0.0`) on 127.0.0.1. Node 0 is the bootstrap peer; every other node dials
//! it and one earlier node, then runs a Kademlia bootstrap, as a daemon started with `--bootstrap` does. Then
//! `--lookups` random keys are announced (`start_providing`) each by a random node, and each
//! is looked up once by another random node. Prints one Markdown table: time to the first
//! provider and to the end of the query, p50 / p90 / p99 / max.
//!
//! Usage: `cargo run --release --example dht_lookup -- [--nodes 50] [--lookups 200]`

use std::time::{Duration, Instant};

use distribute::metrics::Metrics;
use distribute::net::Client;
use distribute::net::behaviour::SwarmOptions;
use libp2p::Multiaddr;
use sha2::{Digest, Sha256};

struct Args {
    nodes: usize,
    lookups: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 50,
        lookups: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: usize = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--nodes" if n >= 3 => args.nodes = n,
            "--lookups" if n >= 1 => args.lookups = n,
            _ => return Err(format!("unknown flag or value too small: {flag} {value}")),
        }
    }
    Ok(args)
}

/// A small deterministic generator (xorshift64*), enough to pick nodes.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

struct Node {
    client: Client,
    addr: Multiaddr,
}

async fn start_node() -> Result<Node, String> {
    let key = libp2p::identity::Keypair::generate_ed25519();
    let opts = SwarmOptions {
        mdns: false,
        ..SwarmOptions::default()
    };
    let listen: Vec<Multiaddr> = vec!["/ip4/127.0.0.1/tcp/0".parse().map_err(|e| format!("{e}"))?];
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (client, mut events, mut listen_rx, _control, event_loop) =
        distribute::net::new(key, &opts, &listen, metrics).map_err(|e| e.to_string())?;
    tokio::spawn(event_loop.run());
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let addrs = listen_rx
        .wait_for(|a| !a.is_empty())
        .await
        .map_err(|e| e.to_string())?
        .clone();
    let addr = addrs[0]
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(client.local_peer_id()));
    Ok(Node { client, addr })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(args: Args) -> Result<(), String> {
    let mut nodes = Vec::with_capacity(args.nodes);
    for _ in 0..args.nodes {
        nodes.push(start_node().await?);
    }
    let mut pick = Pick(0x9e37_79b9_7f4a_7c15);
    // Bootstrap: everyone dials node 0 and one earlier node, then walks the DHT.
    for i in 1..nodes.len() {
        let other = 1 + pick.below(i.max(2) - 1);
        for j in [0, other.min(i - 1)] {
            nodes[i]
                .client
                .dial(nodes[j].addr.clone())
                .await
                .map_err(|e| format!("node {i} dialing node {j}: {e}"))?;
        }
    }
    // Identify must have run on the dialled connections before the walk can use them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let walks = nodes.iter().map(|n| n.client.bootstrap());
    for r in futures::future::join_all(walks).await {
        r.map_err(|e| format!("bootstrap: {e}"))?;
    }
    let tables = futures::future::join_all(nodes.iter().map(|n| n.client.routing_table())).await;
    let sizes: Vec<usize> = tables
        .into_iter()
        .map(|t| {
            t.map(|b| b.iter().map(|x| x.peers.len()).sum())
                .unwrap_or(0)
        })
        .collect();
    let mean_table = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;

    // Announce.
    let mut keys = Vec::with_capacity(args.lookups);
    for k in 0..args.lookups {
        let digest = Sha256::digest(format!("dht_lookup key {k}").as_bytes());
        let mh = multihash::Multihash::<64>::wrap(0x12, &digest).map_err(|e| e.to_string())?;
        let provider = pick.below(nodes.len());
        nodes[provider]
            .client
            .start_providing(mh.to_bytes())
            .await
            .map_err(|e| format!("announcing key {k}: {e}"))?;
        keys.push((mh.to_bytes(), provider));
    }

    // Look up, one at a time, each from a node that is not the provider.
    let (mut first, mut full) = (Vec::new(), Vec::new());
    let mut misses = 0;
    for (key, provider) in &keys {
        let mut q = pick.below(nodes.len());
        if q == *provider {
            q = (q + 1) % nodes.len();
        }
        let start = Instant::now();
        let mut found = nodes[q]
            .client
            .find_providers(key.clone())
            .await
            .map_err(|e| e.to_string())?;
        let mut got = false;
        while let Some(peer) = found.recv().await {
            if !got && peer == nodes[*provider].client.local_peer_id() {
                first.push(start.elapsed().as_secs_f64() * 1e3);
                got = true;
            }
        }
        full.push(start.elapsed().as_secs_f64() * 1e3);
        if !got {
            misses += 1;
        }
    }
    first.sort_by(f64::total_cmp);
    full.sort_by(f64::total_cmp);
    println!(
        "| {:<44} | {:>7} | {:>7} | {:>7} | {:>7} |",
        "lookup (ms, in-process client call)", "p50", "p90", "p99", "max"
    );
    println!(
        "|{}|{}|{}|{}|{}|",
        "-".repeat(46),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(9)
    );
    for (name, xs) in [
        ("first provider record received", &first),
        ("whole get_providers query finished", &full),
    ] {
        println!(
            "| {:<44} | {:>7.2} | {:>7.2} | {:>7.2} | {:>7.2} |",
            name,
            percentile(xs, 50.0),
            percentile(xs, 90.0),
            percentile(xs, 99.0),
            percentile(xs, 100.0)
        );
    }
    println!(
        "\n{} nodes, {} lookups, {} found the provider; mean routing-table size {:.1} peers.",
        nodes.len(),
        keys.len(),
        keys.len() - misses,
        mean_table
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dht_lookup: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dht_lookup: starting the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dht_lookup: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
