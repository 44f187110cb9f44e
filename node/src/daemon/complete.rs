//! Making DAGs complete in the local store: walk what is here, fetch what is missing, and
//! repeat below blocks an earlier, interrupted fetch left without their children. Used by
//! `pin/add` through the daemon and by the cluster's pin jobs and scrub repairs.
//!
//! A fetch ([`Bitswap::fetch_dags`]) goes below every block it delivers, decoding its links as
//! it arrives, but not below blocks it finds already stored: those subtrees are the only
//! parts a later round walks. So a DAG fetched whole is never read back here, and when
//! [`complete_dags`] returns `Ok` every block is present. The walks check presence, not hashes
//! (as Kubo's pin does with `HashOnRead` off): each delivered block was verified as it
//! arrived, and damage on disk is the scrub's and every serving read's to find.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;

use crate::net::bitswap::{Bitswap, FetchError};
use crate::repo::Repo;
use crate::store::StoreError;
use crate::store::walk::walk_dag_present;

/// Fetch-and-walk rounds made before giving up on an incomplete DAG.
pub const FETCH_ROUNDS: usize = 4;

/// Why a DAG could not be made complete.
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    #[error("block {block} of the DAG cannot be decoded: {reason}")]
    Undecodable { block: Cid, reason: String },
    #[error("block {0} of the DAG has links that cannot be decoded")]
    UndecodableFetched(Cid),
    #[error(transparent)]
    Fetch(Box<FetchError>),
    #[error("reading the block store: {0}")]
    Store(#[from] StoreError),
    #[error("the DAG is still incomplete after {FETCH_ROUNDS} rounds of fetching")]
    StillIncomplete,
    #[error("the store walk stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Make every block of the DAGs under `roots` local, fetching what is missing (each fetch
/// within `timeout`). `Ok` means every block is in the store.
pub async fn complete_dags(
    repo: &Arc<Repo>,
    bitswap: &Bitswap,
    roots: &[Cid],
    timeout: Duration,
) -> Result<(), CompleteError> {
    let mut roots = roots.to_vec();
    for _ in 0..FETCH_ROUNDS {
        let missing = missing_below(repo, roots).await?;
        if missing.is_empty() {
            return Ok(());
        }
        let fetched = bitswap
            .fetch_dags(&missing, timeout)
            .await
            .map_err(|e| CompleteError::Fetch(Box::new(e)))?;
        if let Some(block) = fetched.undecodable.first() {
            return Err(CompleteError::UndecodableFetched(*block));
        }
        roots = fetched.already_local;
    }
    Err(CompleteError::StillIncomplete)
}

/// The blocks missing from the DAGs under `roots` (walked on a blocking thread).
async fn missing_below(repo: &Arc<Repo>, roots: Vec<Cid>) -> Result<Vec<Cid>, CompleteError> {
    if roots.is_empty() {
        return Ok(Vec::new());
    }
    let repo = Arc::clone(repo);
    tokio::task::spawn_blocking(move || {
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        for root in &roots {
            let report = walk_dag_present(repo.blocks(), root, &mut seen, |_| true)?;
            if let Some((block, e)) = report.undecodable.first() {
                return Err(CompleteError::Undecodable {
                    block: *block,
                    reason: e.to_string(),
                });
            }
            missing.extend(report.missing);
        }
        Ok(missing)
    })
    .await?
}
