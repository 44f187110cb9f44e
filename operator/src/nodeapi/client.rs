//! The HTTP side: one pooled hyper client, a bearer token, a per-call timeout; each node is
//! addressed by `http://<pod IP>:<api port>`. Errors say which node and which command, and
//! tell transient failures (connect, timeout, 5xx) from answers to act on (404, 400, 401).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

use super::types::{ClusterPeers, DrainProgress, NodeId, PinList, PinStatus, PinStatusList};

/// Largest answer read from a node (a full pin status list of a big cluster fits).
const MAX_BODY: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeApiError {
    #[error("node {node}: {cmd}: cannot connect: {reason}")]
    Connect {
        node: String,
        cmd: String,
        reason: String,
    },
    #[error("node {node}: {cmd}: no answer within {secs} s")]
    Timeout {
        node: String,
        cmd: String,
        secs: u64,
    },
    #[error("node {node}: {cmd}: the API token was refused (401); check the token Secret")]
    Unauthorized { node: String, cmd: String },
    #[error("node {node}: {cmd}: not found: {message}")]
    NotFound {
        node: String,
        cmd: String,
        message: String,
    },
    #[error("node {node}: {cmd}: HTTP {status}: {message}")]
    Status {
        node: String,
        cmd: String,
        status: u16,
        message: String,
    },
    #[error("node {node}: {cmd}: unreadable answer: {reason}")]
    Decode {
        node: String,
        cmd: String,
        reason: String,
    },
}

impl NodeApiError {
    /// Worth retrying later (the node may be starting, restarting or busy).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } | Self::Decode { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            Self::Unauthorized { .. } | Self::NotFound { .. } => false,
        }
    }
}

#[derive(Clone)]
pub struct NodeClient {
    http: Client<HttpConnector, Full<Bytes>>,
    token: Option<String>,
    timeout: Duration,
}

impl NodeClient {
    pub fn new(token: Option<String>, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            token,
            timeout,
        }
    }

    /// The same client with another token (each cluster has its own).
    pub fn with_token(&self, token: Option<String>) -> Self {
        Self {
            token,
            ..self.clone()
        }
    }

    pub async fn id(&self, node: &str) -> Result<NodeId, NodeApiError> {
        self.call(node, "id", &[]).await
    }

    /// Adds `cid` to the cluster pinset (idempotent; pinning proceeds asynchronously).
    pub async fn pin_add(
        &self,
        node: &str,
        cid: &str,
        min: i32,
        max: i32,
        name: Option<&str>,
    ) -> Result<PinList, NodeApiError> {
        let (min, max) = (min.to_string(), max.to_string());
        let mut q = vec![
            ("arg", cid),
            ("replication-min", min.as_str()),
            ("replication-max", max.as_str()),
        ];
        if let Some(name) = name {
            q.push(("name", name));
        }
        self.call(node, "pin/add", &q).await
    }

    pub async fn pin_rm(&self, node: &str, cid: &str) -> Result<PinList, NodeApiError> {
        self.call(node, "pin/rm", &[("arg", cid)]).await
    }

    /// The cluster's view of one pin; `NotFound` when it is not in the pinset.
    pub async fn status(&self, node: &str, cid: &str) -> Result<PinStatus, NodeApiError> {
        self.call(node, "cluster/status", &[("arg", cid)]).await
    }

    pub async fn status_all(&self, node: &str) -> Result<PinStatusList, NodeApiError> {
        self.call(node, "cluster/status", &[]).await
    }

    pub async fn peers(&self, node: &str) -> Result<ClusterPeers, NodeApiError> {
        self.call(node, "cluster/peers", &[]).await
    }

    /// Starts (or polls) the drain of `peer`.
    pub async fn drain(&self, node: &str, peer: &str) -> Result<DrainProgress, NodeApiError> {
        self.call(node, "cluster/drain", &[("arg", peer)]).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        node: &str,
        cmd: &str,
        query: &[(&str, &str)],
    ) -> Result<T, NodeApiError> {
        let url = url(node, cmd, query);
        let err_ctx = || (node.to_string(), cmd.to_string());
        let mut req = Request::builder().method(Method::POST).uri(&url);
        if let Some(token) = &self.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| NodeApiError::Connect {
                node: node.into(),
                cmd: cmd.into(),
                reason: format!("bad request URL {url}: {e}"),
            })?;
        let work = async {
            let resp = self.http.request(req).await.map_err(|e| {
                let (node, cmd) = err_ctx();
                NodeApiError::Connect {
                    node,
                    cmd,
                    reason: e.to_string(),
                }
            })?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    let (node, cmd) = err_ctx();
                    NodeApiError::Decode {
                        node,
                        cmd,
                        reason: e.to_string(),
                    }
                })?
                .to_bytes();
            Ok::<_, NodeApiError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                let (node, cmd) = err_ctx();
                NodeApiError::Timeout {
                    node,
                    cmd,
                    secs: self.timeout.as_secs(),
                }
            })??;
        let (node, cmd) = err_ctx();
        match status {
            s if s.is_success() => {
                serde_json::from_slice(&body).map_err(|e| NodeApiError::Decode {
                    node,
                    cmd,
                    reason: e.to_string(),
                })
            }
            StatusCode::UNAUTHORIZED => Err(NodeApiError::Unauthorized { node, cmd }),
            StatusCode::NOT_FOUND => Err(NodeApiError::NotFound {
                node,
                cmd,
                message: error_message(&body),
            }),
            s => Err(NodeApiError::Status {
                node,
                cmd,
                status: s.as_u16(),
                message: error_message(&body),
            }),
        }
    }
}

fn url(node: &str, cmd: &str, query: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        q.append_pair(k, v);
    }
    let q = q.finish();
    let base = node.trim_end_matches('/');
    if q.is_empty() {
        format!("{base}/api/v0/{cmd}")
    } else {
        format!("{base}/api/v0/{cmd}?{q}")
    }
}

/// The `Message` of a Kubo-style error body, else the body text.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "Message")]
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).chars().take(500).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_arguments() {
        assert_eq!(
            url(
                "http://127.0.0.2:5001/",
                "pin/add",
                &[("arg", "Qm1"), ("name", "a b&c")]
            ),
            "http://127.0.0.2:5001/api/v0/pin/add?arg=Qm1&name=a+b%26c"
        );
        assert_eq!(
            url("http://h:1", "cluster/peers", &[]),
            "http://h:1/api/v0/cluster/peers"
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(br#"{"Message":"bad cid","Code":0,"Type":"error"}"#),
            "bad cid"
        );
        assert_eq!(error_message(b"plain"), "plain");
    }

    #[tokio::test]
    async fn unreachable_node_is_a_transient_connect_error() {
        // A port that was just free: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let node = format!("http://127.0.0.1:{port}");
        let c = NodeClient::new(None, Duration::from_secs(5));
        let err = c.id(&node).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(
            err.to_string().contains(&format!("node {node}: id")),
            "{err}"
        );
    }
}
