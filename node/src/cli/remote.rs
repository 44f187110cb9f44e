//! The CLI's client of a running daemon's RPC API (blocking, ureq): found through
//! `<repo>/api`, authorised with `$DISTRIBUTE_API_TOKEN` or the first token of
//! `--api-token-file`. Calls return the typed results of [`crate::ops`] decoded from the
//! daemon's JSON, so the commands render them exactly as offline; a failed call becomes the
//! error whose message the daemon sent. Every command run while a daemon holds the
//! repository goes through here.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde::de::DeserializeOwned;

use super::args::GlobalArgs;
use crate::api::error::ErrorBody;
use crate::api::server::API_FILE;

/// Environment variable holding the bearer token the CLI sends.
pub const TOKEN_ENV: &str = "DISTRIBUTE_API_TOKEN";

/// A daemon's RPC API.
pub struct Remote {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// Query parameters of a call: `arg`s first, then options.
pub type Params<'a> = Vec<(&'a str, String)>;

impl Remote {
    /// The API of the daemon holding the repository at `repo`, if it wrote `<repo>/api`.
    pub fn discover(repo: &Path, global: &GlobalArgs) -> Result<Option<Self>> {
        let path = repo.join(API_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let host_port = host_port(text.trim())
            .with_context(|| format!("{} holds no usable API address", path.display()))?;
        let token = match (std::env::var(TOKEN_ENV), &global.api_token_file) {
            (Ok(t), _) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            (_, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the API token file {}", file.display()))?;
                let first = crate::api::auth::parse_tokens(&text).into_iter().next();
                Some(first.with_context(|| {
                    format!("the API token file {} holds no token", file.display())
                })?)
            }
            _ => None,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(Some(Self {
            base: format!("http://{host_port}/api/v0/"),
            token,
            agent,
        }))
    }

    /// POST `cmd` with `params` and an optional body; the successful answer's body.
    pub fn call(
        &self,
        cmd: &str,
        params: &Params<'_>,
        body: Option<(&str, &mut dyn Read)>,
    ) -> Result<ureq::Body> {
        Ok(self.call_response(cmd, params, body)?.into_body())
    }

    /// [`Remote::call`], keeping the answer's headers.
    pub fn call_response(
        &self,
        cmd: &str,
        params: &Params<'_>,
        body: Option<(&str, &mut dyn Read)>,
    ) -> Result<http::Response<ureq::Body>> {
        let mut request = self
            .agent
            .post(format!("{}{cmd}", self.base))
            .query_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let sent = match body {
            Some((content_type, reader)) => request
                .header("Content-Type", content_type)
                .send(ureq::SendBody::from_reader(reader)),
            None => request.send_empty(),
        };
        let response = sent.map_err(|e| {
            anyhow!(
                "calling the daemon's API at {}: {e}; is `distribute node` still running?",
                self.base
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => bail!("{}", e.message),
            Err(_) => bail!("the daemon answered {status}: {}", text.trim()),
        }
    }

    /// A call answering one JSON value.
    pub fn json<T: DeserializeOwned>(&self, cmd: &str, params: &Params<'_>) -> Result<T> {
        let body = self.call(cmd, params, None)?;
        serde_json::from_reader(body.into_reader())
            .with_context(|| format!("decoding the daemon's answer to {cmd}"))
    }

    /// A call answering NDJSON, each line decoded and passed to `each`.
    pub fn lines<T: DeserializeOwned>(
        &self,
        cmd: &str,
        params: &Params<'_>,
        body: Option<(&str, &mut dyn Read)>,
        each: &mut dyn FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let answer = self.call(cmd, params, body)?;
        self.ndjson(answer, cmd, each)
    }

    /// Decode each line of an NDJSON answer and pass it to `each`; an error line fails.
    pub fn ndjson<T: DeserializeOwned>(
        &self,
        body: ureq::Body,
        cmd: &str,
        each: &mut dyn FnMut(T) -> Result<()>,
    ) -> Result<()> {
        for line in BufReader::new(body.into_reader()).lines() {
            let line = line.with_context(|| format!("reading the daemon's answer to {cmd}"))?;
            if line.trim().is_empty() {
                continue;
            }
            if let Ok(e) = serde_json::from_str::<ErrorBody>(&line)
                && e.kind == "error"
            {
                bail!("{}", e.message);
            }
            let value = serde_json::from_str(&line)
                .with_context(|| format!("decoding the daemon's answer to {cmd}: {line}"))?;
            each(value)?;
        }
        Ok(())
    }
}

/// `host:port` of an API multiaddr (`/ip4/…/tcp/…`, `/ip6/…`, `/dns…/…`).
fn host_port(multiaddr: &str) -> Option<String> {
    let parts: Vec<&str> = multiaddr.split('/').collect();
    match parts.as_slice() {
        ["", "ip4" | "dns" | "dns4" | "dns6", host, "tcp", port, ..] => {
            Some(format!("{host}:{port}"))
        }
        ["", "ip6", host, "tcp", port, ..] => Some(format!("[{host}]:{port}")),
        _ => None,
    }
}

/// Most bytes moved per read and write when a response body is copied out. `io::copy` into a
/// `dyn Write` goes 8 KiB at a time, each a pass through the HTTP client's body decoder and a
/// write system call; with this room each read takes what the client holds (about 64 KiB):
/// a 64 MiB `cat` makes about 1,000 writes instead of 8,000.
const COPY_CHUNK: usize = 256 * 1024;

/// Copy a response body to `out` through a [`COPY_CHUNK`] buffer (`io::copy` writes straight
/// from a `BufReader`'s buffer); the bytes copied.
pub fn copy_body(body: &mut dyn Read, out: &mut dyn Write) -> std::io::Result<u64> {
    std::io::copy(&mut BufReader::with_capacity(COPY_CHUNK, body), out)
}

/// `arg` parameters for each of `values`.
pub fn args<'a>(values: &[String]) -> Params<'a> {
    values.iter().map(|v| ("arg", v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_multiaddrs_become_host_and_port() {
        assert_eq!(
            host_port("/ip4/127.0.0.1/tcp/5001").unwrap(),
            "127.0.0.1:5001"
        );
        assert_eq!(host_port("/ip6/::1/tcp/80").unwrap(), "[::1]:80");
        assert_eq!(host_port("/dns/node/tcp/1/http").unwrap(), "node:1");
        assert!(host_port("/ip4/1.2.3.4/udp/1").is_none());
        assert!(host_port("garbage").is_none());
    }

    #[test]
    fn bodies_are_copied_whole_across_chunks() {
        let data: Vec<u8> = (0..COPY_CHUNK * 2 + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut out = Vec::new();
        let copied = copy_body(&mut std::io::Cursor::new(&data), &mut out).unwrap();
        assert_eq!(copied, data.len() as u64);
        assert_eq!(out, data);
        let mut empty = Vec::new();
        assert_eq!(copy_body(&mut std::io::empty(), &mut empty).unwrap(), 0);
        assert!(empty.is_empty());
    }
}
