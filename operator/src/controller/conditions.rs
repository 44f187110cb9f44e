//! Setting a status condition the Kubernetes way: the transition time only moves when the
//! condition's status changes, so repeated reconciles do not churn it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub struct ConditionUpdate<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
}

pub fn set(
    conditions: &mut Vec<Condition>,
    update: ConditionUpdate<'_>,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if update.status { "True" } else { "False" };
    let previous = conditions.iter().position(|c| c.type_ == update.type_);
    let transition = match previous.map(|i| &conditions[i]) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => now.clone(),
    };
    let condition = Condition {
        type_: update.type_.into(),
        status: status.into(),
        reason: update.reason.into(),
        message: update.message,
        observed_generation: generation,
        last_transition_time: transition,
    };
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn up(status: bool, reason: &str) -> ConditionUpdate<'_> {
        ConditionUpdate {
            type_: "Ready",
            status,
            reason,
            message: String::new(),
        }
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut c = Vec::new();
        set(&mut c, up(false, "A"), Some(1), &at(10));
        set(&mut c, up(false, "B"), Some(2), &at(20));
        assert_eq!(
            (
                c.len(),
                c[0].last_transition_time.clone(),
                c[0].reason.as_str()
            ),
            (1, at(10), "B")
        );
        set(&mut c, up(true, "C"), Some(2), &at(30));
        assert_eq!(c[0].last_transition_time, at(30));
        assert!(is_true(&c, "Ready"));
        assert!(!is_true(&c, "Degraded"));
    }
}
