//! `distribute dag export|import`: whole DAGs as CAR v1 files. Export writes to a temporary
//! file and renames it, so a failed export leaves no partial CAR; import verifies every block
//! before storing it and pins roots only once their DAG is complete.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, Result, bail};

use super::args::DagCommand;
use super::output::{Ctx, cid_arg};
use crate::car::{CarReader, CarWriter};
use crate::content::exporter::BlockSource;
use crate::content::walk::walk_dag;
use crate::store::pins::PinMode;

pub(super) fn run(ctx: &mut Ctx<'_>, cmd: DagCommand) -> Result<()> {
    match cmd {
        DagCommand::Export { cid, output } => export(ctx, &cid, output.map(|o| ctx.path(&o))),
        DagCommand::Import { files, pin_roots } => {
            let files: Vec<_> = files.iter().map(|f| ctx.path(f)).collect();
            import(ctx, &files, pin_roots)
        }
    }
}

fn export(ctx: &mut Ctx<'_>, cid: &str, output: Option<std::path::PathBuf>) -> Result<()> {
    let root = cid_arg(cid)?;
    let src: &dyn BlockSource = ctx.source;
    let write_car = |w: &mut dyn Write| -> Result<()> {
        let mut car = CarWriter::new(w, &[root])?;
        walk_dag(src, &root, &mut |cid, data| {
            car.write_block(cid, data)
                .map_err(|e| crate::content::exporter::ExportError::Write(std::io::Error::other(e)))
        })?;
        car.finish()?;
        Ok(())
    };
    match output {
        None => write_car(ctx.out)?,
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            {
                let mut w = std::io::BufWriter::new(tmp.as_file_mut());
                write_car(&mut w)?;
                w.flush()?;
            }
            tmp.persist(&path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

fn import(ctx: &mut Ctx<'_>, files: &[std::path::PathBuf], pin_roots: bool) -> Result<()> {
    let repo = ctx.repo;
    let mut roots = Vec::new();
    let mut blocks = 0u64;
    for path in files {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut car = CarReader::new(std::io::BufReader::new(file))
            .with_context(|| format!("reading {}", path.display()))?;
        roots.extend_from_slice(car.roots());
        while let Some((cid, data)) = car
            .next_block()
            .with_context(|| format!("reading {}", path.display()))?
        {
            repo.blocks().put_verified(&cid, &data)?;
            blocks += 1;
        }
    }
    repo.blocks().flush()?;
    let mut failed = 0;
    if pin_roots {
        for root in &roots {
            let report =
                crate::store::walk::walk_dag(repo.blocks(), root, &mut HashSet::new(), |_| true)?;
            if report.is_complete() {
                repo.pins().add(root, PinMode::Recursive)?;
                ctx.line(format_args!("Pinned root\t{root}\tsuccess"))?;
            } else {
                failed += 1;
                ctx.line(format_args!(
                    "Pinned root\t{root}\tFAILED: DAG incomplete ({} blocks missing)",
                    report.missing.len()
                ))?;
            }
        }
        repo.pins().flush()?;
    }
    tracing::info!(blocks, roots = roots.len(), "imported CAR");
    if failed > 0 {
        bail!(
            "{failed} root(s) could not be pinned because their DAG is incomplete (blocks were imported)"
        );
    }
    Ok(())
}
