//! Finding a cluster's node pods and talking to them: the pods come from the StatefulSet's
//! label selector, each reached at `http://<status.podIP>:<api port>`; the API token is read
//! from the cluster's token Secret; peer IDs are mapped to pods by asking each node its `id`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::Error;
use crate::build::{ClusterModel, names};
use crate::crd::SecretKeyRef;
use crate::nodeapi::NodeClient;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePod {
    pub name: String,
    pub ordinal: i32,
    pub url: String,
    pub ready: bool,
}

/// The cluster's pods that have an IP, by ordinal.
pub async fn node_pods(
    client: &kube::Client,
    m: &ClusterModel,
    api_port: u16,
) -> Result<Vec<NodePod>, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &m.namespace);
    let list = pods
        .list(&ListParams::default().labels(&m.selector_string()))
        .await?;
    let mut out: Vec<NodePod> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let name = p.name_any();
            let ordinal = names::ordinal(&m.name, &name)?;
            let status = p.status.as_ref()?;
            let ip = status.pod_ip.as_ref().filter(|ip| !ip.is_empty())?;
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Some(NodePod {
                name,
                ordinal,
                url: format!("http://{ip}:{api_port}"),
                ready,
            })
        })
        .collect();
    out.sort_by_key(|p| p.ordinal);
    Ok(out)
}

/// Reads `key` of a Secret; `None` when the Secret does not exist (yet).
pub async fn secret_value(
    client: &kube::Client,
    namespace: &str,
    r: &SecretKeyRef,
) -> Result<Option<String>, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let Some(secret) = secrets.get_opt(&r.name).await? else {
        return Ok(None);
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| Error::Secret {
            name: r.name.clone(),
            reason: format!("has no key {:?}", r.key),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| Error::Secret {
        name: r.name.clone(),
        reason: format!("key {:?} is not UTF-8", r.key),
    })?;
    Ok(Some(text.trim().to_string()))
}

/// A node client carrying the cluster's API token.
pub async fn cluster_client(
    client: &kube::Client,
    base: &NodeClient,
    m: &ClusterModel,
) -> Result<NodeClient, Error> {
    let token = secret_value(client, &m.namespace, &m.api_token).await?;
    Ok(base.with_token(token))
}

/// Peer ID → pod name, for the pods whose node answers `id`.
pub async fn pods_by_peer(node: &NodeClient, pods: &[NodePod]) -> BTreeMap<String, String> {
    let asks = pods
        .iter()
        .map(|p| async move { node.id(&p.url).await.ok().map(|id| (id.id, p.name.clone())) });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Runs `call` against the ready pods in order until one answers; the last error otherwise.
pub async fn first_answer<T, F, Fut>(
    pods: &[NodePod],
    cluster: &str,
    mut call: F,
) -> Result<T, Error>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::nodeapi::NodeApiError>>,
{
    let mut last = Error::NoNode(cluster.to_string());
    for pod in pods.iter().filter(|p| p.ready) {
        match call(pod.url.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => last = e.into(),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last)
}
