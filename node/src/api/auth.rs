//! Who may call the RPC API: the one place requests are authorised.
//!
//! Without a token file every request is let through, which [`super::server`] only allows on
//! loopback. With `--api-token-file` (one token per line, blank lines and `#` comments
//! ignored) a request must carry `Authorization: Bearer <token>` with one of them, or it is
//! answered 401 before any command runs.

use std::path::{Path, PathBuf};

use warp::http::HeaderMap;
use warp::http::header::AUTHORIZATION;

use super::error::ApiError;

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFileError {
    #[error("reading the API token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the API token file {0} holds no token; put one token per line")]
    Empty(PathBuf),
}

/// The access policy of the API.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// `None`: open (loopback only).
    tokens: Option<Vec<String>>,
}

impl Auth {
    /// Anyone who can connect may call.
    pub fn open() -> Self {
        Self { tokens: None }
    }

    /// Only holders of one of `tokens`.
    pub fn tokens(tokens: Vec<String>) -> Self {
        Self {
            tokens: Some(tokens),
        }
    }

    /// Load the tokens of a token file.
    pub fn from_file(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let tokens = parse_tokens(&text);
        if tokens.is_empty() {
            return Err(TokenFileError::Empty(path.to_owned()));
        }
        Ok(Self::tokens(tokens))
    }

    /// Whether requests need a token.
    pub fn is_required(&self) -> bool {
        self.tokens.is_some()
    }

    /// Let the request with these headers through, or say why not.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(token) if tokens.iter().any(|t| constant_time_eq(t, token)) => Ok(()),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The tokens of a token file's text: one per line, blank lines and `#` comments skipped.
pub fn parse_tokens(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Compare without stopping at the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn token_file_lines_skip_blanks_and_comments() {
        assert_eq!(parse_tokens("# c\n\n a \nb\n"), vec!["a", "b"]);
    }

    #[test]
    fn only_listed_bearer_tokens_pass() {
        let auth = Auth::tokens(vec!["secret".into(), "other".into()]);
        assert!(auth.check(&headers("Bearer secret")).is_ok());
        assert!(auth.check(&headers("Bearer other")).is_ok());
        assert!(auth.check(&headers("Bearer secreT")).is_err());
        assert!(auth.check(&headers("secret")).is_err());
        assert!(auth.check(&HeaderMap::new()).is_err());
        assert!(Auth::open().check(&HeaderMap::new()).is_ok());
    }
}
