//! Reading content: `cat` (`offset`, `length`), streamed as it is read. Blocks the store
//! lacks are fetched from the network (Bitswap) within the node's fetch timeout.

use std::sync::Arc;

use tokio::runtime::Handle;
use warp::reply::Response;

use serde::{Deserialize, Serialize};

use super::body::{bytes_blocking, ok_json};
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::IpfsPath;
use crate::content::exporter::{
    BlockSource, ExportError, ListEntry, NodeKind, SourceError, list, read_range_to, resolve, stat,
};
use crate::daemon::source::NetworkSource;
use crate::net::bitswap::fetch::FetchError;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("cat", node, cat);
    commands.add("ls", node, ls);
}

/// The HTTP error for a failed read: a missing link or block, or one the network did not
/// deliver in time, is 404; a wrong kind of node 400.
pub(super) fn export_error(e: ExportError) -> ApiError {
    match e {
        ExportError::NotFound { .. } | ExportError::Missing(_) => ApiError::NotFound(e.to_string()),
        ExportError::IsDirectory(_) | ExportError::NotDirectory(_) => {
            ApiError::BadRequest(e.to_string())
        }
        ExportError::Source { source, .. } => source_error(source),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The HTTP error for a block source's failure: a fetch that found no block is 404.
pub(super) fn source_error(e: SourceError) -> ApiError {
    match e.downcast_ref::<FetchError>() {
        Some(FetchError::Timeout { .. } | FetchError::Failed { .. }) => {
            ApiError::NotFound(e.to_string())
        }
        _ => ApiError::Internal(e.to_string()),
    }
}

/// The `arg` as an IPFS path (`<cid>[/path]`, `/ipfs/…`, `ipfs://…`).
fn path_arg(call: &Call) -> Result<IpfsPath, ApiError> {
    IpfsPath::parse(call.arg(0, "ipfs-path")?).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The store, then the network within the node's fetch timeout.
pub(super) fn network_source(node: &NodeState, runtime: Handle) -> NetworkSource<'_> {
    NetworkSource::new(
        node.repo.blocks(),
        node.bitswap.clone(),
        runtime,
        node.fetch_timeout,
    )
}

async fn cat(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let path = path_arg(&call)?;
    let offset: u64 = call.parsed("offset")?.unwrap_or(0);
    let length: Option<u64> = call.parsed("length")?;
    let runtime = Handle::current();
    bytes_blocking("text/plain", move |out| {
        let source = network_source(&node, runtime);
        let cid = resolve(&source, &path).map_err(export_error)?;
        read_range_to(&source, &cid, offset, length, out).map_err(export_error)?;
        Ok(())
    })
    .await
}

/// One `ls` object: the path asked for and its entries (none for a file).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LsObject {
    pub hash: String,
    pub links: Vec<LsLink>,
}

/// One directory entry as Kubo lists it: `Type` 1 directory, 2 file, 4 symlink; `Size` the
/// file's bytes, a directory's cumulative DAG size (its link's `Tsize`, what the CLI prints),
/// 0 for a symlink; `Target` the symlink's target.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LsLink {
    pub name: String,
    pub hash: String,
    pub size: u64,
    #[serde(rename = "Type")]
    pub kind: u8,
    pub target: String,
}

fn ls_link(source: &dyn BlockSource, entry: ListEntry) -> Result<LsLink, ExportError> {
    let info = stat(source, &entry.cid)?;
    let (kind, size, target) = match info.kind {
        NodeKind::Directory | NodeKind::ShardedDirectory => (1, entry.tsize, String::new()),
        NodeKind::File => (2, info.size, String::new()),
        NodeKind::Symlink(target) => (4, 0, target),
    };
    Ok(LsLink {
        name: entry.name,
        hash: entry.cid.to_string(),
        size,
        kind,
        target,
    })
}

async fn ls(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let paths = call
        .required_args("ipfs-path")?
        .iter()
        .map(|arg| {
            IpfsPath::parse(arg)
                .map(|path| (arg.clone(), path))
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = Handle::current();
    let objects = tokio::task::spawn_blocking(move || {
        let source = network_source(&node, runtime);
        let mut objects = Vec::with_capacity(paths.len());
        for (arg, path) in paths {
            let cid = resolve(&source, &path).map_err(export_error)?;
            let links = match stat(&source, &cid).map_err(export_error)?.kind {
                NodeKind::Directory | NodeKind::ShardedDirectory => list(&source, &cid)
                    .and_then(|entries| {
                        // Each entry's own block says its kind: fetch them together (not
                        // what is below them).
                        let cids: Vec<_> = entries.iter().map(|e| e.cid).collect();
                        source
                            .prefetch_blocks(&cids)
                            .map_err(|source| ExportError::Source { cid, source })?;
                        entries
                            .into_iter()
                            .map(|e| ls_link(&source, e))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(export_error)?,
                _ => Vec::new(),
            };
            objects.push(LsObject { hash: arg, links });
        }
        Ok::<_, ApiError>(objects)
    })
    .await
    .map_err(ApiError::internal)??;
    ok_json(&serde_json::json!({ "Objects": objects }))
}
