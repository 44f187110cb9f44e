//! Reading content back out: `cat` (bytes, optionally a range), `ls` (directory entries) and
//! `get` (a file or a whole tree written to disk). Names coming from the DAG are checked before
//! they become paths, so a hostile directory cannot write outside the output folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cid::Cid;

use super::args::{CatArgs, GetArgs, LsArgs};
use super::output::{Ctx, path_arg};
use crate::content::directory::validate_name;
use crate::content::exporter::{BlockSource, NodeKind, list, read_range, resolve, stat};

pub(super) fn cat(ctx: &mut Ctx<'_>, a: &CatArgs) -> Result<()> {
    let path = path_arg(&a.path)?;
    let cid = resolve(ctx.source, &path)?;
    read_range(ctx.source, &cid, a.offset, a.length, ctx.out)?;
    Ok(())
}

pub(super) fn ls(ctx: &mut Ctx<'_>, a: &LsArgs) -> Result<()> {
    let path = path_arg(&a.path)?;
    let cid = resolve(ctx.source, &path)?;
    for entry in list(ctx.source, &cid)? {
        let info = stat(ctx.source, &entry.cid)?;
        let (size, suffix) = match info.kind {
            NodeKind::Directory | NodeKind::ShardedDirectory => (entry.tsize, "/"),
            _ => (info.size, ""),
        };
        ctx.line(format_args!(
            "{} {} {}{}",
            entry.cid, size, entry.name, suffix
        ))?;
    }
    Ok(())
}

pub(super) fn get(ctx: &mut Ctx<'_>, a: &GetArgs) -> Result<()> {
    let path = path_arg(&a.path)?;
    let src = ctx.source;
    let cid = resolve(src, &path)?;
    let default_name = path
        .segments
        .last()
        .cloned()
        .unwrap_or_else(|| path.root.to_string());
    let out = ctx.path(
        &a.out
            .clone()
            .or_else(|| a.output.clone())
            .unwrap_or_else(|| PathBuf::from(default_name)),
    );
    if out.symlink_metadata().is_ok() {
        bail!(
            "{}: already exists; choose another output path",
            out.display()
        );
    }
    // Write into a sibling temporary name and rename at the end: no half-written output.
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile_name(parent, &out);
    let result = write_tree(src, &cid, &tmp);
    // Reading fetched the DAG when it was not local (through a daemon): say from where.
    for r in src.take_fetch_reports() {
        writeln!(
            ctx.out,
            "fetching from {}… done ({} in {:.2?})",
            r.peer,
            indicatif::HumanBytes(r.bytes),
            r.elapsed
        )?;
    }
    match result {
        Ok(()) => std::fs::rename(&tmp, &out)
            .with_context(|| format!("renaming into {}", out.display()))?,
        Err(e) => {
            let _ = remove_any(&tmp);
            return Err(e);
        }
    }
    eprintln!("Saving file(s) to {}", out.display());
    Ok(())
}

fn tempfile_name(parent: &Path, out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent.join(format!(".{name}.distribute-partial-{}", std::process::id()))
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

fn write_tree(src: &dyn BlockSource, cid: &Cid, dest: &Path) -> Result<()> {
    match stat(src, cid)?.kind {
        NodeKind::File => {
            let file = std::fs::File::create(dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            let mut w = std::io::BufWriter::new(file);
            read_range(src, cid, 0, None, &mut w)?;
            w.flush()?;
        }
        NodeKind::Directory | NodeKind::ShardedDirectory => {
            std::fs::create_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
            for entry in list(src, cid)? {
                validate_name(&entry.name)
                    .with_context(|| format!("unsafe name in directory {cid}"))?;
                write_tree(src, &entry.cid, &dest.join(&entry.name))?;
            }
        }
        NodeKind::Symlink(target) => {
            std::os::unix::fs::symlink(&target, dest)
                .with_context(|| format!("creating symlink {}", dest.display()))?;
        }
    }
    Ok(())
}
