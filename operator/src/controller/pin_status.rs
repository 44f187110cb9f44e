//! Pure: a Pin's status from the cluster's view of its CID (per-holder states, holders
//! pinned, size, error), with holders' peer IDs mapped to pod names; and the statuses for the
//! cases where the cluster cannot be asked (invalid CID, missing cluster, no node yet).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::conditions::{ConditionUpdate, set};
use crate::crd::{Holder, HolderState, PinPhase, PinStatus};
use crate::nodeapi;

pub fn phase_of(status: &str) -> PinPhase {
    match status {
        "pinned" => PinPhase::Pinned,
        "pinning" => PinPhase::Pinning,
        "degraded" => PinPhase::Degraded,
        "failed" => PinPhase::Failed,
        _ => PinPhase::Queued,
    }
}

fn holder_state(state: &str) -> HolderState {
    match state {
        "pinned" => HolderState::Pinned,
        "pinning" => HolderState::Pinning,
        "failed" => HolderState::Failed,
        "unpinning" => HolderState::Unpinning,
        _ => HolderState::Queued,
    }
}

/// The status mirroring the cluster's `s`; `target` is the replication the Pin asks for.
pub fn from_cluster(
    s: &nodeapi::PinStatus,
    target: i32,
    pods_by_peer: &BTreeMap<String, String>,
    generation: Option<i64>,
    previous: &[Condition],
    now: &Time,
) -> PinStatus {
    let phase = phase_of(&s.status);
    let holders: Vec<Holder> = s
        .peers
        .iter()
        .map(|p| Holder {
            pod: pods_by_peer.get(&p.peer_id).cloned(),
            peer_id: p.peer_id.clone(),
            state: holder_state(&p.state),
            error: p.error.clone(),
        })
        .collect();
    let pinned = i32::try_from(s.pinned).unwrap_or(i32::MAX);
    let last_error = s
        .error
        .clone()
        .or_else(|| s.peers.iter().find_map(|p| p.error.clone()));
    let mut conditions = previous.to_vec();
    set(
        &mut conditions,
        ConditionUpdate {
            type_: "Ready",
            status: phase == PinPhase::Pinned,
            reason: phase.as_str(),
            message: format!("{pinned} of {target} holders have the content"),
        },
        generation,
        now,
    );
    set(
        &mut conditions,
        ConditionUpdate {
            type_: "Degraded",
            status: phase == PinPhase::Degraded,
            reason: if phase == PinPhase::Degraded {
                "BelowTarget"
            } else {
                "AtTarget"
            },
            message: format!("{pinned} of {target} holders pinned"),
        },
        generation,
        now,
    );
    PinStatus {
        observed_generation: generation,
        phase: Some(phase),
        replicas: format!("{pinned}/{target}"),
        pinned,
        target,
        holders,
        size: s.size.and_then(|n| i64::try_from(n).ok()),
        conditions,
        last_error,
    }
}

/// A status the cluster did not produce: Failed (invalid spec, missing cluster) or Queued
/// (waiting for a node), with the reason as the Ready condition.
pub fn local(
    phase: PinPhase,
    reason: &str,
    message: String,
    target: i32,
    generation: Option<i64>,
    previous: &PinStatus,
    now: &Time,
) -> PinStatus {
    let mut conditions = previous.conditions.clone();
    set(
        &mut conditions,
        ConditionUpdate {
            type_: "Ready",
            status: false,
            reason,
            message: message.clone(),
        },
        generation,
        now,
    );
    PinStatus {
        observed_generation: generation,
        phase: Some(phase),
        replicas: format!("{}/{target}", previous.pinned),
        pinned: previous.pinned,
        target,
        holders: previous.holders.clone(),
        size: previous.size,
        conditions,
        last_error: (phase == PinPhase::Failed)
            .then_some(message)
            .or(previous.last_error.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::conditions::is_true;
    use k8s_openapi::jiff::Timestamp;

    fn now() -> Time {
        Time(Timestamp::from_second(5).unwrap())
    }

    fn node_status(status: &str, pinned: i64, peers: &[(&str, &str)]) -> nodeapi::PinStatus {
        serde_json::from_value(serde_json::json!({
            "Cid": "Qm1", "Status": status, "Pinned": pinned, "Size": 42,
            "Peers": peers.iter().map(|(p, s)| serde_json::json!({"PeerId": p, "State": s})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn mirrors_holders_and_counts() {
        let pods = BTreeMap::from([("p1".to_string(), "s-0".to_string())]);
        let s = from_cluster(
            &node_status(
                "pinning",
                2,
                &[("p1", "pinned"), ("p2", "pinned"), ("p3", "pinning")],
            ),
            3,
            &pods,
            Some(1),
            &[],
            &now(),
        );
        assert_eq!(
            (s.phase, s.replicas.as_str(), s.size),
            (Some(PinPhase::Pinning), "2/3", Some(42))
        );
        assert_eq!(s.holders[0].pod.as_deref(), Some("s-0"));
        assert_eq!(s.holders[1].pod, None);
        assert_eq!(s.holders[2].state, HolderState::Pinning);
        assert!(!is_true(&s.conditions, "Ready"));
        let done = from_cluster(
            &node_status("pinned", 3, &[]),
            3,
            &pods,
            Some(1),
            &s.conditions,
            &now(),
        );
        assert_eq!(
            (done.phase, done.replicas.as_str()),
            (Some(PinPhase::Pinned), "3/3")
        );
        assert!(is_true(&done.conditions, "Ready"));
        let degraded = from_cluster(
            &node_status("degraded", 2, &[]),
            3,
            &pods,
            Some(1),
            &[],
            &now(),
        );
        assert!(is_true(&degraded.conditions, "Degraded"));
    }

    #[test]
    fn local_failure_keeps_what_was_known() {
        let prev = PinStatus {
            pinned: 2,
            ..Default::default()
        };
        let s = local(
            PinPhase::Failed,
            "ClusterNotFound",
            "no StorageCluster x".into(),
            3,
            Some(4),
            &prev,
            &now(),
        );
        assert_eq!(
            (s.phase, s.replicas.as_str()),
            (Some(PinPhase::Failed), "2/3")
        );
        assert_eq!(s.last_error.as_deref(), Some("no StorageCluster x"));
        assert_eq!(s.conditions[0].reason, "ClusterNotFound");
        assert_eq!(phase_of("weird"), PinPhase::Queued);
    }
}
