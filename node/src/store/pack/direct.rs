//! Pack appends that bypass the OS page cache (`O_DIRECT`), for blocks fetched from peers.
//!
//! A fetched block is already in memory for whoever asked for it; writing it through the page
//! cache copies it into a fresh page per 4 KiB that nobody is about to read. On a VM whose
//! host reclaims free guest memory that copy is the fetching node's largest cost: a 1 GiB
//! fetch spent 2.6 of its 4.9 CPU-s filling page-cache pages. A direct write instead copies
//! the block into one reused, aligned staging buffer and the device reads it from there.
//!
//! Direct I/O wants the buffer, the file offset and the length aligned (4 KiB covers 512-byte
//! and 4 KiB sectors). Appends are not: a block starts wherever the last one ended. So the
//! staging buffer holds the pack's last partial page, then the block, then zeros up to the
//! next page boundary, and that whole span is written at the partial page's start. The
//! partial page is rewritten with the same bytes it had (a concurrent read of the block
//! ending there sees those bytes either way), and the zeros past the block are dead space that
//! the next append overwrites. A pack therefore can be up to a page longer than its appends:
//! reads and compaction already treat bytes nothing points at as dead.
//!
//! Anything that goes wrong here is not an error: the caller writes the block the ordinary
//! way instead, which writes every byte this write may have left half done. A filesystem
//! without `O_DIRECT` (tmpfs) turns direct appends off for the store.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::store::MAX_BLOCK_SIZE;

/// Alignment of direct writes: buffer address, file offset and length.
pub(super) const ALIGN: usize = 4096;

/// Most bytes of blocks one direct write takes (a single block may be up to
/// [`MAX_BLOCK_SIZE`]); larger writes cost the device less per byte.
pub(super) const RUN: usize = 4 << 20;

/// Room for the partial page, a run and the padding after it.
const STAGING: usize = if RUN > MAX_BLOCK_SIZE {
    RUN
} else {
    MAX_BLOCK_SIZE
} + 2 * ALIGN;

/// Direct appends of one store: off once the filesystem refused them.
#[derive(Debug, Default)]
pub(super) enum Direct {
    /// Not tried yet: nothing allocated.
    #[default]
    Untried,
    On(Box<Stager>),
    Off,
}

/// The aligned buffer and the `O_DIRECT` handle on the pack taking appends.
pub(super) struct Stager {
    /// Backing memory; the aligned region starts at `start` and is [`STAGING`] long.
    buf: Vec<u8>,
    start: usize,
    /// The pack the handle is on.
    handle: Option<(u32, File)>,
    /// The pack and length whose last partial page is at the front of the region.
    tail_of: Option<(u32, u64)>,
}

impl std::fmt::Debug for Stager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stager")
            .field("pack", &self.handle.as_ref().map(|(n, _)| *n))
            .field("tail_of", &self.tail_of)
            .finish()
    }
}

/// Where a direct write goes: `offset` in pack `number` at `path`, which is open as `file`
/// for ordinary reads and writes.
pub(super) struct Target<'a> {
    pub path: &'a Path,
    pub number: u32,
    pub file: &'a File,
    pub offset: u64,
}

/// What a direct write came to.
enum Outcome {
    Written,
    /// Not done this time (an I/O error, a short write): write this block buffered.
    Declined,
    /// The filesystem does not do direct I/O: stop trying.
    Unsupported,
}

impl Direct {
    /// Write `blocks`, one after another, at `to` without the page cache. False when the
    /// caller must write them itself.
    pub(super) fn write(&mut self, to: &Target<'_>, blocks: &[&[u8]]) -> bool {
        if matches!(self, Direct::Untried) {
            *self = Stager::new().map_or(Direct::Off, |s| Direct::On(Box::new(s)));
        }
        let Direct::On(stager) = self else {
            return false;
        };
        match stager.write(to, blocks) {
            Outcome::Written => true,
            Outcome::Declined => false,
            Outcome::Unsupported => {
                tracing::debug!(path = %to.path.display(), "no direct I/O here; pack appends go through the page cache");
                *self = Direct::Off;
                false
            }
        }
    }

    /// Close the handle on the pack taking appends (it is being rotated out), so a later
    /// removal of that pack frees its space.
    pub(super) fn release(&mut self) {
        if let Direct::On(stager) = self {
            stager.handle = None;
            stager.tail_of = None;
        }
    }
}

impl Stager {
    /// `None` when no aligned region can be found in the allocation.
    fn new() -> Option<Self> {
        let buf = vec![0u8; STAGING + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        (start < ALIGN).then_some(Self {
            buf,
            start,
            handle: None,
            tail_of: None,
        })
    }

    fn write(&mut self, to: &Target<'_>, blocks: &[&[u8]]) -> Outcome {
        let &Target {
            path,
            number,
            file,
            offset,
        } = to;
        let page = offset - offset % ALIGN as u64;
        // Below ALIGN, so it fits a usize.
        let head = (offset - page) as usize;
        let len: usize = blocks.iter().map(|b| b.len()).sum();
        let total = head + len;
        let padded = total.next_multiple_of(ALIGN);
        if padded > STAGING {
            return Outcome::Declined;
        }
        if self.handle.as_ref().is_none_or(|(n, _)| *n != number) {
            self.handle = None;
            match OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
            {
                Ok(direct) => self.handle = Some((number, direct)),
                Err(e) => return refused(&e),
            }
        }
        let region = &mut self.buf[self.start..self.start + STAGING];
        if head > 0 && self.tail_of != Some((number, offset)) {
            // The partial page was written some other way: take it from the file.
            if file.read_exact_at(&mut region[..head], page).is_err() {
                return Outcome::Declined;
            }
        }
        self.tail_of = None;
        let mut at = head;
        for block in blocks {
            region[at..at + block.len()].copy_from_slice(block);
            at += block.len();
        }
        region[total..padded].fill(0);
        let Some((_, direct)) = &self.handle else {
            return Outcome::Declined;
        };
        match direct.write_at(&region[..padded], page) {
            Ok(n) if n == padded => {}
            Ok(_) => return Outcome::Declined,
            Err(e) => return refused(&e),
        }
        // Keep the new partial page for the next append.
        let end = offset + len as u64;
        let new_head = (end % ALIGN as u64) as usize;
        region.copy_within(total - new_head..total, 0);
        self.tail_of = Some((number, end));
        Outcome::Written
    }
}

/// `EINVAL` from an open or a write with `O_DIRECT` means the filesystem (or its sector size)
/// does not take these writes; anything else is this write's problem only.
fn refused(e: &io::Error) -> Outcome {
    if e.raw_os_error() == Some(libc::EINVAL) {
        Outcome::Unsupported
    } else {
        Outcome::Declined
    }
}
