//! [`Core`]: everything one node knows about the cluster, and the decisions made from it,
//! without I/O. The service ([`super::service`]) holds it behind a mutex, feeds it heartbeats,
//! updates and pin results, persists what [`Core`] reports as changed, and carries out the
//! [`Plan`] it computes: which pins to fetch and pin here, which copies to release.
//!
//! Allocation candidates are this node (unless leaving or drained) plus the members
//! [`Members::candidates`] returns; every node computes the same allocation from the same
//! pinset and membership, so there is no coordinator.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::allocation::{Candidate, allocate};
use super::membership::{Heartbeat, MemberState, Members, Timing};
use super::pinset::{Clock, DrainEntry, Entry, PinSpec, Pinset};
use super::status::{LocalState, PeerReport, PinStatus, aggregate, may_release};

/// What this node says about itself.
#[derive(Debug, Clone, Default)]
pub struct SelfInfo {
    pub peer: String,
    pub zone: Option<String>,
    pub free_space: u64,
    pub addrs: Vec<String>,
    pub leaving: bool,
}

/// The tracker's work for one round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Allocated here and not pinned yet.
    pub pin: Vec<String>,
    /// Held here, no longer needed here (removed, or every new holder has it).
    pub release: Vec<String>,
}

/// How a drain of one peer is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainProgress {
    pub remaining: u32,
}

/// One node's cluster state.
#[derive(Debug)]
pub struct Core {
    pub me: SelfInfo,
    pinset: Pinset,
    digest: [u8; 32],
    clock: Clock,
    members: Members,
    local: BTreeMap<String, (LocalState, Option<String>)>,
    failed_at: HashMap<String, Instant>,
    retry_after: Duration,
}

impl Core {
    pub fn new(me: SelfInfo, pinset: Pinset, timing: Timing, retry_after: Duration) -> Self {
        let clock = Clock::new(me.peer.clone(), pinset.max_time());
        Self {
            me,
            digest: pinset.digest(),
            pinset,
            clock,
            members: Members::new(timing),
            local: BTreeMap::new(),
            failed_at: HashMap::new(),
            retry_after,
        }
    }

    pub fn pinset(&self) -> &Pinset {
        &self.pinset
    }

    pub fn digest_hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Add or replace a pin; the returned entry is to be persisted and broadcast.
    pub fn add_pin(&mut self, cid: &str, spec: PinSpec, now_ms: u64) -> Entry {
        let entry = Entry {
            stamp: self.clock.stamp(now_ms),
            pin: Some(spec),
        };
        self.pinset.merge_pin_tracked(cid, &entry, &mut self.digest);
        entry
    }

    /// Remove a pin (a tombstone); `None` when the CID is not pinned in the cluster.
    pub fn remove_pin(&mut self, cid: &str, now_ms: u64) -> Option<Entry> {
        self.pinset.get(cid)?;
        let entry = Entry {
            stamp: self.clock.stamp(now_ms),
            pin: None,
        };
        self.pinset.merge_pin_tracked(cid, &entry, &mut self.digest);
        Some(entry)
    }

    /// Start or stop draining `peer`; the entry is to be persisted and broadcast.
    pub fn set_drain(&mut self, peer: &str, draining: bool, now_ms: u64) -> DrainEntry {
        let entry = DrainEntry {
            stamp: self.clock.stamp(now_ms),
            draining,
        };
        self.pinset
            .merge_drain_tracked(peer, &entry, &mut self.digest);
        entry
    }

    /// Merge what a member sent; returns the pinset delta that changed ours (to persist).
    pub fn merge(&mut self, other: &Pinset) -> Pinset {
        self.clock.observe(other.max_time());
        let mut delta = Pinset::default();
        for (cid, e) in &other.pins {
            if self.pinset.merge_pin_tracked(cid, e, &mut self.digest) {
                delta.pins.insert(cid.clone(), e.clone());
            }
        }
        for (peer, e) in &other.drains {
            if self.pinset.merge_drain_tracked(peer, e, &mut self.digest) {
                delta.drains.insert(peer.clone(), e.clone());
            }
        }
        delta
    }

    /// Record a member's heartbeat. Returns whether we should pull its full state (digests
    /// differ).
    pub fn observe(&mut self, hb: Heartbeat, now: Instant) -> bool {
        let differs = hb.digest != self.digest_hex();
        self.members.observe(hb, now);
        differs
    }

    pub fn members(&self) -> &Members {
        &self.members
    }

    pub fn members_mut(&mut self) -> &mut Members {
        &mut self.members
    }

    /// Our heartbeat.
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            peer: self.me.peer.clone(),
            addrs: self.me.addrs.clone(),
            zone: self.me.zone.clone(),
            free_space: self.me.free_space,
            leaving: self.me.leaving,
            digest: self.digest_hex(),
            states: self.local.clone(),
            known: self.members.addresses(),
        }
    }

    fn self_candidate(&self) -> Option<Candidate> {
        (!self.me.leaving && !self.pinset.is_draining(&self.me.peer)).then(|| Candidate {
            peer: self.me.peer.clone(),
            zone: self.me.zone.clone(),
            free_space: self.me.free_space,
        })
    }

    /// Peers that may hold pins now.
    pub fn candidates(&self, now: Instant) -> Vec<Candidate> {
        let mut c = self.members.candidates(now, |p| self.pinset.is_draining(p));
        c.extend(self.self_candidate());
        c
    }

    /// Who should hold `cid`.
    pub fn allocation(&self, cid: &str, spec: &PinSpec, candidates: &[Candidate]) -> Vec<String> {
        allocate(cid, spec.replication_max as usize, candidates)
    }

    /// Reports of live members and ourselves about `cid`.
    pub fn reports(&self, cid: &str, now: Instant) -> Vec<PeerReport> {
        let mut r = self.members.reports(cid, now);
        if let Some((state, error)) = self.local.get(cid) {
            r.push(PeerReport {
                peer_id: self.me.peer.clone(),
                state: *state,
                error: error.clone(),
            });
        }
        r
    }

    /// The cluster status of one pin, `None` when not in the pinset.
    pub fn status(&self, cid: &str, now: Instant) -> Option<PinStatus> {
        let spec = self.pinset.get(cid)?;
        let candidates = self.candidates(now);
        Some(self.status_with(cid, spec, &candidates, now))
    }

    /// [`Core::status`] with the candidates computed once for many pins.
    pub fn status_with(
        &self,
        cid: &str,
        spec: &PinSpec,
        candidates: &[Candidate],
        now: Instant,
    ) -> PinStatus {
        let alloc = self.allocation(cid, spec, candidates);
        aggregate(cid, spec, &alloc, &self.reports(cid, now))
    }

    /// Every pin's status.
    pub fn statuses(&self, now: Instant) -> Vec<PinStatus> {
        let candidates = self.candidates(now);
        self.pinset
            .live()
            .map(|(cid, spec)| self.status_with(cid, spec, &candidates, now))
            .collect()
    }

    pub fn local_state(&self, cid: &str) -> Option<LocalState> {
        self.local.get(cid).map(|(s, _)| *s)
    }

    /// Record our own copy's state.
    pub fn set_local(&mut self, cid: &str, state: LocalState, error: Option<String>, now: Instant) {
        if state == LocalState::Failed {
            self.failed_at.insert(cid.to_owned(), now);
        } else {
            self.failed_at.remove(cid);
        }
        self.local.insert(cid.to_owned(), (state, error));
    }

    pub fn forget_local(&mut self, cid: &str) {
        self.local.remove(cid);
        self.failed_at.remove(cid);
    }

    /// This round's work for the tracker.
    pub fn plan(&self, now: Instant) -> Plan {
        let candidates = self.candidates(now);
        let me = self.me.peer.as_str();
        let mut plan = Plan::default();
        for (cid, spec) in self.pinset.live() {
            let alloc = self.allocation(cid, spec, &candidates);
            let local = self.local.get(cid).map(|(s, _)| *s);
            if alloc.iter().any(|p| p == me) {
                let due = match local {
                    None | Some(LocalState::Queued) => true,
                    Some(LocalState::Failed) => self
                        .failed_at
                        .get(cid)
                        .is_none_or(|t| now.duration_since(*t) >= self.retry_after),
                    _ => false,
                };
                if due {
                    plan.pin.push(cid.to_owned());
                }
            } else {
                // Not ours any more: a copy goes once the new holders have it; a pin that
                // never completed here goes at once.
                let release = match local {
                    Some(LocalState::Pinned) => {
                        may_release(me, spec, &alloc, &self.members.reports(cid, now))
                    }
                    Some(LocalState::Queued | LocalState::Failed) => true,
                    _ => false,
                };
                if release {
                    plan.release.push(cid.to_owned());
                }
            }
        }
        for (cid, (state, _)) in &self.local {
            if self.pinset.get(cid).is_none() && *state != LocalState::Pinning {
                plan.release.push(cid.clone());
            }
        }
        plan
    }

    /// Pins `peer` still holds that nobody else holds enough of yet.
    pub fn drain_progress(&self, peer: &str, now: Instant) -> DrainProgress {
        let candidates: Vec<Candidate> = self
            .candidates(now)
            .into_iter()
            .filter(|c| c.peer != peer)
            .collect();
        let mut remaining = 0u32;
        for (cid, spec) in self.pinset.live() {
            let reports = self.reports(cid, now);
            let holds = reports
                .iter()
                .any(|r| r.peer_id == peer && r.state == LocalState::Pinned);
            if !holds {
                continue;
            }
            let alloc = self.allocation(cid, spec, &candidates);
            if !may_release(peer, spec, &alloc, &reports) {
                remaining += 1;
            }
        }
        DrainProgress { remaining }
    }

    /// A member's state, or ours.
    pub fn member_state(&self, peer: &str, now: Instant) -> Option<MemberState> {
        if peer == self.me.peer {
            return Some(if self.me.leaving {
                MemberState::Leaving
            } else {
                MemberState::Alive
            });
        }
        self.members.state(peer, now)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

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

    fn hb(c: &Core) -> Heartbeat {
        c.heartbeat()
    }

    /// Five simulated nodes exchanging heartbeats and states in memory.
    struct Sim {
        nodes: Vec<Core>,
        up: Vec<bool>,
        now: Instant,
    }

    impl Sim {
        fn new(n: usize) -> Self {
            Self {
                nodes: (0..n).map(|i| core(&format!("n{i}"))).collect(),
                up: vec![true; n],
                now: Instant::now(),
            }
        }

        /// One round: heartbeats and full sync among up nodes, then each tracker acts
        /// (pins complete at once).
        fn round(&mut self) {
            self.now += Duration::from_secs(1);
            let n = self.nodes.len();
            for i in 0..n {
                for j in 0..n {
                    if i != j && self.up[i] && self.up[j] {
                        let h = hb(&self.nodes[i]);
                        let set = self.nodes[i].pinset().clone();
                        self.nodes[j].observe(h, self.now);
                        self.nodes[j].merge(&set);
                    }
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
}
