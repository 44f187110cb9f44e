//! dag-pb (multicodec 0x70): the `PBNode`/`PBLink` block format UnixFS is built on.
//!
//! Encoding follows the dag-pb spec's canonical form, which Kubo produces byte for byte: links
//! first (each `Hash`, `Name`, `Tsize` in that order), then `Data`. Decoding is strict enough to
//! refuse what the spec forbids (unknown fields, data before links, a link without a hash) and
//! never panics on untrusted bytes.

use cid::Cid;
use thiserror::Error;

use super::proto::{self, Field, ProtoError, Reader};

/// A dag-pb block that could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DagPbError {
    #[error("malformed dag-pb: {0}")]
    Proto(#[from] ProtoError),
    #[error("malformed dag-pb: {0}")]
    Invalid(&'static str),
    #[error("malformed dag-pb: link hash is not a CID: {0}")]
    BadLinkCid(String),
}

/// A named, sized link to another block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    pub cid: Cid,
    pub name: Option<String>,
    /// Total size of the DAG below the link (the target block plus everything it links to).
    pub tsize: Option<u64>,
}

impl PbLink {
    /// A link as UnixFS writes it: name always present (possibly empty), size always present.
    pub fn new(cid: Cid, name: impl Into<String>, tsize: u64) -> Self {
        Self {
            cid,
            name: Some(name.into()),
            tsize: Some(tsize),
        }
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    fn encoded_len(&self, cid_len: usize) -> usize {
        let mut len = proto::bytes_field_len(cid_len);
        if let Some(name) = &self.name {
            len += proto::bytes_field_len(name.len());
        }
        if let Some(tsize) = self.tsize {
            len += 1 + proto::varint_len(tsize);
        }
        len
    }
}

/// A decoded dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    pub links: Vec<PbLink>,
    pub data: Option<Vec<u8>>,
}

impl PbNode {
    /// Canonical dag-pb bytes of this node.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for link in &self.links {
            let cid = link.cid.to_bytes();
            proto::put_tag(&mut out, 2, proto::WIRE_LEN);
            proto::put_varint(&mut out, link.encoded_len(cid.len()) as u64);
            proto::put_bytes_field(&mut out, 1, &cid);
            if let Some(name) = &link.name {
                proto::put_bytes_field(&mut out, 2, name.as_bytes());
            }
            if let Some(tsize) = link.tsize {
                proto::put_varint_field(&mut out, 3, tsize);
            }
        }
        if let Some(data) = &self.data {
            proto::put_bytes_field(&mut out, 1, data);
        }
        out
    }

    /// Size of [`PbNode::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        let links: usize = self
            .links
            .iter()
            .map(|l| proto::bytes_field_len(l.encoded_len(l.cid.encoded_len())))
            .sum();
        links
            + self
                .data
                .as_ref()
                .map_or(0, |d| proto::bytes_field_len(d.len()))
    }

    /// Decode a dag-pb block.
    pub fn decode(bytes: &[u8]) -> Result<Self, DagPbError> {
        let (links, data) = Self::decode_parts(bytes)?;
        Ok(PbNode {
            links,
            data: data.map(<[u8]>::to_vec),
        })
    }

    /// [`PbNode::decode`] with the data field borrowed from `bytes`, not copied: for readers
    /// that only look at it (a 256 KiB file leaf is mostly data).
    pub fn decode_parts(bytes: &[u8]) -> Result<(Vec<PbLink>, Option<&[u8]>), DagPbError> {
        let mut links = Vec::new();
        let mut data = None;
        let mut reader = Reader::new(bytes);
        while let Some(field) = reader.next_field()? {
            match field {
                Field::Bytes(2, link) => {
                    if data.is_some() {
                        return Err(DagPbError::Invalid("link after data"));
                    }
                    links.push(decode_link(link)?);
                }
                Field::Bytes(1, bytes) => {
                    if data.is_some() {
                        return Err(DagPbError::Invalid("duplicate data field"));
                    }
                    data = Some(bytes);
                }
                _ => return Err(DagPbError::Invalid("unexpected field in PBNode")),
            }
        }
        Ok((links, data))
    }
}

fn decode_link(bytes: &[u8]) -> Result<PbLink, DagPbError> {
    let mut reader = Reader::new(bytes);
    let mut cid = None;
    let mut name = None;
    let mut tsize = None;
    let mut last = 0;
    while let Some(field) = reader.next_field()? {
        if field.number() <= last {
            return Err(DagPbError::Invalid(
                "PBLink fields out of order or repeated",
            ));
        }
        last = field.number();
        match field {
            Field::Bytes(1, hash) => {
                cid = Some(Cid::try_from(hash).map_err(|e| DagPbError::BadLinkCid(e.to_string()))?)
            }
            Field::Bytes(2, n) => {
                let n = std::str::from_utf8(n)
                    .map_err(|_| DagPbError::Invalid("link name is not UTF-8"))?;
                name = Some(n.to_owned());
            }
            Field::Varint(3, t) => tsize = Some(t),
            _ => return Err(DagPbError::Invalid("unexpected field in PBLink")),
        }
    }
    let cid = cid.ok_or(DagPbError::Invalid("link without hash"))?;
    Ok(PbLink { cid, name, tsize })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::cid::{CODEC_RAW, block_cid};

    #[test]
    fn round_trips_and_predicts_length() {
        let child = block_cid(CODEC_RAW, 1, b"leaf");
        let node = PbNode {
            links: vec![
                PbLink::new(child, "", 4),
                PbLink {
                    cid: child,
                    name: None,
                    tsize: None,
                },
            ],
            data: Some(vec![8, 2]),
        };
        let bytes = node.encode();
        assert_eq!(bytes.len(), node.encoded_len());
        assert_eq!(PbNode::decode(&bytes), Ok(node.clone()));
        let (links, data) = PbNode::decode_parts(&bytes).unwrap();
        assert_eq!((links, data), (node.links, Some(&[8u8, 2][..])));
        // The borrowed data is a slice of the input, not a copy.
        assert!(bytes.as_ptr_range().contains(&data.unwrap().as_ptr()));
    }

    #[test]
    fn empty_directory_bytes_are_canonical() {
        let node = PbNode {
            links: vec![],
            data: Some(vec![8, 1]),
        };
        assert_eq!(node.encode(), vec![0x0a, 0x02, 0x08, 0x01]);
    }

    #[test]
    fn rejects_data_before_links_and_garbage() {
        let child = block_cid(CODEC_RAW, 1, b"x");
        let link = PbNode {
            links: vec![PbLink::new(child, "a", 1)],
            data: None,
        }
        .encode();
        let mut bad = vec![0x0a, 0x00];
        bad.extend_from_slice(&link);
        assert!(PbNode::decode(&bad).is_err());
        assert!(
            PbNode::decode(&[0x12, 0x02, 0x18, 0x01]).is_err(),
            "link without hash"
        );
        assert!(PbNode::decode(&[0xff, 0xff]).is_err());
    }
}
