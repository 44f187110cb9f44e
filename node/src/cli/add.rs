//! `distribute add`: import files and trees, print `added <cid> <name>` per entry (root last),
//! then pin the roots — after every block is durable, so a crash never leaves a pin on a
//! partial DAG. Through a daemon the same tree is streamed to its `add` as multipart parts
//! ([`super::upload`]) and its answer printed the same way.

use std::path::Path;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::args::AddArgs;
use super::output::{Ctx, line};
use super::remote::Remote;
use super::upload::{MultipartBody, content_type, tree_parts};
use crate::content::importer::{ImportOptions, Layout, Profile};
use crate::fsimport::{AddOptions, FsImportError, add_path};
use crate::ops::add::AddEvent;
use crate::store::PipelinedSink;
use crate::store::pins::PinMode;

/// Inputs at least this large get a progress bar when stderr is a terminal.
const PROGRESS_THRESHOLD: u64 = 1_000_000;
/// Threads writing blocks to the store while the importer hashes the next ones.
const STORE_WRITERS: usize = 4;

fn import_options(a: &AddArgs) -> ImportOptions {
    let mut opts = ImportOptions::profile(a.profile);
    if let Some(v) = a.cid_version {
        opts = opts.with_cid_version(v);
    }
    if let Some(raw) = a.raw_leaves {
        opts.raw_leaves = raw;
    }
    if let Some(chunker) = a.chunker {
        opts.chunker = chunker;
    }
    if a.trickle {
        opts.layout = Layout::Trickle;
    }
    opts
}

/// Bytes of regular files under the inputs (for the progress bar), without reading them.
fn input_size(a: &AddArgs, cwd: &Path) -> u64 {
    fn walk(path: &std::path::Path, total: &mut u64) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                for entry in entries.flatten() {
                    walk(&entry.path(), total);
                }
            }
        } else if meta.is_file() {
            *total += meta.len();
        }
    }
    let mut total = 0;
    for p in &a.paths {
        walk(&cwd.join(p), &mut total);
    }
    total
}

/// Fail, naming the path, unless every input exists and directories come with `-r`.
pub(super) fn check_inputs(a: &AddArgs, cwd: &Path) -> Result<()> {
    for path in &a.paths {
        match std::fs::metadata(cwd.join(path)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!(FsImportError::NotFound(path.clone()))
            }
            Err(e) => bail!(FsImportError::Io {
                path: path.clone(),
                source: e
            }),
            Ok(meta) if meta.is_dir() && !a.recursive => {
                bail!(FsImportError::IsDirectory(path.clone()))
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

pub(super) fn run(ctx: &mut Ctx<'_>, a: &AddArgs) -> Result<()> {
    check_inputs(a, &ctx.cwd)?;
    let opts = AddOptions {
        import: import_options(a),
        recursive: a.recursive,
        hidden: a.hidden,
    };
    let repo = ctx.repo;
    let show_progress = a
        .progress
        .unwrap_or_else(|| ctx.interactive && input_size(a, &ctx.cwd) > PROGRESS_THRESHOLD);
    let bar = progress_bar(show_progress, a, &ctx.cwd);
    let out = &mut *ctx.out;
    let mut print_error = None;
    let roots = std::thread::scope(|scope| -> Result<Vec<_>> {
        let mut sink = PipelinedSink::new(scope, repo.blocks(), STORE_WRITERS);
        let mut roots = Vec::new();
        let mut add_error = None;
        for path in &a.paths {
            let done_before = bar.position();
            let added = add_path(
                &ctx.cwd.join(path),
                &opts,
                &mut sink,
                &mut |entry| {
                    if a.quieter || print_error.is_some() {
                        return;
                    }
                    let printed = if a.quiet {
                        line(out, format_args!("{}", entry.cid))
                    } else {
                        line(out, format_args!("added {} {}", entry.cid, entry.name))
                    };
                    if let Err(e) = printed {
                        print_error = Some(e);
                    }
                },
                &mut |n| bar.set_position(done_before + n),
            );
            match added {
                Ok(root) => roots.push(root),
                Err(e) => {
                    add_error = Some(e);
                    break;
                }
            }
        }
        // A store error explains an import error that follows from it, so it comes first.
        sink.finish()?;
        match add_error {
            Some(e) => Err(e.into()),
            None => Ok(roots),
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = print_error {
        return Err(e);
    }
    repo.blocks().flush()?;
    if a.pin {
        for root in &roots {
            repo.pins().add(&root.cid, PinMode::Recursive)?;
        }
        repo.pins().flush()?;
    }
    if a.quieter
        && let Some(last) = roots.last()
    {
        ctx.line(format_args!("{}", last.cid))?;
    }
    Ok(())
}

fn progress_bar(show: bool, a: &AddArgs, cwd: &Path) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(input_size(a, cwd));
    bar.set_style(
        ProgressStyle::with_template("{bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The daemon's `add` options for `a`.
fn remote_params(a: &AddArgs, progress: bool) -> Vec<(&'static str, String)> {
    let profile = match a.profile {
        Profile::UnixfsV0_2015 => "unixfs-v0-2015",
        Profile::UnixfsV1_2025 => "unixfs-v1-2025",
    };
    let mut params = vec![
        ("profile", profile.to_owned()),
        ("pin", a.pin.to_string()),
        ("progress", progress.to_string()),
    ];
    if let Some(v) = a.cid_version {
        params.push(("cid-version", v.to_string()));
    }
    if let Some(raw) = a.raw_leaves {
        params.push(("raw-leaves", raw.to_string()));
    }
    if let Some(chunker) = a.chunker {
        params.push(("chunker", chunker.to_string()));
    }
    if a.trickle {
        params.push(("trickle", "true".into()));
    }
    params
}

/// `add` through a daemon: every path's tree in one multipart body; the answer's entries
/// printed as offline (roots are the top-level entries, pinned by the daemon).
pub(super) fn remote(
    remote: &Remote,
    a: &AddArgs,
    cwd: &Path,
    interactive: bool,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let mut parts = Vec::new();
    for path in &a.paths {
        parts.extend(tree_parts(&cwd.join(path), a.recursive, a.hidden)?);
    }
    let show_progress = a
        .progress
        .unwrap_or_else(|| interactive && input_size(a, cwd) > PROGRESS_THRESHOLD);
    let bar = progress_bar(show_progress, a, cwd);
    let roots: std::collections::HashSet<String> = parts
        .iter()
        .filter(|p| !p.name.contains('/'))
        .map(|p| p.name.clone())
        .collect();
    let mut last_root = None;
    // Bytes of finished files plus the file being read.
    let (mut done, mut current) = (0u64, (String::new(), 0u64));
    let mut body = MultipartBody::new(parts);
    let kind = content_type();
    let result = remote.lines(
        "add",
        &remote_params(a, show_progress),
        Some((&kind, &mut body)),
        &mut |event: AddEvent| {
            match event {
                AddEvent::Progress(p) => {
                    if p.name != current.0 {
                        done += current.1;
                        current = (p.name, 0);
                    }
                    current.1 = p.bytes;
                    bar.set_position(done + current.1);
                }
                AddEvent::Added(entry) => {
                    if roots.contains(&entry.name) {
                        last_root = Some(entry.hash.clone());
                    }
                    if a.quieter {
                        return Ok(());
                    }
                    if a.quiet {
                        line(out, format_args!("{}", entry.hash))?;
                    } else {
                        line(out, format_args!("added {} {}", entry.hash, entry.name))?;
                    }
                }
            }
            Ok(())
        },
    );
    bar.finish_and_clear();
    result?;
    if a.quieter
        && let Some(last) = last_root
    {
        line(out, format_args!("{last}"))?;
    }
    Ok(())
}
