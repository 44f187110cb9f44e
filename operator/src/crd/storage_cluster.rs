//! `StorageCluster`: the desired shape of one Distribute node cluster (replica count, image,
//! storage, replication defaults, gateway, autoscaling, secrets) and the status the operator
//! reports back (ready replicas, phase, conditions, peers, pin counts, an ongoing drain).
//! Defaults live here as serde/schemars defaults so the CRD schema and the Rust side agree.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Distribute cluster: `replicas` node pods sharing one replicated pinset.
// kube's derive takes one `printcolumn(...)` per column, which clippy reads as a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "distribute.io",
    version = "v1alpha1",
    kind = "StorageCluster",
    plural = "storageclusters",
    shortname = "dsc",
    namespaced,
    status = "StorageClusterStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.ready"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StorageClusterSpec {
    /// Number of node pods.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Node container image (the Dockerfile's `node` target).
    #[serde(default = "default_image")]
    pub image: String,
    #[serde(default)]
    pub image_pull_policy: PullPolicy,
    #[serde(default)]
    pub storage: StorageSpec,
    /// Container resources of each node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Default replication of pins that do not say otherwise.
    #[serde(default)]
    pub replication: ReplicationSpec,
    #[serde(default)]
    pub gateway: GatewaySpec,
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,
    /// Extra multiaddrs every node dials at start (the pods already bootstrap from pod 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_peers: Vec<String>,
    /// Secret holding a Kubo `swarm.key`: the nodes form a private network (TCP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_key_secret_ref: Option<SecretKeyRef>,
    /// Secret holding the node API token; generated (`<name>-generated`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_secret_ref: Option<SecretKeyRef>,
    /// Secret holding the cluster secret; generated (`<name>-generated`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_secret_ref: Option<SecretKeyRef>,
    /// Node log level or filter (`info`, `debug`, `distribute=debug,info`).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// How node pods are spread over Kubernetes nodes.
    #[serde(default)]
    pub anti_affinity: AntiAffinity,
    /// How long a leaving node may take to hand its pins over (`--drain-timeout`); the pod's
    /// termination grace period is this plus a margin.
    #[serde(default = "default_drain_timeout")]
    #[schemars(range(min = 1))]
    pub drain_timeout_seconds: i64,
    /// Seconds without a heartbeat before a node counts as down (`--heartbeat-timeout`).
    #[serde(default = "default_heartbeat_timeout")]
    #[schemars(range(min = 1))]
    pub heartbeat_timeout_seconds: i64,
    /// Seconds a down node keeps its pins before the cluster copies them elsewhere
    /// (`--rereplicate-after`).
    #[serde(default = "default_rereplicate_after")]
    #[schemars(range(min = 0))]
    pub rereplicate_after_seconds: i64,
}

fn default_replicas() -> i32 {
    3
}
fn default_image() -> String {
    "ghcr.io/distribute/distribute:latest".to_string()
}
fn default_log_level() -> String {
    "info".to_string()
}
fn default_drain_timeout() -> i64 {
    300
}
fn default_heartbeat_timeout() -> i64 {
    30
}
fn default_rereplicate_after() -> i64 {
    120
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size of each node's data volume.
    #[serde(default = "default_storage_size")]
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(default)]
    pub blockstore: BlockstoreKind,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
            blockstore: BlockstoreKind::default(),
        }
    }
}

fn default_storage_size() -> String {
    "10Gi".to_string()
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockstoreKind {
    #[default]
    Sled,
    Flatfs,
}

impl BlockstoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Flatfs => "flatfs",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub struct ReplicationSpec {
    /// Holders a pin needs to count as pinned.
    #[serde(default = "default_replication_min")]
    #[schemars(range(min = 1))]
    pub min: i32,
    /// Holders the cluster aims for.
    #[serde(default = "default_replication_max")]
    #[schemars(range(min = 1))]
    pub max: i32,
}

impl Default for ReplicationSpec {
    fn default() -> Self {
        Self {
            min: default_replication_min(),
            max: default_replication_max(),
        }
    }
}

fn default_replication_min() -> i32 {
    2
}
fn default_replication_max() -> i32 {
    3
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub service_type: ServiceType,
    /// Port of the gateway Service (the container always listens on 8080).
    #[serde(default = "default_gateway_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
}

impl Default for GatewaySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            service_type: ServiceType::default(),
            port: default_gateway_port(),
            ingress: None,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_gateway_port() -> i32 {
    8080
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTls>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    pub secret_name: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    #[serde(
        default = "default_cpu_target",
        rename = "targetCPUUtilizationPercentage"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            target_cpu_utilization_percentage: default_cpu_target(),
        }
    }
}

fn default_min_replicas() -> i32 {
    3
}
fn default_max_replicas() -> i32 {
    10
}
fn default_cpu_target() -> i32 {
    70
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Serve `/metrics` on 9090 and expose it through the metrics Service.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Also create a Prometheus Operator `ServiceMonitor`.
    #[serde(default)]
    pub service_monitor: bool,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            service_monitor: false,
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AntiAffinity {
    /// Spread pods over hosts when possible.
    #[default]
    Preferred,
    /// Never put two pods of the cluster on one host.
    Required,
    None,
}

/// What the operator observed of the cluster.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods the StatefulSet currently runs (the scale subresource's status replicas).
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    /// `ready/desired`, for `kubectl get`.
    #[serde(default)]
    pub ready: String,
    /// Label selector of the pods, for the scale subresource (HPA).
    #[serde(default)]
    pub selector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<StorageClusterPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Cluster members as the node API reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerState>,
    #[serde(default)]
    pub pins_total: i64,
    #[serde(default)]
    pub pins_under_replicated: i64,
    /// A scale-in waiting for the leaving pods to hand over their pins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainStatus>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum StorageClusterPhase {
    Pending,
    Running,
    Scaling,
    Draining,
    Degraded,
    Failed,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerState {
    pub peer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// `alive`, `leaving` or `down`.
    pub state: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainStatus {
    /// Replica count the drain leads to.
    pub target_replicas: i32,
    /// Pods being drained (highest ordinals).
    pub pods: Vec<String>,
    /// Pins that still need a copy from a leaving pod.
    pub remaining: i64,
}
