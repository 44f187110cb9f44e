//! Links of a block, whatever its codec: what GC, pin checks, DAG export and repo verify walk.
//!
//! dag-pb links come from `PBNode.Links`, dag-cbor links are every tag-42 CID anywhere in the
//! value (found by [`cbor::links`] without building a tree), dag-json links are every
//! `{"/": "<cid>"}` object. raw blocks and codecs we do not know (plain cbor, json, ...) are
//! leaves. A block that claims a linking codec but does not decode is an error naming the CID.

use cid::Cid;
use thiserror::Error;

use super::cbor::{self, CborError};
use super::cid::{CODEC_DAG_PB, CODEC_RAW};
use super::dagpb::{DagPbError, PbNode};

/// Multicodec of dag-cbor blocks.
pub const CODEC_DAG_CBOR: u64 = 0x71;
/// Multicodec of dag-json blocks.
pub const CODEC_DAG_JSON: u64 = 0x0129;

/// A block whose links could not be read. Sources are boxed to keep `Result`s small.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinksError {
    #[error("block {cid}: {source}")]
    DagPb { cid: Cid, source: Box<DagPbError> },
    #[error("block {cid}: {source}")]
    DagCbor { cid: Cid, source: Box<CborError> },
    #[error("block {cid}: invalid dag-json: {reason}")]
    DagJson { cid: Cid, reason: String },
}

/// The CIDs a block links to, in order.
pub fn links(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, LinksError> {
    match cid.codec() {
        CODEC_DAG_PB => PbNode::decode_parts(data)
            .map(|(links, _)| links.into_iter().map(|l| l.cid).collect())
            .map_err(|source| LinksError::DagPb {
                cid: *cid,
                source: Box::new(source),
            }),
        CODEC_DAG_CBOR => cbor::links(data).map_err(|source| LinksError::DagCbor {
            cid: *cid,
            source: Box::new(source),
        }),
        CODEC_DAG_JSON => {
            dag_json_links(data).map_err(|reason| LinksError::DagJson { cid: *cid, reason })
        }
        CODEC_RAW => Ok(Vec::new()),
        _ => Ok(Vec::new()),
    }
}

/// Links of a dag-json document: objects whose only key is `"/"` with a string value.
/// serde_json limits nesting itself (128 levels), so hostile input cannot exhaust the stack.
fn dag_json_links(data: &[u8]) -> Result<Vec<Cid>, String> {
    let value: serde_json::Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut pending = vec![&value];
    while let Some(v) = pending.pop() {
        match v {
            serde_json::Value::Array(items) => pending.extend(items.iter().rev()),
            serde_json::Value::Object(map) => match (map.len(), map.get("/")) {
                (1, Some(serde_json::Value::String(s))) => {
                    out.push(Cid::try_from(s.as_str()).map_err(|e| format!("link {s:?}: {e}"))?);
                }
                // `{"/": {"bytes": ...}}` is dag-json's byte string, not a link.
                (1, Some(serde_json::Value::Object(_))) => {}
                _ => pending.extend(map.values().rev()),
            },
            _ => {}
        }
    }
    Ok(out)
}

/// A seeded generator of random and mutated inputs, so decoders of untrusted bytes are
/// exercised by the ordinary test suite, not only by `cargo fuzz`.
#[cfg(test)]
pub(crate) mod fuzzing {
    /// xorshift64*: deterministic, dependency-free, good enough to pick mutations.
    pub(crate) struct XorShift(u64);

    impl XorShift {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed | 1)
        }

        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// A number in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }

        /// One of: pure random bytes, or a seed with a few bytes flipped, inserted, removed,
        /// or truncated.
        pub(crate) fn mutate(&mut self, seeds: &[Vec<u8>]) -> Vec<u8> {
            if seeds.is_empty() || self.below(8) == 0 {
                let len = self.below(64);
                return self.bytes(len);
            }
            let mut out = seeds[self.below(seeds.len())].clone();
            for _ in 0..=self.below(4) {
                let at = self.below(out.len() + 1);
                match self.below(5) {
                    0 if at < out.len() => out[at] ^= 1 << self.below(8),
                    1 if at < out.len() => out[at] = self.next() as u8,
                    2 => out.insert(at, self.next() as u8),
                    3 if at < out.len() => {
                        out.remove(at);
                    }
                    _ => out.truncate(at),
                }
            }
            out
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::fuzzing::XorShift;
    use super::*;
    use crate::content::cbor::{Value, encode};
    use crate::content::cid::block_cid;
    use crate::content::dagpb::PbLink;
    use crate::content::unixfs::UnixfsData;

    #[test]
    fn finds_links_in_every_linking_codec() {
        let a = block_cid(CODEC_RAW, 1, b"a");
        let b = block_cid(CODEC_DAG_PB, 0, b"b");
        let pb = PbNode {
            links: vec![PbLink::new(a, "x", 1), PbLink::new(b, "y", 1)],
            data: None,
        }
        .encode();
        assert_eq!(links(&block_cid(CODEC_DAG_PB, 1, &pb), &pb), Ok(vec![a, b]));

        let value = Value::Map(vec![
            (
                "z".into(),
                Value::Array(vec![Value::Link(a), Value::Integer(3)]),
            ),
            (
                "deep".into(),
                Value::Map(vec![("l".into(), Value::Link(b))]),
            ),
        ]);
        let cbor = encode(&value).unwrap();
        // Canonical order puts "z" before "deep".
        assert_eq!(
            links(&block_cid(CODEC_DAG_CBOR, 1, &cbor), &cbor),
            Ok(vec![a, b])
        );

        let json = format!(
            r#"{{"a":[{{"/":"{a}"}},{{"/":{{"bytes":"AAE"}}}}],"b":{{"c":{{"/":"{b}"}}}}}}"#
        );
        let json_cid = block_cid(CODEC_DAG_JSON, 1, json.as_bytes());
        assert_eq!(links(&json_cid, json.as_bytes()), Ok(vec![a, b]));

        assert_eq!(links(&block_cid(CODEC_RAW, 1, &cbor), &cbor), Ok(vec![]));
    }

    #[test]
    fn undecodable_blocks_name_their_cid() {
        let cid = block_cid(CODEC_DAG_CBOR, 1, b"\xff");
        let err = links(&cid, b"\xff").unwrap_err();
        assert!(matches!(err, LinksError::DagCbor { cid: c, .. } if c == cid));
        assert!(err.to_string().contains(&cid.to_string()));
        let cid = block_cid(CODEC_DAG_JSON, 1, b"{");
        assert!(matches!(links(&cid, b"{"), Err(LinksError::DagJson { .. })));
        let deep = "[".repeat(100_000);
        assert!(
            links(&cid, deep.as_bytes()).is_err(),
            "deep JSON is refused, not a stack overflow"
        );
    }

    /// dag-pb and UnixFS decoders on thousands of mutated inputs: never a panic, and anything
    /// dag-pb accepts re-encodes and decodes to the same node.
    #[test]
    fn dagpb_and_unixfs_decoders_survive_mutated_input() {
        let child = block_cid(CODEC_RAW, 1, b"leaf");
        let mut file = UnixfsData::new(crate::content::unixfs::DataType::File);
        file.filesize = Some(10);
        file.blocksizes = vec![4, 6];
        let unixfs = file.encode();
        let node = PbNode {
            links: vec![PbLink::new(child, "name", 4)],
            data: Some(unixfs.clone()),
        };
        let seeds = vec![node.encode(), unixfs];
        let mut rng = XorShift::new(7);
        let mut accepted = 0;
        for _ in 0..5000 {
            let input = rng.mutate(&seeds);
            let _ = UnixfsData::decode(&input);
            if let Ok(decoded) = PbNode::decode(&input) {
                accepted += 1;
                assert_eq!(PbNode::decode(&decoded.encode()).as_ref(), Ok(&decoded));
            }
        }
        assert!(
            accepted > 50,
            "mutations should sometimes stay valid ({accepted})"
        );
    }
}
