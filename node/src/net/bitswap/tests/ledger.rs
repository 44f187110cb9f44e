//! Server tests: wantlist bookkeeping, answers per want type and version, message budgets,
//! and fairness between a greedy peer and a modest one.

use std::collections::HashMap;

use cid::Cid;

use crate::content::cid::{CODEC_RAW, block_cid};
use crate::net::bitswap::ledger::{Lookup, Response, Server, ServerConfig};
use crate::net::bitswap::message::{
    MAX_MESSAGE_SIZE, Message, PresenceType, ProtocolVersion, WantType, WantlistEntry,
};

const V12: ProtocolVersion = ProtocolVersion::V1_2_0;

/// An in-memory store of `count` blocks of `size` bytes, tagged so CIDs differ per test.
fn store(tag: &str, count: usize, size: usize) -> (Vec<Cid>, HashMap<Cid, Vec<u8>>) {
    let mut map = HashMap::new();
    let cids = (0..count)
        .map(|i| {
            let mut data = format!("{tag}-{i}-").into_bytes();
            data.resize(size.max(data.len()), 0xab);
            let cid = block_cid(CODEC_RAW, 1, &data);
            map.insert(cid, data);
            cid
        })
        .collect();
    (cids, map)
}

fn wants(cids: &[Cid], want_type: WantType, send_dont_have: bool) -> Message {
    Message {
        wantlist: cids
            .iter()
            .map(|c| WantlistEntry::want(*c, want_type, 1, send_dont_have))
            .collect(),
        ..Message::default()
    }
}

fn serve(
    server: &mut Server<&'static str>,
    blocks: &HashMap<Cid, Vec<u8>>,
) -> Option<Response<&'static str>> {
    server.serve_next(|c| blocks.get(c).map(Vec::len), |c| blocks.get(c).cloned())
}

#[test]
fn answers_each_want_type() {
    let (have, blocks) = store("have", 2, 10);
    let missing = block_cid(CODEC_RAW, 1, b"missing");
    let mut server = Server::new(ServerConfig::default());
    let msg = Message {
        wantlist: vec![
            WantlistEntry::want(have[0], WantType::Have, 1, true),
            WantlistEntry::want(have[1], WantType::Block, 1, true),
            WantlistEntry::want(missing, WantType::Have, 1, true),
        ],
        ..Message::default()
    };
    assert_eq!(server.receive(&"a", V12, &msg).added, 3);
    let response = serve(&mut server, &blocks).unwrap();
    let m = response.message;
    assert_eq!(m.blocks.len(), 1);
    assert_eq!(m.blocks[0].cid, have[1]);
    let presences: Vec<_> = m.presences.iter().map(|p| (p.cid, p.presence)).collect();
    assert_eq!(
        presences,
        vec![
            (have[0], PresenceType::Have),
            (missing, PresenceType::DontHave)
        ]
    );
    assert_eq!(server.wantlist_len(&"a"), 0, "answered wants are done");
    let stats = server.stats(&"a").unwrap();
    assert_eq!((stats.blocks_sent, stats.bytes_sent), (1, 10));
    assert!(serve(&mut server, &blocks).is_none());
}

#[test]
fn missing_blocks_without_send_dont_have_get_silence() {
    let missing = block_cid(CODEC_RAW, 1, b"missing");
    let mut server = Server::new(ServerConfig::default());
    server.receive(&"a", V12, &wants(&[missing], WantType::Block, false));
    assert!(serve(&mut server, &HashMap::new()).is_none());
    // A 1.1.0 peer can neither ask for nor receive presences.
    server.receive(
        &"b",
        ProtocolVersion::V1_1_0,
        &wants(&[missing], WantType::Block, true),
    );
    assert!(serve(&mut server, &HashMap::new()).is_none());
}

#[test]
fn full_wantlists_replace_and_cancels_remove() {
    let (cids, _) = store("wl", 4, 1);
    let mut server: Server<&str> = Server::new(ServerConfig::default());
    server.receive(&"a", V12, &wants(&cids[..3], WantType::Block, false));
    let cancel = Message {
        wantlist: vec![WantlistEntry::cancel(cids[0])],
        ..Message::default()
    };
    assert_eq!(server.receive(&"a", V12, &cancel).cancelled, 1);
    assert_eq!(server.wantlist_len(&"a"), 2);
    let mut full = wants(&cids[2..], WantType::Block, false);
    full.full = true;
    let outcome = server.receive(&"a", V12, &full);
    assert_eq!((outcome.added, outcome.cancelled), (1, 1));
    assert_eq!(server.wantlist_len(&"a"), 2);
    // Repeating a want updates it instead of adding a second one.
    assert_eq!(server.receive(&"a", V12, &full).added, 0);
    assert_eq!(server.wantlist_len(&"a"), 2);
}

#[test]
fn wantlists_are_capped_by_priority() {
    let config = ServerConfig {
        max_wants_per_peer: 100,
        ..ServerConfig::default()
    };
    let (cids, _) = store("cap", 103, 1);
    let mut server: Server<&str> = Server::new(config);
    let outcome = server.receive(&"a", V12, &wants(&cids[..101], WantType::Block, false));
    assert_eq!((outcome.added, outcome.dropped), (100, 1));
    let urgent = Message {
        wantlist: vec![
            WantlistEntry::want(cids[101], WantType::Block, 5, false),
            WantlistEntry::want(cids[102], WantType::Block, 0, false),
        ],
        ..Message::default()
    };
    let outcome = server.receive(&"a", V12, &urgent);
    assert_eq!(
        (outcome.added, outcome.dropped),
        (1, 2),
        "evicts for 5, refuses 0"
    );
    assert_eq!(server.wantlist_len(&"a"), 100);
    assert_eq!(server.stats(&"a").unwrap().wants_dropped, 3);
    // The urgent want is served first.
    let work = server.next_work().unwrap();
    assert_eq!(work.wants[0].cid, cids[101]);
}

#[test]
fn cancel_while_looking_up_is_honoured() {
    let (cids, blocks) = store("race", 2, 10);
    let mut server = Server::new(ServerConfig::default());
    server.receive(&"a", V12, &wants(&cids, WantType::Block, false));
    let work = server.next_work().unwrap();
    let cancel = Message {
        wantlist: vec![WantlistEntry::cancel(cids[0])],
        ..Message::default()
    };
    server.receive(&"a", V12, &cancel);
    let lookups = vec![Lookup::Present { size: 10 }; 2];
    let plan = server.plan(work, &lookups);
    assert_eq!(plan.reads().copied().collect::<Vec<_>>(), vec![cids[1]]);
    let read = plan.reads().map(|c| (*c, blocks.get(c).cloned())).collect();
    let response = server.build_response(plan, read).unwrap();
    assert_eq!(response.message.blocks.len(), 1);
    // A peer that disconnects mid-turn gets nothing.
    server.receive(&"b", V12, &wants(&cids, WantType::Block, false));
    let work = server.next_work().unwrap();
    server.peer_disconnected(&"b");
    let plan = server.plan(work, &lookups);
    assert!(server.build_response(plan, vec![]).is_none());
}

/// Blocks are batched up to the target size, never past the message limit, and all sent.
#[test]
fn responses_respect_the_message_budget() {
    let (cids, blocks) = store("big", 12, 700 << 10);
    let mut server = Server::new(ServerConfig::default());
    server.receive(&"a", V12, &wants(&cids, WantType::Block, false));
    let mut sent = 0;
    let mut messages = 0;
    while let Some(r) = serve(&mut server, &blocks) {
        let len = r.message.encode(r.version).len();
        assert!(len <= MAX_MESSAGE_SIZE, "{len}");
        assert!(r.message.blocks.len() <= 2, "about 1 MiB per message");
        sent += r.message.blocks.len();
        messages += 1;
    }
    assert_eq!(sent, 12);
    assert!(messages >= 6);
}

/// A greedy peer with 5,000 wants cannot starve a modest peer with 3.
#[test]
fn greedy_peer_does_not_starve_modest_peer() {
    let (greedy, mut blocks) = store("greedy", 5000, 4 << 10);
    let (modest, small) = store("modest", 3, 4 << 10);
    blocks.extend(small);
    let mut server = Server::new(ServerConfig::default());
    server.receive(&"greedy", V12, &wants(&greedy, WantType::Block, false));
    server.receive(&"modest", V12, &wants(&modest, WantType::Block, false));
    let mut modest_served = 0;
    for round in 0..3 {
        let r = serve(&mut server, &blocks).unwrap();
        if r.peer == "modest" {
            modest_served += r.message.blocks.len();
            assert!(round <= 1, "modest peer waited {round} rounds");
        }
    }
    assert_eq!(modest_served, 3);
    assert_eq!(server.wantlist_len(&"modest"), 0);
}

/// Deficit round robin shares bytes, not messages: a peer wanting 1 MiB blocks and one
/// wanting 16 KiB blocks receive about the same number of bytes over many rounds.
#[test]
fn bytes_are_shared_fairly_whatever_the_block_size() {
    let (large, mut blocks) = store("large", 40, 1 << 20);
    let (small, more) = store("small", 4000, 16 << 10);
    blocks.extend(more);
    let mut server = Server::new(ServerConfig::default());
    server.receive(&"large", V12, &wants(&large, WantType::Block, false));
    server.receive(&"small", V12, &wants(&small, WantType::Block, false));
    for _ in 0..60 {
        serve(&mut server, &blocks).unwrap();
    }
    let large_bytes = server.stats(&"large").unwrap().bytes_sent as f64;
    let small_bytes = server.stats(&"small").unwrap().bytes_sent as f64;
    let ratio = large_bytes / small_bytes;
    assert!(
        (0.7..1.4).contains(&ratio),
        "large {large_bytes} vs small {small_bytes}"
    );
}
