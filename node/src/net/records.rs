//! [`ProviderStore`]: the Kademlia record store. Value records and other peers' provider
//! records live in libp2p's bounded [`MemoryStore`]; the keys this node provides itself are a
//! plain set of keys beside it.
//!
//! The split matters for nodes with many pins. `MemoryStore` refuses a new provider key once
//! it holds 1,024 of them (so the 1,025th pin would never be announced) and keeps each key's
//! providers in an inline array sized for 20 records (kilobytes per key, even for the one
//! record a node keeps for its own content). Our own records carry nothing but the key: the
//! provider is this node, they never expire (the announcer re-announces and kad fills in the
//! current listen addresses when it answers), so a set of keys describes them exactly.
//!
//! Other peers' provider records are kept here too, in a plain map of vectors, with
//! `MemoryStore`'s limits and rules (1,024 keys, 20 providers per key, a full list ignores
//! newcomers): `MemoryStore` reserves the 20-record inline array for every key, about 6 KiB,
//! so a member of a 3-node cluster storing its peers' records for 1,024 keys spent 6.3 MiB
//! on them (heaptrack).

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use libp2p::PeerId;
use libp2p::kad::store::{Error, MemoryStore, RecordStore, Result};
use libp2p::kad::{ProviderRecord, Record, RecordKey};

/// Record store of the node's Kademlia behaviour.
pub struct ProviderStore {
    local: PeerId,
    /// Keys this node provides, as bytes: a `RecordKey` in a set costs twice as much.
    provided: HashSet<Box<[u8]>>,
    /// Value records (bounded by libp2p's defaults).
    others: MemoryStore,
    /// Other peers' provider records.
    providers: HashMap<RecordKey, Vec<ProviderRecord>>,
}

/// Most keys other peers' provider records are kept for (as `MemoryStore`).
const MAX_OTHER_KEYS: usize = 1024;
/// Most providers kept per key (as `MemoryStore`: the DHT's replication factor).
const MAX_PROVIDERS_PER_KEY: usize = 20;

impl ProviderStore {
    pub fn new(local: PeerId) -> Self {
        Self {
            local,
            provided: HashSet::new(),
            others: MemoryStore::new(local),
            providers: HashMap::new(),
        }
    }

    /// Number of keys this node provides.
    pub fn provided_len(&self) -> usize {
        self.provided.len()
    }

    /// Whether this node provides `key`.
    pub fn is_provided(&self, key: &[u8]) -> bool {
        self.provided.contains(key)
    }

    /// The provided keys that are not in `keep`.
    pub fn provided_except(&self, keep: &HashSet<Vec<u8>>) -> Vec<RecordKey> {
        self.provided
            .iter()
            .filter(|k| !keep.contains(&***k))
            .map(RecordKey::new)
            .collect()
    }

    fn own_record(&self, key: &[u8]) -> ProviderRecord {
        ProviderRecord::new(RecordKey::new(&key), self.local, Vec::new())
    }
}

impl RecordStore for ProviderStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = Box<dyn Iterator<Item = Cow<'a, ProviderRecord>> + 'a>;

    fn get(&self, key: &RecordKey) -> Option<Cow<'_, Record>> {
        self.others.get(key)
    }

    fn put(&mut self, record: Record) -> Result<()> {
        self.others.put(record)
    }

    fn remove(&mut self, key: &RecordKey) {
        self.others.remove(key)
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.others.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        if record.provider == self.local {
            self.provided.insert(record.key.to_vec().into_boxed_slice());
            return Ok(());
        }
        let known = self.providers.len();
        let list = match self.providers.entry(record.key.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if known >= MAX_OTHER_KEYS => return Err(Error::MaxProvidedKeys),
            Entry::Vacant(e) => e.insert(Vec::with_capacity(1)),
        };
        if let Some(p) = list.iter_mut().find(|p| p.provider == record.provider) {
            *p = record;
        } else if list.len() < MAX_PROVIDERS_PER_KEY {
            // A full list ignores newcomers, which blunts floods of fake providers.
            list.push(record);
        }
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let mut out = self.providers.get(key).cloned().unwrap_or_default();
        if self.provided.contains(key.as_ref()) {
            out.insert(0, self.own_record(key.as_ref()));
        }
        out
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        Box::new(
            self.provided
                .iter()
                .map(|key| Cow::Owned(self.own_record(key))),
        )
    }

    fn remove_provider(&mut self, key: &RecordKey, provider: &PeerId) {
        if *provider == self.local {
            self.provided.remove(key.as_ref());
        } else if let Some(list) = self.providers.get_mut(key) {
            list.retain(|p| p.provider != *provider);
            if list.is_empty() {
                self.providers.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> RecordKey {
        RecordKey::new(&format!("key {i}"))
    }

    #[test]
    fn thousands_of_own_keys_are_all_kept_and_listed() {
        let me = PeerId::random();
        let mut store = ProviderStore::new(me);
        for i in 0..5_000 {
            store
                .add_provider(ProviderRecord::new(key(i), me, Vec::new()))
                .unwrap();
        }
        // A repeated announcement changes nothing.
        store
            .add_provider(ProviderRecord::new(key(7), me, Vec::new()))
            .unwrap();
        assert_eq!(store.provided_len(), 5_000);
        assert_eq!(store.provided().count(), 5_000);
        let found = store.providers(&key(4_999));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].provider, me);
        assert!(found[0].addresses.is_empty(), "kad fills in our addresses");
        assert!(found[0].expires.is_none());
    }

    #[test]
    fn the_announcer_asks_what_is_provided_and_what_is_not_kept() {
        let me = PeerId::random();
        let other = PeerId::random();
        let mut store = ProviderStore::new(me);
        for i in 0..4 {
            store
                .add_provider(ProviderRecord::new(key(i), me, Vec::new()))
                .unwrap();
        }
        store
            .add_provider(ProviderRecord::new(key(9), other, Vec::new()))
            .unwrap();
        assert!(store.is_provided(key(3).as_ref()));
        assert!(
            !store.is_provided(key(9).as_ref()),
            "another peer's record is not ours"
        );
        let keep: HashSet<Vec<u8>> = [key(1), key(3), key(5)]
            .iter()
            .map(|k| k.to_vec())
            .collect();
        let mut gone = store.provided_except(&keep);
        gone.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        assert_eq!(gone, [key(0), key(2)]);
    }

    #[test]
    fn other_peers_records_are_bounded_like_libp2ps_store() {
        let me = PeerId::random();
        let other = PeerId::random();
        let mut store = ProviderStore::new(me);
        for i in 0..MAX_OTHER_KEYS as u32 {
            store
                .add_provider(ProviderRecord::new(key(i), other, Vec::new()))
                .unwrap();
        }
        let past = ProviderRecord::new(key(1_000_000), other, Vec::new());
        assert!(matches!(
            store.add_provider(past),
            Err(Error::MaxProvidedKeys)
        ));
        // Our own keys are not limited by theirs.
        store
            .add_provider(ProviderRecord::new(key(1_000_000), me, Vec::new()))
            .unwrap();

        let peers: Vec<PeerId> = (0..MAX_PROVIDERS_PER_KEY + 5)
            .map(|_| PeerId::random())
            .collect();
        for p in &peers {
            store
                .add_provider(ProviderRecord::new(key(3), *p, Vec::new()))
                .unwrap();
        }
        let listed = store.providers(&key(3));
        assert_eq!(
            listed.len(),
            MAX_PROVIDERS_PER_KEY,
            "a full list ignores newcomers"
        );
        assert_eq!(listed[0].provider, other, "the first provider is kept");

        // A provider announcing again replaces its record instead of adding one.
        let addr: libp2p::Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        store
            .add_provider(ProviderRecord::new(key(5), other, vec![addr.clone()]))
            .unwrap();
        let listed = store.providers(&key(5));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].addresses, [addr]);
    }

    #[test]
    fn other_peers_records_sit_beside_ours_and_are_removed_separately() {
        let me = PeerId::random();
        let other = PeerId::random();
        let mut store = ProviderStore::new(me);
        store
            .add_provider(ProviderRecord::new(key(1), other, Vec::new()))
            .unwrap();
        store
            .add_provider(ProviderRecord::new(key(1), me, Vec::new()))
            .unwrap();
        let providers: Vec<PeerId> = store
            .providers(&key(1))
            .iter()
            .map(|r| r.provider)
            .collect();
        assert_eq!(providers, [me, other]);
        assert_eq!(
            store.provided().count(),
            1,
            "only our own records are 'provided'"
        );

        store.remove_provider(&key(1), &me);
        let providers: Vec<PeerId> = store
            .providers(&key(1))
            .iter()
            .map(|r| r.provider)
            .collect();
        assert_eq!(providers, [other]);
        store.remove_provider(&key(1), &other);
        assert!(store.providers(&key(1)).is_empty());
        assert!(store.providers(&key(2)).is_empty());
    }

    #[test]
    fn value_records_go_to_the_bounded_store() {
        let me = PeerId::random();
        let mut store = ProviderStore::new(me);
        store.put(Record::new(key(3), b"value".to_vec())).unwrap();
        assert_eq!(
            store.get(&key(3)).map(|r| r.value.clone()),
            Some(b"value".to_vec())
        );
        assert_eq!(store.records().count(), 1);
        store.remove(&key(3));
        assert!(store.get(&key(3)).is_none());
    }
}
