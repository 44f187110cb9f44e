//! `distribute dag export|import`: whole DAGs as CAR v1 files. Export writes to a temporary
//! file and renames it, so a failed export leaves no partial CAR; import verifies every block
//! before storing it and pins roots only once their DAG is complete. Through a daemon: its
//! `dag/export` answer written the same way, and the CAR files streamed to `dag/import`.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, Result};

use super::args::DagCommand;
use super::output::{Ctx, cid_arg, line};
use super::remote::{Remote, args, copy_body};
use super::upload::{MultipartBody, Part, PartBody, content_type};
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
    write_output(ctx.out, output, write_car)
}

/// Write to `out`, or to the file `output` through a temporary file renamed at the end.
fn write_output(
    out: &mut dyn Write,
    output: Option<std::path::PathBuf>,
    write_car: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match output {
        None => write_car(out)?,
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

/// A root's line after an import; `None` message means pinned.
fn pinned_line(out: &mut dyn Write, root: &str, failure: Option<&str>) -> Result<()> {
    match failure {
        None => line(out, format_args!("Pinned root\t{root}\tsuccess")),
        Some(message) => line(out, format_args!("Pinned root\t{root}\tFAILED: {message}")),
    }
}

fn import_failed(failed: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "{failed} root(s) could not be pinned because their DAG is incomplete (blocks were imported)"
    )
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportLine {
    root: Option<ImportRoot>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportRoot {
    cid: CidLink,
    pin_error_msg: String,
}

#[derive(serde::Deserialize)]
struct CidLink {
    #[serde(rename = "/")]
    cid: String,
}

/// `dag` through a daemon.
pub(super) fn remote(
    remote: &Remote,
    cmd: DagCommand,
    cwd: &std::path::Path,
    out: &mut dyn Write,
) -> Result<()> {
    match cmd {
        DagCommand::Export { cid, output } => {
            cid_arg(&cid)?;
            let body = remote.call("dag/export", &args(&[cid]), None)?;
            write_output(out, output.map(|o| cwd.join(o)), |w| {
                copy_body(&mut body.into_reader(), w)?;
                Ok(())
            })
        }
        DagCommand::Import { files, pin_roots } => {
            let mut parts = Vec::with_capacity(files.len());
            for file in files {
                let path = cwd.join(&file);
                // Open now, so a missing file fails as it does offline.
                std::fs::File::open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                parts.push(Part {
                    name: file.display().to_string(),
                    body: PartBody::File(path),
                });
            }
            let mut body = MultipartBody::new(parts);
            let kind = content_type();
            let mut failed = 0;
            remote.lines(
                "dag/import",
                &vec![("pin-roots", pin_roots.to_string())],
                Some((&kind, &mut body)),
                &mut |l: ImportLine| {
                    let Some(root) = l.root else { return Ok(()) };
                    let failure = (!root.pin_error_msg.is_empty()).then_some(root.pin_error_msg);
                    failed += usize::from(failure.is_some());
                    pinned_line(out, &root.cid.cid, failure.as_deref())
                },
            )?;
            if failed > 0 {
                return Err(import_failed(failed));
            }
            Ok(())
        }
    }
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
                pinned_line(ctx.out, &root.to_string(), None)?;
            } else {
                failed += 1;
                let message = format!("DAG incomplete ({} blocks missing)", report.missing.len());
                pinned_line(ctx.out, &root.to_string(), Some(&message))?;
            }
        }
        repo.pins().flush()?;
    }
    tracing::info!(blocks, roots = roots.len(), "imported CAR");
    if failed > 0 {
        return Err(import_failed(failed));
    }
    Ok(())
}
