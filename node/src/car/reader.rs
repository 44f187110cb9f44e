//! [`CarReader`]: streams the blocks of a CAR v1 or v2 file, each verified against its CID.
//!
//! `new` reads the header (and, for v2, the pragma and v2 header, then skips to the v1 payload);
//! `next_block` reads one section at a time. Positions are tracked so every error says where in
//! the file it happened; a CARv2 payload's end is enforced so its index is never read as blocks.

use std::io::{BufReader, Read};

use cid::Cid;

use super::{CarError, MAX_HEADER_LEN, MAX_SECTION_LEN, MAX_VARINT_BYTES};
use crate::content::cbor::{self, Value};
use crate::content::cid::{CidError, verify};

/// Bytes of the CARv2 pragma (a varint length and `{"version": 2}`) plus the fixed v2 header.
const V2_PRAGMA_LEN: u64 = 11;
const V2_HEADER_LEN: usize = 40;

/// Reads a CAR file block by block. Wraps its reader in a `BufReader`, so pass a plain `File`.
pub struct CarReader<R> {
    input: BufReader<R>,
    roots: Vec<Cid>,
    version: u64,
    /// Bytes consumed from the start of the file.
    offset: u64,
    /// Where the v1 payload ends: the CARv2 data size, or never for a CAR v1.
    end: Option<u64>,
    done: bool,
}

impl<R: Read> CarReader<R> {
    /// Read and validate the header.
    pub fn new(reader: R) -> Result<Self, CarError> {
        let mut car = Self {
            input: BufReader::new(reader),
            roots: Vec::new(),
            version: 1,
            offset: 0,
            end: None,
            done: false,
        };
        let header = car.read_header()?;
        match header.get("version") {
            Some(Value::Integer(1)) => car.roots = roots_of(&header)?,
            Some(Value::Integer(2)) => car.enter_v2_payload()?,
            Some(Value::Integer(v)) => return Err(CarError::UnsupportedVersion(*v)),
            _ => {
                return Err(CarError::BadHeader {
                    reason: "missing integer \"version\"".into(),
                });
            }
        }
        Ok(car)
    }

    /// The DAG roots the header names.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// 1 for a CAR v1, 2 for a CAR v2 (whose blocks come from its inner v1 payload).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The next block, verified against its CID; `None` after the last one.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Vec<u8>)>, CarError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_section();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_section(&mut self) -> Result<Option<(Cid, Vec<u8>)>, CarError> {
        let start = self.offset;
        if self.end == Some(start) {
            return Ok(None);
        }
        let Some(len) = self.read_varint()? else {
            return match self.end {
                None => Ok(None),
                Some(_) => Err(CarError::Truncated {
                    what: "CARv2 data payload",
                    offset: start,
                }),
            };
        };
        if len == 0 {
            return Err(CarError::EmptySection { offset: start });
        }
        if len > MAX_SECTION_LEN {
            return Err(CarError::SectionTooLarge { offset: start, len });
        }
        if self
            .end
            .is_some_and(|end| self.offset.saturating_add(len) > end)
        {
            return Err(CarError::PastPayload { offset: start });
        }
        // Bounded by MAX_SECTION_LEN above.
        let mut section = vec![0u8; len as usize];
        self.read_exact(&mut section, "block section")?;
        let mut rest = &section[..];
        let cid = Cid::read_bytes(&mut rest).map_err(|e| CarError::BadCid {
            offset: start,
            reason: e.to_string(),
        })?;
        let cid_len = section.len() - rest.len();
        section.drain(..cid_len);
        verify_block(&cid, &section, start)?;
        Ok(Some((cid, section)))
    }

    /// A varint-prefixed DAG-CBOR header, decoded.
    fn read_header(&mut self) -> Result<Value, CarError> {
        let len = self.read_varint()?.ok_or(CarError::Truncated {
            what: "header",
            offset: self.offset,
        })?;
        if len > MAX_HEADER_LEN {
            return Err(CarError::HeaderTooLarge { len });
        }
        // Bounded by MAX_HEADER_LEN above.
        let mut bytes = vec![0u8; len as usize];
        self.read_exact(&mut bytes, "header")?;
        let header = cbor::decode(&bytes).map_err(|e| CarError::BadHeader {
            reason: e.to_string(),
        })?;
        if !matches!(header, Value::Map(_)) {
            return Err(CarError::BadHeader {
                reason: "header is not a map".into(),
            });
        }
        Ok(header)
    }

    /// After a CARv2 pragma: read the v2 header, skip to the data payload and read its header.
    fn enter_v2_payload(&mut self) -> Result<(), CarError> {
        if self.offset != V2_PRAGMA_LEN {
            return Err(CarError::BadHeader {
                reason: "CARv2 pragma has unexpected fields".into(),
            });
        }
        let mut fixed = [0u8; V2_HEADER_LEN];
        self.read_exact(&mut fixed, "CARv2 header")?;
        let field = |at: usize| {
            let mut le = [0u8; 8];
            le.copy_from_slice(&fixed[at..at + 8]);
            u64::from_le_bytes(le)
        };
        let (data_offset, data_size) = (field(16), field(24));
        let bad = |reason: &str| CarError::BadHeader {
            reason: format!("CARv2 {reason}"),
        };
        let skip = data_offset
            .checked_sub(self.offset)
            .ok_or_else(|| bad("data offset points into its header"))?;
        let end = data_offset
            .checked_add(data_size)
            .ok_or_else(|| bad("data size overflows"))?;
        let skipped = std::io::copy(&mut (&mut self.input).take(skip), &mut std::io::sink())
            .map_err(|source| CarError::Io {
                context: "skipping to the CARv2 data payload",
                source,
            })?;
        self.offset += skipped;
        if skipped < skip {
            return Err(CarError::Truncated {
                what: "CARv2 padding",
                offset: self.offset,
            });
        }
        let inner = self.read_header()?;
        if inner.get("version") != Some(&Value::Integer(1)) {
            return Err(bad("payload is not a CAR v1"));
        }
        if self.offset > end {
            return Err(bad("payload header is larger than the data size"));
        }
        self.roots = roots_of(&inner)?;
        self.version = 2;
        self.end = Some(end);
        Ok(())
    }

    /// An unsigned varint, or `None` at a clean end of input (before its first byte).
    fn read_varint(&mut self) -> Result<Option<u64>, CarError> {
        let start = self.offset;
        let mut value = 0u64;
        for i in 0..MAX_VARINT_BYTES {
            let mut byte = [0u8; 1];
            let n = loop {
                match self.input.read(&mut byte) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(CarError::Io {
                            context: "reading a varint",
                            source,
                        });
                    }
                }
            };
            if n == 0 {
                return if i == 0 {
                    Ok(None)
                } else {
                    Err(CarError::Truncated {
                        what: "varint",
                        offset: start,
                    })
                };
            }
            self.offset += 1;
            value |= u64::from(byte[0] & 0x7f) << (7 * i);
            if byte[0] & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(CarError::BadVarint { offset: start })
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), CarError> {
        self.input
            .read_exact(buf)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::UnexpectedEof => CarError::Truncated {
                    what,
                    offset: self.offset,
                },
                _ => CarError::Io {
                    context: what,
                    source,
                },
            })?;
        self.offset += buf.len() as u64;
        Ok(())
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<(Cid, Vec<u8>), CarError>;

    /// Blocks in file order; stops after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

/// Check a block against its CID (sha2-256, sha2-512 or identity, through [`verify`]).
fn verify_block(cid: &Cid, data: &[u8], offset: u64) -> Result<(), CarError> {
    match verify(cid, data) {
        Ok(()) => Ok(()),
        Err(CidError::UnsupportedHash(code)) => Err(CarError::UnsupportedHash { cid: *cid, code }),
        Err(_) => Err(CarError::HashMismatch { cid: *cid, offset }),
    }
}

/// The `roots` of a v1 header: an array of links.
fn roots_of(header: &Value) -> Result<Vec<Cid>, CarError> {
    let Some(Value::Array(items)) = header.get("roots") else {
        return Err(CarError::BadHeader {
            reason: "missing array \"roots\"".into(),
        });
    };
    items
        .iter()
        .map(|item| match item {
            Value::Link(cid) => Ok(*cid),
            _ => Err(CarError::BadHeader {
                reason: "a root is not a CID link".into(),
            }),
        })
        .collect()
}
