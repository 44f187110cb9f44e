//! A `distribute node` daemon run by tests: started on loopback without mDNS, ready once
//! `node.json` lists an address and `api.sock` exists; killed on drop. Its log is
//! `daemon.log` in the node's scratch folder.

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
        let mut args = vec![
            "--log-level=info,distribute=debug",
            command,
            "--listen=/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
        ];
        args.extend_from_slice(extra);
        let child = node
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let info = node.repo().join("node.json");
        let deadline = std::time::Instant::now() + START;
        let doc = loop {
            let parsed = std::fs::read_to_string(&info)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            if let Some(doc) = parsed
                && doc["addrs"].as_array().is_some_and(|a| !a.is_empty())
                && node.repo().join("api.sock").exists()
            {
                break doc;
            }
            let log = std::fs::read_to_string(node.dir.path().join("daemon.log"));
            assert!(
                std::time::Instant::now() < deadline,
                "daemon did not write node.json in time; log:\n{}",
                log.unwrap_or_default()
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
        let gateway = doc["gateway"].as_str().map(str::to_owned);
        Self {
            node,
            child: Some(child),
            peer_id,
            addrs,
            gateway,
        }
    }

    /// Dialable address with the peer ID.
    pub fn addr(&self) -> String {
        format!("{}/p2p/{}", self.addrs[0], self.peer_id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.node.dir.path().join("daemon.log")).unwrap_or_default()
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

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
