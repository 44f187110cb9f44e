//! The Helm chart `helm/distribute` through a real Helm v4 engine (helm-python-sdk's
//! libhelm_c, installed by `tests/helm/install.sh`): `helm lint --strict` is clean with the
//! default and the full values, every template renders with both, every rendered object parses
//! strictly as its k8s-openapi type (custom kinds against the generated CRD schemas and the
//! operator's types), the values schema catches mistakes and follows the CRD, the RBAC grants
//! what the operator's builders need and nothing else, the chart's CRDs are the generated ones,
//! and the plain install in `k8s/install/` is the chart rendered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod packaging;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use distribute_operator::build::ClusterModel;
use distribute_operator::build::desired::desired;
use distribute_operator::crd::StorageCluster;
use distribute_operator::crd::validate::check_cluster;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role};
use packaging::{
    ValuesFile, chart_dir, crd_schema, helm, kind_name, parse_builtin, render, repo_root, schema,
    yaml_documents,
};
use serde_json::{Value, json};

const RELEASE: &str = "demo";
const NAMESPACE: &str = "distribute-system";

fn full_values() -> PathBuf {
    chart_dir().join("ci/full-values.yaml")
}

/// Parses every rendered object: built-in kinds strictly as k8s-openapi types, StorageCluster
/// against its CRD schema and as the operator's type (then the operator's own spec checks),
/// ServiceMonitor by the fields the Prometheus Operator reads.
fn check_objects(objects: &[(String, Value)]) {
    for (template, o) in objects {
        let api_version = o["apiVersion"].as_str().unwrap();
        let kind = o["kind"].as_str().unwrap();
        match api_version {
            "distribute.io/v1alpha1" => {
                let schema = crd_schema(api_version, kind).expect("a CRD for the custom kind");
                let problems = schema::check(o, &schema);
                assert!(problems.is_empty(), "{template}: {problems:?}");
                assert_eq!(kind, "StorageCluster", "{template}");
                let cluster: StorageCluster = serde_json::from_value(o.clone()).unwrap();
                check_cluster(&cluster.spec).unwrap();
            }
            "monitoring.coreos.com/v1" => {
                assert_eq!(kind, "ServiceMonitor");
                let endpoints = o["spec"]["endpoints"].as_array().unwrap();
                assert!(
                    endpoints
                        .iter()
                        .all(|e| e["port"].is_string() && e["path"] == "/metrics")
                );
                assert!(o["spec"]["selector"]["matchLabels"].is_object());
            }
            _ => parse_builtin(o).unwrap_or_else(|e| panic!("{template}: {e}")),
        }
    }
}

fn deployment(r: &packaging::Rendered, name: &str) -> Deployment {
    r.typed("Deployment", name)
}

fn args(d: &Deployment) -> Vec<String> {
    let pod = d.spec.template.spec.as_ref().unwrap();
    pod.containers[0].args.clone().unwrap_or_default()
}

#[test]
fn lint_is_clean_with_default_and_full_values() {
    let full = full_values();
    for values in [None, Some(full.as_path())] {
        let report = helm("lint", values, RELEASE, NAMESPACE).unwrap();
        assert_eq!(
            report["messages"],
            json!([]),
            "lint with {values:?}: {report}"
        );
        assert_eq!(
            report["errors"],
            json!([]),
            "lint with {values:?}: {report}"
        );
    }
    // The same lint does report an error: a value of the wrong type.
    let bad = ValuesFile::new("replicaCount: many\n");
    let report = helm("lint", Some(bad.path()), RELEASE, NAMESPACE).unwrap();
    let errors: Vec<&Value> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"] == 3)
        .collect();
    assert!(
        errors
            .iter()
            .any(|m| m["error"].as_str().unwrap().contains("/replicaCount")),
        "{report}"
    );
}

#[test]
fn default_values_render_the_operator_install() {
    let r = render(None, RELEASE, NAMESPACE).unwrap();
    let name = "demo-distribute-operator";
    assert_eq!(
        r.kinds(),
        [
            format!("ClusterRole/{name}"),
            format!("ClusterRoleBinding/{name}"),
            format!("Deployment/{name}"),
            format!("Service/{name}-metrics"),
            format!("ServiceAccount/{name}"),
        ]
    );
    check_objects(&r.objects);
    for (_, o) in &r.objects {
        let labels = &o["metadata"]["labels"];
        for key in [
            "name",
            "instance",
            "version",
            "managed-by",
            "part-of",
            "component",
        ] {
            assert!(
                labels[format!("app.kubernetes.io/{key}")].is_string(),
                "{} lacks app.kubernetes.io/{key}",
                kind_name(o)
            );
        }
        if o["kind"] != "ClusterRole" && o["kind"] != "ClusterRoleBinding" {
            assert_eq!(o["metadata"]["namespace"], NAMESPACE, "{}", kind_name(o));
        }
    }

    let d = deployment(&r, name);
    let spec = &d.spec;
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.strategy.as_ref().unwrap().type_.as_deref(),
        Some("Recreate")
    );
    assert_eq!(args(&d), ["run", "--metrics-addr=0.0.0.0:8081"]);
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    let selector = spec.selector.match_labels.clone().unwrap();
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(name));
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(10001));
    let c = &pod.containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some("ghcr.io/distribute/distribute-operator:0.1.0")
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    let ports = c.ports.as_ref().unwrap();
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].container_port),
        (Some("metrics"), 8081)
    );
    for probe in [&c.liveness_probe, &c.readiness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/health"));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("metrics".into())
        );
    }
    let env: BTreeMap<_, _> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    assert_eq!(env["RUST_LOG"].as_deref(), Some("info"));

    let svc: Service = r.typed("Service", &format!("{name}-metrics"));
    let svc = svc.spec.unwrap();
    assert!(
        svc.selector
            .unwrap()
            .iter()
            .all(|(k, v)| pod_labels.get(k) == Some(v))
    );
    assert_eq!(svc.ports.unwrap()[0].port, 8081);

    let binding = r.get("ClusterRoleBinding", name);
    assert_eq!(binding["roleRef"]["name"], name);
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}])
    );
    assert!(
        r.notes.contains(&format!("deployment/{name}")),
        "{}",
        r.notes
    );
}

#[test]
fn full_values_render_every_option() {
    let r = render(Some(&full_values()), RELEASE, NAMESPACE).unwrap();
    assert_eq!(
        r.kinds(),
        [
            "Deployment/dist-operator",
            "Role/dist-operator",
            "Role/dist-operator-leader-election",
            "RoleBinding/dist-operator",
            "RoleBinding/dist-operator-leader-election",
            "Service/dist-operator-metrics",
            "ServiceAccount/distribute-operator",
            "ServiceMonitor/dist-operator",
            "StorageCluster/archive",
        ]
    );
    check_objects(&r.objects);

    let d = deployment(&r, "dist-operator");
    assert_eq!(
        args(&d),
        [
            "run",
            "--metrics-addr=0.0.0.0:9443",
            "--namespace=storage",
            "--leader-elect"
        ]
    );
    let spec = &d.spec;
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(
        spec.strategy.as_ref().unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    let pod = spec.template.spec.as_ref().unwrap();
    assert!(
        pod.containers[0]
            .image
            .as_ref()
            .unwrap()
            .contains("@sha256:0123")
    );
    assert_eq!(
        pod.image_pull_secrets.as_ref().unwrap()[0].name,
        "registry-credentials"
    );
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-cluster-critical")
    );
    assert!(pod.affinity.is_some() && pod.tolerations.is_some() && pod.node_selector.is_some());

    // Scoped RBAC lives in the watched namespace, bound to the release's ServiceAccount.
    assert_eq!(
        r.get("Role", "dist-operator")["metadata"]["namespace"],
        "storage"
    );
    assert_eq!(
        r.get("RoleBinding", "dist-operator")["subjects"][0]["namespace"],
        NAMESPACE
    );
    // The Lease lives in the watched namespace (the operator's --namespace).
    assert_eq!(
        r.get("Role", "dist-operator-leader-election")["metadata"]["namespace"],
        "storage"
    );

    // The StorageCluster carries the values' spec unchanged, in the watched namespace.
    let values = yaml_documents(&std::fs::read_to_string(full_values()).unwrap()).unwrap();
    let cluster = r.get("StorageCluster", "archive");
    assert_eq!(cluster["metadata"]["namespace"], "storage");
    assert_eq!(cluster["spec"], values[0]["storageCluster"]["spec"]);

    // The ServiceMonitor scrapes the metrics Service by its port name and labels.
    let monitor = r.get("ServiceMonitor", "dist-operator");
    let svc = r.get("Service", "dist-operator-metrics");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&svc["metadata"]["labels"][k], v, "label {k}");
    }
}

#[test]
fn storage_cluster_image_defaults_to_the_app_version() {
    let values = ValuesFile::new(
        "storageCluster:\n  create: true\n  name: small\n  spec:\n    replicas: 1\n",
    );
    let r = render(Some(values.path()), RELEASE, NAMESPACE).unwrap();
    check_objects(&r.objects);
    let cluster = r.get("StorageCluster", "small");
    assert_eq!(
        cluster["spec"]["image"],
        "ghcr.io/distribute/distribute:0.1.0"
    );
    assert_eq!(cluster["metadata"]["namespace"], NAMESPACE);
}

#[test]
fn leader_election_follows_the_replica_count() {
    for (values, elect) in [
        ("replicaCount: 1\n", false),
        ("replicaCount: 3\n", true),
        ("leaderElection:\n  enabled: true\n", true),
    ] {
        let file = ValuesFile::new(values);
        let r = render(Some(file.path()), RELEASE, NAMESPACE).unwrap();
        let d = deployment(&r, "demo-distribute-operator");
        assert_eq!(
            args(&d).contains(&"--leader-elect".to_string()),
            elect,
            "{values}"
        );
        let has_lease_role = r
            .kinds()
            .contains(&"Role/demo-distribute-operator-leader-election".into());
        assert_eq!(has_lease_role, elect, "{values}");
        if elect {
            let role: Role = r.typed("Role", "demo-distribute-operator-leader-election");
            let rules = role.rules.unwrap();
            assert_eq!(rules.len(), 1);
            assert_eq!(
                rules[0].api_groups,
                Some(vec!["coordination.k8s.io".to_string()])
            );
            assert_eq!(rules[0].resources, Some(vec!["leases".to_string()]));
            assert_eq!(rules[0].verbs, ["get", "create", "update"]);
            assert_eq!(role.metadata.namespace.as_deref(), Some(NAMESPACE));
        }
    }
}

#[test]
fn service_monitor_without_the_metrics_service_is_refused() {
    let values = ValuesFile::new(
        "metrics:\n  service:\n    enabled: false\n  serviceMonitor:\n    enabled: true\n",
    );
    let err = render(Some(values.path()), RELEASE, NAMESPACE)
        .err()
        .unwrap();
    assert!(
        err.contains("metrics.serviceMonitor.enabled needs metrics.service.enabled"),
        "{err}"
    );
}

/// `(apiGroup, resource) -> verbs` of a rendered Role or ClusterRole.
fn grants(rules: &[PolicyRule]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        assert!(rule.non_resource_urls.is_none() && rule.resource_names.is_none());
        for group in rule.api_groups.as_ref().unwrap() {
            for resource in rule.resources.as_ref().unwrap() {
                out.entry((group.clone(), resource.clone()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

fn verbs(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|v| v.to_string()).collect()
}

/// A StorageCluster of `spec` as the API server would hand it to the operator, with no Secret
/// refs (so the operator generates its Secret).
fn stored_cluster(spec: &Value) -> StorageCluster {
    let mut cluster: StorageCluster = serde_json::from_value(json!({
        "apiVersion": "distribute.io/v1alpha1",
        "kind": "StorageCluster",
        "metadata": {"name": "archive", "namespace": "storage", "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": spec,
    }))
    .unwrap();
    cluster.spec.api_token_secret_ref = None;
    cluster.spec.cluster_secret_ref = None;
    cluster
}

/// The grants the operator needs, derived from its builders: every kind built for a cluster
/// with every option on is server-side applied (create + patch); every kind left out when the
/// options are off is deleted as an orphan (delete). On top, what its controllers read and
/// write directly (see the comment in templates/rbac.yaml).
fn needed_grants(service_monitors: bool) -> BTreeMap<(String, String), BTreeSet<String>> {
    let text = std::fs::read_to_string(full_values()).unwrap();
    let values = &yaml_documents(&text).unwrap()[0];
    let all_on = stored_cluster(&values["storageCluster"]["spec"]);
    let mut all_off = all_on.clone();
    all_off.spec.gateway.enabled = false;
    all_off.spec.gateway.ingress = None;
    all_off.spec.autoscaling.enabled = false;
    all_off.spec.metrics.enabled = false;
    all_off.spec.metrics.service_monitor = false;
    let on = desired(&ClusterModel::new(&all_on).unwrap(), 5);
    assert!(on.absent.is_empty(), "every option is on: {:?}", on.absent);
    let off = desired(&ClusterModel::new(&all_off).unwrap(), 5);

    let mut need: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut grant = |group: &str, resource: &str, list: &[&str]| {
        if group == "monitoring.coreos.com" && !service_monitors {
            return;
        }
        need.entry((group.to_string(), resource.to_string()))
            .or_default()
            .extend(verbs(list));
    };
    for object in &on.apply {
        grant(
            &object.resource.group,
            &object.resource.plural,
            &["create", "patch"],
        );
    }
    for (resource, _) in &off.absent {
        grant(&resource.group, &resource.plural, &["delete"]);
    }
    grant(
        "distribute.io",
        "storageclusters",
        &["get", "list", "watch"],
    );
    grant("distribute.io", "pins", &["get", "list", "watch", "patch"]);
    grant("distribute.io", "storageclusters/status", &["patch"]);
    grant("distribute.io", "pins/status", &["patch"]);
    grant("distribute.io", "storageclusters/finalizers", &["update"]);
    grant("apps", "statefulsets", &["get", "list", "watch"]);
    grant("", "pods", &["list", "watch"]);
    grant("", "secrets", &["get", "create"]);
    grant("events.k8s.io", "events", &["create", "patch"]);
    need
}

#[test]
fn rbac_grants_what_the_operator_builds_and_nothing_more() {
    let r = render(None, RELEASE, NAMESPACE).unwrap();
    let role = r.get("ClusterRole", "demo-distribute-operator");
    let rules: Vec<PolicyRule> = serde_json::from_value(role["rules"].clone()).unwrap();
    for rule in &rules {
        let all = rule
            .api_groups
            .iter()
            .flatten()
            .chain(rule.resources.iter().flatten());
        assert!(
            all.chain(rule.verbs.iter()).all(|s| s != "*"),
            "wildcard in {rule:?}"
        );
        for verb in ["escalate", "bind", "impersonate", "deletecollection"] {
            assert!(
                !rule.verbs.contains(&verb.to_string()),
                "{verb} in {rule:?}"
            );
        }
    }
    assert_eq!(grants(&rules), needed_grants(false));

    // Scoped to one namespace, with ServiceMonitors: a Role with the same rules plus those.
    let r = render(Some(&full_values()), RELEASE, NAMESPACE).unwrap();
    let role: Role = r.typed("Role", "dist-operator");
    assert_eq!(grants(&role.rules.unwrap()), needed_grants(true));
    assert!(
        !r.kinds().iter().any(|k| k.starts_with("ClusterRole")),
        "{:?}",
        r.kinds()
    );
}

#[test]
fn values_schema_rejects_mistakes() {
    let cases = [
        ("replicas: 3\n", "replicas"),
        ("image:\n  tag: 1\n", "/image/tag"),
        ("image:\n  digest: latest\n", "/image/digest"),
        ("watchNamespace: Not_A_Namespace\n", "/watchNamespace"),
        (
            "metrics:\n  serviceMonitor:\n    interval: soon\n",
            "/metrics/serviceMonitor/interval",
        ),
        ("rbac:\n  serviceMonitor: true\n", "serviceMonitor"),
        (
            "storageCluster:\n  spec:\n    gateway:\n      servicetype: NodePort\n",
            "servicetype",
        ),
        (
            "storageCluster:\n  spec:\n    storage:\n      blockstore: rocksdb\n",
            "/storageCluster/spec/storage/blockstore",
        ),
        (
            "storageCluster:\n  spec:\n    replication:\n      min: 0\n",
            "/storageCluster/spec/replication/min",
        ),
        (
            "storageCluster:\n  spec:\n    storage:\n      size: lots\n",
            "/storageCluster/spec/storage/size",
        ),
    ];
    for (values, key) in cases {
        let file = ValuesFile::new(values);
        let out = helm("validate", Some(file.path()), RELEASE, NAMESPACE).unwrap();
        assert_eq!(out["ok"], false, "accepted: {values}");
        let error = out["error"].as_str().unwrap();
        assert!(
            error.contains(key),
            "{values}: error does not name {key}: {error}"
        );
        let render_err = render(Some(file.path()), RELEASE, NAMESPACE).err();
        assert!(
            render_err.is_some(),
            "rendered despite the schema: {values}"
        );
    }
    let out = helm("validate", Some(&full_values()), RELEASE, NAMESPACE).unwrap();
    assert_eq!(out, json!({"ok": true}));
}

/// Property names at every level where both schemas list properties.
fn compare_properties(values: &Value, crd: &Value, path: &str, out: &mut Vec<String>) {
    let (Some(v), Some(c)) = (
        values["properties"].as_object(),
        crd["properties"].as_object(),
    ) else {
        return;
    };
    let vk: BTreeSet<&String> = v.keys().collect();
    let ck: BTreeSet<&String> = c.keys().collect();
    if vk != ck {
        out.push(format!("{path}: values schema {vk:?}, CRD {ck:?}"));
    }
    for key in vk.intersection(&ck) {
        let (vs, cs) = (&v[*key], &c[*key]);
        // An enum is a set of allowed values: the order does not matter.
        let set = |v: &Value| -> Option<BTreeSet<String>> {
            v["enum"]
                .as_array()
                .map(|e| e.iter().map(Value::to_string).collect())
        };
        if let Some(e) = cs["enum"].as_array()
            && set(vs) != set(cs)
        {
            out.push(format!(
                "{path}.{key}: enum {} in the values schema, {e:?} in the CRD",
                vs["enum"]
            ));
        }
        compare_properties(vs, cs, &format!("{path}.{key}"), out);
    }
}

#[test]
fn values_schema_spec_follows_the_crd() {
    let text = std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap();
    let values_schema: Value = serde_json::from_str(&text).unwrap();
    let spec = &values_schema["properties"]["storageCluster"]["properties"]["spec"];
    let crd = crd_schema("distribute.io/v1alpha1", "StorageCluster").unwrap();
    let mut differences = Vec::new();
    compare_properties(spec, &crd["properties"]["spec"], "spec", &mut differences);
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn chart_crds_are_the_generated_ones() {
    let generated = repo_root().join("crds");
    let in_chart = chart_dir().join("crds");
    let names = |dir: &PathBuf| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let files = names(&generated);
    assert!(
        files.contains("storageclusters.yaml") && files.contains("pins.yaml"),
        "{files:?}"
    );
    assert_eq!(
        names(&in_chart),
        files,
        "cp crds/*.yaml helm/distribute/crds/"
    );
    for file in &files {
        assert_eq!(
            std::fs::read(in_chart.join(file)).unwrap(),
            std::fs::read(generated.join(file)).unwrap(),
            "helm/distribute/crds/{file} differs from crds/{file}: cp crds/*.yaml helm/distribute/crds/"
        );
    }
    let r = render(None, RELEASE, NAMESPACE).unwrap();
    let loaded: BTreeSet<String> = r
        .crd_files
        .iter()
        .map(|f| {
            // The engine names them under the chart (`distribute/crds/x.yaml`).
            f.trim_start_matches("distribute/")
                .trim_start_matches("crds/")
                .to_string()
        })
        .collect();
    assert_eq!(loaded, files, "the engine did not load the chart's CRDs");
}

/// The objects of `k8s/install/operator.yaml` are the chart's with default values, released as
/// `distribute` in `distribute-system`, without the labels only Helm sets.
#[test]
fn plain_install_is_the_chart_rendered() {
    let r = render(None, "distribute", "distribute-system").unwrap();
    let strip = |mut o: Value| {
        for path in ["/metadata/labels", "/spec/template/metadata/labels"] {
            if let Some(labels) = o.pointer_mut(path).and_then(Value::as_object_mut) {
                labels.remove("helm.sh/chart");
                labels.remove("app.kubernetes.io/managed-by");
            }
        }
        (kind_name(&o), o)
    };
    let chart: BTreeMap<String, Value> = r.objects.into_iter().map(|(_, o)| strip(o)).collect();
    let text = std::fs::read_to_string(repo_root().join("k8s/install/operator.yaml")).unwrap();
    let plain: BTreeMap<String, Value> = yaml_documents(&text)
        .unwrap()
        .into_iter()
        .map(|o| (kind_name(&o), o))
        .collect();
    assert_eq!(
        plain.keys().collect::<Vec<_>>(),
        chart.keys().collect::<Vec<_>>(),
        "regenerate with: python3 tests/helm/plain_install.py"
    );
    for (key, object) in &chart {
        assert_eq!(
            &plain[key], object,
            "{key} differs; regenerate with: python3 tests/helm/plain_install.py"
        );
    }
}
