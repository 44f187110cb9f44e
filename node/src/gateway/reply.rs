//! [`Reply`]: a gateway response independent of the HTTP library: status, headers and a body
//! that is empty, already in memory, or a job that writes it (run later on a blocking thread
//! while the server streams what it writes).

use std::io::Write;

use super::error::GatewayError;
use crate::content::exporter::BlockSource;

/// Writes a response body from blocks; runs on a blocking thread.
pub type BodyJob =
    Box<dyn FnOnce(&dyn BlockSource, &mut dyn Write) -> Result<(), GatewayError> + Send>;

pub enum Body {
    Empty,
    Bytes(bytes::Bytes),
    /// Produced by `job`; `len` is the exact length when known (sent as Content-Length).
    Stream {
        len: Option<u64>,
        job: BodyJob,
    },
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Self::Stream { len, .. } => write!(f, "Stream({len:?})"),
        }
    }
}

/// Cache-Control of everything under `/ipfs/`: the bytes of a CID never change.
pub const IMMUTABLE: &str = "public, max-age=29030400, immutable";

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn headers(mut self, extra: &[(&'static str, String)]) -> Self {
        self.headers.extend_from_slice(extra);
        self
    }

    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// The value of header `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// 301 to `location`.
    pub fn redirect(location: String) -> Self {
        Self::new(301).header("Location", location)
    }

    /// A plain-text error page. 504 carries `Retry-After`, 416 the content's size, 405 `Allow`.
    pub fn error(e: &GatewayError, retry_after_secs: u64) -> Self {
        let mut r = Self::new(e.status())
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Cache-Control", "no-cache")
            .body(Body::Bytes(format!("{e}\n").into()));
        match e {
            GatewayError::Timeout(_) => r = r.header("Retry-After", retry_after_secs.to_string()),
            GatewayError::RangeNotSatisfiable { size } => {
                r = r.header("Content-Range", format!("bytes */{size}"))
            }
            GatewayError::MethodNotAllowed => r = r.header("Allow", "GET, HEAD, OPTIONS"),
            _ => {}
        }
        r
    }
}
