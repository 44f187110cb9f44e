//! Reconcile tests: both controllers run against the in-memory API server
//! (`support/fake_apiserver.rs`); a test kubelet (`support/kubelet.rs`) runs the StatefulSet's
//! pods as real `distribute node` processes on loopback addresses 127.0.0.N.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use distribute_operator::crd::{
    DrainStatus, HolderState, Pin, PinPhase, PinStatus, StorageCluster,
};
use distribute_operator::crdgen;
use distribute_operator::nodeapi::NodeClient;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::fake_apiserver::FakeApiServer;
use support::kubelet::{Kubelet, KubeletConfig, Ports, node_binary};
use support::node_api::{add_unpinned, api_token, content, local_pins, post};
use support::{Harness, NS, free_port, wait_for};

const CID: &str = "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u";

fn cluster(name: &str, spec: Value) -> StorageCluster {
    serde_json::from_value(json!({
        "apiVersion": "distribute.io/v1alpha1", "kind": "StorageCluster",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

fn pin(name: &str, spec: Value) -> Pin {
    serde_json::from_value(json!({
        "apiVersion": "distribute.io/v1alpha1", "kind": "Pin",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

async fn pin_status(api: &Api<Pin>, name: &str) -> Result<Value, String> {
    let p = api.get(name).await.map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(&p).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storage_cluster_builds_its_objects_and_cascades_on_delete() {
    let h = Harness::start(free_port()).await;
    let clusters: Api<StorageCluster> = Api::namespaced(h.client.clone(), NS);
    clusters
        .create(
            &PostParams::default(),
            &cluster(
                "store",
                json!({"replicas": 2, "metrics": {"serviceMonitor": true}}),
            ),
        )
        .await
        .unwrap();
    let server = &h.server;
    for (resource, name) in [
        ("apps/v1/statefulsets", "store"),
        ("/v1/services", "store-peers"),
        ("/v1/services", "store-api"),
        ("/v1/services", "store-gateway"),
        ("/v1/services", "store-metrics"),
        ("/v1/configmaps", "store-config"),
        ("/v1/secrets", "store-generated"),
        ("policy/v1/poddisruptionbudgets", "store"),
        ("monitoring.coreos.com/v1/servicemonitors", "store"),
    ] {
        let obj = wait_for(30, &format!("{resource} {name}"), || async {
            server
                .get(resource, NS, name)
                .ok_or_else(|| "absent".to_string())
        })
        .await;
        if resource != "/v1/secrets" {
            assert_eq!(
                obj["metadata"]["ownerReferences"][0]["kind"], "StorageCluster",
                "{name}"
            );
            assert_eq!(
                obj["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "distribute-operator"
            );
        }
    }
    let sts = server.get("apps/v1/statefulsets", NS, "store").unwrap();
    assert_eq!(sts["spec"]["replicas"], 2);
    // Status: no pod runs here (no kubelet), so the cluster is Pending and not Available.
    let status = wait_for(30, "status with a phase", || async {
        let sc = clusters.get("store").await.map_err(|e| e.to_string())?;
        let s = sc.status.ok_or("no status")?;
        if s.phase.is_some() {
            Ok(s)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.ready, "0/2");
    assert_eq!(
        status.selector,
        "app.kubernetes.io/instance=store,app.kubernetes.io/name=distribute"
    );
    let available = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(available.status, "False");

    // Turning the gateway off removes its Service (orphan removal).
    clusters
        .patch(
            "store",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"gateway": {"enabled": false}}})),
        )
        .await
        .unwrap();
    wait_for(30, "gateway Service removed", || async {
        match server.get("/v1/services", NS, "store-gateway") {
            None => Ok(()),
            Some(_) => Err("still there".into()),
        }
    })
    .await;

    // A field the operator stops setting goes (server-side apply's field ownership): no
    // anti-affinity asked → the StatefulSet's pod template has none.
    let affinity = |s: &Value| s["spec"]["template"]["spec"]["affinity"].clone();
    assert!(affinity(&sts).is_object(), "{sts}");
    clusters
        .patch(
            "store",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"antiAffinity": "None"}})),
        )
        .await
        .unwrap();
    wait_for(30, "StatefulSet affinity removed", || async {
        let sts = server.get("apps/v1/statefulsets", NS, "store").unwrap();
        match affinity(&sts) {
            Value::Null => Ok(()),
            a => Err(a.to_string()),
        }
    })
    .await;

    // Deleting the StorageCluster deletes what it owns.
    clusters
        .delete("store", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(30, "owned objects gone", || async {
        let left: Vec<String> = [
            "apps/v1/statefulsets",
            "/v1/services",
            "/v1/configmaps",
            "policy/v1/poddisruptionbudgets",
        ]
        .iter()
        .flat_map(|r| server.objects(r))
        .map(|o| o["metadata"]["name"].to_string())
        .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_cid_and_missing_cluster_fail_without_a_hot_loop() {
    let h = Harness::start(free_port()).await;
    let pins: Api<Pin> = Api::namespaced(h.client.clone(), NS);
    pins.create(
        &PostParams::default(),
        &pin("bad", json!({"cid": "QmNotACid", "cluster": "store"})),
    )
    .await
    .unwrap();
    pins.create(
        &PostParams::default(),
        &pin(
            "orphan",
            json!({"cid": format!("ipfs://{CID}"), "cluster": "nowhere"}),
        ),
    )
    .await
    .unwrap();
    for (name, reason, text) in [
        ("bad", "InvalidCid", "is not a CID"),
        (
            "orphan",
            "ClusterNotFound",
            "StorageCluster \"nowhere\" not found",
        ),
    ] {
        let v = wait_for(30, &format!("{name} Failed"), || async {
            let v = pin_status(&pins, name).await?;
            if v["status"]["phase"] == "Failed" {
                Ok(v)
            } else {
                Err(v["status"].to_string())
            }
        })
        .await;
        let ready = &v["status"]["conditions"][0];
        assert_eq!(
            (ready["type"].as_str(), ready["reason"].as_str()),
            (Some("Ready"), Some(reason)),
            "{v}"
        );
        assert!(ready["message"].as_str().unwrap().contains(text), "{v}");
        assert!(
            v["status"]["lastError"].as_str().unwrap().contains(text),
            "{v}"
        );
        assert_eq!(v["metadata"]["finalizers"][0], "distribute.io/unpin");
    }
    // No hot loop: over a few seconds the failed pins are not rewritten.
    let before = h.server.history_len();
    let rv = |v: &Value| v["metadata"]["resourceVersion"].clone();
    let bad_rv = rv(&pin_status(&pins, "bad").await.unwrap());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rv(&pin_status(&pins, "bad").await.unwrap()), bad_rv);
    assert!(
        h.server.history_len() - before < 10,
        "{} writes in 3 s",
        h.server.history_len() - before
    );
    // Deleting them needs no node: the finalizer lets go.
    for name in ["bad", "orphan"] {
        pins.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_for(30, "failed pins deleted", || async {
        let left = h.server.objects("distribute.io/v1alpha1/pins");
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{} left", left.len()))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_run_as_real_nodes_and_the_cluster_becomes_available() {
    let ports = Ports {
        swarm: free_port(),
        api: free_port(),
        metrics: free_port(),
        gateway: free_port(),
    };
    let h = Harness::start(ports.api).await;
    let work = tempfile::tempdir().unwrap();
    let kubelet = Kubelet::start(
        &h.server,
        h.client.clone(),
        KubeletConfig {
            namespace: NS.into(),
            ports,
            ip_base: 20,
            bin: node_binary(),
            workdir: work.path().to_path_buf(),
            extra_args: vec![],
        },
    );
    let clusters: Api<StorageCluster> = Api::namespaced(h.client.clone(), NS);
    clusters
        .create(
            &PostParams::default(),
            &cluster("ring", json!({"replicas": 3})),
        )
        .await
        .unwrap();
    let status = wait_for(120, "3/3 ready", || async {
        let sc = clusters.get("ring").await.map_err(|e| e.to_string())?;
        let s = sc.status.ok_or("no status")?;
        if s.ready == "3/3" {
            Ok(s)
        } else {
            Err(format!("{:?} logs: {}", s, kubelet.log("ring-0")))
        }
    })
    .await;
    let available = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(available.status, "True", "{status:?}");
    assert_eq!(kubelet.running().len(), 3);
    assert_eq!(kubelet.ip("ring-2").as_deref(), Some("127.0.0.22"));
    // Scaling out adds pods at once.
    clusters
        .patch(
            "ring",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    wait_for(120, "4/4 ready", || async {
        let s = clusters
            .get("ring")
            .await
            .map_err(|e| e.to_string())?
            .status
            .ok_or("no status")?;
        if s.ready == "4/4" {
            Ok(())
        } else {
            Err(s.ready)
        }
    })
    .await;
    // Every flag the operator puts in the StatefulSet must be one the node understands.
    let dropped = kubelet.dropped_flags.lock().unwrap().clone();
    assert!(
        dropped.is_empty(),
        "the operator passes flags the node binary does not know: {dropped:?}"
    );
}

/// A StorageCluster whose pods run as real node processes, ready.
struct NodeCluster {
    h: Harness,
    kubelet: Kubelet,
    _work: tempfile::TempDir,
    ports: Ports,
    ip_base: u8,
    name: String,
    token: String,
}

impl NodeCluster {
    async fn start(name: &str, ip_base: u8, spec: Value) -> Self {
        let ports = Ports {
            swarm: free_port(),
            api: free_port(),
            metrics: free_port(),
            gateway: free_port(),
        };
        let replicas = spec["replicas"].as_i64().unwrap();
        let h = Harness::start(ports.api).await;
        let work = tempfile::tempdir().unwrap();
        let kubelet = Kubelet::start(
            &h.server,
            h.client.clone(),
            KubeletConfig {
                namespace: NS.into(),
                ports: ports.clone(),
                ip_base,
                bin: node_binary(),
                workdir: work.path().to_path_buf(),
                extra_args: vec![],
            },
        );
        let clusters: Api<StorageCluster> = Api::namespaced(h.client.clone(), NS);
        clusters
            .create(&PostParams::default(), &cluster(name, spec))
            .await
            .unwrap();
        let want = format!("{replicas}/{replicas}");
        wait_for(180, &format!("{name} {want} ready"), || async {
            let sc = clusters.get(name).await.map_err(|e| e.to_string())?;
            let s = sc.status.ok_or("no status")?;
            if s.ready == want {
                Ok(())
            } else {
                Err(format!("{s:?} log: {}", kubelet.log(&format!("{name}-0"))))
            }
        })
        .await;
        let token = api_token(&h.server, NS, name);
        // Ready pods are not yet a settled cluster: until every node has heard from every
        // other, nodes allocate from different member lists and a copy may be made by one
        // node and released a moment later. The tests start from settled membership.
        for ordinal in 0..replicas {
            let api = format!("127.0.0.{}:{}", i64::from(ip_base) + ordinal, ports.api);
            wait_for(
                120,
                &format!("{name}-{ordinal} seeing every peer"),
                || async {
                    let (code, text) = post(&api, &token, "cluster/peers", None).await?;
                    let v: Value =
                        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                    // `Peers` lists the node itself too.
                    let alive = v["Peers"]
                        .as_array()
                        .map(|p| p.iter().filter(|m| m["State"] == "alive").count())
                        .unwrap_or(0);
                    if code == 200 && alive as i64 == replicas {
                        Ok(())
                    } else {
                        Err(format!("HTTP {code}: {text}"))
                    }
                },
            )
            .await;
        }
        Self {
            h,
            kubelet,
            _work: work,
            ports,
            ip_base,
            name: name.to_string(),
            token,
        }
    }

    fn pod(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.name)
    }

    /// `ip:port` of a pod's node API.
    fn api(&self, ordinal: i32) -> String {
        format!(
            "127.0.0.{}:{}",
            i32::from(self.ip_base) + ordinal,
            self.ports.api
        )
    }

    fn ordinal(&self, pod: &str) -> i32 {
        pod.rsplit('-').next().unwrap().parse().unwrap()
    }

    fn clusters(&self) -> Api<StorageCluster> {
        Api::namespaced(self.h.client.clone(), NS)
    }

    fn pins(&self) -> Api<Pin> {
        Api::namespaced(self.h.client.clone(), NS)
    }

    /// Waits until the Pin `name` satisfies `ok`, for at most `secs`.
    async fn wait_pin(
        &self,
        name: &str,
        secs: u64,
        what: &str,
        ok: impl Fn(&PinStatus) -> bool,
    ) -> PinStatus {
        let pins = self.pins();
        wait_for(secs, &format!("Pin {name}: {what}"), || async {
            let p = pins.get(name).await.map_err(|e| e.to_string())?;
            let s = p.status.unwrap_or_default();
            if ok(&s) { Ok(s) } else { Err(format!("{s:?}")) }
        })
        .await
    }

    /// Waits until the node of `ordinal` does (or does not) hold a local pin of `cid`.
    async fn wait_local_pin(&self, ordinal: i32, cid: &str, held: bool) {
        let addr = self.api(ordinal);
        let what = format!(
            "{} {} {cid}",
            self.pod(ordinal),
            if held { "holding" } else { "no longer holding" }
        );
        wait_for(120, &what, || async {
            let pins = local_pins(&addr, &self.token).await?;
            if pins.contains(cid) == held {
                Ok(())
            } else {
                Err(format!("{pins:?}"))
            }
        })
        .await;
    }
}

fn holder_pods(s: &PinStatus) -> BTreeSet<String> {
    s.holders
        .iter()
        .filter(|h| h.state == HolderState::Pinned)
        .filter_map(|h| h.pod.clone())
        .collect()
}

/// Files of a flatfs block store (`blocks/<shard>/<key>.data`) under a pod's repo.
fn flatfs_blocks(repo: &Path) -> usize {
    let shards = std::fs::read_dir(repo.join("blocks")).into_iter().flatten();
    shards
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter(|f| f.path().extension().is_some_and(|x| x == "data"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pin_is_held_by_every_node_then_unpinned_when_deleted() {
    let c = NodeCluster::start(
        "vault",
        40,
        json!({"replicas": 3, "storage": {"blockstore": "flatfs"}}),
    )
    .await;
    let repo = |ordinal: i32| c.kubelet.workdir.join(c.pod(ordinal));
    let before: Vec<usize> = (0..3).map(|o| flatfs_blocks(&repo(o))).collect();
    // Three 256 KiB chunks and a root: four blocks.
    let cid = add_unpinned(&c.api(0), &c.token, &content(1, 600_000)).await;
    // `storage.blockstore: flatfs` reaches the nodes: their repos keep blocks as files.
    for ordinal in 0..3 {
        let config = std::fs::read_to_string(repo(ordinal).join("config.toml")).unwrap();
        assert!(config.contains("backend = \"flatfs\""), "{config}");
        assert!(repo(ordinal).join("blocks/SHARDING").is_file());
    }
    assert_eq!(flatfs_blocks(&repo(0)), before[0] + 4);
    assert!(
        !local_pins(&c.api(0), &c.token)
            .await
            .unwrap()
            .contains(&cid)
    );

    c.pins()
        .create(
            &PostParams::default(),
            &pin(
                "doc",
                json!({"cid": cid, "cluster": "vault", "replicas": 3}),
            ),
        )
        .await
        .unwrap();
    let s = c
        .wait_pin("doc", 120, "3/3 Pinned", |s| {
            s.phase == Some(PinPhase::Pinned) && s.replicas == "3/3" && holder_pods(s).len() == 3
        })
        .await;
    let all: BTreeSet<String> = (0..3).map(|o| c.pod(o)).collect();
    assert_eq!(holder_pods(&s), all, "{s:?}");
    assert_eq!((s.pinned, s.target), (3, 3));
    // Each node says so itself, and each fetched every block into its flatfs store.
    for ordinal in 0..3 {
        c.wait_local_pin(ordinal, &cid, true).await;
        assert_eq!(flatfs_blocks(&repo(ordinal)), before[ordinal as usize] + 4);
    }

    // Deleting the Pin: the finalizer unpins through the cluster, then lets go.
    c.pins()
        .delete("doc", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(60, "Pin doc gone", || async {
        match c.h.server.get("distribute.io/v1alpha1/pins", NS, "doc") {
            None => Ok(()),
            Some(p) => Err(p["metadata"].to_string()),
        }
    })
    .await;
    for ordinal in 0..3 {
        c.wait_local_pin(ordinal, &cid, false).await;
    }
    let unpinned =
        c.h.server
            .objects("events.k8s.io/v1/events")
            .into_iter()
            .any(|e| e["reason"] == "Unpinned");
    assert!(unpinned, "no Unpinned event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_holder_degrades_the_pin_until_the_cluster_copies_it_again() {
    let c = NodeCluster::start(
        "mend",
        60,
        // The pin is Degraded from the missed heartbeats (2 s) until the copy is re-made after
        // `rereplicateAfterSeconds`: 30 s leaves the operator many reconciles to see it.
        json!({"replicas": 3, "heartbeatTimeoutSeconds": 2, "rereplicateAfterSeconds": 30}),
    )
    .await;
    let cid = add_unpinned(&c.api(0), &c.token, &content(2, 100_000)).await;
    c.pins()
        .create(
            &PostParams::default(),
            &pin(
                "pair",
                json!({"cid": cid, "cluster": "mend", "replicas": 2}),
            ),
        )
        .await
        .unwrap();
    let before = c
        .wait_pin("pair", 120, "2/2 Pinned", |s| {
            s.phase == Some(PinPhase::Pinned) && s.replicas == "2/2" && holder_pods(s).len() == 2
        })
        .await;
    let holders = holder_pods(&before);
    let victim = holders.iter().next_back().unwrap().clone();
    for pod in &holders {
        c.wait_local_pin(c.ordinal(pod), &cid, true).await;
    }
    // A third node may still hold a copy from an earlier allocation (pins move while members
    // join, and a moved copy is released only after the new holders have theirs). With that
    // copy around, killing a holder leaves two copies and the pin rightly stays Pinned: wait
    // until only the two holders hold it.
    for ordinal in 0..3 {
        if !holders.contains(&c.pod(ordinal)) {
            c.wait_local_pin(ordinal, &cid, false).await;
        }
    }

    c.kubelet.stop(&victim);
    // As generous as the other waits here: once failed at 60 s in a loaded CI run.
    let degraded = c
        .wait_pin("pair", 120, "Degraded", |s| {
            s.phase == Some(PinPhase::Degraded)
        })
        .await;
    // The killed pod no longer counts as a holder (its peer cannot be mapped to a running
    // pod); `pinned` may already include a copy the cluster is making elsewhere.
    assert!(!holder_pods(&degraded).contains(&victim), "{degraded:?}");
    assert!(
        degraded
            .conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.status == "True"),
        "{degraded:?}"
    );
    // After `rereplicateAfterSeconds` the cluster copies the pin to the third node.
    let after = c
        .wait_pin(
            "pair",
            120,
            "2/2 Pinned again without the killed pod",
            |s| {
                s.phase == Some(PinPhase::Pinned)
                    && s.replicas == "2/2"
                    && holder_pods(s).len() == 2
                    && !holder_pods(s).contains(&victim)
            },
        )
        .await;
    let newcomer = holder_pods(&after)
        .difference(&holders)
        .next()
        .unwrap()
        .clone();
    c.wait_local_pin(c.ordinal(&newcomer), &cid, true).await;
    assert!(c.kubelet.running().len() == 2 && !c.kubelet.running().contains(&victim));
    c.kubelet.resume(&victim);
}

/// One observation of the scale-in test: the drain in the StorageCluster's status, the
/// StatefulSet's replicas, and each pin's (pinned, minimum) as a staying node reports them.
#[derive(Debug)]
struct Seen {
    drain: Option<DrainStatus>,
    sts_replicas: i64,
    pins: Vec<(String, i64, i64)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_in_drains_the_highest_ordinal_before_the_statefulset_shrinks() {
    let c = NodeCluster::start("shrink", 80, json!({"replicas": 3})).await;
    // Pins of two copies until one of them is held by shrink-2, the pod that will go.
    let mut cids = Vec::new();
    for seed in 10..20 {
        let cid = add_unpinned(&c.api(0), &c.token, &content(seed, 50_000)).await;
        let name = format!("p{seed}");
        c.pins()
            .create(
                &PostParams::default(),
                &pin(
                    &name,
                    json!({"cid": cid, "cluster": "shrink", "replicas": 2}),
                ),
            )
            .await
            .unwrap();
        let s = c
            .wait_pin(&name, 120, "2/2 Pinned", |s| {
                s.phase == Some(PinPhase::Pinned) && holder_pods(s).len() == 2
            })
            .await;
        cids.push(cid);
        if holder_pods(&s).contains("shrink-2") {
            break;
        }
    }
    let on_leaving = local_pins(&c.api(2), &c.token).await.unwrap();
    assert!(
        cids.iter().any(|c| on_leaving.contains(c)),
        "no pin landed on shrink-2 in {} tries",
        cids.len()
    );

    // Observe until the scale-in is over.
    let stop = tokio_util::sync::CancellationToken::new();
    let observer = {
        let (stop, server) = (stop.clone(), c.h.server.store());
        let (clusters, node) = (
            c.clusters(),
            NodeClient::new(Some(c.token.clone()), Duration::from_secs(10)),
        );
        let url = format!("http://{}", c.api(0));
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.is_cancelled() {
                let drain = clusters
                    .get("shrink")
                    .await
                    .ok()
                    .and_then(|sc| sc.status)
                    .and_then(|s| s.drain);
                let sts_replicas = server
                    .objects("apps/v1/statefulsets")
                    .first()
                    .and_then(|s| s["spec"]["replicas"].as_i64())
                    .unwrap_or(-1);
                let pins = match node.status_all(&url).await {
                    Ok(list) => list
                        .pins
                        .iter()
                        .map(|p| (p.cid.clone(), p.pinned, p.replication_min.unwrap_or(0)))
                        .collect(),
                    Err(_) => Vec::new(),
                };
                seen.push(Seen {
                    drain,
                    sts_replicas,
                    pins,
                });
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            seen
        })
    };
    // As the HPA would: through the StorageCluster's scale subresource.
    c.clusters()
        .patch_scale(
            "shrink",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    wait_for(240, "scaled in to 2, drain over", || async {
        let s = c
            .clusters()
            .get("shrink")
            .await
            .map_err(|e| e.to_string())?
            .status
            .ok_or("no status")?;
        let sts =
            c.h.server
                .get("apps/v1/statefulsets", NS, "shrink")
                .unwrap();
        if sts["spec"]["replicas"] == 2 && s.drain.is_none() && s.ready == "2/2" {
            Ok(())
        } else {
            Err(format!("sts {} status {s:?}", sts["spec"]["replicas"]))
        }
    })
    .await;
    wait_for(120, "shrink-2 stopped", || async {
        let running = c.kubelet.running();
        if running.contains(&"shrink-2".to_string()) {
            Err(format!("{running:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    stop.cancel();
    let seen = observer.await.unwrap();

    // From the API server's record of every write: the drain was reported, for shrink-2
    // only, while the StatefulSet still had 3 replicas; the StatefulSet went down only after.
    let mut drains = Vec::new();
    let mut order = Vec::new();
    for (kind, o) in c.h.server.history("distribute.io/v1alpha1/storageclusters") {
        let rv: u64 = o["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if kind == "MODIFIED" && o["status"]["drain"].is_object() {
            assert_eq!(o["status"]["phase"], "Draining", "{}", o["status"]);
            let progressing = o["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "Progressing")
                .unwrap();
            assert_eq!(progressing["reason"], "Draining", "{progressing}");
            let d: DrainStatus = serde_json::from_value(o["status"]["drain"].clone()).unwrap();
            order.push((rv, "drain"));
            drains.push(d);
        }
    }
    let mut sts_replicas = Vec::new();
    for (_, o) in c.h.server.history("apps/v1/statefulsets") {
        let rv: u64 = o["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let n = o["spec"]["replicas"].as_i64().unwrap();
        sts_replicas.push(n);
        if n == 2 {
            order.push((rv, "shrunk"));
        }
    }
    order.sort();
    assert!(!drains.is_empty(), "no drain in the status history");
    assert_eq!(order.first().map(|o| o.1), Some("drain"), "{order:?}");
    assert!(order.iter().any(|o| o.1 == "shrunk"), "{order:?}");
    for d in &drains {
        assert_eq!(
            (d.target_replicas, d.pods.as_slice()),
            (2, ["shrink-2".to_string()].as_slice())
        );
    }
    assert!(
        drains.iter().any(|d| d.remaining > 0),
        "the cluster never reported pins left to hand over: {drains:?}"
    );
    // The StatefulSet went 3 → 2 once, never lower, never back.
    sts_replicas.dedup();
    assert_eq!(sts_replicas, [3, 2]);
    assert!(
        seen.iter()
            .all(|o| o.drain.is_none() || o.sts_replicas == 3),
        "{seen:#?}"
    );
    // No pin below its minimum at any observed point.
    for o in &seen {
        for (cid, pinned, min) in &o.pins {
            assert!(pinned >= min, "{cid}: {pinned} < {min} in {o:?}");
        }
    }
    assert!(seen.iter().any(|o| o.pins.len() == cids.len()), "{seen:#?}");
    // Every pin is on both staying nodes, by their own account.
    for cid in &cids {
        for ordinal in 0..2 {
            c.wait_local_pin(ordinal, cid, true).await;
        }
    }
    let reasons: Vec<String> =
        c.h.server
            .objects("events.k8s.io/v1/events")
            .iter()
            .filter_map(|e| e["reason"].as_str().map(String::from))
            .collect();
    for want in ["Draining", "ScaledIn"] {
        assert!(
            reasons.iter().any(|r| r == want),
            "no {want} event in {reasons:?}"
        );
    }
}

/// The fake API server alone, with the CRDs stored as `kubectl apply -f crds/` would.
async fn bare_server() -> (FakeApiServer, kube::Client) {
    let server = FakeApiServer::start().await;
    let client = server.client(NS);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in crdgen::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    (server, client)
}

#[tokio::test]
async fn fake_apiserver_apply_removes_what_a_manager_stops_sending() {
    let (_server, client) = bare_server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, NS);
    let apply = |manager: &'static str, labels: Value, data: Value| {
        let cms = cms.clone();
        async move {
            cms.patch(
                "cm",
                &PatchParams::apply(manager).force(),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "cm", "labels": labels}, "data": data})),
            )
            .await
            .unwrap()
        }
    };
    apply(
        "a",
        json!({"keep": "a", "drop": "a"}),
        json!({"x": "1", "y": "2"}),
    )
    .await;
    apply("b", json!({}), json!({"z": "3"})).await;
    cms.patch(
        "cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"w": "4"}})),
    )
    .await
    .unwrap();
    let cm = apply("a", json!({"keep": "a"}), json!({"x": "1"})).await;
    let data = |cm: &ConfigMap| {
        cm.data
            .clone()
            .unwrap_or_default()
            .into_keys()
            .collect::<Vec<_>>()
    };
    // y: dropped by its only applier; z: b's; w: written by a merge patch, owned by no applier.
    assert_eq!(data(&cm), ["w", "x", "z"]);
    assert_eq!(
        cm.metadata.labels.unwrap().into_keys().collect::<Vec<_>>(),
        ["keep"]
    );
    // A field two appliers send stays while one of them still sends it.
    apply("b", json!({}), json!({"z": "3", "x": "1"})).await;
    let cm = apply("a", json!({"keep": "a"}), json!({})).await;
    assert_eq!(data(&cm), ["w", "x", "z"]);
    let cm = apply("b", json!({}), json!({})).await;
    assert_eq!(data(&cm), ["w"]);
    // Emptied maps go with their last field.
    assert!(cm.metadata.labels.unwrap_or_default().contains_key("keep"));
    let cm = cms
        .patch(
            "cm",
            &PatchParams::apply("a").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm"}})),
        )
        .await
        .unwrap();
    assert!(cm.metadata.labels.is_none(), "{:?}", cm.metadata.labels);
}

#[tokio::test]
async fn fake_apiserver_serves_the_scale_subresource() {
    let (server, client) = bare_server().await;
    let clusters: Api<StorageCluster> = Api::namespaced(client.clone(), NS);
    clusters
        .create(
            &PostParams::default(),
            &cluster("s", json!({"replicas": 3})),
        )
        .await
        .unwrap();
    let scale = clusters.get_scale("s").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().replicas, 0);
    clusters
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3, "selector": "a=b"}})),
        )
        .await
        .unwrap();
    let status = clusters.get_scale("s").await.unwrap().status.unwrap();
    assert_eq!(
        (status.replicas, status.selector.as_deref()),
        (3, Some("a=b"))
    );
    // Writing the scale writes `.spec.replicas` (a spec change: the generation moves).
    let scaled = clusters
        .patch_scale(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    let sc = clusters.get("s").await.unwrap();
    assert_eq!((sc.spec.replicas, sc.metadata.generation), (5, Some(2)));
    assert_eq!(sc.status.unwrap().replicas, 3);
    let stored = server
        .get("distribute.io/v1alpha1/storageclusters", NS, "s")
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 5);
    // Pins declare no scale subresource.
    let pins: Api<Pin> = Api::namespaced(client, NS);
    pins.create(
        &PostParams::default(),
        &pin("p", json!({"cid": CID, "cluster": "s"})),
    )
    .await
    .unwrap();
    let err = pins.get_scale("p").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err}"
    );
}

/// The node honours the ConfigMap's `DISTRIBUTE_BLOCKSTORE` (the pods get it by `envFrom`) as
/// it honours `--blockstore`, and refuses an unknown backend by name.
#[tokio::test]
async fn the_node_takes_its_blockstore_from_the_environment() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let mut node = std::process::Command::new(node_binary())
        .arg("--repo")
        .arg(&repo)
        .args([
            "node",
            "--listen=/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--api=127.0.0.1:0",
        ])
        .env("DISTRIBUTE_BLOCKSTORE", "flatfs")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let config = wait_for(60, "the node's config.toml", || async {
        let text = std::fs::read_to_string(repo.join("config.toml")).map_err(|e| e.to_string())?;
        if text.contains("backend") {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    let _ = node.kill();
    let _ = node.wait();
    assert!(config.contains("backend = \"flatfs\""), "{config}");
    assert!(repo.join("blocks/SHARDING").is_file());

    let out = std::process::Command::new(node_binary())
        .arg("--repo")
        .arg(work.path().join("other"))
        .args(["node", "--blockstore=lmdb", "--api=127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lmdb") && err.contains("flatfs"), "{err}");
}
