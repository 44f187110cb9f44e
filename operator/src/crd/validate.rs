//! Pure checks of the specs, before the operator builds or calls anything: the CID of a Pin
//! (`ipfs://` and `/ipfs/` forms accepted, paths refused), its replication bounds, and the
//! StorageCluster fields the builders rely on. Errors name the field and what to do.

use cid::Cid;

use super::{PinSpec, ReplicationSpec, StorageClusterSpec};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    #[error("spec.cid {input:?} is not a CID: {reason}")]
    InvalidCid { input: String, reason: String },
    #[error("spec.cid {input:?} has a path; a Pin takes a root CID only")]
    CidWithPath { input: String },
    #[error("spec.replicas and spec.replicationMin/replicationMax are exclusive; set one")]
    ReplicasAndBounds,
    #[error("replication min {min} is above max {max}")]
    MinAboveMax { min: i32, max: i32 },
    #[error("{field} must be at least {at_least}, got {got}")]
    TooSmall {
        field: &'static str,
        at_least: i64,
        got: i64,
    },
    #[error("spec.autoscaling.minReplicas {min} is above maxReplicas {max}")]
    AutoscalingBounds { min: i32, max: i32 },
}

/// Parses a Pin's CID: a bare CID, `ipfs://CID` or `/ipfs/CID` (a trailing `/` is allowed).
pub fn parse_cid(input: &str) -> Result<Cid, SpecError> {
    let trimmed = input.trim();
    let rest = trimmed
        .strip_prefix("ipfs://")
        .or_else(|| trimmed.strip_prefix("/ipfs/"))
        .unwrap_or(trimmed);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(SpecError::CidWithPath {
            input: input.to_string(),
        });
    }
    Cid::try_from(rest).map_err(|e| SpecError::InvalidCid {
        input: input.to_string(),
        reason: e.to_string(),
    })
}

/// The replication a Pin asks for, resolved against its cluster's defaults.
pub fn pin_replication(
    spec: &PinSpec,
    defaults: ReplicationSpec,
) -> Result<ReplicationSpec, SpecError> {
    let bounds = match (spec.replicas, spec.replication_min, spec.replication_max) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(SpecError::ReplicasAndBounds),
        (Some(n), None, None) => ReplicationSpec { min: n, max: n },
        (None, min, max) => {
            let max = max.unwrap_or(defaults.max.max(min.unwrap_or(0)));
            ReplicationSpec {
                min: min.unwrap_or(defaults.min.min(max)),
                max,
            }
        }
    };
    check_replication(bounds, "spec.replicationMin")?;
    Ok(bounds)
}

fn check_replication(r: ReplicationSpec, min_field: &'static str) -> Result<(), SpecError> {
    if r.min < 1 {
        return Err(SpecError::TooSmall {
            field: min_field,
            at_least: 1,
            got: r.min.into(),
        });
    }
    if r.min > r.max {
        return Err(SpecError::MinAboveMax {
            min: r.min,
            max: r.max,
        });
    }
    Ok(())
}

/// Checks a StorageCluster spec before the builders use it.
pub fn check_cluster(spec: &StorageClusterSpec) -> Result<(), SpecError> {
    if spec.replicas < 0 {
        return Err(SpecError::TooSmall {
            field: "spec.replicas",
            at_least: 0,
            got: spec.replicas.into(),
        });
    }
    check_replication(spec.replication, "spec.replication.min")?;
    let a = spec.autoscaling;
    if a.enabled && a.min_replicas > a.max_replicas {
        return Err(SpecError::AutoscalingBounds {
            min: a.min_replicas,
            max: a.max_replicas,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V0: &str = "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u";
    const V1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

    fn check(input: &str, expected: Result<&str, &str>) {
        match (parse_cid(input), expected) {
            (Ok(cid), Ok(want)) => assert_eq!(cid.to_string(), want, "{input}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{input}: {e}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn cid_forms() {
        check(V0, Ok(V0));
        check(V1, Ok(V1));
        check(&format!("ipfs://{V1}"), Ok(V1));
        check(&format!("/ipfs/{V0}/"), Ok(V0));
        check(&format!(" {V0} "), Ok(V0));
        check(&format!("ipfs://{V1}/img.png"), Err("has a path"));
        check("QmNotACid", Err("is not a CID"));
        check("", Err("is not a CID"));
        check("ipfs://", Err("is not a CID"));
    }

    fn pin(replicas: Option<i32>, min: Option<i32>, max: Option<i32>) -> PinSpec {
        PinSpec {
            cid: V0.into(),
            cluster: "c".into(),
            replicas,
            replication_min: min,
            replication_max: max,
            name: None,
            metadata: Default::default(),
        }
    }

    #[test]
    fn replication_resolution() {
        let d = ReplicationSpec { min: 2, max: 3 };
        let r = |min, max| Ok(ReplicationSpec { min, max });
        assert_eq!(pin_replication(&pin(None, None, None), d), r(2, 3));
        assert_eq!(pin_replication(&pin(Some(4), None, None), d), r(4, 4));
        assert_eq!(pin_replication(&pin(None, Some(1), None), d), r(1, 3));
        assert_eq!(pin_replication(&pin(None, None, Some(1)), d), r(1, 1));
        assert_eq!(pin_replication(&pin(None, Some(5), None), d), r(5, 5));
        assert_eq!(
            pin_replication(&pin(Some(2), Some(1), None), d),
            Err(SpecError::ReplicasAndBounds)
        );
        assert_eq!(
            pin_replication(&pin(None, Some(3), Some(2)), d),
            Err(SpecError::MinAboveMax { min: 3, max: 2 })
        );
        assert!(pin_replication(&pin(Some(0), None, None), d).is_err());
    }
}
