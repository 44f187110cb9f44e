//! Network namespaces for tests where addresses matter (partitions): each node gets its own
//! namespace with one veth into a bridge in a hub namespace, address `10.77.N.(i+1)/24`.
//! Links are cut with blackhole routes and healed by deleting them. Needs root and `ip`;
//! [`Netns::create`] returns `None` when namespaces cannot be made here. Everything is
//! deleted on drop. CLI commands reach a daemon's RPC API by running inside its namespace
//! ([`NsDaemon::run`]), where the API listens on loopback.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Node;
use super::daemon::START;

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ip_ok(args: &[&str]) {
    assert!(ip(args), "ip {} failed", args.join(" "));
}

/// A hub namespace with a bridge and one namespace per node.
pub struct Netns {
    prefix: String,
    subnet: u8,
    nodes: usize,
}

impl Netns {
    pub fn create(nodes: usize) -> Option<Self> {
        let pid = std::process::id();
        let prefix = format!("dt{}", pid % 100_000);
        let subnet = u8::try_from(pid % 200).unwrap() + 20;
        let hub = format!("{prefix}hub");
        if !ip(&["netns", "add", &hub]) {
            return None;
        }
        let me = Self {
            prefix,
            subnet,
            nodes,
        };
        ip_ok(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip_ok(&["-n", &hub, "link", "set", "br0", "up"]);
        for i in 0..nodes {
            let ns = me.ns(i);
            let host = format!("h{i}");
            ip_ok(&["netns", "add", &ns]);
            ip_ok(&[
                "link", "add", &host, "netns", &hub, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            ip_ok(&["-n", &hub, "link", "set", &host, "master", "br0", "up"]);
            let addr = format!("{}/24", me.addr(i));
            ip_ok(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            ip_ok(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        Some(me)
    }

    pub fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.prefix)
    }

    pub fn addr(&self, i: usize) -> String {
        format!("10.77.{}.{}", self.subnet, i + 1)
    }

    /// Cut (or heal) every link between `a` and `b`.
    pub fn partition(&self, a: &[usize], b: &[usize], cut: bool) {
        let verb = if cut { "add" } else { "del" };
        for (x, y) in a.iter().flat_map(|x| b.iter().map(move |y| (*x, *y))) {
            for (from, to) in [(x, y), (y, x)] {
                let dst = format!("{}/32", self.addr(to));
                ip_ok(&["-n", &self.ns(from), "route", verb, "blackhole", &dst]);
            }
        }
    }

    /// Start `distribute node` for `node` inside namespace `i`, listening on its address.
    pub fn start(&self, i: usize, node: Node, extra: &[&str]) -> NsDaemon {
        let log = std::fs::File::create(node.dir.path().join("daemon.log")).unwrap();
        let listen = format!("--listen=/ip4/{}/tcp/0", self.addr(i));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(i), super::bin(), "--repo"])
            .arg(node.repo())
            .args([
                "--log-level=info,distribute=debug",
                "node",
                &listen,
                "--no-mdns",
            ])
            .args(extra)
            .env_remove("DISTRIBUTE_REPO")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + START;
        let doc = loop {
            let parsed = std::fs::read_to_string(node.repo().join("node.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            if let Some(doc) = parsed
                && doc["addrs"].as_array().is_some_and(|a| !a.is_empty())
                && doc["api"].is_string()
                && node.repo().join("api").exists()
            {
                break doc;
            }
            assert!(
                Instant::now() < deadline,
                "daemon in {} did not start",
                self.ns(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let addr = format!(
            "{}/p2p/{}",
            doc["addrs"][0].as_str().unwrap(),
            doc["peer_id"].as_str().unwrap()
        );
        NsDaemon {
            node,
            child,
            addr,
            ns: self.ns(i),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for i in 0..self.nodes {
            ip(&["netns", "del", &self.ns(i)]);
        }
        ip(&["netns", "del", &format!("{}hub", self.prefix)]);
    }
}

/// A daemon running inside a namespace; killed on drop.
pub struct NsDaemon {
    pub node: Node,
    child: Child,
    pub addr: String,
    ns: String,
}

impl NsDaemon {
    /// Run the CLI inside the daemon's namespace (its API listens on the namespace's
    /// loopback).
    pub fn run(&self, args: &[&str]) -> super::Run {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, super::bin(), "--repo"])
            .arg(self.node.repo())
            .args(args)
            .current_dir(self.node.dir.path())
            .env_remove("DISTRIBUTE_REPO")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        super::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            raw_stdout: out.stdout,
        }
    }

    /// `add -Q` of a file, in the namespace.
    pub fn add(&self, path: &str, flags: &[&str]) -> String {
        let mut args = vec!["add", "-Q"];
        args.extend_from_slice(flags);
        args.push(path);
        self.run(&args).ok().stdout.trim().to_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.node.dir.path().join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
