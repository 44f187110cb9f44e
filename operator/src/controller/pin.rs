//! The Pin controller: a finalizer (`distribute.io/unpin`) guards deletion. Apply: validate the
//! CID and replication (pure) → find the StorageCluster and a running node → `pin/add` when the
//! cluster does not have the pin as asked (idempotent) → mirror `cluster/status` into the Pin
//! status. Cleanup: `pin/rm` through a node, then the finalizer goes. An invalid CID or a
//! missing cluster ends in phase Failed with the reason as a condition and a slow requeue (no
//! hot loop); node API failures are retried with backoff by the error policy.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use serde_json::json;

use super::nodes::{NodePod, cluster_client, first_answer, node_pods, pods_by_peer};
use super::pin_status::{from_cluster, local};
use super::{Context, Error};
use crate::build::ClusterModel;
use crate::crd::validate::{parse_cid, pin_replication};
use crate::crd::{Pin, PinPhase, PinStatus, ReplicationSpec, StorageCluster};
use crate::nodeapi::{NodeApiError, NodeClient};

pub const CONTROLLER: &str = "pin";
pub const FINALIZER: &str = "distribute.io/unpin";

/// How often a Pin that cannot proceed (bad spec, missing cluster) is looked at again.
const FAILED_RECHECK: Duration = Duration::from_secs(300);

#[tracing::instrument(skip_all, fields(pin = %pin.name_any(), cid = %pin.spec.cid))]
pub async fn reconcile(pin: Arc<Pin>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = pin.namespace().unwrap_or_default();
    let api: Api<Pin> = Api::namespaced(ctx.client.clone(), &ns);
    let status_api = api.clone();
    finalizer(&api, FINALIZER, pin, move |event| async move {
        match event {
            Finalizer::Apply(pin) => apply(&status_api, &pin, &ctx).await,
            Finalizer::Cleanup(pin) => cleanup(&pin, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// Where a Pin's cluster can be reached, or why not.
enum Target {
    Ready {
        model: Box<ClusterModel>,
        node: Box<NodeClient>,
        pods: Vec<NodePod>,
    },
    Missing(String),
    Invalid(String),
}

async fn target(pin: &Pin, ctx: &Context) -> Result<Target, Error> {
    let ns = pin.namespace().unwrap_or_default();
    let clusters: Api<StorageCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(sc) = clusters.get_opt(&pin.spec.cluster).await? else {
        return Ok(Target::Missing(format!(
            "StorageCluster {:?} not found in namespace {ns:?}; create it or fix spec.cluster",
            pin.spec.cluster
        )));
    };
    let model = match ClusterModel::new(&sc) {
        Ok(m) => m,
        Err(e) => {
            return Ok(Target::Invalid(format!(
                "StorageCluster {}: {e}",
                pin.spec.cluster
            )));
        }
    };
    let node = cluster_client(&ctx.client, &ctx.node, &model).await?;
    let pods = node_pods(&ctx.client, &model, ctx.api_port).await?;
    Ok(Target::Ready {
        model: Box::new(model),
        node: Box::new(node),
        pods,
    })
}

async fn apply(api: &Api<Pin>, pin: &Pin, ctx: &Context) -> Result<Action, Error> {
    let previous = pin.status.clone().unwrap_or_default();
    let generation = pin.metadata.generation;
    let now = Time(Timestamp::now());
    let fail = |reason: &str, message: String, target: i32| {
        local(
            PinPhase::Failed,
            reason,
            message,
            target,
            generation,
            &previous,
            &now,
        )
    };
    let cid = match parse_cid(&pin.spec.cid) {
        Ok(c) => c.to_string(),
        Err(e) => {
            write_status(api, pin, fail("InvalidCid", e.to_string(), 0), ctx).await?;
            return Ok(Action::await_change());
        }
    };
    let (model, node, pods) = match target(pin, ctx).await? {
        Target::Ready { model, node, pods } => (model, *node, pods),
        Target::Missing(msg) => {
            write_status(api, pin, fail("ClusterNotFound", msg, 0), ctx).await?;
            return Ok(Action::requeue(FAILED_RECHECK));
        }
        Target::Invalid(msg) => {
            write_status(api, pin, fail("ClusterInvalid", msg, 0), ctx).await?;
            return Ok(Action::requeue(FAILED_RECHECK));
        }
    };
    let ReplicationSpec { min, max } = match pin_replication(&pin.spec, model.spec.replication) {
        Ok(r) => r,
        Err(e) => {
            write_status(api, pin, fail("InvalidReplication", e.to_string(), 0), ctx).await?;
            return Ok(Action::await_change());
        }
    };
    if !pods.iter().any(|p| p.ready) {
        let queued = local(
            PinPhase::Queued,
            "NoReadyNode",
            format!("waiting for a ready node of StorageCluster {}", model.name),
            max,
            generation,
            &previous,
            &now,
        );
        write_status(api, pin, queued, ctx).await?;
        return Ok(Action::requeue(ctx.settle_interval));
    }
    let current = first_answer(&pods, &model.name, |url| {
        let (node, cid) = (node.clone(), cid.clone());
        async move {
            match node.status(&url, &cid).await {
                Ok(s) => Ok(Some(s)),
                Err(NodeApiError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    })
    .await?;
    let as_asked = current.as_ref().is_some_and(|s| {
        s.replication_min == Some(min.into()) && s.replication_max == Some(max.into())
    });
    if !as_asked {
        first_answer(&pods, &model.name, |url| {
            let (node, cid, name) = (node.clone(), cid.clone(), pin.spec.name.clone());
            async move { node.pin_add(&url, &cid, min, max, name.as_deref()).await }
        })
        .await?;
        ctx.event(
            pin,
            EventType::Normal,
            "Pinning",
            "PinAdd",
            format!(
                "asked StorageCluster {} to pin {cid} (min {min}, max {max})",
                model.name
            ),
        )
        .await;
    }
    let status = first_answer(&pods, &model.name, |url| {
        let (node, cid) = (node.clone(), cid.clone());
        async move { node.status(&url, &cid).await }
    })
    .await?;
    let by_peer = pods_by_peer(&node, &pods).await;
    let new = from_cluster(
        &status,
        max,
        &by_peer,
        generation,
        &previous.conditions,
        &now,
    );
    let phase = new.phase;
    write_status(api, pin, new, ctx).await?;
    Ok(Action::requeue(if phase == Some(PinPhase::Pinned) {
        ctx.pinned_recheck
    } else {
        ctx.settle_interval
    }))
}

async fn cleanup(pin: &Pin, ctx: &Context) -> Result<Action, Error> {
    // Nothing was pinned for an invalid CID or a cluster that is gone.
    let Ok(cid) = parse_cid(&pin.spec.cid) else {
        return Ok(Action::await_change());
    };
    let (model, node, pods) = match target(pin, ctx).await? {
        Target::Ready { model, node, pods } => (model, node, pods),
        Target::Missing(_) | Target::Invalid(_) => return Ok(Action::await_change()),
    };
    let cid = cid.to_string();
    let removed = first_answer(&pods, &model.name, |url| {
        let (node, cid) = (node.clone(), cid.clone());
        async move {
            match node.pin_rm(&url, &cid).await {
                Ok(_) | Err(NodeApiError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
    })
    .await;
    match removed {
        Ok(()) => {
            ctx.event(
                pin,
                EventType::Normal,
                "Unpinned",
                "PinRm",
                format!("removed {cid} from StorageCluster {}", model.name),
            )
            .await;
            Ok(Action::await_change())
        }
        // A cluster with no pod left holds nothing to unpin.
        Err(Error::NoNode(_)) if pods.is_empty() => Ok(Action::await_change()),
        Err(e) => Err(e),
    }
}

async fn write_status(
    api: &Api<Pin>,
    pin: &Pin,
    status: PinStatus,
    ctx: &Context,
) -> Result<(), Error> {
    let old = pin.status.as_ref().and_then(|s| s.phase);
    if old != status.phase
        && let Some(phase) = status.phase
    {
        let kind = match phase {
            PinPhase::Failed | PinPhase::Degraded => EventType::Warning,
            _ => EventType::Normal,
        };
        let note = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        ctx.event(pin, kind, phase.as_str(), "Reconcile", note)
            .await;
    }
    let mut value = serde_json::to_value(&status).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        for key in ["size", "lastError"] {
            map.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    api.patch_status(
        &pin.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": value })),
    )
    .await?;
    Ok(())
}
