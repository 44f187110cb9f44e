//! Which peers should hold a pin: computed the same way on every node from the pin and the
//! candidate peers, so nobody has to be asked who holds what.
//!
//! Weighted rendezvous hashing: each candidate scores `-w / ln(u)` where `u ∈ (0,1)` comes
//! from SHA-256(cid, peer) and `w` grows with the peer's free space in coarse (power of two)
//! buckets, so small changes in free space do not move pins around. The best scores win,
//! first one per zone (so copies spread across `--zone` labels), then the rest by score.
//! Adding or removing one peer moves only the pins that peer wins or loses.
//!
//! A pin may name an origin: the peer that wrote it while holding the whole DAG (the pin's
//! size is known only then). When the origin is a candidate it is chosen first, whatever its
//! score, so the copy that already exists counts as one of the replicas and the cluster
//! transfers `replication - 1` copies instead of `replication`.
//!
//! Which peers are candidates (alive or within the re-replication grace period, not leaving,
//! not drained) is decided by the caller; this module is pure.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

/// A peer that may be given pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub peer: String,
    pub zone: Option<String>,
    pub free_space: u64,
}

/// Weight of a peer: 1 + log2(free GiB + 1), so a peer with 1 TiB free gets about 11× the
/// pins of one with none to spare, and free space must double to change the weight.
fn weight(free_space: u64) -> f64 {
    let gib = free_space >> 30;
    f64::from(1 + (u64::BITS - gib.leading_zeros()))
}

/// Rendezvous score of `peer` for `cid`; larger wins.
fn score(cid: &str, c: &Candidate) -> f64 {
    let mut hash = Sha256::new();
    hash.update(cid.as_bytes());
    hash.update([0]);
    hash.update(c.peer.as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 random bits, offset by half a step: strictly inside (0, 1).
    let bits = u64::from_be_bytes(first) >> 11;
    #[allow(clippy::cast_precision_loss)]
    let u = (bits as f64 + 0.5) / (1u64 << 53) as f64;
    -weight(c.free_space) / u.ln()
}

/// The peers that should hold `cid`, best first: up to `want` of `candidates`, starting
/// with `origin` when it is one of them.
pub fn allocate(
    cid: &str,
    want: usize,
    candidates: &[Candidate],
    origin: Option<&str>,
) -> Vec<String> {
    let mut ranked: Vec<(f64, &Candidate)> = candidates
        .iter()
        .map(|c| {
            let s = if Some(c.peer.as_str()) == origin {
                f64::INFINITY
            } else {
                score(cid, c)
            };
            (s, c)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.peer.cmp(&b.1.peer)));
    // `want` comes from a pin's replication-max, which any member or API caller may set to
    // u32::MAX: size the vector by the peers there are, not by what is asked.
    let mut chosen: Vec<(f64, &Candidate)> = Vec::with_capacity(want.min(ranked.len()));
    let mut zones: HashSet<Option<&str>> = HashSet::new();
    // First pass: the best peer of each zone not yet used.
    for &(s, c) in &ranked {
        if chosen.len() == want {
            break;
        }
        if zones.insert(c.zone.as_deref()) {
            chosen.push((s, c));
        }
    }
    // Second pass: fill up by score.
    for &(s, c) in &ranked {
        if chosen.len() == want {
            break;
        }
        if !chosen.iter().any(|x| x.1.peer == c.peer) {
            chosen.push((s, c));
        }
    }
    chosen.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.peer.cmp(&b.1.peer)));
    chosen.into_iter().map(|(_, c)| c.peer.clone()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peers(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                peer: format!("peer{i}"),
                zone: None,
                free_space: 100 << 30,
            })
            .collect()
    }

    #[test]
    fn picks_want_distinct_peers_or_all_there_are() {
        let c = peers(5);
        let a = allocate("cid1", 3, &c, None);
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 3);
        assert_eq!(allocate("cid1", 7, &c, None).len(), 5);
        assert!(allocate("cid1", 3, &[], None).is_empty());
    }

    /// Reproduced with the `cluster_wire` fuzz target: a pin with `replication_max: u32::MAX`
    /// (`{"Update":{"pins":{"bafy":{..,"pin":{..,"replication_max":4294967295,..}}}}}`)
    /// made every node reserve room for four billion peers and abort on the allocation.
    #[test]
    fn a_huge_replication_max_allocates_the_peers_there_are() {
        let c = peers(3);
        assert_eq!(allocate("bafy", u32::MAX as usize, &c, None).len(), 3);
        assert_eq!(allocate("bafy", usize::MAX, &c, None).len(), 3);
        assert!(allocate("bafy", usize::MAX, &[], None).is_empty());
    }

    #[test]
    fn the_order_of_candidates_does_not_matter() {
        let mut c = peers(6);
        let a = allocate("x", 3, &c, None);
        c.reverse();
        assert_eq!(allocate("x", 3, &c, None), a);
    }

    #[test]
    fn copies_spread_across_zones_first() {
        let mut c = peers(6);
        for (i, p) in c.iter_mut().enumerate() {
            p.zone = Some(if i < 4 { "a" } else { "b" }.into());
        }
        for n in 0..50 {
            let a = allocate(&format!("cid{n}"), 2, &c, None);
            let zones: HashSet<_> = a
                .iter()
                .map(|p| c.iter().find(|x| &x.peer == p).unwrap().zone.clone())
                .collect();
            assert_eq!(zones.len(), 2, "{a:?}");
        }
    }

    #[test]
    fn load_is_spread_and_follows_free_space() {
        let mut c = peers(4);
        c[0].free_space = 4096 << 30; // weight 14 against 8
        let mut counts = std::collections::HashMap::new();
        for n in 0..2000 {
            for p in allocate(&format!("cid{n}"), 1, &c, None) {
                *counts.entry(p).or_insert(0) += 1;
            }
        }
        let big = counts["peer0"];
        for i in 1..4 {
            let small = counts[&format!("peer{i}")];
            assert!(small > 200, "{counts:?}");
            assert!(big > small, "{counts:?}");
        }
    }

    #[test]
    fn the_origin_is_chosen_first_when_it_is_a_candidate() {
        let mut c = peers(6);
        c[3].zone = Some("z".into());
        for n in 0..50 {
            let cid = format!("cid{n}");
            let plain = allocate(&cid, 3, &c, None);
            let outsider = c
                .iter()
                .find(|p| !plain.contains(&p.peer))
                .unwrap()
                .peer
                .clone();
            let with = allocate(&cid, 3, &c, Some(&outsider));
            assert_eq!(with.len(), 3);
            assert_eq!(with[0], outsider, "{with:?}");
            // The rest are the best of the others; an origin that is not a candidate (gone,
            // leaving, drained) changes nothing.
            assert!(
                with[1..].iter().all(|p| plain.contains(p)),
                "{with:?} vs {plain:?}"
            );
            assert_eq!(allocate(&cid, 3, &c, Some("nobody")), plain);
        }
    }

    proptest! {
        /// Removing a peer moves only the pins that peer held (minimal disruption).
        #[test]
        fn removing_a_peer_only_moves_its_own_pins(cid in "[a-z]{1,12}", gone in 0usize..6) {
            let c = peers(6);
            let before = allocate(&cid, 3, &c, None);
            let mut rest = c.clone();
            let removed = rest.remove(gone);
            let after = allocate(&cid, 3, &rest, None);
            let kept: Vec<_> = before.iter().filter(|p| **p != removed.peer).collect();
            for p in kept {
                prop_assert!(after.contains(p));
            }
        }
    }
}
