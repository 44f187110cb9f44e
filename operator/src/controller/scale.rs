//! Pure planning of a StatefulSet's replica count. Scaling out applies at once. Scaling in
//! first drains the pods that will go (the highest ordinals) through the cluster API, and only
//! lowers the StatefulSet once every leaving pod's drain is `Done`, so no pin drops below its
//! minimum. A leaving pod that is not running (its peer cannot be asked) counts as drained
//! only when the cluster reports no under-replicated pin.

use crate::crd::DrainStatus;

/// What became of one leaving pod's drain this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    Done,
    /// Pins still needing a copy from this pod.
    Remaining(i64),
    /// The pod could not be asked (not running, or its node did not answer).
    Unknown,
}

/// The ordinals a scale from `current` to `desired` removes, highest first.
pub fn leaving(desired: i32, current: i32) -> Vec<i32> {
    (desired.max(0)..current).rev().collect()
}

/// The StatefulSet replica count to apply now, and the drain to report.
///
/// `outcomes` has one entry per ordinal of [`leaving`]; `pins_safe` says the cluster has no
/// pin below its minimum.
pub fn replicas_now(
    desired: i32,
    current: Option<i32>,
    outcomes: &[(String, DrainOutcome)],
    pins_safe: bool,
) -> (i32, Option<DrainStatus>) {
    let Some(current) = current.filter(|c| *c > desired) else {
        return (desired, None);
    };
    let drained = outcomes.iter().all(|(_, o)| match o {
        DrainOutcome::Done => true,
        DrainOutcome::Remaining(_) => false,
        DrainOutcome::Unknown => pins_safe,
    });
    if drained && outcomes.len() == leaving(desired, current).len() {
        return (desired, None);
    }
    let remaining = outcomes
        .iter()
        .map(|(_, o)| match o {
            DrainOutcome::Remaining(n) => *n,
            _ => 0,
        })
        .sum();
    let status = DrainStatus {
        target_replicas: desired,
        pods: outcomes.iter().map(|(p, _)| p.clone()).collect(),
        remaining,
    };
    (current, Some(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DrainOutcome::*;

    fn o(list: &[(&str, DrainOutcome)]) -> Vec<(String, DrainOutcome)> {
        list.iter()
            .map(|(p, d)| (p.to_string(), d.clone()))
            .collect()
    }

    #[test]
    fn leaving_ordinals_are_the_highest() {
        assert_eq!(leaving(2, 5), [4, 3, 2]);
        assert_eq!(leaving(3, 3), Vec::<i32>::new());
        assert_eq!(leaving(0, 1), [0]);
    }

    #[test]
    fn scale_out_and_first_creation_apply_at_once() {
        assert_eq!(replicas_now(3, None, &[], false), (3, None));
        assert_eq!(replicas_now(5, Some(3), &[], false), (5, None));
        assert_eq!(replicas_now(3, Some(3), &[], false), (3, None));
    }

    #[test]
    fn scale_in_waits_for_every_drain() {
        let (n, drain) = replicas_now(
            1,
            Some(3),
            &o(&[("s-2", Done), ("s-1", Remaining(4))]),
            true,
        );
        assert_eq!(n, 3);
        let drain = drain.unwrap();
        assert_eq!((drain.target_replicas, drain.remaining), (1, 4));
        assert_eq!(drain.pods, ["s-2", "s-1"]);
        assert_eq!(
            replicas_now(1, Some(3), &o(&[("s-2", Done), ("s-1", Done)]), false),
            (1, None)
        );
    }

    #[test]
    fn a_pod_that_cannot_be_asked_needs_a_safe_pinset() {
        let outcomes = o(&[("s-2", Unknown)]);
        assert_eq!(replicas_now(2, Some(3), &outcomes, false).0, 3);
        assert_eq!(replicas_now(2, Some(3), &outcomes, true), (2, None));
    }

    #[test]
    fn missing_outcomes_never_lower_the_count() {
        assert_eq!(replicas_now(1, Some(3), &o(&[("s-2", Done)]), true).0, 3);
    }
}
