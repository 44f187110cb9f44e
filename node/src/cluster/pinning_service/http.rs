//! The HTTP side, mounted at `/pins` on the RPC API's listener ([`mount`]): it turns the API's
//! bearer-token check into a 401, needs a cluster (404 without one), reads the body up to
//! [`MAX_BODY`] bytes (413 past it), decodes the query and hands a
//! [`ServiceRequest`] to [`handle`], then writes the status and JSON.

use std::sync::Arc;

use futures::StreamExt;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::handlers::handle;
use super::{MAX_BODY, ServiceRequest, ServiceResponse, bad_request, error};
use crate::api::NodeState;
use crate::api::registry::Mounted;

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
