//! What we asked each peer for, so a block nobody asked that peer for can be told apart.
//!
//! Bitswap 1.1.0+ receivers rebuild a block's CID from its prefix and data, so a block whose
//! bytes were corrupted (on the holder's disk, in transit, or on purpose) arrives under a CID
//! nobody wanted. [`Solicited`] remembers, per peer, the CIDs named in our want-haves and
//! want-blocks (cancels do not forget them: a block already on its way is still expected). A
//! block from a peer that is not in its set is *unsolicited*: the service drops it, counts it
//! and tells the sessions, which penalise the peer and ask someone else
//! ([`super::Session::on_unsolicited`]). Pure bookkeeping, no I/O; bounded per peer, oldest
//! entries forgotten first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use cid::Cid;

/// CIDs remembered per peer; past this the oldest are forgotten (a block arriving for a
/// forgotten CID counts as unsolicited, so the bound is far above any session's window).
pub const MAX_PER_PEER: usize = 1 << 17;

#[derive(Debug, Default)]
struct Asked {
    /// CID → sequence number of its newest entry in `order`.
    set: HashMap<Cid, u64>,
    order: VecDeque<(Cid, u64)>,
    next: u64,
}

/// Per-peer sets of the CIDs we asked for.
#[derive(Debug)]
pub struct Solicited<P> {
    peers: HashMap<P, Asked>,
    max_per_peer: usize,
}

impl<P: Clone + Eq + Hash> Default for Solicited<P> {
    fn default() -> Self {
        Self::with_limit(MAX_PER_PEER)
    }
}

impl<P: Clone + Eq + Hash> Solicited<P> {
    pub fn with_limit(max_per_peer: usize) -> Self {
        Self {
            peers: HashMap::new(),
            max_per_peer: max_per_peer.max(1),
        }
    }

    /// We asked `peer` about `cid` (want-have or want-block).
    pub fn asked(&mut self, peer: &P, cid: Cid) {
        let asked = self.peers.entry(peer.clone()).or_default();
        let seq = asked.next;
        asked.next += 1;
        asked.set.insert(cid, seq);
        asked.order.push_back((cid, seq));
        // `order` holds stale entries for re-asked CIDs too; trim by its length.
        while asked.order.len() > self.max_per_peer {
            if let Some((old, old_seq)) = asked.order.pop_front()
                && asked.set.get(&old) == Some(&old_seq)
            {
                asked.set.remove(&old);
            }
        }
    }

    /// A block for `cid` arrived from `peer`: true if we asked that peer for it (the CID is
    /// then forgotten for that peer until asked again).
    pub fn take(&mut self, peer: &P, cid: &Cid) -> bool {
        self.peers
            .get_mut(peer)
            .is_some_and(|a| a.set.remove(cid).is_some())
    }

    /// The peer disconnected: forget what we asked it.
    pub fn forget(&mut self, peer: &P) {
        self.peers.remove(peer);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::content::cid::{CODEC_RAW, block_cid};

    fn cid(n: u8) -> Cid {
        block_cid(CODEC_RAW, 1, &[n])
    }

    #[test]
    fn a_block_is_solicited_once_per_ask_and_only_from_the_peer_asked() {
        let mut s = Solicited::default();
        s.asked(&1, cid(1));
        assert!(!s.take(&2, &cid(1)), "peer 2 was never asked");
        assert!(s.take(&1, &cid(1)));
        assert!(!s.take(&1, &cid(1)), "a second copy was not asked for");
        s.asked(&1, cid(1));
        assert!(s.take(&1, &cid(1)));
        assert!(!s.take(&1, &cid(9)));
    }

    #[test]
    fn disconnect_forgets_and_the_bound_drops_the_oldest() {
        let mut s = Solicited::with_limit(2);
        s.asked(&1, cid(1));
        s.asked(&1, cid(2));
        s.asked(&1, cid(1)); // re-asked: now the newest
        s.asked(&1, cid(3));
        assert!(!s.take(&1, &cid(2)), "oldest forgotten");
        assert!(s.take(&1, &cid(1)));
        assert!(s.take(&1, &cid(3)));
        s.asked(&1, cid(4));
        s.forget(&1);
        assert!(!s.take(&1, &cid(4)));
    }
}
