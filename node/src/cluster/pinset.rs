//! The replicated cluster pinset: a state-based CRDT every member holds a full copy of.
//!
//! [`Pinset`] maps each CID (as text) to an [`Entry`]: the pin's [`PinSpec`], or `None` for a
//! removal (a tombstone, so a late copy of the pin cannot resurrect it), stamped with a
//! [`Stamp`] = hybrid logical clock time + the writer's peer ID. [`Pinset::merge`] keeps, per
//! key, the larger entry (stamp first, then content, so even equal stamps resolve the same way
//! everywhere): a last-writer-wins map, which makes merge commutative, associative and
//! idempotent (property-tested below). Drains (`cluster drain <peer>`) are a second LWW map of
//! the same shape, so every member learns that a peer is being emptied.
//!
//! [`Clock`] issues stamps that never go backwards and always exceed any stamp seen, so a
//! write made after seeing another write wins over it even with skewed wall clocks.
//! [`Pinset::digest`] is the anti-entropy fingerprint compared in heartbeats.
//!
//! # Pruning tombstones
//! A tombstone cannot simply be dropped once old: a member that never saw it still holds
//! the removed pin's older live entry, and anti-entropy would copy that entry back (the
//! classic state-based CRDT resurrection). [`super::core::Core::prune_tombstones`] drops a
//! tombstone only when both
//! 1. it is older than the tombstone TTL (`--tombstone-ttl`, 24 h), and
//! 2. every member this node knows (alive, leaving, or down but not yet forgotten) has
//!    acknowledged it: a heartbeat of theirs carried a digest equal to ours at a moment our
//!    set held the tombstone, so their set held it too (or something newer for the key).
//!
//! Pruning raises the set's **horizon**, the largest stamp time of a pruned tombstone
//! (persisted, and sent with every full state). Two rules make the horizon safe:
//! - An entry at or below the horizon for a key the set does not hold is refused: it is a
//!   pruned tombstone or the stale entry it had beaten. Every member that acknowledged the
//!   tombstone observed its stamp, so its later writes are stamped above the horizon; what it
//!   wrote before is already here. Only a member cut off (and forgotten) for longer than the
//!   TTL can send such an entry, and it is dropped.
//! - Merging a member's *full* state with horizon `H` drops our entries at or below `H` that
//!   the state lacks: the sender pruned them (or refused them as stale), so the cut-off
//!   member that still holds the old entry lets it go instead of keeping the digests apart.
//!
//! So a member away for longer than the TTL loses the changes it made while away that are
//! stamped below the horizon, the price of bounded tombstones (Cassandra's `gc_grace`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// When and by whom an entry was written. Ordered by time, then peer ID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Hybrid logical clock: milliseconds since the epoch, bumped past anything seen.
    pub time: u64,
    /// Shared between the entries of one writer (see [`PeerNames`]).
    pub peer: Arc<str>,
}

/// What a pin asks of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PinSpec {
    pub name: String,
    pub replication_min: u32,
    pub replication_max: u32,
    /// Cumulative DAG size when the pinning node had it; `None` when it did not.
    pub size: Option<u64>,
    /// Milliseconds since the epoch.
    pub created_ms: u64,
    pub metadata: BTreeMap<String, String>,
}

/// One key's current value: `pin == None` is a removal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entry {
    pub stamp: Stamp,
    pub pin: Option<PinSpec>,
}

/// One drain flag: `draining == false` cancels an earlier drain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DrainEntry {
    pub stamp: Stamp,
    pub draining: bool,
}

/// The whole replicated state (or a delta of it: any subset merges the same way).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinset {
    /// Keyed by CID text; the key is shared with the tracker's note of our own copy
    /// ([`Pinset::key`]).
    pub pins: BTreeMap<Arc<str>, Entry>,
    pub drains: BTreeMap<String, DrainEntry>,
    /// The largest stamp time of a tombstone pruned here or by a member whose full state was
    /// merged (see the module docs); not part of the digest.
    #[serde(default)]
    pub horizon: u64,
    /// The writers' peer IDs, one allocation each for all their entries.
    #[serde(skip)]
    pub names: PeerNames,
}

/// The peer IDs stamps name, kept once: ten thousand pins written by the same few members
/// would otherwise carry ten thousand copies of a 52-byte string. Not part of the state:
/// two sets with the same entries are equal whatever their names.
#[derive(Debug, Clone, Default)]
pub struct PeerNames(BTreeSet<Arc<str>>);

impl PartialEq for PeerNames {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PeerNames {}

impl PeerNames {
    /// The kept copy of `peer`, keeping this one if it is the first.
    pub fn share(&mut self, peer: &Arc<str>) -> Arc<str> {
        if let Some(kept) = self.0.get(&**peer) {
            return Arc::clone(kept);
        }
        self.0.insert(Arc::clone(peer));
        Arc::clone(peer)
    }
}

/// The ID of the pin request an entry records: every member derives the same ID from the
/// replicated entry (CID and stamp), and a new request for the CID (a new stamp) gets a new
/// one. 128 bits of SHA-256, hex.
pub fn request_id(cid: &str, stamp: &Stamp) -> String {
    let mut hash = Sha256::new();
    hash.update(b"distribute pin request\0");
    hash.update(cid.as_bytes());
    hash.update([0]);
    hash.update(stamp.time.to_be_bytes());
    hash.update(stamp.peer.as_bytes());
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keep the larger of two values under `key`; true when `map` changed.
fn lww<V: Ord + Clone>(map: &mut BTreeMap<String, V>, key: &str, value: &V) -> bool {
    match map.get_mut(key) {
        Some(current) if *current >= *value => false,
        Some(current) => {
            *current = value.clone();
            true
        }
        None => {
            map.insert(key.to_owned(), value.clone());
            true
        }
    }
}

impl Pinset {
    /// Merge one pin entry; true when it changed our state.
    pub fn merge_pin(&mut self, cid: &str, entry: &Entry) -> bool {
        let shared = |names: &mut PeerNames| {
            let mut e = entry.clone();
            e.stamp.peer = names.share(&e.stamp.peer);
            e
        };
        match self.pins.get_mut(cid) {
            Some(current) if *current >= *entry => false,
            Some(current) => {
                *current = shared(&mut self.names);
                true
            }
            None => {
                let e = shared(&mut self.names);
                self.pins.insert(cid.into(), e);
                true
            }
        }
    }

    /// Share the peer IDs of every entry (for a set built without [`Pinset::merge_pin`],
    /// such as one read from disk).
    pub fn share_names(&mut self) {
        for e in self.pins.values_mut() {
            e.stamp.peer = self.names.share(&e.stamp.peer);
        }
        for e in self.drains.values_mut() {
            e.stamp.peer = self.names.share(&e.stamp.peer);
        }
    }

    /// Merge one drain entry; true when it changed our state.
    pub fn merge_drain(&mut self, peer: &str, entry: &DrainEntry) -> bool {
        lww(&mut self.drains, peer, entry)
    }

    /// Merge `other` into `self`; returns the CIDs whose pin entry changed and whether any
    /// drain changed.
    pub fn merge(&mut self, other: &Pinset) -> (Vec<String>, bool) {
        let changed = other
            .pins
            .iter()
            .filter(|(cid, entry)| self.merge_pin(cid, entry))
            .map(|(cid, _)| cid.to_string())
            .collect();
        let mut drains = false;
        for (peer, entry) in &other.drains {
            drains |= self.merge_drain(peer, entry);
        }
        self.horizon = self.horizon.max(other.horizon);
        (changed, drains)
    }

    /// The pins that are not removed.
    pub fn live(&self) -> impl Iterator<Item = (&str, &PinSpec)> {
        self.pins
            .iter()
            .filter_map(|(cid, e)| e.pin.as_ref().map(|p| (&**cid, p)))
    }

    /// The shared key of `cid`'s entry, if it has one.
    pub fn key(&self, cid: &str) -> Option<&Arc<str>> {
        self.pins.get_key_value(cid).map(|(k, _)| k)
    }

    pub fn get(&self, cid: &str) -> Option<&PinSpec> {
        self.pins.get(cid).and_then(|e| e.pin.as_ref())
    }

    pub fn is_draining(&self, peer: &str) -> bool {
        self.drains.get(peer).is_some_and(|d| d.draining)
    }

    /// The largest stamp time in the set, so a restarted node's clock starts past it.
    pub fn max_time(&self) -> u64 {
        let pins = self.pins.values().map(|e| e.stamp.time);
        let drains = self.drains.values().map(|e| e.stamp.time);
        pins.chain(drains).max().unwrap_or(0).max(self.horizon)
    }

    /// Fingerprint of the whole state: the XOR of every entry's hash, so it can be kept
    /// current one entry at a time ([`Pinset::merge_pin_tracked`]). Equal sets have equal
    /// digests; different sets collide only by a SHA-256 accident.
    pub fn digest(&self) -> [u8; 32] {
        let mut d = [0u8; 32];
        for (cid, e) in &self.pins {
            xor(&mut d, &pin_hash(cid, e));
        }
        for (peer, e) in &self.drains {
            xor(&mut d, &drain_hash(peer, e));
        }
        d
    }

    /// [`Pinset::merge_pin`], updating `digest` (this set's digest) when it changes.
    pub fn merge_pin_tracked(&mut self, cid: &str, entry: &Entry, digest: &mut [u8; 32]) -> bool {
        let old = self.pins.get(cid).map(|v| pin_hash(cid, v));
        if !self.merge_pin(cid, entry) {
            return false;
        }
        if let Some(old) = old {
            xor(digest, &old);
        }
        xor(digest, &pin_hash(cid, entry));
        true
    }

    /// [`Pinset::merge_drain`], updating `digest` (this set's digest) when it changes.
    pub fn merge_drain_tracked(
        &mut self,
        peer: &str,
        entry: &DrainEntry,
        digest: &mut [u8; 32],
    ) -> bool {
        lww_tracked(&mut self.drains, peer, entry, drain_hash, digest)
    }

    /// Drop the entry of `cid`, updating `digest`; the removed entry, if any.
    pub fn remove_tracked(&mut self, cid: &str, digest: &mut [u8; 32]) -> Option<Entry> {
        let old = self.pins.remove(cid)?;
        xor(digest, &pin_hash(cid, &old));
        Some(old)
    }
}

/// [`lww`], swapping the old value's hash for the new one's in `digest` when it changes.
fn lww_tracked<V: Ord + Clone>(
    map: &mut BTreeMap<String, V>,
    key: &str,
    value: &V,
    hash: fn(&str, &V) -> [u8; 32],
    digest: &mut [u8; 32],
) -> bool {
    let old = map.get(key).map(|v| hash(key, v));
    if !lww(map, key, value) {
        return false;
    }
    if let Some(old) = old {
        xor(digest, &old);
    }
    xor(digest, &hash(key, value));
    true
}

fn xor(into: &mut [u8; 32], other: &[u8; 32]) {
    for (a, b) in into.iter_mut().zip(other) {
        *a ^= b;
    }
}

fn pin_hash(cid: &str, e: &Entry) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"pin\0");
    hash.update(cid.as_bytes());
    hash.update([0]);
    // The whole entry, content too: equal stamps with different content must differ.
    hash.update(serde_json::to_vec(e).unwrap_or_default());
    hash.finalize().into()
}

fn drain_hash(peer: &str, e: &DrainEntry) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"drain\0");
    hash.update(peer.as_bytes());
    hash.update([0]);
    hash.update(serde_json::to_vec(e).unwrap_or_default());
    hash.finalize().into()
}

/// Hybrid logical clock of one node.
#[derive(Debug, Clone)]
pub struct Clock {
    peer: Arc<str>,
    last: u64,
}

impl Clock {
    pub fn new(peer: &str, seen: u64) -> Self {
        Self {
            peer: peer.into(),
            last: seen,
        }
    }

    /// A stamp past every stamp issued or observed so far, and not behind `now_ms`.
    pub fn stamp(&mut self, now_ms: u64) -> Stamp {
        self.last = now_ms.max(self.last.saturating_add(1));
        Stamp {
            time: self.last,
            peer: Arc::clone(&self.peer),
        }
    }

    /// Move past a stamp seen from another node.
    pub fn observe(&mut self, time: u64) {
        self.last = self.last.max(time);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(n: u32) -> PinSpec {
        PinSpec {
            name: format!("p{n}"),
            replication_min: n,
            replication_max: n,
            size: None,
            created_ms: 0,
            metadata: BTreeMap::new(),
        }
    }

    fn entry() -> impl Strategy<Value = Entry> {
        // Few distinct times and peers so equal stamps with different content happen.
        (0u64..4, 0u8..3, proptest::option::of(1u32..4)).prop_map(|(time, peer, pin)| Entry {
            stamp: Stamp {
                time,
                peer: format!("peer{peer}").into(),
            },
            pin: pin.map(spec),
        })
    }

    fn pinset() -> impl Strategy<Value = Pinset> {
        let pins = proptest::collection::btree_map("[a-d]", entry(), 0..5);
        let drains = proptest::collection::btree_map(
            "[x-z]",
            (0u64..4, any::<bool>()).prop_map(|(time, draining)| DrainEntry {
                stamp: Stamp {
                    time,
                    peer: "peer0".into(),
                },
                draining,
            }),
            0..3,
        );
        (pins, drains).prop_map(|(pins, drains)| Pinset {
            pins: pins.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            drains,
            horizon: 0,
            names: PeerNames::default(),
        })
    }

    #[test]
    fn entries_of_one_writer_share_its_peer_id() {
        let entry = |time: u64| Entry {
            stamp: Stamp {
                time,
                peer: String::from("writer").into(),
            },
            pin: Some(spec(1)),
        };
        let mut set = Pinset::default();
        assert!(set.merge_pin("a", &entry(1)));
        assert!(set.merge_pin("b", &entry(2)));
        let mut digest = set.digest();
        assert!(set.merge_pin_tracked("a", &entry(3), &mut digest));
        assert_eq!(digest, set.digest());
        let (a, b) = (&set.pins["a"].stamp.peer, &set.pins["b"].stamp.peer);
        assert!(Arc::ptr_eq(a, b), "one allocation for both");
        let mut loaded = Pinset::default();
        loaded.pins.insert("x".into(), entry(1));
        loaded.pins.insert("y".into(), entry(1));
        loaded.share_names();
        assert!(Arc::ptr_eq(
            &loaded.pins["x"].stamp.peer,
            &loaded.pins["y"].stamp.peer
        ));
    }

    fn merged(a: &Pinset, b: &Pinset) -> Pinset {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in pinset(), b in pinset()) {
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        }

        #[test]
        fn merge_is_associative(a in pinset(), b in pinset(), c in pinset()) {
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        }

        #[test]
        fn merge_is_idempotent(a in pinset(), b in pinset()) {
            let once = merged(&a, &b);
            prop_assert_eq!(merged(&once, &b), once.clone());
            prop_assert_eq!(merged(&a, &a), a);
        }

        #[test]
        fn equal_digest_iff_equal_sets(a in pinset(), b in pinset()) {
            prop_assert_eq!(a.digest() == b.digest(), a == b);
        }

        #[test]
        fn tracked_digest_matches_a_full_recount(a in pinset(), b in pinset()) {
            let mut set = a.clone();
            let mut digest = a.digest();
            for (cid, e) in &b.pins {
                set.merge_pin_tracked(cid, e, &mut digest);
            }
            for (peer, e) in &b.drains {
                set.merge_drain_tracked(peer, e, &mut digest);
            }
            prop_assert_eq!(digest, set.digest());
        }

        #[test]
        fn delivery_order_does_not_matter(updates in proptest::collection::vec(pinset(), 1..6)) {
            let mut forward = Pinset::default();
            for u in &updates { forward.merge(u); }
            let mut backward = Pinset::default();
            for u in updates.iter().rev() { backward.merge(u); }
            prop_assert_eq!(forward, backward);
        }
    }

    #[test]
    fn a_removal_after_the_add_wins_and_a_stale_add_does_not_resurrect() {
        let mut clock = Clock::new("a", 0);
        let add = Entry {
            stamp: clock.stamp(100),
            pin: Some(spec(3)),
        };
        let rm = Entry {
            stamp: clock.stamp(100), // same wall time: the clock still moves forward
            pin: None,
        };
        let mut set = Pinset::default();
        assert!(set.merge_pin("x", &rm));
        assert!(!set.merge_pin("x", &add));
        assert!(set.get("x").is_none());
        assert_eq!(set.live().count(), 0);
    }

    #[test]
    fn clock_moves_past_observed_stamps() {
        let mut clock = Clock::new("a", 0);
        clock.observe(5_000);
        let s = clock.stamp(1_000); // our wall clock is behind
        assert_eq!(s.time, 5_001);
    }
}
