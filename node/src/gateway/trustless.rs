//! Trustless gateway responses: the single block a path resolves to
//! (`application/vnd.ipld.raw`) and CAR v1 streams (`application/vnd.ipld.car; version=1;
//! order=dfs; dups=n`) holding the blocks that prove the path from the root CID and then,
//! per `dag-scope`, the terminal block, the UnixFS entity (a file, or the `entity-bytes` part
//! of it; a directory's own blocks) or the whole DAG below.
//!
//! The CAR is written by [`CarTee`]: a block source wrapper that appends every block the
//! exporter reads to the CAR the first time it is read. Because the exporter reads in path,
//! then file or pre-order DAG order, the CAR comes out depth-first without duplicates, and it
//! holds exactly the blocks a client needs to verify the answer itself.

use bytes::Bytes;
use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write;

use cid::Cid;
use sha2::{Digest, Sha256};

use super::error::GatewayError;
use super::reply::{Body, IMMUTABLE, Reply};
use super::request::{CarOptions, ContentRequest, DagScope};
use super::respond::{fetch_block, not_modified};
use crate::car::CarWriter;
use crate::content::cid::IpfsPath;
use crate::content::exporter::{self, BlockSource, ExportError, NodeKind, SourceError};
use crate::content::walk::walk_dag;

/// Content-Type of CAR responses: what the stream is, declared in full.
pub const CAR_CONTENT_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";

type Headers = Vec<(&'static str, String)>;

/// `?format=raw`: the block at the end of the path.
pub fn raw(
    src: &dyn BlockSource,
    req: &ContentRequest,
    cid: Cid,
    common: Headers,
) -> Result<Reply, GatewayError> {
    let reply = head(req, format!("\"{cid}.raw\""), &common);
    if reply.status == 304 {
        return Ok(reply);
    }
    let bytes = fetch_block(src, &cid)?;
    Ok(reply
        .header("Content-Type", "application/vnd.ipld.raw")
        .header(
            "Content-Disposition",
            format!("attachment; filename=\"{cid}.bin\""),
        )
        .body(Body::Bytes(bytes)))
}

/// `?format=car`: headers now, the CAR streamed by a job.
pub fn car(req: &ContentRequest, cid: Cid, opts: CarOptions, common: Headers) -> Reply {
    let reply = head(req, car_etag(req, &cid, opts), &common);
    if reply.status == 304 {
        return reply;
    }
    let path = IpfsPath {
        root: req.root,
        segments: req.segments.clone(),
    };
    reply
        .header("Content-Type", CAR_CONTENT_TYPE)
        .header(
            "Content-Disposition",
            format!("attachment; filename=\"{cid}.car\""),
        )
        .body(Body::Stream {
            len: None,
            job: Box::new(move |src, out| write_car(src, out, &path, opts)),
        })
}

/// Status and headers shared by raw and CAR answers: 304 when `If-None-Match` names `etag`.
fn head(req: &ContentRequest, etag: String, common: &Headers) -> Reply {
    let status = if not_modified(req, &etag) { 304 } else { 200 };
    Reply::new(status)
        .headers(common)
        .header("ETag", etag)
        .header("Cache-Control", IMMUTABLE)
        .header("X-Content-Type-Options", "nosniff")
}

/// Weak: the same blocks may be written differently by another gateway. The suffix covers
/// everything that changes which blocks are sent.
fn car_etag(req: &ContentRequest, cid: &Cid, opts: CarOptions) -> String {
    let mut h = Sha256::new();
    h.update(req.content_path().as_bytes());
    h.update(opts.scope.as_str().as_bytes());
    if let Some(b) = opts.entity_bytes {
        h.update(format!("{}:{:?}", b.from, b.to).as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{cid}.car.{hex}\"")
}

/// Write the CAR for `path` with `opts` to `out`.
pub fn write_car(
    src: &dyn BlockSource,
    out: &mut dyn Write,
    path: &IpfsPath,
    opts: CarOptions,
) -> Result<(), GatewayError> {
    let writer = CarWriter::new(out, &[path.root])
        .map_err(|e| GatewayError::Internal(format!("writing the CAR header: {e}")))?;
    let tee = CarTee {
        src,
        car: RefCell::new(writer),
        written: RefCell::new(HashSet::new()),
    };
    let export = GatewayError::from_export;
    let target = exporter::resolve(&tee, path).map_err(export)?;
    match opts.scope {
        DagScope::Block => {
            tee.get_block(&target).map_err(|source| {
                export(ExportError::Source {
                    cid: target,
                    source,
                })
            })?;
        }
        DagScope::All => walk_dag(&tee, &target, &mut |_, _| Ok(())).map_err(export)?,
        DagScope::Entity => entity(&tee, &target, opts).map_err(export)?,
    }
    tee.car
        .into_inner()
        .finish()
        .map_err(|e| GatewayError::Internal(format!("finishing the CAR: {e}")))?;
    Ok(())
}

/// The blocks of the UnixFS entity at `target` (read through the tee, which records them).
fn entity(tee: &CarTee<'_, '_>, target: &Cid, opts: CarOptions) -> Result<(), ExportError> {
    let info = match exporter::stat(tee, target) {
        // Not UnixFS: the entity is the block itself, already written by stat.
        Err(ExportError::UnsupportedCodec { .. }) => return Ok(()),
        other => other?,
    };
    match info.kind {
        NodeKind::File => {
            let (offset, length) = match opts.entity_bytes {
                Some(b) => b.resolve(info.size),
                None => (0, info.size),
            };
            if length > 0 {
                exporter::read_range(tee, target, offset, Some(length), &mut std::io::sink())?;
            }
        }
        NodeKind::Directory | NodeKind::ShardedDirectory => {
            exporter::list(tee, target)?;
        }
        NodeKind::Symlink(_) => {}
    }
    Ok(())
}

/// A [`BlockSource`] that appends each block it returns to a CAR, once.
struct CarTee<'s, 'w> {
    src: &'s dyn BlockSource,
    car: RefCell<CarWriter<&'w mut dyn Write>>,
    written: RefCell<HashSet<Cid>>,
}

impl BlockSource for CarTee<'_, '_> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, SourceError> {
        let block = self.src.get_block(cid)?;
        if let Some(bytes) = &block
            && self.written.borrow_mut().insert(*cid)
        {
            self.car.borrow_mut().write_block(cid, bytes)?;
        }
        Ok(block)
    }

    // Hints pass through: the blocks reach the CAR when they are read.
    fn prefetch(&self, cids: &[Cid]) -> Result<(), SourceError> {
        self.src.prefetch(cids)
    }

    fn prefetch_next(&self, cids: &[Cid]) {
        self.src.prefetch_next(cids);
    }

    fn prefetch_blocks(&self, cids: &[Cid]) -> Result<(), SourceError> {
        self.src.prefetch_blocks(cids)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::car::CarReader;
    use crate::content::directory::{DirEntry, build_directory};
    use crate::content::importer::{ImportOptions, import_bytes};
    use crate::gateway::range::EntityBytes;

    /// A directory `d` with a 3-chunk file `f` (chunks of 100 bytes) and a one-block file `g`.
    fn fixture() -> (HashMap<Cid, Vec<u8>>, Cid, Cid) {
        let mut blocks = HashMap::new();
        let mut opts = ImportOptions::default().with_cid_version(1);
        opts.chunker = "size-100".parse().unwrap();
        let data: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        let f = import_bytes(&data, &opts, &mut blocks).unwrap();
        let g = import_bytes(b"small", &opts, &mut blocks).unwrap();
        let file_cid = f.cid;
        let entries = vec![
            DirEntry {
                name: "f".into(),
                child: f,
            },
            DirEntry {
                name: "g".into(),
                child: g,
            },
        ];
        let d = build_directory(entries, &opts, &mut blocks).unwrap();
        (blocks, d.cid, file_cid)
    }

    fn car_blocks(src: &HashMap<Cid, Vec<u8>>, path: &IpfsPath, opts: CarOptions) -> Vec<Cid> {
        let mut out = Vec::new();
        write_car(src, &mut out, path, opts).unwrap();
        let mut reader = CarReader::new(&out[..]).unwrap();
        assert_eq!(reader.roots(), &[path.root]);
        let mut cids = Vec::new();
        while let Some((cid, _)) = reader.next_block().unwrap() {
            cids.push(cid);
        }
        cids
    }

    #[test]
    fn scopes_select_blocks() {
        let (blocks, dir, file) = fixture();
        let file_node = crate::content::dagpb::PbNode::decode(&blocks[&file]).unwrap();
        let leaves: Vec<Cid> = file_node.links.iter().map(|l| l.cid).collect();
        assert_eq!(leaves.len(), 3);
        let path = IpfsPath {
            root: dir,
            segments: vec!["f".into()],
        };
        let opts = |scope, entity_bytes| CarOptions {
            scope,
            entity_bytes,
        };
        assert_eq!(
            car_blocks(&blocks, &path, opts(DagScope::Block, None)),
            vec![dir, file]
        );
        let mut all = vec![dir, file];
        all.extend(&leaves);
        assert_eq!(
            car_blocks(&blocks, &path, opts(DagScope::Entity, None)),
            all
        );
        assert_eq!(car_blocks(&blocks, &path, opts(DagScope::All, None)), all);
        let middle = Some(EntityBytes {
            from: 120,
            to: Some(150),
        });
        assert_eq!(
            car_blocks(&blocks, &path, opts(DagScope::Entity, middle)),
            vec![dir, file, leaves[1]]
        );
        let root_only = IpfsPath {
            root: dir,
            segments: vec![],
        };
        assert_eq!(
            car_blocks(&blocks, &root_only, opts(DagScope::Entity, None)),
            vec![dir]
        );
        assert_eq!(
            car_blocks(&blocks, &root_only, opts(DagScope::All, None)).len(),
            6
        );
    }
}
