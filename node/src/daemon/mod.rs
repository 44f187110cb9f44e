//! `distribute node`: the long-running daemon.
//!
//! [`run`] opens the repository (holding its lock for the daemon's life), loads the identity,
//! builds the swarm and spawns its [`crate::net::EventLoop`], starts the Bitswap service
//! over the repository's block store, connects to the bootstrap peers, announces content
//! ([`provide`]), serves the HTTP RPC API ([`crate::api`], its address in `<repo>/api`, which
//! the CLI finds it by) and, when asked, metrics over HTTP ([`http`]) and the HTTP gateway
//! ([`crate::gateway`]). The addresses it listens on are logged and written to
//! `<repo>/node.json`. SIGTERM or SIGINT shut it down and remove both files.

pub mod complete;
pub mod http;
pub mod provide;
pub mod source;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

use crate::api::{self, Auth, NodeState};
use crate::cli::args::{GlobalArgs, NodeArgs};
use crate::metrics::Metrics;
use crate::net::behaviour::SwarmOptions;
use crate::net::bitswap::Bitswap;
use crate::net::{config, identity};
use crate::repo::Repo;

/// File the daemon writes its peer ID and addresses to, inside the repository.
pub const NODE_FILE: &str = "node.json";

/// Run the daemon until SIGTERM/SIGINT.
pub fn run(global: &GlobalArgs, args: &NodeArgs) -> Result<()> {
    let path = crate::cli::output::repo_path(global)?;
    let auth = match &global.api_token_file {
        Some(file) => Auth::from_file(file)?,
        None => Auth::open(),
    };
    crate::memory::limit_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run_async(&path, args, auth));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// How often the store's block count is sampled into `distribute_blocks_total`.
const STORE_SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Keep the block-count gauge current. Counting walks the store's index, so it runs off the
/// async threads and only every [`STORE_SAMPLE_INTERVAL`].
async fn sample_store(repo: Arc<Repo>, metrics: Metrics) {
    let mut tick = tokio::time::interval(STORE_SAMPLE_INTERVAL);
    loop {
        tick.tick().await;
        let repo = Arc::clone(&repo);
        match tokio::task::spawn_blocking(move || repo.blocks().stat()).await {
            Ok(Ok(stat)) => {
                metrics
                    .blocks
                    .set(i64::try_from(stat.blocks).unwrap_or(i64::MAX));
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "counting stored blocks failed"),
            Err(_) => return, // runtime shutting down
        }
    }
}

async fn run_async(path: &Path, args: &NodeArgs, auth: Auth) -> Result<()> {
    let repo = Arc::new(Repo::open_or_init(path, args.blockstore)?);
    crate::memory::serve_buffers_from_heap();
    remove_stale_files(path);
    let key = identity::load_or_create(path)?;
    let public_key = key.public();
    // Bind the API first: a bad --api fails the start before anything else runs.
    let api_listener = api::server::bind(args.api, &auth).await?;
    let api_addr = api_listener
        .local_addr()
        .context("reading the API's bound address")?;
    let psk = args
        .network_key
        .as_deref()
        .map(config::read_network_key)
        .transpose()?;
    let listen = config::listen_addrs(&args.listen, psk.is_some())?;
    let fd_limit = config::raise_fd_limit();
    tracing::debug!(?fd_limit, "open-file limit");
    let opts = SwarmOptions {
        mdns: !args.no_mdns,
        kad_client: args.kad_client,
        psk,
        max_connections: args.max_connections,
    };
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let cluster_metrics = crate::cluster::metrics::ClusterMetrics::register(&mut registry);
    let gateway_metrics = crate::gateway::GatewayMetrics::register(&mut registry);
    let (client, events, mut listen_rx, control, event_loop) =
        crate::net::new(key, &opts, &listen, metrics.clone())?;
    let peer = client.local_peer_id();
    tracing::info!(%peer, repo = %path.display(), "node starting");
    tokio::spawn(event_loop.run());
    let cluster_control = control.clone();
    let bitswap = Bitswap::spawn(
        client.clone(),
        control,
        events,
        repo.blocks_arc(),
        metrics.clone(),
    );

    let (ready_tx, ready_rx) = watch::channel(false);
    if let Some(addr) = args.metrics {
        let listener = http::bind(addr)
            .await
            .with_context(|| format!("binding the metrics address {addr}"))?;
        tracing::info!(addr = %addr, "metrics listening");
        tokio::spawn(http::serve(listener, Arc::new(registry), ready_rx));
    }

    let (pins_changed, changed_rx) = mpsc::channel(16);
    let (full_tx, full_rx) = mpsc::channel(4);
    let gateway_bitswap = bitswap.clone();
    let cluster = match cluster_config(args)? {
        Some(config) => {
            let parts = crate::cluster::ClusterParts {
                repo: Arc::clone(&repo),
                client: client.clone(),
                control: cluster_control,
                bitswap: bitswap.clone(),
                metrics: cluster_metrics,
                pins_changed: pins_changed.clone(),
            };
            Some(crate::cluster::Cluster::spawn(config, parts)?)
        }
        None => None,
    };
    let state = Arc::new(NodeState {
        repo: Arc::clone(&repo),
        client: client.clone(),
        bitswap: bitswap.clone(),
        public_key,
        fetch_timeout: Duration::from_secs(args.fetch_timeout),
        pins_changed,
        cluster: cluster.clone(),
    });
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_task = tokio::spawn(api::server::serve(
        api_listener,
        Arc::new(crate::cluster::api::commands(&state)),
        Arc::new(auth),
        async move {
            let _ = api_stopped.await;
        },
    ));
    api::server::write_api_file(path, api_addr)?;
    tracing::info!(addr = %api_addr, "RPC API listening");

    let gateway_url = match args.gateway {
        Some(addr) => {
            let gateway = crate::gateway::Gateway {
                repo: Arc::clone(&repo),
                bitswap: gateway_bitswap,
                retrieval_timeout: Duration::from_secs(args.retrieval_timeout),
                subdomain_host: args.subdomain_host.clone(),
                metrics: gateway_metrics,
                cache: crate::gateway::cache::BlockCache::new(
                    args.gateway_cache_mib.saturating_mul(1 << 20),
                ),
            };
            let url = crate::gateway::server::start(addr, gateway)
                .await
                .with_context(|| format!("binding the gateway address {addr}"))?;
            Some(url)
        }
        None => None,
    };

    // node.json follows the listen addresses; ready once there is one.
    let node_file = path.join(NODE_FILE);
    let api_url = format!("http://{api_addr}");
    tokio::spawn(async move {
        loop {
            let addrs = listen_rx.borrow_and_update().clone();
            if !addrs.is_empty() {
                let _ = ready_tx.send(true);
                let doc = serde_json::json!({
                    "peer_id": peer.to_string(),
                    "addrs": addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "api": api_url,
                    "gateway": gateway_url,
                });
                let tmp = node_file.with_extension("json.tmp");
                let written = async {
                    tokio::fs::write(&tmp, doc.to_string()).await?;
                    tokio::fs::rename(&tmp, &node_file).await
                };
                if let Err(e) = written.await {
                    tracing::warn!(error = %e, "writing node.json failed");
                }
            }
            if listen_rx.changed().await.is_err() {
                return;
            }
        }
    });

    let announcer = provide::Announcer {
        client: client.clone(),
        repo: Arc::clone(&repo),
        strategy: args.provide_strategy,
        interval: Duration::from_secs(args.reprovide_interval.max(60)),
    };
    tokio::spawn(announcer.run(changed_rx, full_rx));
    tokio::spawn(sample_store(Arc::clone(&repo), metrics.clone()));
    tokio::spawn(crate::memory::trim_every(crate::memory::TRIM_EVERY));
    tokio::spawn(bootstrap(client.clone(), args.bootstrap.clone(), full_tx));

    match &cluster {
        Some(cluster) => {
            tokio::select! {
                signal = wait_for_signal() => signal?,
                () = cluster.leave_requested() => {}
            }
            tracing::info!(
                "leaving the cluster: waiting for the pins held here to be held elsewhere"
            );
            tokio::select! {
                remaining = cluster.drain_self() => tracing::info!(remaining, "left the cluster"),
                signal = wait_for_signal() => {
                    signal?;
                    tracing::warn!("second signal: stopping without waiting for the drain");
                }
            }
        }
        None => wait_for_signal().await?,
    }
    tracing::info!("shutting down");
    api::server::remove_api_file(path);
    let _ = stop_api.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), api_task).await;
    bitswap.shutdown(Duration::from_secs(3)).await;
    let _ = std::fs::remove_file(path.join(NODE_FILE));
    let flush = tokio::task::spawn_blocking(move || repo.flush()).await;
    if let Ok(Err(e)) = flush {
        tracing::warn!(error = %e, "flushing the repository at shutdown failed");
    }
    Ok(())
}

/// Remove the `node.json` and `api` a daemon killed without cleanup (SIGKILL, power loss)
/// left behind. Called holding the repository lock, so no live daemon owns them; until the
/// new ones are written, clients find no API rather than a dead one (or another process
/// that took its port).
fn remove_stale_files(path: &Path) {
    for name in [NODE_FILE, api::server::API_FILE] {
        match std::fs::remove_file(path.join(name)) {
            Ok(()) => tracing::info!(file = name, "removed a stale file of an earlier run"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = name, error = %e, "removing a stale file failed"),
        }
    }
}

/// The cluster settings from the node's flags; `None` without `--cluster-secret-file`.
fn cluster_config(args: &NodeArgs) -> Result<Option<crate::cluster::ClusterConfig>> {
    let Some(file) = &args.cluster_secret_file else {
        return Ok(None);
    };
    let text = std::fs::read(file)
        .with_context(|| format!("reading the cluster secret file {}", file.display()))?;
    let secret = crate::cluster::wire::Secret::from_file_text(&text).with_context(|| {
        format!(
            "the cluster secret file {} is empty; put a long random string in it",
            file.display()
        )
    })?;
    Ok(Some(crate::cluster::ClusterConfig {
        secret,
        zone: args.zone.clone(),
        replication: default_replication(args)?,
        heartbeat_timeout: Duration::from_secs(args.heartbeat_timeout),
        rereplicate_after: Duration::from_secs(args.rereplicate_after),
        drain_timeout: Duration::from_secs(args.drain_timeout),
        fetch_timeout: Duration::from_secs(args.fetch_timeout),
        scrub_rate: args.scrub_rate.saturating_mul(1 << 20),
        scrub_interval: Duration::from_secs(args.scrub_interval.max(1)),
        tombstone_ttl: Duration::from_secs(args.tombstone_ttl),
    }))
}

/// The (min, max) copies of a cluster pin that names none: `--replication-min`/`-max` (or
/// their environment variables) override `--replication`, which defaults to 3.
fn default_replication(args: &NodeArgs) -> anyhow::Result<(u32, u32)> {
    let n = args.replication.unwrap_or(3);
    let max = args
        .replication_max
        .unwrap_or_else(|| n.max(args.replication_min.unwrap_or(0)));
    let min = args.replication_min.unwrap_or_else(|| n.min(max));
    if min > max {
        anyhow::bail!(
            "--replication-min {min} is larger than --replication-max {max} \
             (check DISTRIBUTE_REPLICATION_MIN/MAX in the environment)"
        );
    }
    Ok((min, max))
}

/// Dial the bootstrap peers, then bootstrap the DHT and ask for a full announcement.
async fn bootstrap(client: crate::net::Client, peers: Vec<String>, full: mpsc::Sender<()>) {
    let mut connected = 0;
    for text in &peers {
        let addr: libp2p::Multiaddr = match text.parse() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(addr = %text, error = %e, "bad bootstrap address");
                continue;
            }
        };
        // Retry a little: nodes of a cluster often start together.
        for attempt in 0..5u64 {
            match client.dial(addr.clone()).await {
                Ok(peer) => {
                    tracing::info!(%peer, addr = %text, "connected to bootstrap peer");
                    connected += 1;
                    break;
                }
                Err(e) => {
                    tracing::warn!(addr = %text, error = %e, attempt, "bootstrap dial failed");
                    tokio::time::sleep(Duration::from_secs(1 + attempt)).await;
                }
            }
        }
    }
    if connected > 0 {
        // Identify needs a moment to tell kad the peers' listen addresses.
        for _ in 0..10 {
            match client.bootstrap().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "DHT bootstrap not ready yet");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        let _ = full.send(()).await;
    }
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
