//! The pin tracker: each round (every heartbeat interval, or sooner when something changed)
//! asks [`super::core::Core::plan`] what to do and does it. Pinning fetches the DAG over
//! Bitswap from whoever has it (the holders are connected members), checks it is complete,
//! then pins it locally and records it as held for the cluster; a local pin the user made by hand
//! is used as is and never removed. Releasing removes only pins this node made for the
//! cluster; the blocks go at the next `repo gc`. After each round the metrics are refreshed
//! and pins below target are logged (`replication lag`, paced by [`super::lag`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use cid::Cid;

use tokio::task::JoinSet;

use super::lag::LagLog;
use super::service::{Cluster, PIN_SLOTS};
use super::status::LocalState;
use crate::daemon::complete::complete_dags;
use crate::store::pins::PinMode;

/// Least time between two planning rounds woken by changes; changes arriving meanwhile join
/// the next round: every round plans over the whole pinset, so one round per finished pin
/// job would make adding thousands of pins quadratic.
const ROUND_PAUSE: Duration = Duration::from_millis(100);
/// Least time between two refreshes of the statuses behind the metrics and lag warnings.
const REPORT_EVERY: Duration = Duration::from_secs(1);

impl Cluster {
    pub(super) async fn track(self) {
        let interval = self.inner.config.heartbeat_interval();
        let mut lag = LagLog::default();
        // Pins planned here wait in this queue and at most PIN_SLOTS jobs run: a task per
        // waiting pin would keep a whole fetch's state alive for each of thousands of pins.
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut running: JoinSet<()> = JoinSet::new();
        let mut reported: Option<Instant> = None;
        let mut last_round: Option<Instant> = None;
        loop {
            // Wait for a change or the interval. Rounds are rate-limited, not delayed: the first
            // change after a quiet spell is planned at once, later ones wait until ROUND_PAUSE
            // has passed since the last round.
            let change = tokio::time::timeout(interval, self.inner.changed.notified());
            let woke = self
                .refilling(change, &mut running, &mut queue)
                .await
                .is_ok();
            let since = last_round.map_or(ROUND_PAUSE, |t: Instant| t.elapsed());
            if woke && since < ROUND_PAUSE {
                let pause = tokio::time::sleep(ROUND_PAUSE - since);
                self.refilling(pause, &mut running, &mut queue).await;
            }
            while running.try_join_next().is_some() {}
            let now = Instant::now();
            last_round = Some(now);
            let plan = self.core().plan(now);
            for cid in plan.pin {
                self.core().set_local(&cid, LocalState::Pinning, None, now);
                queue.push_back(cid);
            }
            self.start_jobs(&mut running, &mut queue);
            for cid in plan.release {
                self.release(&cid).await;
            }
            if reported.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
                continue;
            }
            reported = Some(now);
            // One status at a time under the core's lock: a vector of every pin's status
            // each second cost megabytes of churn with thousands of pins.
            let metrics = &self.inner.metrics;
            let core = self.core();
            let mut tally = metrics.begin(core.live_count());
            let mut round = lag.round(now);
            core.for_each_status(now, |s| {
                tally.add(metrics, &s);
                if round.note(&s.cid, s.pinned, s.replication_max) {
                    tracing::warn!(cid = %s.cid, peers = s.pinned, target = s.replication_max, "replication lag");
                }
            });
            drop(core);
            let more = round.finish();
            if more > 0 {
                tracing::warn!(
                    more,
                    "replication lag: {more} more pins below target (fs_under_replicated_pins counts them all)"
                );
            }
            metrics.finish(tally);
        }
    }

    /// Await `until`; meanwhile a job that ends hands its slot to the next queued pin at once
    /// (rounds are paced, the queue must not be).
    async fn refilling<T>(
        &self,
        until: impl std::future::Future<Output = T>,
        running: &mut JoinSet<()>,
        queue: &mut VecDeque<String>,
    ) -> T {
        tokio::pin!(until);
        loop {
            tokio::select! {
                value = &mut until => return value,
                Some(_) = running.join_next(), if !running.is_empty() => {
                    self.start_jobs(running, queue);
                }
            }
        }
    }

    /// Start queued pin jobs while slots are free.
    fn start_jobs(&self, running: &mut JoinSet<()>, queue: &mut VecDeque<String>) {
        while running.len() < PIN_SLOTS {
            let Some(cid) = queue.pop_front() else { break };
            running.spawn(self.clone().pin_job(cid));
        }
    }

    async fn pin_job(self, cid_text: String) {
        let result = self.pin_here(&cid_text).await;
        let now = Instant::now();
        match result {
            Ok(()) => {
                tracing::info!(cid = %cid_text, "cluster pin held here");
                self.core()
                    .set_local(&cid_text, LocalState::Pinned, None, now);
                let _ = self.inner.pins_changed.try_send(());
            }
            Err(e) => {
                tracing::warn!(cid = %cid_text, error = %e, "cluster pin failed here");
                self.core()
                    .set_local(&cid_text, LocalState::Failed, Some(e), now);
            }
        }
        self.note_change();
        self.inner.beat_now.notify_one();
    }

    /// Fetch (if needed) and pin `cid` locally.
    async fn pin_here(&self, cid_text: &str) -> Result<(), String> {
        let cid: Cid = cid_text
            .parse()
            .map_err(|e| format!("bad CID in the pinset: {e}"))?;
        self.complete_dag(cid).await?;
        let repo = std::sync::Arc::clone(&self.inner.repo);
        let store = self.inner.store.clone();
        let text = cid_text.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            if repo.pins().get(&cid).map_err(|e| e.to_string())?.is_none() {
                store.set_held(&text, true).map_err(|e| e.to_string())?;
                repo.pins()
                    .add(&cid, PinMode::Recursive)
                    .map_err(|e| e.to_string())?;
                repo.flush().map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Make every block of `cid`'s DAG local ([`complete_dags`]).
    pub(super) async fn complete_dag(&self, cid: Cid) -> Result<(), String> {
        complete_dags(
            &self.inner.repo,
            &self.inner.bitswap,
            &[cid],
            self.inner.config.fetch_timeout,
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// Drop our copy of `cid` (only the local pin we made for the cluster).
    async fn release(&self, cid_text: &str) {
        let was_pinned = self.core().local_state(cid_text) == Some(LocalState::Pinned);
        let repo = std::sync::Arc::clone(&self.inner.repo);
        let store = self.inner.store.clone();
        let text = cid_text.to_owned();
        let result = tokio::task::spawn_blocking(move || -> Result<bool, String> {
            let held = store.is_held(&text).map_err(|e| e.to_string())?;
            if held {
                if let Ok(cid) = text.parse::<Cid>() {
                    repo.pins().remove(&cid).map_err(|e| e.to_string())?;
                    repo.pins().flush().map_err(|e| e.to_string())?;
                }
                store.set_held(&text, false).map_err(|e| e.to_string())?;
            }
            Ok(held)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match result {
            Ok(held) => {
                if was_pinned {
                    tracing::info!(cid = %cid_text, unpinned = held, "cluster copy released here");
                }
                self.core().forget_local(cid_text);
                let _ = self.inner.pins_changed.try_send(());
            }
            Err(e) => {
                tracing::warn!(cid = %cid_text, error = %e, "releasing a cluster copy failed")
            }
        }
    }
}
