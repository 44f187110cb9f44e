//! The PodDisruptionBudget: voluntary evictions may take down at most `replication.min - 1`
//! pods at once (at least 1, or node drains would block forever), so every pin keeps a copy.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ClusterModel, names};

pub fn max_unavailable(replication_min: i32) -> i32 {
    (replication_min - 1).max(1)
}

pub fn build_pdb(m: &ClusterModel) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: m.meta(names::pdb(&m.name), "node"),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(max_unavailable(m.spec.replication.min))),
            selector: Some(m.label_selector()),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::model;

    #[test]
    fn max_unavailable_follows_minimum_replication() {
        for (min, want) in [(1, 1), (2, 1), (3, 2), (5, 4)] {
            assert_eq!(max_unavailable(min), want, "min {min}");
        }
        let pdb = build_pdb(&model("{replication: {min: 3, max: 4}}"));
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(2)));
        assert!(spec.min_available.is_none());
        assert_eq!(
            spec.selector.unwrap().match_labels.unwrap()["app.kubernetes.io/instance"],
            "store"
        );
    }
}
