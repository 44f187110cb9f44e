//! Announcing content in the DHT. The announcer picks keys by [`ProvideStrategy`] (roots of
//! recursive pins by default), announces them all at start and every reprovide interval
//! (well under the 48 h provider record expiry), and only the new ones whenever it is told
//! that pins may have changed; a full round also withdraws keys no longer selected (the
//! node stops listing itself for them; records put on other peers expire). Announcements
//! go out in bounded concurrent batches; keys are the blocks' multihash bytes, as IPFS
//! peers look them up. The keys themselves live in [`crate::net::records`], which holds any
//! number of them (libp2p's `MemoryStore` stops at 1,024).

use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use futures::future::join_all;
use tokio::sync::mpsc;

use crate::cli::args::ProvideStrategy;
use crate::net::Client;
use crate::repo::Repo;
use crate::store::pins::PinMode;

/// Announcements in flight at once.
const BATCH: usize = 16;
/// How long the announcer lets notices of changed pins gather before looking at them.
const GATHER: Duration = Duration::from_millis(500);
/// How long one announcement may take.
const PROVIDE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Announcer {
    pub client: Client,
    pub repo: Arc<Repo>,
    pub strategy: ProvideStrategy,
    pub interval: Duration,
}

impl Announcer {
    /// Run until `changed` closes: full rounds on the interval (and on `full`), new keys on
    /// `changed`.
    pub async fn run(self, mut changed: mpsc::Receiver<()>, mut full: mpsc::Receiver<()>) {
        let mut timer = tokio::time::interval(self.interval);
        loop {
            let everything = tokio::select! {
                _ = timer.tick() => true,
                Some(()) = full.recv() => true,
                msg = changed.recv() => match msg {
                    Some(()) => false,
                    None => return,
                },
            };
            if !everything {
                // Pins often come in bursts (a cluster pinning thousands, a restart checking
                // each): let them gather, so the pins are listed once per burst, not per pin.
                tokio::time::sleep(GATHER).await;
                while changed.try_recv().is_ok() {}
            }
            let keys = match self.keys().await {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "listing what to announce failed");
                    continue;
                }
            };
            // What is announced is the DHT's own record of the keys we provide (kept by the
            // event loop), so no second copy of every key lives here.
            let keys: Vec<Vec<u8>> = keys.iter().map(|c| c.hash().to_bytes()).collect();
            let todo = if everything {
                // Keys no longer selected (unpinned) are not ours to announce any more.
                match self.client.retain_providing(keys.clone()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "no longer announcing unpinned content"),
                    Err(_) => return,
                }
                keys
            } else {
                match self.client.unprovided(keys).await {
                    Ok(fresh) => fresh,
                    Err(_) => return,
                }
            };
            if todo.is_empty() {
                continue;
            }
            tracing::info!(
                count = todo.len(),
                full = everything,
                "announcing to the DHT"
            );
            for batch in todo.chunks(BATCH) {
                let results = join_all(batch.iter().map(|key| {
                    tokio::time::timeout(PROVIDE_TIMEOUT, self.client.start_providing(key.clone()))
                }))
                .await;
                // Either way kad now lists the key as ours; the periodic round retries the put.
                for result in results {
                    match result {
                        Ok(Ok(())) => tracing::debug!("announced"),
                        Ok(Err(e)) => tracing::debug!(error = %e, "announcement incomplete"),
                        Err(_) => tracing::debug!("announcement timed out"),
                    }
                }
            }
        }
    }

    async fn keys(&self) -> anyhow::Result<Vec<Cid>> {
        let repo = Arc::clone(&self.repo);
        let strategy = self.strategy;
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Cid>> {
            let pins = repo.pins().list()?;
            Ok(match strategy {
                ProvideStrategy::Roots => pins
                    .into_iter()
                    .filter(|(_, m)| *m == PinMode::Recursive)
                    .map(|(c, _)| c)
                    .collect(),
                ProvideStrategy::Pinned => pins.into_iter().map(|(c, _)| c).collect(),
                ProvideStrategy::All => {
                    let mut out = Vec::new();
                    for mh in repo.blocks().keys()? {
                        out.push(Cid::new_v1(0x55, mh?));
                    }
                    out
                }
            })
        })
        .await?
    }
}
