//! Reconcile tests: both controllers run against the in-memory API server
//! (`support/fake_apiserver.rs`); a test kubelet (`support/kubelet.rs`) runs the StatefulSet's
//! pods as real `distribute node` processes on loopback addresses 127.0.0.N.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use distribute_operator::crd::{Pin, StorageCluster};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::kubelet::{Kubelet, KubeletConfig, Ports, node_binary};
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
