//! The peer-to-peer node as users run it: real `distribute node` processes on loopback
//! (`--no-mdns`, so only what the test configures connects). Three nodes find and fetch
//! content through the DHT and Bitswap; a holder killed mid-transfer is survived; the CLI
//! works through a running daemon with the same output as offline; metrics are served.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use distribute::content::cid::{CODEC_RAW, block_cid};
use kit::daemon::{Daemon, START, http_get, metric};
use kit::port::free_port;
use kit::rogue::{Mode, Rogue};
use kit::{Node, gen_bytes, wait_for};

const FIND: Duration = Duration::from_secs(120);

fn peers_of(d: &Daemon) -> String {
    d.node.run(&["peers"]).stdout
}

#[test]
fn content_added_on_a_is_found_and_fetched_by_c() {
    let a = Daemon::start(Node::new(), &[]);
    let b = Daemon::start(Node::new(), &["--bootstrap", &a.addr()]);
    let c = Daemon::start(Node::new(), &["--bootstrap", &b.addr()]);
    wait_for("B to connect to A", START, || {
        peers_of(&b).contains(&a.peer_id)
    });
    wait_for("C to connect to B", START, || {
        peers_of(&c).contains(&b.peer_id)
    });

    let data = gen_bytes(7, 3 << 20); // several blocks and an inner node
    let file = a.node.write("big.bin", &data);
    let cid = a.node.add(&file, &[]);
    assert!(cid.starts_with("Qm"), "{cid}");

    wait_for("C to find A as a provider", FIND, || {
        c.node.run(&["findprovs", &cid]).stdout.contains(&a.peer_id)
    });
    let fetched = c.node.run(&["cat", &cid]).ok().raw_stdout;
    assert!(
        fetched == data,
        "C fetched {} bytes, not A's {} bytes",
        fetched.len(),
        data.len()
    );
    // Fetched blocks were stored: C has the root block now.
    c.node.run(&["block", "stat", &cid]).ok();
    let dht = c.node.run(&["dht", "inspect"]).ok().stdout;
    assert!(dht.contains("routing table"), "{dht}");
}

#[test]
fn transfer_survives_a_holder_killed_mid_way() {
    let data = gen_bytes(11, 48 << 20);
    let mut a = Daemon::start(Node::new(), &[]);
    let b = Daemon::start(Node::new(), &[]);
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let c = Daemon::start(Node::new(), &["--metrics", &metrics]);
    let cid_a = a.node.add(&a.node.write("f.bin", &data), &[]);
    let cid_b = b.node.add(&b.node.write("f.bin", &data), &[]);
    assert_eq!(cid_a, cid_b);
    c.node.run(&["swarm", "connect", &a.addr()]).ok();
    c.node.run(&["swarm", "connect", &b.addr()]).ok();

    let mut cat = c
        .node
        .command(&["cat", &cid_a])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = cat.stdout.take().unwrap();
    wait_for("C to receive some blocks", START, || {
        metric(port, "bitswap_blocks_received_total").is_some_and(|n| n >= 10.0)
    });
    // Nobody reads `cat`'s output until A is dead: the stream stalls on the full pipe, so C
    // fetches no further than the window after the one being written, and A cannot have
    // served the whole file first however slowly this thread gets to run.
    let received_at_kill = metric(port, "bitswap_blocks_received_total").unwrap();
    a.kill();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).unwrap();
        out
    });
    let out = reader.join().unwrap();
    let status = cat.wait().unwrap();
    let mut err = String::new();
    cat.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(
        status.success(),
        "cat failed after the kill: {err}\n{}",
        c.log()
    );
    assert!(out == data, "got {} bytes, want {}", out.len(), data.len());
    let total = metric(port, "bitswap_blocks_received_total").unwrap();
    assert!(
        received_at_kill < total,
        "A was killed after the transfer ended ({received_at_kill} of {total} blocks)"
    );
}

/// `get` of content the node lacks says on stderr which peer it came from, how much and how
/// long (a plain line: stderr is not a terminal here); local content does not.
#[test]
fn get_through_a_daemon_says_where_it_fetched_from() {
    let data = gen_bytes(41, 1 << 20);
    let a = Daemon::start(Node::new(), &[]);
    let cid = a.node.add(&a.node.write("f.bin", &data), &[]);
    let c = Daemon::start(Node::new(), &[]);
    c.node.run(&["swarm", "connect", &a.addr()]).ok();
    let out = c.node.dir.path().join("got.bin");
    let run = c.node.run(&["get", &cid, "-o", out.to_str().unwrap()]).ok();
    assert_eq!(run.stdout, "", "get prints nothing on stdout");
    let stderr = run.stderr;
    assert!(std::fs::read(&out).unwrap() == data, "fetched bytes differ");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("fetching from "))
        .unwrap_or_else(|| panic!("no fetch line in {stderr:?}"));
    let expected = format!("fetching from {}… done (1.00 MiB in ", a.peer_id);
    assert!(line.starts_with(&expected), "{line:?} vs {expected:?}");
    assert!(line.ends_with("s)"), "{line:?}");

    let again = c.node.dir.path().join("again.bin");
    let stderr = c
        .node
        .run(&["get", &cid, "-o", again.to_str().unwrap()])
        .ok()
        .stderr;
    assert!(
        !stderr.contains("fetching from"),
        "local content: {stderr:?}"
    );
}

/// SIGTERM while a fetch is in flight (its only holder says HAVE and never delivers): the
/// daemon cancels the fetch and exits cleanly, without a panic; the command fails.
#[test]
fn daemon_stopped_mid_fetch_exits_cleanly() {
    let mut c = Daemon::start(Node::new(), &[]);
    let rogue = Rogue::start(Mode::Stall);
    c.node.run(&["swarm", "connect", &rogue.addr]).ok();
    let cid = block_cid(CODEC_RAW, 1, b"only the staller claims this block").to_string();
    let cat = c
        .node
        .command(&["cat", &cid])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the fetch to ask the staller for the block", START, || {
        rogue.block_wants() >= 1
    });
    c.stop(); // SIGTERM; asserts a zero exit status
    let out = cat.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "cat cannot have succeeded: {stderr}");
    assert!(stderr.contains("Error: "), "cat printed no error: {stderr}");
    let log = c.log();
    assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
}

#[test]
fn cli_commands_work_through_the_daemon_with_offline_output() {
    let node = Node::new();
    let data = gen_bytes(3, 700_000);
    let file = node.write("a.bin", &data);
    let dir = node.mkdir("d");
    std::fs::write(format!("{dir}/x.txt"), b"x\n").unwrap();
    let add_offline = node.run(&["add", &file]).ok().stdout;
    let add_dir_offline = node.run(&["add", "-r", &dir]).ok().stdout;
    let pins_offline = node.run(&["pin", "ls"]).ok().stdout;
    let cid = add_offline.split_whitespace().nth(1).unwrap().to_owned();
    let id_offline = node.run(&["id"]).ok().stdout;

    let mut d = Daemon::start(node, &[]);
    let node = &d.node;
    assert_eq!(node.run(&["add", &file]).ok().stdout, add_offline);
    assert_eq!(node.run(&["add", "-r", &dir]).ok().stdout, add_dir_offline);
    assert_eq!(node.run(&["pin", "ls"]).ok().stdout, pins_offline);
    assert!(node.run(&["cat", &cid]).ok().raw_stdout == data);
    let out_path = node.dir.path().join("out.bin");
    node.run(&["get", &cid, "-o", out_path.to_str().unwrap()])
        .ok();
    assert!(std::fs::read(&out_path).unwrap() == data);
    // Errors come back as the same single error line.
    node.run(&["cat", "not-a-cid"]).fails();
    let id = node.run(&["id"]).ok().stdout;
    let id_json: serde_json::Value = serde_json::from_str(&id).unwrap();
    let offline_json: serde_json::Value = serde_json::from_str(&id_offline).unwrap();
    assert_eq!(id_json["ID"], offline_json["ID"]);
    assert_eq!(id_json["ID"].as_str().unwrap(), d.peer_id);
    assert!(!id_json["Addresses"].as_array().unwrap().is_empty());

    let later = node.write("later.txt", b"added while the daemon ran\n");
    let later_cid = node.add(&later, &[]);
    d.stop();
    assert!(
        !d.node.repo().join("api").exists(),
        "api file removed at shutdown"
    );
    assert_eq!(
        d.node.cat(&later_cid),
        b"added while the daemon ran\n".to_vec()
    );
}

#[test]
fn metrics_health_and_ready_are_served() {
    let port = free_port();
    let d = Daemon::start(Node::new(), &["--metrics", &format!("127.0.0.1:{port}")]);
    d.node.add(&d.node.write("m.txt", b"metrics\n"), &[]);
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    for name in [
        "distribute_blocks_total",
        "distribute_wantlist_size",
        "dht_routing_table_size",
        "bitswap_blocks_sent_total",
        "bitswap_blocks_received_total",
        "distribute_connected_peers",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    // The block-count gauge is sampled every few seconds: the added file's block shows up.
    wait_for(
        "distribute_blocks_total to count the added block",
        START,
        || {
            let (_, body) = http_get(port, "/metrics");
            body.lines()
                .any(|l| l.starts_with("distribute_blocks_total ") && !l.ends_with(" 0"))
        },
    );
    assert_eq!(http_get(port, "/health").0, 200);
    assert_eq!(http_get(port, "/ready").0, 200);
    assert_eq!(http_get(port, "/nope").0, 404);
}

#[test]
fn a_dag_wider_than_one_session_is_fetched_a_window_at_a_time() {
    // 17 MiB in 1 KiB chunks: 17,408 leaves, more CIDs than a fetch keeps live at once and
    // more than a server keeps per peer (8,192). The children not yet asked for must wait,
    // neither forgotten nor sent as wants the holder drops.
    let data = gen_bytes(23, 17 << 20);
    let holder = Node::new();
    let file = holder.write("wide.bin", &data);
    let cid = holder.add(&file, &["--chunker=size-1024", "--cid-version=1"]);
    let a = Daemon::start(holder, &[]);
    let b = Daemon::start(Node::new(), &["--bootstrap", &a.addr()]);
    wait_for("B to connect to A", START, || {
        peers_of(&b).contains(&a.peer_id)
    });
    let fetched = b.node.run(&["cat", &cid]).ok().raw_stdout;
    assert!(
        fetched == data,
        "B fetched {} bytes, not A's {} bytes",
        fetched.len(),
        data.len()
    );
    // The root is read alone; its children (inner nodes of 174 leaves) are then fetched as
    // DAGs a window at a time, the first window far wider than one session's live wants,
    // the next one on its way while one is read.
    let log = b.log();
    let singles = log
        .lines()
        .filter(|l| l.contains("block not local; fetching it over bitswap"))
        .count();
    assert_eq!(singles, 1, "only the root should be fetched alone:\n{log}");
    let dag_blocks: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("DAGs fetched"))
        .filter_map(|l| {
            l.split("blocks=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let windows = (17u64 << 20).div_ceil(distribute::content::exporter::PREFETCH_WINDOW);
    assert!(
        !dag_blocks.is_empty() && dag_blocks.len() as u64 <= windows + 1,
        "17 MiB should come in about {windows} DAG fetches: {dag_blocks:?}"
    );
    assert!(
        dag_blocks[0] > 8192,
        "the first window should be wider than a server's per-peer wants: {dag_blocks:?}"
    );
    // The second window was fetched while the first was read.
    assert!(
        log.lines()
            .any(|l| l.contains("DAGs fetched") && l.contains("ahead=true")),
        "no window was fetched ahead:\n{log}"
    );
}

/// A adds a file while its daemon runs (the CLI goes through A's RPC API); B, bootstrapped
/// to A, finds A as its provider: the root is announced once it is pinned, not when the
/// `add` answer starts.
#[test]
fn findprovs_on_b_lists_a_after_a_adds_a_file() {
    let a = Daemon::start(Node::new(), &[]);
    let b = Daemon::start(Node::new(), &["--bootstrap", &a.addr()]);
    wait_for("B to connect to A", START, || {
        peers_of(&b).contains(&a.peer_id)
    });
    let cid = a
        .node
        .add(&a.node.write("f.bin", &gen_bytes(77, 300_000)), &[]);
    wait_for("B to find A as the provider", FIND, || {
        b.node
            .run(&["findprovs", "-n", "1", &cid])
            .stdout
            .contains(&a.peer_id)
    });
    // The API answers the same: Kubo's provider event naming A.
    let (status, body) = b.post(
        &format!("routing/findprovs?arg={cid}&num-providers=1"),
        &[],
        b"",
    );
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("\"Type\":4") && text.contains(&a.peer_id),
        "{text}"
    );
}

#[test]
fn every_one_of_more_than_a_thousand_pins_is_announced() {
    // libp2p's in-memory record store stops at 1,024 provider keys; a node with more pins
    // than that must still list itself as the provider of each.
    const PINS: usize = 1_100;
    let a = Daemon::start(Node::new(), &[]);
    let b = Daemon::start(Node::new(), &["--bootstrap", &a.addr()]);
    wait_for("B to connect to A", START, || {
        peers_of(&b).contains(&a.peer_id)
    });
    let files: Vec<String> = (0..PINS)
        .map(|i| {
            a.node.write(
                &format!("many/f{i:04}"),
                format!("small file {i}\n").as_bytes(),
            )
        })
        .collect();
    let mut add = vec!["add", "-q", "--pin=false"];
    add.extend(files.iter().map(String::as_str));
    let cids: Vec<String> = a
        .node
        .run(&add)
        .ok()
        .stdout
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(cids.len(), PINS);
    let mut pin = vec!["pin", "add"];
    pin.extend(cids.iter().map(String::as_str));
    a.node.run(&pin).ok();
    // The announcer goes through the pins in the order `pin ls` lists them: the last ones
    // are those past the old limit.
    let listed = a
        .node
        .run(&["pin", "ls", "--type=recursive", "-q"])
        .ok()
        .stdout;
    let listed: Vec<&str> = listed.lines().collect();
    assert_eq!(listed.len(), PINS);
    for cid in [listed[0], listed[PINS / 2], listed[PINS - 1]] {
        wait_for(
            &format!("B to find A as the provider of {cid}"),
            FIND,
            || {
                b.node
                    .run(&["findprovs", "-n", "1", cid])
                    .stdout
                    .contains(&a.peer_id)
            },
        );
    }
}

#[test]
fn pin_add_through_a_daemon_fetches_the_dag_from_peers() {
    let a = Daemon::start(Node::new(), &[]);
    let b = Daemon::start(Node::new(), &["--bootstrap", &a.addr()]);
    wait_for("B to connect to A", START, || {
        peers_of(&b).contains(&a.peer_id)
    });
    let data = gen_bytes(78, 3_000_000);
    let cid = a.node.add(&a.node.write("f.bin", &data), &[]);
    let out = b.node.run(&["pin", "add", &cid]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let pinned = b
        .node
        .run(&["pin", "ls", "--type=recursive", "-q"])
        .ok()
        .stdout;
    assert!(pinned.lines().any(|l| l == cid), "{pinned}");
    // Every block is on B now: with A gone, B still serves the whole file.
    drop(a);
    assert_eq!(b.node.cat(&cid), data);
    // What the fetch stored (large blocks with direct I/O) is on disk: after the daemon
    // stops, the repo verifies and the file reads back offline.
    let mut b = b;
    b.stop();
    let verify = b.node.run(&["repo", "verify"]).ok();
    assert!(
        verify.stdout.contains("verified repo integrity"),
        "{}",
        verify.stdout
    );
    assert_eq!(b.node.cat(&cid), data);
}

/// A DAG whose root is already here but whose children are not (as an interrupted fetch
/// leaves it): `pin add` walks the local part, fetches the rest, and pins. With the only
/// holder gone, the same situation is refused, naming what is missing and why.
#[test]
fn pin_add_through_a_daemon_completes_a_partly_local_dag() {
    let a = Daemon::start(Node::new(), &[]);
    let b = Daemon::start(
        Node::new(),
        &["--bootstrap", &a.addr(), "--fetch-timeout=3"],
    );
    wait_for("B to connect to A", START, || {
        peers_of(&b).contains(&a.peer_id)
    });
    let data = gen_bytes(79, 2_000_000);
    let cid = a.node.add(&a.node.write("f.bin", &data), &[]);
    let other = gen_bytes(80, 1_500_000);
    let other_cid = a.node.add(&a.node.write("g.bin", &other), &[]);
    // Only the roots come over: `block get` fetches the one block asked for.
    b.node.run(&["block", "get", &cid]).ok();
    b.node.run(&["block", "get", &other_cid]).ok();
    b.node.run(&["pin", "add", &cid]).ok();
    let pinned = b
        .node
        .run(&["pin", "ls", "--type=recursive", "-q"])
        .ok()
        .stdout;
    assert_eq!(pinned.lines().collect::<Vec<_>>(), [cid.as_str()]);
    drop(a);
    assert_eq!(b.node.cat(&cid), data);
    let out = b.node.run(&["pin", "add", &other_cid]);
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("is not in the repository")
            && out.stderr.contains("fetching it from peers failed"),
        "{}",
        out.stderr
    );
    let pinned = b
        .node
        .run(&["pin", "ls", "--type=recursive", "-q"])
        .ok()
        .stdout;
    assert!(!pinned.contains(&other_cid), "{pinned}");
}

/// Writes a Kubo-format `swarm.key` whose 32 key bytes are all `byte`.
fn swarm_key(node: &Node, name: &str, byte: u8) -> String {
    let hex = format!("{byte:02x}").repeat(32);
    node.write(
        name,
        format!("/key/swarm/psk/1.0.0/\n/base16/\n{hex}\n").as_bytes(),
    )
}

/// A private network (`--network-key`): members connect and fetch from each other (TLS over
/// the pre-shared-key handshake); a node holding another key cannot connect to them.
#[test]
fn private_network_members_fetch_and_outsiders_cannot_connect() {
    let keys = Node::new();
    let ours = swarm_key(&keys, "swarm.key", 0x5a);
    let theirs = swarm_key(&keys, "other.key", 0xa5);
    let a = Daemon::start(Node::new(), &["--network-key", &ours]);
    let b = Daemon::start(
        Node::new(),
        &["--network-key", &ours, "--bootstrap", &a.addr()],
    );
    let outsider = Daemon::start(Node::new(), &["--network-key", &theirs]);
    wait_for("B to connect to A", START, || {
        peers_of(&b).contains(&a.peer_id)
    });

    let data = gen_bytes(23, 3 << 20);
    let cid = a.node.add(&a.node.write("private.bin", &data), &[]);
    let fetched = b.node.run(&["cat", &cid]).ok().raw_stdout;
    assert!(fetched == data, "B fetched {} bytes", fetched.len());

    let refused = outsider.node.run(&["swarm", "connect", &a.addr()]).fails();
    assert!(!refused.stderr.is_empty(), "no reason given");
    assert!(!peers_of(&outsider).contains(&a.peer_id));
    assert!(!peers_of(&a).contains(&outsider.peer_id));
}
