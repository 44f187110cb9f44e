//! `distribute pin add|rm|ls` (and `pin <cid>`): local pins, with Kubo's output lines. The
//! work is [`crate::ops::pin`], run here offline or by the daemon's `pin/*` API calls.

use anyhow::{Result, bail};

use super::Backend;
use super::args::{PinArgs, PinCommand, PinListKind, ReplicationArgs};
use super::output::{cid_args, line};
use super::remote::args;
use crate::ops::pin::{self as ops, PinEntry, PinFilter, PinsChanged};

pub(super) fn run(backend: &Backend<'_>, out: &mut dyn std::io::Write, a: PinArgs) -> Result<()> {
    match (a.command, a.cid) {
        (
            Some(PinCommand::Add {
                cids,
                recursive,
                cluster,
            }),
            _,
        ) => add(backend, out, &cids, recursive, &cluster),
        (Some(PinCommand::Rm { cids }), _) => rm(backend, out, &cids),
        (
            Some(PinCommand::Ls {
                quiet,
                cluster: true,
                ..
            }),
            _,
        ) => ls_cluster(backend, out, quiet),
        (
            Some(PinCommand::Ls {
                kind, quiet, cids, ..
            }),
            _,
        ) => ls(backend, out, kind, quiet, &cids),
        (None, Some(cid)) => add(backend, out, &[cid], true, &a.cluster),
        (None, None) => bail!("pin needs a CID or a subcommand (add, rm, ls)"),
    }
}

fn add(
    backend: &Backend<'_>,
    out: &mut dyn std::io::Write,
    cids: &[String],
    recursive: bool,
    cluster: &ReplicationArgs,
) -> Result<()> {
    let changed: PinsChanged = match backend {
        Backend::Local(_) if cluster.any() => bail!(NEEDS_CLUSTER),
        Backend::Local(repo) => ops::add(repo, &cid_args(cids)?, recursive)?,
        Backend::Remote(remote) => {
            let mut params = args(cids);
            params.push(("recursive", recursive.to_string()));
            let (min, max) = cluster.bounds();
            let options = [("replication-min", min), ("replication-max", max)];
            params.extend(
                options
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v.to_string()))),
            );
            if let Some(name) = &cluster.name {
                params.push(("name", name.clone()));
            }
            if cluster.wait {
                params.push(("wait", "true".into()));
            }
            if let Some(secs) = cluster.wait_timeout {
                params.push(("wait-timeout", secs.to_string()));
            }
            remote.json("pin/add", &params)?
        }
    };
    let how = if recursive { "recursively" } else { "directly" };
    for cid in &changed.pins {
        line(out, format_args!("pinned {cid} {how}"))?;
    }
    Ok(())
}

const NEEDS_CLUSTER: &str = "cluster pins need the running node with --cluster-secret-file; start it with `distribute node`";

/// `pin ls --cluster`: the cluster pinset as the daemon's `cluster/status` reports it.
fn ls_cluster(backend: &Backend<'_>, out: &mut dyn std::io::Write, quiet: bool) -> Result<()> {
    let Backend::Remote(remote) = backend else {
        bail!(NEEDS_CLUSTER)
    };
    let all: ClusterPins = remote.json("cluster/status", &Vec::new())?;
    out.write_all(crate::cluster::commands::render_list(&all.pins, quiet).as_bytes())?;
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ClusterPins {
    pins: Vec<crate::cluster::status::PinStatus>,
}

fn rm(backend: &Backend<'_>, out: &mut dyn std::io::Write, cids: &[String]) -> Result<()> {
    let changed: PinsChanged = match backend {
        Backend::Local(repo) => ops::rm(repo, &cid_args(cids)?)?,
        Backend::Remote(remote) => remote.json("pin/rm", &args(cids))?,
    };
    for cid in &changed.pins {
        line(out, format_args!("unpinned {cid}"))?;
    }
    Ok(())
}

fn ls(
    backend: &Backend<'_>,
    out: &mut dyn std::io::Write,
    kind: PinListKind,
    quiet: bool,
    cids: &[String],
) -> Result<()> {
    let filter = match kind {
        PinListKind::All => PinFilter::All,
        PinListKind::Recursive => PinFilter::Recursive,
        PinListKind::Direct => PinFilter::Direct,
        PinListKind::Indirect => PinFilter::Indirect,
    };
    let mut render = |entry: PinEntry| -> Result<()> {
        if quiet {
            line(out, format_args!("{}", entry.cid))
        } else {
            line(out, format_args!("{} {}", entry.cid, entry.kind))
        }
    };
    match backend {
        Backend::Local(repo) => ops::ls(repo, filter, &cid_args(cids)?, &mut render),
        Backend::Remote(remote) => {
            let mut params = args(cids);
            params.push(("type", filter_name(filter).to_owned()));
            params.push(("stream", "true".to_owned()));
            let body = remote.call("pin/ls", &params, None)?;
            remote.ndjson(body, "pin/ls", &mut render)
        }
    }
}

fn filter_name(filter: PinFilter) -> &'static str {
    match filter {
        PinFilter::All => "all",
        PinFilter::Recursive => "recursive",
        PinFilter::Direct => "direct",
        PinFilter::Indirect => "indirect",
    }
}
