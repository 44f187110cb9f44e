//! `pin/add`, `pin/rm`, `pin/ls` over the local pins ([`crate::ops::pin`]). `pin/add` first
//! fetches over Bitswap whatever the DAGs lack, as Kubo's does (within `--fetch-timeout`);
//! offline, the CLI refuses to pin an incomplete DAG instead. `pin/ls` answers
//! `{"Keys":{cid:{"Type","Name"}}}`, or with `stream=true` one `{"Cid","Type","Name"}` line
//! per pin as they are found.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use cid::Cid;
use serde::Serialize;
use warp::reply::Response;

use super::body::{ndjson_blocking, ok_json};
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::parse_cid_arg;
use crate::ops::pin::{self, PinFilter};
use crate::store::walk::walk_dag;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("pin/add", node, add);
    commands.add("pin/rm", node, rm);
    commands.add("pin/ls", node, ls);
}

/// Every `arg` as a CID (`Qm…`, `bafy…`, `/ipfs/<cid>`, `ipfs://<cid>`).
pub fn cid_args(args: &[String]) -> Result<Vec<Cid>, ApiError> {
    args.iter()
        .map(|a| parse_cid_arg(a).map_err(|e| ApiError::BadRequest(e.to_string())))
        .collect()
}

async fn add(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let cids = cid_args(call.required_args("cid")?)?;
    let recursive = call.flag("recursive", true)?;
    if recursive {
        fetch_missing(&node, &cids).await?;
    }
    let changed = node
        .blocking(move |repo| Ok(pin::add(repo, &cids, recursive)?))
        .await?;
    node.pins_may_have_changed();
    ok_json(&changed)
}

/// Fetch the blocks the DAGs under `cids` lack, level by level (a block that arrives may link
/// to more that are missing), until they are complete or the fetch timeout has passed.
async fn fetch_missing(node: &Arc<NodeState>, cids: &[Cid]) -> Result<(), ApiError> {
    let deadline = Instant::now() + node.fetch_timeout;
    let mut before: Vec<Cid> = Vec::new();
    loop {
        let roots = cids.to_vec();
        let missing = node
            .blocking(move |repo| {
                let mut seen = HashSet::new();
                let mut missing = Vec::new();
                for root in &roots {
                    let report = walk_dag(repo.blocks(), root, &mut seen, |_| true)
                        .map_err(|e| ApiError::Internal(e.to_string()))?;
                    missing.extend(report.missing);
                }
                Ok(missing)
            })
            .await?;
        if missing.is_empty() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let fetched = if left.is_zero() {
            Err("the fetch timeout has passed".to_owned())
        } else if missing == before {
            Err("the fetch ended without delivering them".to_owned())
        } else {
            node.bitswap
                .fetch_dags(&missing, left)
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = fetched {
            return Err(ApiError::Internal(format!(
                "cannot pin: block {} is not in the repository ({} missing) and fetching it failed: {e}",
                missing[0],
                missing.len()
            )));
        }
        before = missing;
    }
}

async fn rm(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let cids = cid_args(call.required_args("cid")?)?;
    let changed = node.blocking(move |repo| Ok(pin::rm(repo, &cids)?)).await?;
    node.pins_may_have_changed();
    ok_json(&changed)
}

/// One entry of the non-streamed `pin/ls` answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyInfo {
    #[serde(rename = "Type")]
    kind: String,
    name: String,
}

async fn ls(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let wanted = cid_args(&call.args)?;
    let filter: PinFilter = call.parsed("type")?.unwrap_or(PinFilter::All);
    if call.flag("stream", false)? {
        let state = Arc::clone(&node);
        return ndjson_blocking(move |sink| {
            pin::ls(&state.repo, filter, &wanted, &mut |entry| sink.send(&entry))
        })
        .await;
    }
    let keys = node
        .blocking(move |repo| {
            let mut keys = serde_json::Map::new();
            pin::ls::<ApiError>(repo, filter, &wanted, &mut |entry| {
                let info = KeyInfo {
                    kind: entry.kind,
                    name: entry.name,
                };
                keys.insert(entry.cid, serde_json::json!(info));
                Ok(())
            })?;
            Ok(keys)
        })
        .await?;
    ok_json(&serde_json::json!({ "Keys": keys }))
}
