//! CIDs as Distribute uses them: building block CIDs from bytes, parsing user input
//! (`Qm…`, `bafy…`, base36 `k…`, `ipfs://<cid>/path`, `/ipfs/<cid>/path`), verifying that bytes
//! match a CID, and formatting in the multibase Kubo would print.

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;

/// Multicodec of dag-pb blocks.
pub const CODEC_DAG_PB: u64 = 0x70;
/// Multicodec of raw blocks.
pub const CODEC_RAW: u64 = 0x55;
/// Multihash code of sha2-256.
pub const MH_SHA2_256: u64 = 0x12;
/// Multihash code of sha2-512 (64-byte digests; some real-world CARs use it).
pub const MH_SHA2_512: u64 = 0x13;
/// Multihash code of the identity "hash" (data inline in the CID).
pub const MH_IDENTITY: u64 = 0x00;

/// A CID or IPFS path that could not be understood.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CidError {
    #[error("invalid CID {input:?}: {reason}")]
    Invalid { input: String, reason: String },
    #[error(
        "unsupported hash function 0x{0:x} (only sha2-256, sha2-512 and identity are supported)"
    )]
    UnsupportedHash(u64),
    #[error("block does not match its CID {0}")]
    HashMismatch(Cid),
}

/// sha2-256 multihash of `data`.
pub fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(data);
    // A 32-byte digest always fits the 64-byte multihash.
    Multihash::wrap(MH_SHA2_256, &digest).unwrap_or_default()
}

/// sha2-512 multihash of `data`.
pub fn sha512_multihash(data: &[u8]) -> Multihash<64> {
    let digest = Sha512::digest(data);
    // A 64-byte digest exactly fits the 64-byte multihash.
    Multihash::wrap(MH_SHA2_512, &digest).unwrap_or_default()
}

/// CID of a block: version 0 (only for dag-pb) or 1, with a sha2-256 multihash.
pub fn block_cid(codec: u64, version: u8, data: &[u8]) -> Cid {
    let mh = sha256_multihash(data);
    if version == 0 && codec == CODEC_DAG_PB {
        Cid::new_v0(mh).unwrap_or_else(|_| Cid::new_v1(codec, mh))
    } else {
        Cid::new_v1(codec, mh)
    }
}

/// Whether blocks under hash function `code` can be verified.
pub fn supported_hash(code: u64) -> bool {
    matches!(code, MH_SHA2_256 | MH_SHA2_512 | MH_IDENTITY)
}

/// Check that `data` hashes to `cid`'s multihash.
pub fn verify(cid: &Cid, data: &[u8]) -> Result<(), CidError> {
    let mh = cid.hash();
    let matches = match mh.code() {
        MH_SHA2_256 => Sha256::digest(data).as_slice() == mh.digest(),
        MH_SHA2_512 => Sha512::digest(data).as_slice() == mh.digest(),
        MH_IDENTITY => mh.digest() == data,
        other => return Err(CidError::UnsupportedHash(other)),
    };
    if matches {
        Ok(())
    } else {
        Err(CidError::HashMismatch(*cid))
    }
}

/// A CID with an optional path below it, as given by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpfsPath {
    pub root: Cid,
    /// Path segments below the root, already split on `/`, without empty segments.
    pub segments: Vec<String>,
}

impl IpfsPath {
    /// Parse `<cid>[/path]`, `/ipfs/<cid>[/path]` or `ipfs://<cid>[/path]`.
    pub fn parse(input: &str) -> Result<Self, CidError> {
        let trimmed = input.trim();
        let rest = trimmed
            .strip_prefix("ipfs://")
            .or_else(|| trimmed.strip_prefix("/ipfs/"))
            .unwrap_or(trimmed);
        let mut parts = rest.split('/').filter(|s| !s.is_empty());
        let first = parts.next().ok_or_else(|| CidError::Invalid {
            input: input.to_owned(),
            reason: "empty".into(),
        })?;
        let root = parse_cid(first)?;
        let segments: Vec<String> = parts.map(str::to_owned).collect();
        if segments.iter().any(|s| s == "." || s == "..") {
            return Err(CidError::Invalid {
                input: input.to_owned(),
                reason: "`.` and `..` are not allowed in IPFS paths".into(),
            });
        }
        Ok(Self { root, segments })
    }
}

/// Parse a bare CID string in any multibase the `cid` crate knows (base58btc, base32, base36, ...).
pub fn parse_cid(input: &str) -> Result<Cid, CidError> {
    let cid = Cid::try_from(input).map_err(|e| CidError::Invalid {
        input: input.to_owned(),
        reason: e.to_string(),
    })?;
    match cid.hash().code() {
        code if supported_hash(code) => Ok(cid),
        other => Err(CidError::UnsupportedHash(other)),
    }
}

/// Parse a CID that may be written as a path or URI; a path below the root is an error.
pub fn parse_cid_arg(input: &str) -> Result<Cid, CidError> {
    let path = IpfsPath::parse(input)?;
    if !path.segments.is_empty() {
        return Err(CidError::Invalid {
            input: input.to_owned(),
            reason: "expected a CID, not a path".into(),
        });
    }
    Ok(path.root)
}

/// The string Kubo prints for a CID: base58btc for v0, base32 for v1.
pub fn display(cid: &Cid) -> String {
    cid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_accepted_form() {
        let v0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
        let c = parse_cid(v0).expect("v0");
        for form in [
            v0.to_owned(),
            format!("/ipfs/{v0}"),
            format!("ipfs://{v0}"),
            format!(" {v0} "),
        ] {
            assert_eq!(parse_cid_arg(&form), Ok(c), "{form}");
        }
        let p = IpfsPath::parse(&format!("ipfs://{v0}/a/b.json")).expect("path");
        assert_eq!(p.segments, vec!["a", "b.json"]);
        let v1 = Cid::new_v1(CODEC_DAG_PB, *c.hash());
        let b36 = v1
            .to_string_of_base(multibase::Base::Base36Lower)
            .expect("base36");
        assert_eq!(parse_cid(&b36), Ok(v1));
    }

    #[test]
    fn rejects_garbage_and_dot_segments() {
        assert!(matches!(
            parse_cid("notacid"),
            Err(CidError::Invalid { .. })
        ));
        assert!(parse_cid_arg("").is_err());
        assert!(
            IpfsPath::parse("/ipfs/QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o/../x").is_err()
        );
    }

    #[test]
    fn verify_detects_mismatch() {
        let cid = block_cid(CODEC_RAW, 1, b"hello");
        assert!(verify(&cid, b"hello").is_ok());
        assert_eq!(verify(&cid, b"hellO"), Err(CidError::HashMismatch(cid)));
    }

    #[test]
    fn verify_accepts_sha2_512_and_refuses_unknown_functions() {
        // The raw "hello\n" block of the gateway conformance subdomain fixture.
        let cid = parse_cid(
            "bafkrgqhhyivzstcz3hhswshfjgy6ertgmnqeleynhwt4dlfsthi4hn7zgh4uvlsb5xncykzapi3ocd4lzogukir6ksdy6wzrnz6ohnv4aglcs",
        )
        .expect("sha2-512 CID");
        assert_eq!(cid.hash().code(), MH_SHA2_512);
        assert_eq!(cid.hash().digest().len(), 64);
        assert_eq!(verify(&cid, b"hello\n"), Ok(()));
        assert_eq!(verify(&cid, b"hello!"), Err(CidError::HashMismatch(cid)));
        assert_eq!(&sha512_multihash(b"hello\n"), cid.hash());
        // blake2b-256: known to multihash, not to us.
        let blake = Cid::new_v1(CODEC_RAW, Multihash::wrap(0xb220, &[0; 32]).expect("mh"));
        assert_eq!(verify(&blake, b""), Err(CidError::UnsupportedHash(0xb220)));
        let err = parse_cid(&blake.to_string()).expect_err("refused");
        assert!(err.to_string().contains("sha2-512"), "{err}");
    }
}
