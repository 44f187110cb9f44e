//! The cluster's durable state in the repository's sled database: the pinset
//! (`cluster_pins`: CID → [`Entry`] as a [`record`]; `cluster_drains`: peer → JSON
//! [`DrainEntry`]) and
//! `cluster_held`, the CIDs this node pinned locally on the cluster's behalf (so releasing a
//! copy never removes a pin the user made by hand); `cluster_meta` holds the pinset's
//! tombstone horizon (`horizon`: u64 big-endian).

use sled::{Db, Tree};
use thiserror::Error;

use super::pinset::{DrainEntry, Entry, Pinset};
use super::record;

/// A cluster state read or write that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterStoreError {
    #[error("sled {op}: {source}; the datastore may be damaged, run `repo verify`")]
    Sled {
        op: &'static str,
        source: sled::Error,
    },
    #[error("cluster record {key:?} is damaged: {reason}")]
    BadRecord { key: String, reason: String },
}

fn sled_err(op: &'static str) -> impl Fn(sled::Error) -> ClusterStoreError {
    move |source| ClusterStoreError::Sled { op, source }
}

/// Handle on the cluster trees.
#[derive(Debug, Clone)]
pub struct ClusterStore {
    pins: Tree,
    drains: Tree,
    held: Tree,
    meta: Tree,
}

const HORIZON: &[u8] = b"horizon";

/// The record under `key` could not be read.
fn bad_record(key: &[u8], reason: impl std::fmt::Display) -> ClusterStoreError {
    ClusterStoreError::BadRecord {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.to_string(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    key: &[u8],
    value: &[u8],
) -> Result<T, ClusterStoreError> {
    serde_json::from_slice(value).map_err(|e| bad_record(key, e))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ClusterStoreError> {
    serde_json::to_vec(value).map_err(|e| ClusterStoreError::BadRecord {
        key: String::new(),
        reason: e.to_string(),
    })
}

impl ClusterStore {
    pub fn open(db: &Db) -> Result<Self, ClusterStoreError> {
        Ok(Self {
            pins: db
                .open_tree("cluster_pins")
                .map_err(sled_err("open tree"))?,
            drains: db
                .open_tree("cluster_drains")
                .map_err(sled_err("open tree"))?,
            held: db
                .open_tree("cluster_held")
                .map_err(sled_err("open tree"))?,
            meta: db
                .open_tree("cluster_meta")
                .map_err(sled_err("open tree"))?,
        })
    }

    /// The persisted pinset.
    pub fn load(&self) -> Result<Pinset, ClusterStoreError> {
        let mut set = Pinset::default();
        for item in self.pins.iter() {
            let (k, v) = item.map_err(sled_err("read"))?;
            let entry = record::decode(&v).map_err(|e| bad_record(&k, e))?;
            set.pins
                .insert(String::from_utf8_lossy(&k).into_owned(), entry);
        }
        for item in self.drains.iter() {
            let (k, v) = item.map_err(sled_err("read"))?;
            let entry: DrainEntry = decode(&k, &v)?;
            set.drains
                .insert(String::from_utf8_lossy(&k).into_owned(), entry);
        }
        if let Some(v) = self.meta.get(HORIZON).map_err(sled_err("read"))? {
            let bytes: [u8; 8] =
                v.as_ref()
                    .try_into()
                    .map_err(|_| ClusterStoreError::BadRecord {
                        key: "horizon".into(),
                        reason: format!("{} bytes, not 8", v.len()),
                    })?;
            set.horizon = u64::from_be_bytes(bytes);
        }
        Ok(set)
    }

    /// Delete the entry of `cid` (a pruned tombstone).
    pub fn remove_pin(&self, cid: &str) -> Result<(), ClusterStoreError> {
        self.pins
            .remove(cid.as_bytes())
            .map_err(sled_err("write"))?;
        Ok(())
    }

    pub fn set_horizon(&self, horizon: u64) -> Result<(), ClusterStoreError> {
        self.meta
            .insert(HORIZON, &horizon.to_be_bytes())
            .map_err(sled_err("write"))?;
        Ok(())
    }

    /// Write pin entries, all in one batch.
    pub fn put_pins<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a Entry)>,
    ) -> Result<(), ClusterStoreError> {
        let mut batch = sled::Batch::default();
        for (cid, entry) in entries {
            batch.insert(cid.as_bytes(), record::encode(entry));
        }
        self.pins.apply_batch(batch).map_err(sled_err("write"))
    }

    pub fn put_drain(&self, peer: &str, entry: &DrainEntry) -> Result<(), ClusterStoreError> {
        self.drains
            .insert(peer.as_bytes(), encode(entry)?)
            .map_err(sled_err("write"))?;
        Ok(())
    }

    /// CIDs this node pinned for the cluster.
    pub fn held(&self) -> Result<Vec<String>, ClusterStoreError> {
        self.held
            .iter()
            .keys()
            .map(|k| {
                k.map(|k| String::from_utf8_lossy(&k).into_owned())
                    .map_err(sled_err("read"))
            })
            .collect()
    }

    pub fn is_held(&self, cid: &str) -> Result<bool, ClusterStoreError> {
        self.held
            .contains_key(cid.as_bytes())
            .map_err(sled_err("read"))
    }

    pub fn set_held(&self, cid: &str, held: bool) -> Result<(), ClusterStoreError> {
        if held {
            self.held
                .insert(cid.as_bytes(), &[])
                .map_err(sled_err("write"))?;
        } else {
            self.held
                .remove(cid.as_bytes())
                .map_err(sled_err("write"))?;
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<(), ClusterStoreError> {
        self.pins.flush().map_err(sled_err("flush"))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::cluster::pinset::{PinSpec, Stamp};

    #[test]
    fn pinset_and_held_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let entry = Entry {
            stamp: Stamp {
                time: 7,
                peer: "p".into(),
            },
            pin: Some(PinSpec {
                name: "n".into(),
                replication_min: 2,
                replication_max: 3,
                size: Some(5),
                created_ms: 1,
                metadata: Default::default(),
            }),
        };
        {
            let db = sled::open(dir.path()).unwrap();
            let s = ClusterStore::open(&db).unwrap();
            s.put_pins([("cid", &entry), ("gone", &entry)]).unwrap();
            s.remove_pin("gone").unwrap();
            s.set_horizon(42).unwrap();
            s.set_held("cid", true).unwrap();
            s.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let s = ClusterStore::open(&db).unwrap();
        let set = s.load().unwrap();
        assert_eq!(set.pins["cid"], entry);
        assert_eq!(set.pins.len(), 1);
        assert_eq!(set.horizon, 42);
        assert_eq!(s.held().unwrap(), vec!["cid".to_owned()]);
    }
}
