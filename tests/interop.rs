//! Interop with Helia (JavaScript IPFS): a real `distribute node` and a real Helia peer
//! (`tests/interop/helia-peer.mjs`, driven by JSON lines) exchange multi-block files over
//! Bitswap on loopback, in both directions, over TCP (Noise, Yamux) and over QUIC v1 (Helia
//! through `@chainsafe/libp2p-quic`), and the bytes must match. Needs Node.js >= 20
//! and npm; `tests/interop/install.sh` is run first if `node_modules` is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kit::daemon::Daemon;
use kit::{Node, gen_bytes, wait_for};
use serde_json::{Value, json};

/// Helia's start (module loading included) and each command's answer.
const HELIA_TIMEOUT: Duration = Duration::from_secs(120);
/// Many 256 KiB chunks plus a root node: more than twice our 4 MiB yamux stream window, so a
/// Helia peer sends window-sized frames (what once broke fetching from Helia) more than once.
const FILE_SIZE: usize = (10 << 20) + 300_000;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// `npm ci` the Helia harness unless it is there already.
fn ensure_installed() {
    let dir = interop_dir();
    if dir.join("node_modules").is_dir() {
        return;
    }
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "the Helia interop tests need `{tool}` (Node.js >= 20 and npm) on PATH; install \
             Node.js, then run `bash tests/interop/install.sh`"
        );
    }
    let status = Command::new("bash")
        .arg(dir.join("install.sh"))
        .status()
        .expect("running tests/interop/install.sh");
    assert!(
        status.success(),
        "tests/interop/install.sh failed ({status}); run it by hand to see why"
    );
}

/// A running `helia-peer.mjs`, killed on drop.
struct Helia {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
    peer_id: String,
    addr: String,
}

/// The transports both sides speak: TCP with Noise and Yamux, or QUIC v1.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Quic,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Quic => "quic",
        }
    }

    /// What the multiaddr of a connection over this transport contains.
    fn marker(self) -> &'static str {
        match self {
            Self::Tcp => "/tcp/",
            Self::Quic => "/quic-v1",
        }
    }

    /// A daemon listening on this transport too (every daemon listens on TCP), and its
    /// dialable address on it.
    fn daemon(self) -> (Daemon, String) {
        let daemon = match self {
            Self::Tcp => Daemon::start(Node::new(), &[]),
            Self::Quic => Daemon::start(
                Node::new(),
                &["--listen=/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1"],
            ),
        };
        let addr = daemon
            .addrs
            .iter()
            .find(|a| a.contains(self.marker()))
            .unwrap_or_else(|| panic!("no {self:?} address in {:?}", daemon.addrs));
        let addr = format!("{addr}/p2p/{}", daemon.peer_id);
        (daemon, addr)
    }
}

/// The address `distribute peers` shows for `peer` (one line per connected peer: ID, address,
/// latency, agent).
fn peer_address(daemon: &Daemon, peer: &str) -> String {
    let peers = daemon.node.run(&["peers"]).stdout;
    peers
        .lines()
        .find(|l| l.starts_with(peer))
        .and_then(|l| l.split('\t').nth(1))
        .unwrap_or_else(|| panic!("{peer} is not in `distribute peers`:\n{peers}"))
        .to_owned()
}

impl Helia {
    fn start(scratch: &Path, transport: Transport) -> Self {
        ensure_installed();
        let log = scratch.join("helia.log");
        let mut child = Command::new("node")
            .args(["--import", "./polyfill.mjs", "helia-peer.mjs"])
            .args(["--transport", transport.name()])
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting node helia-peer.mjs");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut helia = Self {
            child,
            stdin,
            lines,
            log,
            peer_id: String::new(),
            addr: String::new(),
        };
        let ready = helia.next_line("the Helia peer's ready event");
        assert_eq!(ready["event"], "ready", "{ready}");
        helia.peer_id = ready["peerId"].as_str().unwrap().to_owned();
        helia.addr = ready["addrs"][0].as_str().unwrap().to_owned();
        helia
    }

    fn next_line(&self, what: &str) -> Value {
        match self.lines.recv_timeout(HELIA_TIMEOUT) {
            Ok(line) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{what}: bad JSON line {line:?}: {e}")),
            Err(_) => panic!(
                "no answer for {what} within {HELIA_TIMEOUT:?}; Helia log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
        }
    }

    /// Send one command and return its answer, which must be `ok`.
    fn call(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let answer = self.next_line(&command.to_string());
        assert_eq!(
            answer["ok"],
            true,
            "Helia command {command} failed: {answer}; Helia log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        answer
    }
}

impl Drop for Helia {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "{what}: got {} bytes, expected {} (contents differ)",
        got.len(),
        want.len()
    );
}

#[test]
fn helia_fetches_a_multi_block_file_from_distribute() {
    helia_fetches_from_distribute(Transport::Tcp);
}

#[test]
fn helia_fetches_a_multi_block_file_from_distribute_over_quic() {
    helia_fetches_from_distribute(Transport::Quic);
}

#[test]
fn distribute_fetches_a_multi_block_file_from_helia() {
    distribute_fetches_from_helia(Transport::Tcp);
}

#[test]
fn distribute_fetches_a_multi_block_file_from_helia_over_quic() {
    distribute_fetches_from_helia(Transport::Quic);
}

fn helia_fetches_from_distribute(transport: Transport) {
    let (daemon, addr) = transport.daemon();
    let mut helia = Helia::start(daemon.node.dir.path(), transport);
    let data = gen_bytes(21, FILE_SIZE);
    let file = daemon.node.write("for-helia.bin", &data);
    let cid = daemon.node.add(&file, &[]);

    helia.call(json!({ "cmd": "dial", "addr": addr }));
    let out = daemon.node.dir.path().join("from-distribute.bin");
    let answer = helia.call(json!({
        "cmd": "get",
        "cid": cid,
        "out": out.to_str().unwrap(),
        "timeoutMs": 120_000,
    }));
    assert_eq!(answer["bytes"], FILE_SIZE, "{answer}");
    assert_same(
        "Helia's copy of the Distribute file",
        &std::fs::read(&out).unwrap(),
        &data,
    );
    let used = peer_address(&daemon, &helia.peer_id);
    assert!(
        used.contains(transport.marker()),
        "{transport:?} expected: {used}"
    );
}

fn distribute_fetches_from_helia(transport: Transport) {
    let (daemon, _) = transport.daemon();
    let mut helia = Helia::start(daemon.node.dir.path(), transport);
    daemon.node.run(&["swarm", "connect", &helia.addr]).ok();
    wait_for("the daemon to list Helia as a peer", HELIA_TIMEOUT, || {
        daemon.node.run(&["peers"]).stdout.contains(&helia.peer_id)
    });
    let used = peer_address(&daemon, &helia.peer_id);
    assert!(
        used.contains(transport.marker()),
        "{transport:?} expected: {used}"
    );
    // Several files over one connection: the stream windows grow as they are used.
    let mut cid = String::new();
    for seed in 22..25 {
        let data = gen_bytes(seed, FILE_SIZE);
        let file = daemon
            .node
            .write(&format!("for-distribute-{seed}.bin"), &data);
        let added = helia.call(json!({ "cmd": "add", "path": file }));
        cid = added["cid"].as_str().unwrap().to_owned();
        assert!(cid.starts_with("Qm"), "Kubo-style CIDv0 expected: {added}");
        let run = daemon.node.run(&["cat", &cid]);
        assert_eq!(
            run.code,
            0,
            "distribute cat {cid} failed: {}\ndaemon log:\n{}",
            run.stderr,
            daemon.log()
        );
        assert_same(
            "Distribute's copy of the Helia file",
            &run.raw_stdout,
            &data,
        );
    }
    // The fetched blocks were kept: the root is in the store now.
    daemon.node.run(&["block", "stat", &cid]).ok();
}
