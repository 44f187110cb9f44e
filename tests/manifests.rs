//! The plain manifests in `k8s/`: every document parses strictly (built-in kinds as their
//! k8s-openapi types, `StorageCluster` and `Pin` against the generated CRD schemas and the
//! operator's types and spec checks), and the examples fit together: the Pins name the example
//! cluster with valid CIDs and replication it can hold, the NFT collection keeps three copies of
//! each part, the Ingress and HPA point at what the operator builds for the example cluster, and
//! the e2e script waits for the Pins the examples define.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod packaging;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use distribute_operator::build::desired::desired;
use distribute_operator::build::{ClusterModel, names, services::build_gateway_service};
use distribute_operator::crd::validate::{check_cluster, parse_cid, pin_replication};
use distribute_operator::crd::{Pin, StorageCluster};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::networking::v1::Ingress;
use packaging::{
    crd_schema, generated_crds, kind_name, parse_builtin, repo_root, schema, yaml_documents,
};
use serde_json::{Value, json};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
}

fn documents(relative: &str) -> Vec<Value> {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    yaml_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The example cluster as the API server would hand it to the operator.
fn example_cluster() -> StorageCluster {
    let mut o = documents("k8s/examples/storagecluster.yaml").remove(0);
    o["metadata"]["namespace"] = json!("default");
    o["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000002");
    serde_json::from_value(o).unwrap()
}

fn example_pins() -> Vec<Pin> {
    ["k8s/examples/pin.yaml", "k8s/examples/nft-collection.yaml"]
        .iter()
        .flat_map(|f| documents(f))
        .map(|o| serde_json::from_value(o).unwrap())
        .collect()
}

#[test]
fn every_manifest_parses_strictly() {
    let mut files = Vec::new();
    yaml_files(&repo_root().join("k8s"), &mut files);
    let mut seen = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let docs = yaml_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!docs.is_empty(), "{} holds no object", file.display());
        for o in docs {
            let where_ = format!("{}: {}", file.display(), kind_name(&o));
            let api_version = o["apiVersion"].as_str().unwrap();
            let kind = o["kind"].as_str().unwrap();
            if api_version.starts_with("distribute.io/") {
                let schema =
                    crd_schema(api_version, kind).unwrap_or_else(|| panic!("{where_}: no CRD"));
                let problems = schema::check(&o, &schema);
                assert!(problems.is_empty(), "{where_}: {problems:?}");
                match kind {
                    "StorageCluster" => {
                        let c: StorageCluster = serde_json::from_value(o.clone()).unwrap();
                        check_cluster(&c.spec).unwrap_or_else(|e| panic!("{where_}: {e}"));
                    }
                    "Pin" => {
                        let p: Pin = serde_json::from_value(o.clone()).unwrap();
                        parse_cid(&p.spec.cid).unwrap_or_else(|e| panic!("{where_}: {e}"));
                    }
                    other => panic!("{where_}: unexpected kind {other}"),
                }
            } else {
                parse_builtin(&o).unwrap_or_else(|e| panic!("{where_}: {e}"));
            }
            seen.insert(kind.to_string());
        }
    }
    let want = [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Namespace",
        "Pin",
        "Service",
        "ServiceAccount",
        "StorageCluster",
    ];
    assert_eq!(seen, want.iter().map(|k| k.to_string()).collect());
}

/// The checker used above does reject what the API server would drop or refuse.
#[test]
fn crd_schema_check_catches_mistakes() {
    let schema = crd_schema("distribute.io/v1alpha1", "Pin").unwrap();
    let pin = |spec: Value| json!({"apiVersion": "distribute.io/v1alpha1", "kind": "Pin", "metadata": {"name": "p"}, "spec": spec});
    assert_eq!(
        schema::check(&pin(json!({"cid": "Qm", "cluster": "c"})), &schema),
        Vec::<String>::new()
    );
    let typo = schema::check(
        &pin(json!({"cid": "Qm", "cluster": "c", "replica": 3})),
        &schema,
    );
    assert!(
        typo.iter()
            .any(|p| p.contains(".spec.replica: unknown field")),
        "{typo:?}"
    );
    let missing = schema::check(&pin(json!({"cid": "Qm"})), &schema);
    assert!(
        missing
            .iter()
            .any(|p| p.contains(".spec.cluster: required")),
        "{missing:?}"
    );
    let wrong = schema::check(
        &pin(json!({"cid": "Qm", "cluster": "c", "replicas": "3"})),
        &schema,
    );
    assert!(
        wrong
            .iter()
            .any(|p| p.contains(".spec.replicas: want an integer")),
        "{wrong:?}"
    );
    let low = schema::check(
        &pin(json!({"cid": "Qm", "cluster": "c", "replicas": 0})),
        &schema,
    );
    assert!(
        low.iter().any(|p| p.contains("below the minimum")),
        "{low:?}"
    );
}

#[test]
fn example_cluster_builds_every_object() {
    let cluster = example_cluster();
    check_cluster(&cluster.spec).unwrap();
    let model = ClusterModel::new(&cluster).unwrap();
    let built = desired(&model, cluster.spec.replicas);
    let kinds: Vec<String> = built.apply.iter().map(|o| kind_name(&o.object)).collect();
    for want in [
        "StatefulSet/demo",
        "Service/demo-gateway",
        "PodDisruptionBudget/demo",
    ] {
        assert!(kinds.contains(&want.to_string()), "{want} not in {kinds:?}");
    }
    for object in &built.apply {
        if object.resource.group != "monitoring.coreos.com" {
            parse_builtin(&object.object).unwrap();
        }
    }
}

#[test]
fn example_pins_fit_the_example_cluster() {
    let cluster = example_cluster();
    let pins = example_pins();
    assert!(pins.len() >= 4, "{} pins", pins.len());
    for pin in &pins {
        let name = pin.metadata.name.clone().unwrap();
        assert_eq!(pin.spec.cluster, "demo", "{name}");
        parse_cid(&pin.spec.cid).unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = pin_replication(&pin.spec, cluster.spec.replication).unwrap();
        assert!(
            r.min <= r.max && r.max <= cluster.spec.replicas,
            "{name}: replication {r:?} does not fit {} nodes",
            cluster.spec.replicas
        );
    }
}

#[test]
fn nft_collection_keeps_three_copies_of_each_part() {
    let cluster = example_cluster();
    let docs = documents("k8s/examples/nft-collection.yaml");
    let pins: Vec<Pin> = docs
        .into_iter()
        .map(|o| serde_json::from_value(o).unwrap())
        .collect();
    assert!(pins.len() >= 3, "{} pins", pins.len());
    let mut cids = BTreeSet::new();
    for pin in &pins {
        let labels = pin.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("distribute.io/collection").map(String::as_str),
            Some("lighthouses")
        );
        let r = pin_replication(&pin.spec, cluster.spec.replication).unwrap();
        assert_eq!((r.min, r.max), (3, 3), "{:?}", pin.metadata.name);
        assert!(
            cids.insert(parse_cid(&pin.spec.cid).unwrap()),
            "duplicate {}",
            pin.spec.cid
        );
    }
}

#[test]
fn ingress_example_routes_to_the_gateway_service() {
    let cluster = example_cluster();
    let model = ClusterModel::new(&cluster).unwrap();
    let gateway = build_gateway_service(&model);
    let gateway_name = gateway.metadata.name.clone().unwrap();
    assert_eq!(gateway_name, names::gateway_service("demo"));
    let gateway_port = gateway.spec.unwrap().ports.unwrap()[0].port;

    let ingress: Ingress =
        serde_json::from_value(documents("k8s/examples/gateway-ingress.yaml").remove(0)).unwrap();
    let rules = ingress.spec.unwrap().rules.unwrap();
    for rule in rules {
        for path in rule.http.unwrap().paths {
            let service = path.backend.service.unwrap();
            assert_eq!(service.name, gateway_name);
            assert_eq!(service.port.unwrap().number, Some(gateway_port));
        }
    }
}

#[test]
fn hpa_example_scales_the_storage_cluster_through_its_scale_subresource() {
    let hpa: HorizontalPodAutoscaler =
        serde_json::from_value(documents("k8s/examples/hpa.yaml").remove(0)).unwrap();
    let spec = hpa.spec;
    let target = &spec.scale_target_ref;
    assert_eq!(
        (
            target.api_version.as_deref(),
            target.kind.as_str(),
            target.name.as_str()
        ),
        (Some("distribute.io/v1alpha1"), "StorageCluster", "demo")
    );
    let crd = generated_crds()
        .into_iter()
        .map(|(_, c)| c)
        .find(|c| c.spec.names.kind == "StorageCluster")
        .unwrap();
    let version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == "v1alpha1")
        .unwrap();
    let scale = version
        .subresources
        .as_ref()
        .unwrap()
        .scale
        .as_ref()
        .unwrap();
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
    // Never below the copies the example pins ask for.
    let cluster = example_cluster();
    let most = example_pins()
        .iter()
        .map(|p| {
            pin_replication(&p.spec, cluster.spec.replication)
                .unwrap()
                .max
        })
        .max()
        .unwrap();
    assert!(
        spec.min_replicas.unwrap() >= most,
        "minReplicas below {most}"
    );
}

#[test]
fn plain_install_namespace_is_the_one_it_creates() {
    let ns = documents("k8s/install/namespace.yaml").remove(0);
    let name = ns["metadata"]["name"].as_str().unwrap();
    for o in documents("k8s/install/operator.yaml") {
        if let Some(n) = o["metadata"]["namespace"].as_str() {
            assert_eq!(n, name, "{}", kind_name(&o));
        }
        for subject in o["subjects"].as_array().into_iter().flatten() {
            assert_eq!(subject["namespace"], name);
        }
    }
}

/// `tests/e2e/kind.sh` waits for the example Pins by name and patches the example cluster.
#[test]
fn e2e_script_uses_the_example_names() {
    let script = std::fs::read_to_string(repo_root().join("tests/e2e/kind.sh")).unwrap();
    let names: BTreeSet<String> = documents("k8s/examples/nft-collection.yaml")
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let waited: BTreeSet<String> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("for pin in "))
        .flat_map(|l| {
            l.trim_end_matches("; do")
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(waited, names);
    let cluster = example_cluster();
    assert!(script.contains(&format!(
        "storagecluster {}",
        cluster.metadata.name.unwrap()
    )));
    assert!(script.contains(&format!("svc/{}", names::gateway_service("demo"))));
}
