//! `pin add|rm|ls` on the repository's local pins, with Kubo's result shapes:
//! `{"Pins":[cid…]}` for add and rm, one [`PinEntry`] (`{"Cid","Type","Name"}`) per listed
//! pin for ls (the API streams them as NDJSON or folds them into `{"Keys":{cid:{"Type"}}}`).

use std::collections::HashSet;

use cid::Cid;
use serde::{Deserialize, Serialize};

use super::OpError;
use crate::repo::Repo;
use crate::store::pins::{PinMode, PinStatus};
use crate::store::walk::walk_dag_present;

/// The answer of `pin/add` and `pin/rm`: the CIDs whose pins changed, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PinsChanged {
    pub pins: Vec<String>,
}

/// One line of `pin/ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PinEntry {
    pub cid: String,
    /// `recursive`, `direct`, `indirect`, or `indirect through <cid>` when asked about a CID.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// Which pins `pin/ls` lists (Kubo's `type` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinFilter {
    All,
    Recursive,
    Direct,
    Indirect,
}

impl std::str::FromStr for PinFilter {
    type Err = OpError;

    fn from_str(s: &str) -> Result<Self, OpError> {
        match s {
            "all" => Ok(Self::All),
            "recursive" => Ok(Self::Recursive),
            "direct" => Ok(Self::Direct),
            "indirect" => Ok(Self::Indirect),
            other => Err(OpError::Invalid(format!(
                "invalid pin type {other:?}; use all, recursive, direct or indirect"
            ))),
        }
    }
}

/// Pin `cids` (every DAG must be complete in the repository when `recursive`). Completeness
/// is presence, as Kubo checks it with `HashOnRead` off: the blocks are not re-hashed here
/// (through the daemon they were verified as they were fetched a moment before), damage on
/// disk is the verify and scrub passes' to find, and every read that serves a block checks it.
pub fn add(repo: &Repo, cids: &[Cid], recursive: bool) -> Result<PinsChanged, OpError> {
    for cid in cids {
        if recursive {
            let report = walk_dag_present(repo.blocks(), cid, &mut HashSet::new(), |_| true)?;
            if let Some(missing) = report.missing.first() {
                return Err(OpError::Refused(format!(
                    "cannot pin {cid}: block {missing} of its DAG is not in the repository ({} missing); add or import the content first",
                    report.missing.len()
                )));
            }
            if let Some((bad, e)) = report.undecodable.first() {
                return Err(OpError::Refused(format!(
                    "cannot pin {cid}: block {bad} cannot be decoded: {e}"
                )));
            }
        } else if !repo.blocks().has(cid)? {
            return Err(OpError::Refused(format!(
                "cannot pin {cid}: block is not in the repository"
            )));
        }
    }
    let mode = if recursive {
        PinMode::Recursive
    } else {
        PinMode::Direct
    };
    record(repo, cids, mode)
}

/// Record pins of `cids` without looking at their blocks: for callers that have just made
/// the DAGs complete (the daemon's `pin/add` after [`crate::daemon::complete::complete_dags`]).
pub fn record(repo: &Repo, cids: &[Cid], mode: PinMode) -> Result<PinsChanged, OpError> {
    for cid in cids {
        repo.pins().add(cid, mode)?;
    }
    repo.pins().flush()?;
    Ok(changed(cids))
}

/// Remove the pins of `cids`; fails without changing anything if one is not pinned.
pub fn rm(repo: &Repo, cids: &[Cid]) -> Result<PinsChanged, OpError> {
    for cid in cids {
        if repo.pins().get(cid)?.is_none() {
            return Err(OpError::Refused(format!(
                "{cid} is not pinned (or is pinned only indirectly)"
            )));
        }
    }
    for cid in cids {
        repo.pins().remove(cid)?;
    }
    repo.pins().flush()?;
    Ok(changed(cids))
}

fn changed(cids: &[Cid]) -> PinsChanged {
    PinsChanged {
        pins: cids.iter().map(Cid::to_string).collect(),
    }
}

fn entry(cid: &Cid, kind: impl Into<String>) -> PinEntry {
    PinEntry {
        cid: cid.to_string(),
        kind: kind.into(),
        name: String::new(),
    }
}

/// List pins: the pin status of each of `wanted`, or else every pin that `filter` selects
/// (recursive and direct in store order, then the indirect ones), passing each to `emit`,
/// whose error type (the caller's) stops the listing.
pub fn ls<E: From<OpError>>(
    repo: &Repo,
    filter: PinFilter,
    wanted: &[Cid],
    emit: &mut dyn FnMut(PinEntry) -> Result<(), E>,
) -> Result<(), E> {
    if !wanted.is_empty() {
        for cid in wanted {
            let status = repo
                .pins()
                .is_pinned(repo.blocks(), cid)
                .map_err(OpError::from)?;
            let kind = match status {
                PinStatus::Recursive => "recursive".to_owned(),
                PinStatus::Direct => "direct".to_owned(),
                PinStatus::Indirect { via } => format!("indirect through {via}"),
                PinStatus::NotPinned => {
                    return Err(OpError::Refused(format!("{cid} is not pinned")).into());
                }
            };
            emit(entry(cid, kind))?;
        }
        return Ok(());
    }
    let pins = repo.pins().list().map_err(OpError::from)?;
    let mut listed = HashSet::new();
    for (cid, mode) in &pins {
        let (label, show) = match mode {
            PinMode::Recursive => (
                "recursive",
                matches!(filter, PinFilter::All | PinFilter::Recursive),
            ),
            PinMode::Direct => (
                "direct",
                matches!(filter, PinFilter::All | PinFilter::Direct),
            ),
        };
        listed.insert(*cid.hash());
        if show {
            emit(entry(cid, label))?;
        }
    }
    if matches!(filter, PinFilter::All | PinFilter::Indirect) {
        let mut seen = HashSet::new();
        let mut indirect = Vec::new();
        for (root, mode) in &pins {
            if *mode == PinMode::Recursive {
                walk_dag_present(repo.blocks(), root, &mut seen, |cid| {
                    if cid != root && !listed.contains(cid.hash()) {
                        indirect.push(*cid);
                    }
                    true
                })
                .map_err(OpError::from)?;
            }
        }
        for cid in indirect {
            emit(entry(&cid, "indirect"))?;
        }
    }
    Ok(())
}
