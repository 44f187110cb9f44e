//! Path gateway responses: a file's bytes (content type, single byte range, download
//! options), a directory (redirect to the trailing-slash URL, its `index.html`, or the HTML
//! [`listing`](super::listing)), a symlink's target, and non-UnixFS blocks (dag-cbor,
//! dag-json) as they are.
//!
//! Files up to [`INLINE_LIMIT`] are read before the headers are sent, so a block the network
//! cannot deliver still becomes a 504; larger ones stream, reading only the blocks of the
//! requested range.

use bytes::Bytes;
use cid::Cid;

use super::error::GatewayError;
use super::range::Resolved;
use super::reply::{Body, IMMUTABLE, Reply};
use super::request::{ContentRequest, SEGMENT};
use super::respond::{fetch_block, not_modified};
use super::{listing, mime};
use crate::content::exporter::{self, BlockSource, ExportError, NodeKind};

/// Bodies up to this size are read into memory before responding.
pub const INLINE_LIMIT: u64 = 1 << 20;

/// Cache-Control of generated listings: the page's HTML may change with the gateway.
const LISTING_CACHE: &str = "public, max-age=604800, stale-while-revalidate=2678400";

type Headers = Vec<(&'static str, String)>;

pub fn serve(
    src: &dyn BlockSource,
    req: &ContentRequest,
    cid: Cid,
    common: Headers,
) -> Result<Reply, GatewayError> {
    let info = match exporter::stat(src, &cid) {
        Err(ExportError::UnsupportedCodec { codec, .. }) => {
            return codec_block(src, req, cid, codec, common);
        }
        other => other.map_err(GatewayError::from_export)?,
    };
    match info.kind {
        NodeKind::File => file(src, req, cid, info.size, req.name(), common),
        NodeKind::Directory | NodeKind::ShardedDirectory => directory(src, req, cid, common),
        NodeKind::Symlink(target) => {
            let etag = format!("\"{cid}\"");
            if not_modified(req, &etag) {
                return Ok(not_modified_reply(etag, common));
            }
            Ok(Reply::new(200)
                .headers(&common)
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("ETag", etag)
                .header("Cache-Control", IMMUTABLE)
                .body(body_bytes(req, target.into())))
        }
    }
}

fn not_modified_reply(etag: String, common: Headers) -> Reply {
    Reply::new(304)
        .headers(&common)
        .header("ETag", etag)
        .header("Cache-Control", IMMUTABLE)
}

/// A small in-memory body (the server drops it for HEAD, keeping its length).
fn body_bytes(_req: &ContentRequest, bytes: Bytes) -> Body {
    Body::Bytes(bytes)
}

fn file(
    src: &dyn BlockSource,
    req: &ContentRequest,
    cid: Cid,
    size: u64,
    name: Option<&str>,
    common: Headers,
) -> Result<Reply, GatewayError> {
    let etag = format!("\"{cid}\"");
    if not_modified(req, &etag) {
        return Ok(not_modified_reply(etag, common));
    }
    let (status, offset, length) = match req.range.map(|r| r.resolve(size)) {
        None => (200, 0, size),
        Some(Resolved::Part { offset, length }) => (206, offset, length),
        Some(Resolved::Unsatisfiable) => return Err(GatewayError::RangeNotSatisfiable { size }),
    };
    let inline = (!req.head && length <= INLINE_LIMIT)
        .then(|| {
            let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
            exporter::read_range(src, &cid, offset, Some(length), &mut bytes)
                .map(|_| bytes)
                .map_err(GatewayError::from_export)
        })
        .transpose()?;
    let content_type = match name.and_then(mime::from_name) {
        Some(t) => t,
        // A body that starts the file holds the bytes to sniff (or all the file has).
        None => match &inline {
            Some(bytes) if offset == 0 && length >= size.min(mime::SNIFF_LEN as u64) => {
                mime::sniff(bytes)
            }
            _ => {
                let mut head = Vec::new();
                exporter::read_range(src, &cid, 0, Some(mime::SNIFF_LEN as u64), &mut head)
                    .map_err(GatewayError::from_export)?;
                mime::sniff(&head)
            }
        },
    };
    let mut reply = Reply::new(status)
        .headers(&common)
        .header("Content-Type", content_type)
        .header("ETag", etag)
        .header("Cache-Control", IMMUTABLE)
        .header("Accept-Ranges", "bytes");
    if status == 206 {
        reply = reply.header(
            "Content-Range",
            format!("bytes {offset}-{}/{size}", offset + length - 1),
        );
    }
    if let Some(disposition) = disposition(req, &cid) {
        reply = reply.header("Content-Disposition", disposition);
    }
    let body = if req.head {
        Body::Stream {
            len: Some(length),
            job: Box::new(|_, _| Ok(())),
        }
    } else if let Some(bytes) = inline {
        Body::Bytes(bytes.into())
    } else {
        Body::Stream {
            len: Some(length),
            job: Box::new(move |src, out| {
                exporter::read_range(src, &cid, offset, Some(length), out)
                    .map(|_| ())
                    .map_err(GatewayError::from_export)
            }),
        }
    };
    Ok(reply.body(body))
}

/// `Content-Disposition` for `?filename=` and `?download=true`.
fn disposition(req: &ContentRequest, cid: &Cid) -> Option<String> {
    if req.filename.is_none() && !req.download {
        return None;
    }
    let kind = if req.download { "attachment" } else { "inline" };
    let name = req
        .name()
        .map(str::to_owned)
        .unwrap_or_else(|| cid.to_string());
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut value = format!("{kind}; filename=\"{ascii}\"");
    if ascii != name {
        let encoded = percent_encoding::utf8_percent_encode(&name, SEGMENT);
        value.push_str(&format!("; filename*=UTF-8''{encoded}"));
    }
    Some(value)
}

fn directory(
    src: &dyn BlockSource,
    req: &ContentRequest,
    cid: Cid,
    common: Headers,
) -> Result<Reply, GatewayError> {
    if !req.trailing_slash {
        let mut location = format!("{}/", req.raw_path);
        if !req.raw_query.is_empty() {
            location.push('?');
            location.push_str(&req.raw_query);
        }
        return Ok(Reply::redirect(location).headers(&common));
    }
    match exporter::lookup(src, &cid, "index.html") {
        Ok(index) => {
            let info = exporter::stat(src, &index).map_err(GatewayError::from_export)?;
            if info.kind == NodeKind::File {
                return file(src, req, index, info.size, Some("index.html"), common);
            }
        }
        Err(ExportError::NotFound { .. }) => {}
        Err(e) => return Err(GatewayError::from_export(e)),
    }
    let etag = format!("\"DirIndex-1_CID-{cid}\"");
    if not_modified(req, &etag) {
        return Ok(Reply::new(304)
            .headers(&common)
            .header("ETag", etag)
            .header("Cache-Control", LISTING_CACHE));
    }
    let entries = exporter::list(src, &cid).map_err(GatewayError::from_export)?;
    let html = listing::render(
        &req.content_path(),
        &cid.to_string(),
        &entries,
        !req.segments.is_empty(),
    );
    Ok(Reply::new(200)
        .headers(&common)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("ETag", etag)
        .header("Cache-Control", LISTING_CACHE)
        .body(body_bytes(req, html.into())))
}

/// A block of a codec the path gateway does not walk, served as it is.
fn codec_block(
    src: &dyn BlockSource,
    req: &ContentRequest,
    cid: Cid,
    codec: u64,
    common: Headers,
) -> Result<Reply, GatewayError> {
    let content_type = match codec {
        0x71 => "application/vnd.ipld.dag-cbor",
        0x0129 => "application/vnd.ipld.dag-json",
        0x51 => "application/cbor",
        0x0200 => "application/json",
        other => {
            return Err(GatewayError::NotImplemented(format!(
                "{cid} uses codec 0x{other:x}; request it with ?format=raw or ?format=car"
            )));
        }
    };
    let etag = format!("\"{cid}\"");
    if not_modified(req, &etag) {
        return Ok(not_modified_reply(etag, common));
    }
    let bytes = fetch_block(src, &cid)?;
    Ok(Reply::new(200)
        .headers(&common)
        .header("Content-Type", content_type)
        .header("ETag", etag)
        .header("Cache-Control", IMMUTABLE)
        .body(body_bytes(req, bytes)))
}
