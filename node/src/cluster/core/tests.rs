//! Tests of `Core`: unit tests of planning and status, and a simulated cluster (`Sim`) of
//! several cores exchanging heartbeats, for replication, failure, restart and leaving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::super::membership::HeldSet;
use super::*;

const T: Timing = Timing {
    heartbeat_timeout: Duration::from_secs(3),
    rereplicate_after: Duration::from_secs(5),
};

fn spec(n: u32) -> PinSpec {
    PinSpec {
        name: String::new(),
        replication_min: n,
        replication_max: n,
        size: None,
        created_ms: 0,
        metadata: BTreeMap::new(),
    }
}

fn core(peer: &str) -> Core {
    let me = SelfInfo {
        peer: peer.into(),
        free_space: 10 << 30,
        ..SelfInfo::default()
    };
    Core::new(me, Pinset::default(), T, Duration::from_secs(1))
}

/// Five simulated nodes exchanging heartbeats and states in memory.
struct Sim {
    nodes: Vec<Core>,
    up: Vec<bool>,
    now: Instant,
    /// Wall clock, milliseconds.
    ms: u64,
}

impl Sim {
    fn new(n: usize) -> Self {
        Self {
            nodes: (0..n).map(|i| core(&format!("n{i}"))).collect(),
            up: vec![true; n],
            now: Instant::now(),
            ms: 1_000,
        }
    }

    /// One round: heartbeats and full sync among up nodes, then each tracker acts
    /// (pins complete at once).
    fn round(&mut self) {
        self.now += Duration::from_secs(1);
        self.ms += 1_000;
        let n = self.nodes.len();
        for i in 0..n {
            if !self.up[i] {
                continue;
            }
            let h = self.nodes[i].heartbeat();
            let set = self.nodes[i].pinset().clone();
            let peer = h.peer.clone();
            for j in 0..n {
                if i != j && self.up[j] {
                    self.nodes[j].observe(h.clone(), self.now);
                    if !self.nodes[j].members().held_in_sync(&peer) {
                        let held = HeldSet::from_cids(self.nodes[i].held_cids());
                        self.nodes[j].members_mut().set_held(&peer, held);
                    }
                    self.nodes[j].merge_state(&set);
                }
            }
        }
        for i in 0..n {
            if self.up[i] {
                let ms = self.ms;
                self.nodes[i].prune_tombstones(ms);
            }
        }
        for i in 0..n {
            if !self.up[i] {
                continue;
            }
            let plan = self.nodes[i].plan(self.now);
            for cid in plan.pin {
                self.nodes[i].set_local(&cid, LocalState::Pinned, None, self.now);
            }
            for cid in plan.release {
                self.nodes[i].forget_local(&cid);
            }
        }
    }

    fn holders(&self, cid: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].local_state(cid) == Some(LocalState::Pinned))
            .collect()
    }

    /// Holders that are up never drop below `min` in any round of `rounds`.
    fn run_checking(&mut self, cid: &str, min: usize, rounds: usize) {
        for _ in 0..rounds {
            self.round();
            let live = self
                .holders(cid)
                .into_iter()
                .filter(|i| self.up[*i])
                .count();
            assert!(live >= min, "{cid} fell to {live} live holders");
        }
    }
}

#[test]
fn pins_reach_exactly_the_replication_factor() {
    let mut sim = Sim::new(5);
    sim.round();
    let now = sim.now;
    sim.nodes[0].add_pin("cid", spec(3), 1);
    for _ in 0..3 {
        sim.round();
    }
    assert_eq!(sim.holders("cid").len(), 3);
    let status = sim.nodes[4]
        .status("cid", now + Duration::from_secs(3))
        .unwrap();
    assert_eq!(status.pinned, 3);
    assert_eq!(status.status, super::super::status::ClusterState::Pinned);
}

#[test]
fn a_dead_holder_is_replaced_after_the_grace_period_and_its_return_leaves_three() {
    let mut sim = Sim::new(5);
    sim.round();
    sim.nodes[0].add_pin("cid", spec(3), 1);
    for _ in 0..3 {
        sim.round();
    }
    let before = sim.holders("cid");
    let dead = before[0];
    sim.up[dead] = false;
    for _ in 0..8 {
        sim.round();
    }
    let live: Vec<_> = sim
        .holders("cid")
        .into_iter()
        .filter(|i| *i != dead)
        .collect();
    assert_eq!(live.len(), 3, "a new holder took over: {live:?}");
    sim.up[dead] = true;
    sim.run_checking("cid", 3, 6);
    assert_eq!(sim.holders("cid").len(), 3, "no fourth permanent copy");
}

#[test]
fn leaving_node_is_replaced_before_it_releases() {
    let mut sim = Sim::new(5);
    sim.round();
    sim.nodes[0].add_pin("cid", spec(3), 1);
    for _ in 0..3 {
        sim.round();
    }
    let leaver = sim.holders("cid")[0];
    sim.nodes[leaver].me.leaving = true;
    // Its own copy stays until the new holder reports pinned.
    sim.run_checking("cid", 3, 4);
    assert_eq!(sim.holders("cid").len(), 3);
    assert!(!sim.holders("cid").contains(&leaver));
    let now = sim.now;
    assert_eq!(
        sim.nodes[leaver]
            .drain_progress(&format!("n{leaver}"), now)
            .remaining,
        0
    );
}

#[test]
fn a_leaver_does_not_wait_for_copies_the_cluster_cannot_make() {
    let mut sim = Sim::new(3);
    sim.round();
    sim.nodes[0].add_pin("big", spec(5), 1);
    sim.nodes[0].add_pin("ok", spec(2), 1);
    for _ in 0..3 {
        sim.round();
    }
    assert_eq!(
        sim.holders("big").len(),
        3,
        "every member holds the oversized pin"
    );
    let leaver = sim.holders("ok")[0];
    sim.nodes[leaver].me.leaving = true;
    let progress = |sim: &Sim| {
        sim.nodes[leaver]
            .drain_progress(&format!("n{leaver}"), sim.now)
            .remaining
    };
    assert!(progress(&sim) >= 1, "\"ok\" still needs a new holder");
    sim.run_checking("ok", 2, 4);
    assert_eq!(progress(&sim), 0, "the other two hold \"big\" already");
}

#[test]
fn removed_pins_are_released_everywhere() {
    let mut sim = Sim::new(4);
    sim.round();
    sim.nodes[1].add_pin("cid", spec(2), 1);
    sim.round();
    sim.round();
    assert_eq!(sim.holders("cid").len(), 2);
    sim.nodes[3].remove_pin("cid", 2).unwrap();
    sim.round();
    sim.round();
    assert!(sim.holders("cid").is_empty());
}

#[test]
fn replication_over_the_cluster_size_fails_with_a_reason_and_others_are_fine() {
    let mut sim = Sim::new(3);
    sim.round();
    sim.nodes[0].add_pin("big", spec(5), 1);
    sim.nodes[0].add_pin("ok", spec(2), 1);
    sim.round();
    sim.round();
    let now = sim.now;
    let big = sim.nodes[2].status("big", now).unwrap();
    assert_eq!(big.status, super::super::status::ClusterState::Failed);
    assert!(big.error.unwrap().contains("replication-min 5"));
    let ok = sim.nodes[2].status("ok", now).unwrap();
    assert_eq!(ok.status, super::super::status::ClusterState::Pinned);
}

#[test]
fn a_pruned_tombstone_does_not_let_a_stale_member_resurrect_the_pin() {
    let mut sim = Sim::new(3);
    for node in &mut sim.nodes {
        node.set_tombstone_ttl(Duration::from_secs(5));
    }
    sim.round();
    let ms = sim.ms;
    sim.nodes[0].add_pin("cid", spec(1), ms);
    sim.round();
    sim.round();
    assert!(sim.nodes.iter().all(|n| n.pinset().get("cid").is_some()));

    // Node 2 is cut off holding the live entry; the pin is removed meanwhile.
    sim.up[2] = false;
    let ms = sim.ms;
    sim.nodes[1].remove_pin("cid", ms).unwrap();
    for _ in 0..10 {
        sim.round();
    }
    for i in [0, 1] {
        assert!(
            sim.nodes[i].pinset().pins.contains_key("cid"),
            "a down member that is still known keeps the tombstone alive"
        );
    }

    // Node 2 is forgotten: the tombstone is past its TTL and acknowledged by every
    // member left, so it goes.
    for i in [0, 1] {
        let now = sim.now;
        sim.nodes[i]
            .members_mut()
            .expire(now, Duration::from_secs(3));
    }
    sim.round();
    for i in [0, 1] {
        assert!(!sim.nodes[i].pinset().pins.contains_key("cid"), "pruned");
        assert!(sim.nodes[i].horizon() > 0);
    }
    assert!(sim.nodes[2].pinset().get("cid").is_some(), "still stale");

    // Node 2 returns: anti-entropy from it cannot bring the pin back, and it drops its
    // stale entry once it merges a pruned state.
    sim.up[2] = true;
    let stale = sim.nodes[2].pinset().clone();
    assert!(sim.nodes[0].merge_state(&stale).0.pins.is_empty());
    assert!(sim.nodes[0].merge(&stale).pins.is_empty(), "nor as a delta");
    for _ in 0..3 {
        sim.round();
    }
    for node in &sim.nodes {
        assert!(node.pinset().get("cid").is_none(), "{}", node.me.peer);
        assert_eq!(node.digest_hex(), sim.nodes[0].digest_hex(), "converged");
    }
    assert!(sim.holders("cid").is_empty());

    // The CID can be pinned again: new stamps are above the horizon.
    let ms = sim.ms;
    sim.nodes[2].add_pin("cid", spec(1), ms);
    sim.round();
    sim.round();
    assert!(sim.nodes.iter().all(|n| n.pinset().get("cid").is_some()));
    assert_eq!(sim.holders("cid").len(), 1);
}

#[test]
fn tombstones_wait_for_the_ttl_and_every_acknowledgement() {
    let mut sim = Sim::new(2);
    for node in &mut sim.nodes {
        node.set_tombstone_ttl(Duration::from_secs(30));
    }
    sim.round();
    let ms = sim.ms;
    sim.nodes[0].add_pin("cid", spec(1), ms);
    sim.round();
    let ms = sim.ms;
    sim.nodes[0].remove_pin("cid", ms).unwrap();
    for _ in 0..20 {
        sim.round();
    }
    assert!(
        sim.nodes[0].pinset().pins.contains_key("cid"),
        "younger than the TTL"
    );
    for _ in 0..15 {
        sim.round();
    }
    assert!(
        sim.nodes
            .iter()
            .all(|n| !n.pinset().pins.contains_key("cid"))
    );
    assert_eq!(sim.nodes[0].digest_hex(), sim.nodes[1].digest_hex());
}

#[test]
fn a_heartbeat_of_ten_thousand_pins_is_small() {
    let mut node = core("n0");
    let now = Instant::now();
    for i in 0..10_000 {
        let cid = format!("bafkreih{i:052}");
        node.set_local(&cid, LocalState::Pinned, None, now);
    }
    node.set_local("bafkreipending", LocalState::Pinning, None, now);
    let secret = super::super::wire::Secret::from_file_text(b"k").unwrap();
    let size = |hb: Heartbeat| {
        super::super::wire::encode(&secret, "n0", &super::super::wire::Message::Heartbeat(hb))
            .unwrap()
            .len()
    };
    let first = node.heartbeat();
    assert_eq!(first.held_count, 10_000);
    assert_eq!(first.held_added.len(), MAX_HELD_DELTA);
    assert!(size(first) < 12 * 1024, "changes are bounded");
    let steady = node.heartbeat();
    assert_eq!(steady.states.len(), 1, "only the copy not in steady state");
    assert!(steady.held_added.is_empty());
    let bytes = size(steady);
    assert!(
        bytes < 2 * 1024,
        "a steady 10k-pin heartbeat is {bytes} bytes"
    );

    // A receiver that missed the changes pulls the set, then follows the deltas.
    let mut other = core("n1");
    let hb = node.heartbeat();
    other.observe(hb, now);
    assert!(!other.members().held_in_sync("n0"));
    other
        .members_mut()
        .set_held("n0", HeldSet::from_cids(node.held_cids()));
    assert!(other.members().held_in_sync("n0"));
    node.forget_local(&format!("bafkreih{:052}", 7));
    node.set_local("bafkreipending", LocalState::Pinned, None, now);
    let hb = node.heartbeat();
    assert_eq!((hb.held_added.len(), hb.held_removed.len()), (1, 1));
    other.observe(hb, now);
    assert!(other.members().held_in_sync("n0"));
    assert_eq!(
        other.reports("bafkreipending", now)[0].state,
        LocalState::Pinned
    );
}
