//! Handlers about the node and its peers: `id`, `version`.

use std::sync::Arc;

use warp::reply::Response;

use super::body::ok_json;
use super::{ApiError, Call, Commands, NodeState};
use crate::ops::id::{IdInfo, VersionInfo};

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("id", node, id);
    commands.add("version", node, version);
}

async fn id(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    if let Some(peer) = call.args.first()
        && *peer != node.client.local_peer_id().to_string()
    {
        return Err(ApiError::BadRequest(format!(
            "looking up other peers ({peer}) is not supported; call id without an argument"
        )));
    }
    let addrs = node
        .client
        .listen_addrs()
        .await
        .map_err(ApiError::internal)?;
    ok_json(&IdInfo::new(&node.public_key, &addrs))
}

async fn version(_node: Arc<NodeState>, _call: Call) -> Result<Response, ApiError> {
    ok_json(&VersionInfo::current())
}
