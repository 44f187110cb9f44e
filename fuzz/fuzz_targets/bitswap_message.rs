//! Bitswap message decoding of arbitrary bytes, framed and unframed: never panics, and
//! whatever decodes re-encodes (for 1.2.0, which carries every field) to bytes that decode to
//! the same message.
//!
//! A decoded message then goes where the node sends one: into the serving ledger
//! (`Server::receive`, then turns until no work is left, with store answers derived from the
//! CIDs) and into a fetch `Session` that wants every CID the message names. Neither may
//! panic, and every turn must end.
#![no_main]

use std::time::{Duration, Instant};

use distribute::net::bitswap::frame::{decode_framed, frame_header};
use distribute::net::bitswap::ledger::{Server, ServerConfig};
use distribute::net::bitswap::message::{Message, ProtocolVersion};
use distribute::net::bitswap::session::{Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V1_0_0,
    ProtocolVersion::V1_1_0,
    ProtocolVersion::V1_2_0,
];

/// The store's pretend answer for a CID: present or not, and how big, from its digest.
fn stored_size(cid: &cid::Cid) -> Option<usize> {
    let digest = cid.hash().digest();
    let first = usize::from(*digest.first()?);
    (first % 3 != 0).then_some(first * 4096)
}

fn serve(msg: &Message, version: ProtocolVersion) {
    let mut server = Server::new(ServerConfig {
        max_wants_per_peer: 64,
        max_batch_wants: 8,
        target_message_bytes: 256 << 10,
        quantum_bytes: 300 << 10,
    });
    server.receive(&1u8, version, msg);
    server.receive(&2u8, version, msg);
    // Every want is answered, dropped or requeued with credit growing each turn, so the
    // work runs out; the bound only turns a livelock into a crash report.
    let mut turns = 0;
    while server
        .serve_next(stored_size, |c| stored_size(c).map(|n| vec![0; n]))
        .is_some()
    {
        turns += 1;
        assert!(turns < 10_000, "serving never ends");
    }
    server.peer_disconnected(&1);
}

fn fetch(msg: Message, version: ProtocolVersion) {
    let now = Instant::now();
    let mut session = Session::new(SessionConfig::default());
    for cid in msg
        .wantlist
        .iter()
        .map(|e| e.cid)
        .chain(msg.presences.iter().map(|p| p.cid))
        .chain(msg.blocks.iter().map(|b| b.cid))
    {
        let _ = session.want(cid, now);
    }
    session.add_peer(1u8, version, now);
    session.add_peer(2u8, version, now);
    session.on_message(&2, &msg, now);
    session.on_decoded_message(&1, msg, now);
    let _ = session.drain_actions();
    session.tick(now + Duration::from_secs(3600));
    session.remove_peer(&1, now);
    let _ = session.drain_actions();
}

fuzz_target!(|data: &[u8]| {
    let _ = frame_header(data);
    if let Ok(Some((_, used))) = decode_framed(data) {
        assert!(used <= data.len());
    }
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let _ = Message::decode(data);
    if let Ok(msg) = Message::decode(body) {
        let bytes = msg.encode(ProtocolVersion::V1_2_0);
        let again = Message::decode(&bytes).ok();
        let expected = Message {
            rejected: Vec::new(),
            rejected_count: 0,
            ..msg.clone()
        };
        assert_eq!(again, Some(expected));
        let version = VERSIONS[usize::from(selector) % VERSIONS.len()];
        serve(&msg, version);
        fetch(msg, version);
    }
});
