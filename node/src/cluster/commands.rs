//! The text the CLI prints for the cluster's commands (`cluster peers|status|drain|leave`,
//! `status <cid>`, `pin ls --cluster`), rendered from the answers of the HTTP API's
//! `cluster/*` endpoints (`super::api`), so the text is built in one place. [`StatusAnswer`]
//! is the single-CID `cluster/status` answer: the pin's status plus this node's own copy.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::service::{DrainView, PeersView};
use super::status::{ClusterState, LocalState, PinStatus};

/// `cluster/status?arg=<cid>`: the pin's [`PinStatus`] and `Local`, the state of this
/// node's copy (absent when it holds none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusAnswer {
    #[serde(flatten)]
    pub status: PinStatus,
    #[serde(rename = "Local")]
    pub local: Option<LocalState>,
}

/// `pin ls --cluster` lines: CID, status, holders/target, name (or only CIDs).
pub fn render_list(pins: &[PinStatus], quiet: bool) -> String {
    let mut out = String::new();
    for s in pins {
        if quiet {
            let _ = writeln!(out, "{}", s.cid);
        } else {
            let _ = writeln!(
                out,
                "{}\t{}\t{}/{}\t{}",
                s.cid,
                s.status.as_str(),
                s.pinned,
                s.replication_max,
                s.name
            );
        }
    }
    out
}

/// `cluster peers` lines: peer ID (marked `(self)`), state, zone, free space, last heard.
pub fn render_peers(view: &PeersView) -> String {
    let mut out = String::new();
    for p in &view.peers {
        let me = if p.peer_id == view.self_id {
            " (self)"
        } else {
            ""
        };
        let state = serde_json::to_value(p.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        let _ = writeln!(
            out,
            "{}{me}\t{state}\t{}\t{}\t{}s",
            p.peer_id,
            p.zone.as_deref().unwrap_or("-"),
            p.free_space,
            p.last_seen_secs
        );
    }
    out
}

/// `cluster drain` line.
pub fn render_drain(v: &DrainView) -> String {
    if v.done {
        format!("drained {}: no pin needs its copy any more\n", v.peer)
    } else {
        format!(
            "draining {}: {} pins still need its copy\n",
            v.peer, v.remaining
        )
    }
}

/// `cluster leave` line.
pub const LEAVING: &str = "leaving the cluster: the node stops once its pins are held elsewhere\n";

fn yes_no(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

/// `distribute status` text.
pub fn render_status(s: &PinStatus, local: Option<LocalState>, verbose: bool) -> String {
    let mut out = String::new();
    let size = s
        .size
        .map_or_else(|| "unknown".to_owned(), |b| format!("{b} bytes"));
    let _ = writeln!(out, "CID: {}", s.cid);
    let _ = writeln!(out, "Size: {size}");
    let _ = writeln!(out, "Local: {}", yes_no(local == Some(LocalState::Pinned)));
    let _ = writeln!(out, "Pinned: {}", yes_no(s.status == ClusterState::Pinned));
    let _ = writeln!(
        out,
        "Peers: {} (replication factor: {}/{})",
        s.pinned, s.pinned, s.replication_max
    );
    if verbose {
        for p in &s.peers {
            let state = serde_json::to_value(p.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match &p.error {
                Some(e) => {
                    let _ = writeln!(out, "  {}: {state} ({e})", p.peer_id);
                }
                None => {
                    let _ = writeln!(out, "  {}: {state}", p.peer_id);
                }
            }
        }
        if let Some(e) = &s.error {
            let _ = writeln!(out, "Error: {e}");
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::cluster::status::PeerReport;

    #[test]
    fn status_text() {
        let s = PinStatus {
            cid: "bafy".into(),
            name: String::new(),
            replication_min: 3,
            replication_max: 3,
            size: Some(52_428_800),
            status: ClusterState::Pinned,
            pinned: 3,
            peers: vec![PeerReport {
                peer_id: "12D3".into(),
                state: LocalState::Failed,
                error: Some("no provider".into()),
            }],
            error: None,
        };
        let text = render_status(&s, Some(LocalState::Pinned), true);
        assert_eq!(
            text,
            "CID: bafy\nSize: 52428800 bytes\nLocal: Yes\nPinned: Yes\nPeers: 3 (replication factor: 3/3)\n  12D3: failed (no provider)\n"
        );
    }
}
