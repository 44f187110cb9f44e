//! The custom resources, group `distribute.io`, version `v1alpha1`: [`StorageCluster`] (a set of
//! Distribute nodes run as a StatefulSet) and [`Pin`] (one CID kept by such a cluster). The Rust
//! types are the source of truth; `crdgen` turns them into `crds/*.yaml`. `validate` holds the
//! pure checks a spec must pass before anything is built from it.

mod pin;
mod storage_cluster;
pub mod validate;

pub use pin::{Holder, HolderState, Pin, PinPhase, PinSpec, PinStatus};
pub use storage_cluster::{
    AntiAffinity, AutoscalingSpec, BlockstoreKind, DrainStatus, GatewaySpec, IngressSpec,
    IngressTls, MetricsSpec, PeerState, PullPolicy, ReplicationSpec, SecretKeyRef, ServiceType,
    StorageCluster, StorageClusterPhase, StorageClusterSpec, StorageClusterStatus, StorageSpec,
};

/// The API group of both resources.
pub const GROUP: &str = "distribute.io";
