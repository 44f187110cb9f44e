//! The answers: [`handle`] routes a decoded [`ServiceRequest`] by method and path to listing
//! (`GET /pins`), one request's status (`GET /pins/{requestid}`), adding or replacing a pin
//! (`POST`) and removing one (`DELETE`), each read from or written to the cluster's pinset.

use std::time::Instant;

use serde_json::json;

use super::filter::Filter;
use super::wire::{PinBody, ServicePinStatus, service_status, to_service};
use super::{
    MAX_NAME, MAX_ORIGINS, ServiceRequest, ServiceResponse, bad_request, cluster_error, error,
    not_found,
};
use crate::cluster::pinset::request_id;
use crate::cluster::service::Cluster;

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
        .map(|(cid, _)| cid.to_string())
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
