//! What we asked each peer for, so a block nobody asked that peer for can be told apart.
//!
//! Bitswap 1.1.0+ receivers rebuild a block's CID from its prefix and data, so a block whose
//! bytes were corrupted (on the holder's disk, in transit, or on purpose) arrives under a CID
//! nobody wanted. [`Solicited`] remembers, per peer, the CIDs named in our want-haves and
//! want-blocks (cancels do not forget them: a block already on its way is still expected). A
//! block from a peer that is not in its set is *unsolicited*: the service drops it, counts it
//! and tells the sessions, which penalise the peer and ask someone else
//! ([`super::Session::on_unsolicited`]). Pure bookkeeping, no I/O (the caller passes the time).
//!
//! Most asks are never answered by a block (a want-have answered HAVE or DONT_HAVE, a block
//! that came from another peer first), so entries expire instead of waiting to be taken:
//! each peer has two generations of 64-bit keys (the CID hashed with a per-process random
//! key), and the older one is dropped when the newer is [`GENERATION`] old or holds
//! [`MAX_PER_GENERATION`] asks. An ask is remembered for at least one generation.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::time::{Duration, Instant};

use cid::Cid;

/// How long one generation of asks lasts: a block arriving later than this after its ask may
/// count as unsolicited (and is then asked for again).
pub const GENERATION: Duration = Duration::from_secs(120);
/// Asks per peer in one generation; past this a new generation starts early.
pub const MAX_PER_GENERATION: usize = 1 << 15;

#[derive(Debug)]
struct Asked {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    since: Instant,
}

impl Asked {
    fn new(now: Instant) -> Self {
        Self {
            current: HashSet::new(),
            previous: HashSet::new(),
            since: now,
        }
    }

    /// Start a new generation if the current one is old or full.
    fn roll(&mut self, now: Instant, generation: Duration, max: usize) {
        let age = now.saturating_duration_since(self.since);
        if age >= generation.saturating_mul(2) {
            self.previous.clear();
            self.current.clear();
            self.since = now;
        } else if age >= generation || self.current.len() >= max {
            self.previous = std::mem::take(&mut self.current);
            self.since = now;
        }
    }
}

/// Per-peer sets of the CIDs we asked for.
#[derive(Debug)]
pub struct Solicited<P> {
    peers: HashMap<P, Asked>,
    keys: RandomState,
    generation: Duration,
    max_per_generation: usize,
}

impl<P: Clone + Eq + Hash> Default for Solicited<P> {
    fn default() -> Self {
        Self::with_limits(GENERATION, MAX_PER_GENERATION)
    }
}

impl<P: Clone + Eq + Hash> Solicited<P> {
    pub fn with_limits(generation: Duration, max_per_generation: usize) -> Self {
        Self {
            peers: HashMap::new(),
            keys: RandomState::new(),
            generation,
            max_per_generation: max_per_generation.max(1),
        }
    }

    /// We asked `peer` about `cid` (want-have or want-block).
    pub fn asked(&mut self, peer: &P, cid: &Cid, now: Instant) {
        let key = self.keys.hash_one(cid);
        let asked = self
            .peers
            .entry(peer.clone())
            .or_insert_with(|| Asked::new(now));
        asked.roll(now, self.generation, self.max_per_generation);
        asked.current.insert(key);
    }

    /// A block for `cid` arrived from `peer`: true if we asked that peer for it (the CID is
    /// then forgotten for that peer until asked again).
    pub fn take(&mut self, peer: &P, cid: &Cid, now: Instant) -> bool {
        let key = self.keys.hash_one(cid);
        let Some(asked) = self.peers.get_mut(peer) else {
            return false;
        };
        asked.roll(now, self.generation, self.max_per_generation);
        asked.current.remove(&key) | asked.previous.remove(&key)
    }

    /// The peer disconnected: forget what we asked it.
    pub fn forget(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    /// Asks remembered for `peer` (both generations).
    #[cfg(test)]
    pub fn remembered(&self, peer: &P) -> usize {
        self.peers
            .get(peer)
            .map_or(0, |a| a.current.len() + a.previous.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::content::cid::{CODEC_RAW, block_cid};

    fn cid(n: u32) -> Cid {
        block_cid(CODEC_RAW, 1, &n.to_le_bytes())
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_block_is_solicited_once_per_ask_and_only_from_the_peer_asked() {
        let t = Instant::now();
        let mut s = Solicited::default();
        s.asked(&1, &cid(1), t);
        assert!(!s.take(&2, &cid(1), t), "peer 2 was never asked");
        assert!(s.take(&1, &cid(1), t));
        assert!(!s.take(&1, &cid(1), t), "a second copy was not asked for");
        s.asked(&1, &cid(1), t);
        assert!(s.take(&1, &cid(1), t));
        assert!(!s.take(&1, &cid(9), t));
    }

    #[test]
    fn an_ask_lasts_at_least_one_generation_and_at_most_two() {
        let t = Instant::now();
        let mut s = Solicited::with_limits(10 * S, 1000);
        s.asked(&1, &cid(1), t);
        s.asked(&1, &cid(2), t);
        s.asked(&1, &cid(3), t);
        // A new generation began at 10 s: the asks of the first are still known.
        assert!(s.take(&1, &cid(1), t + 10 * S));
        s.asked(&1, &cid(4), t + 15 * S);
        assert!(s.take(&1, &cid(2), t + 19 * S));
        // At 20 s the first generation is dropped; the ask made at 15 s is kept.
        assert!(!s.take(&1, &cid(3), t + 20 * S), "expired");
        assert!(s.take(&1, &cid(4), t + 20 * S));
        // Long silence: everything older than two generations is gone at once.
        s.asked(&1, &cid(5), t + 21 * S);
        assert!(!s.take(&1, &cid(5), t + 45 * S));
        assert_eq!(s.remembered(&1), 0);
    }

    #[test]
    fn unanswered_asks_stay_bounded_per_peer() {
        let t = Instant::now();
        let mut s = Solicited::with_limits(GENERATION, 100);
        for n in 0..10_000 {
            s.asked(&1, &cid(n), t);
        }
        assert!(s.remembered(&1) <= 200, "{}", s.remembered(&1));
        // The newest are still known; the oldest are not.
        assert!(s.take(&1, &cid(9_999), t));
        assert!(!s.take(&1, &cid(0), t));
    }

    #[test]
    fn disconnect_forgets() {
        let t = Instant::now();
        let mut s = Solicited::default();
        s.asked(&1, &cid(4), t);
        s.forget(&1);
        assert!(!s.take(&1, &cid(4), t));
        assert_eq!(s.remembered(&1), 0);
    }
}
