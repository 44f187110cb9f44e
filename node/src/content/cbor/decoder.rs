//! Reading DAG-CBOR: a bounds-checked cursor over the input (`Reader`, one item head at a
//! time), [`decode`] into a [`Value`] tree (depth-limited by [`MAX_DEPTH`]) and [`links`],
//! which walks the bytes without a tree or a stack, counting the items still owed, and
//! collects the tag-42 CIDs.

use cid::Cid;

use super::{
    CborError, MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_NEGATIVE, MAJOR_SIMPLE, MAJOR_TAG,
    MAJOR_TEXT, MAJOR_UNSIGNED, MAX_DEPTH, TAG_CID, Value,
};

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
