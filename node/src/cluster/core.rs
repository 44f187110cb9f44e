//! [`Core`]: everything one node knows about the cluster, and the decisions made from it,
//! without I/O. The service ([`super::service`]) holds it behind a mutex, feeds it heartbeats,
//! updates and pin results, persists what [`Core`] reports as changed, and carries out the
//! [`Plan`] it computes: which pins to fetch and pin here, which copies to release.
//!
//! Allocation candidates are this node (unless leaving or drained) plus the members
//! [`Members::candidates`] returns; every node computes the same allocation from the same
//! pinset and membership, so there is no coordinator.
//!
//! Tombstone pruning (the rule is in [`super::pinset`]'s docs) is tracked here: a local
//! `version` counts changes to the set, each tombstone remembers the version it arrived at,
//! and each member the version at which its heartbeat digest last equalled ours.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::allocation::{Candidate, allocate};
use super::membership::{
    Heartbeat, MAX_HELD_DELTA, MAX_STATES, MemberState, Members, Timing, held_hash, xor,
};
use super::pinset::{Clock, DrainEntry, Entry, PinSpec, Pinset};
use super::status::{LocalState, PeerReport, PinStatus, aggregate, may_leave, may_release};

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
    /// Our own copies' states, keyed by the pinset's own key of each CID (one allocation
    /// for both while the pin is in the set).
    local: BTreeMap<Arc<str>, LocalState>,
    /// When and why our copies failed (only failed ones: most never do).
    failures: HashMap<String, (Instant, Option<String>)>,
    retry_after: Duration,
    /// Bumped on every change of the pinset.
    version: u64,
    /// Tombstones, with the version at which each arrived.
    tomb_since: HashMap<String, u64>,
    /// Per member: our version when its heartbeat digest last equalled ours.
    acks: HashMap<String, u64>,
    tombstone_ttl_ms: u64,
    /// Count and digest of the CIDs held pinned here, and their changes since the last
    /// heartbeat (see [`super::membership`]).
    held_count: u64,
    held_digest: [u8; 32],
    held_added: Vec<String>,
    held_removed: Vec<String>,
    /// Pulls in flight, by kind and member: one of each per member at a time.
    pulls: std::collections::HashSet<(Pull, String)>,
}

/// What is pulled from a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pull {
    /// Its whole pinset (anti-entropy).
    State,
    /// The CIDs it holds pinned.
    Held,
}

/// Default time a tombstone is kept at least (24 h).
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(24 * 3600);

impl Core {
    pub fn new(me: SelfInfo, mut pinset: Pinset, timing: Timing, retry_after: Duration) -> Self {
        pinset.share_names();
        let clock = Clock::new(&me.peer, pinset.max_time());
        // After a restart every tombstone needs fresh acknowledgements.
        let tomb_since = pinset
            .pins
            .iter()
            .filter(|(_, e)| e.pin.is_none())
            .map(|(cid, _)| (cid.to_string(), 1))
            .collect();
        Self {
            me,
            digest: pinset.digest(),
            pinset,
            clock,
            members: Members::new(timing),
            local: BTreeMap::new(),
            failures: HashMap::new(),
            retry_after,
            version: 1,
            tomb_since,
            acks: HashMap::new(),
            tombstone_ttl_ms: duration_ms(TOMBSTONE_TTL),
            held_count: 0,
            held_digest: [0; 32],
            held_added: Vec::new(),
            held_removed: Vec::new(),
            pulls: std::collections::HashSet::new(),
        }
    }

    /// How long a tombstone is kept at least.
    pub fn set_tombstone_ttl(&mut self, ttl: Duration) {
        self.tombstone_ttl_ms = duration_ms(ttl);
    }

    /// Record that the entry of `cid` changed to `entry`.
    fn changed(&mut self, cid: &str, entry: &Entry) {
        self.version += 1;
        if entry.pin.is_none() {
            self.tomb_since.insert(cid.to_owned(), self.version);
        } else {
            self.tomb_since.remove(cid);
        }
    }

    /// Merge one pin entry, refusing one at or below the horizon for a key we do not hold.
    fn merge_one(&mut self, cid: &str, entry: &Entry) -> bool {
        if entry.stamp.time <= self.pinset.horizon && !self.pinset.pins.contains_key(cid) {
            return false;
        }
        if !self.pinset.merge_pin_tracked(cid, entry, &mut self.digest) {
            return false;
        }
        self.changed(cid, entry);
        true
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
        self.merge_one(cid, &entry);
        entry
    }

    /// Remove a pin (a tombstone); `None` when the CID is not pinned in the cluster.
    pub fn remove_pin(&mut self, cid: &str, now_ms: u64) -> Option<Entry> {
        self.pinset.get(cid)?;
        let entry = Entry {
            stamp: self.clock.stamp(now_ms),
            pin: None,
        };
        self.merge_one(cid, &entry);
        Some(entry)
    }

    /// Start or stop draining `peer`; the entry is to be persisted and broadcast.
    pub fn set_drain(&mut self, peer: &str, draining: bool, now_ms: u64) -> DrainEntry {
        let entry = DrainEntry {
            stamp: self.clock.stamp(now_ms),
            draining,
        };
        if self
            .pinset
            .merge_drain_tracked(peer, &entry, &mut self.digest)
        {
            self.version += 1;
        }
        entry
    }

    /// Merge what a member sent; returns the pinset delta that changed ours (to persist).
    pub fn merge(&mut self, other: &Pinset) -> Pinset {
        self.clock.observe(other.max_time());
        let mut delta = Pinset::default();
        for (cid, e) in &other.pins {
            if self.merge_one(cid, e) {
                delta.pins.insert(cid.clone(), e.clone());
            }
        }
        for (peer, e) in &other.drains {
            if self.pinset.merge_drain_tracked(peer, e, &mut self.digest) {
                self.version += 1;
                delta.drains.insert(peer.clone(), e.clone());
            }
        }
        delta
    }

    /// Merge a member's whole pinset (the answer to a pull): [`Core::merge`], then drop our
    /// entries at or below its horizon that it lacks (it pruned them) and take its horizon.
    /// Returns the changed entries and the CIDs whose entry was dropped (both to persist).
    pub fn merge_state(&mut self, state: &Pinset) -> (Pinset, Vec<String>) {
        let mut delta = self.merge(state);
        let mut dropped = Vec::new();
        if state.horizon > self.pinset.horizon {
            let stale: Vec<String> = self
                .pinset
                .pins
                .iter()
                .filter(|(cid, e)| e.stamp.time <= state.horizon && !state.pins.contains_key(*cid))
                .map(|(cid, _)| cid.to_string())
                .collect();
            for cid in stale {
                self.pinset.remove_tracked(&cid, &mut self.digest);
                self.tomb_since.remove(&cid);
                self.version += 1;
                delta.pins.remove(cid.as_str());
                dropped.push(cid);
            }
            self.pinset.horizon = state.horizon;
            delta.horizon = state.horizon;
        }
        (delta, dropped)
    }

    /// Drop the tombstones older than the TTL that every known member has acknowledged;
    /// returns their CIDs (to delete from the store; [`Core::horizon`] to persist).
    pub fn prune_tombstones(&mut self, now_ms: u64) -> Vec<String> {
        let members: Vec<&str> = self.members.peers().collect();
        let acked = |since: u64| {
            members
                .iter()
                .all(|p| self.acks.get(*p).is_some_and(|v| *v >= since))
        };
        let due: Vec<String> = self
            .tomb_since
            .iter()
            .filter(|(cid, since)| {
                self.pinset.pins.get(cid.as_str()).is_some_and(|e| {
                    e.pin.is_none() && e.stamp.time.saturating_add(self.tombstone_ttl_ms) <= now_ms
                }) && acked(**since)
            })
            .map(|(cid, _)| cid.clone())
            .collect();
        for cid in &due {
            self.tomb_since.remove(cid);
            if let Some(old) = self.pinset.remove_tracked(cid, &mut self.digest) {
                self.pinset.horizon = self.pinset.horizon.max(old.stamp.time);
                self.version += 1;
            }
        }
        due
    }

    /// The largest stamp time of a pruned tombstone (see [`super::pinset`]).
    pub fn horizon(&self) -> u64 {
        self.pinset.horizon
    }

    /// Record a member's heartbeat. Returns whether we should pull its full state (digests
    /// differ).
    pub fn observe(&mut self, hb: Heartbeat, now: Instant) -> bool {
        let differs = hb.digest != self.digest_hex();
        if !differs {
            self.acks.insert(hb.peer.clone(), self.version);
        }
        self.members.observe(hb, now);
        differs
    }

    pub fn members(&self) -> &Members {
        &self.members
    }

    pub fn members_mut(&mut self) -> &mut Members {
        &mut self.members
    }

    /// Our heartbeat; it carries the held-set changes since the previous one.
    pub fn heartbeat(&mut self) -> Heartbeat {
        let states = self
            .local
            .iter()
            .filter(|(_, state)| **state != LocalState::Pinned)
            .take(MAX_STATES)
            .map(|(cid, state)| (cid.to_string(), (*state, self.error_of(cid, *state))))
            .collect();
        Heartbeat {
            peer: self.me.peer.clone(),
            addrs: self.me.addrs.clone(),
            zone: self.me.zone.clone(),
            free_space: self.me.free_space,
            leaving: self.me.leaving,
            digest: self.digest_hex(),
            states,
            held_count: self.held_count,
            held_digest: self
                .held_digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            held_added: std::mem::take(&mut self.held_added),
            held_removed: std::mem::take(&mut self.held_removed),
            known: self.members.addresses(),
        }
    }

    /// The CIDs held pinned here (the answer to a held-set pull).
    pub fn held_cids(&self) -> Vec<String> {
        self.local
            .iter()
            .filter(|(_, state)| **state == LocalState::Pinned)
            .map(|(cid, _)| cid.to_string())
            .collect()
    }

    /// Note that `peer`'s held set is being pulled; false when a pull is already running.
    pub fn start_pull(&mut self, kind: Pull, peer: &str) -> bool {
        self.pulls.insert((kind, peer.to_owned()))
    }

    pub fn end_pull(&mut self, kind: Pull, peer: &str) {
        self.pulls.remove(&(kind, peer.to_owned()));
    }

    /// `cid` entered (`held`) or left the set held pinned here.
    fn toggle_held(&mut self, cid: &str, held: bool) {
        xor(&mut self.held_digest, &held_hash(cid));
        let (to, other) = if held {
            self.held_count += 1;
            (&mut self.held_added, &mut self.held_removed)
        } else {
            self.held_count = self.held_count.saturating_sub(1);
            (&mut self.held_removed, &mut self.held_added)
        };
        other.retain(|c| c != cid);
        // Past the bound receivers find a digest mismatch and pull the whole set.
        if to.len() < MAX_HELD_DELTA {
            to.push(cid.to_owned());
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

    /// Who should hold `cid`: the writer of the pin first when it had the whole DAG (the
    /// pin's size is known only then), so the copy already there counts.
    pub fn allocation(&self, cid: &str, spec: &PinSpec, candidates: &[Candidate]) -> Vec<String> {
        let origin = spec
            .size
            .and_then(|_| self.pinset.pins.get(cid))
            .map(|entry| &*entry.stamp.peer);
        allocate(cid, spec.replication_max as usize, candidates, origin)
    }

    /// Reports of live members and ourselves about `cid`.
    pub fn reports(&self, cid: &str, now: Instant) -> Vec<PeerReport> {
        let mut r = self.members.reports(cid, now);
        if let Some(state) = self.local.get(cid) {
            r.push(PeerReport {
                peer_id: self.me.peer.clone(),
                state: *state,
                error: self.error_of(cid, *state),
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

    /// Hand every pin's status to `f` in turn, built one at a time.
    pub fn for_each_status(&self, now: Instant, mut f: impl FnMut(PinStatus)) {
        let candidates = self.candidates(now);
        for (cid, spec) in self.pinset.live() {
            f(self.status_with(cid, spec, &candidates, now));
        }
    }

    /// Number of pins in the pinset (removals not counted).
    pub fn live_count(&self) -> usize {
        self.pinset.live().count()
    }

    pub fn local_state(&self, cid: &str) -> Option<LocalState> {
        self.local.get(cid).copied()
    }

    /// Why our copy of `cid` failed, when `state` says it did.
    fn error_of(&self, cid: &str, state: LocalState) -> Option<String> {
        if state != LocalState::Failed {
            return None;
        }
        self.failures.get(cid).and_then(|(_, e)| e.clone())
    }

    /// Record our own copy's state.
    pub fn set_local(&mut self, cid: &str, state: LocalState, error: Option<String>, now: Instant) {
        if state == LocalState::Failed {
            self.failures.insert(cid.to_owned(), (now, error));
        } else {
            self.failures.remove(cid);
        }
        let was = self.local_state(cid) == Some(LocalState::Pinned);
        let is = state == LocalState::Pinned;
        if was != is {
            self.toggle_held(cid, is);
        }
        match self.local.get_mut(cid) {
            Some(current) => *current = state,
            None => {
                let key = self.pinset.key(cid).cloned().unwrap_or_else(|| cid.into());
                self.local.insert(key, state);
            }
        }
    }

    pub fn forget_local(&mut self, cid: &str) {
        if self.local_state(cid) == Some(LocalState::Pinned) {
            self.toggle_held(cid, false);
        }
        self.local.remove(cid);
        self.failures.remove(cid);
    }

    /// This round's work for the tracker.
    pub fn plan(&self, now: Instant) -> Plan {
        let candidates = self.candidates(now);
        let me = self.me.peer.as_str();
        let mut plan = Plan::default();
        for (cid, spec) in self.pinset.live() {
            let alloc = self.allocation(cid, spec, &candidates);
            let local = self.local.get(cid).copied();
            if alloc.iter().any(|p| p == me) {
                let due = match local {
                    None | Some(LocalState::Queued) => true,
                    Some(LocalState::Failed) => self
                        .failures
                        .get(cid)
                        .is_none_or(|(t, _)| now.duration_since(*t) >= self.retry_after),
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
        for (cid, state) in &self.local {
            if self.pinset.get(cid).is_none() && *state != LocalState::Pinning {
                plan.release.push(cid.to_string());
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
            if !may_leave(peer, spec, &alloc, &reports, candidates.len()) {
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

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
}
