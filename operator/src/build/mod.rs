//! Pure builders of every object a `StorageCluster` owns. Nothing here holds a `kube::Client`
//! or does I/O: each function takes a [`ClusterModel`] (a validated spec plus the owner
//! reference and resolved Secret names) and returns the object to server-side apply.
//! [`desired::desired`] gathers them all, with the names of optional objects that must be
//! absent (so the controller can remove orphans).

pub mod config;
pub mod desired;
pub mod hpa;
pub mod ingress;
pub mod names;
pub mod pdb;
pub mod service_monitor;
pub mod services;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::validate::{SpecError, check_cluster};
use crate::crd::{SecretKeyRef, StorageCluster, StorageClusterSpec};

/// Container ports of a node pod (fixed; Services map their own ports onto these).
pub const SWARM_PORT: i32 = 4001;
pub const API_PORT: i32 = 5001;
pub const GATEWAY_PORT: i32 = 8080;
pub const METRICS_PORT: i32 = 9090;

/// Where things are mounted in the node container.
pub const DATA_DIR: &str = "/data";
pub const SECRETS_DIR: &str = "/var/run/distribute";

/// Key names in the Secret the operator generates when the spec names none.
pub const GENERATED_CLUSTER_SECRET_KEY: &str = "cluster-secret";
pub const GENERATED_API_TOKEN_KEY: &str = "api-token";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("the StorageCluster has no {0} yet (not stored by the API server?)")]
    Missing(&'static str),
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Everything the builders need, checked once.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterModel {
    pub name: String,
    pub namespace: String,
    pub owner: OwnerReference,
    pub spec: StorageClusterSpec,
    pub cluster_secret: SecretKeyRef,
    pub api_token: SecretKeyRef,
}

impl ClusterModel {
    pub fn new(cluster: &StorageCluster) -> Result<Self, ModelError> {
        check_cluster(&cluster.spec)?;
        let name = cluster.name_any();
        let namespace = cluster
            .namespace()
            .ok_or(ModelError::Missing("namespace"))?;
        let owner = cluster
            .controller_owner_ref(&())
            .ok_or(ModelError::Missing("uid"))?;
        let generated = |key: &str| SecretKeyRef {
            name: names::generated_secret(&name),
            key: key.to_string(),
        };
        Ok(Self {
            cluster_secret: cluster
                .spec
                .cluster_secret_ref
                .clone()
                .unwrap_or_else(|| generated(GENERATED_CLUSTER_SECRET_KEY)),
            api_token: cluster
                .spec
                .api_token_secret_ref
                .clone()
                .unwrap_or_else(|| generated(GENERATED_API_TOKEN_KEY)),
            name,
            namespace,
            owner,
            spec: cluster.spec.clone(),
        })
    }

    /// Labels that select this cluster's pods (stable: never change after creation).
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                "distribute".to_string(),
            ),
            ("app.kubernetes.io/instance".to_string(), self.name.clone()),
        ])
    }

    /// The standard labels of every object built for this cluster.
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert("app.kubernetes.io/component".into(), component.into());
        labels.insert("app.kubernetes.io/part-of".into(), "distribute".into());
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            "distribute-operator".into(),
        );
        if let Some(tag) = image_tag(&self.spec.image) {
            labels.insert("app.kubernetes.io/version".into(), tag.into());
        }
        labels
    }

    /// The selector string for the scale subresource (`status.selector`).
    pub fn selector_string(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn label_selector(&self) -> LabelSelector {
        LabelSelector {
            match_labels: Some(self.selector_labels()),
            ..Default::default()
        }
    }

    /// Metadata of an owned object: name, namespace, labels, controller owner reference.
    pub fn meta(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(component)),
            owner_references: Some(vec![self.owner.clone()]),
            ..Default::default()
        }
    }
}

/// The tag of an image reference, if it has one and it is a valid label value.
fn image_tag(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next()?;
    let last = last.split('@').next()?;
    let (_, tag) = last.split_once(':')?;
    let ok = !tag.is_empty()
        && tag.len() <= 63
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then_some(tag)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A StorageCluster as the API server would hand it over, for the builder tests.
    use super::*;

    pub(crate) fn cluster(spec_yaml: &str) -> StorageCluster {
        let spec: StorageClusterSpec = yaml_serde::from_str(spec_yaml).unwrap();
        let mut sc = StorageCluster::new("store", spec);
        sc.metadata.namespace = Some("ns".into());
        sc.metadata.uid = Some("uid-1".into());
        sc.metadata.generation = Some(1);
        sc
    }

    pub(crate) fn model(spec_yaml: &str) -> ClusterModel {
        ClusterModel::new(&cluster(spec_yaml)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn defaults_and_generated_secrets() {
        let m = model("{}");
        assert_eq!(m.spec.replicas, 3);
        assert_eq!(m.spec.replication.min, 2);
        assert_eq!(m.spec.replication.max, 3);
        assert_eq!(m.cluster_secret.name, "store-generated");
        assert_eq!(m.api_token.key, "api-token");
        assert_eq!(m.owner.kind, "StorageCluster");
        assert_eq!(m.owner.controller, Some(true));
        assert_eq!(
            m.selector_string(),
            "app.kubernetes.io/instance=store,app.kubernetes.io/name=distribute"
        );
    }

    #[test]
    fn given_secret_refs_win() {
        let m =
            model("{apiTokenSecretRef: {name: t, key: k}, clusterSecretRef: {name: c, key: s}}");
        assert_eq!(
            (m.api_token.name.as_str(), m.api_token.key.as_str()),
            ("t", "k")
        );
        assert_eq!(m.cluster_secret.name, "c");
    }

    #[test]
    fn invalid_spec_is_refused() {
        let err = ClusterModel::new(&cluster("{replication: {min: 4, max: 3}}")).unwrap_err();
        assert!(err.to_string().contains("min 4 is above max 3"), "{err}");
        let mut no_uid = cluster("{}");
        no_uid.metadata.uid = None;
        assert!(ClusterModel::new(&no_uid).is_err());
    }

    #[test]
    fn version_label_from_image_tag() {
        for (image, tag) in [
            ("ghcr.io/x/distribute:0.1.0", Some("0.1.0")),
            ("localhost:5000/distribute", None),
            ("localhost:5000/distribute:v2", Some("v2")),
            ("distribute@sha256:abc", None),
        ] {
            assert_eq!(image_tag(image), tag, "{image}");
        }
    }
}
