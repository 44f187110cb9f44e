//! Per-pin state: what one node reports about its own copy ([`LocalState`]), what the
//! cluster makes of all reports ([`aggregate`] → [`PinStatus`], the API's JSON shape), and the
//! rule that keeps a pin from dropping below its minimum while it moves ([`may_release`]).
//! Pure functions over plain data.

use serde::{Deserialize, Serialize};

use super::pinset::PinSpec;

/// One node's view of its own copy of a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalState {
    Queued,
    Pinning,
    Pinned,
    Failed,
    Unpinning,
}

/// Cluster-wide state of a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    Queued,
    Pinning,
    Pinned,
    Degraded,
    Failed,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Pinning => "pinning",
            Self::Pinned => "pinned",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
        }
    }
}

/// What a live peer says about its copy of one pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerReport {
    pub peer_id: String,
    pub state: LocalState,
    pub error: Option<String>,
}

/// One pin as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PinStatus {
    pub cid: String,
    pub name: String,
    pub replication_min: u32,
    pub replication_max: u32,
    pub size: Option<u64>,
    pub status: ClusterState,
    /// Live peers that report the pin pinned.
    pub pinned: u32,
    pub peers: Vec<PeerReport>,
    pub error: Option<String>,
}

fn count(reports: &[PeerReport], state: LocalState) -> usize {
    reports.iter().filter(|r| r.state == state).count()
}

/// The cluster's view of `cid`, from the peers it is allocated to and the reports of live
/// peers (allocated or still holding it).
pub fn aggregate(
    cid: &str,
    spec: &PinSpec,
    allocation: &[String],
    reports: &[PeerReport],
) -> PinStatus {
    let mut peers: Vec<PeerReport> = allocation
        .iter()
        .map(|peer| {
            reports
                .iter()
                .find(|r| &r.peer_id == peer)
                .cloned()
                .unwrap_or(PeerReport {
                    peer_id: peer.clone(),
                    state: LocalState::Queued,
                    error: None,
                })
        })
        .collect();
    // Holders outside the allocation (a copy about to be released) are shown too.
    for r in reports {
        if !allocation.contains(&r.peer_id) && r.state != LocalState::Queued {
            peers.push(r.clone());
        }
    }
    let pinned = count(&peers, LocalState::Pinned);
    let min = spec.replication_min as usize;
    let all_allocated_pinned = allocation.iter().all(|p| {
        peers
            .iter()
            .any(|r| &r.peer_id == p && r.state == LocalState::Pinned)
    });
    let (status, error) = if allocation.len() < min {
        let error = format!(
            "replication-min {min} is more than the {} cluster peers that can hold pins; {} hold it",
            allocation.len(),
            pinned
        );
        (ClusterState::Failed, Some(error))
    } else if pinned >= min && all_allocated_pinned {
        (ClusterState::Pinned, None)
    } else if count(&peers, LocalState::Pinning) > 0 {
        (ClusterState::Pinning, None)
    } else if let Some(failed) = peers.iter().find(|r| r.state == LocalState::Failed) {
        let error = failed
            .error
            .clone()
            .unwrap_or_else(|| "pinning failed".into());
        let status = if pinned > 0 {
            ClusterState::Degraded
        } else {
            ClusterState::Failed
        };
        (status, Some(format!("{}: {error}", failed.peer_id)))
    } else if pinned > 0 {
        (ClusterState::Degraded, None)
    } else {
        (ClusterState::Queued, None)
    };
    PinStatus {
        cid: cid.to_owned(),
        name: spec.name.clone(),
        replication_min: spec.replication_min,
        replication_max: spec.replication_max,
        size: spec.size,
        status,
        pinned: u32::try_from(pinned).unwrap_or(u32::MAX),
        peers,
        error,
    }
}

/// Whether `me`, which holds a pin it is no longer allocated, may drop its copy: only when
/// the allocation meets the minimum and every allocated peer reports the pin pinned.
pub fn may_release(
    me: &str,
    spec: &PinSpec,
    allocation: &[String],
    reports: &[PeerReport],
) -> bool {
    !allocation.iter().any(|p| p == me)
        && allocation.len() >= spec.replication_min as usize
        && all_pinned(allocation, reports)
}

/// Whether a leaving `me` has nothing left to wait for on this pin: every peer of the
/// allocation made without it reports the pin pinned, and that allocation meets the minimum
/// or already takes all `candidates` (the other live members) — a pin asking for more copies
/// than the cluster has gains nothing from the leaver waiting.
pub fn may_leave(
    me: &str,
    spec: &PinSpec,
    allocation: &[String],
    reports: &[PeerReport],
    candidates: usize,
) -> bool {
    let enough = allocation.len() >= spec.replication_min as usize
        || (!allocation.is_empty() && allocation.len() >= candidates);
    !allocation.iter().any(|p| p == me) && enough && all_pinned(allocation, reports)
}

fn all_pinned(allocation: &[String], reports: &[PeerReport]) -> bool {
    allocation.iter().all(|p| {
        reports
            .iter()
            .any(|r| &r.peer_id == p && r.state == LocalState::Pinned)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn spec(min: u32, max: u32) -> PinSpec {
        PinSpec {
            name: String::new(),
            replication_min: min,
            replication_max: max,
            size: Some(10),
            created_ms: 0,
            metadata: Default::default(),
        }
    }

    fn rep(peer: &str, state: LocalState) -> PeerReport {
        PeerReport {
            peer_id: peer.into(),
            state,
            error: (state == LocalState::Failed).then(|| "no provider".into()),
        }
    }

    fn alloc(peers: &[&str]) -> Vec<String> {
        peers.iter().map(|p| (*p).to_owned()).collect()
    }

    use LocalState::{Failed, Pinned, Pinning, Queued, Unpinning};

    /// (allocation, reports, expected status, expected pinned count)
    fn check(a: &[&str], reports: &[(&str, LocalState)], want: ClusterState, pinned: u32) {
        let reports: Vec<_> = reports.iter().map(|(p, s)| rep(p, *s)).collect();
        let s = aggregate("cid", &spec(2, 3), &alloc(a), &reports);
        assert_eq!(
            (s.status, s.pinned),
            (want, pinned),
            "{a:?} {reports:?} → {s:?}"
        );
    }

    #[test]
    fn aggregation_table() {
        check(&["a", "b", "c"], &[], ClusterState::Queued, 0);
        check(
            &["a", "b", "c"],
            &[("a", Pinning)],
            ClusterState::Pinning,
            0,
        );
        check(
            &["a", "b", "c"],
            &[("a", Pinned), ("b", Pinned), ("c", Pinned)],
            ClusterState::Pinned,
            3,
        );
        // A holder that moved away still counts until it releases.
        check(
            &["a", "b", "c"],
            &[("a", Pinned), ("b", Pinned), ("c", Pinning), ("d", Pinned)],
            ClusterState::Pinning,
            3,
        );
        check(
            &["a", "b", "c"],
            &[("a", Pinned), ("b", Pinned)],
            ClusterState::Degraded,
            2,
        );
        check(&["a", "b", "c"], &[("a", Failed)], ClusterState::Failed, 0);
        check(
            &["a", "b", "c"],
            &[("a", Failed), ("b", Pinned)],
            ClusterState::Degraded,
            1,
        );
        check(&["a"], &[("a", Pinned)], ClusterState::Failed, 1);
        check(
            &["a", "b", "c"],
            &[("d", Queued), ("e", Unpinning)],
            ClusterState::Queued,
            0,
        );
    }

    #[test]
    fn too_few_peers_is_failed_with_a_reason() {
        let s = aggregate("cid", &spec(7, 7), &alloc(&["a", "b"]), &[rep("a", Pinned)]);
        assert_eq!(s.status, ClusterState::Failed);
        assert!(s.error.unwrap().contains("replication-min 7"));
    }

    #[test]
    fn release_waits_for_every_new_holder() {
        let s = spec(2, 3);
        let a = alloc(&["a", "b", "c"]);
        let mut reports = vec![rep("a", Pinned), rep("b", Pinned), rep("c", Pinning)];
        assert!(!may_release("d", &s, &a, &reports));
        reports[2] = rep("c", Pinned);
        assert!(may_release("d", &s, &a, &reports));
        assert!(
            !may_release("a", &s, &a, &reports),
            "allocated peers never release"
        );
        // An allocation below the minimum (cluster shrank) never releases a copy.
        assert!(!may_release("d", &s, &alloc(&["a"]), &reports));
    }

    #[test]
    fn a_leaver_waits_for_the_minimum_or_for_every_other_member() {
        let s = spec(3, 5);
        let reports = vec![rep("a", Pinned), rep("b", Pinning)];
        // Two other members, both allocated: done once both report pinned, below the minimum
        // or not, since nobody else could take a copy.
        assert!(!may_leave("d", &s, &alloc(&["a", "b"]), &reports, 2));
        let both = vec![rep("a", Pinned), rep("b", Pinned)];
        assert!(may_leave("d", &s, &alloc(&["a", "b"]), &both, 2));
        // A third member exists but is not allocated (yet): wait.
        assert!(!may_leave("d", &s, &alloc(&["a", "b"]), &both, 3));
        // Nobody to hand over to: never done by itself (the caller reports it).
        assert!(!may_leave("d", &s, &[], &both, 0));
        assert!(!may_leave("a", &s, &alloc(&["a", "b"]), &both, 2));
    }

    #[test]
    fn json_shape_matches_the_api_contract() {
        let s = aggregate("cid", &spec(2, 3), &alloc(&["a"]), &[rep("a", Failed)]);
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "Cid",
            "Name",
            "ReplicationMin",
            "ReplicationMax",
            "Size",
            "Status",
            "Pinned",
            "Peers",
            "Error",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["Status"], "failed");
        assert_eq!(v["Peers"][0]["State"], "failed");
        assert_eq!(v["Peers"][0]["PeerId"], "a");
    }
}
