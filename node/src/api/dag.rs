//! `dag/export`: the DAG under a CID as a CAR v1 stream, blocks in depth-first order, missing
//! blocks fetched from the network within the node's fetch timeout. `dag/import`: CAR files as
//! multipart parts, streamed part by part into the store (every block verified against its
//! CID); with `pin-roots` (default true) each root whose DAG is complete is pinned, and one
//! `{"Root":{"Cid":{"/":cid},"PinErrorMsg":""}}` line per root reports it (`stats=true` adds
//! `{"Stats":{"BlockCount","BlockBytesCount"}}`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use cid::Cid;
use tokio::sync::mpsc;

use tokio::runtime::Handle;
use warp::reply::Response;

use super::body::{NdjsonSink, bytes_blocking, ndjson_blocking};
use super::multipart::Parser;
use super::read::{export_error, network_source};
use super::upload::{Feed, PartReader, boundary, feed};
use super::{ApiError, Call, Commands, NodeState};
use crate::car::{CarReader, CarWriter};
use crate::content::cid::parse_cid_arg;
use crate::content::exporter::ExportError;
use crate::content::walk::walk_dag;
use crate::repo::Repo;
use crate::store::StoreError;
use crate::store::pins::PinMode;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("dag/export", node, export);
    commands.add("dag/import", node, import);
}

async fn export(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let root =
        parse_cid_arg(call.arg(0, "root")?).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let runtime = Handle::current();
    bytes_blocking("application/vnd.ipld.car", move |out| {
        let source = network_source(&node, runtime);
        let mut car = CarWriter::new(out, &[root]).map_err(ApiError::internal)?;
        walk_dag(&source, &root, &mut |cid, data| {
            car.write_block(cid, data)
                .map_err(|e| ExportError::Write(std::io::Error::other(e)))
        })
        .map_err(export_error)?;
        car.finish().map_err(ApiError::internal)?;
        Ok(())
    })
    .await
}

/// CAR parts waiting between the body parser and the store.
const FEED_DEPTH: usize = 32;

async fn import(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let boundary = boundary(&call)?;
    let pin_roots = call.flag("pin-roots", true)?;
    let stats = call.flag("stats", false)?;
    let (tx, rx) = mpsc::channel(FEED_DEPTH);
    tokio::spawn(feed(call.body, Parser::new(&boundary), tx));
    // The announcer is told once the roots are pinned (the answer starts long before).
    ndjson_blocking(move |out| {
        let result = import_cars(&node.repo, rx, pin_roots, stats, out);
        node.pins_may_have_changed();
        result
    })
    .await
}

/// A store failure caused by the CAR's content is the client's (400), others the node's.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::TooLarge { .. }
        | StoreError::HashMismatch { .. }
        | StoreError::UnsupportedHash { .. } => ApiError::BadRequest(e.to_string()),
        other => ApiError::Internal(other.to_string()),
    }
}

fn import_cars(
    repo: &Repo,
    mut rx: mpsc::Receiver<Feed>,
    pin_roots: bool,
    stats: bool,
    out: &mut NdjsonSink,
) -> Result<(), ApiError> {
    let failure = Mutex::new(None);
    let mut roots: Vec<Cid> = Vec::new();
    let (mut blocks, mut bytes) = (0u64, 0u64);
    let mut cars = 0;
    let stored = (|| {
        while let Some(item) = rx.blocking_recv() {
            match item {
                Feed::Start(_) => {}
                Feed::Fail(e) => return Err(e),
                Feed::Data(_) | Feed::End => continue,
            }
            cars += 1;
            let reader = std::io::BufReader::new(PartReader::new(&mut rx, &failure));
            let bad = |e: crate::car::CarError| ApiError::BadRequest(format!("CAR {cars}: {e}"));
            let mut car = CarReader::new(reader).map_err(bad)?;
            roots.extend_from_slice(car.roots());
            while let Some((cid, data)) = car.next_block().map_err(bad)? {
                repo.blocks()
                    .put_verified(&cid, &data)
                    .map_err(store_error)?;
                blocks += 1;
                bytes += data.len() as u64;
            }
        }
        Ok(())
    })();
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    stored?;
    if cars == 0 {
        return Err(ApiError::BadRequest(
            "the multipart body holds no CAR file".into(),
        ));
    }
    repo.blocks().flush().map_err(ApiError::internal)?;
    if pin_roots {
        let mut seen = HashSet::new();
        for root in &roots {
            if !seen.insert(*root) {
                continue;
            }
            let report =
                crate::store::walk::walk_dag(repo.blocks(), root, &mut HashSet::new(), |_| true)
                    .map_err(ApiError::internal)?;
            let message = if report.is_complete() {
                repo.pins()
                    .add(root, PinMode::Recursive)
                    .map_err(ApiError::internal)?;
                String::new()
            } else {
                format!("DAG incomplete ({} blocks missing)", report.missing.len())
            };
            out.send(&serde_json::json!({
                "Root": { "Cid": { "/": root.to_string() }, "PinErrorMsg": message }
            }))?;
        }
        repo.pins().flush().map_err(ApiError::internal)?;
    }
    if stats {
        out.send(&serde_json::json!({
            "Stats": { "BlockCount": blocks, "BlockBytesCount": bytes }
        }))?;
    }
    Ok(())
}
