//! Gateway series in the node's one Prometheus registry: `gateway_requests_total{status}`
//! and the `gateway_request_duration_seconds` histogram. A [`RequestTimer`] taken when a
//! request arrives records both when the response head is ready.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

/// The gateway's series. Clones share the same values.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    pub requests: Family<StatusLabel, Counter>,
    pub duration: Histogram,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            // 0.5 ms … ~16 s
            duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        }
    }
}

impl GatewayMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "gateway_requests",
            "Gateway responses by HTTP status",
            m.requests.clone(),
        );
        registry.register(
            "gateway_request_duration_seconds",
            "Time from a gateway request to its response head",
            m.duration.clone(),
        );
        m
    }

    pub fn start(&self) -> RequestTimer<'_> {
        RequestTimer {
            metrics: self,
            start: Instant::now(),
        }
    }
}

/// Measures one request; [`RequestTimer::finish`] records its status and duration.
pub struct RequestTimer<'a> {
    metrics: &'a GatewayMetrics,
    start: Instant,
}

impl RequestTimer<'_> {
    pub fn finish(self, status: u16) {
        self.metrics
            .requests
            .get_or_create(&StatusLabel {
                status: status.to_string(),
            })
            .inc();
        self.metrics
            .duration
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exported_names() {
        let mut registry = Registry::default();
        let m = GatewayMetrics::register(&mut registry);
        m.start().finish(404);
        m.start().finish(200);
        m.start().finish(200);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("gateway_requests_total{status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("gateway_requests_total{status=\"404\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gateway_request_duration_seconds_count 3"),
            "{text}"
        );
    }
}
