//! Who is in the cluster and how they are: [`Members`] keeps the last heartbeat of every peer
//! that proved it holds the cluster secret. A member is `alive` while its heartbeats keep
//! coming within the heartbeat timeout, `leaving` when it said so, `down` after the timeout.
//! A down member keeps its allocations for the re-replication grace period (a restart or a
//! short network blip should not move data), and only then stops being a
//! [`Members::candidates`] for allocation. Pure: time is passed in.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

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
    /// Its own copy of each pin it tracks; pins absent here are not held.
    pub states: BTreeMap<String, (LocalState, Option<String>)>,
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
        self.members.insert(
            hb.peer.clone(),
            Member {
                last: hb,
                seen: now,
            },
        );
        fresh
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
        self.members
            .values()
            .filter(|m| self.state_of(m, now) != MemberState::Down)
            .filter_map(|m| {
                m.last.states.get(cid).map(|(state, error)| PeerReport {
                    peer_id: m.last.peer.clone(),
                    state: *state,
                    error: error.clone(),
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
            states: BTreeMap::from([("cid".to_owned(), (LocalState::Pinned, None))]),
            known: vec![],
        }
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
