//! `pin/add`, `pin/rm`, `pin/ls` over the local pins ([`crate::ops::pin`]). `pin/add` first
//! makes the DAGs complete ([`complete_dags`]: a presence walk, then a Bitswap fetch of
//! whatever they lack, as Kubo's does, each fetch within `--fetch-timeout`); offline, the CLI
//! refuses to pin an incomplete DAG instead. `pin/ls` answers
//! `{"Keys":{cid:{"Type","Name"}}}`, or with `stream=true` one `{"Cid","Type","Name"}` line
//! per pin as they are found.

use std::sync::Arc;

use cid::Cid;
use serde::Serialize;
use warp::reply::Response;

use super::body::{ndjson_blocking, ok_json};
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::parse_cid_arg;
use crate::daemon::complete::complete_dags;
use crate::ops::pin::{self, PinFilter};
use crate::store::pins::PinMode;

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
    // Fetch what the DAGs lack, as Kubo's pin does. A DAG made complete is pinned without
    // another walk; if fetching failed, pinning checks what is here and names what is missing.
    let fetched = if recursive {
        complete_dags(&node.repo, &node.bitswap, &cids, node.fetch_timeout).await
    } else {
        Ok(())
    };
    let changed = node
        .blocking(move |repo| match fetched {
            Ok(()) if recursive => Ok(pin::record(repo, &cids, PinMode::Recursive)?),
            Ok(()) => Ok(pin::add(repo, &cids, false)?),
            Err(f) => pin::add(repo, &cids, recursive).map_err(|e| {
                ApiError::Internal(format!("{e}; fetching it from peers failed: {f}"))
            }),
        })
        .await?;
    node.pins_may_have_changed();
    ok_json(&changed)
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
