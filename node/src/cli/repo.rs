//! `distribute init` and `distribute repo gc|stat|verify`, offline or through a daemon's
//! `repo/*` calls (`repo stat`'s pin count from `pin/ls`), printing the same lines.

use anyhow::{Result, bail};

use super::args::{GlobalArgs, InitArgs, RepoCommand};
use super::output::{Ctx, line, repo_path, stdout};
use super::remote::Remote;
use crate::api::repo::VERIFY_FAILED;
use crate::repo::{BlockstoreKind, Repo};
use crate::store::gc::{gc, verify};

pub(super) fn init(global: &GlobalArgs, a: &InitArgs) -> Result<()> {
    let kind: BlockstoreKind = a.blockstore.parse()?;
    let path = repo_path(global)?;
    Repo::init(&path, kind)?;
    line(
        &mut stdout(),
        format_args!(
            "initialized distribute repository at {} (blockstore: {kind})",
            path.display()
        ),
    )
}

pub(super) fn run(ctx: &mut Ctx<'_>, cmd: RepoCommand) -> Result<()> {
    let repo = ctx.repo;
    let out = &mut *ctx.out;
    match cmd {
        RepoCommand::Gc { quiet } => {
            let report = gc(repo.blocks(), repo.pins())?;
            if !quiet {
                for mh in &report.removed {
                    line(
                        out,
                        format_args!(
                            "removed {}",
                            cid::Cid::new_v1(crate::content::cid::CODEC_RAW, *mh)
                        ),
                    )?;
                }
            }
        }
        RepoCommand::Stat => {
            let stat = repo.blocks().stat()?;
            let backend = repo.config().store.backend.to_string();
            let pins = repo.pins().list()?.len() as u64;
            let path = repo.path().display().to_string();
            print_stat(out, stat.blocks, stat.bytes, &path, &backend, pins)?;
        }
        RepoCommand::Verify => {
            let report = verify(repo.blocks(), repo.pins())?;
            for cid in &report.corrupt {
                line(
                    out,
                    format_args!(
                        "block {} was corrupt (removed)",
                        cid::Cid::new_v1(crate::content::cid::CODEC_RAW, *cid)
                    ),
                )?;
            }
            for pin in &report.incomplete {
                line(
                    out,
                    format_args!("pin {} is missing {} block(s)", pin.root, pin.missing.len()),
                )?;
            }
            if !report.is_healthy() {
                bail!(VERIFY_FAILED);
            }
            line(
                out,
                format_args!("verified repo integrity ({} blocks)", report.checked),
            )?;
        }
    }
    Ok(())
}

fn print_stat(
    out: &mut dyn std::io::Write,
    blocks: u64,
    bytes: u64,
    path: &str,
    backend: &str,
    pins: u64,
) -> Result<()> {
    line(out, format_args!("NumObjects: {blocks}"))?;
    line(out, format_args!("RepoSize:   {bytes}"))?;
    line(out, format_args!("RepoPath:   {path}"))?;
    line(out, format_args!("Blockstore: {backend}"))?;
    line(out, format_args!("Pins:       {pins}"))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RepoStat {
    repo_size: u64,
    num_objects: u64,
    repo_path: String,
    version: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GcLine {
    key: Option<crate::api::repo::CidLink>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyLine {
    msg: String,
}

/// `repo` through a daemon.
pub(super) fn remote(
    remote: &Remote,
    cmd: RepoCommand,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    match cmd {
        RepoCommand::Gc { quiet } => {
            let params = vec![("quiet", quiet.to_string())];
            remote.lines("repo/gc", &params, None, &mut |l: GcLine| match l.key {
                Some(key) if !quiet => line(out, format_args!("removed {}", key.cid)),
                _ => Ok(()),
            })
        }
        RepoCommand::Stat => {
            let stat: RepoStat = remote.json("repo/stat", &Vec::new())?;
            let backend = stat
                .version
                .rsplit_once('@')
                .map_or(stat.version.as_str(), |(_, b)| b);
            // Pins are the recursive and direct ones, as offline counts them.
            let mut pins = 0u64;
            for kind in ["recursive", "direct"] {
                let params = vec![("type", kind.to_owned()), ("stream", "true".to_owned())];
                remote.lines("pin/ls", &params, None, &mut |_: serde_json::Value| {
                    pins += 1;
                    Ok(())
                })?;
            }
            print_stat(
                out,
                stat.num_objects,
                stat.repo_size,
                &stat.repo_path,
                backend,
                pins,
            )
        }
        RepoCommand::Verify => {
            remote.lines("repo/verify", &Vec::new(), None, &mut |l: VerifyLine| {
                line(out, format_args!("{}", l.msg))
            })
        }
    }
}
