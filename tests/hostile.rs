//! Hostile peers against real `distribute node` daemons on loopback: a rogue libp2p peer
//! ([`kit::rogue`]) that serves corrupt blocks, a holder whose block files were damaged on
//! disk, and raw streams carrying malformed Kademlia and Bitswap frames. The node must never
//! hand out or keep bad data, never panic, and keep serving afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::time::Duration;

use kit::daemon::{Daemon, metric};
use kit::port::free_port;
use kit::rogue::{Mode, Rogue};
use kit::{Node, gen_bytes, wait_for};

/// A peer that answers want-blocks with garbage under the wanted CID's prefix (a holder with
/// corrupt storage that does not verify what it serves): the fetcher drops those blocks,
/// counts and penalises them, and gets every block from the honest holder.
#[test]
fn corrupt_blocks_from_a_peer_are_dropped_penalised_and_fetched_elsewhere() {
    // 192 leaves: more than one peer's window of want-blocks, so the rogue is asked too.
    let data = gen_bytes(21, 48 << 20);
    let b = Daemon::start(Node::new(), &[]);
    let cid = b.node.add(&b.node.write("f.bin", &data), &[]);
    let port = free_port();
    let c = Daemon::start(Node::new(), &["--metrics", &format!("127.0.0.1:{port}")]);
    let rogue = Rogue::start(Mode::Corrupt);
    c.node.run(&["swarm", "connect", &rogue.addr]).ok();
    c.node.run(&["swarm", "connect", &b.addr()]).ok();

    let out = c.node.run(&["cat", &cid]);
    assert_eq!(out.code, 0, "cat failed: {}\n{}", out.stderr, c.log());
    assert!(
        out.raw_stdout == data,
        "got {} bytes, want {}",
        out.raw_stdout.len(),
        data.len()
    );
    assert!(
        rogue.corrupt_sent() >= 1,
        "the rogue was never asked for a block, so nothing was tested"
    );
    let rejected = metric(port, "bitswap_blocks_rejected_total").unwrap();
    assert!(
        rejected >= 1.0,
        "{} corrupt blocks sent, {rejected} rejected",
        rogue.corrupt_sent()
    );
    // The penalty is logged by the fetch task, which may still be writing when `cat` returns.
    wait_for("the penalty to be logged", Duration::from_secs(60), || {
        c.log().contains("penalised")
    });
}

/// A holder whose flatfs block files were overwritten on disk does not serve the bad bytes:
/// its store re-hashes on read, deletes the corrupt block and answers DONT_HAVE, and the
/// fetcher gets the block from the other holder.
#[test]
fn a_holder_with_corrupt_block_files_never_serves_them() {
    // 192 leaves: more than one peer's window of want-blocks, so A is asked too.
    let data = gen_bytes(22, 48 << 20);
    let a_node = Node::with_backend("flatfs");
    let cid = a_node.add(&a_node.write("f.bin", &data), &[]);
    // Overwrite part of every leaf (full 256 KiB chunks); the root stays intact.
    let mut corrupted = 0;
    for shard in std::fs::read_dir(a_node.repo().join("blocks")).unwrap() {
        let shard = shard.unwrap().path();
        if !shard.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&shard).unwrap() {
            let f = f.unwrap().path();
            if std::fs::metadata(&f).unwrap().len() >= 256 << 10 {
                let mut bytes = std::fs::read(&f).unwrap();
                bytes[1000..1016].copy_from_slice(b"corrupted bytes!");
                std::fs::write(&f, bytes).unwrap();
                corrupted += 1;
            }
        }
    }
    assert_eq!(corrupted, 192, "leaves found on disk");
    let a = Daemon::start(a_node, &[]);
    let b = Daemon::start(Node::new(), &[]);
    assert_eq!(b.node.add(&b.node.write("f.bin", &data), &[]), cid);
    let c = Daemon::start(Node::new(), &[]);
    c.node.run(&["swarm", "connect", &a.addr()]).ok();
    c.node.run(&["swarm", "connect", &b.addr()]).ok();

    // `pin add` fetches the whole DAG in one session, so the wants spill past B's window to A
    // (a `cat` reads in windows small enough for B alone to serve).
    let out = c.node.run(&["pin", "add", &cid]);
    assert_eq!(out.code, 0, "pin add failed: {}\n{}", out.stderr, c.log());
    let out = c.node.run(&["cat", &cid]);
    assert_eq!(out.code, 0, "cat failed: {}\n{}", out.stderr, c.log());
    assert!(out.raw_stdout == data, "fetched bytes differ");
    let a_log = a.log();
    assert!(
        a_log.contains("corrupt block deleted"),
        "A was never asked for a corrupt leaf:\n{a_log}"
    );
    let c_log = c.log();
    assert!(
        !c_log.contains("dropped a block we did not ask"),
        "A served corrupt bytes:\n{c_log}"
    );
}

/// Protobuf helpers for hand-made frames (varints, tags, length-delimited fields).
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_varint(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One length-prefixed frame, as both protocols carry them.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, body.len() as u64);
    out.extend_from_slice(body);
    out
}

/// Malformed inputs: `(what, bytes)`.
type Cases = Vec<(&'static str, Vec<u8>)>;

/// Malformed inputs shared by both protocols.
fn malformed_common(max: usize) -> Cases {
    let mut truncated = Vec::new();
    varint(&mut truncated, 300);
    truncated.extend_from_slice(&gen_bytes(1, 40));
    let mut oversized = Vec::new();
    varint(&mut oversized, (max + 1) as u64);
    oversized.extend(std::iter::repeat_n(0x0a, max + 1));
    let mut huge_prefix_small_body = Vec::new();
    varint(&mut huge_prefix_small_body, 1 << 40);
    huge_prefix_small_body.extend_from_slice(b"hello");
    // A frame whose body claims a length-delimited field longer than the frame.
    let mut inner_overrun = Vec::new();
    varint(&mut inner_overrun, (2 << 3) | 2);
    varint(&mut inner_overrun, 1 << 30);
    inner_overrun.extend_from_slice(b"short");
    vec![
        ("random bytes", gen_bytes(2, 8192)),
        ("empty stream", Vec::new()),
        ("truncated frame", truncated),
        ("ten-byte 0xff length prefix", vec![0xff; 11]),
        ("2^40 length prefix", huge_prefix_small_body),
        ("oversized frame", oversized),
        ("zero-length frames", vec![0; 64]),
        ("field overruns its frame", frame(&inner_overrun)),
        ("unknown wire type 7", frame(&[0x0f, 0x01, 0x02])),
        ("group wire types", frame(&[0x0b, 0x0c, 0x13, 0x14])),
        ("overlong varint tag", frame(&[0xff; 12])),
    ]
}

/// Kad `Message` fields: type = 1, key = 2, record = 3, closerPeers = 8, providerPeers = 9,
/// clusterLevelRaw = 10; `Peer` { id = 1, addrs = 2, connection = 3 }.
fn malformed_kad() -> Cases {
    let mut cases = malformed_common(4 << 20);
    let mut unknown_type = Vec::new();
    field_varint(&mut unknown_type, 1, 999);
    field_bytes(&mut unknown_type, 2, b"key");
    cases.push(("unknown message type", frame(&unknown_type)));
    let mut bad_peer = Vec::new();
    field_bytes(&mut bad_peer, 1, &gen_bytes(3, 50)); // not a peer ID
    field_bytes(&mut bad_peer, 2, &gen_bytes(4, 30)); // not a multiaddr
    field_varint(&mut bad_peer, 3, 77); // unknown connection type
    let mut add_provider = Vec::new();
    field_varint(&mut add_provider, 1, 2); // ADD_PROVIDER
    field_bytes(&mut add_provider, 2, &gen_bytes(5, 34));
    field_bytes(&mut add_provider, 9, &bad_peer);
    cases.push(("ADD_PROVIDER with a garbage provider", frame(&add_provider)));
    let mut get_providers = Vec::new();
    field_varint(&mut get_providers, 1, 3); // GET_PROVIDERS
    field_bytes(&mut get_providers, 2, &gen_bytes(6, 1 << 20)); // a 1 MiB key
    cases.push(("GET_PROVIDERS with a 1 MiB key", frame(&get_providers)));
    let mut put_value = Vec::new();
    field_varint(&mut put_value, 1, 0); // PUT_VALUE
    field_bytes(&mut put_value, 2, b"/pk/x");
    field_bytes(&mut put_value, 3, &gen_bytes(7, 100)); // a record that is not one
    cases.push(("PUT_VALUE with a garbage record", frame(&put_value)));
    let mut find_node_many = Vec::new();
    field_varint(&mut find_node_many, 1, 4); // FIND_NODE
    for _ in 0..10_000 {
        field_bytes(&mut find_node_many, 8, &bad_peer);
    }
    cases.push((
        "FIND_NODE with 10,000 garbage closer peers",
        frame(&find_node_many),
    ));
    let mut wrong_wire = Vec::new();
    field_bytes(&mut wrong_wire, 1, b"type as bytes");
    field_varint(&mut wrong_wire, 2, 5);
    cases.push(("fields with the wrong wire types", frame(&wrong_wire)));
    cases
}

/// Bitswap `Message` fields: wantlist = 1 { entries = 1 { block, priority, cancel,
/// wantType, sendDontHave }, full = 2 }, blocks = 2, payload = 3 { prefix, data },
/// blockPresences = 4 { cid, type }, pendingBytes = 5.
fn malformed_bitswap() -> Cases {
    let mut cases = malformed_common(4 << 20);
    let mut entry = Vec::new();
    field_bytes(&mut entry, 1, &gen_bytes(8, 36)); // not a CID
    field_varint(&mut entry, 4, 9); // unknown want type
    let mut wantlist = Vec::new();
    for _ in 0..20_000 {
        field_bytes(&mut wantlist, 1, &entry);
    }
    let mut msg = Vec::new();
    field_bytes(&mut msg, 1, &wantlist);
    cases.push(("20,000 wants with bad CIDs", frame(&msg)));
    let mut payload = Vec::new();
    field_bytes(&mut payload, 1, &[0x01, 0x55, 0x99, 0xff, 0x01]); // unknown hash
    field_bytes(&mut payload, 2, b"data");
    let mut bad_prefix = Vec::new();
    field_bytes(&mut bad_prefix, 3, &payload);
    let mut no_data = Vec::new();
    field_bytes(&mut no_data, 1, &[0x01, 0x55, 0x12, 0x20]);
    field_bytes(&mut bad_prefix, 3, &no_data);
    cases.push(("payloads with bad prefixes or no data", frame(&bad_prefix)));
    let mut presence = Vec::new();
    field_bytes(&mut presence, 1, b"\x01\x55");
    field_varint(&mut presence, 2, 42);
    let mut presences = Vec::new();
    field_bytes(&mut presences, 4, &presence);
    field_varint(&mut presences, 5, u64::MAX);
    cases.push(("bad presences and pending bytes", frame(&presences)));
    cases
}

/// Every malformed frame on its own stream, for kad and for each Bitswap version; then the
/// node must still be running, must not have panicked, and must still serve: a second
/// daemon finds it as a provider over the DHT and fetches a file from it over Bitswap.
#[test]
fn malformed_kad_and_bitswap_frames_never_break_the_node() {
    let data = gen_bytes(31, 2 << 20);
    let mut a = Daemon::start(Node::new(), &[]);
    let cid = a.node.add(&a.node.write("f.bin", &data), &[]);
    let rogue = Rogue::start(Mode::Corrupt);
    a.node.run(&["swarm", "connect", &rogue.addr]).ok();

    let mut sent = 0;
    let protocols: [(&str, Cases); 4] = [
        ("/ipfs/kad/1.0.0", malformed_kad()),
        ("/ipfs/bitswap/1.2.0", malformed_bitswap()),
        ("/ipfs/bitswap/1.1.0", malformed_bitswap()),
        ("/ipfs/bitswap/1.0.0", malformed_common(4 << 20)),
    ];
    for (protocol, cases) in protocols {
        for (what, bytes) in cases {
            // The node may reset the stream or close the connection: both are fine, as long
            // as it is still there. Reconnect when it dropped us.
            match rogue.send_raw(&a.peer_id, protocol, &bytes) {
                Ok(()) => sent += 1,
                Err(e) => {
                    eprintln!("{what} on {protocol}: {e}");
                    a.node.run(&["swarm", "connect", &rogue.addr]).ok();
                }
            }
            assert!(
                a.is_running(),
                "node exited after {what} on {protocol}:\n{}",
                a.log()
            );
        }
    }
    // Each case went out on a stream the node accepted (so it really read them).
    assert!(sent > 40, "only {sent} streams were accepted");
    let log = a.log();
    assert!(!log.contains("panicked"), "the node panicked:\n{log}");

    // Still a working DHT server and Bitswap server.
    let c = Daemon::start(Node::new(), &["--bootstrap", &a.addr()]);
    kit::wait_for(
        "C to find A as a provider",
        std::time::Duration::from_secs(120),
        || c.node.run(&["findprovs", &cid]).stdout.contains(&a.peer_id),
    );
    let fetched = c.node.run(&["cat", &cid]).ok().raw_stdout;
    assert!(fetched == data, "fetched bytes differ");
    let log = a.log();
    assert!(!log.contains("panicked"), "the node panicked:\n{log}");
    assert!(a.is_running());
}
