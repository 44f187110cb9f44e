//! Request parsing (pure): the method, raw path, query string and a few headers of an HTTP
//! request become a typed [`Route`]: content to serve ([`ContentRequest`]: root CID, decoded
//! path segments, response format, range, validators, download options), a redirect (the
//! `?uri=ipfs://…` protocol handler and subdomain canonicalisation), or an error.
//!
//! Path segments are percent-decoded here and `.`/`..` (also encoded as `%2e%2e`) are refused,
//! so nothing downstream ever sees a traversal.

use cid::Cid;
use percent_encoding::percent_decode_str;

use super::error::GatewayError;
use super::range::{ByteRange, EntityBytes, parse_range_header};
use super::subdomain;
use crate::content::cid::parse_cid;

/// The parts of an HTTP request the gateway looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// Raw (still percent-encoded) path.
    pub path: &'a str,
    /// Raw query string without `?`; empty when absent.
    pub query: &'a str,
    pub host: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub range: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub forwarded_proto: Option<&'a str>,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Content(Box<ContentRequest>),
    /// 301 to this location.
    Redirect(String),
    /// `OPTIONS`: the allowed methods.
    Options,
}

/// How the content is to be returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Path gateway: files as bytes, directories as `index.html` or a listing.
    Unixfs,
    /// Trustless: the single block the path resolves to (`application/vnd.ipld.raw`).
    Raw,
    /// Trustless: a CAR v1 stream (`application/vnd.ipld.car`).
    Car(CarOptions),
}

/// Which blocks a CAR response holds below the path it resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagScope {
    /// Only the block the path ends at.
    Block,
    /// The UnixFS entity: a whole file (or the `entity-bytes` part of it), a directory's own
    /// blocks (all shards of a HAMT) without its children.
    Entity,
    /// Everything reachable.
    All,
}

impl DagScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Entity => "entity",
            Self::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarOptions {
    pub scope: DagScope,
    pub entity_bytes: Option<EntityBytes>,
}

/// A request for content under `/ipfs/<root>/<segments…>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRequest {
    pub root: Cid,
    /// Decoded path segments below the root.
    pub segments: Vec<String>,
    /// The URL path ended with `/` (directories are served only then).
    pub trailing_slash: bool,
    pub format: Format,
    pub range: Option<ByteRange>,
    /// Entity tags of `If-None-Match` (quoted, weakness dropped), or `*`.
    pub if_none_match: Vec<String>,
    /// `?filename=`: name for `Content-Disposition` and the content type.
    pub filename: Option<String>,
    /// `?download=true`: `Content-Disposition: attachment`.
    pub download: bool,
    pub head: bool,
    /// The raw request path and query, for redirects that keep them.
    pub raw_path: String,
    pub raw_query: String,
}

impl ContentRequest {
    /// `/ipfs/<root>/<segments…>` for `X-Ipfs-Path`.
    pub fn content_path(&self) -> String {
        let mut p = format!("/ipfs/{}", self.root);
        for s in &self.segments {
            p.push('/');
            p.push_str(&percent_encoding::utf8_percent_encode(s, SEGMENT).to_string());
        }
        p
    }

    /// The name the served entity is known by (`?filename=`, else the last path segment).
    pub fn name(&self) -> Option<&str> {
        self.filename
            .as_deref()
            .or(self.segments.last().map(String::as_str))
    }
}

/// Characters escaped in a path segment of a URL we build.
pub const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// Turn a request into a [`Route`]. `subdomain_host` enables subdomain mode.
pub fn parse(head: &RequestHead<'_>, subdomain_host: Option<&str>) -> Result<Route, GatewayError> {
    let is_head = match head.method {
        "GET" => false,
        "HEAD" => true,
        "OPTIONS" => return Ok(Route::Options),
        _ => return Err(GatewayError::MethodNotAllowed),
    };
    let query = parse_query(head.query)?;
    let mut path = head.path.to_owned();
    if let (Some(base), Some(host)) = (subdomain_host, head.host) {
        match subdomain::classify(host, base, head.path, head.query, head.forwarded_proto)? {
            subdomain::Origin::Redirect(location) => return Ok(Route::Redirect(location)),
            subdomain::Origin::Subdomain { cid_label } => {
                path = format!("/ipfs/{cid_label}{}", head.path);
            }
            subdomain::Origin::Path => {}
        }
    }
    if path == "/ipfs" || path == "/ipfs/" {
        let uri = query.iter().find(|(k, _)| k == "uri").map(|(_, v)| v);
        return match uri {
            Some(uri) => protocol_handler_redirect(uri).map(Route::Redirect),
            None => Err(GatewayError::BadRequest(
                "missing CID: request /ipfs/<cid>[/path]".into(),
            )),
        };
    }
    if path.starts_with("/ipns/") {
        return Err(GatewayError::NotImplemented(
            "IPNS names are not resolved by this gateway; use /ipfs/<cid>".into(),
        ));
    }
    let Some(rest) = path.strip_prefix("/ipfs/") else {
        return Err(GatewayError::NotFound(format!(
            "{}: only /ipfs/<cid>[/path] is served",
            head.path
        )));
    };
    let trailing_slash = rest.ends_with('/');
    let mut parts = rest.split('/').filter(|s| !s.is_empty());
    let cid_text = decode_segment(parts.next().unwrap_or_default())?;
    let root = parse_cid(&cid_text).map_err(|e| GatewayError::invalid_cid(&cid_text, e))?;
    let mut segments = Vec::new();
    for raw in parts {
        let seg = decode_segment(raw)?;
        if seg == "." || seg == ".." {
            return Err(GatewayError::BadRequest(format!(
                "path segment {raw:?} is not allowed: IPFS paths cannot go up"
            )));
        }
        if seg.contains('/') || seg.contains('\0') {
            return Err(GatewayError::BadRequest(format!(
                "path segment {raw:?} decodes to a name with '/' or NUL"
            )));
        }
        segments.push(seg);
    }
    let get = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let format = response_format(
        get("format"),
        head.accept,
        get("dag-scope"),
        get("entity-bytes"),
    )?;
    let range = match (format, head.range) {
        (Format::Unixfs, Some(value)) => parse_range_header(value)?,
        _ => None,
    };
    let if_none_match = head
        .if_none_match
        .map(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/").to_owned())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Route::Content(Box::new(ContentRequest {
        root,
        segments,
        trailing_slash,
        format,
        range,
        if_none_match,
        filename: get("filename").map(str::to_owned),
        download: get("download") == Some("true"),
        head: is_head,
        raw_path: head.path.to_owned(),
        raw_query: head.query.to_owned(),
    })))
}

fn decode_segment(raw: &str) -> Result<String, GatewayError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| GatewayError::BadRequest(format!("path segment {raw:?} is not UTF-8")))
}

/// Query pairs, percent-decoded (`+` is a space, as in HTML forms).
fn parse_query(query: &str) -> Result<Vec<(String, String)>, GatewayError> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| GatewayError::BadRequest(format!("query part {s:?} is not UTF-8")))
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// `/ipfs/?uri=ipfs://<cid>/<path>` → `/ipfs/<cid>/<path>`.
fn protocol_handler_redirect(uri: &str) -> Result<String, GatewayError> {
    if uri.chars().any(char::is_control) {
        return Err(GatewayError::BadRequest(
            "uri contains control characters".into(),
        ));
    }
    let rest = uri
        .strip_prefix("ipfs://")
        .ok_or_else(|| {
            GatewayError::BadRequest(format!(
                "uri {uri:?} is not an ipfs:// URI (expected ?uri=ipfs://<cid>/<path>)"
            ))
        })?
        .trim_start_matches('/');
    let (cid_text, path) = rest.split_once('/').unwrap_or((rest, ""));
    let cid = parse_cid(cid_text).map_err(|e| GatewayError::invalid_cid(cid_text, e))?;
    let mut location = format!("/ipfs/{cid}");
    if !path.is_empty() {
        location.push('/');
        let encoded: Vec<String> = path
            .split('/')
            .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
            .collect();
        location.push_str(&encoded.join("/"));
    }
    Ok(location)
}

const CAR_TYPE: &str = "application/vnd.ipld.car";
const RAW_TYPE: &str = "application/vnd.ipld.raw";

fn response_format(
    format: Option<&str>,
    accept: Option<&str>,
    scope: Option<&str>,
    entity_bytes: Option<&str>,
) -> Result<Format, GatewayError> {
    let car = || -> Result<Format, GatewayError> {
        let scope = match scope {
            None | Some("all") => DagScope::All,
            Some("entity") => DagScope::Entity,
            Some("block") => DagScope::Block,
            Some(other) => {
                return Err(GatewayError::BadRequest(format!(
                    "dag-scope {other:?} is not one of block, entity, all"
                )));
            }
        };
        let entity_bytes = entity_bytes.map(EntityBytes::parse).transpose()?;
        Ok(Format::Car(CarOptions {
            scope,
            entity_bytes,
        }))
    };
    match format {
        Some("raw") => return Ok(Format::Raw),
        Some("car") => return car(),
        Some("" | "unixfs") | None => {}
        Some(f @ ("tar" | "dag-json" | "dag-cbor" | "json" | "cbor" | "ipns-record")) => {
            return Err(GatewayError::NotImplemented(format!(
                "format={f} is not served; use raw or car"
            )));
        }
        Some(other) => {
            return Err(GatewayError::BadRequest(format!(
                "format {other:?} is not one of raw, car"
            )));
        }
    }
    let Some(accept) = accept else {
        return Ok(Format::Unixfs);
    };
    let mut refused = None;
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_owned(),
                )
            })
            .collect();
        if kind == RAW_TYPE {
            return Ok(Format::Raw);
        }
        if kind == CAR_TYPE {
            let ok = params.iter().all(|(k, v)| match k.as_str() {
                "version" => v == "1",
                "order" => v == "dfs" || v == "unk",
                "dups" => v == "n" || v == "y",
                _ => true,
            });
            if ok {
                return car();
            }
            refused = Some(media.trim().to_owned());
        }
    }
    match refused {
        Some(media) => Err(GatewayError::NotAcceptable(format!(
            "{media:?}: only CAR version=1 order=dfs dups=n is produced"
        ))),
        None => Ok(Format::Unixfs),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CID: &str = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";

    fn get(path: &str, query: &str) -> RequestHead<'static> {
        RequestHead {
            method: "GET",
            path: Box::leak(path.to_owned().into_boxed_str()),
            query: Box::leak(query.to_owned().into_boxed_str()),
            ..RequestHead::default()
        }
    }

    fn content(head: &RequestHead<'_>) -> ContentRequest {
        match parse(head, None).unwrap() {
            Route::Content(c) => *c,
            other => panic!("expected content, got {other:?}"),
        }
    }

    fn status(head: &RequestHead<'_>) -> u16 {
        parse(head, None).unwrap_err().status()
    }

    #[test]
    fn paths_and_segments() {
        let c = content(&get(&format!("/ipfs/{CID}/a/b%20c/"), ""));
        assert_eq!(c.root.to_string(), CID);
        assert_eq!(c.segments, vec!["a", "b c"]);
        assert!(c.trailing_slash);
        assert_eq!(c.format, Format::Unixfs);
        assert_eq!(c.content_path(), format!("/ipfs/{CID}/a/b%20c"));
        let c = content(&get(&format!("/ipfs/{CID}//x"), ""));
        assert_eq!(c.segments, vec!["x"]);
        assert!(!c.trailing_slash);
    }

    #[test]
    fn bad_paths() {
        assert_eq!(status(&get("/ipfs/notacid", "")), 400);
        assert_eq!(status(&get(&format!("/ipfs/{CID}/../x"), "")), 400);
        assert_eq!(status(&get(&format!("/ipfs/{CID}/%2e%2E/x"), "")), 400);
        assert_eq!(status(&get(&format!("/ipfs/{CID}/./x"), "")), 400);
        assert_eq!(status(&get(&format!("/ipfs/{CID}/a%2Fb"), "")), 400);
        assert_eq!(status(&get(&format!("/ipfs/{CID}/%ff"), "")), 400);
        assert_eq!(status(&get("/etc/passwd", "")), 404);
        assert_eq!(status(&get("/ipns/example.com", "")), 501);
        assert_eq!(status(&get("/ipfs/", "")), 400);
        let mut post = get(&format!("/ipfs/{CID}"), "");
        post.method = "POST";
        assert_eq!(status(&post), 405);
        post.method = "PUT";
        assert_eq!(status(&post), 405);
    }

    #[test]
    fn formats() {
        let path = format!("/ipfs/{CID}");
        assert_eq!(content(&get(&path, "format=raw")).format, Format::Raw);
        let car = content(&get(&path, "format=car&dag-scope=entity&entity-bytes=0:99")).format;
        assert_eq!(
            car,
            Format::Car(CarOptions {
                scope: DagScope::Entity,
                entity_bytes: Some(EntityBytes {
                    from: 0,
                    to: Some(99)
                })
            })
        );
        let mut h = get(&path, "");
        h.accept = Some("application/vnd.ipld.car; version=1; order=dfs; dups=n");
        assert!(matches!(content(&h).format, Format::Car(_)));
        h.accept = Some("text/html, application/vnd.ipld.raw;q=0.9");
        assert_eq!(content(&h).format, Format::Raw);
        h.accept = Some("application/vnd.ipld.car;version=2");
        assert_eq!(status(&h), 406);
        h.accept = Some("text/html,*/*");
        assert_eq!(content(&h).format, Format::Unixfs);
        assert_eq!(status(&get(&path, "format=zip")), 400);
        assert_eq!(status(&get(&path, "format=tar")), 501);
        assert_eq!(status(&get(&path, "format=car&dag-scope=most")), 400);
        assert_eq!(status(&get(&path, "format=car&entity-bytes=9:1")), 400);
    }

    #[test]
    fn query_options_and_headers() {
        let mut h = get(
            &format!("/ipfs/{CID}"),
            "filename=my+file%21.png&download=true",
        );
        h.range = Some("bytes=1-2");
        h.if_none_match = Some(r#"W/"abc", "def""#);
        let c = content(&h);
        assert_eq!(c.filename.as_deref(), Some("my file!.png"));
        assert_eq!(c.name(), Some("my file!.png"));
        assert!(c.download);
        assert_eq!(
            c.range,
            Some(ByteRange::FromTo {
                first: 1,
                last: Some(2)
            })
        );
        assert_eq!(c.if_none_match, vec![r#""abc""#, r#""def""#]);
        h.range = Some("bytes=x");
        assert_eq!(status(&h), 400);
    }

    #[test]
    fn protocol_handler() {
        let q = format!("uri=ipfs%3A%2F%2F{CID}%2Fa%20b%2Fc.txt");
        assert_eq!(
            parse(&get("/ipfs/", &q), None).unwrap(),
            Route::Redirect(format!("/ipfs/{CID}/a%20b/c.txt"))
        );
        assert_eq!(
            parse(&get("/ipfs", &format!("uri=ipfs://{CID}")), None).unwrap(),
            Route::Redirect(format!("/ipfs/{CID}"))
        );
        assert_eq!(
            status(&get("/ipfs/", "uri=https%3A%2F%2Fevil.example")),
            400
        );
        assert_eq!(status(&get("/ipfs/", "uri=ipfs%3A%2F%2Fnope")), 400);
        assert_eq!(
            status(&get("/ipfs/", "uri=ipfs%3A%2F%2Fx%0d%0aSet-Cookie:a")),
            400
        );
    }
}
