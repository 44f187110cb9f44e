//! [`GatewayError`]: every way a gateway request can fail, and the HTTP status each maps to.
//! Exporter errors are classified here ([`GatewayError::from_export`]): a name missing in a
//! directory is 404, content the network could not deliver in time is 504, a codec the path
//! gateway cannot walk is 501.

use thiserror::Error;

use crate::content::exporter::ExportError;
use crate::net::bitswap::FetchError;

/// A request the gateway answers with an error status.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed: the gateway is read-only (GET, HEAD, OPTIONS)")]
    MethodNotAllowed,
    #[error("not acceptable: {0}")]
    NotAcceptable(String),
    #[error("range not satisfiable: the content is {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("not implemented: {0}")]
    NotImplemented(String),
    #[error("content not retrievable in time: {0}")]
    Timeout(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// The HTTP status code of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed => 405,
            Self::NotAcceptable(_) => 406,
            Self::RangeNotSatisfiable { .. } => 416,
            Self::NotImplemented(_) => 501,
            Self::Timeout(_) => 504,
            Self::Internal(_) => 500,
        }
    }

    /// Classify an exporter error met while serving `cid`.
    pub fn from_export(e: ExportError) -> Self {
        match e {
            ExportError::NotFound { .. } | ExportError::NotDirectory(_) => {
                Self::NotFound(e.to_string())
            }
            ExportError::Missing(cid) => Self::Timeout(format!("block {cid} is not available")),
            ExportError::Source { cid, source } => match source.downcast_ref::<FetchError>() {
                Some(FetchError::Timeout { .. } | FetchError::Failed { .. }) => {
                    Self::Timeout(format!("block {cid}: {source}"))
                }
                _ => Self::Internal(format!("reading block {cid}: {source}")),
            },
            ExportError::UnsupportedCodec { .. } => Self::NotImplemented(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }

    /// A CID string in a request that does not parse.
    pub fn invalid_cid(text: &str, reason: impl std::fmt::Display) -> Self {
        Self::BadRequest(format!("invalid CID {text:?}: {reason}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let cid = crate::content::cid::block_cid(0x55, 1, b"x");
        let check = |e: ExportError, status: u16| {
            assert_eq!(GatewayError::from_export(e).status(), status);
        };
        check(
            ExportError::NotFound {
                cid,
                name: "a".into(),
            },
            404,
        );
        check(ExportError::NotDirectory(cid), 404);
        check(ExportError::Missing(cid), 504);
        check(ExportError::UnsupportedCodec { cid, codec: 0x71 }, 501);
        let timeout = FetchError::Timeout {
            root: cid,
            secs: 1,
            pending: 1,
        };
        check(
            ExportError::Source {
                cid,
                source: Box::new(timeout),
            },
            504,
        );
        check(ExportError::TooDeep(cid), 500);
        assert_eq!(GatewayError::MethodNotAllowed.status(), 405);
    }
}
