//! `dag/export`: the DAG under a CID as a CAR v1 stream, blocks in depth-first order, missing
//! blocks fetched from the network within the node's fetch timeout.

use std::sync::Arc;

use tokio::runtime::Handle;
use warp::reply::Response;

use super::body::bytes_blocking;
use super::read::{export_error, network_source};
use super::{ApiError, Call, Commands, NodeState};
use crate::car::CarWriter;
use crate::content::cid::parse_cid_arg;
use crate::content::exporter::ExportError;
use crate::content::walk::walk_dag;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("dag/export", node, export);
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
