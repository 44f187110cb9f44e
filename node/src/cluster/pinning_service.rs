//! The IPFS Pinning Service API (`/pins`, spec v1.0.0) over the cluster, so tools that speak
//! it (`ipfs pin remote`, NFT uploaders) can use a Distribute cluster as their pinning
//! service. Transport-free: [`handle`] takes a decoded [`ServiceRequest`] and returns status
//! and JSON; the HTTP layer checks the bearer token and mounts it.
//!
//! Mapping: a request ID is the pin's CID (the cluster keeps one pin per CID, so pinning the
//! same CID again returns the same ID); `meta` is kept as the pin's metadata; cluster statuses
//! map to the spec's four (`degraded`, copies being repaired, shows as `pinning`); the
//! delegates are this node's addresses. `origins` are not dialed: holders are found through
//! the cluster's connections and the DHT.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::service::Cluster;
use super::status::{ClusterState, PinStatus};

/// One decoded request.
#[derive(Debug, Clone)]
pub struct ServiceRequest {
    pub method: String,
    /// Path below the mount point: `/pins` or `/pins/<requestid>`.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Status code and optional JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceResponse {
    pub status: u16,
    pub body: Option<Value>,
}

fn error(status: u16, reason: &str, details: impl Into<String>) -> ServiceResponse {
    ServiceResponse {
        status,
        body: Some(json!({"error": {"reason": reason, "details": details.into()}})),
    }
}

/// The body of `POST /pins` (`origins` is accepted and ignored).
#[derive(Debug, Deserialize)]
struct PinBody {
    cid: String,
    name: Option<String>,
    #[serde(default)]
    meta: BTreeMap<String, String>,
}

/// The spec's `PinStatus`.
#[derive(Debug, Serialize)]
struct ServicePinStatus {
    requestid: String,
    status: &'static str,
    created: String,
    pin: Value,
    delegates: Vec<String>,
    info: BTreeMap<String, String>,
}

/// The spec's status name for a cluster state.
pub fn service_status(state: ClusterState) -> &'static str {
    match state {
        ClusterState::Queued => "queued",
        ClusterState::Pinning | ClusterState::Degraded => "pinning",
        ClusterState::Pinned => "pinned",
        ClusterState::Failed => "failed",
    }
}

/// `2021-03-04T05:06:07Z` from milliseconds since the epoch.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), era-based.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn to_service(
    s: &PinStatus,
    created_ms: u64,
    meta: &BTreeMap<String, String>,
    delegates: &[String],
) -> ServicePinStatus {
    let mut info = BTreeMap::new();
    if let Some(e) = &s.error {
        info.insert("error".to_owned(), e.clone());
    }
    info.insert("holders".to_owned(), s.pinned.to_string());
    ServicePinStatus {
        requestid: s.cid.clone(),
        status: service_status(s.status),
        created: rfc3339(created_ms),
        pin: json!({"cid": s.cid, "name": s.name, "origins": [], "meta": meta}),
        delegates: delegates.iter().take(20).cloned().collect(),
        info,
    }
}

fn query<'a>(req: &'a ServiceRequest, key: &str) -> Option<&'a str> {
    req.query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn name_matches(name: &str, wanted: &str, how: &str) -> bool {
    match how {
        "iexact" => name.eq_ignore_ascii_case(wanted),
        "partial" => name.contains(wanted),
        "ipartial" => name.to_lowercase().contains(&wanted.to_lowercase()),
        _ => name == wanted,
    }
}

/// Answer one Pinning Service API request.
pub async fn handle(
    cluster: &Cluster,
    delegates: &[String],
    req: ServiceRequest,
) -> ServiceResponse {
    let id = req.path.strip_prefix("/pins").unwrap_or("");
    match (req.method.as_str(), id) {
        ("GET", "" | "/") => list(cluster, delegates, &req),
        ("POST", "" | "/") => add(cluster, delegates, &req, None).await,
        ("GET", rest) => one(cluster, delegates, rest.trim_start_matches('/')),
        ("POST", rest) => add(cluster, delegates, &req, Some(rest.trim_start_matches('/'))).await,
        ("DELETE", rest) => remove(cluster, rest.trim_start_matches('/')),
        _ => error(
            405,
            "METHOD_NOT_ALLOWED",
            format!("{} {}", req.method, req.path),
        ),
    }
}

fn spec_of(cluster: &Cluster, cid: &str) -> Option<(u64, BTreeMap<String, String>)> {
    cluster
        .core()
        .pinset()
        .get(cid)
        .map(|p| (p.created_ms, p.metadata.clone()))
}

fn list(cluster: &Cluster, delegates: &[String], req: &ServiceRequest) -> ServiceResponse {
    let cids: Option<Vec<&str>> = query(req, "cid").map(|c| c.split(',').collect());
    let statuses: Vec<&str> = query(req, "status")
        .unwrap_or("pinned")
        .split(',')
        .collect();
    let limit = match query(req, "limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return error(400, "BAD_REQUEST", "limit must be between 1 and 1000"),
    };
    let name = query(req, "name");
    let how = query(req, "match").unwrap_or("exact");
    let mut results = Vec::new();
    for s in cluster.statuses() {
        if cids.as_ref().is_some_and(|c| !c.contains(&s.cid.as_str())) {
            continue;
        }
        if !statuses.contains(&service_status(s.status)) {
            continue;
        }
        if name.is_some_and(|n| !name_matches(&s.name, n, how)) {
            continue;
        }
        let (created, meta) = spec_of(cluster, &s.cid).unwrap_or_default();
        results.push((created, to_service(&s, created, &meta, delegates)));
    }
    results.sort_by_key(|r| std::cmp::Reverse(r.0)); // newest first
    let count = results.len();
    let results: Vec<_> = results.into_iter().take(limit).map(|(_, r)| r).collect();
    ServiceResponse {
        status: 200,
        body: Some(json!({"count": count, "results": results})),
    }
}

fn one(cluster: &Cluster, delegates: &[String], id: &str) -> ServiceResponse {
    let Ok(cid) = id.parse::<cid::Cid>() else {
        return error(404, "NOT_FOUND", format!("no pin request {id}"));
    };
    match (cluster.status(&cid), spec_of(cluster, id)) {
        (Ok(s), Some((created, meta))) => ServiceResponse {
            status: 200,
            body: serde_json::to_value(to_service(&s, created, &meta, delegates)).ok(),
        },
        _ => error(404, "NOT_FOUND", format!("no pin request {id}")),
    }
}

async fn add(
    cluster: &Cluster,
    delegates: &[String],
    req: &ServiceRequest,
    replace: Option<&str>,
) -> ServiceResponse {
    let body: PinBody = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => return error(400, "BAD_REQUEST", format!("pin body: {e}")),
    };
    let cid = match crate::content::cid::parse_cid_arg(&body.cid) {
        Ok(c) => c,
        Err(e) => return error(400, "BAD_REQUEST", format!("cid {:?}: {e}", body.cid)),
    };
    if let Some(old) = replace {
        let Ok(old_cid) = old.parse::<cid::Cid>() else {
            return error(404, "NOT_FOUND", format!("no pin request {old}"));
        };
        if cluster.status(&old_cid).is_err() {
            return error(404, "NOT_FOUND", format!("no pin request {old}"));
        }
        if old_cid != cid
            && let Err(e) = cluster.unpin(&old_cid)
        {
            return error(500, "INTERNAL_SERVER_ERROR", e.to_string());
        }
    }
    if let Err(e) = cluster
        .pin_with(&cid, None, None, body.name, Some(body.meta))
        .await
    {
        return error(400, "BAD_REQUEST", e.to_string());
    }
    let mut answer = one(cluster, delegates, &cid.to_string());
    if answer.status == 200 {
        answer.status = 202;
    }
    answer
}

fn remove(cluster: &Cluster, id: &str) -> ServiceResponse {
    let Ok(cid) = id.parse::<cid::Cid>() else {
        return error(404, "NOT_FOUND", format!("no pin request {id}"));
    };
    match cluster.unpin(&cid) {
        Ok(()) => ServiceResponse {
            status: 202,
            body: None,
        },
        Err(e) => error(404, "NOT_FOUND", e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn statuses_map_onto_the_four_of_the_spec() {
        assert_eq!(service_status(ClusterState::Degraded), "pinning");
        assert_eq!(service_status(ClusterState::Failed), "failed");
        assert!(name_matches("My NFT", "my nft", "iexact"));
        assert!(name_matches("My NFT", "nf", "ipartial"));
        assert!(!name_matches("My NFT", "nf", "exact"));
    }
}
