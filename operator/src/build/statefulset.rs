//! The node StatefulSet: one `distribute node` container per pod with its data volume (a PVC
//! template), the cluster and API-token Secrets mounted read-only, probes on the metrics port,
//! a termination grace period long enough for the node to drain on SIGTERM, a hardened security
//! context and pod anti-affinity. Its replica count is an input: the controller decides it
//! (a scale-in only lowers it after the drain).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, HTTPGetAction, KeyToPath, Lifecycle, LifecycleHandler, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource, SecurityContext, SleepAction,
    Volume, VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    API_PORT, ClusterModel, DATA_DIR, GATEWAY_PORT, METRICS_PORT, SECRETS_DIR, SWARM_PORT, names,
};
use crate::crd::{AntiAffinity, SecretKeyRef};

/// The user the node image runs as (the Dockerfile's `node` target).
pub const NODE_UID: i64 = 10001;
/// Seconds between SIGTERM's drain deadline and the kill, for the node to exit cleanly.
const GRACE_MARGIN_SECS: i64 = 30;
/// Seconds the pod waits before SIGTERM so Services stop routing to it first.
const PRE_STOP_SLEEP_SECS: i64 = 5;

const DATA_VOLUME: &str = "data";

pub fn build_statefulset(m: &ClusterModel, replicas: i32) -> StatefulSet {
    let mut volumes = vec![
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        secret_volume("cluster-secret", &m.cluster_secret, "secret"),
        secret_volume("api-token", &m.api_token, "token"),
    ];
    if let Some(key) = &m.spec.network_key_secret_ref {
        volumes.push(secret_volume("network-key", key, "swarm.key"));
    }
    let mut mounts = vec![
        mount(DATA_VOLUME, DATA_DIR),
        mount("tmp", "/tmp"),
        mount("cluster-secret", &format!("{SECRETS_DIR}/cluster")),
        mount("api-token", &format!("{SECRETS_DIR}/api")),
    ];
    if m.spec.network_key_secret_ref.is_some() {
        mounts.push(mount("network-key", &format!("{SECRETS_DIR}/network")));
    }
    let container = Container {
        name: "node".into(),
        image: Some(m.spec.image.clone()),
        image_pull_policy: Some(m.spec.image_pull_policy.as_str().into()),
        args: Some(node_args(m)),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: names::config_map(&m.name),
                optional: Some(false),
            }),
            ..Default::default()
        }]),
        ports: Some(vec![
            port("swarm", SWARM_PORT, "TCP"),
            port("swarm-udp", SWARM_PORT, "UDP"),
            port("api", API_PORT, "TCP"),
            port("gateway", GATEWAY_PORT, "TCP"),
            port("metrics", METRICS_PORT, "TCP"),
        ]),
        readiness_probe: Some(http_probe("/ready", 5, 3)),
        liveness_probe: Some(http_probe("/health", 10, 6)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: PRE_STOP_SLEEP_SECS,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        resources: m.spec.resources.clone(),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        affinity: affinity(m),
        termination_grace_period_seconds: Some(
            m.spec.drain_timeout_seconds + PRE_STOP_SLEEP_SECS + GRACE_MARGIN_SECS,
        ),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(NODE_UID),
            run_as_group: Some(NODE_UID),
            fs_group: Some(NODE_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        enable_service_links: Some(false),
        ..Default::default()
    };
    StatefulSet {
        metadata: m.meta(names::statefulset(&m.name), "node"),
        spec: StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(names::headless_service(&m.name)),
            selector: m.label_selector(),
            pod_management_policy: Some("OrderedReady".into()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(m.labels("node")),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(vec![data_claim(m)]),
            // A pod removed by a scale-in was drained first; its volume holds nothing needed.
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some("Delete".into()),
                    when_deleted: Some("Retain".into()),
                },
            ),
            ..Default::default()
        },
        status: None,
    }
}

/// The node's command line after the image's `distribute node` entry point.
pub fn node_args(m: &ClusterModel) -> Vec<String> {
    let s = &m.spec;
    let mut args = vec![
        format!("--repo={DATA_DIR}"),
        format!("--listen=:{SWARM_PORT}"),
        format!("--api=0.0.0.0:{API_PORT}"),
        format!("--api-token-file={SECRETS_DIR}/api/token"),
        format!("--cluster-secret-file={SECRETS_DIR}/cluster/secret"),
        format!("--replication-min={}", s.replication.min),
        format!("--replication-max={}", s.replication.max),
        format!("--drain-timeout={}", s.drain_timeout_seconds),
        format!("--heartbeat-timeout={}", s.heartbeat_timeout_seconds),
        format!("--rereplicate-after={}", s.rereplicate_after_seconds),
        format!("--blockstore={}", s.storage.blockstore.as_str()),
        format!("--metrics=0.0.0.0:{METRICS_PORT}"),
        "--no-mdns".into(),
        format!("--log-level={}", s.log_level),
        "--log-format=json".into(),
        format!(
            "--bootstrap=/dns4/{}/tcp/{SWARM_PORT}",
            names::pod_dns(&m.name, &m.namespace, 0)
        ),
    ];
    if s.gateway.enabled {
        args.push(format!("--gateway=0.0.0.0:{GATEWAY_PORT}"));
    }
    if s.network_key_secret_ref.is_some() {
        args.push(format!("--network-key={SECRETS_DIR}/network/swarm.key"));
    }
    args.extend(s.bootstrap_peers.iter().map(|p| format!("--bootstrap={p}")));
    args
}

fn secret_volume(name: &str, key: &SecretKeyRef, file: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(key.name.clone()),
            items: Some(vec![KeyToPath {
                key: key.key.clone(),
                path: file.into(),
                mode: Some(0o400),
                ..Default::default()
            }]),
            default_mode: Some(0o400),
            optional: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(name != DATA_VOLUME && name != "tmp"),
        ..Default::default()
    }
}

fn port(name: &str, number: i32, protocol: &str) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("metrics".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Default::default()
    }
}

fn affinity(m: &ClusterModel) -> Option<Affinity> {
    let term = PodAffinityTerm {
        label_selector: Some(m.label_selector()),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    };
    let anti = match m.spec.anti_affinity {
        AntiAffinity::None => return None,
        AntiAffinity::Preferred => PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: term,
                },
            ]),
            ..Default::default()
        },
        AntiAffinity::Required => PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..Default::default()
        },
    };
    Some(Affinity {
        pod_anti_affinity: Some(anti),
        ..Default::default()
    })
}

fn data_claim(m: &ClusterModel) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(m.selector_labels()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: m.spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(m.spec.storage.size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::model;

    fn container(sts: &StatefulSet) -> &Container {
        &sts.spec.template.spec.as_ref().unwrap().containers[0]
    }

    fn pod_spec(sts: &StatefulSet) -> &PodSpec {
        sts.spec.template.spec.as_ref().unwrap()
    }

    #[test]
    fn defaults() {
        let m = model("{image: 'reg/distribute:1.2'}");
        let sts = build_statefulset(&m, 3);
        let spec = &sts.spec;
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("store-peers"));
        assert_eq!(
            sts.metadata.owner_references.as_ref().unwrap()[0].uid,
            "uid-1"
        );
        assert_eq!(
            spec.selector.match_labels.as_ref(),
            Some(&m.selector_labels())
        );
        let labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(labels["app.kubernetes.io/version"], "1.2");
        let c = container(&sts);
        assert_eq!(c.image.as_deref(), Some("reg/distribute:1.2"));
        let ports: Vec<_> = c
            .ports
            .iter()
            .flatten()
            .map(|p| (p.container_port, p.protocol.clone().unwrap()))
            .collect();
        for want in [
            (4001, "TCP"),
            (4001, "UDP"),
            (5001, "TCP"),
            (8080, "TCP"),
            (9090, "TCP"),
        ] {
            assert!(
                ports.contains(&(want.0, want.1.to_string())),
                "{want:?} in {ports:?}"
            );
        }
        let probe_path =
            |p: &Option<Probe>| p.as_ref().unwrap().http_get.as_ref().unwrap().path.clone();
        assert_eq!(probe_path(&c.readiness_probe).as_deref(), Some("/ready"));
        assert_eq!(probe_path(&c.liveness_probe).as_deref(), Some("/health"));
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        let pod = pod_spec(&sts);
        assert_eq!(
            pod.security_context.as_ref().unwrap().run_as_user,
            Some(NODE_UID)
        );
        // Grace covers the drain timeout (300 s default) plus the pre-stop sleep.
        assert!(pod.termination_grace_period_seconds.unwrap() > 305);
        assert!(c.lifecycle.as_ref().unwrap().pre_stop.is_some());
        let anti = pod
            .affinity
            .as_ref()
            .unwrap()
            .pod_anti_affinity
            .as_ref()
            .unwrap();
        assert!(
            anti.preferred_during_scheduling_ignored_during_execution
                .is_some()
        );
        let mounts: Vec<_> = c
            .volume_mounts
            .iter()
            .flatten()
            .map(|v| (v.mount_path.as_str(), v.read_only))
            .collect();
        assert!(mounts.contains(&("/data", Some(false))), "{mounts:?}");
        assert!(mounts.contains(&("/tmp", Some(false))), "{mounts:?}");
        let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
        let req = claim.spec.as_ref().unwrap().resources.as_ref().unwrap();
        assert_eq!(req.requests.as_ref().unwrap()["storage"].0, "10Gi");
    }

    #[test]
    fn args_follow_the_spec() {
        let m = model(
            "{replication: {min: 1, max: 5}, logLevel: debug, bootstrapPeers: ['/ip4/1.2.3.4/tcp/4001'],
              networkKeySecretRef: {name: nk, key: swarm.key}, gateway: {enabled: false},
              drainTimeoutSeconds: 60, heartbeatTimeoutSeconds: 5, rereplicateAfterSeconds: 9,
              storage: {blockstore: flatfs}}",
        );
        let args = node_args(&m);
        for want in [
            "--replication-min=1",
            "--replication-max=5",
            "--log-level=debug",
            "--log-format=json",
            "--bootstrap=/dns4/store-0.store-peers.ns.svc.cluster.local/tcp/4001",
            "--bootstrap=/ip4/1.2.3.4/tcp/4001",
            "--network-key=/var/run/distribute/network/swarm.key",
            "--cluster-secret-file=/var/run/distribute/cluster/secret",
            "--api-token-file=/var/run/distribute/api/token",
            "--api=0.0.0.0:5001",
            "--drain-timeout=60",
            "--heartbeat-timeout=5",
            "--rereplicate-after=9",
            "--blockstore=flatfs",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
        assert!(!args.iter().any(|a| a.starts_with("--gateway")), "{args:?}");
        let sts = build_statefulset(&m, 1);
        let vols: Vec<_> = pod_spec(&sts)
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
            .collect();
        assert_eq!(vols, ["store-generated", "store-generated", "nk"]);
        assert_eq!(pod_spec(&sts).termination_grace_period_seconds, Some(95));
    }

    #[test]
    fn anti_affinity_modes_and_storage() {
        let m = model("{antiAffinity: Required, storage: {size: 1Ti, storageClassName: fast}}");
        let sts = build_statefulset(&m, 0);
        let anti = pod_spec(&sts)
            .affinity
            .clone()
            .unwrap()
            .pod_anti_affinity
            .unwrap();
        assert_eq!(
            anti.required_during_scheduling_ignored_during_execution
                .unwrap()[0]
                .topology_key,
            "kubernetes.io/hostname"
        );
        let claim = &sts.spec.volume_claim_templates.as_ref().unwrap()[0];
        let cs = claim.spec.as_ref().unwrap();
        assert_eq!(cs.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            cs.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
            "1Ti"
        );
        let none = build_statefulset(&model("{antiAffinity: None}"), 1);
        assert!(pod_spec(&none).affinity.is_none());
    }
}
