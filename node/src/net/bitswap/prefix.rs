//! CID prefixes: every part of a CID except the multihash digest, as Bitswap 1.1.0+ sends
//! in front of each block (`Message.payload[].prefix`) so the receiver can rebuild the CID by
//! hashing the data itself rather than trusting a CID the sender claims.
//!
//! On the wire a prefix is four unsigned varints: CID version, content codec, multihash code
//! and digest length. Only sha2-256, sha2-512 and identity hashes are supported, as in
//! [`content::cid`](crate::content::cid); any other hash is an error for that one block.

use cid::Cid;
use multihash::Multihash;
use thiserror::Error;

use crate::content::cid::{
    CODEC_DAG_PB, MH_IDENTITY, MH_SHA2_256, MH_SHA2_512, sha256_multihash, sha512_multihash,
};
use crate::content::proto::{put_varint, read_varint, varint_len};

/// Length of a sha2-256 digest.
const SHA2_256_LEN: u64 = 32;
/// Length of a sha2-512 digest.
const SHA2_512_LEN: u64 = 64;
/// Largest digest a [`Cid`] can hold, which bounds identity-hashed blocks.
const MAX_DIGEST_LEN: usize = 64;

/// A CID prefix that cannot be parsed or cannot produce a CID for a block.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrefixError {
    #[error("CID prefix is truncated or has an overlong varint")]
    Malformed,
    #[error("CID prefix has {0} unexpected trailing bytes")]
    Trailing(usize),
    #[error("unsupported CID version {0}")]
    Version(u64),
    #[error("a CIDv0 prefix must be dag-pb with a 32-byte sha2-256 digest")]
    BadV0,
    #[error(
        "unsupported hash function 0x{0:x} (only sha2-256, sha2-512 and identity are supported)"
    )]
    UnsupportedHash(u64),
    #[error("prefix says the digest is {got} bytes, the hash function gives {expected}")]
    DigestLength { got: u64, expected: u64 },
    #[error("identity-hashed block of {0} bytes is too long to inline in a CID")]
    IdentityTooLong(usize),
}

/// The parts of a CID that say how to hash and interpret a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CidPrefix {
    pub version: u64,
    pub codec: u64,
    pub mh_code: u64,
    pub mh_len: u64,
}

impl CidPrefix {
    /// The prefix of an existing CID.
    pub fn of(cid: &Cid) -> Self {
        Self {
            version: u64::from(cid.version()),
            codec: cid.codec(),
            mh_code: cid.hash().code(),
            mh_len: u64::from(cid.hash().size()),
        }
    }

    /// Wire form: four varints.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for v in [self.version, self.codec, self.mh_code, self.mh_len] {
            put_varint(&mut out, v);
        }
        out
    }

    pub fn encoded_len(&self) -> usize {
        [self.version, self.codec, self.mh_code, self.mh_len]
            .iter()
            .map(|v| varint_len(*v))
            .sum()
    }

    /// Parse the wire form; exactly four varints, nothing after them.
    pub fn parse(mut bytes: &[u8]) -> Result<Self, PrefixError> {
        let mut parts = [0u64; 4];
        for part in &mut parts {
            let (value, used) = read_varint(bytes).map_err(|_| PrefixError::Malformed)?;
            *part = value;
            bytes = &bytes[used..];
        }
        if !bytes.is_empty() {
            return Err(PrefixError::Trailing(bytes.len()));
        }
        let [version, codec, mh_code, mh_len] = parts;
        Ok(Self {
            version,
            codec,
            mh_code,
            mh_len,
        })
    }

    /// The CID of `data` under this prefix: hashes the data (sha2-256, sha2-512) or inlines
    /// it (identity).
    pub fn cid_for(&self, data: &[u8]) -> Result<Cid, PrefixError> {
        let mh = match self.mh_code {
            MH_SHA2_256 => {
                if self.mh_len != SHA2_256_LEN {
                    return Err(PrefixError::DigestLength {
                        got: self.mh_len,
                        expected: SHA2_256_LEN,
                    });
                }
                sha256_multihash(data)
            }
            MH_SHA2_512 => {
                if self.mh_len != SHA2_512_LEN {
                    return Err(PrefixError::DigestLength {
                        got: self.mh_len,
                        expected: SHA2_512_LEN,
                    });
                }
                sha512_multihash(data)
            }
            MH_IDENTITY => {
                if data.len() > MAX_DIGEST_LEN {
                    return Err(PrefixError::IdentityTooLong(data.len()));
                }
                if self.mh_len != data.len() as u64 {
                    return Err(PrefixError::DigestLength {
                        got: self.mh_len,
                        expected: data.len() as u64,
                    });
                }
                Multihash::wrap(MH_IDENTITY, data)
                    .map_err(|_| PrefixError::IdentityTooLong(data.len()))?
            }
            other => return Err(PrefixError::UnsupportedHash(other)),
        };
        match self.version {
            0 => {
                if self.codec != CODEC_DAG_PB || self.mh_code != MH_SHA2_256 {
                    return Err(PrefixError::BadV0);
                }
                Cid::new_v0(mh).map_err(|_| PrefixError::BadV0)
            }
            1 => Ok(Cid::new_v1(self.codec, mh)),
            other => Err(PrefixError::Version(other)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::content::cid::{CODEC_RAW, block_cid};

    #[test]
    fn prefix_rebuilds_the_cid_it_came_from() {
        let data = b"prefix round trip";
        let v0 = block_cid(CODEC_DAG_PB, 0, data);
        let v1 = block_cid(CODEC_RAW, 1, data);
        let inline = Cid::new_v1(CODEC_RAW, Multihash::wrap(MH_IDENTITY, data).unwrap());
        for cid in [v0, v1, inline] {
            let prefix = CidPrefix::of(&cid);
            let bytes = prefix.to_bytes();
            assert_eq!(bytes.len(), prefix.encoded_len());
            let parsed = CidPrefix::parse(&bytes).unwrap();
            assert_eq!(parsed.cid_for(data), Ok(cid), "{cid}");
        }
        // What go-cid writes for a CIDv0: version 0, dag-pb, sha2-256, 32 bytes.
        assert_eq!(CidPrefix::of(&v0).to_bytes(), vec![0x00, 0x70, 0x12, 0x20]);
    }

    #[test]
    fn bad_prefixes_are_errors() {
        let check = |bytes: &[u8], data: &[u8], expected: PrefixError| {
            let got = CidPrefix::parse(bytes).and_then(|p| p.cid_for(data));
            assert_eq!(got, Err(expected), "{bytes:02x?}");
        };
        check(&[0x01, 0x55, 0x12], b"", PrefixError::Malformed);
        check(
            &[0x01, 0x55, 0x12, 0x20, 0x00],
            b"",
            PrefixError::Trailing(1),
        );
        check(&[0x02, 0x55, 0x12, 0x20], b"", PrefixError::Version(2));
        check(&[0x00, 0x55, 0x12, 0x20], b"", PrefixError::BadV0);
        check(
            &[0x01, 0x55, 0xb2, 0xe4, 0x02, 0x20],
            b"",
            PrefixError::UnsupportedHash(0xb232),
        );
        check(
            &[0x01, 0x55, 0x13, 0x20],
            b"",
            PrefixError::DigestLength {
                got: 32,
                expected: 64,
            },
        );
        let digest = PrefixError::DigestLength {
            got: 20,
            expected: 32,
        };
        check(&[0x01, 0x55, 0x12, 0x14], b"", digest);
        check(
            &[0x01, 0x55, 0x00, 0x41],
            &[0; 65],
            PrefixError::IdentityTooLong(65),
        );
    }
}
