//! Prometheus metrics of the node: one [`Metrics`] value registered into one
//! `prometheus_client` registry that the daemon creates and passes down (no globals). The
//! network task, the bitswap service and the daemon each update their own series; the
//! daemon's HTTP responder renders the registry at `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Every series the node exports. Clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Blocks in the local store (sampled).
    pub blocks: Gauge,
    /// CIDs our bitswap sessions are fetching right now.
    pub wantlist_size: Gauge,
    pub routing_table_size: Gauge,
    pub blocks_sent: Counter,
    pub blocks_received: Counter,
    /// Blocks dropped because they hash to a CID we did not ask that peer for.
    pub blocks_rejected: Counter,
    pub connected_peers: Gauge,
}

impl Metrics {
    /// Create the series and register them under their exported names.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "distribute_blocks_total",
            "Blocks in the local store",
            m.blocks.clone(),
        );
        registry.register(
            "distribute_wantlist_size",
            "CIDs being fetched over bitswap",
            m.wantlist_size.clone(),
        );
        registry.register(
            "dht_routing_table_size",
            "Peers in the Kademlia routing table",
            m.routing_table_size.clone(),
        );
        registry.register(
            "bitswap_blocks_sent",
            "Blocks sent to bitswap peers",
            m.blocks_sent.clone(),
        );
        registry.register(
            "bitswap_blocks_received",
            "Blocks received from bitswap peers",
            m.blocks_received.clone(),
        );
        registry.register(
            "bitswap_blocks_rejected",
            "Blocks dropped because they hash to a CID not asked of that peer (corrupt or junk)",
            m.blocks_rejected.clone(),
        );
        registry.register(
            "distribute_connected_peers",
            "Peers with an open connection",
            m.connected_peers.clone(),
        );
        m
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_text_format() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.blocks_sent.inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for name in [
            "distribute_blocks_total",
            "distribute_wantlist_size",
            "dht_routing_table_size",
            "bitswap_blocks_sent_total 1",
            "bitswap_blocks_received_total",
            "bitswap_blocks_rejected_total",
            "distribute_connected_peers",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
