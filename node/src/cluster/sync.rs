//! Membership and pinset sync over libp2p streams (see [`super::wire`] for the frames).
//!
//! - Accepting: every inbound cluster stream carries one authenticated message from the peer
//!   the connection authenticated. A heartbeat updates membership and, when its pinset digest
//!   differs from ours, starts a full-state pull from that peer; an update is merged; a pull
//!   is answered with our whole pinset. When the heartbeat's held-set count and digest do not
//!   match our copy of that member's held set, the set is pulled (`PullHeld` → `Held`).
//! - Heartbeats go to every member and every connected peer (a peer without the secret simply
//!   does not speak the protocol) each interval. Members that are not connected are redialed
//!   at the addresses they announced, so a partition heals by itself.
//! - Updates (pin, unpin, drain) are pushed to every member at once; anti-entropy catches any
//!   that were lost.
//! - Each heartbeat round first prunes the tombstones that may go (see [`super::pinset`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::{AsyncWriteExt, StreamExt};
use libp2p::{Multiaddr, PeerId};

use super::core::Pull;
use super::service::{Cluster, free_space};
use super::wire::{Message, read_message, write_message};

/// Longest a single exchange (open, send, maybe a reply) may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Least time between two heartbeats (see the heartbeat loop): 250 ms made `pin --wait` of
/// 100 MiB take 1.75-2.0x the raw transfer instead of 1.4x (the last report waited for it).
const MIN_BEAT_GAP: Duration = Duration::from_millis(100);
/// Concurrent inbound exchanges; more wait in libp2p-stream's queue.
const INBOUND_LIMIT: usize = 64;
/// Members silent for this many grace periods are forgotten.
const FORGET_AFTER_GRACES: u32 = 10;

impl Cluster {
    pub(super) fn start_sync(&self) {
        match self
            .inner
            .control
            .clone()
            .accept(self.inner.protocol.clone())
        {
            Ok(incoming) => {
                tokio::spawn(self.clone().accept_loop(incoming));
            }
            Err(e) => tracing::error!(error = %e, "cannot accept cluster streams"),
        }
        tokio::spawn(self.clone().heartbeat_loop());
    }

    async fn accept_loop(self, incoming: libp2p_stream::IncomingStreams) {
        incoming
            .for_each_concurrent(INBOUND_LIMIT, |(peer, stream)| {
                let this = self.clone();
                async move {
                    match tokio::time::timeout(EXCHANGE_TIMEOUT, this.serve(peer, stream)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "cluster stream failed"),
                        Err(_) => tracing::debug!(%peer, "cluster stream timed out"),
                    }
                }
            })
            .await;
    }

    async fn serve(
        &self,
        peer: PeerId,
        mut stream: libp2p::Stream,
    ) -> Result<(), super::wire::WireError> {
        let sender = peer.to_string();
        let msg = read_message(&mut stream, &self.inner.secret, &sender).await?;
        match msg {
            Message::Heartbeat(hb) => {
                if hb.peer != sender {
                    tracing::warn!(%peer, claimed = %hb.peer, "heartbeat for another peer dropped");
                    return Ok(());
                }
                let known = hb.known.clone();
                let (pull, pull_held) = {
                    let mut core = self.core();
                    let was_member = core.members().is_member(&sender);
                    // A member that heartbeats after every pin it completes announces a new
                    // digest many times a second: one pull at a time per member (the next
                    // heartbeat after it ends starts another if still needed), not one per
                    // heartbeat, each a copy of the whole pinset on both sides.
                    let differs =
                        core.observe(hb, Instant::now()) && core.start_pull(Pull::State, &sender);
                    if !was_member {
                        tracing::info!(%peer, "cluster member joined");
                    }
                    let held = !core.members().held_in_sync(&sender)
                        && core.start_pull(Pull::Held, &sender);
                    (differs, held)
                };
                self.note_change();
                self.contact(known);
                if pull {
                    let this = self.clone();
                    tokio::spawn(async move { this.pull(peer).await });
                }
                if pull_held {
                    let this = self.clone();
                    tokio::spawn(async move { this.pull_held(peer).await });
                }
            }
            Message::Update(delta) => self.merge(&delta),
            Message::Pull => {
                let state = self.core().pinset().clone();
                let me = self.local_peer();
                write_message(&mut stream, &self.inner.secret, &me, &Message::State(state)).await?;
            }
            Message::PullHeld => {
                let held = self.core().held_cids();
                let me = self.local_peer();
                write_message(&mut stream, &self.inner.secret, &me, &Message::Held(held)).await?;
            }
            Message::State(_) | Message::Held(_) => {}
        }
        let _ = stream.close().await;
        Ok(())
    }

    /// Merge a pinset delta from a member and persist what changed.
    fn merge(&self, other: &super::pinset::Pinset) {
        let delta = self.core().merge(other);
        self.persist(&delta, &[]);
    }

    /// Merge a member's full pinset (a pull's answer) and persist what changed.
    fn merge_state(&self, state: &super::pinset::Pinset) {
        let (delta, dropped) = self.core().merge_state(state);
        self.persist(&delta, &dropped);
    }

    /// Drop the tombstones that may go, and persist that.
    fn prune(&self) {
        let (pruned, horizon) = {
            let mut core = self.core();
            let pruned = core.prune_tombstones(super::service::now_ms());
            (pruned, core.horizon())
        };
        if pruned.is_empty() {
            return;
        }
        let delta = super::pinset::Pinset {
            horizon,
            ..Default::default()
        };
        self.persist(&delta, &pruned);
        tracing::debug!(pruned = pruned.len(), horizon, "tombstones pruned");
    }

    /// Persist changed entries, dropped entries and a raised horizon.
    fn persist(&self, delta: &super::pinset::Pinset, dropped: &[String]) {
        if delta.pins.is_empty()
            && delta.drains.is_empty()
            && dropped.is_empty()
            && delta.horizon == 0
        {
            return;
        }
        let mut failed = None;
        for cid in dropped {
            if let Err(e) = self.inner.store.remove_pin(cid) {
                failed = Some(e);
            }
        }
        if delta.horizon > 0
            && let Err(e) = self.inner.store.set_horizon(delta.horizon)
        {
            failed = Some(e);
        }
        if let Err(e) = self
            .inner
            .store
            .put_pins(delta.pins.iter().map(|(cid, e)| (&**cid, e)))
        {
            failed = Some(e);
        }
        for (peer, e) in &delta.drains {
            if let Err(e) = self.inner.store.put_drain(peer, e) {
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            tracing::error!(error = %e, "persisting the cluster pinset failed");
        }
        tracing::debug!(
            pins = delta.pins.len(),
            drains = delta.drains.len(),
            "pinset merged"
        );
        self.note_change();
    }

    /// Anti-entropy: fetch `peer`'s whole pinset and merge it.
    async fn pull(&self, peer: PeerId) {
        let answer = self.exchange(peer, Message::Pull, true).await;
        self.core().end_pull(Pull::State, &peer.to_string());
        match answer {
            Ok(Some(Message::State(state))) => self.merge_state(&state),
            Ok(_) => tracing::debug!(%peer, "pull answered with something else"),
            Err(e) => tracing::debug!(%peer, error = %e, "pull failed"),
        }
    }

    /// Fetch the CIDs `peer` holds pinned and keep them as its held set.
    async fn pull_held(&self, peer: PeerId) {
        let answer = self.exchange(peer, Message::PullHeld, true).await;
        let sender = peer.to_string();
        let mut core = self.core();
        core.end_pull(Pull::Held, &sender);
        match answer {
            Ok(Some(Message::Held(cids))) => {
                let held = super::membership::HeldSet::from_cids(cids);
                core.members_mut().set_held(&sender, held);
                drop(core);
                self.note_change();
            }
            Ok(_) => tracing::debug!(%peer, "held pull answered with something else"),
            Err(e) => tracing::debug!(%peer, error = %e, "held pull failed"),
        }
    }

    /// Send one message to `peer`; read one reply when `reply` is set.
    async fn exchange(
        &self,
        peer: PeerId,
        msg: Message,
        reply: bool,
    ) -> Result<Option<Message>, String> {
        let me = self.local_peer();
        let secret = self.inner.secret.clone();
        let mut control = self.inner.control.clone();
        let protocol = self.inner.protocol.clone();
        let work = async move {
            let mut stream = control
                .open_stream(peer, protocol)
                .await
                .map_err(|e| e.to_string())?;
            write_message(&mut stream, &secret, &me, &msg)
                .await
                .map_err(|e| e.to_string())?;
            let answer = if reply {
                Some(
                    read_message(&mut stream, &secret, &peer.to_string())
                        .await
                        .map_err(|e| e.to_string())?,
                )
            } else {
                None
            };
            let _ = stream.close().await;
            Ok(answer)
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, work)
            .await
            .map_err(|_| "timed out".to_owned())?
    }

    /// Send `msg` to every member, in the background.
    pub(super) fn broadcast(&self, msg: Message) {
        let peers: Vec<String> = self
            .core()
            .members()
            .addresses()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        for peer in peers.iter().filter_map(|p| p.parse::<PeerId>().ok()) {
            let this = self.clone();
            let msg = msg.clone();
            tokio::spawn(async move {
                if let Err(e) = this.exchange(peer, msg, false).await {
                    tracing::debug!(%peer, error = %e, "pushing a pinset update failed");
                }
            });
        }
    }

    /// Dial peers a member told us about that we are not connected to.
    fn contact(&self, known: Vec<(String, Vec<String>)>) {
        let me = self.local_peer();
        let fresh: Vec<_> = {
            let core = self.core();
            known
                .into_iter()
                .filter(|(p, _)| *p != me && !core.members().is_member(p))
                .collect()
        };
        for (peer, addrs) in fresh {
            let client = self.inner.client.clone();
            tokio::spawn(async move { dial_any(&client, &peer, &addrs).await });
        }
    }

    async fn heartbeat_loop(self) {
        let interval = self.inner.config.heartbeat_interval();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: u64 = 0;
        let mut last_beat: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.inner.beat_now.notified() => {}
            }
            // Beats asked for by finished pins come at most every MIN_BEAT_GAP: a burst of
            // thousands of pins is then at most ten beats a second, each carrying many changes.
            if let Some(gap) = last_beat.map(|t| t.elapsed())
                && gap < MIN_BEAT_GAP
            {
                tokio::time::sleep(MIN_BEAT_GAP - gap).await;
            }
            last_beat = Some(Instant::now());
            round += 1;
            self.prune();
            if round % 20 == 1 {
                let path = self.inner.repo.path().to_owned();
                if let Ok(free) = tokio::task::spawn_blocking(move || free_space(path)).await {
                    self.core().me.free_space = free;
                }
            }
            let addrs = self.inner.client.listen_addrs().await.unwrap_or_default();
            let connected: HashSet<PeerId> = self
                .inner
                .client
                .peers()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.peer)
                .collect();
            let (hb, members) = {
                let mut core = self.core();
                core.me.addrs = addrs.iter().map(ToString::to_string).collect();
                let grace = self.inner.config.rereplicate_after * FORGET_AFTER_GRACES;
                core.members_mut().expire(Instant::now(), grace);
                (core.heartbeat(), core.members().addresses())
            };
            let mut targets: HashSet<PeerId> = connected.clone();
            for (peer, addrs) in &members {
                let Ok(id) = peer.parse::<PeerId>() else {
                    continue;
                };
                if !connected.contains(&id) {
                    let client = self.inner.client.clone();
                    let (peer, addrs) = (peer.clone(), addrs.clone());
                    tokio::spawn(async move { dial_any(&client, &peer, &addrs).await });
                }
                targets.insert(id);
            }
            let msg = Message::Heartbeat(hb);
            for peer in targets {
                let this = self.clone();
                let msg = msg.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.exchange(peer, msg, false).await {
                        tracing::trace!(%peer, error = %e, "heartbeat not delivered");
                    }
                });
            }
        }
    }
}

/// Dial `peer` at the first of `addrs` that answers.
async fn dial_any(client: &crate::net::Client, peer: &str, addrs: &[String]) {
    for addr in addrs {
        let Ok(full) = format!("{addr}/p2p/{peer}").parse::<Multiaddr>() else {
            continue;
        };
        match tokio::time::timeout(EXCHANGE_TIMEOUT, client.dial(full)).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => tracing::trace!(%peer, error = %e, "redialing a member failed"),
            Err(_) => tracing::trace!(%peer, "redialing a member timed out"),
        }
    }
}
