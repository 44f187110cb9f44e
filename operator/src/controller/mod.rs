//! The two controllers and what they share. `storage_cluster` and `pin` are the reconcile
//! pipelines; `scale`, `cluster_status`, `pin_status` and `conditions` are their pure
//! decisions; `nodes` finds and calls node pods; `apply` writes objects. [`run`] wires both
//! controllers to their watches and runs them until the shutdown token fires.

pub mod apply;
pub mod cluster_status;
pub mod conditions;
mod error;
pub mod nodes;
pub mod pin;
pub mod pin_status;
pub mod scale;
pub mod storage_cluster;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

pub use error::Error;

use crate::crd::{Pin, StorageCluster};
use crate::metrics::Metrics;
use crate::nodeapi::NodeClient;

/// What every reconcile needs.
pub struct Context {
    pub client: kube::Client,
    /// Node API client without a token (each cluster adds its own).
    pub node: NodeClient,
    /// Port of the node API on each pod IP.
    pub api_port: u16,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// Requeue delay while something is in motion (pinning, scaling, draining).
    pub settle_interval: Duration,
    /// Requeue delay of a Pinned pin (how soon a lost holder is noticed without an event).
    pub pinned_recheck: Duration,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch one namespace, or all.
    pub namespace: Option<String>,
    pub api_port: u16,
    pub node_timeout: Duration,
    pub settle_interval: Duration,
    pub pinned_recheck: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespace: None,
            api_port: crate::build::API_PORT as u16,
            node_timeout: Duration::from_secs(10),
            settle_interval: Duration::from_secs(5),
            pinned_recheck: Duration::from_secs(30),
        }
    }
}

impl Context {
    pub fn new(client: kube::Client, settings: &Settings, metrics: Metrics) -> Self {
        let reporter = Reporter {
            controller: "distribute-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            node: NodeClient::new(None, settings.node_timeout),
            api_port: settings.api_port,
            metrics,
            settle_interval: settings.settle_interval,
            pinned_recheck: settings.pinned_recheck,
        }
    }
}

fn api<K>(client: &kube::Client, namespace: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Backoff per object: the delay doubles with each consecutive failure of the same object
/// is left to the controller's own rate limiting; this picks the base delay by error kind.
fn error_policy<K: kube::Resource>(
    controller: &'static str,
) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |obj, err, ctx| {
        ctx.metrics.failure(controller, err.category());
        tracing::warn!(controller, name = %obj.meta().name.clone().unwrap_or_default(), error = %err, "reconcile failed");
        match err {
            Error::Model(_) => Action::await_change(),
            _ => Action::requeue(ctx.settle_interval),
        }
    }
}

/// Runs both controllers until `shutdown` is cancelled.
pub async fn run(ctx: Arc<Context>, settings: &Settings, shutdown: CancellationToken) {
    let client = ctx.client.clone();
    let ns = &settings.namespace;
    let instance_label = "app.kubernetes.io/instance";
    let pods_config = watcher::Config::default().labels("app.kubernetes.io/name=distribute");
    let clusters = Controller::new(
        api::<StorageCluster>(&client, ns),
        watcher::Config::default(),
    )
    .owns(api::<StatefulSet>(&client, ns), watcher::Config::default())
    .watches(api::<Pod>(&client, ns), pods_config, move |pod: Pod| {
        let name = pod.labels().get(instance_label)?.clone();
        Some(ObjectRef::<StorageCluster>::new(&name).within(&pod.namespace()?))
    })
    .graceful_shutdown_on(shutdown.clone().cancelled_owned())
    .run(
        storage_cluster::reconcile,
        error_policy::<StorageCluster>(storage_cluster::CONTROLLER),
        ctx.clone(),
    )
    .for_each(|_| async {});
    let pins = Controller::new(api::<Pin>(&client, ns), watcher::Config::default())
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(
            pin::reconcile,
            error_policy::<Pin>(pin::CONTROLLER),
            ctx.clone(),
        )
        .for_each(|_| async {});
    tokio::join!(clusters, pins);
}
