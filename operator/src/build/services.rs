//! The Services of a cluster: the headless one that gives each pod a stable DNS name for
//! peer discovery (pods bootstrap from pod 0 through it), the gateway Service (type from the
//! spec), the API Service (in-cluster clients) and the metrics Service (for a ServiceMonitor).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{API_PORT, ClusterModel, METRICS_PORT, SWARM_PORT, names};

pub fn build_headless_service(m: &ClusterModel) -> Service {
    service(
        m,
        names::headless_service(&m.name),
        ServiceSpec {
            cluster_ip: Some("None".into()),
            // Peers must find each other before they are ready (readiness needs peers).
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![
                port("swarm", SWARM_PORT, "swarm", "TCP"),
                port("swarm-udp", SWARM_PORT, "swarm-udp", "UDP"),
            ]),
            ..Default::default()
        },
    )
}

pub fn build_gateway_service(m: &ClusterModel) -> Service {
    service(
        m,
        names::gateway_service(&m.name),
        ServiceSpec {
            type_: Some(m.spec.gateway.service_type.as_str().into()),
            ports: Some(vec![port("gateway", m.spec.gateway.port, "gateway", "TCP")]),
            ..Default::default()
        },
    )
}

pub fn build_api_service(m: &ClusterModel) -> Service {
    service(
        m,
        names::api_service(&m.name),
        ServiceSpec {
            ports: Some(vec![port("api", API_PORT, "api", "TCP")]),
            ..Default::default()
        },
    )
}

pub fn build_metrics_service(m: &ClusterModel) -> Service {
    service(
        m,
        names::metrics_service(&m.name),
        ServiceSpec {
            ports: Some(vec![port("metrics", METRICS_PORT, "metrics", "TCP")]),
            ..Default::default()
        },
    )
}

fn service(m: &ClusterModel, name: String, mut spec: ServiceSpec) -> Service {
    spec.selector = Some(m.selector_labels());
    Service {
        metadata: m.meta(name, "node"),
        spec: Some(spec),
        status: None,
    }
}

fn port(name: &str, number: i32, target: &str, protocol: &str) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: number,
        target_port: Some(IntOrString::String(target.into())),
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::model;

    fn ports(s: &Service) -> Vec<(i32, String, String)> {
        s.spec
            .as_ref()
            .unwrap()
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let target = match p.target_port.as_ref().unwrap() {
                    IntOrString::String(s) => s.clone(),
                    IntOrString::Int(i) => i.to_string(),
                };
                (p.port, target, p.protocol.clone().unwrap())
            })
            .collect()
    }

    #[test]
    fn headless_service_publishes_unready_peers() {
        let m = model("{}");
        let s = build_headless_service(&m);
        let spec = s.spec.as_ref().unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("store-peers"));
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.selector.as_ref(), Some(&m.selector_labels()));
        assert_eq!(
            ports(&s),
            [
                (4001, "swarm".into(), "TCP".into()),
                (4001, "swarm-udp".into(), "UDP".into())
            ]
        );
    }

    #[test]
    fn gateway_service_type_and_port() {
        let s = build_gateway_service(&model("{gateway: {serviceType: LoadBalancer, port: 80}}"));
        assert_eq!(
            s.spec.as_ref().unwrap().type_.as_deref(),
            Some("LoadBalancer")
        );
        assert_eq!(ports(&s), [(80, "gateway".into(), "TCP".into())]);
        let d = build_gateway_service(&model("{}"));
        assert_eq!(d.spec.as_ref().unwrap().type_.as_deref(), Some("ClusterIP"));
        assert_eq!(ports(&d)[0].0, 8080);
    }

    #[test]
    fn api_and_metrics_services() {
        let m = model("{}");
        assert_eq!(
            ports(&build_api_service(&m)),
            [(5001, "api".into(), "TCP".into())]
        );
        let metrics = build_metrics_service(&m);
        assert_eq!(metrics.metadata.name.as_deref(), Some("store-metrics"));
        assert_eq!(ports(&metrics), [(9090, "metrics".into(), "TCP".into())]);
    }
}
