//! Shared pieces of the operator's reconcile tests: the in-memory API server, the test
//! kubelet running real node processes, and a harness that starts the operator against them.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod fake_apiserver;
pub mod kubelet;
pub mod node_api;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use distribute_operator::controller::{self, Context, Settings};
use distribute_operator::crdgen;
use distribute_operator::metrics::Metrics;
use tokio_util::sync::CancellationToken;

use fake_apiserver::FakeApiServer;

pub const NS: &str = "default";

/// The fake API server with both controllers running against it.
pub struct Harness {
    pub server: FakeApiServer,
    pub client: kube::Client,
    pub settings: Settings,
    shutdown: CancellationToken,
}

impl Harness {
    pub async fn start(api_port: u16) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::INFO)
            .try_init();
        let server = FakeApiServer::start().await;
        let client = server.client(NS);
        // The CRDs are objects too, as `kubectl apply -f crds/` would create them.
        let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            kube::Api::all(client.clone());
        for (_, crd) in crdgen::crds() {
            crds.create(&Default::default(), &crd).await.unwrap();
        }
        let settings = Settings {
            namespace: Some(NS.into()),
            api_port,
            node_timeout: Duration::from_secs(10),
            settle_interval: Duration::from_millis(500),
            pinned_recheck: Duration::from_secs(2),
        };
        let mut registry = prometheus_client::registry::Registry::default();
        let ctx = Arc::new(Context::new(
            client.clone(),
            &settings,
            Metrics::new(&mut registry),
        ));
        let shutdown = CancellationToken::new();
        let (s, token) = (settings.clone(), shutdown.clone());
        tokio::spawn(async move { controller::run(ctx, &s, token).await });
        Self {
            server,
            client,
            settings,
            shutdown,
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` until it returns `Some`, failing with `what` (and the last value seen)
/// after `secs` seconds.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out after {secs} s waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The node tests' free-port picker; the same number is then used on every 127.0.0.N.
#[path = "../../../tests/kit/port.rs"]
mod port;
pub use port::free_port;
