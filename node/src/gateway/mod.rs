//! The IPFS HTTP gateway: a public, read-only view of `/ipfs/<cid>[/path]` following the IPFS
//! HTTP Gateway specs (path gateway, trustless gateway, subdomain gateway).
//!
//! Requests flow through these parts, one concern each:
//! - [`request`] (pure): method, raw path, query, `Accept`/`Range`/`If-None-Match`/`Host` →
//!   a typed [`request::Route`]; decodes and checks path segments (no `..`).
//! - [`subdomain`] (pure): `<cidv1>.ipfs.<host>` origins and the redirects to them.
//! - [`range`] (pure): `Range` headers and `entity-bytes`.
//! - [`mime`] (pure): content type by extension, then by sniffing.
//! - [`listing`] (pure): the HTML listing of a directory.
//! - [`respond`]: resolves the path over a [`BlockSource`](crate::content::exporter::BlockSource)
//!   and dispatches to [`unixfs`] (files, directories, ranges, caching headers) or
//!   [`trustless`] (raw blocks, CAR streams with `dag-scope` and `entity-bytes`).
//! - [`error`]: every failure and its status code; [`reply`]: a response independent of the
//!   HTTP library.
//! - [`cache`]: verified hot blocks kept in memory up to a byte budget.
//! - [`server`]: the warp listener; local answers of a few blocks are made on the connection's
//!   task ([`inline`]), other reads run on blocking threads, and bodies stream.
//! - [`metrics`]: `gateway_requests_total{status}` and a request duration histogram.
//!
//! The daemon starts it with `distribute node --gateway <addr>` (or `distribute gateway
//! --port N`); blocks the store lacks are fetched over Bitswap, bounded by
//! `--retrieval-timeout`.

pub mod cache;
pub mod error;
pub mod inline;
pub mod listing;
pub mod metrics;
pub mod mime;
pub mod range;
pub mod reply;
pub mod request;
pub mod respond;
pub mod server;
pub mod subdomain;
pub mod trustless;
pub mod unixfs;

pub use error::GatewayError;
pub use metrics::GatewayMetrics;
pub use server::{Gateway, serve};
