//! The node's peers: `swarm/peers` (`{"Peers":[{"Addr","Peer","Latency","Muxer",
//! "Direction","Streams"}]}`, `Latency` only with `latency=true`, `Identify` with the agent
//! only with `identify=true`), `stats/dht` (the routing table), `swarm/connect`
//! (`{"Strings":["connect <peer> success"]}`), and `routing/findprovs`: Kubo's routing events
//! as NDJSON, one `{"Type":4,"ID":"","Responses":[{"ID","Addrs"}],"Extra":""}` per provider
//! as the DHT finds it, up to `num-providers` (20) or [`FIND_TIMEOUT`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use serde::Serialize;
use tokio::runtime::Handle;
use warp::reply::Response;

use super::body::{ndjson_blocking, ok_json};
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::parse_cid_arg;

/// Longest a `routing/findprovs` search runs.
const FIND_TIMEOUT: Duration = Duration::from_secs(60);
/// Kubo's routing event type for a provider found.
const PROVIDER_EVENT: u8 = 4;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("swarm/peers", node, peers);
    commands.add("swarm/connect", node, connect);
    commands.add("routing/findprovs", node, findprovs);
    commands.add("stats/dht", node, dht_stats);
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SwarmPeer {
    addr: String,
    peer: String,
    latency: String,
    muxer: String,
    direction: u8,
    streams: Option<Vec<String>>,
    /// With `identify=true`: what the peer told us about itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    identify: Option<Identify>,
}

/// Kubo's `Identify` object of `swarm/peers?identify=true`; only the agent is known here.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Identify {
    #[serde(rename = "ID")]
    id: String,
    public_key: String,
    addresses: Vec<String>,
    agent_version: String,
    protocols: Vec<String>,
}

async fn peers(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let with_latency = call.flag("latency", false)?;
    let with_identify = call.flag("identify", false)?;
    let peers = node.client.peers().await.map_err(ApiError::internal)?;
    let peers: Vec<SwarmPeer> = peers
        .into_iter()
        .map(|p| SwarmPeer {
            addr: p.addr.map(|a| a.to_string()).unwrap_or_default(),
            peer: p.peer.to_string(),
            latency: match p.latency {
                Some(l) if with_latency => format!("{:?}", l),
                _ => String::new(),
            },
            muxer: String::new(),
            direction: 0,
            streams: None,
            identify: with_identify.then(|| Identify {
                id: p.peer.to_string(),
                public_key: String::new(),
                addresses: Vec::new(),
                agent_version: p.agent.unwrap_or_default(),
                protocols: Vec::new(),
            }),
        })
        .collect();
    ok_json(&serde_json::json!({ "Peers": peers }))
}

async fn connect(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let addrs = call
        .required_args("address")?
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>()
                .map_err(|e| ApiError::BadRequest(format!("{a:?} is not a multiaddr: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut strings = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let peer = node.client.dial(addr.clone()).await.map_err(|e| {
            // libp2p lists each failed dial attempt on its own line; answer one line.
            let text = e.to_string();
            let one_line: Vec<&str> = text.lines().map(str::trim).collect();
            ApiError::Internal(format!("connecting to {addr}: {}", one_line.join(" ")))
        })?;
        strings.push(format!("connect {peer} success"));
    }
    ok_json(&serde_json::json!({ "Strings": strings }))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RoutingEvent {
    #[serde(rename = "Type")]
    kind: u8,
    #[serde(rename = "ID")]
    id: String,
    responses: Vec<Provider>,
    extra: String,
}

#[derive(Serialize)]
struct Provider {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Addrs")]
    addrs: Vec<String>,
}

async fn findprovs(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let cid =
        parse_cid_arg(call.arg(0, "key")?).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let wanted: usize = call.parsed("num-providers")?.unwrap_or(20);
    if wanted == 0 {
        return Err(ApiError::BadRequest(
            "option \"num-providers\" must be at least 1".into(),
        ));
    }
    let mut found = node
        .client
        .find_providers(cid.hash().to_bytes())
        .await
        .map_err(ApiError::internal)?;
    let runtime = Handle::current();
    ndjson_blocking(move |out| {
        let deadline = tokio::time::Instant::now() + FIND_TIMEOUT;
        let mut seen = HashSet::new();
        // Wait on the async side, send (blocking) outside it.
        while seen.len() < wanted {
            let next = runtime.block_on(tokio::time::timeout_at(deadline, found.recv()));
            let Ok(Some(peer)) = next else { break };
            if seen.insert(peer) {
                out.send(&RoutingEvent {
                    kind: PROVIDER_EVENT,
                    id: String::new(),
                    responses: vec![Provider {
                        id: peer.to_string(),
                        addrs: Vec::new(),
                    }],
                    extra: String::new(),
                })?;
            }
        }
        Ok(())
    })
    .await
}

/// Kubo's `stats/dht` answer for our one DHT: the routing table's non-empty buckets, each
/// with its peers (`Index` is the bucket's log2 distance, which Kubo's shape leaves implicit).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DhtStats {
    name: &'static str,
    buckets: Vec<DhtBucket>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DhtBucket {
    index: u32,
    last_refresh: String,
    peers: Vec<DhtPeer>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DhtPeer {
    #[serde(rename = "ID")]
    id: String,
    connected: bool,
    agent_version: String,
    last_useful_at: String,
    last_queried_at: String,
}

async fn dht_stats(node: Arc<NodeState>, _call: Call) -> Result<Response, ApiError> {
    let buckets = node
        .client
        .routing_table()
        .await
        .map_err(ApiError::internal)?;
    let connected: HashSet<_> = node
        .client
        .peers()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|p| p.peer)
        .collect();
    let buckets = buckets
        .into_iter()
        .map(|b| DhtBucket {
            index: b.index,
            last_refresh: String::new(),
            peers: b
                .peers
                .into_iter()
                .map(|p| DhtPeer {
                    id: p.to_string(),
                    connected: connected.contains(&p),
                    agent_version: String::new(),
                    last_useful_at: String::new(),
                    last_queried_at: String::new(),
                })
                .collect(),
        })
        .collect();
    ok_json(&DhtStats {
        name: "wan",
        buckets,
    })
}
