//! A `distribute node` daemon run by tests: started on loopback without mDNS, its RPC API on
//! a free loopback port; ready once the process is alive, `node.json` lists an address, and
//! the API at `<repo>/api` answers `POST /api/v0/id` with the peer ID `node.json` names (so
//! neither a dead daemon's leftovers nor another process on a reused port pass for it);
//! killed on drop. Its log is `daemon.log` in the node's scratch folder.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::Node;

/// How long a daemon may take to come up (a loaded CI machine is slow).
pub const START: Duration = Duration::from_secs(120);

/// A node with its daemon running.
pub struct Daemon {
    pub node: Node,
    child: Option<Child>,
    pub peer_id: String,
    pub addrs: Vec<String>,
    /// `http://127.0.0.1:PORT` of the RPC API.
    pub api: String,
    /// `http://ip:port` of the HTTP gateway, when it runs.
    pub gateway: Option<String>,
}

impl Daemon {
    pub fn start(node: Node, extra: &[&str]) -> Self {
        Self::start_as(node, "node", extra)
    }

    /// Start `distribute <command>` (`node`, or `gateway`, which runs a node too).
    pub fn start_as(node: Node, command: &str, extra: &[&str]) -> Self {
        let log = std::fs::File::create(node.dir.path().join("daemon.log")).unwrap();
        let mut args = vec!["--log-level=info,distribute=debug", command, "--no-mdns"];
        if !extra.iter().any(|a| a.starts_with("--listen")) {
            args.push("--listen=/ip4/127.0.0.1/tcp/0");
        }
        if !extra
            .iter()
            .any(|a| a.starts_with("--api=") || *a == "--api")
        {
            args.push("--api=127.0.0.1:0");
        }
        args.extend_from_slice(extra);
        let mut child = node
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let info = node.repo().join("node.json");
        let deadline = std::time::Instant::now() + START;
        let doc = loop {
            let read_log =
                || std::fs::read_to_string(node.dir.path().join("daemon.log")).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "daemon exited with {status} before it was ready; log:\n{}",
                    read_log()
                );
            }
            let parsed = std::fs::read_to_string(&info)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            if let Some(doc) = parsed
                && doc["addrs"].as_array().is_some_and(|a| !a.is_empty())
                && let Some(peer) = doc["peer_id"].as_str()
                && let Some(api) = api_url(&node.repo())
                && api_answers_as(&api, peer)
            {
                break doc;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "daemon was not ready in time; log:\n{}",
                read_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let peer_id = doc["peer_id"].as_str().unwrap().to_owned();
        let addrs = doc["addrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let api = doc["api"].as_str().unwrap().to_owned();
        let gateway = doc["gateway"].as_str().map(str::to_owned);
        Self {
            node,
            child: Some(child),
            peer_id,
            addrs,
            api,
            gateway,
        }
    }

    /// `POST /api/v0/<cmd_and_query>` with an optional body and headers; status and body.
    pub fn post(
        &self,
        cmd_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        post(
            &format!("{}/api/v0/{cmd_and_query}", self.api),
            headers,
            body,
        )
    }

    /// Dialable address with the peer ID.
    pub fn addr(&self) -> String {
        format!("{}/p2p/{}", self.addrs[0], self.peer_id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.node.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Whether the daemon process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "daemon exited with {status}: {}",
                self.log()
            );
        }
    }
}

/// A plain HTTP client that reports every status instead of failing on 4xx/5xx.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// `POST url` with `headers` and `body`: status and body bytes.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let mut request = agent().post(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send(body).unwrap();
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    (status, body)
}

/// `http://host:port` of the API multiaddr in `<repo>/api`, if it is there.
fn api_url(repo: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(repo.join("api")).ok()?;
    let parts: Vec<&str> = text.trim().split('/').collect();
    match parts.as_slice() {
        ["", "ip4", host, "tcp", port, ..] => Some(format!("http://{host}:{port}")),
        ["", "ip6", host, "tcp", port, ..] => Some(format!("http://[{host}]:{port}")),
        _ => None,
    }
}

/// Whether the RPC API at `base` answers `id` with `peer` (a 401 counts: the API is up and
/// wants a token, which only our daemon was started with here).
fn api_answers_as(base: &str, peer: &str) -> bool {
    let Ok(response) = agent().post(format!("{base}/api/v0/id")).send_empty() else {
        return false;
    };
    match response.status().as_u16() {
        401 => true,
        200 => response
            .into_body()
            .read_to_string()
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["ID"] == peer),
        _ => false,
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain HTTP/1.1 GET: status and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// The value of one series in the daemon's `/metrics` text, if served.
pub fn metric(port: u16, name: &str) -> Option<f64> {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return None;
    };
    write!(s, "GET /metrics HTTP/1.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
