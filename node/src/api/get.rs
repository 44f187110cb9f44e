//! `get`: a file or directory tree as a tar stream ([`crate::tar`]), as Kubo sends it:
//! `Content-Type: application/x-tar`, `X-Stream-Output: 1`, and `X-Content-Length` with the
//! content's size (a file's bytes, a directory's cumulative DAG size) for progress bars.
//! The root entry is named after the last path segment, or the CID.
//!
//! The path is resolved before the answer starts, so a bad or missing path gets its status;
//! the blocks of the tree the store lacks are fetched then (one Bitswap session for the
//! whole DAG), and each peer that delivered is reported in an [`FETCHED_HEADER`] header
//! (peer, bytes, blocks, milliseconds) for the CLI's "fetching from" line. `archive` is accepted (the answer is always a tar); `compress` is refused.

use std::sync::Arc;

use cid::Cid;
use tokio::runtime::Handle;
use warp::http::HeaderValue;
use warp::reply::Response;

use super::body::bytes_blocking;
use super::read::{export_error, network_source, source_error};
use super::{ApiError, Call, Commands, NodeState};
use crate::content::cid::IpfsPath;
use crate::content::directory::validate_name;
use crate::content::exporter::{
    BlockSource, FetchReport, NodeKind, list, read_range, resolve, stat,
};
use crate::tar::{TarError, TarWriter};

/// Response header reporting one fetch from the network:
/// `peer=<id>; bytes=<n>; blocks=<n>; ms=<n>`.
pub const FETCHED_HEADER: &str = "x-distribute-fetched";

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("get", node, get);
}

impl From<TarError> for ApiError {
    fn from(e: TarError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// A fetch report as the value of [`FETCHED_HEADER`].
pub fn encode_fetch(r: &FetchReport) -> String {
    format!(
        "peer={}; bytes={}; blocks={}; ms={}",
        r.peer,
        r.bytes,
        r.blocks,
        r.elapsed.as_millis()
    )
}

/// The fetch report in a [`FETCHED_HEADER`] value.
pub fn decode_fetch(value: &str) -> Option<FetchReport> {
    let mut report = FetchReport {
        peer: String::new(),
        bytes: 0,
        blocks: 0,
        elapsed: std::time::Duration::ZERO,
    };
    for part in value.split(';') {
        let (key, v) = part.trim().split_once('=')?;
        match key {
            "peer" => report.peer = v.to_owned(),
            "bytes" => report.bytes = v.parse().ok()?,
            "blocks" => report.blocks = v.parse().ok()?,
            "ms" => report.elapsed = std::time::Duration::from_millis(v.parse().ok()?),
            _ => {}
        }
    }
    (!report.peer.is_empty()).then_some(report)
}

/// What the answer is about, found before it starts.
struct Target {
    cid: Cid,
    name: String,
    size: u64,
    fetches: Vec<FetchReport>,
}

async fn get(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    if call.flag("compress", false)? || call.parsed::<i32>("compression-level")?.unwrap_or(-1) > 0 {
        return Err(ApiError::BadRequest(
            "compression is not supported: this node sends uncompressed tar; call get without compress (or gzip the output yourself)".into(),
        ));
    }
    call.flag("archive", false)?; // checked; the answer is a tar either way
    let path = IpfsPath::parse(call.arg(0, "ipfs-path")?)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let runtime = Handle::current();
    let state = Arc::clone(&node);
    let handle = runtime.clone();
    let target = tokio::task::spawn_blocking(move || {
        let source = network_source(&state, handle);
        let cid = resolve(&source, &path).map_err(export_error)?;
        // The whole tree is sent: fetch what is missing now, so a block nobody has is a 404
        // before the answer starts and the fetch headers tell all that was fetched.
        source.prefetch(&[cid]).map_err(source_error)?;
        let info = stat(&source, &cid).map_err(export_error)?;
        let size = match info.kind {
            NodeKind::File => info.size,
            NodeKind::Directory | NodeKind::ShardedDirectory => list(&source, &cid)
                .map_err(export_error)?
                .iter()
                .map(|e| e.tsize)
                .sum(),
            NodeKind::Symlink(_) => 0,
        };
        let name = path
            .segments
            .last()
            .cloned()
            .unwrap_or_else(|| path.root.to_string());
        Ok::<_, ApiError>(Target {
            cid,
            name,
            size,
            fetches: source.take_fetch_reports(),
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let (cid, name) = (target.cid, target.name.clone());
    let mut response = bytes_blocking("application/x-tar", move |out| {
        let source = network_source(&node, runtime);
        let mut tar = TarWriter::new(out);
        write_entry(&source, &mut tar, &name, &cid)?;
        tar.finish()?;
        Ok(())
    })
    .await?;
    let headers = response.headers_mut();
    headers.insert("x-stream-output", HeaderValue::from_static("1"));
    headers.insert("x-content-length", HeaderValue::from(target.size));
    for fetch in &target.fetches {
        if let Ok(value) = HeaderValue::from_str(&encode_fetch(fetch)) {
            headers.append(FETCHED_HEADER, value);
        }
    }
    Ok(response)
}

/// The node at `cid` and everything below it, as entries under `path`.
fn write_entry<W: std::io::Write>(
    src: &dyn BlockSource,
    tar: &mut TarWriter<W>,
    path: &str,
    cid: &Cid,
) -> Result<(), ApiError> {
    let info = stat(src, cid).map_err(export_error)?;
    match info.kind {
        NodeKind::File => tar.file(path, info.size, |w| {
            read_range(src, cid, 0, None, w)
                .map(|_| ())
                .map_err(export_error)
        }),
        NodeKind::Directory | NodeKind::ShardedDirectory => {
            tar.directory(path)?;
            for entry in list(src, cid).map_err(export_error)? {
                validate_name(&entry.name).map_err(|e| {
                    ApiError::Internal(format!("unsafe name in directory {cid}: {e}"))
                })?;
                write_entry(src, tar, &format!("{path}/{}", entry.name), &entry.cid)?;
            }
            Ok(())
        }
        NodeKind::Symlink(target) => Ok(tar.symlink(path, &target)?),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fetch_reports_survive_the_header() {
        let report = FetchReport {
            peer: "12D3KooWabc".into(),
            bytes: 1 << 20,
            blocks: 5,
            elapsed: std::time::Duration::from_millis(1234),
        };
        let back = decode_fetch(&encode_fetch(&report)).unwrap();
        assert_eq!(back.peer, report.peer);
        assert_eq!(back.bytes, report.bytes);
        assert_eq!(back.blocks, report.blocks);
        assert_eq!(back.elapsed, report.elapsed);
        assert!(decode_fetch("bytes=1").is_none());
        assert!(decode_fetch("peer=x; bytes=lots").is_none());
    }
}
