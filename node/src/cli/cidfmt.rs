//! `distribute cid format`: print CIDs in another version or multibase.

use anyhow::{Result, bail};
use cid::{Cid, Version};
use multibase::Base;

use super::args::CidCommand;
use super::output::{cid_arg, line};
use crate::content::cid::CODEC_DAG_PB;

fn base_named(name: &str) -> Result<Base> {
    Ok(match name {
        "base58btc" | "z" => Base::Base58Btc,
        "base32" | "b" => Base::Base32Lower,
        "base32upper" | "B" => Base::Base32Upper,
        "base36" | "k" => Base::Base36Lower,
        "base16" | "f" => Base::Base16Lower,
        "base64" | "m" => Base::Base64,
        "base64url" | "u" => Base::Base64Url,
        other => {
            bail!("unknown multibase {other:?} (try base32, base58btc, base36, base16, base64)")
        }
    })
}

/// Convert one CID.
pub(crate) fn format_cid(cid: Cid, version: Option<u8>, base: Option<&str>) -> Result<String> {
    let cid = match version {
        None => cid,
        Some(0) => {
            if cid.codec() != CODEC_DAG_PB || cid.hash().code() != 0x12 {
                bail!("{cid} cannot be expressed as CIDv0 (only dag-pb with sha2-256 can)");
            }
            Cid::new_v0(*cid.hash())?
        }
        Some(1) => Cid::new_v1(cid.codec(), *cid.hash()),
        Some(v) => bail!("unknown CID version {v} (expected 0 or 1)"),
    };
    match base {
        None => Ok(cid.to_string()),
        Some(name) => {
            let base = base_named(name)?;
            if cid.version() == Version::V0 {
                if base != Base::Base58Btc {
                    bail!("CIDv0 is always base58btc; add -v 1 to use {name}");
                }
                return Ok(cid.to_string());
            }
            Ok(cid.to_string_of_base(base)?)
        }
    }
}

pub(super) fn run(cmd: &CidCommand, out: &mut dyn std::io::Write) -> Result<()> {
    let CidCommand::Format {
        cids,
        version,
        base,
    } = cmd;
    for input in cids {
        let cid = cid_arg(input)?;
        line(
            out,
            format_args!("{}", format_cid(cid, *version, base.as_deref())?),
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn converts_between_versions_and_bases() {
        let v0 = cid_arg("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o").unwrap();
        let v1 = format_cid(v0, Some(1), None).unwrap();
        assert!(v1.starts_with("bafybei"), "{v1}");
        assert_eq!(
            format_cid(cid_arg(&v1).unwrap(), Some(0), None).unwrap(),
            v0.to_string()
        );
        let b36 = format_cid(v0, Some(1), Some("base36")).unwrap();
        assert!(b36.starts_with('k'));
        assert_eq!(cid_arg(&b36).unwrap(), cid_arg(&v1).unwrap());
        assert!(format_cid(v0, None, Some("base32")).is_err());
        assert!(format_cid(v0, Some(3), None).is_err());
        assert!(format_cid(v0, Some(1), Some("base99")).is_err());
    }
}
