//! File reads: [`read_range`] writes a byte range of a UnixFS file (raw leaves, file nodes
//! with inline data and `blocksizes`) to a writer. It descends only into children that overlap
//! the range, prefetches the runs [`prefetch_runs`] plans, and announces each node's next run
//! while it reads one.

use std::io::Write;

use bytes::Bytes;

use cid::Cid;

use super::prefetch::{PREFETCH_WINDOW, prefetch_runs};
use super::{BlockSource, Decoded, ExportError, MAX_DEPTH, decode};
use crate::content::unixfs::DataType;

/// Write bytes `[offset, offset + length)` of the file at `cid` to `out` (to the end when
/// `length` is `None`). Returns the number of bytes written.
pub fn read_range(
    src: &dyn BlockSource,
    cid: &Cid,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    read_range_to(src, cid, offset, length, &mut Copying(out))
}

/// Where [`read_range_to`] puts file bytes: each piece is a slice of a block, so a sink that
/// queues them (an HTTP body) can keep them without copying.
pub trait ByteOut {
    fn put(&mut self, bytes: Bytes) -> std::io::Result<()>;
}

/// A plain writer as a [`ByteOut`]: the bytes are copied into it.
struct Copying<'a>(&'a mut dyn Write);

impl ByteOut for Copying<'_> {
    fn put(&mut self, bytes: Bytes) -> std::io::Result<()> {
        self.0.write_all(&bytes)
    }
}

impl ByteOut for Vec<u8> {
    fn put(&mut self, bytes: Bytes) -> std::io::Result<()> {
        self.extend_from_slice(&bytes);
        Ok(())
    }
}

/// [`read_range`] into a [`ByteOut`], which receives the blocks' own bytes.
pub fn read_range_to(
    src: &dyn BlockSource,
    cid: &Cid,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn ByteOut,
) -> Result<u64, ExportError> {
    let end = length.map_or(u64::MAX, |l| offset.saturating_add(l));
    let mut written = 0;
    if offset < end {
        let mut read = FileRead {
            src,
            from: offset,
            to: end,
            window: PREFETCH_WINDOW,
            out,
            written: &mut written,
        };
        read.node(cid, 0, 0)?;
    }
    Ok(written)
}

/// One [`read_range`]: where it reads from and writes to, and what it has written.
pub(super) struct FileRead<'a> {
    pub(super) src: &'a dyn BlockSource,
    /// The range, `[from, to)`.
    pub(super) from: u64,
    pub(super) to: u64,
    /// The prefetch window ([`PREFETCH_WINDOW`]; smaller in tests).
    pub(super) window: u64,
    pub(super) out: &'a mut dyn ByteOut,
    pub(super) written: &'a mut u64,
}

impl FileRead<'_> {
    /// Write the part of node `cid` (whose content starts at file position `start`) inside
    /// the range.
    pub(super) fn node(&mut self, cid: &Cid, start: u64, depth: usize) -> Result<(), ExportError> {
        if depth > MAX_DEPTH {
            return Err(ExportError::TooDeep(*cid));
        }
        let (node, mut data) = match decode(self.src, cid)? {
            Decoded::Raw(bytes) => return self.emit(bytes, start),
            Decoded::Unixfs(node, data) => (node, data),
        };
        match data.kind {
            DataType::File | DataType::Raw => {}
            DataType::Directory | DataType::HamtShard => {
                return Err(ExportError::IsDirectory(*cid));
            }
            _ => {
                return Err(ExportError::Malformed {
                    cid: *cid,
                    reason: "not a file node".into(),
                });
            }
        }
        let inline = data.data.take().unwrap_or_default();
        let inline_len = inline.len() as u64;
        self.emit(inline, start)?;
        if node.links.len() != data.blocksizes.len() {
            return Err(ExportError::Malformed {
                cid: *cid,
                reason: "blocksizes do not match links".into(),
            });
        }
        let mut next = start + inline_len;
        let spans: Vec<(u64, u64)> = data
            .blocksizes
            .iter()
            .map(|&size| {
                let span = (next, size);
                next = next.saturating_add(size);
                span
            })
            .collect();
        let runs = prefetch_runs(&spans, self.from, self.to, self.window);
        let run_cids = |k: usize| -> Option<Vec<Cid>> {
            let run = runs.get(k)?;
            Some(node.links[run.clone()].iter().map(|l| l.cid).collect())
        };
        let mut run = 0;
        for (i, (link, &(child_start, size))) in node.links.iter().zip(&spans).enumerate() {
            if child_start >= self.to {
                break;
            }
            if runs.get(run).is_some_and(|r| r.start == i) {
                if let Some(cids) = run_cids(run) {
                    self.src
                        .prefetch(&cids)
                        .map_err(|source| ExportError::Source { cid: *cid, source })?;
                }
                run += 1;
                if let Some(cids) = run_cids(run) {
                    self.src.prefetch_next(&cids);
                }
            }
            if child_start.saturating_add(size) > self.from {
                self.node(&link.cid, child_start, depth + 1)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, bytes: Bytes, start: u64) -> Result<(), ExportError> {
        emit(bytes, start, self.from, self.to, self.out, self.written)
    }
}

fn emit(
    bytes: Bytes,
    start: u64,
    from: u64,
    to: u64,
    out: &mut dyn ByteOut,
    written: &mut u64,
) -> Result<(), ExportError> {
    let len = bytes.len() as u64;
    let lo = from.saturating_sub(start).min(len);
    let hi = to.saturating_sub(start).min(len);
    if lo < hi {
        // lo and hi are within bytes.len(), which is a usize.
        let slice = bytes.slice(lo as usize..hi as usize);
        *written += slice.len() as u64;
        out.put(slice)?;
    }
    Ok(())
}
