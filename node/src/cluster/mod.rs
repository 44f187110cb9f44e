//! Cluster pinning and replication: nodes sharing a secret keep every cluster pin on its
//! replication factor's worth of members, with no coordinator.
//!
//! Pure parts: [`pinset`] (the replicated pinset CRDT and its clock), [`allocation`]
//! (weighted rendezvous hashing across zones), [`membership`] (heartbeats → alive, leaving,
//! down), [`status`] (per-pin aggregation, the release rule), [`core`] (one node's whole view
//! and the tracker's plan), [`lag`] (which pins below target get a warning line). I/O parts:
//! [`wire`] (authenticated frames), [`store`] (sled trees), [`service`] (heartbeats,
//! anti-entropy, the pin tracker, drains).

pub mod allocation;
pub mod api;
pub mod commands;
pub mod core;
pub mod lag;
pub mod membership;
pub mod metrics;
pub mod pinning_service;
pub mod pinset;
pub mod record;
mod scrub;
pub mod service;
pub mod status;
pub mod store;
mod sync;
mod tracker;
mod wait;
pub mod wire;

pub use service::{Cluster, ClusterConfig, ClusterError, ClusterParts};
