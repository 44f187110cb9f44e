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
mod tests;
