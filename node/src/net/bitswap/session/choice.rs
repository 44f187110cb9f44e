//! Which peer a session asks for a block: what it knows of each peer ([`PeerScore`]: latency
//! and throughput EWMAs, blocks in flight) and the choice among a want's candidates
//! ([`best_peer`]), kept apart from the session's want bookkeeping in the parent module.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cid::Cid;

use super::{SessionConfig, WantState};
use crate::net::bitswap::message::ProtocolVersion;

/// What the session knows about one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerScore {
    pub version: ProtocolVersion,
    /// EWMA of response latency, seconds.
    pub latency: Option<f64>,
    /// EWMA of block throughput, bytes per second.
    pub throughput: Option<f64>,
    pub strikes: u32,
    pub in_flight: usize,
}

impl PeerScore {
    /// Whether the peer can take another want-block: fewer than
    /// [`SessionConfig::per_peer_window`] in flight to it.
    pub(super) fn has_room(&self, config: &SessionConfig) -> bool {
        self.in_flight < config.per_peer_window
    }
}

/// Weight of a new sample in the EWMAs.
pub(super) const EWMA_ALPHA: f64 = 0.25;
/// Block size assumed until the session has received some.
pub(super) const TYPICAL_BLOCK: f64 = 256.0 * 1024.0;

pub(super) fn ewma(old: Option<f64>, sample: f64) -> Option<f64> {
    Some(old.map_or(sample, |o| o + EWMA_ALPHA * (sample - o)))
}

/// The candidate expected to deliver soonest: a peer that said HAVE, or failing that a
/// peer too old to say HAVE that has not been ruled out.
pub(super) fn best_peer<P: Clone + Ord>(
    peers: &BTreeMap<P, PeerScore>,
    config: &SessionConfig,
    avg_block: f64,
    state: &WantState<P>,
    cid: &Cid,
    now: Instant,
) -> Option<P> {
    let usable = |p: &P| {
        peers
            .get(p)
            .filter(|s| s.has_room(config) && !state.ruled_out.contains(p))
    };
    // Expected time to a block: one round trip (the latency EWMA, which for blocks includes
    // transfer time) plus draining what the peer already has queued for us.
    let score = |s: &PeerScore| {
        let latency = s.latency.unwrap_or(config.default_latency.as_secs_f64());
        let per_block = s.throughput.map_or(latency, |t| avg_block / t.max(1.0));
        latency + s.in_flight as f64 * per_block
    };
    let pick = |candidates: &mut dyn Iterator<Item = (&P, &PeerScore)>| {
        candidates
            .fold(None::<(&P, f64)>, |best, (p, s)| {
                let sc = score(s);
                match best {
                    Some((_, b)) if b <= sc => best,
                    _ => Some((p, sc)),
                }
            })
            .map(|(p, _)| p.clone())
    };
    let mut haves = state.haves.iter().filter_map(|p| usable(p).map(|s| (p, s)));
    if let Some(p) = pick(&mut haves) {
        return Some(p);
    }
    let mut legacy = peers.iter().filter(|(p, s)| {
        !s.version.supports_have()
            && s.version.can_express(cid)
            && usable(p).is_some()
            && !state.timed_out.contains_key(*p)
    });
    if let Some(p) = pick(&mut legacy) {
        return Some(p);
    }
    // Last resort: a peer that timed out earlier, once its pause is over.
    let mut retry = state
        .timed_out
        .iter()
        .filter(|(p, at)| **at <= now && !state.haves.contains(*p))
        .filter_map(|(p, _)| usable(p).map(|s| (p, s)));
    pick(&mut retry)
}

pub(super) fn record_latency<P: Ord>(
    peers: &mut BTreeMap<P, PeerScore>,
    peer: &P,
    sample: Duration,
) {
    if let Some(score) = peers.get_mut(peer) {
        score.latency = ewma(score.latency, sample.as_secs_f64());
    }
}
