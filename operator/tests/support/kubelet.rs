//! A test "kubelet": it turns the StatefulSets stored in the fake API server into REAL
//! `distribute node` processes and Pod objects. Pod `ordinal` of a StatefulSet runs on its own
//! loopback address `127.0.0.<base+ordinal>` with the same ports on every address, like pods
//! with distinct IPs. The node's command line is the StatefulSet's container args, rewritten
//! for this machine: `--repo` to a temp folder, listen/API/metrics/gateway addresses to the
//! pod's IP, Secret-mounted files to temp files holding the Secret's value (found through the
//! pod template's volumes and mounts), the headless-Service DNS bootstrap to pod 0's IP. Flags
//! the node binary does not know (per `distribute node --help`) are dropped and listed.
//! Pod readiness is the node's own `/ready` on its metrics port. A process that exits is
//! restarted (restartPolicy Always); scaled-away pods get SIGTERM, like a pod deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fake_apiserver::{FakeApiServer, Store};

#[derive(Clone, Debug)]
pub struct Ports {
    pub swarm: u16,
    pub api: u16,
    pub metrics: u16,
    pub gateway: u16,
}

struct NodeProc {
    child: Child,
    ip: String,
    sts: String,
}

pub struct Kubelet {
    procs: Arc<Mutex<BTreeMap<String, NodeProc>>>,
    /// Pods whose process stays down (a node that crashed and cannot come back yet).
    held: Arc<Mutex<BTreeSet<String>>>,
    task: tokio::task::JoinHandle<()>,
    pub dropped_flags: Arc<Mutex<BTreeSet<String>>>,
    pub workdir: PathBuf,
}

pub struct KubeletConfig {
    pub namespace: String,
    pub ports: Ports,
    /// Pod ordinal N gets 127.0.0.(ip_base + N).
    pub ip_base: u8,
    pub bin: PathBuf,
    pub workdir: PathBuf,
    /// Appended to every node's args (e.g. short cluster timeouts), if the node knows them.
    pub extra_args: Vec<String>,
}

/// Finds the workspace's `distribute` binary beside this test's target dir, building it first
/// (`cargo build -p distribute --bin distribute`, the same profile and target dir).
pub fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    if let Some(bin) = std::env::var_os("DISTRIBUTE_NODE_BIN") {
        return PathBuf::from(bin);
    }
    // `cargo test --workspace` has already built the node binary with the workspace's
    // features; use it when it is newer than the node's sources (building it again with
    // `-p distribute` would compile the dependencies a second time with other features).
    let built = profile_dir.join("distribute");
    if is_newer_than_sources(&built) {
        return built;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "distribute", "--bin", "distribute"]);
    if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        build.arg("--release");
    }
    build.env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
    let status = build
        .status()
        .expect("running cargo build for the node binary");
    assert!(
        status.success(),
        "building the distribute node binary failed"
    );
    let bin = profile_dir.join("distribute");
    assert!(bin.exists(), "{} missing after build", bin.display());
    bin
}

/// Whether `bin` exists and is newer than every file under `node/src`.
fn is_newer_than_sources(bin: &Path) -> bool {
    fn newest(dir: &Path) -> std::time::SystemTime {
        let mut best = std::time::SystemTime::UNIX_EPOCH;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let time = if path.is_dir() {
                newest(&path)
            } else {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
            };
            best = best.max(time);
        }
        best
    }
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node/src");
    built > newest(&src)
}

fn known_flags(bin: &Path) -> BTreeSet<String> {
    let out = Command::new(bin).args(["node", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| {
            w.trim_end_matches([',', '=', '.'])
                .split('=')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

impl Kubelet {
    pub fn start(server: &FakeApiServer, client: kube::Client, cfg: KubeletConfig) -> Self {
        let procs: Arc<Mutex<BTreeMap<String, NodeProc>>> = Arc::default();
        let held: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let dropped: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let known = known_flags(&cfg.bin);
        let workdir = cfg.workdir.clone();
        let snapshot = server.store();
        let (p, d, h) = (procs.clone(), dropped.clone(), held.clone());
        let task = tokio::spawn(async move {
            loop {
                tick(&snapshot, &client, &cfg, &known, &p, &d, &h).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Self {
            procs,
            held,
            task,
            dropped_flags: dropped,
            workdir,
        }
    }

    /// Kills a pod's node process with SIGKILL (a crash); it is restarted on the next round.
    pub fn kill(&self, pod: &str) {
        let mut procs = self.procs.lock().unwrap();
        if let Some(p) = procs.get_mut(pod) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Kills a pod's node process with SIGKILL and keeps it down until [`Self::resume`].
    pub fn stop(&self, pod: &str) {
        // Under the process table's lock, so a round cannot restart it in between.
        let mut procs = self.procs.lock().unwrap();
        self.held.lock().unwrap().insert(pod.to_string());
        if let Some(p) = procs.get_mut(pod) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Lets a stopped pod's process start again on the next round.
    pub fn resume(&self, pod: &str) {
        self.held.lock().unwrap().remove(pod);
    }

    /// Pods with a running node process.
    pub fn running(&self) -> Vec<String> {
        let mut procs = self.procs.lock().unwrap();
        procs
            .iter_mut()
            .filter_map(|(n, p)| matches!(p.child.try_wait(), Ok(None)).then(|| n.clone()))
            .collect()
    }

    pub fn ip(&self, pod: &str) -> Option<String> {
        self.procs.lock().unwrap().get(pod).map(|p| p.ip.clone())
    }

    pub fn log(&self, pod: &str) -> String {
        std::fs::read_to_string(self.workdir.join(format!("{pod}.log"))).unwrap_or_default()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
        let mut procs = self.procs.lock().unwrap();
        for (_, p) in procs.iter_mut() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

async fn http_ok(addr: &str, path: &str) -> bool {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await
    else {
        return false;
    };
    if s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    matches!(n, Ok(Ok(n)) if String::from_utf8_lossy(&buf[..n]).contains(" 200"))
}

async fn tick(
    snap: &Store,
    client: &kube::Client,
    cfg: &KubeletConfig,
    known: &BTreeSet<String>,
    procs: &Arc<Mutex<BTreeMap<String, NodeProc>>>,
    dropped: &Arc<Mutex<BTreeSet<String>>>,
    held: &Arc<Mutex<BTreeSet<String>>>,
) {
    let ns = &cfg.namespace;
    let statefulsets: Vec<Value> = snap
        .objects("apps/v1/statefulsets")
        .into_iter()
        .filter(|s| s["metadata"]["namespace"] == json!(ns))
        .collect();
    let secrets = snap.objects("/v1/secrets");
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let sts_api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::StatefulSet>(&()),
    );
    let live: BTreeSet<String> = statefulsets
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str().map(String::from))
        .collect();
    // StatefulSets that are gone: stop their processes (their pods went by cascade).
    {
        let mut p = procs.lock().unwrap();
        let gone: Vec<String> = p
            .iter()
            .filter(|(_, n)| !live.contains(&n.sts))
            .map(|(k, _)| k.clone())
            .collect();
        for pod in gone {
            if let Some(mut n) = p.remove(&pod) {
                terminate(&mut n.child);
            }
        }
    }
    for sts in &statefulsets {
        let name = sts["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1) as i32;
        // Scale-in: highest ordinals first, SIGTERM (the node drains and exits by itself).
        let leaving: Vec<String> = {
            let p = procs.lock().unwrap();
            p.iter()
                .filter(|(pod, n)| {
                    n.sts == name && ordinal(&name, pod).is_some_and(|o| o >= replicas)
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        for pod in leaving {
            let proc = procs.lock().unwrap().remove(&pod);
            if let Some(mut n) = proc {
                // Waiting for the exit blocks: not on a runtime worker.
                let _ = tokio::task::spawn_blocking(move || terminate(&mut n.child)).await;
            }
            let _ = pods_api.delete(&pod, &DeleteParams::default()).await;
        }
        let mut ready = 0;
        let mut running = 0;
        for ordinal in 0..replicas {
            let pod = format!("{name}-{ordinal}");
            let ip = format!("127.0.0.{}", cfg.ip_base as i32 + ordinal);
            // Decided and (re)started under the process table's lock (see `Kubelet::stop`).
            let (alive, is_held) = {
                let mut p = procs.lock().unwrap();
                let is_held = held.lock().unwrap().contains(&pod);
                let alive = match p.get_mut(&pod) {
                    Some(n) => matches!(n.child.try_wait(), Ok(None)),
                    None => false,
                };
                if !alive && !is_held {
                    let args = node_args(sts, &name, &pod, &ip, cfg, &secrets, known, dropped);
                    let log =
                        std::fs::File::create(cfg.workdir.join(format!("{pod}.log"))).unwrap();
                    let child = Command::new(&cfg.bin)
                        .arg("node")
                        .args(&args)
                        .stdout(Stdio::null())
                        .stderr(log)
                        .spawn()
                        .unwrap();
                    p.insert(
                        pod.clone(),
                        NodeProc {
                            child,
                            ip: ip.clone(),
                            sts: name.clone(),
                        },
                    );
                }
                (alive, is_held)
            };
            if is_held {
                ensure_pod(&pods_api, sts, &name, &pod, &ip, false).await;
                continue;
            }
            running += 1;
            let is_ready = http_ok(&format!("{ip}:{}", cfg.ports.metrics), "/ready").await;
            ready += i32::from(is_ready);
            ensure_pod(&pods_api, sts, &name, &pod, &ip, alive && is_ready).await;
        }
        let _ = sts_api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"replicas": running, "readyReplicas": ready,
                    "currentReplicas": running, "availableReplicas": ready}}),
                ),
            )
            .await;
    }
}

fn terminate(child: &mut Child) {
    let pid = child.id() as i32;
    // SIGTERM: the node leaves the cluster (drains) and exits; SIGKILL after a minute.
    unsafe_free_kill(pid);
    for _ in 0..600 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn unsafe_free_kill(pid: i32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

fn ordinal(sts: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(sts)?.strip_prefix('-')?.parse().ok()
}

async fn ensure_pod(api: &Api<Pod>, sts: &Value, sts_name: &str, pod: &str, ip: &str, ready: bool) {
    if api.get_opt(pod).await.ok().flatten().is_none() {
        let labels = sts["spec"]["template"]["metadata"]["labels"].clone();
        let p: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "labels": labels, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "StatefulSet", "name": sts_name,
                "uid": sts["metadata"]["uid"], "controller": true}]},
            "spec": {"containers": [{"name": "node"}]},
        }))
        .unwrap();
        let _ = api.create(&PostParams::default(), &p).await;
    }
    let status = json!({"status": {"phase": "Running", "podIP": ip, "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    let _ = api
        .patch_status(pod, &PatchParams::default(), &Patch::Merge(status))
        .await;
}

/// The StatefulSet's args rewritten for a loopback pod (see the module doc).
#[allow(clippy::too_many_arguments)]
fn node_args(
    sts: &Value,
    sts_name: &str,
    pod: &str,
    ip: &str,
    cfg: &KubeletConfig,
    secrets: &[Value],
    known: &BTreeSet<String>,
    dropped: &Arc<Mutex<BTreeSet<String>>>,
) -> Vec<String> {
    let pod_spec = &sts["spec"]["template"]["spec"];
    let container = &pod_spec["containers"][0];
    // mount path → (secret name, key → file)
    let mut secret_mounts: Vec<(String, String, BTreeMap<String, String>)> = Vec::new();
    for m in container["volumeMounts"].as_array().into_iter().flatten() {
        let vol = pod_spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == m["name"]);
        if let Some(secret) = vol.map(|v| &v["secret"]).filter(|s| s.is_object()) {
            let items: BTreeMap<String, String> = secret["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    (
                        i["path"].as_str().unwrap_or("").to_string(),
                        i["key"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            secret_mounts.push((
                m["mountPath"].as_str().unwrap_or("").to_string(),
                secret["secretName"].as_str().unwrap_or("").to_string(),
                items,
            ));
        }
    }
    let p = &cfg.ports;
    let pod0_ip = format!("127.0.0.{}", cfg.ip_base);
    let secret_dir = cfg.workdir.join(format!("{pod}-secrets"));
    std::fs::create_dir_all(&secret_dir).unwrap();
    let mut out = Vec::new();
    let args: Vec<String> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .chain(cfg.extra_args.iter().cloned())
        .collect();
    for arg in args {
        let (flag, value) = arg
            .split_once('=')
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .unwrap_or((arg.clone(), String::new()));
        if !known.contains(&flag) {
            dropped.lock().unwrap().insert(flag);
            continue;
        }
        let value = match flag.as_str() {
            "--repo" => cfg.workdir.join(pod).display().to_string(),
            "--listen" => format!("/ip4/{ip}/tcp/{}", p.swarm),
            "--api" => format!("{ip}:{}", p.api),
            "--metrics" => format!("{ip}:{}", p.metrics),
            "--gateway" => format!("{ip}:{}", p.gateway),
            "--bootstrap"
                if value.starts_with("/dns4/") && value.contains(&format!("{sts_name}-0.")) =>
            {
                if pod.ends_with("-0") {
                    continue;
                }
                format!("/ip4/{pod0_ip}/tcp/{}", p.swarm)
            }
            _ => match secret_mounts
                .iter()
                .find(|(mount, _, _)| value.starts_with(&format!("{mount}/")))
            {
                Some((mount, secret_name, items)) => {
                    let file = &value[mount.len() + 1..];
                    let key = items.get(file).cloned().unwrap_or_else(|| file.to_string());
                    let data = secrets
                        .iter()
                        .find(|s| s["metadata"]["name"] == json!(secret_name))
                        .and_then(|s| s["data"][&key].as_str().map(String::from))
                        .unwrap_or_default();
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap_or_default();
                    let path = secret_dir.join(file);
                    std::fs::write(&path, bytes).unwrap();
                    path.display().to_string()
                }
                None => value,
            },
        };
        out.push(if value.is_empty() {
            flag
        } else {
            format!("{flag}={value}")
        });
    }
    out
}
