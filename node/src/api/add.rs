//! `add`: a `multipart/form-data` body streamed into the importer. Each part is an entry
//! (`application/x-directory` parts are directories, `application/symlink` parts symlinks,
//! others files), named by its URL-encoded `filename`. The body is parsed on the async side
//! ([`super::multipart`]) and handed over a bounded channel to the importer on a blocking
//! thread, so a file of any size flows through in constant memory. The answer is NDJSON:
//! `{"Name","Hash","Size"}` per entry post-order (and `{"Name","Bytes"}` with
//! `progress=true`); the roots are pinned (`pin=true`, the default) once the blocks are
//! flushed. Entry lines never wait for the client to read them (it may still be sending),
//! progress lines are dropped when it lags. Options as Kubo: `cid-version`, `raw-leaves`, `chunker`, `trickle`,
//! `wrap-with-directory`, `progress`, `pin`, `hash` (sha2-256 only).

use std::cell::RefCell;
use std::io::Read;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use warp::reply::Response;

use super::body::{NdjsonSink, ndjson_blocking_deep};
use super::multipart::{self, Parser, PartHead};
use super::upload::{Feed, PartReader, boundary, feed};
use super::{ApiError, Call, Commands, NodeState};
use crate::content::chunker::ChunkerSpec;
use crate::content::importer::{ImportOptions, Layout, Profile};
use crate::ops::OpError;
use crate::ops::add::{AddEvent, AddProgress, AddedEntry, TreeAdder};
use crate::repo::Repo;
use crate::store::PipelinedSink;
use crate::store::pins::PinMode;

/// Parsed pieces in flight from the request body to the importer.
const FEED_DEPTH: usize = 32;
/// Threads writing blocks while the importer hashes.
const STORE_WRITERS: usize = 4;
/// Progress lines at most every this many bytes of a file.
const PROGRESS_STEP: u64 = 1 << 20;
/// Longest symlink target accepted.
const MAX_SYMLINK: usize = 4096;

pub(super) fn register(commands: &mut Commands, node: &Arc<NodeState>) {
    commands.add("add", node, add);
}

/// The request's add options.
struct Options {
    import: ImportOptions,
    pin: bool,
    wrap: bool,
    progress: bool,
}

fn options(call: &Call) -> Result<Options, ApiError> {
    let profile: Option<Profile> = call.parsed("profile")?;
    let mut import = ImportOptions::profile(profile.unwrap_or(Profile::UnixfsV0_2015));
    match call.parsed::<u8>("cid-version")? {
        None => {}
        Some(v @ (0 | 1)) => import = import.with_cid_version(v),
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "option \"cid-version\": {v} is not 0 or 1"
            )));
        }
    }
    if let Some(raw) = call.option("raw-leaves") {
        import.raw_leaves = call.flag("raw-leaves", raw.is_empty())?;
    }
    if let Some(chunker) = call.parsed::<ChunkerSpec>("chunker")? {
        import.chunker = chunker;
    }
    if call.flag("trickle", false)? {
        import.layout = Layout::Trickle;
    }
    if let Some(hash) = call.option("hash")
        && hash != "sha2-256"
    {
        return Err(ApiError::BadRequest(format!(
            "option \"hash\": {hash:?} is not supported (only sha2-256)"
        )));
    }
    if call.flag("only-hash", false)? {
        return Err(ApiError::BadRequest(
            "option \"only-hash\" is not supported".into(),
        ));
    }
    Ok(Options {
        import,
        pin: call.flag("pin", true)?,
        wrap: call.flag("wrap-with-directory", false)?,
        progress: call.flag("progress", false)?,
    })
}

async fn add(node: Arc<NodeState>, call: Call) -> Result<Response, ApiError> {
    let boundary = boundary(&call)?;
    let opts = options(&call)?;
    let (tx, rx) = mpsc::channel(FEED_DEPTH);
    tokio::spawn(feed(call.body, Parser::new(&boundary), tx));
    let state = node;
    // Room for every entry line: clients send the whole body before reading the answer.
    let depth = 2 * multipart::MAX_PARTS;
    // The announcer is told once the roots are pinned (the answer starts long before).
    ndjson_blocking_deep(depth, move |out| {
        let result = import(&state.repo, rx, &opts, out);
        state.pins_may_have_changed();
        result
    })
    .await
}

/// A part's path: the file name without leading slashes (checked by the adder).
fn entry_path(head: &PartHead) -> &str {
    head.file_name.trim_start_matches('/')
}

/// The importer's side: build the tree from the feed, flush, pin, report.
fn import(
    repo: &Repo,
    mut rx: mpsc::Receiver<Feed>,
    opts: &Options,
    out: &mut NdjsonSink,
) -> Result<(), ApiError> {
    let out = RefCell::new(out);
    let failure = Mutex::new(None);
    let result = std::thread::scope(|scope| -> Result<Vec<_>, ApiError> {
        let mut sink = PipelinedSink::new(scope, repo.blocks(), STORE_WRITERS);
        let mut on_entry = |path: &str, child: &crate::content::layout::Child| {
            let entry = AddedEntry {
                name: path.to_owned(),
                hash: child.cid.to_string(),
                size: child.tsize.to_string(),
            };
            out.borrow_mut()
                .send(&AddEvent::Added(entry))
                .map_err(|e| OpError::Refused(e.to_string()))
        };
        let mut adder = TreeAdder::new(opts.import.clone(), &mut sink, &mut on_entry);
        let added = parts(&mut adder, &mut rx, opts, &out, &failure);
        let roots = added.and_then(|()| Ok(adder.finish(opts.wrap)?));
        // A store error explains an import error that follows from it, so it comes first.
        sink.finish()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        roots
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let roots = result?;
    repo.blocks()
        .flush()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if opts.pin {
        for root in &roots {
            repo.pins()
                .add(&root.cid, PinMode::Recursive)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        repo.pins()
            .flush()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(())
}

/// Feed every part to the adder.
fn parts(
    adder: &mut TreeAdder<'_>,
    rx: &mut mpsc::Receiver<Feed>,
    opts: &Options,
    out: &RefCell<&mut NdjsonSink>,
    failure: &Mutex<Option<ApiError>>,
) -> Result<(), ApiError> {
    while let Some(item) = rx.blocking_recv() {
        let head = match item {
            Feed::Start(head) => head,
            Feed::Fail(e) => return Err(e),
            Feed::Data(_) | Feed::End => continue,
        };
        let path = entry_path(&head).to_owned();
        let mut reader = PartReader::new(&mut *rx, failure);
        match head.content_type.as_str() {
            "application/x-directory" => {
                adder.directory(&path)?;
                std::io::copy(&mut reader, &mut std::io::sink())
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            }
            "application/symlink" => {
                let mut target = Vec::new();
                (&mut reader)
                    .take(MAX_SYMLINK as u64 + 1)
                    .read_to_end(&mut target)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                if target.len() > MAX_SYMLINK {
                    return Err(ApiError::TooLarge(format!(
                        "symlink {path:?}: target longer than {MAX_SYMLINK} bytes"
                    )));
                }
                adder.symlink(&path, &target)?;
            }
            _ => {
                let mut next_report = 0;
                let mut last = None;
                let report = |n: u64| {
                    let line = AddEvent::Progress(AddProgress {
                        name: path.clone(),
                        bytes: n,
                    });
                    out.borrow_mut().send_lossy(&line);
                };
                let mut on_bytes = |n: u64| {
                    last = Some(n);
                    if opts.progress && n >= next_report {
                        next_report = n + PROGRESS_STEP;
                        report(n);
                        last = None;
                    }
                };
                adder.file(&path, reader, &mut on_bytes)?;
                // The final count, unless it was the last one reported.
                if let Some(n) = last
                    && opts.progress
                {
                    report(n);
                }
            }
        }
    }
    Ok(())
}
