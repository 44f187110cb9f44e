//! `Pin`: one CID a `StorageCluster` must keep, with its replication, and the status the
//! operator mirrors from the cluster's pin tracker (per-holder states, `pinned/target`, phase).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Content kept by a StorageCluster. `replicas` sets both bounds; otherwise
/// `replicationMin`/`replicationMax`, else the cluster's defaults.
// kube's derive takes one `printcolumn(...)` per column, which clippy reads as a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "distribute.io",
    version = "v1alpha1",
    kind = "Pin",
    plural = "pins",
    namespaced,
    status = "PinStatus",
    printcolumn(name = "CID", type_ = "string", json_path = ".spec.cid"),
    printcolumn(name = "Replicas", type_ = "string", json_path = ".status.replicas"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PinSpec {
    /// Root CID (`Qm…`, `bafy…`, `ipfs://…` or `/ipfs/…`).
    pub cid: String,
    /// Name of the StorageCluster in the same namespace.
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replication_min: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replication_max: Option<i32>,
    /// Human-readable pin name stored in the cluster pinset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PinStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PinPhase>,
    /// `pinned/target`, e.g. `2/3`.
    #[serde(default)]
    pub replicas: String,
    #[serde(default)]
    pub pinned: i32,
    #[serde(default)]
    pub target: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<Holder>,
    /// DAG size in bytes, once a holder knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PinPhase {
    Queued,
    Pinning,
    Pinned,
    Degraded,
    Failed,
}

impl PinPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Pinning => "Pinning",
            Self::Pinned => "Pinned",
            Self::Degraded => "Degraded",
            Self::Failed => "Failed",
        }
    }
}

/// One node holding (or fetching) the content.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    pub peer_id: String,
    pub state: HolderState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HolderState {
    Queued,
    Pinning,
    Pinned,
    Failed,
    Unpinning,
}
