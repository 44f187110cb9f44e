//! The cluster's endpoints on the node's HTTP RPC API, registered over the node's own when
//! it runs in a cluster: `pin/add` (with `wait=true`, answering once the pins are pinned or
//! failed, or `wait-timeout` seconds passed) and `pin/rm` act on the cluster pinset (a `pin/rm` of a
//! CID that is only pinned locally stays a local unpin), `cluster/status` (one CID's answer
//! adds `Local`, this node's copy), `cluster/peers`, `cluster/drain`, `cluster/leave`; and the
//! IPFS Pinning Service API mounted at `/pins` ([`super::pinning_service`]). Shapes are the
//! brief's contract; the work is [`Cluster`]'s.

use std::sync::Arc;

use serde_json::json;
use warp::reply::Response;

use super::service::{Cluster, ClusterError};
use crate::api::body::ok_json;
use crate::api::pin::cid_args;
use crate::api::{ApiError, Call, Commands, NodeState};

/// The node's command table, with the cluster's endpoints when it is in a cluster.
pub fn commands(node: &Arc<NodeState>) -> Commands {
    let mut commands = crate::api::commands(node);
    if node.cluster.is_some() {
        commands.add("pin/add", node, pin_add);
        commands.add("pin/rm", node, pin_rm);
        commands.mount("/pins", node, super::pinning_service::mount);
    }
    // Served outside a cluster too, to say so.
    commands.add("cluster/status", node, status);
    commands.add("cluster/peers", node, peers);
    commands.add("cluster/drain", node, drain);
    commands.add("cluster/leave", node, leave);
    commands
}

fn cluster(node: &NodeState) -> Result<&Cluster, ApiError> {
    node.cluster.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "this node is not in a cluster; start it with --cluster-secret-file".into(),
        )
    })
}

fn api_error(e: ClusterError) -> ApiError {
    match e {
        ClusterError::NotPinned { .. } | ClusterError::UnknownPeer { .. } => {
            ApiError::NotFound(e.to_string())
        }
        ClusterError::BadReplication(_) => ApiError::BadRequest(e.to_string()),
        _ => ApiError::Internal(e.to_string()),
    }
}

async fn pin_add(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let cluster = cluster(&node)?;
    let cids = cid_args(call.required_args("cid")?)?;
    let (min, max) = match call.parsed::<u32>("replication")? {
        Some(n) => (Some(n), Some(n)),
        None => (
            call.parsed::<u32>("replication-min")?,
            call.parsed::<u32>("replication-max")?,
        ),
    };
    let name = call.option("name").map(str::to_owned);
    let wait = call.flag("wait", false)?;
    let limit = call
        .parsed::<u64>("wait-timeout")?
        .filter(|secs| *secs > 0)
        .map(std::time::Duration::from_secs);
    cluster
        .pin_all(&cids, min, max, name)
        .await
        .map_err(api_error)?;
    if wait {
        cluster.wait_pinned(&cids, limit).await.map_err(api_error)?;
    }
    let pins: Vec<String> = cids.iter().map(ToString::to_string).collect();
    ok_json(&json!({ "Pins": pins }))
}

async fn pin_rm(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let cluster = cluster(&node)?;
    let cids = cid_args(call.required_args("cid")?)?;
    let (in_cluster, local): (Vec<_>, Vec<_>) =
        cids.iter().partition(|c| cluster.status(c).is_ok());
    for cid in &in_cluster {
        cluster.unpin(cid).map_err(api_error)?;
    }
    if !local.is_empty() {
        let local: Vec<cid::Cid> = local.into_iter().collect();
        node.blocking(move |repo| Ok(crate::ops::pin::rm(repo, &local)?))
            .await?;
        node.pins_may_have_changed();
    }
    let pins: Vec<String> = cids.iter().map(ToString::to_string).collect();
    ok_json(&json!({ "Pins": pins }))
}

async fn status(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let cluster = cluster(&node)?;
    match call.args.first() {
        Some(arg) => {
            let cid = cid_args(std::slice::from_ref(arg))?;
            let one = cid
                .first()
                .ok_or_else(|| ApiError::BadRequest("no CID".into()))?;
            ok_json(&super::commands::StatusAnswer {
                status: cluster.status(one).map_err(api_error)?,
                local: cluster.local_state(one),
            })
        }
        None => every_status(cluster),
    }
}

async fn peers(node: Arc<NodeState>, _call: Call) -> Result<Response, ApiError> {
    ok_json(&cluster(&node)?.peers())
}

async fn drain(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let peer = call.arg(0, "peer")?;
    ok_json(&cluster(&node)?.drain(peer).map_err(api_error)?)
}

async fn leave(node: Arc<NodeState>, _call: Call) -> Result<Response, ApiError> {
    let cluster = cluster(&node)?;
    cluster.leave();
    ok_json(&json!({ "Peer": cluster.local_peer(), "Leaving": true }))
}

/// `{"Pins":[…]}` with every pin's status, written straight into the answer: with many pins an
/// intermediate `serde_json::Value` (or a vector of statuses) cost many times the answer's
/// size in short-lived memory, which the allocator then kept.
fn every_status(cluster: &Cluster) -> Result<Response, ApiError> {
    let mut out = br#"{"Pins":["#.to_vec();
    let mut failed = None;
    cluster.for_each_status(|status| {
        if failed.is_some() {
            return;
        }
        if out.last() != Some(&b'[') {
            out.push(b',');
        }
        if let Err(e) = serde_json::to_writer(&mut out, &status) {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(ApiError::internal(e));
    }
    out.extend_from_slice(b"]}\n");
    Ok(crate::api::body::json_bytes(out))
}
