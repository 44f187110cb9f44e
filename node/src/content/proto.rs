//! Minimal protobuf wire-format primitives: varints, tags and length-delimited fields.
//!
//! dag-pb needs a byte-exact canonical encoding (links before data, fields in a fixed order),
//! which generated protobuf code does not promise, so the two message types we use are encoded
//! by hand on top of these helpers. The [`Reader`] never panics on malformed input: every
//! read is bounds-checked and returns [`ProtoError`].

use thiserror::Error;

/// A malformed protobuf message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    #[error("truncated protobuf message")]
    Truncated,
    #[error("varint longer than 10 bytes")]
    VarintOverflow,
    #[error("unsupported protobuf wire type {0}")]
    WireType(u8),
    #[error("field {field} has wire type {got}, expected {expected}")]
    UnexpectedWireType { field: u32, got: u8, expected: u8 },
    #[error("invalid field number 0")]
    FieldZero,
    #[error("{0}")]
    Invalid(&'static str),
}

/// Protobuf wire types used by dag-pb and UnixFS.
pub(crate) const WIRE_VARINT: u8 = 0;
pub(crate) const WIRE_LEN: u8 = 2;

/// Append `value` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Number of bytes `value` takes as a varint.
pub fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decode a varint from the front of `buf`, returning the value and bytes consumed.
pub fn read_varint(buf: &[u8]) -> Result<(u64, usize), ProtoError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        if i >= 10 {
            return Err(ProtoError::VarintOverflow);
        }
        let part = u64::from(byte & 0x7f);
        if i == 9 && part > 1 {
            return Err(ProtoError::VarintOverflow);
        }
        value |= part << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(ProtoError::Truncated)
}

pub(crate) fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub(crate) fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_tag(out, field, WIRE_VARINT);
    put_varint(out, value);
}

/// Size of a length-delimited field with a one-byte tag.
pub(crate) fn bytes_field_len(field_len: usize) -> usize {
    1 + varint_len(field_len as u64) + field_len
}

/// One decoded field: its number and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field<'a> {
    Varint(u32, u64),
    Bytes(u32, &'a [u8]),
}

impl Field<'_> {
    pub(crate) fn number(&self) -> u32 {
        match self {
            Field::Varint(n, _) | Field::Bytes(n, _) => *n,
        }
    }
}

/// Iterates over the fields of one message, rejecting what it cannot parse.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn next_field(&mut self) -> Result<Option<Field<'a>>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let (key, used) = read_varint(self.buf)?;
        self.buf = &self.buf[used..];
        let field =
            u32::try_from(key >> 3).map_err(|_| ProtoError::Invalid("field number too large"))?;
        if field == 0 {
            return Err(ProtoError::FieldZero);
        }
        match (key & 7) as u8 {
            WIRE_VARINT => {
                let (value, used) = read_varint(self.buf)?;
                self.buf = &self.buf[used..];
                Ok(Some(Field::Varint(field, value)))
            }
            WIRE_LEN => {
                let (len, used) = read_varint(self.buf)?;
                let rest = &self.buf[used..];
                let len = usize::try_from(len).map_err(|_| ProtoError::Truncated)?;
                if len > rest.len() {
                    return Err(ProtoError::Truncated);
                }
                let (value, tail) = rest.split_at(len);
                self.buf = tail;
                Ok(Some(Field::Bytes(field, value)))
            }
            other => Err(ProtoError::WireType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_boundaries() {
        for value in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value), "length of {value}");
            assert_eq!(read_varint(&buf), Ok((value, buf.len())));
        }
    }

    #[test]
    fn malformed_varints_are_errors() {
        assert_eq!(read_varint(&[0x80]), Err(ProtoError::Truncated));
        assert_eq!(read_varint(&[0xff; 11]), Err(ProtoError::VarintOverflow));
        assert_eq!(read_varint(&[]), Err(ProtoError::Truncated));
    }

    #[test]
    fn reader_rejects_overlong_length() {
        let mut r = Reader::new(&[0x0a, 0x05, 0x01]);
        assert_eq!(r.next_field(), Err(ProtoError::Truncated));
    }
}
