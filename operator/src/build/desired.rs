//! The whole desired state of one cluster: every object to apply, in apply order, and the
//! optional objects that must not exist (turned off in the spec), so the controller can delete
//! orphans by name. Objects are carried as JSON with their API resource, ready for a
//! server-side apply through a dynamic `Api`.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::ApiResource;
use serde::Serialize;
use serde_json::Value;

use super::config::build_config_map;
use super::hpa::build_hpa;
use super::ingress::build_ingress;
use super::pdb::build_pdb;
use super::service_monitor::{build_service_monitor, service_monitor_resource};
use super::services::{
    build_api_service, build_gateway_service, build_headless_service, build_metrics_service,
};
use super::statefulset::build_statefulset;
use super::{ClusterModel, names};

#[derive(Clone, Debug)]
pub struct DesiredObject {
    pub resource: ApiResource,
    pub name: String,
    pub object: Value,
}

#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub apply: Vec<DesiredObject>,
    /// Objects this cluster may own that the spec turned off.
    pub absent: Vec<(ApiResource, String)>,
}

impl Desired {
    fn add<K>(&mut self, object: &K)
    where
        K: kube::Resource<DynamicType = ()> + Serialize,
    {
        // Serialising k8s-openapi types cannot fail: plain structs with string keys.
        let object_json = serde_json::to_value(object).unwrap_or(Value::Null);
        self.apply.push(DesiredObject {
            resource: ApiResource::erase::<K>(&()),
            name: object.meta().name.clone().unwrap_or_default(),
            object: object_json,
        });
    }

    fn add_or_absent<K>(&mut self, object: Option<K>, name: String)
    where
        K: kube::Resource<DynamicType = ()> + Serialize,
    {
        match object {
            Some(o) => self.add(&o),
            None => self.absent.push((ApiResource::erase::<K>(&()), name)),
        }
    }
}

/// Everything for `m`, with the StatefulSet at `statefulset_replicas`.
pub fn desired(m: &ClusterModel, statefulset_replicas: i32) -> Desired {
    let mut d = Desired::default();
    d.add::<ConfigMap>(&build_config_map(m));
    d.add::<Service>(&build_headless_service(m));
    d.add::<Service>(&build_api_service(m));
    let gw = m.spec.gateway.enabled.then(|| build_gateway_service(m));
    d.add_or_absent::<Service>(gw, names::gateway_service(&m.name));
    let metrics = m.spec.metrics.enabled.then(|| build_metrics_service(m));
    d.add_or_absent::<Service>(metrics, names::metrics_service(&m.name));
    d.add::<StatefulSet>(&build_statefulset(m, statefulset_replicas));
    d.add::<PodDisruptionBudget>(&build_pdb(m));
    d.add_or_absent::<Ingress>(build_ingress(m), names::ingress(&m.name));
    d.add_or_absent::<HorizontalPodAutoscaler>(build_hpa(m), names::hpa(&m.name));
    match build_service_monitor(m) {
        Some(sm) => d.apply.push(DesiredObject {
            resource: service_monitor_resource(),
            name: names::service_monitor(&m.name),
            object: serde_json::to_value(&sm).unwrap_or(Value::Null),
        }),
        None => d
            .absent
            .push((service_monitor_resource(), names::service_monitor(&m.name))),
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::model;

    fn kinds(d: &Desired) -> Vec<String> {
        d.apply
            .iter()
            .map(|o| format!("{}/{}", o.resource.kind, o.name))
            .collect()
    }

    #[test]
    fn defaults_build_the_core_set() {
        let d = desired(&model("{}"), 3);
        assert_eq!(
            kinds(&d),
            [
                "ConfigMap/store-config",
                "Service/store-peers",
                "Service/store-api",
                "Service/store-gateway",
                "Service/store-metrics",
                "StatefulSet/store",
                "PodDisruptionBudget/store",
            ]
        );
        let absent: Vec<_> = d
            .absent
            .iter()
            .map(|(r, n)| format!("{}/{n}", r.kind))
            .collect();
        assert_eq!(
            absent,
            [
                "Ingress/store-gateway",
                "HorizontalPodAutoscaler/store",
                "ServiceMonitor/store"
            ]
        );
        for o in &d.apply {
            assert_eq!(o.object["kind"], o.resource.kind.as_str(), "{}", o.name);
            assert_eq!(o.object["apiVersion"], o.resource.api_version.as_str());
            assert_eq!(o.object["metadata"]["namespace"], "ns");
        }
        assert_eq!(d.apply[5].object["spec"]["replicas"], 3);
    }

    #[test]
    fn everything_on_and_gateway_off() {
        let all = desired(
            &model(
                "{gateway: {ingress: {host: h}}, autoscaling: {enabled: true}, metrics: {serviceMonitor: true}}",
            ),
            2,
        );
        assert!(all.absent.is_empty(), "{:?}", all.absent);
        assert_eq!(all.apply.len(), 10);
        let off = desired(
            &model("{gateway: {enabled: false}, metrics: {enabled: false}}"),
            2,
        );
        let absent: Vec<_> = off.absent.iter().map(|(_, n)| n.as_str()).collect();
        assert!(
            absent.contains(&"store-gateway") && absent.contains(&"store-metrics"),
            "{absent:?}"
        );
    }
}
