//! The cluster's ConfigMap (environment of every node container: repository path, and the
//! settings that are not flags, for people inspecting a cluster) and the Secret the operator
//! generates when the spec names no cluster secret or API token. The random bytes are an input,
//! so the builder stays pure; the controller creates that Secret once and never rewrites it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::{ClusterModel, DATA_DIR, GENERATED_API_TOKEN_KEY, GENERATED_CLUSTER_SECRET_KEY, names};

pub fn build_config_map(m: &ClusterModel) -> ConfigMap {
    let s = &m.spec;
    let data = BTreeMap::from([
        ("DISTRIBUTE_REPO".to_string(), DATA_DIR.to_string()),
        (
            "DISTRIBUTE_BLOCKSTORE".to_string(),
            s.storage.blockstore.as_str().to_string(),
        ),
        (
            "DISTRIBUTE_REPLICATION_MIN".to_string(),
            s.replication.min.to_string(),
        ),
        (
            "DISTRIBUTE_REPLICATION_MAX".to_string(),
            s.replication.max.to_string(),
        ),
    ]);
    ConfigMap {
        metadata: m.meta(names::config_map(&m.name), "node"),
        data: Some(data),
        ..Default::default()
    }
}

/// The generated Secret, from two 32-byte random values (hex-encoded into it).
pub fn build_generated_secret(m: &ClusterModel, cluster_secret: &[u8], api_token: &[u8]) -> Secret {
    Secret {
        metadata: m.meta(names::generated_secret(&m.name), "node"),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (
                GENERATED_CLUSTER_SECRET_KEY.to_string(),
                ByteString(hex(cluster_secret).into_bytes()),
            ),
            (
                GENERATED_API_TOKEN_KEY.to_string(),
                ByteString(hex(api_token).into_bytes()),
            ),
        ])),
        ..Default::default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::model;

    #[test]
    fn config_map_carries_repo_and_settings() {
        let cm = build_config_map(&model(
            "{storage: {blockstore: flatfs}, replication: {min: 1, max: 2}}",
        ));
        let data = cm.data.unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("store-config"));
        assert_eq!(data["DISTRIBUTE_REPO"], "/data");
        assert_eq!(data["DISTRIBUTE_BLOCKSTORE"], "flatfs");
        assert_eq!(data["DISTRIBUTE_REPLICATION_MIN"], "1");
    }

    #[test]
    fn generated_secret_holds_hex_values() {
        let s = build_generated_secret(&model("{}"), &[0xab; 32], &[1, 2]);
        let data = s.data.unwrap();
        assert_eq!(data["cluster-secret"].0, "ab".repeat(32).into_bytes());
        assert_eq!(data["api-token"].0, b"0102");
        assert_eq!(s.metadata.name.as_deref(), Some("store-generated"));
    }
}
