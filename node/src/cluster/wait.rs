//! Waiting until pins are pinned (`pin add --wait`, as `ipfs-cluster-ctl pin add --wait`):
//! the status is computed again each time something the cluster knows changes (a heartbeat,
//! a local result, the pinset), and at least every second, since a member falling silent
//! changes statuses without any message.

use std::time::Duration;

use cid::Cid;

use super::service::{Cluster, ClusterError};
use super::status::ClusterState;

/// Longest sleep between two looks at the statuses.
const RECHECK: Duration = Duration::from_secs(1);

impl Cluster {
    /// Resolves once every one of `cids` is pinned on all the peers it is allocated to (at
    /// least its replication minimum). Fails when one of them fails, or when `limit` passes
    /// first; the pins stay in the pinset either way.
    pub async fn wait_pinned(
        &self,
        cids: &[Cid],
        limit: Option<Duration>,
    ) -> Result<(), ClusterError> {
        let start = tokio::time::Instant::now();
        let mut changes = self.inner.statuses.subscribe();
        loop {
            changes.borrow_and_update();
            let mut waiting = None;
            for cid in cids {
                let status = self.status(cid)?;
                match status.status {
                    ClusterState::Pinned => {}
                    ClusterState::Failed => {
                        return Err(ClusterError::PinFailed {
                            cid: status.cid,
                            reason: status.error.unwrap_or_else(|| "no reason given".into()),
                        });
                    }
                    _ => {
                        waiting = Some(status);
                        break;
                    }
                }
            }
            let Some(status) = waiting else {
                return Ok(());
            };
            let mut pause = RECHECK;
            if let Some(limit) = limit {
                let Some(left) = limit.checked_sub(start.elapsed()) else {
                    return Err(ClusterError::WaitTimeout {
                        cid: status.cid,
                        state: status.status.as_str(),
                        pinned: status.pinned,
                        min: status.replication_min,
                        max: status.replication_max,
                        secs: limit.as_secs(),
                    });
                };
                pause = pause.min(left);
            }
            // A timeout or a closed channel both just mean: look again.
            let _ = tokio::time::timeout(pause, changes.changed()).await;
        }
    }
}
