//! The on-disk form of a cluster pinset entry (in the cluster journal, see [`super::store`]):
//! a compact binary record, about a third of the JSON it replaced (every member keeps one per
//! cluster pin). Records written as JSON by earlier versions are still read: they start with
//! `{`, which no binary record does.
//!
//! Layout, version 1 (`uvarint` = unsigned LEB128, `str` = uvarint length + UTF-8 bytes):
//!
//! ```text
//! 0x01  stamp.time: uvarint  stamp.peer: str
//! pin:  0x00 (removal)
//!     | 0x01 name: str  replication_min: uvarint  replication_max: uvarint
//!            size: 0x00 | 0x01 uvarint  created_ms: uvarint
//!            metadata: uvarint count, then count × (key: str, value: str)
//! ```

use std::collections::BTreeMap;

use super::pinset::{Entry, PinSpec, Stamp};

/// First byte of a version 1 record.
const VERSION: u8 = 1;

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    #[error("the record is empty")]
    Empty,
    #[error("unknown record version {0}")]
    Version(u8),
    #[error("the record ends inside {0}")]
    Truncated(&'static str),
    #[error("{0} is out of range")]
    Range(&'static str),
    #[error("{0} is not UTF-8")]
    Text(&'static str),
    #[error("{0} bytes after the end of the record")]
    Trailing(usize),
    #[error("old JSON record: {0}")]
    Json(String),
}

/// The record of `entry`.
pub fn encode(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.push(VERSION);
    put_uvarint(&mut out, entry.stamp.time);
    put_str(&mut out, &entry.stamp.peer);
    match &entry.pin {
        None => out.push(0),
        Some(pin) => {
            out.push(1);
            put_str(&mut out, &pin.name);
            put_uvarint(&mut out, u64::from(pin.replication_min));
            put_uvarint(&mut out, u64::from(pin.replication_max));
            match pin.size {
                None => out.push(0),
                Some(size) => {
                    out.push(1);
                    put_uvarint(&mut out, size);
                }
            }
            put_uvarint(&mut out, pin.created_ms);
            put_uvarint(&mut out, pin.metadata.len() as u64);
            for (key, value) in &pin.metadata {
                put_str(&mut out, key);
                put_str(&mut out, value);
            }
        }
    }
    out
}

/// The entry in `bytes`: a binary record, or the JSON an earlier version wrote.
pub fn decode(bytes: &[u8]) -> Result<Entry, RecordError> {
    match bytes.first() {
        None => Err(RecordError::Empty),
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| RecordError::Json(e.to_string())),
        Some(&VERSION) => {
            let mut r = Reader(&bytes[1..]);
            let entry = r.entry()?;
            match r.0.len() {
                0 => Ok(entry),
                n => Err(RecordError::Trailing(n)),
            }
        }
        Some(&other) => Err(RecordError::Version(other)),
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self, what: &'static str) -> Result<u8, RecordError> {
        let (&b, rest) = self.0.split_first().ok_or(RecordError::Truncated(what))?;
        self.0 = rest;
        Ok(b)
    }

    fn uvarint(&mut self, what: &'static str) -> Result<u64, RecordError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(RecordError::Range(what));
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(RecordError::Range(what))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RecordError> {
        u32::try_from(self.uvarint(what)?).map_err(|_| RecordError::Range(what))
    }

    fn string(&mut self, what: &'static str) -> Result<String, RecordError> {
        let len = usize::try_from(self.uvarint(what)?).map_err(|_| RecordError::Range(what))?;
        if len > self.0.len() {
            return Err(RecordError::Truncated(what));
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(text.to_vec()).map_err(|_| RecordError::Text(what))
    }

    fn flag(&mut self, what: &'static str) -> Result<bool, RecordError> {
        match self.byte(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RecordError::Range(what)),
        }
    }

    fn entry(&mut self) -> Result<Entry, RecordError> {
        let stamp = Stamp {
            time: self.uvarint("the stamp's time")?,
            peer: self.string("the stamp's peer")?.into(),
        };
        if !self.flag("the removal flag")? {
            return Ok(Entry { stamp, pin: None });
        }
        let name = self.string("the name")?;
        let replication_min = self.u32("replication_min")?;
        let replication_max = self.u32("replication_max")?;
        let size = if self.flag("the size flag")? {
            Some(self.uvarint("the size")?)
        } else {
            None
        };
        let created_ms = self.uvarint("created_ms")?;
        let count = self.uvarint("the metadata count")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..count {
            let key = self.string("a metadata key")?;
            let value = self.string("a metadata value")?;
            metadata.insert(key, value);
        }
        Ok(Entry {
            stamp,
            pin: Some(PinSpec {
                name,
                replication_min,
                replication_max,
                size,
                created_ms,
                metadata,
            }),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pin_entry() -> Entry {
        Entry {
            stamp: Stamp {
                time: 1_764_680_000_123,
                peer: "12D3KooWBmqBAYKUbiHdcVwC9YSHmLzhrWhNn9G6L1GNf2rVSzij".into(),
            },
            pin: Some(PinSpec {
                name: "backups".into(),
                replication_min: 2,
                replication_max: 3,
                size: Some(104_857_600),
                created_ms: 1_764_680_000_000,
                metadata: [("app".to_owned(), "nft".to_owned())].into_iter().collect(),
            }),
        }
    }

    #[test]
    fn a_record_is_a_third_of_the_json_and_reads_back() {
        let entry = pin_entry();
        let record = encode(&entry);
        let json = serde_json::to_vec(&entry).unwrap();
        assert!(
            record.len() * 2 < json.len(),
            "{} vs {}",
            record.len(),
            json.len()
        );
        assert_eq!(decode(&record).unwrap(), entry);
    }

    #[test]
    fn json_records_of_earlier_versions_still_read() {
        let entry = pin_entry();
        assert_eq!(decode(&serde_json::to_vec(&entry).unwrap()).unwrap(), entry);
        let removal = Entry {
            stamp: entry.stamp,
            pin: None,
        };
        assert_eq!(
            decode(&serde_json::to_vec(&removal).unwrap()).unwrap(),
            removal
        );
    }

    #[test]
    fn damaged_records_are_named_errors() {
        let record = encode(&pin_entry());
        assert_eq!(decode(&[]), Err(RecordError::Empty));
        assert_eq!(decode(&[9, 1, 2]), Err(RecordError::Version(9)));
        for cut in 1..record.len() {
            assert!(
                matches!(decode(&record[..cut]), Err(RecordError::Truncated(_))),
                "cut at {cut}: {:?}",
                decode(&record[..cut])
            );
        }
        let mut longer = record.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(RecordError::Trailing(1)));
        // A 10-byte varint above u64::MAX.
        let mut huge = vec![VERSION];
        huge.extend_from_slice(&[0xff; 9]);
        huge.push(0x7f);
        assert_eq!(decode(&huge), Err(RecordError::Range("the stamp's time")));
    }

    fn any_entry() -> impl Strategy<Value = Entry> {
        let spec = (
            ".{0,12}",
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any::<u64>()),
            any::<u64>(),
            proptest::collection::btree_map(".{0,6}", ".{0,6}", 0..4),
        )
            .prop_map(
                |(name, replication_min, replication_max, size, created_ms, metadata)| PinSpec {
                    name,
                    replication_min,
                    replication_max,
                    size,
                    created_ms,
                    metadata,
                },
            );
        (any::<u64>(), ".{0,60}", proptest::option::of(spec)).prop_map(|(time, peer, pin)| Entry {
            stamp: Stamp {
                time,
                peer: peer.into(),
            },
            pin,
        })
    }

    proptest! {
        #[test]
        fn every_entry_reads_back(entry in any_entry()) {
            prop_assert_eq!(decode(&encode(&entry)).unwrap(), entry);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
