//! `pin/add`, `pin/rm`, `pin/ls` over the local pins ([`crate::ops::pin`]). `pin/add` first
//! walks the DAGs through the daemon's network source, which fetches over Bitswap whatever
//! they lack, as Kubo's does (each fetch within `--fetch-timeout`); offline, the CLI refuses
//! to pin an incomplete DAG instead. `pin/ls` answers
//! `{"Keys":{cid:{"Type","Name"}}}`, or with `stream=true` one `{"Cid","Type","Name"}` line
//! per pin as they are found.

use std::sync::Arc;

use cid::Cid;
use serde::Serialize;
use tokio::runtime::Handle;
use warp::reply::Response;

use super::body::{ndjson_blocking, ok_json};
use super::read::network_source;
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::parse_cid_arg;
use crate::content::walk::walk_dag;
use crate::ops::pin::{self, PinFilter};

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
    let runtime = Handle::current();
    let state = Arc::clone(&node);
    let changed = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        // Walking the DAGs through the network source fetches what they lack, as `dag/export`
        // does; pinning then checks they are complete and names what is still missing.
        let fetched = if recursive {
            let source = network_source(&state, runtime);
            cids.iter()
                .try_for_each(|root| walk_dag(&source, root, &mut |_, _| Ok(())))
        } else {
            Ok(())
        };
        pin::add(&state.repo, &cids, recursive).map_err(|e| match fetched {
            Err(f) => ApiError::Internal(format!("{e}; fetching it from peers failed: {f}")),
            Ok(()) => e.into(),
        })
    })
    .await
    .map_err(ApiError::internal)??;
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
