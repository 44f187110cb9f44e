//! `distribute init` and `distribute repo gc|stat|verify`.

use anyhow::{Result, bail};

use super::args::{GlobalArgs, InitArgs, RepoCommand};
use super::output::{Ctx, line, repo_path, stdout};
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
            line(out, format_args!("NumObjects: {}", stat.blocks))?;
            line(out, format_args!("RepoSize:   {}", stat.bytes))?;
            line(out, format_args!("RepoPath:   {}", repo.path().display()))?;
            line(
                out,
                format_args!("Blockstore: {}", repo.config().store.backend),
            )?;
            line(
                out,
                format_args!("Pins:       {}", repo.pins().list()?.len()),
            )?;
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
                bail!(
                    "repository has problems (see above); re-add or re-import the affected content"
                );
            }
            line(
                out,
                format_args!("verified repo integrity ({} blocks)", report.checked),
            )?;
        }
    }
    Ok(())
}
