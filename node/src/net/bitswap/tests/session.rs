//! Session tests: each scenario drives the state machine with explicit times and checks
//! the actions it asks for.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cid::Cid;
use multihash::Multihash;

use crate::content::cid::{CODEC_RAW, block_cid};
use crate::net::bitswap::message::{
    Block, BlockPresence, Message, PresenceType, ProtocolVersion, WantType,
};
use crate::net::bitswap::prefix::CidPrefix;
use crate::net::bitswap::session::{Action, FailReason, Session, SessionConfig, SessionError};

const V12: ProtocolVersion = ProtocolVersion::V1_2_0;
const MS: Duration = Duration::from_millis(1);

fn data(i: usize) -> Bytes {
    format!("block number {i}").into_bytes().into()
}

fn cid(i: usize) -> Cid {
    block_cid(CODEC_RAW, 1, &data(i))
}

/// `(peer, cid, want type)` of every want sent, in order.
fn wants_sent(actions: &[Action<&'static str>]) -> Vec<(&'static str, Cid, WantType)> {
    actions
        .iter()
        .flat_map(|a| match a {
            Action::SendWants { peer, entries } => entries
                .iter()
                .map(|e| (*peer, e.cid, e.want_type))
                .collect(),
            _ => vec![],
        })
        .collect()
}

fn block_requests(actions: &[Action<&'static str>]) -> Vec<(&'static str, Cid)> {
    wants_sent(actions)
        .into_iter()
        .filter(|(_, _, t)| *t == WantType::Block)
        .map(|(p, c, _)| (p, c))
        .collect()
}

fn cancels(actions: &[Action<&'static str>]) -> Vec<(&'static str, Cid)> {
    actions
        .iter()
        .flat_map(|a| match a {
            Action::SendCancels { peer, cids } => cids.iter().map(|c| (*peer, *c)).collect(),
            _ => vec![],
        })
        .collect()
}

fn delivered(actions: &[Action<&'static str>]) -> Vec<Cid> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deliver { cid, .. } => Some(*cid),
            _ => None,
        })
        .collect()
}

/// A session with peers `a` (answers HAVE after 10 ms) and `b` (after 30 ms) that both have
/// block 0, and the time after both answered. The want-block has gone to `a`.
fn two_haves(config: SessionConfig) -> (Session<&'static str>, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(config);
    s.add_peer("a", V12, t0);
    s.add_peer("b", V12, t0);
    s.want(cid(0), t0).unwrap();
    let sent = wants_sent(&s.drain_actions());
    assert_eq!(
        sent,
        vec![("a", cid(0), WantType::Have), ("b", cid(0), WantType::Have)]
    );
    s.on_have(&"a", &cid(0), t0 + 10 * MS);
    s.on_have(&"b", &cid(0), t0 + 30 * MS);
    assert_eq!(block_requests(&s.drain_actions()), vec![("a", cid(0))]);
    (s, t0 + 30 * MS)
}

#[test]
fn dont_have_moves_the_want_to_the_next_peer() {
    let (mut s, t) = two_haves(SessionConfig::default());
    s.on_dont_have(&"a", &cid(0), t + MS);
    assert_eq!(block_requests(&s.drain_actions()), vec![("b", cid(0))]);
    s.on_block(&"b", cid(0), data(0), t + 2 * MS);
    let actions = s.drain_actions();
    assert_eq!(delivered(&actions), vec![cid(0)]);
    assert!(cancels(&actions).is_empty(), "both peers already answered");
    assert_eq!((s.pending(), s.in_flight()), (0, 0));
}

#[test]
fn timeout_moves_the_want_to_the_next_peer() {
    let config = SessionConfig::default();
    let timeout = config.timeout;
    let (mut s, t) = two_haves(config);
    // The want-block went to `a` when it answered, 20 ms before `b` did.
    let deadline = t - 20 * MS + timeout;
    assert_eq!(s.next_deadline(), Some(deadline));
    s.tick(deadline - MS);
    assert!(s.drain_actions().is_empty(), "not yet");
    s.tick(deadline);
    let actions = s.drain_actions();
    assert_eq!(cancels(&actions), vec![("a", cid(0))]);
    assert_eq!(block_requests(&actions), vec![("b", cid(0))]);
    let a = s.peer(&"a").unwrap().latency.unwrap();
    assert!(a > 1.0, "a's latency estimate took the timeout: {a}");
}

#[test]
fn corrupt_block_earns_a_strike_and_is_fetched_elsewhere() {
    let config = SessionConfig {
        max_strikes: 2,
        ..SessionConfig::default()
    };
    let (mut s, t) = two_haves(config);
    s.on_block(&"a", cid(0), Bytes::from_static(b"forged"), t + MS);
    let actions = s.drain_actions();
    assert!(
        delivered(&actions).is_empty(),
        "a bad block is never delivered"
    );
    assert_eq!(block_requests(&actions), vec![("b", cid(0))]);
    assert_eq!(s.peer(&"a").unwrap().strikes, 1);
    s.on_block(&"b", cid(0), data(0), t + 2 * MS);
    assert_eq!(delivered(&s.drain_actions()), vec![cid(0)]);

    // A second strike excludes `a`, for good.
    s.want(cid(1), t).unwrap();
    s.on_have(&"a", &cid(1), t + MS);
    s.drain_actions();
    s.on_block(
        &"a",
        cid(1),
        Bytes::from_static(b"forged again"),
        t + 2 * MS,
    );
    assert!(s.is_excluded(&"a"));
    s.add_peer("a", V12, t + 3 * MS);
    assert!(s.peer(&"a").is_none());
}

#[test]
fn unsolicited_block_moves_the_peers_matching_want_blocks_elsewhere() {
    let (mut s, t) = two_haves(SessionConfig::default());
    let raw = CidPrefix::of(&cid(0));
    let other = CidPrefix { codec: 0x70, ..raw };
    // A block under another prefix cannot answer a raw want: nothing changes.
    assert!(!s.on_unsolicited(&"a", &other, t + MS));
    // `b` holds no want-block: not concerned, no strike.
    assert!(!s.on_unsolicited(&"b", &raw, t + MS));
    assert_eq!(s.peer(&"b").unwrap().strikes, 0);
    assert!(s.drain_actions().is_empty());

    // Corrupt data from `a` (a CID nobody asked for, same prefix as its want-block).
    assert!(s.on_unsolicited(&"a", &raw, t + MS));
    let actions = s.drain_actions();
    assert_eq!(block_requests(&actions), vec![("b", cid(0))]);
    assert_eq!(cancels(&actions), vec![("a", cid(0))]);
    assert_eq!(s.peer(&"a").unwrap().strikes, 1);
    s.on_block(&"b", cid(0), data(0), t + 2 * MS);
    assert_eq!(delivered(&s.drain_actions()), vec![cid(0)]);
}

#[test]
fn disconnect_mid_transfer_reassigns_the_want() {
    let (mut s, t) = two_haves(SessionConfig::default());
    s.remove_peer(&"a", t + MS);
    assert_eq!(block_requests(&s.drain_actions()), vec![("b", cid(0))]);
    assert_eq!(s.in_flight(), 1);
    // A late block from the departed peer is still good data and is accepted.
    s.on_block(&"a", cid(0), data(0), t + 2 * MS);
    let actions = s.drain_actions();
    assert_eq!(delivered(&actions), vec![cid(0)]);
    assert_eq!(cancels(&actions), vec![("b", cid(0))]);
    assert_eq!(s.in_flight(), 0);
}

#[test]
fn duplicate_wants_are_coalesced() {
    let t = Instant::now();
    let mut s = Session::new(SessionConfig::default());
    s.add_peer("a", V12, t);
    s.want(cid(0), t).unwrap();
    s.want(cid(0), t + MS).unwrap();
    assert_eq!(wants_sent(&s.drain_actions()).len(), 1);
    assert_eq!(s.pending(), 1);
    // The same block twice is delivered once.
    s.on_block(&"a", cid(0), data(0), t + 2 * MS);
    s.on_block(&"a", cid(0), data(0), t + 3 * MS);
    assert_eq!(delivered(&s.drain_actions()), vec![cid(0)]);
}

#[test]
fn window_is_respected_and_spread_across_peers() {
    let config = SessionConfig {
        window: 5,
        per_peer_window: 2,
        ..SessionConfig::default()
    };
    let t = Instant::now();
    let mut s = Session::new(config);
    let peers = ["a", "b", "c"];
    for p in peers {
        s.add_peer(p, V12, t);
    }
    for i in 0..20 {
        s.want(cid(i), t).unwrap();
    }
    s.drain_actions();
    let message = Message {
        presences: (0..20)
            .map(|i| BlockPresence {
                cid: cid(i),
                presence: PresenceType::Have,
            })
            .collect(),
        ..Message::default()
    };
    for p in peers {
        s.on_message(&p, &message, t + MS);
    }
    let requests = block_requests(&s.drain_actions());
    assert_eq!(requests.len(), 5);
    for p in peers {
        let n = requests.iter().filter(|(q, _)| *q == p).count();
        assert!(n <= 2, "{p} has {n} in flight");
    }
    // Earliest wants go first, and each delivery frees exactly one slot.
    assert_eq!(
        requests.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        (0..5).map(cid).collect::<Vec<_>>()
    );
    let (peer, first) = requests[0];
    let block = Message {
        blocks: vec![Block {
            cid: first,
            data: data(0),
        }],
        ..Message::default()
    };
    s.on_message(&peer, &block, t + 2 * MS);
    let actions = s.drain_actions();
    assert_eq!(block_requests(&actions).len(), 1);
    assert_eq!(block_requests(&actions)[0].1, cid(5));
    assert_eq!(s.in_flight(), 5);
    for p in peers {
        assert!(s.peer(&p).unwrap().in_flight <= 2);
    }
}

#[test]
fn older_peers_are_asked_for_blocks_directly() {
    let t = Instant::now();
    let mut s = Session::new(SessionConfig::default());
    s.add_peer("old", ProtocolVersion::V1_1_0, t);
    s.add_peer("ancient", ProtocolVersion::V1_0_0, t);
    s.want(cid(0), t).unwrap();
    let actions = s.drain_actions();
    // Only the 1.1.0 peer can name a CIDv1; neither can answer a want-have.
    assert_eq!(wants_sent(&actions), vec![("old", cid(0), WantType::Block)]);
    let Some(Action::SendWants { entries, .. }) = actions.first() else {
        panic!("expected a want: {actions:?}");
    };
    assert!(!entries[0].send_dont_have);
}

#[test]
fn no_candidates_asks_for_providers_then_uses_them() {
    let t = Instant::now();
    let mut s = Session::new(SessionConfig::default());
    s.want(cid(0), t).unwrap();
    assert_eq!(
        s.drain_actions(),
        vec![Action::FindProviders { cid: cid(0) }]
    );
    s.add_peer("p", V12, t + MS);
    assert_eq!(
        wants_sent(&s.drain_actions()),
        vec![("p", cid(0), WantType::Have)]
    );
    s.on_dont_have(&"p", &cid(0), t + 2 * MS);
    assert_eq!(
        s.drain_actions(),
        vec![Action::FindProviders { cid: cid(0) }]
    );
}

/// A session with the one peer `peer`, asked (want-have) for block 0 at the returned instant;
/// also returns the session's timeout.
fn one_peer_asked(
    peer: &'static str,
    config: SessionConfig,
) -> (Session<&'static str>, Instant, Duration) {
    let timeout = config.timeout;
    let t = Instant::now();
    let mut s = Session::new(config);
    s.add_peer(peer, V12, t);
    s.want(cid(0), t).unwrap();
    s.drain_actions();
    (s, t, timeout)
}

#[test]
fn unanswered_want_haves_time_out() {
    let (mut s, t, timeout) = one_peer_asked("silent", SessionConfig::default());
    s.tick(t + timeout);
    let actions = s.drain_actions();
    assert_eq!(cancels(&actions), vec![("silent", cid(0))]);
    assert!(actions.contains(&Action::FindProviders { cid: cid(0) }));
}

#[test]
fn the_only_holder_is_asked_again_after_a_timeout_until_attempts_run_out() {
    let config = SessionConfig {
        max_attempts: 2,
        ..SessionConfig::default()
    };
    let (mut s, t, timeout) = one_peer_asked("slow", config);
    // The want-have goes unanswered: the peer is paused for this CID, not dropped.
    s.tick(t + timeout);
    assert!(block_requests(&s.drain_actions()).is_empty());
    assert_eq!(s.next_deadline(), Some(t + 2 * timeout));
    s.tick(t + 2 * timeout - MS);
    assert!(
        block_requests(&s.drain_actions()).is_empty(),
        "still paused"
    );
    s.tick(t + 2 * timeout);
    assert_eq!(block_requests(&s.drain_actions()), vec![("slow", cid(0))]);
    // The want-block times out too: one attempt used, asked once more after the pause.
    s.tick(t + 3 * timeout);
    assert_eq!(cancels(&s.drain_actions()), vec![("slow", cid(0))]);
    s.tick(t + 4 * timeout);
    assert_eq!(block_requests(&s.drain_actions()), vec![("slow", cid(0))]);
    s.tick(t + 5 * timeout);
    let failed = Action::Failed {
        cid: cid(0),
        reason: FailReason::AttemptsExhausted { attempts: 2 },
    };
    assert!(s.drain_actions().contains(&failed));
    assert_eq!(s.pending(), 0);
}

#[test]
fn a_late_have_makes_a_timed_out_peer_a_candidate_again() {
    let (mut s, t, timeout) = one_peer_asked("slow", SessionConfig::default());
    s.tick(t + timeout);
    s.drain_actions();
    s.on_have(&"slow", &cid(0), t + timeout + MS);
    assert_eq!(block_requests(&s.drain_actions()), vec![("slow", cid(0))]);
    s.on_block(&"slow", cid(0), data(0), t + timeout + 2 * MS);
    assert_eq!(delivered(&s.drain_actions()), vec![cid(0)]);
}

#[test]
fn cids_fail_after_too_many_attempts() {
    let config = SessionConfig {
        max_attempts: 2,
        ..SessionConfig::default()
    };
    let t = Instant::now();
    let mut s = Session::new(config);
    for p in ["a", "b", "c"] {
        s.add_peer(p, V12, t);
        s.on_have(&p, &cid(0), t);
    }
    s.want(cid(0), t).unwrap();
    for p in ["a", "b", "c"] {
        s.on_have(&p, &cid(0), t + MS);
    }
    let first = block_requests(&s.drain_actions())[0].0;
    s.on_dont_have(&first, &cid(0), t + 2 * MS);
    let second = block_requests(&s.drain_actions())[0].0;
    s.on_dont_have(&second, &cid(0), t + 3 * MS);
    let actions = s.drain_actions();
    let failed = Action::Failed {
        cid: cid(0),
        reason: FailReason::AttemptsExhausted { attempts: 2 },
    };
    assert!(actions.contains(&failed), "{actions:?}");
    assert_eq!((s.pending(), s.in_flight()), (0, 0));
}

#[test]
fn unverifiable_and_excess_wants_are_refused() {
    let t = Instant::now();
    let mut s: Session<&str> = Session::new(SessionConfig {
        max_wants: 1,
        ..SessionConfig::default()
    });
    let blake = Cid::new_v1(CODEC_RAW, Multihash::wrap(0xb220, &[0; 32]).unwrap());
    s.want(blake, t).unwrap();
    assert!(matches!(
        s.drain_actions().as_slice(),
        [Action::Failed {
            reason: FailReason::Unverifiable(_),
            ..
        }]
    ));
    s.want(cid(0), t).unwrap();
    assert_eq!(
        s.want(cid(1), t),
        Err(SessionError::Full {
            cid: cid(1),
            max: 1
        })
    );
}

/// When a slot frees, the candidate with the best measured latency gets it.
#[test]
fn faster_peers_are_preferred_once_measured() {
    let t = Instant::now();
    let mut s = Session::new(SessionConfig {
        window: 1,
        ..SessionConfig::default()
    });
    s.add_peer("fast", V12, t);
    s.add_peer("slow", V12, t);
    s.want(cid(0), t).unwrap();
    s.on_have(&"fast", &cid(0), t + 5 * MS);
    assert_eq!(block_requests(&s.drain_actions()), vec![("fast", cid(0))]);
    // cid(1) waits for the window while both peers say HAVE.
    s.want(cid(1), t + 6 * MS).unwrap();
    s.on_have(&"fast", &cid(1), t + 11 * MS);
    s.on_have(&"slow", &cid(0), t + 200 * MS);
    s.on_have(&"slow", &cid(1), t + 206 * MS);
    assert!(
        block_requests(&s.drain_actions()).is_empty(),
        "window is full"
    );
    s.on_block(&"fast", cid(0), data(0), t + 210 * MS);
    assert_eq!(block_requests(&s.drain_actions()), vec![("fast", cid(1))]);
    let (fast, slow) = (s.peer(&"fast").unwrap(), s.peer(&"slow").unwrap());
    assert!(fast.latency < slow.latency && fast.throughput.is_some());
}
