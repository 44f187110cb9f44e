//! Writing the desired objects: server-side apply of each (one field manager, forced, so the
//! operator owns what it builds), deletion of the optional objects the spec turned off, and
//! the one-time creation of the generated Secret (never re-applied: its values must not change).

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};

use super::Error;
use crate::build::config::build_generated_secret;
use crate::build::desired::Desired;
use crate::build::{ClusterModel, names};

pub const FIELD_MANAGER: &str = "distribute-operator";

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Applies everything in `d` and deletes its absent objects. A kind the API server does not
/// serve (no Prometheus Operator → no ServiceMonitor) is skipped with a warning.
pub async fn apply_desired(
    client: &kube::Client,
    namespace: &str,
    d: &Desired,
) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for o in &d.apply {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &o.resource);
        match api.patch(&o.name, &params, &Patch::Apply(&o.object)).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) && o.resource.group == "monitoring.coreos.com" => {
                tracing::warn!(name = %o.name, "ServiceMonitor kind not served; is the Prometheus Operator installed?");
            }
            Err(e) => return Err(e.into()),
        }
    }
    for (resource, name) in &d.absent {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(kind = %resource.kind, %name, "removed object the spec turned off")
            }
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Creates `<name>-generated` (cluster secret and API token) if the spec relies on it and it
/// does not exist yet.
pub async fn ensure_generated_secret(client: &kube::Client, m: &ClusterModel) -> Result<(), Error> {
    let name = names::generated_secret(&m.name);
    let uses = m.cluster_secret.name == name || m.api_token.name == name;
    if !uses {
        return Ok(());
    }
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &m.namespace);
    if api.get_opt(&name).await?.is_some() {
        return Ok(());
    }
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    getrandom::fill(&mut a).map_err(|e| Error::Random(e.to_string()))?;
    getrandom::fill(&mut b).map_err(|e| Error::Random(e.to_string()))?;
    let secret = build_generated_secret(m, &a, &b);
    match api.create(&PostParams::default(), &secret).await {
        Ok(s) => {
            tracing::info!(secret = %s.name_any(), "generated cluster secret and API token");
            Ok(())
        }
        // Another reconcile won the race; its values stand.
        Err(e) if is_status(&e, 409) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub fn not_found(e: &kube::Error) -> bool {
    is_status(e, 404)
}
