//! `distribute-operator`: runs Distribute storage clusters on Kubernetes.
//!
//! Module map:
//! - [`crd`]: the `StorageCluster` and `Pin` custom resources (source of truth for `crds/`) and
//!   the pure validation of their specs.
//! - [`crdgen`]: renders the CRDs as YAML and checks that their schemas are structural.
//! - [`build`]: pure builders of every object a StorageCluster owns (no client, no I/O).
//! - [`nodeapi`]: client of a node's HTTP API (cluster pins, peers, drain).
//! - [`controller`]: the StorageCluster and Pin reconcile pipelines and their pure decisions.
//! - [`leader`]: optional leader election through a Lease.
//! - [`metrics`], [`http`]: the operator's Prometheus series and its `/metrics` + `/health`.

pub mod build;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod nodeapi;
