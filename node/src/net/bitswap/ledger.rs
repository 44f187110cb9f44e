//! Serving side of Bitswap: each peer's wantlist and byte counters, and a [`Server`] that
//! decides what to send next, fairly, without ever touching the store itself.
//!
//! A response is built in three pure steps so the network task never reads the disk:
//!
//! 1. [`Server::next_work`] picks the next peer in deficit round robin order and hands out a
//!    batch of its wants, highest priority first.
//! 2. The caller asks the store whether it has each CID and how big it is, and passes the
//!    answers to [`Server::plan`], which spends the peer's byte allowance: HAVE / DONT_HAVE
//!    for want-haves, blocks for want-blocks, and puts back what does not fit this turn.
//! 3. The caller reads the planned blocks ([`Plan::reads`]) and passes them to
//!    [`Server::build_response`], which returns the [`Message`] to send.
//!
//! [`Server::serve_next`] runs all three with two lookup closures, for callers that own a
//! store. Fairness: every turn a peer is credited [`ServerConfig::quantum_bytes`] and may
//! spend only its credit, so a peer wanting 10,000 large blocks gets the same bytes per round
//! as one wanting three, and the three are served in the first rounds. Each peer's
//! wantlist is capped ([`ServerConfig::max_wants_per_peer`]); past the cap a new want
//! displaces the lowest-priority queued one only if it outranks it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;

use cid::Cid;

use super::message::{
    Block, BlockPresence, MAX_BLOCK_SIZE, MAX_MESSAGE_SIZE, Message, PresenceType, ProtocolVersion,
    WantType, block_wire_len, presence_wire_len,
};

/// Limits and pacing of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Wants kept per peer; more are dropped (see the module docs).
    pub max_wants_per_peer: usize,
    /// Wants handed out per [`Work`], i.e. store lookups per turn.
    pub max_batch_wants: usize,
    /// A response stops growing once it reaches this size (one block may exceed it).
    pub target_message_bytes: usize,
    /// Bytes credited to a peer per round robin turn.
    pub quantum_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_wants_per_peer: 8192,
            max_batch_wants: 64,
            // Up to 2 MiB of blocks per message (the limit is 4 MiB), and credit for a
            // whole largest block per turn, so one block never takes two turns.
            target_message_bytes: 2 << 20,
            quantum_bytes: (2 << 20) + (16 << 10),
        }
    }
}

/// One want from a peer's wantlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub cid: Cid,
    pub want_type: WantType,
    pub send_dont_have: bool,
    pub priority: i32,
}

/// What the store says about a wanted CID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Missing,
    Present { size: usize },
}

/// Counters for one peer, in block data bytes (what the Bitswap ledger exchanges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub blocks_sent: u64,
    pub blocks_received: u64,
    pub messages_received: u64,
    /// Wants refused because the peer's wantlist was full.
    pub wants_dropped: u64,
}

/// What applying a received message did to the peer's wantlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveOutcome {
    pub added: usize,
    pub cancelled: usize,
    /// Refused or evicted because the wantlist was full.
    pub dropped: usize,
}

/// Wants handed out for one peer: look each up and pass the answers to [`Server::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work<P> {
    pub peer: P,
    pub wants: Vec<Want>,
}

/// What to send a peer this turn; read [`Plan::reads`] and pass the data to
/// [`Server::build_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<P> {
    pub peer: P,
    blocks: Vec<Want>,
    presences: Vec<BlockPresence>,
}

impl<P> Plan<P> {
    /// The blocks to read from the store, in sending order.
    pub fn reads(&self) -> impl Iterator<Item = &Cid> {
        self.blocks.iter().map(|w| &w.cid)
    }
}

/// A message for one peer, to be encoded for `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<P> {
    pub peer: P,
    pub version: ProtocolVersion,
    pub message: Message,
}

#[derive(Debug, Clone)]
struct Queued {
    want: Want,
    seq: u64,
    /// Wire cost learned from a lookup that did not fit the peer's allowance.
    cost: Option<usize>,
}

/// Queue order: highest priority first, then first come first served.
type QueueKey = (Reverse<i32>, u64);

#[derive(Debug)]
struct PeerLedger {
    version: ProtocolVersion,
    wants: HashMap<Cid, Queued>,
    queue: BTreeMap<QueueKey, Cid>,
    /// Handed out in a [`Work`] and not yet answered.
    in_flight: HashSet<Cid>,
    busy: bool,
    in_ring: bool,
    deficit: usize,
    next_seq: u64,
    stats: PeerStats,
}

impl PeerLedger {
    fn new(version: ProtocolVersion) -> Self {
        Self {
            version,
            wants: HashMap::new(),
            queue: BTreeMap::new(),
            in_flight: HashSet::new(),
            busy: false,
            in_ring: false,
            deficit: 0,
            next_seq: 0,
            stats: PeerStats::default(),
        }
    }

    fn key(q: &Queued) -> QueueKey {
        (Reverse(q.want.priority), q.seq)
    }

    fn remove(&mut self, cid: &Cid) -> bool {
        match self.wants.remove(cid) {
            Some(q) => {
                self.queue.remove(&Self::key(&q));
                true
            }
            None => false,
        }
    }

    /// Queue `cid` again (after a lookup that did not fit), keeping its place in line.
    fn requeue(&mut self, cid: &Cid, cost: Option<usize>) {
        self.in_flight.remove(cid);
        if let Some(q) = self.wants.get_mut(cid) {
            q.cost = cost.or(q.cost);
            self.queue.insert(Self::key(q), *cid);
        }
    }

    fn upsert(&mut self, want: Want, max: usize, outcome: &mut ReceiveOutcome) {
        if let Some(q) = self.wants.get_mut(&want.cid) {
            let queued = self.queue.remove(&Self::key(q)).is_some();
            // A want-have never downgrades an outstanding want-block.
            if q.want.want_type == WantType::Block {
                q.want.send_dont_have |= want.send_dont_have;
                q.want.priority = want.priority;
            } else {
                q.want = want;
            }
            if queued {
                self.queue.insert(Self::key(q), q.want.cid);
            }
            return;
        }
        if self.wants.len() >= max {
            let lowest = self.queue.iter().next_back().map(|(k, c)| (*k, *c));
            match lowest {
                Some(((Reverse(p), _), victim)) if p < want.priority => {
                    self.remove(&victim);
                }
                _ => {
                    outcome.dropped += 1;
                    self.stats.wants_dropped += 1;
                    return;
                }
            }
            outcome.dropped += 1;
            self.stats.wants_dropped += 1;
        }
        let q = Queued {
            want,
            seq: self.next_seq,
            cost: None,
        };
        self.next_seq += 1;
        // A want already being answered is not queued twice.
        if !self.in_flight.contains(&q.want.cid) {
            self.queue.insert(Self::key(&q), q.want.cid);
        }
        self.wants.insert(q.want.cid, q);
        outcome.added += 1;
    }
}

/// The serving state for all peers. `P` is the peer key (a libp2p `PeerId` in the node).
#[derive(Debug)]
pub struct Server<P> {
    config: ServerConfig,
    peers: HashMap<P, PeerLedger>,
    /// Peers with queued wants and no work outstanding, in turn order.
    ring: VecDeque<P>,
}

impl<P: Clone + Eq + Hash + Ord> Server<P> {
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            peers: HashMap::new(),
            ring: VecDeque::new(),
        }
    }

    /// Apply a message received from `peer` over `version`: wantlist updates (a full
    /// wantlist replaces the old one), cancels, and the ledger's received-bytes counters.
    pub fn receive(
        &mut self,
        peer: &P,
        version: ProtocolVersion,
        message: &Message,
    ) -> ReceiveOutcome {
        let max = self.config.max_wants_per_peer;
        let ledger = self
            .peers
            .entry(peer.clone())
            .or_insert_with(|| PeerLedger::new(version));
        ledger.version = version;
        ledger.stats.messages_received += 1;
        ledger.stats.blocks_received += message.blocks.len() as u64;
        ledger.stats.bytes_received += message
            .blocks
            .iter()
            .map(|b| b.data.len() as u64)
            .sum::<u64>();
        let mut outcome = ReceiveOutcome::default();
        if message.full {
            let keep: HashSet<&Cid> = message
                .wantlist
                .iter()
                .filter(|e| !e.cancel)
                .map(|e| &e.cid)
                .collect();
            let stale: Vec<Cid> = ledger
                .wants
                .keys()
                .filter(|c| !keep.contains(c))
                .copied()
                .collect();
            for cid in stale {
                ledger.remove(&cid);
                outcome.cancelled += 1;
            }
        }
        for entry in &message.wantlist {
            if entry.cancel {
                if ledger.remove(&entry.cid) {
                    outcome.cancelled += 1;
                }
                continue;
            }
            let want_type = if version.supports_have() {
                entry.want_type
            } else {
                WantType::Block
            };
            let want = Want {
                cid: entry.cid,
                want_type,
                send_dont_have: entry.send_dont_have && version.supports_have(),
                priority: entry.priority,
            };
            ledger.upsert(want, max, &mut outcome);
        }
        self.schedule(peer);
        outcome
    }

    /// Forget a peer; returns its final counters.
    pub fn peer_disconnected(&mut self, peer: &P) -> Option<PeerStats> {
        self.peers.remove(peer).map(|l| l.stats)
    }

    pub fn stats(&self, peer: &P) -> Option<&PeerStats> {
        self.peers.get(peer).map(|l| &l.stats)
    }

    /// Number of wants the peer has outstanding with us.
    pub fn wantlist_len(&self, peer: &P) -> usize {
        self.peers.get(peer).map_or(0, |l| l.wants.len())
    }

    /// Whether any peer has wants waiting for a turn.
    pub fn has_work(&self) -> bool {
        !self.ring.is_empty()
    }

    fn schedule(&mut self, peer: &P) {
        if let Some(l) = self.peers.get_mut(peer)
            && !l.busy
            && !l.in_ring
            && !l.queue.is_empty()
        {
            l.in_ring = true;
            self.ring.push_back(peer.clone());
        }
    }

    /// Step 1: the next peer's turn and the wants to look up. A peer whose next want is
    /// known to cost more than its credit is credited and passed over, so a peer waiting
    /// to afford a large block costs no lookups.
    pub fn next_work(&mut self) -> Option<Work<P>> {
        let turns_to_afford = MAX_MESSAGE_SIZE / self.config.quantum_bytes.max(1) + 2;
        let mut budget = self.ring.len().saturating_mul(turns_to_afford);
        while budget > 0 {
            budget -= 1;
            let peer = self.ring.pop_front()?;
            let Some(ledger) = self.peers.get_mut(&peer) else {
                continue;
            };
            ledger.in_ring = false;
            if ledger.queue.is_empty() || ledger.busy {
                ledger.deficit = 0;
                continue;
            }
            ledger.deficit = ledger.deficit.saturating_add(self.config.quantum_bytes);
            let front_cost = ledger
                .queue
                .values()
                .next()
                .and_then(|c| ledger.wants.get(c))
                .and_then(|q| q.cost);
            if front_cost.is_some_and(|cost| cost > ledger.deficit) {
                ledger.in_ring = true;
                self.ring.push_back(peer);
                continue;
            }
            let mut wants = Vec::new();
            while wants.len() < self.config.max_batch_wants {
                let Some((_, cid)) = ledger.queue.pop_first() else {
                    break;
                };
                if let Some(q) = ledger.wants.get(&cid) {
                    ledger.in_flight.insert(cid);
                    wants.push(q.want.clone());
                }
            }
            ledger.busy = true;
            return Some(Work { peer, wants });
        }
        None
    }

    /// Step 2: spend the peer's credit on the looked-up wants (`lookups[i]` answers
    /// `work.wants[i]`; missing answers count as not yet looked up). What does not fit goes
    /// back in the queue in its old place.
    pub fn plan(&mut self, work: Work<P>, lookups: &[Lookup]) -> Plan<P> {
        let mut plan = Plan {
            peer: work.peer,
            blocks: Vec::new(),
            presences: Vec::new(),
        };
        let target = self.config.target_message_bytes;
        let Some(ledger) = self.peers.get_mut(&plan.peer) else {
            return plan;
        };
        let version = ledger.version;
        let mut spent = 0usize;
        let mut full = false;
        for (i, want) in work.wants.iter().enumerate() {
            if !ledger.wants.contains_key(&want.cid) {
                ledger.in_flight.remove(&want.cid); // cancelled meanwhile
                continue;
            }
            let Some(lookup) = lookups.get(i).filter(|_| !full) else {
                ledger.requeue(&want.cid, None);
                continue;
            };
            let answer = match (*lookup, want.want_type) {
                (Lookup::Present { size }, WantType::Block) if size <= MAX_BLOCK_SIZE => {
                    Some((None, block_wire_len(&want.cid, size, version)))
                }
                (Lookup::Present { .. }, WantType::Have) => {
                    Some((Some(PresenceType::Have), presence_wire_len(&want.cid)))
                }
                _ if want.send_dont_have => {
                    Some((Some(PresenceType::DontHave), presence_wire_len(&want.cid)))
                }
                _ => None,
            };
            let Some((presence, cost)) = answer else {
                // Nothing to say: the want is answered by silence.
                ledger.in_flight.remove(&want.cid);
                ledger.remove(&want.cid);
                continue;
            };
            let over_credit = spent + cost > ledger.deficit;
            let over_message = spent > 0 && spent + cost > target;
            if over_credit || over_message {
                full = true;
                ledger.requeue(&want.cid, Some(cost));
                continue;
            }
            spent += cost;
            ledger.in_flight.remove(&want.cid);
            ledger.remove(&want.cid);
            match presence {
                Some(presence) => plan.presences.push(BlockPresence {
                    cid: want.cid,
                    presence,
                }),
                None => plan.blocks.push(want.clone()),
            }
        }
        ledger.deficit -= spent.min(ledger.deficit);
        plan
    }

    /// Step 3: the message for the planned turn, given the blocks read (`None` or absent:
    /// the block vanished, answered with DONT_HAVE if the peer asked for one). Returns `None`
    /// if there is nothing to send or the peer is gone; either way the peer's turn is over.
    pub fn build_response(
        &mut self,
        plan: Plan<P>,
        blocks: Vec<(Cid, Option<Vec<u8>>)>,
    ) -> Option<Response<P>> {
        let peer = plan.peer;
        let ledger = self.peers.get_mut(&peer)?;
        ledger.busy = false;
        if ledger.queue.is_empty() {
            ledger.deficit = 0; // credit is for waiting work, not to bank
        }
        let version = ledger.version;
        let mut data: HashMap<Cid, Vec<u8>> = blocks
            .into_iter()
            .filter_map(|(cid, d)| d.map(|d| (cid, d)))
            .collect();
        let mut message = Message {
            presences: plan.presences,
            ..Message::default()
        };
        if !version.supports_have() {
            message.presences.clear();
        }
        let mut size: usize = message
            .presences
            .iter()
            .map(|p| presence_wire_len(&p.cid))
            .sum();
        for want in plan.blocks {
            match data.remove(&want.cid) {
                Some(d) if d.len() <= MAX_BLOCK_SIZE => {
                    let cost = block_wire_len(&want.cid, d.len(), version);
                    if size + cost > MAX_MESSAGE_SIZE {
                        // The store's answer changed under us; try again next turn.
                        ledger.wants.insert(
                            want.cid,
                            Queued {
                                want: want.clone(),
                                seq: ledger.next_seq,
                                cost: Some(cost),
                            },
                        );
                        ledger.next_seq += 1;
                        ledger.requeue(&want.cid, Some(cost));
                        continue;
                    }
                    size += cost;
                    ledger.stats.blocks_sent += 1;
                    ledger.stats.bytes_sent += d.len() as u64;
                    message.blocks.push(Block {
                        cid: want.cid,
                        data: d.into(),
                    });
                }
                _ if want.send_dont_have && version.supports_have() => {
                    message.presences.push(BlockPresence {
                        cid: want.cid,
                        presence: PresenceType::DontHave,
                    });
                }
                _ => {}
            }
        }
        self.schedule(&peer);
        (!message.is_empty()).then_some(Response {
            peer,
            version,
            message,
        })
    }

    /// All three steps with the store lookups done by `size` and `get`. Returns `None` when
    /// no peer has work; a turn that produced nothing to send is skipped over.
    pub fn serve_next(
        &mut self,
        mut size: impl FnMut(&Cid) -> Option<usize>,
        mut get: impl FnMut(&Cid) -> Option<Vec<u8>>,
    ) -> Option<Response<P>> {
        loop {
            let work = self.next_work()?;
            let lookups: Vec<Lookup> = work
                .wants
                .iter()
                .map(|w| size(&w.cid).map_or(Lookup::Missing, |size| Lookup::Present { size }))
                .collect();
            let plan = self.plan(work, &lookups);
            let blocks = plan.reads().map(|c| (*c, get(c))).collect();
            if let Some(response) = self.build_response(plan, blocks) {
                return Some(response);
            }
        }
    }
}
