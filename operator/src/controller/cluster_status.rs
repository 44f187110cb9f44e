//! Pure: the StorageCluster status from what one reconcile observed (StatefulSet counts,
//! cluster peers and pin counts from the node API, an ongoing drain): phase and the
//! Available / Progressing / Degraded conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::conditions::{ConditionUpdate, set};
use crate::crd::{DrainStatus, PeerState, StorageClusterPhase, StorageClusterStatus};

#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub generation: Option<i64>,
    pub desired_replicas: i32,
    pub replication_min: i32,
    /// Replicas the StatefulSet's status reports (pods that exist).
    pub replicas: i32,
    pub ready_replicas: i32,
    pub selector: String,
    /// `None` when no node answered.
    pub peers: Option<Vec<PeerState>>,
    /// (total, under-replicated) when a node answered.
    pub pins: Option<(i64, i64)>,
    pub drain: Option<DrainStatus>,
    /// Why the spec cannot be built, if it cannot.
    pub invalid: Option<String>,
}

pub fn cluster_status(o: &Observed, previous: &[Condition], now: &Time) -> StorageClusterStatus {
    let under = o.pins.map(|(_, u)| u).unwrap_or(0);
    let down = o
        .peers
        .iter()
        .flatten()
        .filter(|p| p.state == "down")
        .count();
    let progressing = o.drain.is_some()
        || o.replicas != o.desired_replicas
        || o.ready_replicas < o.desired_replicas;
    let needed = o.replication_min.min(o.desired_replicas).max(1);
    let available = o.invalid.is_none() && o.ready_replicas >= needed;
    let degraded = under > 0 || down > 0;
    let phase = if o.invalid.is_some() {
        StorageClusterPhase::Failed
    } else if o.drain.is_some() {
        StorageClusterPhase::Draining
    } else if o.ready_replicas == 0 && o.desired_replicas > 0 {
        StorageClusterPhase::Pending
    } else if progressing {
        StorageClusterPhase::Scaling
    } else if degraded {
        StorageClusterPhase::Degraded
    } else {
        StorageClusterPhase::Running
    };
    let mut conditions = previous.to_vec();
    let g = o.generation;
    set(
        &mut conditions,
        ConditionUpdate {
            type_: "Available",
            status: available,
            reason: match (&o.invalid, available) {
                (Some(_), _) => "InvalidSpec",
                (None, true) => "EnoughReplicasReady",
                (None, false) => "TooFewReplicasReady",
            },
            message: o.invalid.clone().unwrap_or_else(|| {
                format!(
                    "{} of {} node pods ready; {needed} needed",
                    o.ready_replicas, o.desired_replicas
                )
            }),
        },
        g,
        now,
    );
    set(
        &mut conditions,
        ConditionUpdate {
            type_: "Progressing",
            status: progressing,
            reason: if o.drain.is_some() {
                "Draining"
            } else if progressing {
                "Scaling"
            } else {
                "Stable"
            },
            message: match &o.drain {
                Some(d) => format!(
                    "draining {} before scaling to {}; {} pins still need their copy",
                    d.pods.join(", "),
                    d.target_replicas,
                    d.remaining
                ),
                None => format!("{} of {} pods exist", o.replicas, o.desired_replicas),
            },
        },
        g,
        now,
    );
    set(
        &mut conditions,
        ConditionUpdate {
            type_: "Degraded",
            status: degraded,
            reason: if under > 0 {
                "PinsUnderReplicated"
            } else if down > 0 {
                "PeersDown"
            } else {
                "AllReplicated"
            },
            message: format!("{under} pins under-replicated, {down} peers down"),
        },
        g,
        now,
    );
    StorageClusterStatus {
        observed_generation: g,
        replicas: o.replicas,
        ready_replicas: o.ready_replicas,
        ready: format!("{}/{}", o.ready_replicas, o.desired_replicas),
        selector: o.selector.clone(),
        phase: Some(phase),
        conditions,
        peers: o.peers.clone().unwrap_or_default(),
        pins_total: o.pins.map(|(t, _)| t).unwrap_or(0),
        pins_under_replicated: under,
        drain: o.drain.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::conditions::is_true;
    use k8s_openapi::jiff::Timestamp;

    fn now() -> Time {
        Time(Timestamp::from_second(1000).unwrap())
    }

    fn observed(ready: i32) -> Observed {
        Observed {
            generation: Some(2),
            desired_replicas: 3,
            replication_min: 2,
            replicas: 3,
            ready_replicas: ready,
            selector: "a=b".into(),
            pins: Some((5, 0)),
            ..Default::default()
        }
    }

    fn check(
        o: &Observed,
        phase: StorageClusterPhase,
        available: bool,
        progressing: bool,
        degraded: bool,
    ) {
        let s = cluster_status(o, &[], &now());
        assert_eq!(s.phase, Some(phase), "{o:?}");
        assert_eq!(is_true(&s.conditions, "Available"), available, "{o:?}");
        assert_eq!(is_true(&s.conditions, "Progressing"), progressing, "{o:?}");
        assert_eq!(is_true(&s.conditions, "Degraded"), degraded, "{o:?}");
    }

    #[test]
    fn phases_and_conditions() {
        use StorageClusterPhase::*;
        check(&observed(3), Running, true, false, false);
        check(&observed(0), Pending, false, true, false);
        check(&observed(2), Scaling, true, true, false);
        check(
            &Observed {
                pins: Some((5, 1)),
                ..observed(3)
            },
            Degraded,
            true,
            false,
            true,
        );
        let drain = DrainStatus {
            target_replicas: 1,
            pods: vec!["s-2".into()],
            remaining: 3,
        };
        check(
            &Observed {
                drain: Some(drain),
                ..observed(3)
            },
            Draining,
            true,
            true,
            false,
        );
        check(
            &Observed {
                invalid: Some("bad".into()),
                ..observed(3)
            },
            Failed,
            false,
            false,
            false,
        );
    }

    #[test]
    fn counts_are_reported() {
        let s = cluster_status(&observed(2), &[], &now());
        assert_eq!(
            (s.ready.as_str(), s.pins_total, s.observed_generation),
            ("2/3", 5, Some(2))
        );
        assert_eq!(s.selector, "a=b");
    }
}
