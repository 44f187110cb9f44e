//! From a parsed [`ContentRequest`] to a [`Reply`]: resolve the path segment by segment
//! (collecting the CIDs for `X-Ipfs-Roots`), then hand over to the path gateway
//! ([`super::unixfs`]) or the trustless gateway ([`super::trustless`]). Runs on a blocking
//! thread: every block read may wait for the network.

use bytes::Bytes;
use cid::Cid;

use super::error::GatewayError;
use super::reply::Reply;
use super::request::{ContentRequest, Format};
use super::{trustless, unixfs};
use crate::content::exporter::{BlockSource, ExportError, lookup};

/// Answer one content request.
pub fn respond(src: &dyn BlockSource, req: &ContentRequest) -> Result<Reply, GatewayError> {
    let roots = resolve_roots(src, &req.root, &req.segments)?;
    let cid = roots.last().copied().unwrap_or(req.root);
    let common = common_headers(req, &roots);
    match req.format {
        Format::Unixfs => unixfs::serve(src, req, cid, common),
        Format::Raw => trustless::raw(src, req, cid, common),
        Format::Car(opts) => Ok(trustless::car(req, cid, opts, common)),
    }
}

/// The root and the CID each path segment resolves to, in order.
pub fn resolve_roots(
    src: &dyn BlockSource,
    root: &Cid,
    segments: &[String],
) -> Result<Vec<Cid>, GatewayError> {
    let mut roots = vec![*root];
    let mut current = *root;
    if segments.is_empty() {
        // Fetch the root now: a CID nobody has must fail before any header is sent.
        fetch_block(src, root)?;
    }
    for name in segments {
        current = lookup(src, &current, name).map_err(GatewayError::from_export)?;
        roots.push(current);
    }
    Ok(roots)
}

/// One block, from the store or the network; absent or late → 504.
pub fn fetch_block(src: &dyn BlockSource, cid: &Cid) -> Result<Bytes, GatewayError> {
    src.get_block(cid)
        .map_err(|source| GatewayError::from_export(ExportError::Source { cid: *cid, source }))?
        .ok_or_else(|| GatewayError::Timeout(format!("block {cid} is not available")))
}

/// Headers every successful content response carries.
fn common_headers(req: &ContentRequest, roots: &[Cid]) -> Vec<(&'static str, String)> {
    let roots: Vec<String> = roots.iter().map(Cid::to_string).collect();
    vec![
        ("X-Ipfs-Path", req.content_path()),
        ("X-Ipfs-Roots", roots.join(",")),
        ("Vary", "Accept".into()),
        ("Access-Control-Allow-Origin", "*".into()),
    ]
}

/// Whether `If-None-Match` names `etag` (compared weakly) or is `*`.
pub fn not_modified(req: &ContentRequest, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    req.if_none_match.iter().any(|t| t == "*" || t == bare)
}
