//! Scrub: every `--scrub-interval`, re-hash the DAG of each cluster pin held here at no more
//! than `--scrub-rate` bytes per second. Reading a block through the store re-hashes it and
//! deletes it when it does not match its CID, so a corrupt block shows up as missing; what is
//! missing, at any depth, is then fetched again from the other holders over Bitswap (the pin
//! job's `complete_dag`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use cid::Cid;

use super::service::Cluster;
use super::status::LocalState;
use crate::store::walk::walk_dag;

impl Cluster {
    pub(super) async fn scrub(self) {
        let rate = self.inner.config.scrub_rate;
        if rate == 0 {
            return;
        }
        loop {
            tokio::time::sleep(self.inner.config.scrub_interval).await;
            let held: Vec<String> = {
                let core = self.core();
                core.pinset()
                    .live()
                    .map(|(cid, _)| cid.to_owned())
                    .filter(|cid| core.local_state(cid) == Some(LocalState::Pinned))
                    .collect()
            };
            for text in held {
                let Ok(cid) = text.parse::<Cid>() else {
                    continue;
                };
                match self.scrub_one(cid, rate).await {
                    Ok(0) => {}
                    Ok(bad) => {
                        tracing::warn!(cid = %text, missing = bad, "scrub found missing or corrupt blocks; fetching them again");
                        match self.complete_dag(cid).await {
                            Ok(()) => tracing::info!(cid = %text, "scrub repaired"),
                            Err(e) => {
                                tracing::warn!(cid = %text, error = %e, "scrub repair failed");
                                self.core().set_local(
                                    &text,
                                    LocalState::Failed,
                                    Some(format!("scrub: {e}")),
                                    Instant::now(),
                                );
                            }
                        }
                    }
                    Err(e) => tracing::warn!(cid = %text, error = %e, "scrub failed"),
                }
            }
        }
    }

    /// Re-hash `cid`'s DAG at most `rate` bytes per second; returns the blocks found missing
    /// or corrupt (the corrupt ones are deleted by the read).
    async fn scrub_one(&self, cid: Cid, rate: u64) -> Result<usize, String> {
        let repo = std::sync::Arc::clone(&self.inner.repo);
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let mut bytes = 0u64;
            let store = repo.blocks();
            let report = walk_dag(store, &cid, &mut HashSet::new(), |c| {
                bytes += store.block_size(c).ok().flatten().unwrap_or(0);
                let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                if let Some(ahead) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(ahead);
                }
                true
            })
            .map_err(|e| e.to_string())?;
            Ok(report.missing.len() + report.undecodable.len())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
