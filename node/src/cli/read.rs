//! Reading content back out: `cat` (bytes, optionally a range), `ls` (directory entries) and
//! `get` (a file or a whole tree written to disk), offline on the repository or through a
//! daemon's `cat`, `ls` and `get` (a tar stream, unpacked here). Names coming from the DAG or
//! the tar are checked before they become paths, so a hostile directory cannot write outside
//! the output folder; output goes to a temporary sibling renamed at the end.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cid::Cid;
use indicatif::{ProgressBar, ProgressStyle};

use super::args::{CatArgs, GetArgs, LsArgs};
use super::output::{Ctx, line, path_arg};
use super::remote::{Remote, args, copy_body};
use crate::api::get::{FETCHED_HEADER, decode_fetch};
use crate::api::read::LsObject;
use crate::content::directory::validate_name;
use crate::content::exporter::{
    BlockSource, FetchReport, NodeKind, list, read_range, resolve, stat,
};
use crate::tar::{EntryKind, TarReader};

pub(super) fn cat(ctx: &mut Ctx<'_>, a: &CatArgs) -> Result<()> {
    let path = path_arg(&a.path)?;
    let cid = resolve(ctx.source, &path)?;
    read_range(ctx.source, &cid, a.offset, a.length, ctx.out)?;
    Ok(())
}

pub(super) fn ls(ctx: &mut Ctx<'_>, a: &LsArgs) -> Result<()> {
    let path = path_arg(&a.path)?;
    let cid = resolve(ctx.source, &path)?;
    if !matches!(
        stat(ctx.source, &cid)?.kind,
        NodeKind::Directory | NodeKind::ShardedDirectory
    ) {
        return Ok(()); // a file or symlink has no entries (as in Kubo and the API)
    }
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

pub(super) fn cat_remote(remote: &Remote, a: &CatArgs, out: &mut dyn Write) -> Result<()> {
    path_arg(&a.path)?;
    let mut params = args(std::slice::from_ref(&a.path));
    params.push(("offset", a.offset.to_string()));
    if let Some(length) = a.length {
        params.push(("length", length.to_string()));
    }
    let body = remote.call("cat", &params, None)?;
    copy_body(&mut body.into_reader(), out)?;
    Ok(())
}

pub(super) fn ls_remote(remote: &Remote, a: &LsArgs, out: &mut dyn Write) -> Result<()> {
    path_arg(&a.path)?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        objects: Vec<LsObject>,
    }
    let answer: Answer = remote.json("ls", &args(std::slice::from_ref(&a.path)))?;
    for object in answer.objects {
        for link in object.links {
            let suffix = if link.kind == 1 { "/" } else { "" };
            line(
                out,
                format_args!("{} {} {}{}", link.hash, link.size, link.name, suffix),
            )?;
        }
    }
    Ok(())
}

/// Where `get` writes: the output argument, or the path's last name in the working folder;
/// it must not exist yet.
fn output_path(a: &GetArgs, cwd: &Path) -> Result<PathBuf> {
    let path = path_arg(&a.path)?;
    let default_name = path
        .segments
        .last()
        .cloned()
        .unwrap_or_else(|| path.root.to_string());
    let out = a
        .out
        .clone()
        .or_else(|| a.output.clone())
        .unwrap_or_else(|| PathBuf::from(default_name));
    let out = if out.is_absolute() {
        out
    } else {
        cwd.join(out)
    };
    if out.symlink_metadata().is_ok() {
        bail!(
            "{}: already exists; choose another output path",
            out.display()
        );
    }
    Ok(out)
}

/// Run `write` into a temporary sibling of `out`, then rename it into place; nothing is left
/// behind on failure.
fn write_then_rename(out: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile_name(parent, out);
    match write(&tmp) {
        Ok(()) => {
            std::fs::rename(&tmp, out).with_context(|| format!("renaming into {}", out.display()))
        }
        Err(e) => {
            let _ = remove_any(&tmp);
            Err(e)
        }
    }
}

/// "fetching from <peer>… done (<size> in <time>)" on stderr, one line per fetch.
fn report_fetches(reports: &[FetchReport]) {
    for r in reports {
        eprintln!(
            "fetching from {}… done ({} in {:.2?})",
            r.peer,
            indicatif::HumanBytes(r.bytes),
            r.elapsed
        );
    }
}

pub(super) fn get(ctx: &mut Ctx<'_>, a: &GetArgs) -> Result<()> {
    let out = output_path(a, &ctx.cwd)?;
    let src = ctx.source;
    let cid = resolve(src, &path_arg(&a.path)?)?;
    let result = write_then_rename(&out, |tmp| write_tree(src, &cid, tmp));
    // Reading fetched the DAG when it was not local: say from where.
    report_fetches(&src.take_fetch_reports());
    result?;
    eprintln!("Saving file(s) to {}", out.display());
    Ok(())
}

/// `get` through a daemon: its tar answer unpacked into the output path, with a progress
/// bar on a terminal.
pub(super) fn get_remote(
    remote: &Remote,
    a: &GetArgs,
    cwd: &Path,
    interactive: bool,
) -> Result<()> {
    let out = output_path(a, cwd)?;
    let spinner = if interactive {
        let bar = ProgressBar::new_spinner();
        bar.set_message("resolving and fetching…");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let response = remote.call_response("get", &args(std::slice::from_ref(&a.path)), None);
    spinner.finish_and_clear();
    let response = response?;
    let headers = response.headers();
    let reports: Vec<FetchReport> = headers
        .get_all(FETCHED_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok().and_then(decode_fetch))
        .collect();
    report_fetches(&reports);
    let total: Option<u64> = headers
        .get("x-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bar = match total {
        Some(total) if interactive => {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }
        _ => ProgressBar::hidden(),
    };
    let body = bar.wrap_read(response.into_body().into_reader());
    let result = write_then_rename(&out, |tmp| untar(TarReader::new(body), tmp));
    bar.finish_and_clear();
    result?;
    eprintln!("Saving file(s) to {}", out.display());
    Ok(())
}

/// Unpack a `get` answer: its first entry becomes `dest`, every other entry must lie below it.
fn untar<R: Read>(mut tar: TarReader<R>, dest: &Path) -> Result<()> {
    let mut root: Option<String> = None;
    while let Some(entry) = tar.next_entry()? {
        let target = match &root {
            None => {
                root = Some(entry.path.clone());
                dest.to_owned()
            }
            Some(root) => {
                let rest = entry
                    .path
                    .strip_prefix(root.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .with_context(|| {
                        format!("the daemon sent {:?}, outside {root:?}", entry.path)
                    })?;
                let mut target = dest.to_owned();
                for name in rest.split('/') {
                    validate_name(name).with_context(|| {
                        format!("unsafe name in the daemon's answer: {:?}", entry.path)
                    })?;
                    target.push(name);
                }
                target
            }
        };
        match entry.kind {
            EntryKind::Directory => std::fs::create_dir(&target)
                .with_context(|| format!("creating {}", target.display()))?,
            EntryKind::Symlink(link) => std::os::unix::fs::symlink(&link, &target)
                .with_context(|| format!("creating symlink {}", target.display()))?,
            EntryKind::File => {
                let file = std::fs::File::create(&target)
                    .with_context(|| format!("creating {}", target.display()))?;
                let mut w = std::io::BufWriter::new(file);
                std::io::copy(&mut tar.body(), &mut w)
                    .with_context(|| format!("writing {}", target.display()))?;
                w.flush()?;
            }
        }
    }
    if root.is_none() {
        bail!("the daemon's answer to get holds no entry");
    }
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
