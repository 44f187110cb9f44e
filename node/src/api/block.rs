//! `block/get` (the raw bytes), `block/stat` (`{"Key","Size"}`) and `block/put` (multipart
//! file parts → one `{"Key","Size"}` line each; `cid-codec` raw or dag-pb, `mhtype`
//! sha2-256), `block/rm` (`{"Hash","Error"}` lines). Reads fetch missing blocks from the network
//! within the node's fetch timeout; `block/stat` with `offline=true` looks only in the store.

use bytes::Bytes;
use std::sync::Arc;

use cid::Cid;
use serde::Serialize;
use warp::reply::Response;

use super::body::{bytes_blocking, json, json_lines};
use super::read::{network_source, source_error};
use super::upload::small_parts;
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::{CODEC_DAG_PB, CODEC_RAW, block_cid, parse_cid_arg};
use crate::content::dagpb::PbNode;
use crate::content::exporter::BlockSource;
use crate::store::MAX_BLOCK_SIZE;

/// Most blocks one `block/put` takes.
const MAX_PUT_BLOCKS: usize = 64;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("block/get", node, get);
    commands.add("block/stat", node, stat);
    commands.add("block/put", node, put);
    commands.add("block/rm", node, rm);
}

/// Kubo's answer to `block/stat` and `block/put`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BlockStat {
    key: String,
    size: u64,
}

/// The one `arg` as a CID.
fn cid_arg(call: &Call) -> Result<Cid, ApiError> {
    parse_cid_arg(call.arg(0, "cid")?).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The block's bytes, from the store or the network.
async fn fetch(node: Arc<NodeState>, cid: Cid) -> Result<Bytes, ApiError> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        network_source(&node, runtime)
            .get_block(&cid)
            .map_err(source_error)?
            .ok_or_else(|| ApiError::NotFound(format!("block {cid} is not available")))
    })
    .await
    .map_err(ApiError::internal)?
}

async fn get(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let data = fetch(node, cid_arg(&call)?).await?;
    bytes_blocking("application/octet-stream", move |out| {
        std::io::Write::write_all(out, &data).map_err(ApiError::internal)
    })
    .await
}

async fn stat(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let cid = cid_arg(&call)?;
    let local = node
        .blocking(move |repo| repo.blocks().block_size(&cid).map_err(ApiError::internal))
        .await?;
    let size = match local {
        Some(size) => size,
        None if call.flag("offline", false)? => {
            return Err(ApiError::NotFound(format!(
                "block {cid} is not in the repository"
            )));
        }
        None => fetch(Arc::clone(&node), cid).await?.len() as u64,
    };
    Ok(json(&BlockStat {
        key: cid.to_string(),
        size,
    }))
}

/// The codec `cid-codec` names (Kubo's default: raw).
fn codec(call: &Call) -> Result<u64, ApiError> {
    match call.option("cid-codec").unwrap_or("raw") {
        "raw" => Ok(CODEC_RAW),
        "dag-pb" => Ok(CODEC_DAG_PB),
        other => Err(ApiError::BadRequest(format!(
            "option \"cid-codec\": {other:?} is not supported (raw or dag-pb)"
        ))),
    }
}

async fn put(node: Arc<NodeState>, mut call: Call) -> Result<Response, ApiError> {
    let codec = codec(&call)?;
    match call.option("mhtype").unwrap_or("sha2-256") {
        "sha2-256" => {}
        other => {
            return Err(ApiError::BadRequest(format!(
                "option \"mhtype\": {other:?} is not supported (sha2-256)"
            )));
        }
    }
    let parts = small_parts(&mut call, MAX_BLOCK_SIZE, MAX_PUT_BLOCKS).await?;
    let stats = node
        .blocking(move |repo| {
            let mut stats = Vec::with_capacity(parts.len());
            for data in &parts {
                if codec == CODEC_DAG_PB {
                    PbNode::decode(data).map_err(|e| {
                        ApiError::BadRequest(format!(
                            "cid-codec dag-pb given, but the data is not valid dag-pb: {e}"
                        ))
                    })?;
                }
                let cid = block_cid(codec, 1, data);
                repo.blocks().put(&cid, data).map_err(ApiError::internal)?;
                stats.push(BlockStat {
                    key: cid.to_string(),
                    size: data.len() as u64,
                });
            }
            repo.blocks().flush().map_err(ApiError::internal)?;
            Ok(stats)
        })
        .await?;
    // One object per block, one per line, as Kubo streams them.
    json_lines(&stats)
}

/// One `block/rm` line, Kubo's shape: the CID, and why it was not removed (empty if it was).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RemovedBlock {
    hash: String,
    error: String,
}

/// `block/rm`: remove blocks in order, one line each; the first that is pinned or absent
/// gets its `Error` and ends the run (the CLI stops there too).
async fn rm(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let cids = call
        .required_args("cid")?
        .iter()
        .map(|a| parse_cid_arg(a).map_err(|e| ApiError::BadRequest(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let lines = node
        .blocking(move |repo| {
            let mut lines = Vec::with_capacity(cids.len());
            for cid in &cids {
                let pinned = repo
                    .pins()
                    .is_pinned(repo.blocks(), cid)
                    .map_err(ApiError::internal)?;
                let error = if !matches!(pinned, crate::store::pins::PinStatus::NotPinned) {
                    format!("cannot remove {cid}: it is pinned")
                } else if !repo.blocks().delete(cid).map_err(ApiError::internal)? {
                    format!("block {cid} is not in the repository")
                } else {
                    String::new()
                };
                let stop = !error.is_empty();
                lines.push(RemovedBlock {
                    hash: cid.to_string(),
                    error,
                });
                if stop {
                    break;
                }
            }
            repo.blocks().flush().map_err(ApiError::internal)?;
            Ok(lines)
        })
        .await?;
    json_lines(&lines)
}
