//! Pinning Service API unit tests: timestamps, the status mapping, name matching and the
//! checked `GET /pins` filters. The HTTP behaviour is tested over a real cluster in
//! `tests/pinning_service.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::filter::{Filter, NameMatch, name_matches};
use super::*;
use crate::cluster::pinset::PinSpec;
use crate::cluster::status::ClusterState;

#[test]
fn timestamps_round_trip() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    for ms in [0, 951_782_400_000, 1_700_000_000_123, 4_102_444_799_999] {
        assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
    }
    let check = |text: &str, want: Option<u64>| assert_eq!(parse_rfc3339(text), want, "{text}");
    check("2023-11-14T22:13:20Z", Some(1_700_000_000_000));
    check("2023-11-14T23:13:20+01:00", Some(1_700_000_000_000));
    check("2023-11-14T22:13:20.5Z", Some(1_700_000_000_500));
    check("2023-11-14T22:13:20.123456789Z", Some(1_700_000_000_123));
    check("2023-11-14T22:13:20", None);
    check("2023-13-14T22:13:20Z", None);
    check("2023-11-14T22:13:20.Z", None);
    check("yesterday", None);
}

#[test]
fn statuses_map_onto_the_four_of_the_spec() {
    assert_eq!(service_status(ClusterState::Degraded), "pinning");
    assert_eq!(service_status(ClusterState::Failed), "failed");
    assert!(name_matches("My NFT", "my nft", NameMatch::IExact));
    assert!(name_matches("My NFT", "nf", NameMatch::IPartial));
    assert!(!name_matches("My NFT", "NF", NameMatch::Exact));
    assert!(name_matches("My NFT", "NF", NameMatch::Partial));
}

fn req(query: &[(&str, &str)]) -> ServiceRequest {
    ServiceRequest {
        method: "GET".into(),
        path: "/pins".into(),
        query: query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: Vec::new(),
    }
}

#[test]
fn filters_are_checked() {
    let bad = |q: &[(&str, &str)]| Filter::parse(&req(q)).unwrap_err().status;
    assert_eq!(bad(&[("limit", "0")]), 400);
    assert_eq!(bad(&[("limit", "1001")]), 400);
    assert_eq!(bad(&[("status", "done")]), 400);
    assert_eq!(bad(&[("match", "regex")]), 400);
    assert_eq!(bad(&[("cid", "nope")]), 400);
    assert_eq!(bad(&[("before", "today")]), 400);
    assert_eq!(bad(&[("meta", "[1]")]), 400);
    let f = Filter::parse(&req(&[])).unwrap();
    assert_eq!((f.statuses, f.limit), (vec!["pinned"], 10));
    let f = Filter::parse(&req(&[
        ("status", "queued,failed"),
        ("limit", "1000"),
        ("meta", r#"{"app":"x"}"#),
    ]))
    .unwrap();
    assert_eq!(f.statuses, vec!["queued", "failed"]);
    let spec = |name: &str, app: &str| PinSpec {
        name: name.into(),
        replication_min: 1,
        replication_max: 1,
        size: None,
        created_ms: 0,
        metadata: BTreeMap::from([("app".to_owned(), app.to_owned())]),
    };
    assert!(f.admits("c", &spec("n", "x"), 5));
    assert!(!f.admits("c", &spec("n", "y"), 5));
    let f = Filter::parse(&req(&[
        ("name", "nft"),
        ("match", "ipartial"),
        ("before", "1970-01-01T00:00:00.010Z"),
        ("after", "1970-01-01T00:00:00.002Z"),
    ]))
    .unwrap();
    assert!(f.admits("c", &spec("My NFT #1", "x"), 5));
    assert!(
        !f.admits("c", &spec("My NFT #1", "x"), 10),
        "before is strict"
    );
    assert!(
        !f.admits("c", &spec("My NFT #1", "x"), 2),
        "after is strict"
    );
    assert!(!f.admits("c", &spec("other", "x"), 5));
}
