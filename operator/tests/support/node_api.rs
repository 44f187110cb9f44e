//! What the reconcile tests ask the node processes directly, past the operator: `add` content
//! to one node, list a node's local pins (`pin/ls`), and read a cluster's API token from its
//! generated Secret. Plain HTTP/1.1 through hyper, bearer token as the operator sends it.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::fake_apiserver::FakeApiServer;

const BOUNDARY: &str = "reconcile-test-boundary";

/// POSTs `/api/v0/<cmd>?<query>` to the node API at `addr` (`ip:port`).
pub async fn post(
    addr: &str,
    token: &str,
    cmd_and_query: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Result<(u16, String), String> {
    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/api/v0/{cmd_and_query}"))
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    let bytes = match body {
        Some((ctype, b)) => {
            req = req.header(http::header::CONTENT_TYPE, ctype);
            b
        }
        None => Vec::new(),
    };
    let req = req
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(60), client.request(req))
        .await
        .map_err(|_| format!("{cmd_and_query} on {addr}: no answer in 60 s"))?
        .map_err(|e| format!("{cmd_and_query} on {addr}: {e}"))?;
    let code = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// Adds `data` as one file to the node at `addr` without pinning it there; returns its CID.
pub async fn add_unpinned(addr: &str, token: &str, data: &[u8]) -> String {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let ctype = format!("multipart/form-data; boundary={BOUNDARY}");
    let (code, text) = post(addr, token, "add?pin=false", Some((&ctype, body)))
        .await
        .unwrap();
    assert_eq!(code, 200, "add on {addr}: {text}");
    let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    let v: Value = serde_json::from_str(last).unwrap();
    v["Hash"].as_str().unwrap().to_string()
}

/// The recursive pins the node at `addr` holds itself.
pub async fn local_pins(addr: &str, token: &str) -> Result<BTreeSet<String>, String> {
    let (code, text) = post(addr, token, "pin/ls?type=recursive", None).await?;
    if code != 200 {
        return Err(format!("pin/ls on {addr}: HTTP {code}: {text}"));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    Ok(v["Keys"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default())
}

/// The API token of the cluster `name` (its generated Secret, as the kubelet mounts it).
pub fn api_token(server: &FakeApiServer, namespace: &str, name: &str) -> String {
    let secret = server
        .get("/v1/secrets", namespace, &format!("{name}-generated"))
        .unwrap();
    let data = secret["data"]["api-token"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    String::from_utf8(bytes).unwrap().trim().to_string()
}

/// Deterministic bytes that are not all alike (several chunks of distinct content).
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
