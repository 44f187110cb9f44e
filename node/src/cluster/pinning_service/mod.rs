//! The IPFS Pinning Service API (`/pins`, spec v1.0.0) over the cluster, so tools that speak
//! it (`ipfs pin remote`, NFT uploaders) can use a Distribute cluster as their pinning
//! service. [`handle`] takes a decoded [`ServiceRequest`] and returns status and JSON;
//! [`mount`] is the HTTP side, mounted at `/pins` on the RPC API's listener: it gets the
//! outcome of the API's one bearer-token check ([`crate::api::Auth`]), bounds and reads the
//! body, and writes the answer.
//!
//! Mapping onto the cluster:
//! - A pin request is the cluster pin entry of its CID; its `requestid` is derived from the
//!   entry's CID and stamp ([`request_id`](super::pinset::request_id)), so every member that
//!   holds the entry answers with the same ID and no extra state is kept. A new request for
//!   the same CID (`POST /pins` again, `POST /pins/{requestid}`, or a `pin add` from the CLI)
//!   writes a new entry and so a new ID; the old ID is then unknown (404), since the cluster
//!   keeps one pin per CID.
//! - `created` is the time of the request (the stamp's clock time, in milliseconds), which is
//!   what `before`/`after` compare against; results are newest first.
//! - `meta` is kept as the pin's metadata; cluster states map onto the spec's four
//!   (`degraded`, copies being repaired, shows as `pinning`); `delegates` are this node's
//!   listen addresses; `origins` are dialed, in the background, so the holders can fetch
//!   from them.
//! - Errors are `{"error":{"reason","details"}}`: 400 `BAD_REQUEST`, 401 `UNAUTHORIZED`,
//!   404 `NOT_FOUND`, 413 `PAYLOAD_TOO_LARGE` (a body over [`MAX_BODY`]), 500
//!   `INTERNAL_SERVER_ERROR`. There is no billing, so never 409 `INSUFFICIENT_FUNDS`.
//!
//! Here: the request and response types and the error answers. The spec's `Pin` and
//! `PinStatus` objects are in `wire`, the checked `GET /pins` filters in `filter`, the
//! timestamps (RFC 3339) in `timestamp`, the answer to each method and path in `handlers`,
//! and the HTTP side ([`mount`]) in `http`.

mod filter;
mod handlers;
mod http;
mod timestamp;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use super::service::ClusterError;

pub use handlers::handle;
pub use http::mount;
pub use timestamp::{parse_rfc3339, rfc3339};
pub use wire::service_status;

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

pub(super) fn error(status: u16, reason: &str, details: impl Into<String>) -> ServiceResponse {
    ServiceResponse {
        status,
        body: Some(json!({"error": {"reason": reason, "details": details.into()}})),
    }
}

pub(super) fn bad_request(details: impl Into<String>) -> ServiceResponse {
    error(400, "BAD_REQUEST", details)
}

pub(super) fn not_found(id: &str) -> ServiceResponse {
    error(
        404,
        "NOT_FOUND",
        format!(
            "no pin request {id:?}; list them with GET /pins?status=queued,pinning,pinned,failed"
        ),
    )
}

pub(super) fn cluster_error(e: ClusterError) -> ServiceResponse {
    match e {
        ClusterError::BadReplication(_) => bad_request(e.to_string()),
        ClusterError::NotPinned { .. } => error(404, "NOT_FOUND", e.to_string()),
        _ => error(500, "INTERNAL_SERVER_ERROR", e.to_string()),
    }
}
