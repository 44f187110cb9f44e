//! The UnixFS `Data` message carried in a dag-pb node's data field: what kind of node it is
//! (file, directory, HAMT shard, ...), inline bytes, file size and child block sizes.
//!
//! Field order and presence follow what Kubo writes, since the bytes decide the CID.

use bytes::Bytes;
use thiserror::Error;

use super::proto::{self, Field, ProtoError, Reader};

/// A UnixFS data message that could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnixfsError {
    #[error("malformed UnixFS data: {0}")]
    Proto(#[from] ProtoError),
    #[error("malformed UnixFS data: {0}")]
    Invalid(&'static str),
    #[error("unknown UnixFS node type {0}")]
    UnknownType(u64),
}

/// The UnixFS node types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Raw = 0,
    Directory = 1,
    File = 2,
    Metadata = 3,
    Symlink = 4,
    HamtShard = 5,
}

impl DataType {
    fn from_u64(v: u64) -> Result<Self, UnixfsError> {
        Ok(match v {
            0 => Self::Raw,
            1 => Self::Directory,
            2 => Self::File,
            3 => Self::Metadata,
            4 => Self::Symlink,
            5 => Self::HamtShard,
            other => return Err(UnixfsError::UnknownType(other)),
        })
    }
}

/// The UnixFS `Data` protobuf message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixfsData {
    pub kind: DataType,
    pub data: Option<Bytes>,
    pub filesize: Option<u64>,
    pub blocksizes: Vec<u64>,
    pub hash_type: Option<u64>,
    pub fanout: Option<u64>,
    pub mode: Option<u32>,
}

impl UnixfsData {
    pub fn new(kind: DataType) -> Self {
        Self {
            kind,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
            mode: None,
        }
    }

    /// Bytes of the message, fields in number order as Kubo encodes them.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + self.data.as_ref().map_or(0, |d| d.len()) + 5 * self.blocksizes.len(),
        );
        proto::put_varint_field(&mut out, 1, self.kind as u64);
        if let Some(data) = &self.data {
            proto::put_bytes_field(&mut out, 2, data);
        }
        if let Some(size) = self.filesize {
            proto::put_varint_field(&mut out, 3, size);
        }
        for size in &self.blocksizes {
            proto::put_varint_field(&mut out, 4, *size);
        }
        if let Some(h) = self.hash_type {
            proto::put_varint_field(&mut out, 5, h);
        }
        if let Some(f) = self.fanout {
            proto::put_varint_field(&mut out, 6, f);
        }
        if let Some(m) = self.mode {
            proto::put_varint_field(&mut out, 7, u64::from(m));
        }
        out
    }

    /// Decode a UnixFS message; the data field is copied.
    pub fn decode(bytes: &[u8]) -> Result<Self, UnixfsError> {
        Self::decode_with(bytes, Bytes::copy_from_slice)
    }

    /// Decode a UnixFS message that lies inside `block` (a dag-pb node's data field, say):
    /// the data field is a slice of `block`, not a copy.
    pub fn decode_in(block: &Bytes, bytes: &[u8]) -> Result<Self, UnixfsError> {
        Self::decode_with(bytes, |part| share(block, part))
    }

    fn decode_with(bytes: &[u8], take: impl Fn(&[u8]) -> Bytes) -> Result<Self, UnixfsError> {
        let mut reader = Reader::new(bytes);
        let mut kind = None;
        let mut msg = UnixfsData::new(DataType::Raw);
        while let Some(field) = reader.next_field()? {
            match field {
                Field::Varint(1, t) => kind = Some(DataType::from_u64(t)?),
                Field::Bytes(2, d) => msg.data = Some(take(d)),
                Field::Varint(3, s) => msg.filesize = Some(s),
                Field::Varint(4, s) => msg.blocksizes.push(s),
                Field::Bytes(4, packed) => {
                    // Packed encoding of the repeated field is legal protobuf; accept it.
                    let mut rest = packed;
                    while !rest.is_empty() {
                        let (v, used) = proto::read_varint(rest)?;
                        msg.blocksizes.push(v);
                        rest = &rest[used..];
                    }
                }
                Field::Varint(5, h) => msg.hash_type = Some(h),
                Field::Varint(6, f) => msg.fanout = Some(f),
                Field::Varint(7, m) => {
                    msg.mode = Some(
                        u32::try_from(m).map_err(|_| UnixfsError::Invalid("mode out of range"))?,
                    )
                }
                // mtime (8) and unknown fields are skipped: they do not change how bytes are read.
                _ => {}
            }
        }
        msg.kind = kind.ok_or(UnixfsError::Invalid("missing Type"))?;
        Ok(msg)
    }

    /// Size of the file content this node stands for.
    pub fn file_size(&self) -> u64 {
        self.filesize
            .unwrap_or_else(|| self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// `part` as a slice of `owner` when it lies inside it, otherwise a copy.
fn share(owner: &Bytes, part: &[u8]) -> Bytes {
    let inside = owner.as_ptr_range();
    let range = part.as_ptr_range();
    if part.is_empty() || (inside.start <= range.start && range.end <= inside.end) {
        owner.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_fields_in_kubo_order() {
        let mut d = UnixfsData::new(DataType::File);
        d.filesize = Some(300);
        d.blocksizes = vec![200, 100];
        assert_eq!(
            d.encode(),
            vec![0x08, 0x02, 0x18, 0xac, 0x02, 0x20, 0xc8, 0x01, 0x20, 0x64]
        );
        assert_eq!(UnixfsData::decode(&d.encode()), Ok(d));
    }

    #[test]
    fn rejects_unknown_type_and_missing_type() {
        assert_eq!(
            UnixfsData::decode(&[0x08, 0x09]),
            Err(UnixfsError::UnknownType(9))
        );
        assert_eq!(
            UnixfsData::decode(&[0x18, 0x01]),
            Err(UnixfsError::Invalid("missing Type"))
        );
    }

    #[test]
    fn decode_in_slices_the_data_field_out_of_the_block() {
        let mut d = UnixfsData::new(DataType::File);
        d.data = Some(Bytes::from(vec![7u8; 1000]));
        d.filesize = Some(1000);
        // The message behind a few bytes of something else, as in a dag-pb node.
        let mut block = vec![0xaa; 3];
        block.extend(d.encode());
        let block = Bytes::from(block);
        let decoded = UnixfsData::decode_in(&block, &block[3..]).unwrap();
        assert_eq!(decoded, d);
        let data = decoded.data.unwrap();
        let inside = block.as_ptr_range();
        assert!(
            inside.contains(&data.as_ptr()),
            "a slice of the block, not a copy"
        );

        // Bytes that are not inside `block` are copied rather than sliced (no panic).
        let elsewhere = d.encode();
        let copied = UnixfsData::decode_in(&block, &elsewhere).unwrap();
        assert_eq!(copied, d);
        assert!(!inside.contains(&copied.data.unwrap().as_ptr()));
    }
}
