//! The spec's JSON objects: the `Pin` a `POST` carries ([`PinBody`]) and the `PinStatus` every
//! answer returns ([`ServicePinStatus`], built from a cluster pin's status by [`to_service`]),
//! with the cluster's states mapped onto the spec's four ([`service_status`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::MAX_DELEGATES;
use super::timestamp::rfc3339;
use crate::cluster::pinset::{Stamp, request_id};
use crate::cluster::status::{ClusterState, PinStatus};

/// The body of `POST /pins` and `POST /pins/{requestid}`: the spec's `Pin`.
#[derive(Debug, Deserialize)]
pub(super) struct PinBody {
    pub(super) cid: String,
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) origins: Vec<String>,
    #[serde(default)]
    pub(super) meta: BTreeMap<String, String>,
}

/// The spec's `PinStatus`.
#[derive(Debug, Serialize)]
pub(super) struct ServicePinStatus {
    requestid: String,
    status: &'static str,
    created: String,
    pin: Value,
    delegates: Vec<String>,
    info: BTreeMap<String, String>,
}

/// The spec's status name for a cluster state.
pub fn service_status(state: ClusterState) -> &'static str {
    match state {
        ClusterState::Queued => "queued",
        ClusterState::Pinning | ClusterState::Degraded => "pinning",
        ClusterState::Pinned => "pinned",
        ClusterState::Failed => "failed",
    }
}

pub(super) const STATUSES: [&str; 4] = ["queued", "pinning", "pinned", "failed"];

pub(super) fn to_service(
    s: &PinStatus,
    stamp: &Stamp,
    meta: &BTreeMap<String, String>,
    delegates: &[String],
) -> ServicePinStatus {
    let mut info = BTreeMap::new();
    if let Some(e) = &s.error {
        info.insert("error".to_owned(), e.clone());
    }
    info.insert("holders".to_owned(), s.pinned.to_string());
    info.insert(
        "replication".to_owned(),
        format!("{}/{}", s.pinned, s.replication_max),
    );
    ServicePinStatus {
        requestid: request_id(&s.cid, stamp),
        status: service_status(s.status),
        created: rfc3339(stamp.time),
        pin: json!({"cid": s.cid, "name": s.name, "meta": meta}),
        delegates: delegates.iter().take(MAX_DELEGATES).cloned().collect(),
        info,
    }
}
