//! Opens many libp2p connections to one node and holds them (bench/p2p.sh, part 3).
//!
//! Each connection comes from its own peer: a fresh Ed25519 identity and a small swarm
//! (TCP, Noise, Yamux, identify, ping — what any IPFS peer runs), all in this one process.
//! Prints `connected N` once N connections are up, then keeps them open for `--hold`
//! seconds (pings flow as usual) and exits.
//!
//! Usage: `cargo run --release --example conn_hold -- <multiaddr> [--count 1000] [--hold 60]`

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, identify, noise, ping, tcp, yamux};
use tokio::sync::{Semaphore, mpsc};

/// Handshakes in flight at once: below the node's pending-incoming limit (64).
const PENDING_HANDSHAKES: usize = 32;

/// Dials per peer before its failure is reported.
const DIAL_ATTEMPTS: u32 = 3;

#[derive(NetworkBehaviour)]
struct Peer {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

struct Args {
    target: Multiaddr,
    count: usize,
    hold: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let target = it
        .next()
        .ok_or("usage: conn_hold <multiaddr> [--count N] [--hold SECS]")?;
    let target = target
        .parse()
        .map_err(|e| format!("bad multiaddr {target}: {e}"))?;
    let mut args = Args {
        target,
        count: 1000,
        hold: 60,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--count" => args.count = usize::try_from(n).map_err(|e| e.to_string())?,
            "--hold" => args.hold = n,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// One peer: dial, report the outcome, then keep polling the swarm until dropped. The permit
/// is held only while the handshake is pending: the node under test accepts a bounded number
/// of pending incoming connections (DoS protection), so the bench keeps below that bound.
async fn peer(
    target: Multiaddr,
    hold: Duration,
    up: mpsc::Sender<Result<(), String>>,
    handshakes: Arc<Semaphore>,
) {
    let Ok(permit) = handshakes.acquire_owned().await else {
        return;
    };
    let swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.with_behaviour(|key| Peer {
                identify: identify::Behaviour::new(identify::Config::new(
                    "/ipfs/id/1.0.0".to_owned(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
            })
            .map_err(|e| e.to_string())
        });
    let mut swarm = match swarm {
        Ok(b) => b
            .with_swarm_config(|c| c.with_idle_connection_timeout(hold))
            .build(),
        Err(e) => {
            let _ = up.send(Err(e)).await;
            return;
        }
    };
    if let Err(e) = swarm.dial(target.clone()) {
        let _ = up.send(Err(e.to_string())).await;
        return;
    }
    let mut reported = false;
    let mut permit = Some(permit);
    let mut attempts = 1;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } if !reported => {
                reported = true;
                drop(permit.take());
                let _ = up.send(Ok(())).await;
            }
            // A few handshakes out of 1,000 have failed under load ("Broken pipe" while the
            // node was busy with the others): dial again before calling the peer failed.
            SwarmEvent::OutgoingConnectionError { .. } if !reported && attempts < DIAL_ATTEMPTS => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Err(e) = swarm.dial(target.clone()) {
                    let _ = up.send(Err(e.to_string())).await;
                    return;
                }
            }
            SwarmEvent::OutgoingConnectionError { error, .. } if !reported => {
                let _ = up
                    .send(Err(format!("{error} (after {attempts} dials)")))
                    .await;
                return;
            }
            SwarmEvent::ConnectionClosed { .. } => return,
            _ => {}
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let (up_tx, mut up) = mpsc::channel(args.count.max(1));
    let hold = Duration::from_secs(args.hold);
    let mut tasks = Vec::with_capacity(args.count);
    let handshakes = Arc::new(Semaphore::new(PENDING_HANDSHAKES));
    for _ in 0..args.count {
        tasks.push(tokio::spawn(peer(
            args.target.clone(),
            hold,
            up_tx.clone(),
            Arc::clone(&handshakes),
        )));
    }
    drop(up_tx);
    let (mut ok, mut failed) = (0usize, Vec::new());
    while let Some(r) = up.recv().await {
        match r {
            Ok(()) => ok += 1,
            Err(e) => failed.push(e),
        }
        if ok + failed.len() == args.count {
            break;
        }
    }
    println!("connected {ok}");
    if let Some(e) = failed.first() {
        eprintln!("conn_hold: {} dials failed; first: {e}", failed.len());
    }
    tokio::time::sleep(hold).await;
    for t in tasks {
        t.abort();
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("conn_hold: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("conn_hold: starting the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conn_hold: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
