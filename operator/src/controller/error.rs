//! The controllers' error type: one variant per pipeline step, each with a static category
//! used as the `error` label of the failure metric, and whether a retry may help.

use crate::build::ModelError;
use crate::nodeapi::NodeApiError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    NodeApi(#[from] NodeApiError),
    #[error("invalid StorageCluster: {0}")]
    Model(#[from] ModelError),
    #[error("Secret {name}: {reason}")]
    Secret { name: String, reason: String },
    #[error("no running node pod in StorageCluster {0} to talk to")]
    NoNode(String),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("generating a secret: {0}")]
    Random(String),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube_api",
            Self::NodeApi(_) => "node_api",
            Self::Model(_) => "invalid_spec",
            Self::Secret { .. } => "secret",
            Self::NoNode(_) => "no_node",
            Self::Finalizer(_) => "finalizer",
            Self::Random(_) => "random",
        }
    }
}
