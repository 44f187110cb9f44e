//! [`CarWriter`]: writes a CAR v1 stream, header first, then one section per block.
//!
//! The writer trusts its caller to pass blocks that match their CIDs (they come from the local
//! blockstore, which verified them on the way in); it only refuses blocks too large for any
//! reader to accept.

use std::io::Write;

use cid::Cid;

use super::{CarError, MAX_SECTION_LEN, put_varint};
use crate::content::cbor::{self, Value};

/// Writes a CAR v1 file. Wrap a `File` in a `BufWriter`: sections are written piecewise.
pub struct CarWriter<W: Write> {
    out: W,
}

impl<W: Write> CarWriter<W> {
    /// Start a CAR v1 naming `roots`, writing its header immediately.
    pub fn new(mut out: W, roots: &[Cid]) -> Result<Self, CarError> {
        let header = Value::Map(vec![
            (
                "roots".into(),
                Value::Array(roots.iter().copied().map(Value::Link).collect()),
            ),
            ("version".into(), Value::Integer(1)),
        ]);
        // Only integer 1 could be out of range, and it is not.
        let body = cbor::encode(&header).map_err(|e| CarError::BadHeader {
            reason: e.to_string(),
        })?;
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, body.len() as u64);
        write_all(&mut out, &prefix)?;
        write_all(&mut out, &body)?;
        Ok(Self { out })
    }

    /// Append one block.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), CarError> {
        let cid_bytes = cid.to_bytes();
        let len = (cid_bytes.len() + data.len()) as u64;
        if len > MAX_SECTION_LEN {
            return Err(CarError::BlockTooLarge {
                cid: *cid,
                len: data.len() as u64,
            });
        }
        let mut prefix = Vec::with_capacity(10 + cid_bytes.len());
        put_varint(&mut prefix, len);
        prefix.extend_from_slice(&cid_bytes);
        write_all(&mut self.out, &prefix)?;
        write_all(&mut self.out, data)
    }

    /// Flush and hand back the underlying writer.
    pub fn finish(mut self) -> Result<W, CarError> {
        self.out.flush().map_err(|source| CarError::Io {
            context: "flushing the CAR file",
            source,
        })?;
        Ok(self.out)
    }
}

fn write_all<W: Write>(out: &mut W, bytes: &[u8]) -> Result<(), CarError> {
    out.write_all(bytes).map_err(|source| CarError::Io {
        context: "writing the CAR file",
        source,
    })
}
