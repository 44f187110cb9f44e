//! The cluster's CLI commands the daemon answers over `api.sock` (forwarded from
//! `distribute …`): `cluster peers|status|drain|leave` and `status <cid>`; cluster pins
//! themselves go through the HTTP API (`super::api`). Also the `pin ls --cluster` lines. [`run`] returns `None` for commands that are not
//! the cluster's, so the caller runs them as usual. Output text is built here; the JSON of
//! `cluster status` is the API's.

use std::fmt::Write as _;

use anyhow::Result;

use super::service::Cluster;
use super::status::{ClusterState, LocalState, PinStatus};
use crate::cli::args::{ClusterCommand, Command, StatusArgs};
use crate::content::cid::parse_cid_arg;

/// Answer `command` if it is a cluster command; `None` otherwise.
pub async fn run(cluster: Option<&Cluster>, command: &Command) -> Option<Result<String>> {
    let Some(cluster) = cluster else {
        return match command {
            Command::Cluster(_) | Command::Status(_) => Some(Err(anyhow::anyhow!(
                "this node is not in a cluster; start it with --cluster-secret-file"
            ))),
            _ => None,
        };
    };
    let result = match command {
        Command::Cluster(c) => cluster_command(cluster, c),
        Command::Status(a) => status(cluster, a),
        _ => return None,
    };
    Some(result)
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

fn cluster_command(cluster: &Cluster, c: &ClusterCommand) -> Result<String> {
    match c {
        ClusterCommand::Peers => {
            let view = cluster.peers();
            let mut out = String::new();
            for p in &view.peers {
                let me = if p.peer_id == view.self_id {
                    " (self)"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "{}{me}\t{}\t{}\t{}\t{}s",
                    p.peer_id,
                    serde_json::to_value(p.state)?.as_str().unwrap_or("?"),
                    p.zone.as_deref().unwrap_or("-"),
                    p.free_space,
                    p.last_seen_secs
                )?;
            }
            Ok(out)
        }
        ClusterCommand::Status { cid: Some(cid) } => {
            let cid = parse_cid_arg(cid)?;
            Ok(format!(
                "{}\n",
                serde_json::to_string_pretty(&cluster.status(&cid)?)?
            ))
        }
        ClusterCommand::Status { cid: None } => {
            let all = serde_json::json!({ "Pins": cluster.statuses() });
            Ok(format!("{}\n", serde_json::to_string_pretty(&all)?))
        }
        ClusterCommand::Drain { peer } => {
            let v = cluster.drain(peer)?;
            Ok(if v.done {
                format!("drained {}: no pin needs its copy any more\n", v.peer)
            } else {
                format!(
                    "draining {}: {} pins still need its copy\n",
                    v.peer, v.remaining
                )
            })
        }
        ClusterCommand::Leave => {
            cluster.leave();
            Ok("leaving the cluster: the node stops once its pins are held elsewhere\n".into())
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

fn status(cluster: &Cluster, a: &StatusArgs) -> Result<String> {
    let cid = parse_cid_arg(&a.cid)?;
    let s = cluster.status(&cid)?;
    Ok(render_status(&s, cluster.local_state(&cid), a.verbose))
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
