//! Subdomain gateway mode (pure): with `--subdomain-host example.org`, content is served from
//! `<cidv1-base32>.ipfs.example.org`, so each root gets its own web origin. Requests to
//! `example.org/ipfs/<cid>/…` are redirected there; a CID label not in canonical form
//! (CIDv0 or another base cannot survive DNS's case folding) is redirected to its CIDv1 base32
//! spelling.

use cid::Cid;

use super::error::GatewayError;
use crate::content::cid::parse_cid;

/// Where a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The plain host or an unrelated one: path gateway rules apply.
    Path,
    /// `<cid_label>.ipfs.<base>`: the request path is below that CID.
    Subdomain { cid_label: String },
    /// Send the client to this URL instead.
    Redirect(String),
}

/// The CIDv1 base32 form of `cid` (CIDv0 becomes dag-pb CIDv1), safe as a DNS label.
pub fn canonical_label(cid: &Cid) -> String {
    Cid::new_v1(cid.codec(), *cid.hash()).to_string()
}

/// Split `host[:port]` (IPv6 literals keep their brackets).
fn split_port(host: &str) -> (&str, Option<&str>) {
    match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (host, None),
    }
}

/// Classify a request by its `Host` header against the configured base domain.
pub fn classify(
    host: &str,
    base: &str,
    path: &str,
    query: &str,
    proto: Option<&str>,
) -> Result<Origin, GatewayError> {
    let (name, port) = split_port(host.trim());
    let name = name.to_ascii_lowercase();
    let base = base.trim_matches('.').to_ascii_lowercase();
    let scheme = match proto {
        Some("https") => "https",
        _ => "http",
    };
    let url = |label: &str, rest: &str| {
        let mut u = format!("{scheme}://{label}.ipfs.{base}");
        if let Some(p) = port {
            u.push(':');
            u.push_str(p);
        }
        u.push_str(if rest.is_empty() { "/" } else { rest });
        if !query.is_empty() {
            u.push('?');
            u.push_str(query);
        }
        u
    };
    if let Some(label) = name.strip_suffix(&format!(".ipfs.{base}")) {
        if label.contains('.') || label.is_empty() {
            return Err(GatewayError::BadRequest(format!(
                "host {host:?}: expected <cid>.ipfs.{base}"
            )));
        }
        // The original spelling: DNS names are case-insensitive but base58 is not.
        let original = host.trim().get(..label.len()).unwrap_or(label);
        let cid = parse_cid(original)
            .or_else(|_| parse_cid(label))
            .map_err(|e| GatewayError::invalid_cid(original, e))?;
        let canonical = canonical_label(&cid);
        if label != canonical {
            return Ok(Origin::Redirect(url(&canonical, path)));
        }
        return Ok(Origin::Subdomain {
            cid_label: canonical,
        });
    }
    if name == base
        && let Some(rest) = path.strip_prefix("/ipfs/")
    {
        let (cid_text, below) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if let Ok(cid) = parse_cid(cid_text) {
            return Ok(Origin::Redirect(url(&canonical_label(&cid), below)));
        }
    }
    Ok(Origin::Path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const V0: &str = "QmYiPNLU7Hc739sqcBH5DgVmk5mKTQVzKSqvJJeNGWTgrE";

    fn v1() -> String {
        canonical_label(&parse_cid(V0).unwrap())
    }

    #[test]
    fn path_urls_are_redirected_to_subdomains() {
        let got = classify(
            "example.org:8080",
            "example.org",
            &format!("/ipfs/{V0}/a/b"),
            "x=1",
            None,
        );
        assert_eq!(
            got.unwrap(),
            Origin::Redirect(format!("http://{}.ipfs.example.org:8080/a/b?x=1", v1()))
        );
        let got = classify(
            "Example.org",
            "example.org",
            &format!("/ipfs/{V0}"),
            "",
            Some("https"),
        );
        assert_eq!(
            got.unwrap(),
            Origin::Redirect(format!("https://{}.ipfs.example.org/", v1()))
        );
    }

    #[test]
    fn subdomain_hosts() {
        let host = format!("{}.ipfs.example.org", v1());
        assert_eq!(
            classify(&host, "example.org", "/a", "", None).unwrap(),
            Origin::Subdomain { cid_label: v1() }
        );
        let v0_host = format!("{V0}.ipfs.example.org:1234");
        assert_eq!(
            classify(&v0_host, "example.org", "/a", "", None).unwrap(),
            Origin::Redirect(format!("http://{}.ipfs.example.org:1234/a", v1()))
        );
        let bad = classify("nope.ipfs.example.org", "example.org", "/", "", None);
        assert_eq!(bad.unwrap_err().status(), 400);
        let other = classify("other.net", "example.org", &format!("/ipfs/{V0}"), "", None);
        assert_eq!(other.unwrap(), Origin::Path);
    }
}
