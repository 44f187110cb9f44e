//! `repo/stat` (`{"RepoSize","StorageMax","NumObjects","RepoPath","Version"}`) and `repo/gc`
//! (NDJSON, one `{"Key":{"/":cid}}` per removed block, as a CIDv1 raw since the store keys
//! blocks by multihash), `repo/verify` (Kubo's `{"Msg","Progress"}` lines; see [`verify`]).

use std::sync::Arc;

use serde::Serialize;
use warp::reply::Response;

use super::body::{ndjson_blocking, ok_json};
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::CODEC_RAW;

/// What `repo/stat` reports as `StorageMax`: this node sets no storage limit.
const NO_STORAGE_LIMIT: u64 = u64::MAX;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("repo/stat", node, stat);
    commands.add("repo/gc", node, gc);
    commands.add("repo/verify", node, verify);
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RepoStat {
    repo_size: u64,
    storage_max: u64,
    num_objects: u64,
    repo_path: String,
    version: String,
}

async fn stat(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    // Kubo's `size-only` leaves the count out; the store knows both at once.
    let size_only = call.flag("size-only", false)?;
    let stat = node
        .blocking(move |repo| {
            let stat = repo.blocks().stat().map_err(ApiError::internal)?;
            Ok(RepoStat {
                repo_size: stat.bytes,
                storage_max: NO_STORAGE_LIMIT,
                num_objects: if size_only { 0 } else { stat.blocks },
                repo_path: repo.path().display().to_string(),
                version: format!("distribute-repo@{}", repo.config().store.backend),
            })
        })
        .await?;
    ok_json(&stat)
}

async fn gc(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let quiet = call.flag("quiet", false)?;
    ndjson_blocking(move |out| {
        let report = node.repo.gc().map_err(ApiError::internal)?;
        if !quiet {
            for mh in &report.removed {
                let cid = cid::Cid::new_v1(CODEC_RAW, *mh);
                out.send(&serde_json::json!({ "Key": CidLink { cid: cid.to_string() } }))?;
            }
        }
        Ok(())
    })
    .await
}

/// `repo/verify`: Kubo's `{"Msg","Progress"}` lines — one per corrupt block (removed) or
/// incomplete pin, then the summary; a repository with problems ends in an error line.
async fn verify(node: Arc<NodeState>, _call: Call) -> Result<Response, ApiError> {
    ndjson_blocking(move |out| {
        let report = node.repo.verify().map_err(ApiError::internal)?;
        let msg = |text: String| serde_json::json!({ "Msg": text, "Progress": 0 });
        for mh in &report.corrupt {
            let cid = cid::Cid::new_v1(CODEC_RAW, *mh);
            out.send(&msg(format!("block {cid} was corrupt (removed)")))?;
        }
        for pin in &report.incomplete {
            out.send(&msg(format!(
                "pin {} is missing {} block(s)",
                pin.root,
                pin.missing.len()
            )))?;
        }
        if !report.is_healthy() {
            return Err(ApiError::Internal(VERIFY_FAILED.into()));
        }
        out.send(&msg(format!(
            "verified repo integrity ({} blocks)",
            report.checked
        )))
    })
    .await
}

/// The error of a verify that found problems (offline and through the API alike).
pub const VERIFY_FAILED: &str =
    "repository has problems (see above); re-add or re-import the affected content";

/// A CID as IPLD's JSON link, `{"/": "<cid>"}`.
#[derive(Serialize, serde::Deserialize)]
pub struct CidLink {
    #[serde(rename = "/")]
    pub cid: String,
}
