//! The `distribute-operator` binary: `run` (the controllers, `/metrics` and `/health`,
//! optional leader election) and `crdgen` (write `crds/*.yaml`). JSON logs on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use distribute_operator::controller::{self, Context, Settings};
use distribute_operator::leader::Election;
use distribute_operator::metrics::Metrics;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "distribute-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the StorageCluster and Pin controllers.
    Run {
        /// Address of `/metrics` and `/health`.
        #[arg(long, default_value = "0.0.0.0:8081")]
        metrics_addr: SocketAddr,
        /// Hold the `distribute-operator` Lease before reconciling (for several replicas).
        #[arg(long)]
        leader_elect: bool,
        /// Watch only this namespace (default: all). The Lease lives here too.
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Port of the node API on each pod.
        #[arg(long, default_value_t = 5001)]
        node_api_port: u16,
        /// Seconds one node API call may take.
        #[arg(long, default_value_t = 10)]
        node_api_timeout: u64,
        /// Log filter (`info`, `debug`, `distribute_operator=debug`).
        #[arg(long, default_value = "info", env = "RUST_LOG")]
        log_level: String,
    },
    /// Write the CustomResourceDefinitions as YAML files.
    Crdgen {
        /// Folder to write `storageclusters.yaml` and `pins.yaml` into.
        #[arg(long, default_value = "crds")]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crdgen { out } => {
            for path in distribute_operator::crdgen::write_all(&out)
                .with_context(|| format!("crdgen into {}", out.display()))?
            {
                println!("{path}");
            }
            Ok(())
        }
        Command::Run {
            metrics_addr,
            leader_elect,
            namespace,
            node_api_port,
            node_api_timeout,
            log_level,
        } => {
            tracing_subscriber::fmt()
                .json()
                .with_writer(std::io::stderr)
                .with_env_filter(tracing_subscriber::EnvFilter::new(log_level))
                .init();
            let settings = Settings {
                namespace,
                api_port: node_api_port,
                node_timeout: Duration::from_secs(node_api_timeout),
                ..Settings::default()
            };
            tokio::runtime::Runtime::new()
                .context("starting the tokio runtime")?
                .block_on(run(settings, metrics_addr, leader_elect))
        }
    }
}

async fn run(
    settings: Settings,
    metrics_addr: SocketAddr,
    leader_elect: bool,
) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes API: in-cluster service account or KUBECONFIG needed")?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::new(&mut registry);
    let shutdown = CancellationToken::new();
    let (bound, _http) =
        distribute_operator::http::serve(metrics_addr, Arc::new(registry), shutdown.clone())
            .await
            .with_context(|| format!("binding the metrics address {metrics_addr}"))?;
    tracing::info!(%bound, "serving /metrics and /health");
    let signals = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        signals.cancel();
    });
    #[cfg(unix)]
    {
        let signals = shutdown.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            term.recv().await;
            signals.cancel();
        });
    }
    if leader_elect {
        let ns = match &settings.namespace {
            Some(ns) => ns.clone(),
            None => std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into()),
        };
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("distribute-operator-{}", std::process::id()));
        Election {
            api: kube::Api::namespaced(client.clone(), &ns),
            identity,
            lease_duration: Duration::from_secs(15),
        }
        .lead(shutdown.clone())
        .await;
        if shutdown.is_cancelled() {
            return Ok(());
        }
    }
    let ctx = Arc::new(Context::new(client, &settings, metrics));
    controller::run(ctx, &settings, shutdown.clone()).await;
    if leader_elect && shutdown.is_cancelled() {
        tracing::info!("stopped");
    }
    Ok(())
}
