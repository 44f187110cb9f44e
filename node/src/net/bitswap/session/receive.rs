//! What peers tell a session: presences, blocks and unsolicited data in their messages, and
//! what each does to the wants, the peers' scores and the schedule (the parent module holds
//! the wants and sends).

use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use cid::Cid;

use super::choice::{EWMA_ALPHA, ewma, record_latency};
use super::{Action, Session};
use crate::content::cid::verify;
use crate::net::bitswap::message::{Message, PresenceType};
use crate::net::bitswap::prefix::CidPrefix;

impl<P: Clone + Eq + Hash + Ord> Session<P> {
    /// Everything in a received message that concerns this session.
    pub fn on_message(&mut self, peer: &P, message: &Message, now: Instant) {
        for p in &message.presences {
            match p.presence {
                PresenceType::Have => self.on_have(peer, &p.cid, now),
                PresenceType::DontHave => self.on_dont_have(peer, &p.cid, now),
            }
        }
        for b in &message.blocks {
            self.on_block(peer, b.cid, b.data.clone(), now);
        }
    }

    /// [`Session::on_message`] for a message decoded off the wire, taken by value: its
    /// blocks' CIDs were rebuilt from their data by [`Message::decode`], so they are not
    /// hashed again, and their bytes are moved, not copied.
    pub fn on_decoded_message(&mut self, peer: &P, message: Message, now: Instant) {
        for p in &message.presences {
            match p.presence {
                PresenceType::Have => self.on_have(peer, &p.cid, now),
                PresenceType::DontHave => self.on_dont_have(peer, &p.cid, now),
            }
        }
        for b in message.blocks {
            self.accept_block(peer, b.cid, b.data, now);
        }
    }

    pub fn on_have(&mut self, peer: &P, cid: &Cid, now: Instant) {
        let Some(state) = self.wants.get_mut(cid) else {
            return;
        };
        if let Some(sent) = state.asked_have.remove(peer) {
            record_latency(&mut self.peers, peer, now - sent);
        }
        if self.peers.contains_key(peer) && !state.ruled_out.contains(peer) {
            // A late answer counts: the peer is a candidate again.
            state.timed_out.remove(peer);
            state.haves.insert(peer.clone());
        }
        self.schedule(now);
    }

    pub fn on_dont_have(&mut self, peer: &P, cid: &Cid, now: Instant) {
        let Some(state) = self.wants.get_mut(cid) else {
            return;
        };
        if let Some(sent) = state.asked_have.remove(peer) {
            record_latency(&mut self.peers, peer, now - sent);
        }
        self.rule_out(peer, *cid, false);
        self.schedule(now);
    }

    /// A block from `peer`: delivered if wanted and valid; if corrupt, the peer gets a strike
    /// and the CID is fetched elsewhere. Unwanted blocks are ignored.
    pub fn on_block(&mut self, peer: &P, cid: Cid, data: Bytes, now: Instant) {
        if !self.wants.contains_key(&cid) {
            return;
        }
        if verify(&cid, &data).is_err() {
            self.rule_out(peer, cid, false);
            self.strike(peer, now);
            self.schedule(now);
            return;
        }
        self.accept_block(peer, cid, data, now);
    }

    /// Deliver a block whose data is known to match `cid`, if wanted.
    pub(super) fn accept_block(&mut self, peer: &P, cid: Cid, data: Bytes, now: Instant) {
        let Some(state) = self.wants.get(&cid) else {
            return;
        };
        if let Some((asked, sent)) = &state.block_request
            && asked == peer
        {
            let elapsed = (now - *sent).as_secs_f64().max(1e-6);
            record_latency(&mut self.peers, peer, now - *sent);
            if let Some(score) = self.peers.get_mut(peer) {
                score.throughput = ewma(score.throughput, data.len() as f64 / elapsed);
            }
        }
        if let Some(state) = self.wants.remove(&cid) {
            self.waiting.remove(&state.seq);
            self.release_slot(&state);
            self.cancel_outstanding(cid, &state, Some(peer));
        }
        self.avg_block += EWMA_ALPHA * (data.len() as f64 - self.avg_block);
        self.actions.push(Action::Deliver {
            cid,
            data,
            peer: peer.clone(),
        });
        self.schedule(now);
    }

    /// `peer` sent a block that hashes to a CID nobody asked it for: data corrupted on its
    /// side or in transit (Bitswap rebuilds the CID from the bytes), or junk. Which of our
    /// want-blocks it was meant to answer cannot be known, so every want-block this session
    /// has at `peer` with the same CID prefix goes to another candidate, and the peer gets
    /// a strike ([`SessionConfig::max_strikes`](super::SessionConfig::max_strikes) exclude it). Returns whether this session was
    /// concerned (had such want-blocks); an unconcerned session changes nothing.
    pub fn on_unsolicited(&mut self, peer: &P, prefix: &CidPrefix, now: Instant) -> bool {
        let suspects: Vec<Cid> = self
            .wants
            .iter()
            .filter(|(cid, s)| {
                s.block_request.as_ref().is_some_and(|(p, _)| p == peer)
                    && CidPrefix::of(cid) == *prefix
            })
            .map(|(cid, _)| *cid)
            .collect();
        if suspects.is_empty() {
            return false;
        }
        for cid in suspects {
            self.rule_out(peer, cid, true);
        }
        self.strike(peer, now);
        self.schedule(now);
        true
    }

    pub(super) fn strike(&mut self, peer: &P, now: Instant) {
        if let Some(score) = self.peers.get_mut(peer) {
            score.strikes += 1;
            if score.strikes >= self.config.max_strikes {
                self.exclude(peer, now);
            }
        }
    }
}
