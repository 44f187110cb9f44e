//! The optional Prometheus Operator `ServiceMonitor` (monitoring.coreos.com/v1), built as a
//! dynamic object: the operator does not depend on that CRD's types, and skips it when metrics
//! or the ServiceMonitor are off.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use super::{ClusterModel, names};

pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "monitoring.coreos.com",
        "v1",
        "ServiceMonitor",
    ))
}

pub fn build_service_monitor(m: &ClusterModel) -> Option<DynamicObject> {
    if !(m.spec.metrics.enabled && m.spec.metrics.service_monitor) {
        return None;
    }
    let mut obj = DynamicObject::new(
        &names::service_monitor(&m.name),
        &service_monitor_resource(),
    );
    obj.metadata = m.meta(names::service_monitor(&m.name), "node");
    obj.data = json!({
        "spec": {
            "selector": { "matchLabels": m.selector_labels() },
            "namespaceSelector": { "matchNames": [m.namespace] },
            "endpoints": [{ "port": "metrics", "path": "/metrics", "interval": "30s" }],
        }
    });
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::model;

    #[test]
    fn service_monitor_scrapes_the_metrics_port() {
        let sm = build_service_monitor(&model("{metrics: {serviceMonitor: true}}")).unwrap();
        let v = serde_json::to_value(&sm).unwrap();
        assert_eq!(v["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(v["kind"], "ServiceMonitor");
        assert_eq!(v["spec"]["endpoints"][0]["port"], "metrics");
        assert_eq!(
            v["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
            "store"
        );
        assert_eq!(
            v["metadata"]["ownerReferences"][0]["kind"],
            "StorageCluster"
        );
        assert!(build_service_monitor(&model("{}")).is_none());
        assert!(
            build_service_monitor(&model("{metrics: {enabled: false, serviceMonitor: true}}"))
                .is_none()
        );
    }
}
