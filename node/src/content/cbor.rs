//! DAG-CBOR (multicodec 0x71): a small decoder for untrusted blocks and an encoder for the
//! values Distribute writes itself (the CAR header).
//!
//! [`decode`] turns bytes into a [`Value`] tree; [`links`] walks the bytes without building a
//! tree and returns every tag-42 CID, which is what GC, pinning and DAG export need. Both are
//! iterative or depth-limited ([`MAX_DEPTH`]) and never reserve more memory than the input could
//! fill, so hostile bytes produce a [`CborError`], never a panic, a stack overflow or a huge
//! allocation. Decoding is lenient where the spec only asks encoders to be strict (minimal
//! integer sizes, map key order, float width) and strict where DAG-CBOR's data model is at
//! stake (indefinite lengths, tags other than 42, non-string map keys, duplicate keys).
//! [`encode`] writes the canonical form: minimal heads, 64-bit floats and map keys sorted
//! length-first, then bytewise.

use cid::Cid;
use thiserror::Error;

/// Deepest nesting of arrays and maps [`decode`] accepts.
pub const MAX_DEPTH: usize = 128;
/// The CBOR tag DAG-CBOR uses for CID links.
pub const TAG_CID: u64 = 42;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// DAG-CBOR bytes that could not be decoded, or a value that cannot be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CborError {
    #[error("truncated DAG-CBOR: item at byte {0} runs past the end")]
    Truncated(usize),
    #[error("DAG-CBOR nested deeper than {MAX_DEPTH} levels at byte {0}")]
    TooDeep(usize),
    #[error("invalid DAG-CBOR at byte {offset}: {reason}")]
    Invalid { offset: usize, reason: &'static str },
    #[error("unsupported CBOR tag {tag} at byte {offset} (DAG-CBOR only allows tag 42, CID links)")]
    UnsupportedTag { offset: usize, tag: u64 },
    #[error("invalid CID link at byte {offset}: {reason}")]
    BadCid { offset: usize, reason: String },
    #[error("{0} trailing bytes after the DAG-CBOR value")]
    TrailingBytes(usize),
    #[error("integer {0} does not fit CBOR's 64-bit range")]
    IntegerOutOfRange(i128),
}

/// A decoded DAG-CBOR value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Any CBOR integer: from -2^64 to 2^64-1.
    Integer(i128),
    Float(f64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    /// Map entries in the order they were decoded (or will be sorted when encoded).
    Map(Vec<(String, Value)>),
    Link(Cid),
}

impl Value {
    /// The value under `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One CBOR item head: the major type and its argument (length, value or float bits).
#[derive(Debug, Clone, Copy)]
struct Head {
    major: u8,
    info: u8,
    arg: u64,
    offset: usize,
}

/// Bounds-checked cursor over the input.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: u64, offset: usize) -> Result<&'a [u8], CborError> {
        let n = usize::try_from(n).map_err(|_| CborError::Truncated(offset))?;
        if n > self.remaining() {
            return Err(CborError::Truncated(offset));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn head(&mut self) -> Result<Head, CborError> {
        let offset = self.pos;
        let first = *self.buf.get(self.pos).ok_or(CborError::Truncated(offset))?;
        self.pos += 1;
        let major = first >> 5;
        let info = first & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let width = 1u64 << (info - 24);
                self.take(width, offset)?
                    .iter()
                    .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            31 => {
                return Err(CborError::Invalid {
                    offset,
                    reason: "indefinite lengths are not allowed",
                });
            }
            _ => {
                return Err(CborError::Invalid {
                    offset,
                    reason: "reserved additional information",
                });
            }
        };
        Ok(Head {
            major,
            info,
            arg,
            offset,
        })
    }

    /// Check that a container of `items` items could fit in what is left: each needs a byte.
    fn check_count(&self, items: u64, per_item: u64, offset: usize) -> Result<usize, CborError> {
        let needed = items
            .checked_mul(per_item)
            .ok_or(CborError::Truncated(offset))?;
        if needed > self.remaining() as u64 {
            return Err(CborError::Truncated(offset));
        }
        // Fits in usize: it is at most the remaining input length.
        Ok(items as usize)
    }

    /// The CID following a tag 42 head.
    fn link(&mut self) -> Result<Cid, CborError> {
        let head = self.head()?;
        if head.major != MAJOR_BYTES {
            return Err(CborError::BadCid {
                offset: head.offset,
                reason: "tag 42 must wrap a byte string".into(),
            });
        }
        let bytes = self.take(head.arg, head.offset)?;
        parse_link(bytes, head.offset)
    }
}

/// A tag-42 payload: a 0x00 multibase prefix, then the binary CID and nothing else.
fn parse_link(bytes: &[u8], offset: usize) -> Result<Cid, CborError> {
    let Some((&0, mut rest)) = bytes.split_first() else {
        return Err(CborError::BadCid {
            offset,
            reason: "missing 0x00 multibase prefix".into(),
        });
    };
    let cid = Cid::read_bytes(&mut rest).map_err(|e| CborError::BadCid {
        offset,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(CborError::BadCid {
            offset,
            reason: format!("{} bytes after the CID", rest.len()),
        });
    }
    Ok(cid)
}

/// Decode one complete DAG-CBOR value; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Value, CborError> {
    let mut reader = Reader::new(bytes);
    let value = decode_value(&mut reader, 0)?;
    match reader.remaining() {
        0 => Ok(value),
        n => Err(CborError::TrailingBytes(n)),
    }
}

fn decode_value(r: &mut Reader<'_>, depth: usize) -> Result<Value, CborError> {
    let head = r.head()?;
    let offset = head.offset;
    Ok(match head.major {
        MAJOR_UNSIGNED => Value::Integer(i128::from(head.arg)),
        MAJOR_NEGATIVE => Value::Integer(-1 - i128::from(head.arg)),
        MAJOR_BYTES => Value::Bytes(r.take(head.arg, offset)?.to_vec()),
        MAJOR_TEXT => {
            let raw = r.take(head.arg, offset)?;
            let text = std::str::from_utf8(raw).map_err(|_| CborError::Invalid {
                offset,
                reason: "text string is not UTF-8",
            })?;
            Value::Text(text.to_owned())
        }
        MAJOR_ARRAY => {
            if depth >= MAX_DEPTH {
                return Err(CborError::TooDeep(offset));
            }
            let n = r.check_count(head.arg, 1, offset)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode_value(r, depth + 1)?);
            }
            Value::Array(items)
        }
        MAJOR_MAP => {
            if depth >= MAX_DEPTH {
                return Err(CborError::TooDeep(offset));
            }
            let n = r.check_count(head.arg, 2, offset)?;
            let mut entries: Vec<(String, Value)> = Vec::with_capacity(n);
            for _ in 0..n {
                let Value::Text(key) = decode_value(r, depth + 1)? else {
                    return Err(CborError::Invalid {
                        offset,
                        reason: "map key is not a string",
                    });
                };
                let value = decode_value(r, depth + 1)?;
                entries.push((key, value));
            }
            let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(CborError::Invalid {
                    offset,
                    reason: "duplicate map key",
                });
            }
            Value::Map(entries)
        }
        MAJOR_TAG if head.arg == TAG_CID => Value::Link(r.link()?),
        MAJOR_TAG => {
            return Err(CborError::UnsupportedTag {
                offset,
                tag: head.arg,
            });
        }
        _ => decode_simple(head)?,
    })
}

/// Major type 7: booleans, null and floats. `undefined` and other simple values are not part
/// of the DAG-CBOR data model.
fn decode_simple(head: Head) -> Result<Value, CborError> {
    let offset = head.offset;
    debug_assert_eq!(head.major, MAJOR_SIMPLE);
    Ok(match head.info {
        20 => Value::Bool(false),
        21 => Value::Bool(true),
        22 => Value::Null,
        25 => Value::Float(f16_to_f64(head.arg as u16)),
        26 => Value::Float(f64::from(f32::from_bits(head.arg as u32))),
        27 => Value::Float(f64::from_bits(head.arg)),
        _ => {
            return Err(CborError::Invalid {
                offset,
                reason: "simple value outside the DAG-CBOR data model",
            });
        }
    })
}

/// IEEE 754 half precision to double.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// Every CID linked from a DAG-CBOR block, in document order, without building a tree.
///
/// Nesting needs no stack here: with definite lengths, the walk only has to count how many
/// items are still owed, and that count can never exceed the bytes left.
pub fn links(bytes: &[u8]) -> Result<Vec<Cid>, CborError> {
    let mut r = Reader::new(bytes);
    let mut owed: u64 = 1;
    let mut out = Vec::new();
    while owed > 0 {
        owed -= 1;
        let head = r.head()?;
        let offset = head.offset;
        match head.major {
            MAJOR_UNSIGNED | MAJOR_NEGATIVE => {}
            MAJOR_BYTES | MAJOR_TEXT => {
                r.take(head.arg, offset)?;
            }
            MAJOR_ARRAY | MAJOR_MAP => {
                let per = if head.major == MAJOR_MAP { 2 } else { 1 };
                let items = head
                    .arg
                    .checked_mul(per)
                    .ok_or(CborError::Truncated(offset))?;
                owed = owed
                    .checked_add(items)
                    .ok_or(CborError::Truncated(offset))?;
                if owed > r.remaining() as u64 {
                    return Err(CborError::Truncated(offset));
                }
            }
            MAJOR_TAG if head.arg == TAG_CID => out.push(r.link()?),
            MAJOR_TAG => {
                return Err(CborError::UnsupportedTag {
                    offset,
                    tag: head.arg,
                });
            }
            _ => {
                decode_simple(head)?;
            }
        }
    }
    match r.remaining() {
        0 => Ok(out),
        n => Err(CborError::TrailingBytes(n)),
    }
}

/// Canonical DAG-CBOR bytes of `value`.
pub fn encode(value: &Value) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::new();
    encode_into(&mut out, value)?;
    Ok(out)
}

fn put_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

fn encode_into(out: &mut Vec<u8>, value: &Value) -> Result<(), CborError> {
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Integer(n) => {
            let (major, arg) = if *n >= 0 {
                (MAJOR_UNSIGNED, *n)
            } else {
                (MAJOR_NEGATIVE, -1 - *n)
            };
            let arg = u64::try_from(arg).map_err(|_| CborError::IntegerOutOfRange(*n))?;
            put_head(out, major, arg);
        }
        Value::Float(f) => {
            out.push(0xfb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Bytes(b) => {
            put_head(out, MAJOR_BYTES, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Text(t) => {
            put_head(out, MAJOR_TEXT, t.len() as u64);
            out.extend_from_slice(t.as_bytes());
        }
        Value::Array(items) => {
            put_head(out, MAJOR_ARRAY, items.len() as u64);
            for item in items {
                encode_into(out, item)?;
            }
        }
        Value::Map(entries) => {
            let mut sorted: Vec<&(String, Value)> = entries.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.as_bytes().cmp(b.as_bytes()))
            });
            put_head(out, MAJOR_MAP, sorted.len() as u64);
            for (key, item) in sorted {
                put_head(out, MAJOR_TEXT, key.len() as u64);
                out.extend_from_slice(key.as_bytes());
                encode_into(out, item)?;
            }
        }
        Value::Link(cid) => {
            let bytes = cid.to_bytes();
            put_head(out, MAJOR_TAG, TAG_CID);
            put_head(out, MAJOR_BYTES, bytes.len() as u64 + 1);
            out.push(0);
            out.extend_from_slice(&bytes);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::content::cid::{CODEC_DAG_PB, CODEC_RAW, block_cid};
    use crate::content::links::fuzzing::XorShift;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn check(input: &str, expected: Result<Value, CborError>) {
        assert_eq!(decode(&hex(input)), expected, "{input}");
    }

    #[test]
    fn decodes_rfc8949_examples() {
        check("00", Ok(Value::Integer(0)));
        check("1864", Ok(Value::Integer(100)));
        check("3863", Ok(Value::Integer(-100)));
        check("1bffffffffffffffff", Ok(Value::Integer(u64::MAX.into())));
        check(
            "3bffffffffffffffff",
            Ok(Value::Integer(-1 - i128::from(u64::MAX))),
        );
        check("f93c00", Ok(Value::Float(1.0)));
        check("f9c400", Ok(Value::Float(-4.0)));
        check("f90001", Ok(Value::Float(5.960464477539063e-8)));
        check("fa47c35000", Ok(Value::Float(100000.0)));
        check("fb3ff199999999999a", Ok(Value::Float(1.1)));
        check("f4", Ok(Value::Bool(false)));
        check("f6", Ok(Value::Null));
        check("4401020304", Ok(Value::Bytes(vec![1, 2, 3, 4])));
        check("62c3bc", Ok(Value::Text("ü".into())));
        check(
            "a26161016162820203",
            Ok(Value::Map(vec![
                ("a".into(), Value::Integer(1)),
                (
                    "b".into(),
                    Value::Array(vec![Value::Integer(2), Value::Integer(3)]),
                ),
            ])),
        );
    }

    #[test]
    fn rejects_what_dag_cbor_forbids() {
        let invalid = |input: &str| match decode(&hex(input)) {
            Err(CborError::Invalid { .. }) => {}
            other => panic!("{input}: expected Invalid, got {other:?}"),
        };
        invalid("5f42010243030405ff"); // indefinite byte string
        invalid("9fff"); // indefinite array
        invalid("f7"); // undefined
        invalid("f820"); // simple(32)
        invalid("a10102"); // integer map key
        invalid("a2616101616102"); // duplicate key
        invalid("62c328"); // bad UTF-8
        invalid("1c"); // reserved additional info
        check(
            "c11a514b67b0",
            Err(CborError::UnsupportedTag { offset: 0, tag: 1 }),
        );
        check("0000", Err(CborError::TrailingBytes(1)));
        check(
            "d82a4101",
            Err(CborError::BadCid {
                offset: 2,
                reason: "missing 0x00 multibase prefix".into(),
            }),
        );
    }

    #[test]
    fn hostile_lengths_and_depth_are_errors_not_allocations() {
        check("", Err(CborError::Truncated(0)));
        check("1a0102", Err(CborError::Truncated(0)));
        check("5bffffffffffffffff00", Err(CborError::Truncated(0)));
        check("9bffffffffffffffff00", Err(CborError::Truncated(0)));
        check("bbffffffffffffffff00", Err(CborError::Truncated(0)));
        assert_eq!(
            links(&hex("9bffffffffffffffff00")),
            Err(CborError::Truncated(0))
        );
        assert_eq!(
            links(&hex("bb8000000000000000")),
            Err(CborError::Truncated(0))
        );
        let deep = vec![0x81u8; 100_000];
        assert_eq!(decode(&deep), Err(CborError::TooDeep(MAX_DEPTH)));
        assert_eq!(links(&deep), Err(CborError::Truncated(99_999)));
        let mut nested = vec![0x81u8; MAX_DEPTH];
        nested.push(0x00);
        assert!(decode(&nested).is_ok(), "exactly MAX_DEPTH levels is fine");
    }

    fn sample() -> (Value, Vec<Cid>) {
        let a = block_cid(CODEC_RAW, 1, b"a");
        let b = block_cid(CODEC_DAG_PB, 0, b"b");
        let value = Value::Map(vec![
            ("version".into(), Value::Integer(-7)),
            (
                "roots".into(),
                Value::Array(vec![
                    Value::Link(a),
                    Value::Map(vec![("x".into(), Value::Link(b))]),
                ]),
            ),
            ("f".into(), Value::Float(0.5)),
            ("blob".into(), Value::Bytes(vec![0; 300])),
            ("big".into(), Value::Integer(1 << 40)),
            ("t".into(), Value::Bool(true)),
            ("n".into(), Value::Null),
        ]);
        (value, vec![a, b])
    }

    #[test]
    fn round_trips_with_canonical_key_order_and_finds_links() {
        let (value, cids) = sample();
        let bytes = encode(&value).unwrap();
        let Value::Map(decoded) = decode(&bytes).unwrap() else {
            panic!("not a map")
        };
        let keys: Vec<&str> = decoded.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["f", "n", "t", "big", "blob", "roots", "version"]);
        assert_eq!(decode(&bytes).unwrap().get("roots"), value.get("roots"));
        assert_eq!(
            encode(&Value::Map(decoded)).unwrap(),
            bytes,
            "re-encoding is stable"
        );
        assert_eq!(links(&bytes).unwrap(), cids);
    }

    #[test]
    fn encodes_car_header_like_go_car() {
        let root = crate::content::cid::parse_cid("bafkqaaa").unwrap();
        let header = Value::Map(vec![
            ("version".into(), Value::Integer(1)),
            ("roots".into(), Value::Array(vec![Value::Link(root)])),
        ]);
        // a2 | 65 "roots" 81 d8 2a 45 00 <01 55 00 00> | 67 "version" 01
        let expected = hex("a265726f6f747381d82a4500015500006776657273696f6e01");
        assert_eq!(encode(&header).unwrap(), expected);
        assert_eq!(
            encode(&Value::Integer(1 << 64)),
            Err(CborError::IntegerOutOfRange(1 << 64))
        );
    }

    fn tree_links(value: &Value, out: &mut Vec<Cid>) {
        match value {
            Value::Link(c) => out.push(*c),
            Value::Array(items) => items.iter().for_each(|v| tree_links(v, out)),
            Value::Map(entries) => entries.iter().for_each(|(_, v)| tree_links(v, out)),
            _ => {}
        }
    }

    /// Mutated and random inputs never panic, and whenever the strict decoder accepts an input
    /// the streaming link walker agrees with it.
    #[test]
    fn mutated_inputs_never_panic_and_walkers_agree() {
        let (value, _) = sample();
        let seeds = vec![
            encode(&value).unwrap(),
            hex("a26161016162820203"),
            hex("d82a4500015500"),
        ];
        let mut rng = XorShift::new(0x00c0_ffee);
        let mut accepted = 0;
        for _ in 0..5000 {
            let input = rng.mutate(&seeds);
            let decoded = decode(&input);
            let walked = links(&input);
            if let Ok(v) = decoded {
                accepted += 1;
                let mut expected = Vec::new();
                tree_links(&v, &mut expected);
                assert_eq!(walked, Ok(expected), "input {input:02x?}");
            }
        }
        assert!(
            accepted > 50,
            "mutations should sometimes stay valid ({accepted})"
        );
    }
}
