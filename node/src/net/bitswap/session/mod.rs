//! Fetching side of Bitswap: a [`Session`] fetches a growing set of CIDs from a changing set
//! of peers, as a pure state machine. The caller feeds it events (peers coming and going,
//! received messages, the time) and carries out the [`Action`]s it returns; time is always an
//! argument, so tests drive it without clocks or sockets.
//!
//! How a CID is fetched: [`Session::want`] records it once (asking again is a no-op) and
//! sends a want-have, with `sendDontHave`, to every connected 1.2.0 peer. Peers that answer
//! HAVE become candidates; the best one (lowest expected time from its latency and
//! throughput EWMAs and its current load) gets a want-block. Peers speaking 1.0.0/1.1.0
//! cannot answer want-haves, so they are asked for blocks directly when no HAVE is known.
//! At most [`SessionConfig::window`] want-blocks are in flight, and at most
//! [`SessionConfig::per_peer_window`] per peer, so the load spreads across peers.
//!
//! Every block is verified against its CID before it is delivered. A DONT_HAVE, a timeout or
//! a corrupt block moves the want to the next candidate; a corrupt block also earns the peer a
//! strike, and [`SessionConfig::max_strikes`] strikes exclude it from the session. A peer that
//! disconnects has its want-blocks reassigned. When no candidate is left the session asks
//! for providers ([`Action::FindProviders`]); after [`SessionConfig::max_attempts`] failed
//! want-blocks a CID fails. Once a block arrives, peers still asked about it get a cancel.
//!
//! With Bitswap 1.1.0+ a receiver rebuilds a block's CID from the data it got, so corrupt
//! data surfaces as a CID nobody asked that peer for; the service spots those
//! ([`super::solicited`]) and reports them through [`Session::on_unsolicited`], which moves
//! the peer's matching want-blocks elsewhere and strikes it. The verification in
//! [`Session::on_block`] catches blocks whose CID came from anywhere else.
//!
//! Here: the wants, the peers and what is sent (`want`, `tick`, the schedule); what peers
//! send is taken in by `receive`, and which peer gets a want-block is `choice`'s.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cid::Cid;

use super::message::{ProtocolVersion, WantType, WantlistEntry};
use crate::content::cid::{CidError, verify};

mod choice;
mod receive;

pub use choice::PeerScore;
use choice::{TYPICAL_BLOCK, best_peer, record_latency};

/// Limits and timing of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Want-blocks in flight across all peers.
    pub window: usize,
    /// Want-blocks in flight to one peer.
    pub per_peer_window: usize,
    /// How long a peer has to answer a want-have or deliver a want-block.
    pub timeout: Duration,
    /// Corrupt blocks after which a peer is excluded from the session.
    pub max_strikes: u32,
    /// Failed want-blocks (DONT_HAVE, timeout, corrupt) after which a CID fails.
    pub max_attempts: u32,
    /// CIDs the session tracks at once; [`Session::want`] refuses more.
    pub max_wants: usize,
    /// Latency assumed for a peer we have not measured yet.
    pub default_latency: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            window: 128,
            per_peer_window: 64,
            timeout: Duration::from_secs(10),
            max_strikes: 3,
            max_attempts: 8,
            max_wants: 16_384,
            default_latency: Duration::from_millis(250),
        }
    }
}

/// Something for the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<P> {
    /// Send these wantlist entries to `peer` (one message, not a full wantlist).
    SendWants {
        peer: P,
        entries: Vec<WantlistEntry>,
    },
    /// Tell `peer` we no longer want these CIDs.
    SendCancels { peer: P, cids: Vec<Cid> },
    /// A wanted block arrived from `peer` and matches its CID.
    Deliver { cid: Cid, data: Bytes, peer: P },
    /// The session gave up on a CID.
    Failed { cid: Cid, reason: FailReason },
    /// No connected peer can supply `cid`: look up providers and [`Session::add_peer`] them.
    FindProviders { cid: Cid },
}

/// Why a CID failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// This many want-blocks failed (DONT_HAVE, timeout or corrupt data).
    AttemptsExhausted { attempts: u32 },
    /// The CID's hash function is one we cannot verify.
    Unverifiable(CidError),
}

/// Why [`Session::want`] refused a CID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("session already tracks {max} CIDs; wait for some to arrive before adding {cid}")]
    Full { cid: Cid, max: usize },
}

#[derive(Debug)]
struct WantState<P> {
    seq: u64,
    priority: i32,
    /// Want-have sent, no answer yet.
    asked_have: BTreeMap<P, Instant>,
    haves: BTreeSet<P>,
    /// Said DONT_HAVE or sent a corrupt block: not asked again.
    ruled_out: BTreeSet<P>,
    /// Did not answer in time: asked again (want-block) from the instant given, so a slow or
    /// overloaded peer, possibly the only holder, delays the want but does not strand it.
    /// Retries are bounded by `max_attempts`.
    timed_out: BTreeMap<P, Instant>,
    block_request: Option<(P, Instant)>,
    attempts: u32,
    providers_requested: bool,
}

#[derive(Debug, Default)]
struct Outbox {
    cancels: Vec<Cid>,
    wants: Vec<WantlistEntry>,
}

/// One fetch: a set of CIDs and the peers to get them from. `P` is the peer key.
#[derive(Debug)]
pub struct Session<P> {
    config: SessionConfig,
    peers: BTreeMap<P, PeerScore>,
    excluded: HashSet<P>,
    wants: HashMap<Cid, WantState<P>>,
    /// Wants without a want-block in flight, in the order they were added.
    waiting: BTreeMap<u64, Cid>,
    next_seq: u64,
    in_flight: usize,
    /// EWMA of delivered block sizes, bytes.
    avg_block: f64,
    outbox: BTreeMap<P, Outbox>,
    actions: Vec<Action<P>>,
}

impl<P: Clone + Eq + Hash + Ord> Session<P> {
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            peers: BTreeMap::new(),
            excluded: HashSet::new(),
            wants: HashMap::new(),
            waiting: BTreeMap::new(),
            next_seq: 0,
            in_flight: 0,
            avg_block: TYPICAL_BLOCK,
            outbox: BTreeMap::new(),
            actions: Vec::new(),
        }
    }

    /// Actions accumulated since the last call: sends first (cancels before wants, per
    /// peer), then deliveries, failures and provider lookups in the order they happened.
    pub fn drain_actions(&mut self) -> Vec<Action<P>> {
        let mut out = Vec::new();
        for (peer, outbox) in std::mem::take(&mut self.outbox) {
            if !outbox.cancels.is_empty() {
                out.push(Action::SendCancels {
                    peer: peer.clone(),
                    cids: outbox.cancels,
                });
            }
            if !outbox.wants.is_empty() {
                out.push(Action::SendWants {
                    peer,
                    entries: outbox.wants,
                });
            }
        }
        out.append(&mut self.actions);
        out
    }

    /// CIDs still being fetched.
    pub fn pending(&self) -> usize {
        self.wants.len()
    }

    /// Want-blocks currently in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn peer(&self, peer: &P) -> Option<&PeerScore> {
        self.peers.get(peer)
    }

    pub fn is_excluded(&self, peer: &P) -> bool {
        self.excluded.contains(peer)
    }

    /// When [`Session::tick`] next has something to time out, if anything.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeouts = self
            .wants
            .values()
            .flat_map(|w| {
                w.asked_have
                    .values()
                    .chain(w.block_request.as_ref().map(|(_, t)| t))
            })
            .min()
            .map(|t| *t + self.config.timeout);
        let retries = self
            .wants
            .values()
            .filter(|w| w.block_request.is_none())
            .flat_map(|w| w.timed_out.values())
            .min()
            .copied();
        match (timeouts, retries) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fetch `cid`. Asking for a CID the session already fetches changes nothing.
    pub fn want(&mut self, cid: Cid, now: Instant) -> Result<(), SessionError> {
        if self.wants.contains_key(&cid) {
            return Ok(());
        }
        if let Err(e @ CidError::UnsupportedHash(_)) = verify(&cid, &[]) {
            self.actions.push(Action::Failed {
                cid,
                reason: FailReason::Unverifiable(e),
            });
            return Ok(());
        }
        if self.wants.len() >= self.config.max_wants {
            return Err(SessionError::Full {
                cid,
                max: self.config.max_wants,
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        // Earlier discoveries first: the DAG walk adds parents before children.
        let priority = i32::MAX - i32::try_from(seq % (i32::MAX as u64)).unwrap_or(0);
        let mut state = WantState {
            seq,
            priority,
            asked_have: BTreeMap::new(),
            haves: BTreeSet::new(),
            ruled_out: BTreeSet::new(),
            timed_out: BTreeMap::new(),
            block_request: None,
            attempts: 0,
            providers_requested: false,
        };
        for (peer, score) in &self.peers {
            if score.throughput.is_some() {
                // It delivered blocks of this fetch: presume it has this one too and skip
                // the want-have round trip (its want-block asks for DONT_HAVE if not).
                state.haves.insert(peer.clone());
            } else if score.version.supports_have() {
                state.asked_have.insert(peer.clone(), now);
                let entry = WantlistEntry::want(cid, WantType::Have, priority, true);
                self.outbox
                    .entry(peer.clone())
                    .or_default()
                    .wants
                    .push(entry);
            }
        }
        self.wants.insert(cid, state);
        self.waiting.insert(seq, cid);
        self.schedule(now);
        Ok(())
    }

    /// Stop fetching `cid` (the caller got it elsewhere or no longer needs it).
    pub fn cancel(&mut self, cid: &Cid) {
        if let Some(state) = self.wants.remove(cid) {
            self.waiting.remove(&state.seq);
            self.release_slot(&state);
            self.cancel_outstanding(*cid, &state, None);
        }
    }

    /// A peer that may have the blocks: connected, or found as a provider.
    pub fn add_peer(&mut self, peer: P, version: ProtocolVersion, now: Instant) {
        if self.excluded.contains(&peer) || self.peers.contains_key(&peer) {
            return;
        }
        self.peers.insert(
            peer.clone(),
            PeerScore {
                version,
                latency: None,
                throughput: None,
                strikes: 0,
                in_flight: 0,
            },
        );
        let mut entries = Vec::new();
        for (cid, state) in &mut self.wants {
            state.providers_requested = false;
            if version.supports_have() && !state.ruled_out.contains(&peer) {
                state.asked_have.insert(peer.clone(), now);
                entries.push(WantlistEntry::want(
                    *cid,
                    WantType::Have,
                    state.priority,
                    true,
                ));
            }
        }
        if !entries.is_empty() {
            entries.sort_by_key(|e| std::cmp::Reverse(e.priority));
            self.outbox.entry(peer).or_default().wants.extend(entries);
        }
        self.schedule(now);
    }

    /// The peer is gone: its want-blocks go to other peers.
    pub fn remove_peer(&mut self, peer: &P, now: Instant) {
        if self.peers.remove(peer).is_none() {
            return;
        }
        self.outbox.remove(peer);
        for (cid, state) in &mut self.wants {
            state.asked_have.remove(peer);
            state.haves.remove(peer);
            if state.block_request.as_ref().is_some_and(|(p, _)| p == peer) {
                state.block_request = None;
                self.in_flight = self.in_flight.saturating_sub(1);
                self.waiting.insert(state.seq, *cid);
            }
        }
        self.schedule(now);
    }

    /// Time out unanswered want-haves and want-blocks older than the timeout.
    pub fn tick(&mut self, now: Instant) {
        let timeout = self.config.timeout;
        let mut expired_blocks = Vec::new();
        let mut expired_haves = Vec::new();
        for (cid, state) in &self.wants {
            if let Some((peer, sent)) = &state.block_request
                && now.saturating_duration_since(*sent) >= timeout
            {
                expired_blocks.push((peer.clone(), *cid));
            }
            for (peer, sent) in &state.asked_have {
                if now.saturating_duration_since(*sent) >= timeout {
                    expired_haves.push((peer.clone(), *cid));
                }
            }
        }
        let retry_at = now + timeout;
        for (peer, cid) in expired_haves {
            if let Some(state) = self.wants.get_mut(&cid) {
                state.asked_have.remove(&peer);
                state.timed_out.insert(peer.clone(), retry_at);
                self.outbox.entry(peer).or_default().cancels.push(cid);
            }
        }
        for (peer, cid) in expired_blocks {
            record_latency(&mut self.peers, &peer, timeout);
            self.rule_out_until(&peer, cid, true, Some(retry_at));
        }
        self.schedule(now);
    }

    /// `peer` will not supply `cid`: forget it as a candidate and, if it held the
    /// want-block, count a failed attempt and put the want back in line.
    fn rule_out(&mut self, peer: &P, cid: Cid, send_cancel: bool) {
        self.rule_out_until(peer, cid, send_cancel, None);
    }

    /// [`Session::rule_out`] for good, or (a timeout) only until `retry_at`.
    fn rule_out_until(&mut self, peer: &P, cid: Cid, send_cancel: bool, retry_at: Option<Instant>) {
        let Some(state) = self.wants.get_mut(&cid) else {
            return;
        };
        state.haves.remove(peer);
        state.asked_have.remove(peer);
        match retry_at {
            Some(at) => {
                state.timed_out.insert(peer.clone(), at);
            }
            None => {
                state.timed_out.remove(peer);
                state.ruled_out.insert(peer.clone());
            }
        }
        if state.block_request.as_ref().is_none_or(|(p, _)| p != peer) {
            return;
        }
        state.block_request = None;
        state.attempts += 1;
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(score) = self.peers.get_mut(peer) {
            score.in_flight = score.in_flight.saturating_sub(1);
        }
        if send_cancel {
            self.outbox
                .entry(peer.clone())
                .or_default()
                .cancels
                .push(cid);
        }
        if state.attempts >= self.config.max_attempts {
            let attempts = state.attempts;
            if let Some(state) = self.wants.remove(&cid) {
                self.cancel_outstanding(cid, &state, None);
            }
            self.actions.push(Action::Failed {
                cid,
                reason: FailReason::AttemptsExhausted { attempts },
            });
        } else {
            self.waiting.insert(state.seq, cid);
        }
    }

    /// Too many corrupt blocks: drop the peer for the rest of the session.
    fn exclude(&mut self, peer: &P, now: Instant) {
        let cids: Vec<Cid> = self
            .wants
            .iter()
            .filter(|(_, s)| s.asked_have.contains_key(peer) || s.haves.contains(peer))
            .map(|(c, _)| *c)
            .collect();
        self.remove_peer(peer, now);
        self.excluded.insert(peer.clone());
        if !cids.is_empty() {
            self.outbox.entry(peer.clone()).or_default().cancels = cids;
        }
    }

    fn cancel_outstanding(&mut self, cid: Cid, state: &WantState<P>, except: Option<&P>) {
        let asked = state
            .asked_have
            .keys()
            .chain(state.block_request.as_ref().map(|(p, _)| p));
        for peer in asked {
            if Some(peer) != except && self.peers.contains_key(peer) {
                let outbox = self.outbox.entry(peer.clone()).or_default();
                if !outbox.cancels.contains(&cid) {
                    outbox.cancels.push(cid);
                }
            }
        }
    }

    /// Free the window slot of a want leaving the session.
    fn release_slot(&mut self, state: &WantState<P>) {
        if let Some((p, _)) = &state.block_request {
            self.in_flight = self.in_flight.saturating_sub(1);
            if let Some(score) = self.peers.get_mut(p) {
                score.in_flight = score.in_flight.saturating_sub(1);
            }
        }
    }

    /// Fill the window: each waiting want, oldest first, goes to its best candidate.
    fn schedule(&mut self, now: Instant) {
        // Walk the waiting wants in order without copying them all: the window is usually
        // full long before the end, and this runs for every delivered block.
        use std::ops::Bound::{Excluded, Unbounded};
        // Peers that can take another want-block. Once there are none, nothing further can
        // be sent: stop instead of walking every waiting want for nothing, which with one
        // busy peer and a thousand wants was a quarter of a whole-DAG fetch's CPU. (With no
        // peers at all the walk still runs: it is what asks for providers.)
        let mut open = self
            .peers
            .values()
            .filter(|s| s.has_room(&self.config))
            .count();
        let mut after: Option<u64> = None;
        while self.in_flight < self.config.window && (open > 0 || self.peers.is_empty()) {
            let next = match after {
                None => self.waiting.iter().next(),
                Some(last) => self.waiting.range((Excluded(last), Unbounded)).next(),
            };
            let Some((&seq, &cid)) = next else {
                break;
            };
            after = Some(seq);
            let Some(state) = self.wants.get_mut(&cid) else {
                self.waiting.remove(&seq);
                continue;
            };
            let chosen = best_peer(&self.peers, &self.config, self.avg_block, state, &cid, now);
            let Some(peer) = chosen else {
                let nobody_left = state.asked_have.is_empty() && state.haves.is_empty();
                if nobody_left && !state.providers_requested {
                    state.providers_requested = true;
                    self.actions.push(Action::FindProviders { cid });
                }
                continue;
            };
            let Some(score) = self.peers.get_mut(&peer) else {
                continue;
            };
            score.in_flight += 1;
            if !score.has_room(&self.config) {
                open = open.saturating_sub(1);
            }
            let entry = WantlistEntry::want(
                cid,
                WantType::Block,
                state.priority,
                score.version.supports_have(),
            );
            state.block_request = Some((peer.clone(), now));
            self.in_flight += 1;
            self.waiting.remove(&seq);
            self.outbox.entry(peer).or_default().wants.push(entry);
        }
    }
}
