//! The operator's Prometheus series, in one registry passed around (no globals): reconciles
//! per controller, failures per controller and error category, and reconcile durations
//! (recorded by a guard on drop, so early returns are timed too).

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub controller: &'static str,
    pub error: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<ControllerLabel, Counter>,
    failures: Family<ErrorLabel, Counter>,
    durations: Family<ControllerLabel, Histogram>,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            failures: Family::default(),
            durations: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
        };
        let r = registry.sub_registry_with_prefix("distribute_operator");
        r.register("reconciles", "Reconciles run", m.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconciles that failed, by error category",
            m.failures.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            m.durations.clone(),
        );
        m
    }

    /// Counts a reconcile and times it until the guard drops.
    pub fn reconcile(&self, controller: &'static str) -> ReconcileTimer {
        self.reconciles
            .get_or_create(&ControllerLabel { controller })
            .inc();
        ReconcileTimer {
            histogram: self
                .durations
                .get_or_create(&ControllerLabel { controller })
                .clone(),
            start: Instant::now(),
        }
    }

    pub fn failure(&self, controller: &'static str, error: &'static str) {
        self.failures
            .get_or_create(&ErrorLabel { controller, error })
            .inc();
    }
}

pub struct ReconcileTimer {
    histogram: Histogram,
    start: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_show_up_in_the_exposition() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        drop(m.reconcile("pin"));
        m.failure("pin", "node_api");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("distribute_operator_reconciles_total{controller=\"pin\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("distribute_operator_reconcile_errors_total{controller=\"pin\",error=\"node_api\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "distribute_operator_reconcile_duration_seconds_count{controller=\"pin\"} 1"
            ),
            "{text}"
        );
    }
}
