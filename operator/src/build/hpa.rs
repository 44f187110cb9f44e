//! The optional HorizontalPodAutoscaler (autoscaling/v2). It targets the StorageCluster's
//! `scale` subresource, never the StatefulSet: the operator owns the StatefulSet's replicas
//! (a scale-in drains first), so an HPA writing them directly would race the operator.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use super::{ClusterModel, names};

/// `None` when autoscaling is off.
pub fn build_hpa(m: &ClusterModel) -> Option<HorizontalPodAutoscaler> {
    let a = m.spec.autoscaling;
    if !a.enabled {
        return None;
    }
    Some(HorizontalPodAutoscaler {
        metadata: m.meta(names::hpa(&m.name), "node"),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(m.owner.api_version.clone()),
                kind: m.owner.kind.clone(),
                name: m.name.clone(),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(a.target_cpu_utilization_percentage),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        },
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::model;

    #[test]
    fn hpa_targets_the_storage_cluster_scale_subresource() {
        let m = model(
            "{autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 7,
              targetCPUUtilizationPercentage: 55}}",
        );
        let spec = build_hpa(&m).unwrap().spec;
        assert_eq!(spec.scale_target_ref.kind, "StorageCluster");
        assert_eq!(
            spec.scale_target_ref.api_version.as_deref(),
            Some("distribute.io/v1alpha1")
        );
        assert_eq!(spec.scale_target_ref.name, "store");
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 7));
        let target = &spec.metrics.unwrap()[0].resource.clone().unwrap().target;
        assert_eq!(target.average_utilization, Some(55));
        assert!(build_hpa(&model("{}")).is_none());
    }
}
