//! Who is in the cluster and how they are: [`Members`] keeps the last heartbeat of every peer
//! that proved it holds the cluster secret. A member is `alive` while its heartbeats keep
//! coming within the heartbeat timeout, `leaving` when it said so, `down` after the timeout.
//! A down member keeps its allocations for the re-replication grace period (a restart or a
//! short network blip should not move data), and only then stops being a
//! [`Members::candidates`] for allocation. Pure: time is passed in.
//!
//! A heartbeat does not list every pin a member holds: it carries only its copies that are
//! not in steady state (queued, pinning, failed; at most [`MAX_STATES`]), plus the count and
//! digest of the set it holds pinned ([`HeldSet`]) and the CIDs that entered or left that set
//! since its previous heartbeat (at most [`MAX_HELD_DELTA`] of each). [`Members`] keeps each
//! member's held set, applies the changes, and says when the result does not match the
//! announced count and digest ([`Members::held_in_sync`]): then the full set is pulled. A
//! steady member's heartbeat is a few hundred bytes whatever the number of pins.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most non-steady copies listed in one heartbeat.
pub const MAX_STATES: usize = 1000;
/// Most held-set changes of each kind carried by one heartbeat; more make receivers pull.
pub const MAX_HELD_DELTA: usize = 100;

/// A set of CIDs with an order-independent digest kept current one CID at a time. The CIDs
/// themselves are not kept, only the first 16 bytes of their [`held_hash`]: the set answers
/// "does this member hold that CID?", and a node tracks one per member (tens of thousands
/// of 60-byte strings otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldSet {
    keys: HashSet<HeldKey>,
    digest: [u8; 32],
}

/// What a [`HeldSet`] keeps of a CID.
pub type HeldKey = [u8; 16];

/// The [`HeldSet`] key of `cid`.
pub fn held_key(cid: &str) -> HeldKey {
    key_of(&held_hash(cid))
}

fn key_of(hash: &[u8; 32]) -> HeldKey {
    let mut key = [0u8; 16];
    key.copy_from_slice(&hash[..16]);
    key
}

pub(super) fn held_hash(cid: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"held\0");
    h.update(cid.as_bytes());
    h.finalize().into()
}

pub(super) fn xor(into: &mut [u8; 32], other: &[u8; 32]) {
    for (a, b) in into.iter_mut().zip(other) {
        *a ^= b;
    }
}

impl HeldSet {
    pub fn from_cids(cids: impl IntoIterator<Item = String>) -> Self {
        let mut set = Self::default();
        for cid in cids {
            set.insert(cid);
        }
        set
    }

    /// True when `cid` was not in the set.
    pub fn insert(&mut self, cid: String) -> bool {
        let hash = held_hash(&cid);
        let fresh = self.keys.insert(key_of(&hash));
        if fresh {
            xor(&mut self.digest, &hash);
        }
        fresh
    }

    /// True when `cid` was in the set.
    pub fn remove(&mut self, cid: &str) -> bool {
        let hash = held_hash(cid);
        let was = self.keys.remove(&key_of(&hash));
        if was {
            xor(&mut self.digest, &hash);
        }
        was
    }

    pub fn contains(&self, cid: &str) -> bool {
        self.contains_key(&held_key(cid))
    }

    /// [`HeldSet::contains`] with the key computed once for many sets.
    pub fn contains_key(&self, key: &HeldKey) -> bool {
        self.keys.contains(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn digest_hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

use super::allocation::Candidate;
use super::status::{LocalState, PeerReport};

/// What a member says about itself in each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub peer: String,
    pub addrs: Vec<String>,
    pub zone: Option<String>,
    pub free_space: u64,
    pub leaving: bool,
    /// Its pinset digest, hex; a mismatch triggers a full-state pull.
    pub digest: String,
    /// Its copies that are not in steady state (queued, pinning, failed), with error text.
    pub states: BTreeMap<String, (LocalState, Option<String>)>,
    /// How many CIDs it holds pinned, and their [`HeldSet`] digest (hex).
    #[serde(default)]
    pub held_count: u64,
    #[serde(default)]
    pub held_digest: String,
    /// CIDs it started / stopped holding since its previous heartbeat.
    #[serde(default)]
    pub held_added: Vec<String>,
    #[serde(default)]
    pub held_removed: Vec<String>,
    /// Other members it knows, with addresses, so members find each other transitively.
    pub known: Vec<(String, Vec<String>)>,
}

/// Liveness of a member as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    Alive,
    Leaving,
    Down,
}

#[derive(Debug, Clone)]
struct Member {
    last: Heartbeat,
    seen: Instant,
    /// What it holds pinned, as far as we know.
    held: HeldSet,
}

/// Timing rules for members.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub heartbeat_timeout: Duration,
    pub rereplicate_after: Duration,
}

/// The other members of the cluster, by peer ID.
#[derive(Debug, Clone)]
pub struct Members {
    timing: Timing,
    members: HashMap<String, Member>,
}

impl Members {
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            members: HashMap::new(),
        }
    }

    /// Record a heartbeat; true when the peer was not known or was down (worth a sync).
    pub fn observe(&mut self, hb: Heartbeat, now: Instant) -> bool {
        let fresh = self
            .members
            .get(&hb.peer)
            .is_none_or(|m| now.duration_since(m.seen) > self.timing.heartbeat_timeout);
        let mut held = self
            .members
            .remove(&hb.peer)
            .map(|m| m.held)
            .unwrap_or_default();
        for cid in &hb.held_removed {
            held.remove(cid);
        }
        for cid in &hb.held_added {
            held.insert(cid.clone());
        }
        self.members.insert(
            hb.peer.clone(),
            Member {
                last: hb,
                seen: now,
                held,
            },
        );
        fresh
    }

    /// Whether our copy of `peer`'s held set matches what its last heartbeat announced
    /// (when not, pull it: [`Members::set_held`]).
    pub fn held_in_sync(&self, peer: &str) -> bool {
        self.members.get(peer).is_none_or(|m| {
            m.held.len() as u64 == m.last.held_count && m.held.digest_hex() == m.last.held_digest
        })
    }

    /// Replace `peer`'s held set with a pulled one.
    pub fn set_held(&mut self, peer: &str, held: HeldSet) {
        if let Some(m) = self.members.get_mut(peer) {
            m.held = held;
        }
    }

    pub fn state(&self, peer: &str, now: Instant) -> Option<MemberState> {
        self.members.get(peer).map(|m| self.state_of(m, now))
    }

    fn state_of(&self, m: &Member, now: Instant) -> MemberState {
        if now.duration_since(m.seen) > self.timing.heartbeat_timeout {
            MemberState::Down
        } else if m.last.leaving {
            MemberState::Leaving
        } else {
            MemberState::Alive
        }
    }

    /// Every member: peer, last heartbeat, state, seconds since it was heard.
    pub fn list(&self, now: Instant) -> Vec<(&Heartbeat, MemberState, u64)> {
        let mut out: Vec<_> = self
            .members
            .values()
            .map(|m| {
                (
                    &m.last,
                    self.state_of(m, now),
                    now.duration_since(m.seen).as_secs(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.peer.cmp(&b.0.peer));
        out
    }

    /// Peers that may be allocated pins: heard within the grace period and not leaving.
    /// `is_drained` says which peers a drain has emptied.
    pub fn candidates(&self, now: Instant, is_drained: impl Fn(&str) -> bool) -> Vec<Candidate> {
        self.members
            .values()
            .filter(|m| now.duration_since(m.seen) <= self.timing.rereplicate_after)
            .filter(|m| !m.last.leaving && !is_drained(&m.last.peer))
            .map(|m| Candidate {
                peer: m.last.peer.clone(),
                zone: m.last.zone.clone(),
                free_space: m.last.free_space,
            })
            .collect()
    }

    /// What live (not down) members report about `cid`.
    pub fn reports(&self, cid: &str, now: Instant) -> Vec<PeerReport> {
        let key = held_key(cid);
        self.members
            .values()
            .filter(|m| self.state_of(m, now) != MemberState::Down)
            .filter_map(|m| {
                let (state, error) = match m.last.states.get(cid) {
                    Some((state, error)) => (*state, error.clone()),
                    None if m.held.contains_key(&key) => (LocalState::Pinned, None),
                    None => return None,
                };
                Some(PeerReport {
                    peer_id: m.last.peer.clone(),
                    state,
                    error,
                })
            })
            .collect()
    }

    /// Addresses of every member, for redialing after a partition heals.
    pub fn addresses(&self) -> Vec<(String, Vec<String>)> {
        self.members
            .values()
            .map(|m| (m.last.peer.clone(), m.last.addrs.clone()))
            .collect()
    }

    /// Every member's peer ID, down ones included until they are forgotten.
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    pub fn is_member(&self, peer: &str) -> bool {
        self.members.contains_key(peer)
    }

    /// Forget members silent for much longer than the grace period.
    pub fn expire(&mut self, now: Instant, after: Duration) {
        self.members
            .retain(|_, m| now.duration_since(m.seen) <= after);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn hb(peer: &str, leaving: bool) -> Heartbeat {
        Heartbeat {
            peer: peer.into(),
            addrs: vec![],
            zone: None,
            free_space: 1 << 30,
            leaving,
            digest: String::new(),
            states: BTreeMap::new(),
            held_count: 1,
            held_digest: HeldSet::from_cids(["cid".to_owned()]).digest_hex(),
            held_added: vec!["cid".to_owned()],
            held_removed: vec![],
            known: vec![],
        }
    }

    #[test]
    fn held_sets_follow_changes_and_say_when_to_pull() {
        let mut m = Members::new(Timing {
            heartbeat_timeout: Duration::from_secs(3),
            rereplicate_after: Duration::from_secs(5),
        });
        let t0 = Instant::now();
        m.observe(hb("a", false), t0);
        assert!(m.held_in_sync("a"));
        assert_eq!(m.reports("cid", t0)[0].state, LocalState::Pinned);
        // A heartbeat with no changes and the same digest: still in sync.
        let mut steady = hb("a", false);
        steady.held_added.clear();
        m.observe(steady.clone(), t0);
        assert!(m.held_in_sync("a"));
        // A lost heartbeat: the announced set has "x" we never heard of.
        let mut later = steady.clone();
        later.held_count = 2;
        later.held_digest = HeldSet::from_cids(["cid".to_owned(), "x".to_owned()]).digest_hex();
        m.observe(later, t0);
        assert!(!m.held_in_sync("a"));
        m.set_held("a", HeldSet::from_cids(["cid".to_owned(), "x".to_owned()]));
        assert!(m.held_in_sync("a"));
        assert_eq!(m.reports("x", t0).len(), 1);
        // A pinning copy is reported as such, not as held.
        let mut busy = steady;
        busy.held_count = 2;
        busy.held_digest = HeldSet::from_cids(["cid".to_owned(), "x".to_owned()]).digest_hex();
        busy.states
            .insert("y".to_owned(), (LocalState::Pinning, None));
        m.observe(busy, t0);
        assert_eq!(m.reports("y", t0)[0].state, LocalState::Pinning);
    }

    #[test]
    fn alive_then_down_then_no_longer_a_candidate() {
        let timing = Timing {
            heartbeat_timeout: Duration::from_secs(3),
            rereplicate_after: Duration::from_secs(5),
        };
        let mut m = Members::new(timing);
        let t0 = Instant::now();
        assert!(m.observe(hb("a", false), t0));
        assert!(!m.observe(hb("a", false), t0));
        assert!(m.observe(hb("b", true), t0));
        assert_eq!(m.state("a", t0), Some(MemberState::Alive));
        assert_eq!(m.state("b", t0), Some(MemberState::Leaving));
        let names = |c: Vec<Candidate>| c.into_iter().map(|c| c.peer).collect::<Vec<_>>();
        assert_eq!(names(m.candidates(t0, |_| false)), vec!["a"]);
        assert!(m.candidates(t0, |p| p == "a").is_empty(), "drained");
        let t4 = t0 + Duration::from_secs(4);
        assert_eq!(m.state("a", t4), Some(MemberState::Down));
        assert!(
            m.reports("cid", t4).is_empty(),
            "a down member's reports do not count"
        );
        assert_eq!(
            names(m.candidates(t4, |_| false)),
            vec!["a"],
            "grace period"
        );
        let t6 = t0 + Duration::from_secs(6);
        assert!(m.candidates(t6, |_| false).is_empty());
        assert!(m.observe(hb("a", false), t6), "back from down");
    }
}
