//! Client of a Distribute node's HTTP RPC API (`POST /api/v0/<cmd>`, bearer token), limited to
//! what the operator drives: cluster pins (`pin/add`, `pin/rm`, `cluster/status`), membership
//! (`cluster/peers`, `id`) and scale-in (`cluster/drain`). `types` holds the wire shapes,
//! `client` the HTTP calls and their typed errors.

mod client;
mod types;

pub use client::{NodeApiError, NodeClient};
pub use types::{
    ClusterPeer, ClusterPeers, DrainProgress, NodeId, PeerPin, PinList, PinStatus, PinStatusList,
};
