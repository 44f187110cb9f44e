//! The StorageCluster controller, one pipeline per reconcile: validate the spec (pure) →
//! ensure the generated Secret → observe the StatefulSet and pods → decide the StatefulSet's
//! replicas (scale-in drains the leaving pods through the cluster API first) → build every
//! object (pure) → server-side apply them, delete turned-off ones → observe peers and pins
//! through a node → write the status (merge patch of the status subresource).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::apply::{apply_desired, ensure_generated_secret};
use super::cluster_status::{Observed, cluster_status};
use super::nodes::{NodePod, cluster_client, first_answer, node_pods, pods_by_peer};
use super::scale::{DrainOutcome, leaving, replicas_now};
use super::{Context, Error};
use crate::build::desired::desired;
use crate::build::{ClusterModel, names};
use crate::crd::{PeerState, StorageCluster, StorageClusterPhase, StorageClusterStatus};
use crate::nodeapi::NodeClient;

pub const CONTROLLER: &str = "storagecluster";

#[tracing::instrument(skip_all, fields(cluster = %sc.name_any(), ns = sc.namespace().unwrap_or_default()))]
pub async fn reconcile(sc: Arc<StorageCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = sc.namespace().unwrap_or_default();
    let api: Api<StorageCluster> = Api::namespaced(ctx.client.clone(), &ns);
    if sc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let m = match ClusterModel::new(&sc) {
        Ok(m) => m,
        Err(e) => {
            // An invalid spec waits for its next change.
            let o = Observed {
                generation: sc.metadata.generation,
                desired_replicas: sc.spec.replicas,
                invalid: Some(e.to_string()),
                ..Default::default()
            };
            write_status(&api, &sc, &o, &ctx).await?;
            return Ok(Action::await_change());
        }
    };
    ensure_generated_secret(&ctx.client, &m).await?;
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let sts = sts_api.get_opt(&names::statefulset(&m.name)).await?;
    let current = sts.as_ref().and_then(|s| s.spec.replicas);
    let pods = node_pods(&ctx.client, &m, ctx.api_port).await?;
    let node = cluster_client(&ctx.client, &ctx.node, &m).await?;

    let desired_replicas = m.spec.replicas;
    let leaving_ordinals = current
        .map(|c| leaving(desired_replicas, c))
        .unwrap_or_default();
    let pins = pin_counts(&node, &pods, &m.name).await;
    let (replicas, drain) = if leaving_ordinals.is_empty() {
        (desired_replicas, None)
    } else {
        let outcomes = drain_leaving(&node, &pods, &leaving_ordinals, &m.name).await;
        let pins_safe = matches!(pins, Some((_, 0)));
        replicas_now(desired_replicas, current, &outcomes, pins_safe)
    };
    let was_draining = sc.status.as_ref().and_then(|s| s.drain.as_ref()).is_some();
    if drain.is_some() && !was_draining {
        ctx.event(
            &*sc,
            EventType::Normal,
            "Draining",
            "ScaleIn",
            format!(
                "draining pods {:?} before scaling from {} to {desired_replicas}",
                leaving_ordinals
                    .iter()
                    .map(|o| names::pod(&m.name, *o))
                    .collect::<Vec<_>>(),
                current.unwrap_or_default()
            ),
        )
        .await;
    }
    if current.is_some_and(|c| c > replicas) || (drain.is_none() && was_draining) {
        ctx.event(
            &*sc,
            EventType::Normal,
            "ScaledIn",
            "ScaleIn",
            format!("leaving pods drained; StatefulSet scaled to {replicas}"),
        )
        .await;
    }

    apply_desired(&ctx.client, &ns, &desired(&m, replicas)).await?;

    let sts = sts_api.get_opt(&names::statefulset(&m.name)).await?;
    let sts_status = sts.and_then(|s| s.status);
    let peers = observe_peers(&node, &pods, &m.name).await;
    let o = Observed {
        generation: sc.metadata.generation,
        desired_replicas,
        replication_min: m.spec.replication.min,
        replicas: sts_status.as_ref().map(|s| s.replicas).unwrap_or(0),
        ready_replicas: sts_status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        selector: m.selector_string(),
        peers,
        pins,
        drain,
        invalid: None,
    };
    let status = write_status(&api, &sc, &o, &ctx).await?;
    let settled = status.phase == Some(StorageClusterPhase::Running);
    Ok(Action::requeue(if settled {
        Duration::from_secs(60)
    } else {
        ctx.settle_interval
    }))
}

/// Starts or polls the drain of each leaving pod's peer (asked through the staying pods).
async fn drain_leaving(
    node: &NodeClient,
    pods: &[NodePod],
    leaving: &[i32],
    cluster: &str,
) -> Vec<(String, DrainOutcome)> {
    let staying: Vec<NodePod> = pods
        .iter()
        .filter(|p| !leaving.contains(&p.ordinal))
        .cloned()
        .collect();
    let mut out = Vec::new();
    for ordinal in leaving {
        let pod_name = names::pod(cluster, *ordinal);
        let pod = pods.iter().find(|p| p.ordinal == *ordinal);
        let outcome = match pod {
            None => DrainOutcome::Unknown,
            Some(pod) => match node.id(&pod.url).await {
                Err(_) => DrainOutcome::Unknown,
                Ok(id) => {
                    let asked = first_answer(&staying, cluster, |url| {
                        let node = node.clone();
                        let peer = id.id.clone();
                        async move { node.drain(&url, &peer).await }
                    })
                    .await;
                    match asked {
                        Ok(p) if p.done => DrainOutcome::Done,
                        Ok(p) => DrainOutcome::Remaining(p.remaining),
                        Err(e) => {
                            tracing::warn!(pod = %pod_name, error = %e, "drain call failed");
                            DrainOutcome::Remaining(0)
                        }
                    }
                }
            },
        };
        out.push((pod_name, outcome));
    }
    out
}

async fn pin_counts(node: &NodeClient, pods: &[NodePod], cluster: &str) -> Option<(i64, i64)> {
    let list = first_answer(pods, cluster, |url| {
        let node = node.clone();
        async move { node.status_all(&url).await }
    })
    .await
    .ok()?;
    let total = i64::try_from(list.pins.len()).unwrap_or(i64::MAX);
    let under = list.pins.iter().filter(|p| p.status != "pinned").count();
    Some((total, i64::try_from(under).unwrap_or(i64::MAX)))
}

async fn observe_peers(
    node: &NodeClient,
    pods: &[NodePod],
    cluster: &str,
) -> Option<Vec<PeerState>> {
    let peers = first_answer(pods, cluster, |url| {
        let node = node.clone();
        async move { node.peers(&url).await }
    })
    .await
    .ok()?;
    let by_peer = pods_by_peer(node, pods).await;
    Some(
        peers
            .peers
            .iter()
            .map(|p| PeerState {
                peer_id: p.peer_id.clone(),
                pod: by_peer.get(&p.peer_id).cloned(),
                state: p.state.clone(),
            })
            .collect(),
    )
}

async fn write_status(
    api: &Api<StorageCluster>,
    sc: &StorageCluster,
    o: &Observed,
    ctx: &Context,
) -> Result<StorageClusterStatus, Error> {
    let previous = sc.status.clone().unwrap_or_default();
    let status = cluster_status(o, &previous.conditions, &Time(Timestamp::now()));
    if previous.phase != status.phase {
        let kind = if status.phase == Some(StorageClusterPhase::Failed) {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let phase = status.phase.map(|p| format!("{p:?}")).unwrap_or_default();
        ctx.event(sc, kind, &phase, "Reconcile", format!("phase {phase}"))
            .await;
    }
    let mut value = serde_json::to_value(&status).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        // Merge patch: absent fields would keep their old value; null clears them.
        map.entry("drain").or_insert(Value::Null);
    }
    api.patch_status(
        &sc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": value })),
    )
    .await?;
    Ok(status)
}

impl Context {
    /// Publishes an Event about `obj`; failures are logged, never fatal.
    pub async fn event<K>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::debug!(error = %e, "event not published");
        }
    }
}
