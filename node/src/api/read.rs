//! Reading content: `cat` (`offset`, `length`), streamed as it is read. Blocks the store
//! lacks are fetched from the network (Bitswap) within the node's fetch timeout.

use std::sync::Arc;

use warp::reply::Response;

use super::body::bytes_blocking;
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::IpfsPath;
use crate::content::exporter::{ExportError, read_range, resolve};
use crate::daemon::source::NetworkSource;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("cat", node, cat);
}

/// The HTTP error for a failed read: a missing link is 404, a wrong kind of node 400.
fn export_error(e: ExportError) -> ApiError {
    match e {
        ExportError::NotFound { .. } => ApiError::NotFound(e.to_string()),
        ExportError::IsDirectory(_) | ExportError::NotDirectory(_) => {
            ApiError::BadRequest(e.to_string())
        }
        other => ApiError::Internal(other.to_string()),
    }
}

/// The `arg` as an IPFS path (`<cid>[/path]`, `/ipfs/…`, `ipfs://…`).
fn path_arg(call: &Call) -> Result<IpfsPath, ApiError> {
    IpfsPath::parse(call.arg(0, "ipfs-path")?).map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn cat(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let path = path_arg(&call)?;
    let offset: u64 = call.parsed("offset")?.unwrap_or(0);
    let length: Option<u64> = call.parsed("length")?;
    let runtime = tokio::runtime::Handle::current();
    bytes_blocking("text/plain", move |out| {
        let source = NetworkSource::new(
            node.repo.blocks(),
            node.bitswap.clone(),
            runtime,
            node.fetch_timeout,
        );
        let cid = resolve(&source, &path).map_err(export_error)?;
        read_range(&source, &cid, offset, length, out).map_err(export_error)?;
        Ok(())
    })
    .await
}
