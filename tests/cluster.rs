//! Cluster pinning with real `distribute node` processes on loopback sharing a cluster
//! secret, with short timings (heartbeat timeout 3 s, re-replication after 5 s). Every
//! condition is polled with a generous deadline; nothing asserts on timing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::time::{Duration, Instant};

use kit::daemon::{Daemon, metric};
use kit::port::free_port;
use kit::{Node, gen_bytes, wait_for};

/// Deadline for a cluster condition (transfers, heartbeats and grace periods on a busy box).
const CONVERGE: Duration = Duration::from_secs(240);

/// Flags of a test cluster member.
fn cluster_flags(secret: &str) -> Vec<String> {
    [
        "--cluster-secret-file",
        secret,
        "--heartbeat-timeout=3",
        "--rereplicate-after=5",
        "--drain-timeout=240",
        "--replication=3",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

struct Cluster {
    /// `None` for a node that is stopped.
    nodes: Vec<Option<Daemon>>,
    secret: tempfile::NamedTempFile,
    extra: Vec<String>,
}

impl Cluster {
    fn start(n: usize, backend: Option<&str>, extra: &[&str]) -> Self {
        let secret = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret.path(), "test cluster secret\n").unwrap();
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let mut cluster = Self {
            nodes: Vec::new(),
            secret,
            extra,
        };
        for _ in 0..n {
            let node = match backend {
                Some(b) => Node::with_backend(b),
                None => Node::new(),
            };
            let d = cluster.launch(node);
            cluster.nodes.push(Some(d));
        }
        let all = n;
        for i in 0..n {
            wait_for(&format!("node {i} to see {all} members"), CONVERGE, || {
                cluster.run(i, &["cluster", "peers"]).lines().count() == all
            });
        }
        cluster
    }

    /// Start `node` as a member, bootstrapping from the first running member.
    fn launch(&self, node: Node) -> Daemon {
        self.launch_with(node, &[])
    }

    /// [`Cluster::launch`] with flags for this member only.
    fn launch_with(&self, node: Node, own: &[&str]) -> Daemon {
        let mut args = cluster_flags(self.secret.path().to_str().unwrap());
        args.extend(self.extra.iter().cloned());
        args.extend(own.iter().map(|s| (*s).to_owned()));
        if let Some(first) = self.nodes.iter().flatten().next() {
            args.push("--bootstrap".into());
            args.push(first.addr());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Daemon::start(node, &refs)
    }

    fn daemon(&self, i: usize) -> &Daemon {
        self.nodes[i].as_ref().expect("node is running")
    }

    fn run(&self, i: usize, args: &[&str]) -> String {
        self.daemon(i).node.run(args).ok().stdout
    }

    /// Running nodes that hold a recursive local pin of `cid`.
    fn holders(&self, cid: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .filter(|i| {
                self.run(*i, &["pin", "ls", "-t", "recursive", "-q"])
                    .contains(cid)
            })
            .collect()
    }

    /// Null until the node has heard of the pin.
    fn status(&self, i: usize, cid: &str) -> serde_json::Value {
        let out = self.daemon(i).node.run(&["cluster", "status", cid]);
        serde_json::from_str(&out.stdout).unwrap_or_default()
    }

    /// Whether node `i` reports `cid` pinned with `n` holders.
    fn pinned_by(&self, i: usize, cid: &str, n: u64) -> bool {
        let s = self.status(i, cid);
        s["Status"] == "pinned" && s["Pinned"] == n
    }

    /// SIGKILL node `i`; returns its repository for a restart. The dead daemon's `node.json`
    /// and `api` are removed so the restart waits for the new ones.
    fn kill(&mut self, i: usize) -> Node {
        let mut d = self.nodes[i].take().unwrap();
        d.kill();
        let node = std::mem::replace(&mut d.node, Node::new());
        let _ = std::fs::remove_file(node.repo().join("node.json"));
        let _ = std::fs::remove_file(node.repo().join("api"));
        node
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .flatten()
            .map(|d| format!("=== {}\n{}", d.peer_id, d.log()))
            .collect()
    }
}

#[test]
fn five_nodes_keep_three_copies_through_failure_restart_and_leave() {
    let mut c = Cluster::start(5, None, &[]);
    let data = gen_bytes(21, 50 << 20);
    let file = c.daemon(0).node.write("big.bin", &data);
    let cid = c.daemon(0).node.add(&file, &["--pin=false"]);
    // --wait answers once every allocated peer reports the pin pinned.
    let out = c.run(
        0,
        &["pin", &cid, "--replication", "3", "--name", "big", "--wait"],
    );
    assert!(out.contains("pinned"), "{out}");
    assert!(
        c.pinned_by(0, &cid, 3),
        "--wait returned before 3/3: {}",
        c.status(0, &cid)
    );
    assert_eq!(c.holders(&cid).len(), 3, "{:?}", c.holders(&cid));

    // Replication larger than the cluster: failed with a reason, nothing else disturbed;
    // waiting for it ends in that reason and a non-zero exit.
    let small = c
        .daemon(1)
        .node
        .write("small.txt", b"a small file for a large replication");
    let small_cid = c.daemon(1).node.add(&small, &["--pin=false"]);
    let waited = c
        .daemon(1)
        .node
        .run(&["pin", "add", &small_cid, "--replication", "7", "--wait"]);
    assert_ne!(waited.code, 0, "{waited:?}");
    assert!(waited.stderr.contains("replication-min 7"), "{waited:?}");

    // Node 2, whose answers are checked below, counts holders from the reports that reach it
    // by heartbeat, so it is waited for as well as node 4.
    wait_for("the 50 MB pin on exactly 3 nodes, 3/3", CONVERGE, || {
        c.holders(&cid).len() == 3 && c.pinned_by(4, &cid, 3) && c.pinned_by(2, &cid, 3)
    });
    // Node 0 had the whole DAG when it pinned: its copy is one of the three.
    assert!(c.holders(&cid).contains(&0), "{:?}", c.holders(&cid));
    let status = c.run(2, &["status", &cid]);
    assert!(status.contains(&format!("CID: {cid}")), "{status}");
    assert!(
        status.contains(&format!("Size: {}", c.status(2, &cid)["Size"])),
        "{status}"
    );
    assert!(status.contains("Pinned: Yes"), "{status}");
    assert!(
        status.contains("Peers: 3 (replication factor: 3/3)"),
        "{status}"
    );
    let verbose = c.run(2, &["status", &cid, "--verbose"]);
    assert_eq!(verbose.matches(": pinned").count(), 3, "{verbose}");

    wait_for(
        "the oversized pin to be failed with a reason",
        CONVERGE,
        || {
            let s = c.status(3, &small_cid);
            s["Status"] == "failed"
                && s["Error"]
                    .as_str()
                    .is_some_and(|e| e.contains("replication-min 7"))
        },
    );
    let listed = c.run(3, &["pin", "ls", "--cluster"]);
    assert!(
        listed.contains(&cid) && listed.contains(&small_cid),
        "{listed}"
    );

    // SIGKILL a holder: after the grace period another node takes over.
    let holders = c.holders(&cid);
    let victim = holders[0];
    let killed = c.kill(victim);
    let watcher = (0..5).find(|i| *i != victim).unwrap();
    wait_for(
        "a new third holder after the grace period",
        CONVERGE,
        || c.holders(&cid).len() == 3 && c.pinned_by(watcher, &cid, 3),
    );
    let replaced = c.holders(&cid);
    assert!(!replaced.contains(&victim));

    // The killed node comes back: no fourth permanent copy.
    let restarted = c.launch(killed);
    c.nodes[victim] = Some(restarted);
    wait_for(
        "exactly 3 holders again after the restart",
        CONVERGE,
        || c.holders(&cid).len() == 3 && c.pinned_by(watcher, &cid, 3),
    );
    wait_for("the returning node to be a live member", CONVERGE, || {
        let peers = c.run(watcher, &["cluster", "peers"]);
        peers.lines().filter(|l| l.contains("\talive\t")).count() == 5
    });

    // Graceful leave (SIGTERM) of a holder: 3 copies throughout, clean exit.
    let leaver = c.holders(&cid)[0];
    let observer = (0..5).find(|i| *i != leaver).unwrap();
    let mut leaving = c.nodes[leaver].take().unwrap();
    let stopper = std::thread::spawn(move || {
        leaving.stop(); // asserts exit status 0
        leaving
    });
    // The observer counts the copies it has heard of by heartbeat: a report that is late
    // (heartbeat timeout 3 s) may show 2 for a moment, so a dip fails the test only when it
    // outlasts two heartbeat timeouts — a copy really lost does not come back.
    let mut low_since: Option<Instant> = None;
    while !stopper.is_finished() {
        let s = c.status(observer, &cid);
        if s["Pinned"].as_u64().unwrap_or(0) >= 3 {
            low_since = None;
        } else {
            let since = *low_since.get_or_insert_with(Instant::now);
            assert!(
                since.elapsed() < Duration::from_secs(6),
                "fell below 3 copies while a holder left: {s}\n{}",
                c.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let left = stopper.join().unwrap();
    assert!(left.log().contains("left the cluster"), "{}", left.log());
    // The oversized pin (7 copies asked of 5 nodes) is on every member already: the leaver has
    // nothing to wait for there, so it leaves once the 50 MB pin is re-homed, not at the timeout.
    assert!(!left.log().contains("drain timeout"), "{}", left.log());
    wait_for("3/3 on the remaining nodes", CONVERGE, || {
        c.holders(&cid).len() == 3 && c.pinned_by(observer, &cid, 3)
    });
    let fetched = c.daemon(observer).node.cat(&cid);
    assert!(fetched == data, "the cluster copy is the original");
}

#[test]
fn a_pin_below_its_target_is_counted_in_metrics_and_logged() {
    let mut c = Cluster::start(1, None, &["--log-format=json"]);
    let port = free_port();
    let second = c.launch_with(Node::new(), &["--metrics", &format!("127.0.0.1:{port}")]);
    c.nodes.push(Some(second));
    for i in 0..2 {
        wait_for(&format!("node {i} to see 2 members"), CONVERGE, || {
            c.run(i, &["cluster", "peers"]).lines().count() == 2
        });
    }
    let data = gen_bytes(41, 600 << 10);
    let file = c.daemon(0).node.write("f.bin", &data);
    let cid = c.daemon(0).node.add(&file, &["--pin=false"]);
    // Two members for a target of three: both hold it, and it stays one copy short.
    c.run(
        0,
        &[
            "pin",
            &cid,
            "--replication-min",
            "1",
            "--replication-max",
            "3",
        ],
    );
    wait_for("both members to hold it", CONVERGE, || {
        c.holders(&cid).len() == 2 && c.status(1, &cid)["Pinned"] == 2
    });
    let size = c.status(1, &cid)["Size"].as_f64().unwrap();
    assert!(size > 600.0 * 1024.0, "{size}");
    let series = |kind: &str| format!("fs_replication_factor{{cid=\"{cid}\",kind=\"{kind}\"}}");
    wait_for(
        "the metrics to show one pin one copy short",
        CONVERGE,
        || {
            metric(port, "fs_under_replicated_pins") == Some(1.0)
                && metric(port, &series("actual")) == Some(2.0)
                && metric(port, &series("target")) == Some(3.0)
                && metric(port, "fs_replication_bytes_pending") == Some(size)
        },
    );

    // The JSON log says which pin lags, by how much.
    let lag = |log: &str| {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|l| {
                let f = &l["fields"];
                l["level"] == "WARN"
                    && f["message"] == "replication lag"
                    && f["cid"] == cid.as_str()
                    && f["target"] == 3
                    && f["peers"].as_u64().is_some_and(|p| p < 3)
            })
    };
    wait_for("a replication lag warning", CONVERGE, || {
        lag(&c.daemon(0).log()) && lag(&c.daemon(1).log())
    });

    // A third member brings it to target: the gauges follow.
    let third = c.launch(Node::new());
    c.nodes.push(Some(third));
    wait_for("3/3 and nothing under-replicated", CONVERGE, || {
        c.pinned_by(1, &cid, 3)
            && metric(port, "fs_under_replicated_pins") == Some(0.0)
            && metric(port, &series("actual")) == Some(3.0)
            && metric(port, "fs_replication_bytes_pending") == Some(0.0)
    });
}

#[test]
fn scrub_repairs_a_corrupt_block_from_a_holder() {
    let c = Cluster::start(
        3,
        Some("flatfs"),
        &["--scrub-interval=1", "--scrub-rate=64"],
    );
    // 1 KiB chunks: 400 leaves under 3 inner nodes, so a leaf is two levels down.
    let data = gen_bytes(33, 400 << 10);
    let file = c.daemon(0).node.write("f.bin", &data);
    let cid = c
        .daemon(0)
        .node
        .add(&file, &["--pin=false", "--chunker=size-1024"]);
    c.run(0, &["pin", &cid, "--replication", "3"]);
    wait_for("3/3", CONVERGE, || c.pinned_by(1, &cid, 3));

    // Flip a byte in a leaf's block file on node 2 (the leaves are the middle sizes: the
    // inner nodes are larger, the root and the last leaf smaller). Its parent is still
    // stored, so the repair must look below blocks that are present.
    let blocks = c.daemon(2).node.repo().join("blocks");
    let mut files: Vec<_> = walk(&blocks)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    assert!(files.len() > 400, "{} block files", files.len());
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = files[files.len() / 2].clone();
    let original = std::fs::read(&victim).unwrap();
    let mut bad = original.clone();
    bad[original.len() / 2] ^= 0xff;
    std::fs::write(&victim, &bad).unwrap();

    wait_for("the scrub to restore the block", CONVERGE, || {
        std::fs::read(&victim).is_ok_and(|now| now == original)
    });
    // The repair is logged once the whole DAG is checked, just after the block is rewritten.
    wait_for("the scrub to log the repair", CONVERGE, || {
        c.daemon(2).log().contains("scrub repaired")
    });
}

#[test]
fn a_node_without_the_secret_cannot_join_or_inject_pins() {
    let c = Cluster::start(2, None, &[]);
    let outsider_secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outsider_secret.path(), "another secret").unwrap();
    let outsider = Daemon::start(
        Node::new(),
        &[
            "--cluster-secret-file",
            outsider_secret.path().to_str().unwrap(),
            "--heartbeat-timeout=3",
            "--bootstrap",
            &c.daemon(0).addr(),
        ],
    );
    let f = outsider.node.write("x.txt", b"outsider content");
    let cid = outsider.node.add(&f, &["--pin=false"]);
    outsider.node.run(&["pin", &cid, "--replication", "1"]).ok();
    // The outsider is connected (it bootstrapped from node 0) yet stays out of the cluster.
    wait_for("the outsider to be connected", CONVERGE, || {
        c.run(0, &["peers"]).contains(&outsider.peer_id)
    });
    // A member's pins made after the outsider's reach node 0 (two in one call: one batch,
    // one update); the outsider's never does.
    let g = c.daemon(1).node.write("y.txt", b"member content");
    let member_cid = c.daemon(1).node.add(&g, &["--pin=false"]);
    let h = c.daemon(1).node.write("z.txt", b"more member content");
    let second_cid = c.daemon(1).node.add(&h, &["--pin=false"]);
    let out = c.run(
        1,
        &["pin", "add", &member_cid, &second_cid, "--replication", "1"],
    );
    assert!(
        out.contains(&member_cid) && out.contains(&second_cid),
        "{out}"
    );
    wait_for("the member's later pins to reach node 0", CONVERGE, || {
        let listed = c.run(0, &["pin", "ls", "--cluster"]);
        listed.contains(&member_cid) && listed.contains(&second_cid)
    });
    let peers = c.run(0, &["cluster", "peers"]);
    assert!(!peers.contains(&outsider.peer_id), "{peers}");
    let pins = c.run(0, &["pin", "ls", "--cluster"]);
    assert!(!pins.contains(&cid), "{pins}");
    let bad = c.daemon(0).node.run(&["pin", &cid, "--replication", "0"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("replication-min must be at least 1"),
        "{bad:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Partition a 4-node cluster into {0,1} and {2,3} (network namespaces, blackhole routes):
/// both sides keep serving and take new pins; after healing every pin is everywhere.
#[test]
fn pins_made_on_both_sides_of_a_partition_are_everywhere_after_healing() {
    let Some(net) = kit::netns::Netns::create(4) else {
        eprintln!("SKIPPED: network namespaces unavailable here (needs root and iproute2)");
        return;
    };
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "partition secret").unwrap();
    let flags: Vec<String> = cluster_flags(secret.path().to_str().unwrap())
        .into_iter()
        .map(|f| {
            if f == "--replication=3" {
                "--replication=2".into()
            } else {
                f
            }
        })
        .collect();
    let mut nodes: Vec<kit::netns::NsDaemon> = Vec::new();
    for i in 0..4 {
        let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
        let boot;
        if let Some(first) = nodes.first() {
            boot = first.addr.clone();
            args.push("--bootstrap");
            args.push(&boot);
        }
        nodes.push(net.start(i, Node::new(), &args));
    }
    let run = |i: usize, args: &[&str]| nodes[i].run(args).ok().stdout;
    // Null until the node has heard of the pin.
    let status = |i: usize, cid: &str| -> serde_json::Value {
        let out = nodes[i].run(&["cluster", "status", cid]);
        serde_json::from_str(&out.stdout).unwrap_or_default()
    };
    let pinned_2 = |i: usize, cid: &str| {
        let s = status(i, cid);
        s["Status"] == "pinned" && s["Pinned"] == 2
    };
    for i in 0..4 {
        wait_for(&format!("node {i} to see 4 members"), CONVERGE, || {
            run(i, &["cluster", "peers"]).matches("\talive\t").count() == 4
        });
    }
    let add = |i: usize, seed: u64| {
        let f = nodes[i]
            .node
            .write(&format!("f{seed}"), &gen_bytes(seed, 1 << 20));
        let cid = nodes[i].add(&f, &["--pin=false"]);
        run(i, &["pin", &cid]);
        cid
    };
    let before = add(0, 1);
    wait_for("the first pin at 2/2", CONVERGE, || pinned_2(3, &before));

    net.partition(&[0, 1], &[2, 3], true);
    for i in [0, 2] {
        wait_for("the other side to be down", CONVERGE, || {
            run(i, &["cluster", "peers"]).matches("\tdown\t").count() == 2
        });
    }
    // Both sides keep serving what they hold.
    for d in &nodes {
        let held = d.run(&["pin", "ls", "-t", "recursive", "-q"]).ok().stdout;
        if held.contains(&before) {
            assert_eq!(
                d.run(&["cat", &before]).ok().raw_stdout,
                gen_bytes(1, 1 << 20)
            );
        }
    }
    let left = add(0, 2);
    let right = add(2, 3);
    wait_for("the left pin at 2/2 on the left", CONVERGE, || {
        pinned_2(1, &left)
    });
    wait_for("the right pin at 2/2 on the right", CONVERGE, || {
        pinned_2(3, &right)
    });
    assert!(!run(2, &["pin", "ls", "--cluster"]).contains(&left));

    net.partition(&[0, 1], &[2, 3], false);
    for i in 0..4 {
        wait_for(
            &format!("node {i} to list every pin at 2/2"),
            CONVERGE,
            || [&before, &left, &right].iter().all(|c| pinned_2(i, c)),
        );
    }
    let holders = |cid: &str| {
        (0..4)
            .filter(|i| run(*i, &["pin", "ls", "-t", "recursive", "-q"]).contains(cid))
            .count()
    };
    for cid in [&before, &left, &right] {
        wait_for("exactly 2 copies after healing", CONVERGE, || {
            holders(cid) == 2
        });
    }
    drop(nodes);
}
