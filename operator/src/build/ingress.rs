//! The optional Ingress in front of the gateway Service (host, class, TLS, annotations).

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::{ClusterModel, names};

/// `None` when the gateway or its ingress is off.
pub fn build_ingress(m: &ClusterModel) -> Option<Ingress> {
    let gw = &m.spec.gateway;
    let ing = gw.ingress.as_ref().filter(|_| gw.enabled)?;
    let mut meta = m.meta(names::ingress(&m.name), "gateway");
    if !ing.annotations.is_empty() {
        meta.annotations = Some(ing.annotations.clone());
    }
    Some(Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: ing.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(ing.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: names::gateway_service(&m.name),
                                port: Some(ServiceBackendPort {
                                    number: Some(gw.port),
                                    ..Default::default()
                                }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
            tls: ing.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: Some(vec![ing.host.clone()]),
                    secret_name: Some(tls.secret_name.clone()),
                }]
            }),
            ..Default::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::model;

    #[test]
    fn ingress_routes_the_host_to_the_gateway_service() {
        let m = model(
            "{gateway: {port: 80, ingress: {host: ipfs.example.com, className: nginx,
              tls: {secretName: cert}, annotations: {a: b}}}}",
        );
        let ing = build_ingress(&m).unwrap();
        assert_eq!(ing.metadata.annotations.as_ref().unwrap()["a"], "b");
        let spec = ing.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("ipfs.example.com"));
        let backend = rule.http.as_ref().unwrap().paths[0]
            .backend
            .service
            .clone()
            .unwrap();
        assert_eq!(backend.name, "store-gateway");
        assert_eq!(backend.port.unwrap().number, Some(80));
        let tls = &spec.tls.unwrap()[0];
        assert_eq!(tls.secret_name.as_deref(), Some("cert"));
    }

    #[test]
    fn no_ingress_unless_asked_and_gateway_on() {
        assert!(build_ingress(&model("{}")).is_none());
        assert!(build_ingress(&model("{gateway: {enabled: false, ingress: {host: h}}}")).is_none());
    }
}
