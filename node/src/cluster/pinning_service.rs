//! The IPFS Pinning Service API (`/pins`, spec v1.0.0) over the cluster, so tools that speak
//! it (`ipfs pin remote`, NFT uploaders) can use a Distribute cluster as their pinning
//! service. [`handle`] takes a decoded [`ServiceRequest`] and returns status and JSON;
//! [`mount`] is the HTTP side, mounted at `/pins` on the RPC API's listener: it gets the
//! outcome of the API's one bearer-token check ([`crate::api::Auth`]), bounds and reads the
//! body, and writes the answer.
//!
//! Mapping onto the cluster:
//! - A pin request is the cluster pin entry of its CID; its `requestid` is derived from the
//!   entry's CID and stamp ([`request_id`]), so every member that holds the entry answers with
//!   the same ID and no extra state is kept. A new request for the same CID (`POST /pins`
//!   again, `POST /pins/{requestid}`, or a `pin add` from the CLI) writes a new entry and so a
//!   new ID; the old ID is then unknown (404), since the cluster keeps one pin per CID.
//! - `created` is the time of the request (the stamp's clock time, in milliseconds), which is
//!   what `before`/`after` compare against; results are newest first.
//! - `meta` is kept as the pin's metadata; cluster states map onto the spec's four
//!   (`degraded`, copies being repaired, shows as `pinning`); `delegates` are this node's
//!   listen addresses; `origins` are dialed, in the background, so the holders can fetch
//!   from them.
//! - Errors are `{"error":{"reason","details"}}`: 400 `BAD_REQUEST`, 401 `UNAUTHORIZED`,
//!   404 `NOT_FOUND`, 413 `PAYLOAD_TOO_LARGE` (a body over [`MAX_BODY`]), 500
//!   `INTERNAL_SERVER_ERROR`. There is no billing, so never 409 `INSUFFICIENT_FUNDS`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::pinset::{PinSpec, Stamp, request_id};
use super::service::{Cluster, ClusterError};
use super::status::{ClusterState, PinStatus};
use crate::api::NodeState;
use crate::api::registry::Mounted;

/// Largest request body read; a pin is a CID, a name and a little metadata.
pub const MAX_BODY: usize = 64 << 10;
/// Spec limits.
const MAX_NAME: usize = 255;
const MAX_ORIGINS: usize = 20;
const MAX_DELEGATES: usize = 20;
const MAX_CID_FILTER: usize = 10;
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 10;

/// One decoded request.
#[derive(Debug, Clone)]
pub struct ServiceRequest {
    pub method: String,
    /// The path from the mount point on: `/pins` or `/pins/<requestid>`.
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

fn bad_request(details: impl Into<String>) -> ServiceResponse {
    error(400, "BAD_REQUEST", details)
}

fn not_found(id: &str) -> ServiceResponse {
    error(
        404,
        "NOT_FOUND",
        format!(
            "no pin request {id:?}; list them with GET /pins?status=queued,pinning,pinned,failed"
        ),
    )
}

fn cluster_error(e: ClusterError) -> ServiceResponse {
    match e {
        ClusterError::BadReplication(_) => bad_request(e.to_string()),
        ClusterError::NotPinned { .. } => error(404, "NOT_FOUND", e.to_string()),
        _ => error(500, "INTERNAL_SERVER_ERROR", e.to_string()),
    }
}

/// The body of `POST /pins` and `POST /pins/{requestid}`: the spec's `Pin`.
#[derive(Debug, Deserialize)]
struct PinBody {
    cid: String,
    name: Option<String>,
    #[serde(default)]
    origins: Vec<String>,
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

const STATUSES: [&str; 4] = ["queued", "pinning", "pinned", "failed"];

/// Days since 1970-01-01 of a proleptic Gregorian date (era-based, exact).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2021-03-04T05:06:07.089Z` from milliseconds since the epoch.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
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
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// Milliseconds since the epoch of an RFC 3339 date-time (`Z` or `±hh:mm`, any fraction).
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &text[start..i.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

fn query<'a>(req: &'a ServiceRequest, key: &str) -> Option<&'a str> {
    req.query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// How `name` is compared (`match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameMatch {
    Exact,
    IExact,
    Partial,
    IPartial,
}

fn name_matches(name: &str, wanted: &str, how: NameMatch) -> bool {
    match how {
        NameMatch::Exact => name == wanted,
        NameMatch::IExact => name.to_lowercase() == wanted.to_lowercase(),
        NameMatch::Partial => name.contains(wanted),
        NameMatch::IPartial => name.to_lowercase().contains(&wanted.to_lowercase()),
    }
}

/// The filters of `GET /pins`, checked.
#[derive(Debug)]
struct Filter {
    cids: Option<HashSet<String>>,
    name: Option<(String, NameMatch)>,
    statuses: Vec<&'static str>,
    before: Option<u64>,
    after: Option<u64>,
    limit: usize,
    meta: BTreeMap<String, String>,
}

impl Filter {
    fn parse(req: &ServiceRequest) -> Result<Self, ServiceResponse> {
        let list = |key: &str| -> Vec<&str> {
            query(req, key)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let cids = match query(req, "cid") {
            None => None,
            Some(_) => {
                let given = list("cid");
                if given.is_empty() || given.len() > MAX_CID_FILTER {
                    return Err(bad_request(format!(
                        "cid takes 1 to {MAX_CID_FILTER} CIDs, comma-separated"
                    )));
                }
                let mut set = HashSet::new();
                for c in given {
                    let cid = crate::content::cid::parse_cid_arg(c)
                        .map_err(|e| bad_request(format!("cid filter {c:?}: {e}")))?;
                    set.insert(cid.to_string());
                }
                Some(set)
            }
        };
        let how = match query(req, "match").unwrap_or("exact") {
            "exact" => NameMatch::Exact,
            "iexact" => NameMatch::IExact,
            "partial" => NameMatch::Partial,
            "ipartial" => NameMatch::IPartial,
            other => {
                return Err(bad_request(format!(
                    "match {other:?}: use exact, iexact, partial or ipartial"
                )));
            }
        };
        let name = match query(req, "name") {
            Some(n) if n.chars().count() > MAX_NAME => {
                return Err(bad_request(format!("name is over {MAX_NAME} characters")));
            }
            Some(n) => Some((n.to_owned(), how)),
            None => None,
        };
        let statuses = match query(req, "status") {
            None => vec!["pinned"],
            Some(_) => {
                let mut out = Vec::new();
                for s in list("status") {
                    let known = STATUSES.iter().find(|k| **k == s).ok_or_else(|| {
                        bad_request(format!(
                            "status {s:?}: use queued, pinning, pinned or failed"
                        ))
                    })?;
                    out.push(*known);
                }
                if out.is_empty() {
                    return Err(bad_request("status is empty"));
                }
                out
            }
        };
        let time = |key: &str| -> Result<Option<u64>, ServiceResponse> {
            query(req, key)
                .map(|v| {
                    parse_rfc3339(v).ok_or_else(|| {
                        bad_request(format!(
                            "{key} {v:?} is not an RFC 3339 time like 2021-03-04T05:06:07Z"
                        ))
                    })
                })
                .transpose()
        };
        let limit = match query(req, "limit").map(str::parse::<usize>) {
            None => DEFAULT_LIMIT,
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(bad_request(format!(
                    "limit must be between 1 and {MAX_LIMIT}"
                )));
            }
        };
        let meta = match query(req, "meta") {
            None => BTreeMap::new(),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                bad_request(format!(
                    "meta must be a JSON object of strings, like {{\"app\":\"x\"}}: {e}"
                ))
            })?,
        };
        Ok(Self {
            cids,
            name,
            statuses,
            before: time("before")?,
            after: time("after")?,
            limit,
            meta,
        })
    }

    /// Everything but the status, which costs an allocation to learn.
    fn admits(&self, cid: &str, spec: &PinSpec, created: u64) -> bool {
        self.cids.as_ref().is_none_or(|c| c.contains(cid))
            && self
                .name
                .as_ref()
                .is_none_or(|(n, how)| name_matches(&spec.name, n, *how))
            && self.before.is_none_or(|t| created < t)
            && self.after.is_none_or(|t| created > t)
            && self
                .meta
                .iter()
                .all(|(k, v)| spec.metadata.get(k) == Some(v))
    }
}

fn to_service(
    s: &PinStatus,
    stamp: &Stamp,
    meta: &BTreeMap<String, String>,
    delegates: &[String],
) -> ServicePinStatus {
    let mut info = BTreeMap::new();
    if let Some(e) = &s.error {
        info.insert("error".to_owned(), e.clone());
    }
    info.insert("holders".to_owned(), s.pinned.to_string());
    info.insert(
        "replication".to_owned(),
        format!("{}/{}", s.pinned, s.replication_max),
    );
    ServicePinStatus {
        requestid: request_id(&s.cid, stamp),
        status: service_status(s.status),
        created: rfc3339(stamp.time),
        pin: json!({"cid": s.cid, "name": s.name, "meta": meta}),
        delegates: delegates.iter().take(MAX_DELEGATES).cloned().collect(),
        info,
    }
}

/// Answer one Pinning Service API request; `delegates` are this node's addresses.
pub async fn handle(
    cluster: &Cluster,
    delegates: &[String],
    req: ServiceRequest,
) -> ServiceResponse {
    let Some(rest) = req.path.strip_prefix("/pins") else {
        return error(404, "NOT_FOUND", format!("{} is not a pins path", req.path));
    };
    let id = rest.trim_start_matches('/').trim_end_matches('/');
    if id.contains('/') {
        return error(404, "NOT_FOUND", format!("{} is not a pins path", req.path));
    }
    match (req.method.as_str(), id) {
        ("GET", "") => list(cluster, delegates, &req),
        ("POST", "") => add(cluster, delegates, &req, None).await,
        ("GET", id) => one(cluster, delegates, id),
        ("POST", id) => add(cluster, delegates, &req, Some(id)).await,
        ("DELETE", id) => remove(cluster, id),
        _ => error(
            405,
            "METHOD_NOT_ALLOWED",
            format!(
                "{} {}: /pins takes GET and POST, /pins/{{requestid}} GET, POST and DELETE",
                req.method, req.path
            ),
        ),
    }
}

fn list(cluster: &Cluster, delegates: &[String], req: &ServiceRequest) -> ServiceResponse {
    let filter = match Filter::parse(req) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let core = cluster.core();
    let now = Instant::now();
    let candidates = core.candidates(now);
    let mut matched = Vec::new();
    for (cid, entry) in &core.pinset().pins {
        let Some(spec) = &entry.pin else { continue };
        if !filter.admits(cid, spec, entry.stamp.time) {
            continue;
        }
        let status = core.status_with(cid, spec, &candidates, now);
        if filter.statuses.contains(&service_status(status.status)) {
            matched.push((status, &entry.stamp, &spec.metadata));
        }
    }
    // Newest first; ties (same millisecond) in a fixed order.
    matched.sort_by(|a, b| b.1.cmp(a.1));
    let count = matched.len();
    let results: Vec<ServicePinStatus> = matched
        .iter()
        .take(filter.limit)
        .map(|(s, stamp, meta)| to_service(s, stamp, meta, delegates))
        .collect();
    ServiceResponse {
        status: 200,
        body: Some(json!({"count": count, "results": results})),
    }
}

/// The CID of the live pin whose current request is `id`.
fn find(cluster: &Cluster, id: &str) -> Option<String> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let core = cluster.core();
    core.pinset()
        .pins
        .iter()
        .find(|(cid, e)| e.pin.is_some() && request_id(cid, &e.stamp) == id)
        .map(|(cid, _)| cid.clone())
}

/// The request `id`'s status, if `cid` still carries it.
fn answer(cluster: &Cluster, delegates: &[String], cid: &str, id: &str) -> ServiceResponse {
    let core = cluster.core();
    let now = Instant::now();
    let Some(entry) = core.pinset().pins.get(cid) else {
        return not_found(id);
    };
    let (Some(spec), Some(status)) = (&entry.pin, core.status(cid, now)) else {
        return not_found(id);
    };
    if request_id(cid, &entry.stamp) != id {
        return not_found(id);
    }
    let body = to_service(&status, &entry.stamp, &spec.metadata, delegates);
    ServiceResponse {
        status: 200,
        body: serde_json::to_value(body).ok(),
    }
}

fn one(cluster: &Cluster, delegates: &[String], id: &str) -> ServiceResponse {
    match find(cluster, id) {
        Some(cid) => answer(cluster, delegates, &cid, id),
        None => not_found(id),
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
        Err(e) => {
            return bad_request(format!(
                "the body must be a Pin object, like {{\"cid\":\"bafy…\",\"name\":\"n\"}}: {e}"
            ));
        }
    };
    let cid = match crate::content::cid::parse_cid_arg(&body.cid) {
        Ok(c) => c,
        Err(e) => return bad_request(format!("cid {:?}: {e}", body.cid)),
    };
    if body
        .name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME)
    {
        return bad_request(format!("name is over {MAX_NAME} characters"));
    }
    if body.origins.len() > MAX_ORIGINS {
        return bad_request(format!("at most {MAX_ORIGINS} origins"));
    }
    let mut origins = Vec::new();
    for o in &body.origins {
        match o.parse::<libp2p::Multiaddr>() {
            Ok(addr) => origins.push(addr),
            Err(e) => return bad_request(format!("origin {o:?} is not a multiaddr: {e}")),
        }
    }
    let old = match replace {
        Some(id) => match find(cluster, id) {
            Some(old) => Some(old),
            None => return not_found(id),
        },
        None => None,
    };
    cluster.dial(origins);
    // The new pin first: a replaced CID is never left without either.
    let stamp = match cluster
        .pin_with(&cid, None, None, body.name, Some(body.meta))
        .await
    {
        Ok(stamp) => stamp,
        Err(e) => return cluster_error(e),
    };
    let text = cid.to_string();
    if let Some(old) = old.filter(|o| *o != text)
        && let Ok(old_cid) = old.parse::<cid::Cid>()
        && let Err(e) = cluster.unpin(&old_cid)
    {
        return cluster_error(e);
    }
    let mut answer = answer(cluster, delegates, &text, &request_id(&text, &stamp));
    if answer.status == 200 {
        answer.status = 202;
    }
    answer
}

fn remove(cluster: &Cluster, id: &str) -> ServiceResponse {
    let Some(cid) = find(cluster, id).and_then(|c| c.parse::<cid::Cid>().ok()) else {
        return not_found(id);
    };
    match cluster.unpin(&cid) {
        Ok(()) => ServiceResponse {
            status: 202,
            body: None,
        },
        Err(e) => cluster_error(e),
    }
}

/// The HTTP side, mounted at `/pins` on the RPC API: auth outcome, bounded body, answer.
pub async fn mount(node: Arc<NodeState>, req: Mounted) -> Response {
    let answer = match serve(&node, req).await {
        Ok(a) | Err(a) => a,
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &answer.body {
        Some(body) => crate::api::body::json(body),
        None => Response::new(Vec::new().into()),
    };
    *response.status_mut() = status;
    response
}

async fn serve(node: &NodeState, req: Mounted) -> Result<ServiceResponse, ServiceResponse> {
    if req.authorized.is_err() {
        return Err(error(
            401,
            "UNAUTHORIZED",
            "send `Authorization: Bearer <token>` with a token from the node's --api-token-file",
        ));
    }
    let cluster = node.cluster.as_ref().ok_or_else(|| {
        error(
            404,
            "NOT_FOUND",
            "this node is not in a cluster; start it with --cluster-secret-file",
        )
    })?;
    let mut body = Vec::new();
    if req.method == Method::POST {
        let mut stream = req.body;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| bad_request(e.to_string()))?;
            if body.len() + chunk.len() > MAX_BODY {
                return Err(error(
                    413,
                    "PAYLOAD_TOO_LARGE",
                    format!("the body is over {MAX_BODY} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
    }
    let query = form_urlencoded::parse(req.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let delegates = cluster.delegates().await;
    let request = ServiceRequest {
        method: req.method.to_string(),
        path: req.path,
        query,
        body,
    };
    Ok(handle(cluster, &delegates, request).await)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        for ms in [0, 951_782_400_000, 1_700_000_000_123, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        let check = |text: &str, want: Option<u64>| assert_eq!(parse_rfc3339(text), want, "{text}");
        check("2023-11-14T22:13:20Z", Some(1_700_000_000_000));
        check("2023-11-14T23:13:20+01:00", Some(1_700_000_000_000));
        check("2023-11-14T22:13:20.5Z", Some(1_700_000_000_500));
        check("2023-11-14T22:13:20.123456789Z", Some(1_700_000_000_123));
        check("2023-11-14T22:13:20", None);
        check("2023-13-14T22:13:20Z", None);
        check("2023-11-14T22:13:20.Z", None);
        check("yesterday", None);
    }

    #[test]
    fn statuses_map_onto_the_four_of_the_spec() {
        assert_eq!(service_status(ClusterState::Degraded), "pinning");
        assert_eq!(service_status(ClusterState::Failed), "failed");
        assert!(name_matches("My NFT", "my nft", NameMatch::IExact));
        assert!(name_matches("My NFT", "nf", NameMatch::IPartial));
        assert!(!name_matches("My NFT", "NF", NameMatch::Exact));
        assert!(name_matches("My NFT", "NF", NameMatch::Partial));
    }

    fn req(query: &[(&str, &str)]) -> ServiceRequest {
        ServiceRequest {
            method: "GET".into(),
            path: "/pins".into(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn filters_are_checked() {
        let bad = |q: &[(&str, &str)]| Filter::parse(&req(q)).unwrap_err().status;
        assert_eq!(bad(&[("limit", "0")]), 400);
        assert_eq!(bad(&[("limit", "1001")]), 400);
        assert_eq!(bad(&[("status", "done")]), 400);
        assert_eq!(bad(&[("match", "regex")]), 400);
        assert_eq!(bad(&[("cid", "nope")]), 400);
        assert_eq!(bad(&[("before", "today")]), 400);
        assert_eq!(bad(&[("meta", "[1]")]), 400);
        let f = Filter::parse(&req(&[])).unwrap();
        assert_eq!((f.statuses, f.limit), (vec!["pinned"], 10));
        let f = Filter::parse(&req(&[
            ("status", "queued,failed"),
            ("limit", "1000"),
            ("meta", r#"{"app":"x"}"#),
        ]))
        .unwrap();
        assert_eq!(f.statuses, vec!["queued", "failed"]);
        let spec = |name: &str, app: &str| PinSpec {
            name: name.into(),
            replication_min: 1,
            replication_max: 1,
            size: None,
            created_ms: 0,
            metadata: BTreeMap::from([("app".to_owned(), app.to_owned())]),
        };
        assert!(f.admits("c", &spec("n", "x"), 5));
        assert!(!f.admits("c", &spec("n", "y"), 5));
        let f = Filter::parse(&req(&[
            ("name", "nft"),
            ("match", "ipartial"),
            ("before", "1970-01-01T00:00:00.010Z"),
            ("after", "1970-01-01T00:00:00.002Z"),
        ]))
        .unwrap();
        assert!(f.admits("c", &spec("My NFT #1", "x"), 5));
        assert!(
            !f.admits("c", &spec("My NFT #1", "x"), 10),
            "before is strict"
        );
        assert!(
            !f.admits("c", &spec("My NFT #1", "x"), 2),
            "after is strict"
        );
        assert!(!f.admits("c", &spec("other", "x"), 5));
    }
}
