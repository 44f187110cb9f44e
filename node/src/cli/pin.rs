//! `distribute pin add|rm|ls` (and `pin <cid>`): local pins, with Kubo's output lines.

use std::collections::HashSet;

use anyhow::{Result, bail};

use super::args::{PinArgs, PinCommand, PinListKind};
use super::output::{Ctx, cid_args};
use crate::store::pins::{PinMode, PinStatus};
use crate::store::walk::walk_dag;

pub(super) fn run(ctx: &mut Ctx<'_>, a: PinArgs) -> Result<()> {
    let needs_node = || {
        bail!(
            "cluster pins need the running node with --cluster-secret-file; start it with `distribute node`"
        )
    };
    match (a.command, a.cid) {
        (Some(PinCommand::Add { cluster, .. }), _) if cluster.any() => needs_node(),
        (Some(PinCommand::Ls { cluster: true, .. }), _) => needs_node(),
        (None, Some(_)) if a.cluster.any() => needs_node(),
        (
            Some(PinCommand::Add {
                cids, recursive, ..
            }),
            _,
        ) => add(ctx, &cids, recursive),
        (Some(PinCommand::Rm { cids }), _) => rm(ctx, &cids),
        (
            Some(PinCommand::Ls {
                kind, quiet, cids, ..
            }),
            _,
        ) => ls(ctx, kind, quiet, &cids),
        (None, Some(cid)) => add(ctx, &[cid], true),
        (None, None) => bail!("pin needs a CID or a subcommand (add, rm, ls)"),
    }
}

fn add(ctx: &mut Ctx<'_>, args: &[String], recursive: bool) -> Result<()> {
    let cids = cid_args(args)?;
    let repo = ctx.repo;
    for cid in &cids {
        if recursive {
            let report = walk_dag(repo.blocks(), cid, &mut HashSet::new(), |_| true)?;
            if let Some(missing) = report.missing.first() {
                bail!(
                    "cannot pin {cid}: block {missing} of its DAG is not in the repository ({} missing); add or import the content first",
                    report.missing.len()
                );
            }
            if let Some((bad, e)) = report.undecodable.first() {
                bail!("cannot pin {cid}: block {bad} cannot be decoded: {e}");
            }
        } else if !repo.blocks().has(cid)? {
            bail!("cannot pin {cid}: block is not in the repository");
        }
    }
    let mode = if recursive {
        PinMode::Recursive
    } else {
        PinMode::Direct
    };
    for cid in &cids {
        repo.pins().add(cid, mode)?;
    }
    repo.pins().flush()?;
    for cid in &cids {
        let how = if recursive { "recursively" } else { "directly" };
        ctx.line(format_args!("pinned {cid} {how}"))?;
    }
    Ok(())
}

fn rm(ctx: &mut Ctx<'_>, args: &[String]) -> Result<()> {
    let cids = cid_args(args)?;
    let repo = ctx.repo;
    for cid in &cids {
        if repo.pins().get(cid)?.is_none() {
            bail!("{cid} is not pinned (or is pinned only indirectly)");
        }
    }
    for cid in &cids {
        repo.pins().remove(cid)?;
    }
    repo.pins().flush()?;
    for cid in &cids {
        ctx.line(format_args!("unpinned {cid}"))?;
    }
    Ok(())
}

fn ls(ctx: &mut Ctx<'_>, kind: PinListKind, quiet: bool, args: &[String]) -> Result<()> {
    let wanted = cid_args(args)?;
    let repo = ctx.repo;
    let mut print = |cid: &cid::Cid, label: &str| {
        if quiet {
            ctx.line(format_args!("{cid}"))
        } else {
            ctx.line(format_args!("{cid} {label}"))
        }
    };
    if !wanted.is_empty() {
        for cid in &wanted {
            match repo.pins().is_pinned(repo.blocks(), cid)? {
                PinStatus::Recursive => print(cid, "recursive")?,
                PinStatus::Direct => print(cid, "direct")?,
                PinStatus::Indirect { via } => print(cid, &format!("indirect through {via}"))?,
                PinStatus::NotPinned => bail!("{cid} is not pinned"),
            }
        }
        return Ok(());
    }
    let pins = repo.pins().list()?;
    let mut listed = HashSet::new();
    for (cid, mode) in &pins {
        let (label, show) = match mode {
            PinMode::Recursive => (
                "recursive",
                matches!(kind, PinListKind::All | PinListKind::Recursive),
            ),
            PinMode::Direct => (
                "direct",
                matches!(kind, PinListKind::All | PinListKind::Direct),
            ),
        };
        listed.insert(*cid.hash());
        if show {
            print(cid, label)?;
        }
    }
    if matches!(kind, PinListKind::All | PinListKind::Indirect) {
        let mut seen = HashSet::new();
        let mut indirect = Vec::new();
        for (root, mode) in &pins {
            if *mode == PinMode::Recursive {
                walk_dag(repo.blocks(), root, &mut seen, |cid| {
                    if cid != root && !listed.contains(cid.hash()) {
                        indirect.push(*cid);
                    }
                    true
                })?;
            }
        }
        for cid in indirect {
            print(&cid, "indirect")?;
        }
    }
    Ok(())
}
