//! `distribute cluster peers|status|drain|leave` and `status <cid>`: calls to a running
//! daemon's `cluster/*` endpoints, printed by [`crate::cluster::commands`]. Offline they
//! fail: only a node started with `--cluster-secret-file` is in a cluster.

use anyhow::Result;

use super::args::{ClusterCommand, StatusArgs};
use super::output::cid_arg;
use super::remote::{Remote, args};
use crate::cluster::commands::{LEAVING, StatusAnswer, render_drain, render_peers, render_status};
use crate::cluster::service::{DrainView, PeersView};
use crate::cluster::status::PinStatus;

pub(super) fn run(remote: &Remote, c: ClusterCommand, out: &mut dyn std::io::Write) -> Result<()> {
    let text = match c {
        ClusterCommand::Peers => {
            render_peers(&remote.json::<PeersView>("cluster/peers", &Vec::new())?)
        }
        ClusterCommand::Status { cid: Some(cid) } => {
            cid_arg(&cid)?;
            let answer: StatusAnswer = remote.json("cluster/status", &args(&[cid]))?;
            format!("{}\n", serde_json::to_string_pretty(&answer.status)?)
        }
        ClusterCommand::Status { cid: None } => {
            #[derive(serde::Serialize, serde::Deserialize)]
            struct All {
                #[serde(rename = "Pins")]
                pins: Vec<PinStatus>,
            }
            let all: All = remote.json("cluster/status", &Vec::new())?;
            format!("{}\n", serde_json::to_string_pretty(&all)?)
        }
        ClusterCommand::Drain { peer } => {
            render_drain(&remote.json::<DrainView>("cluster/drain", &args(&[peer]))?)
        }
        ClusterCommand::Leave => {
            remote.call("cluster/leave", &Vec::new(), None)?;
            LEAVING.to_owned()
        }
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

pub(super) fn status(remote: &Remote, a: &StatusArgs, out: &mut dyn std::io::Write) -> Result<()> {
    cid_arg(&a.cid)?;
    let answer: StatusAnswer =
        remote.json("cluster/status", &args(std::slice::from_ref(&a.cid)))?;
    out.write_all(render_status(&answer.status, answer.local, a.verbose).as_bytes())?;
    Ok(())
}
