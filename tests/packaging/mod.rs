//! Shared kit of the packaging tests (`chart.rs`, `manifests.rs`): the Helm v4 engine run
//! through `tests/helm/helm_bridge.py` (lint, values validation, offline rendering), YAML
//! multi-document parsing, strict parsing of every object into its k8s-openapi type (a round
//! trip that must give the object back unchanged, so a misspelled field is caught), and a
//! checker of custom objects against the openAPIV3Schema of the generated CRDs.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod schema;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn chart_dir() -> PathBuf {
    repo_root().join("helm/distribute")
}

/// The unpacked helm-python-sdk wheel: `tests/helm/install.sh` (a no-op once done) prints it.
fn sdk_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo_root().join("tests/helm/install.sh");
        let out = Command::new("bash").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("install.sh printed no folder")
                .trim(),
        )
    })
}

/// Runs one bridge command; `Err` carries the engine's own error (bad chart, template error,
/// values rejected by the schema while rendering).
pub fn helm(
    command: &str,
    values: Option<&Path>,
    release: &str,
    namespace: &str,
) -> Result<Value, String> {
    let values = values.map_or("-".to_string(), |p| p.display().to_string());
    let out = Command::new("python3")
        .arg(repo_root().join("tests/helm/helm_bridge.py"))
        .arg(sdk_dir())
        .arg(command)
        .arg(chart_dir())
        .args([values.as_str(), release, namespace])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "helm_bridge.py {command}: no JSON ({e}); status {:?}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // A finding (`validate`'s `{"ok": false, "error"}`) exits 0; an engine failure exits 2.
    match parsed.get("error") {
        Some(e) if !out.status.success() => Err(e.as_str().unwrap_or_default().to_string()),
        _ => Ok(parsed),
    }
}

/// A values file written for one test (YAML), removed on drop.
pub struct ValuesFile(tempfile::NamedTempFile);

impl ValuesFile {
    pub fn new(yaml: &str) -> Self {
        let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::io::Write::write_all(&mut file, yaml.as_bytes()).unwrap();
        Self(file)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// What `helm template` would print: every non-empty document of every rendered manifest
/// (NOTES.txt excluded), tagged with the template it came from.
pub struct Rendered {
    pub objects: Vec<(String, Value)>,
    pub notes: String,
    /// File names (under the chart) of the CRDs the engine loaded from `crds/`.
    pub crd_files: Vec<String>,
}

pub fn render(values: Option<&Path>, release: &str, namespace: &str) -> Result<Rendered, String> {
    let out = helm("render", values, release, namespace)?;
    let mut objects = Vec::new();
    let mut notes = String::new();
    for (template, text) in out["templates"].as_object().unwrap() {
        let text = text.as_str().unwrap();
        if template.ends_with("NOTES.txt") {
            notes = text.to_string();
            continue;
        }
        for doc in yaml_documents(text).unwrap_or_else(|e| panic!("{template}: {e}\n{text}")) {
            objects.push((template.clone(), doc));
        }
    }
    let crd_files = out["crds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["filename"].as_str().unwrap().to_string())
        .collect();
    Ok(Rendered {
        objects,
        notes,
        crd_files,
    })
}

impl Rendered {
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.objects.iter().map(|(_, o)| kind_name(o)).collect();
        kinds.sort();
        kinds
    }

    /// The one object of this kind and name; panics naming what was rendered otherwise.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .map(|(_, o)| o)
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name} among {:?}", self.kinds()))
    }

    pub fn typed<K: DeserializeOwned>(&self, kind: &str, name: &str) -> K {
        serde_json::from_value(self.get(kind, name).clone()).unwrap()
    }
}

/// `Kind/name` of an object, for messages and comparisons.
pub fn kind_name(o: &Value) -> String {
    format!(
        "{}/{}",
        o["kind"].as_str().unwrap_or("?"),
        o["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Splits a multi-document YAML text into JSON values, skipping empty documents.
pub fn yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let value = yaml_serde::Value::deserialize(doc).map_err(|e| e.to_string())?;
        if value.is_null() {
            continue;
        }
        out.push(serde_json::to_value(value).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

use serde::Deserialize as _;

/// Parses `o` as `K` and serializes it back: the result must be `o` again. k8s-openapi skips
/// unknown fields when deserializing, so the round trip is what catches a misspelled or
/// misplaced field (it would be dropped) as well as a wrong type (it would not parse).
fn round_trip<K: DeserializeOwned + Serialize>(o: &Value) -> Result<(), String> {
    let typed: K = serde_json::from_value(o.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    match first_difference(o, &back, "") {
        None => Ok(()),
        Some(path) => Err(format!(
            "field {path} does not survive parsing (unknown or misplaced)"
        )),
    }
}

/// The path of the first place where `a` has something `b` lacks or holds differently.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let here = format!("{path}.{k}");
                match b.get(k) {
                    Some(w) => {
                        if let Some(p) = first_difference(v, w, &here) {
                            return Some(p);
                        }
                    }
                    None => return Some(here),
                }
            }
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|k| format!("{path}.{k} (added)"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(path.to_string()),
    }
}

/// Parses a built-in object strictly into its k8s-openapi type. Custom kinds (`distribute.io`,
/// `monitoring.coreos.com`) are not handled here: see [`schema`].
pub fn parse_builtin(o: &Value) -> Result<(), String> {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    let result = match (api_version, kind) {
        ("v1", "Namespace") => round_trip::<Namespace>(o),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(o),
        ("v1", "Service") => round_trip::<Service>(o),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(o),
        ("v1", "Secret") => round_trip::<Secret>(o),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(o),
        ("apps/v1", "StatefulSet") => round_trip::<StatefulSet>(o),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(o),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(o)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(o),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(o),
        ("networking.k8s.io/v1", "Ingress") => round_trip::<Ingress>(o),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => round_trip::<HorizontalPodAutoscaler>(o),
        ("policy/v1", "PodDisruptionBudget") => round_trip::<PodDisruptionBudget>(o),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<CustomResourceDefinition>(o)
        }
        _ => Err(format!("{api_version} {kind} is not a known built-in kind")),
    };
    result.map_err(|e| format!("{}: {e}", kind_name(o)))
}

/// The generated CRDs, from `crds/*.yaml` at the repository root.
pub fn generated_crds() -> Vec<(String, CustomResourceDefinition)> {
    let dir = repo_root().join("crds");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let crd: CustomResourceDefinition = yaml_serde::from_str(&text).unwrap();
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                crd,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The openAPIV3Schema of `kind`'s served version in the generated CRDs, as JSON.
pub fn crd_schema(api_version: &str, kind: &str) -> Option<Value> {
    let (group, version) = api_version.split_once('/')?;
    generated_crds().into_iter().find_map(|(_, crd)| {
        if crd.spec.group != group || crd.spec.names.kind != kind {
            return None;
        }
        let v = crd.spec.versions.iter().find(|v| v.name == version)?;
        serde_json::to_value(v.schema.as_ref()?.open_api_v3_schema.as_ref()?).ok()
    })
}
