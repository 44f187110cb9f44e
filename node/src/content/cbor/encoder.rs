//! Writing DAG-CBOR: [`encode`] writes a [`Value`] in canonical form (minimal heads, 64-bit
//! floats, map keys sorted length-first, then bytewise, CIDs as tag 42 over a 0x00-prefixed
//! byte string).

use super::{
    CborError, MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_NEGATIVE, MAJOR_TAG, MAJOR_TEXT,
    MAJOR_UNSIGNED, TAG_CID, Value,
};

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
