//! Cluster series, registered into the daemon's one registry when it runs in a cluster:
//! `fs_replication_factor{cid,kind="actual"|"target"}` per pin up to [`PER_CID_LIMIT`] pins,
//! past that one aggregated pair (`cid="_all"`: sums over every pin);
//! `fs_under_replicated_pins`; `fs_replication_bytes_pending` (bytes still to copy to reach
//! every pin's target, for pins whose size is known).

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::status::PinStatus;

/// Pins above which the replication factor is exported aggregated.
pub const PER_CID_LIMIT: usize = 100;

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, Default)]
pub struct ClusterMetrics {
    pub replication_factor: Family<Labels, Gauge>,
    pub under_replicated: Gauge,
    pub bytes_pending: Gauge,
}

fn labels(cid: &str, kind: &str) -> Labels {
    vec![("cid".into(), cid.into()), ("kind".into(), kind.into())]
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ClusterMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "fs_replication_factor",
            "Holders of a cluster pin (kind=actual) and its target (kind=target)",
            m.replication_factor.clone(),
        );
        registry.register(
            "fs_under_replicated_pins",
            "Cluster pins with fewer holders than their target",
            m.under_replicated.clone(),
        );
        registry.register(
            "fs_replication_bytes_pending",
            "Bytes still to copy for cluster pins to reach their targets",
            m.bytes_pending.clone(),
        );
        m
    }

    /// Start a refresh over `total` pins (their statuses are then [`Tally::add`]ed one by one,
    /// so thousands of pins never need a vector of statuses).
    pub fn begin(&self, total: usize) -> Tally {
        self.replication_factor.clear();
        Tally {
            per_cid: total <= PER_CID_LIMIT,
            ..Tally::default()
        }
    }

    /// Publish what `tally` counted.
    pub fn finish(&self, tally: Tally) {
        if !tally.per_cid {
            self.replication_factor
                .get_or_create(&labels("_all", "actual"))
                .set(gauge_value(tally.actual_sum));
            self.replication_factor
                .get_or_create(&labels("_all", "target"))
                .set(gauge_value(tally.target_sum));
        }
        self.under_replicated.set(gauge_value(tally.under));
        self.bytes_pending.set(gauge_value(tally.pending));
    }
}

/// A refresh in progress: sums over the statuses seen so far.
#[derive(Debug, Default)]
pub struct Tally {
    per_cid: bool,
    under: u64,
    pending: u64,
    actual_sum: u64,
    target_sum: u64,
}

impl Tally {
    /// Count one pin's status (and export its own pair when pins are few).
    pub fn add(&mut self, metrics: &ClusterMetrics, s: &PinStatus) {
        let target = u64::from(s.replication_max);
        let actual = u64::from(s.pinned);
        if actual < target {
            self.under += 1;
            self.pending = self
                .pending
                .saturating_add(s.size.unwrap_or(0).saturating_mul(target - actual));
        }
        self.actual_sum = self.actual_sum.saturating_add(actual);
        self.target_sum = self.target_sum.saturating_add(target);
        if self.per_cid {
            metrics
                .replication_factor
                .get_or_create(&labels(&s.cid, "actual"))
                .set(gauge_value(actual));
            metrics
                .replication_factor
                .get_or_create(&labels(&s.cid, "target"))
                .set(gauge_value(target));
        }
    }
}
