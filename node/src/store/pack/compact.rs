//! Space reclaim for [`PackStore`]: deleted blocks leave dead bytes in their pack, and
//! [`PackStore::compact`] copies the live blocks of every pack that is more than half dead into
//! the current pack, then deletes the old file.
//!
//! Dead bytes are not tracked on the side: a pack's live bytes are the sum of the index entries
//! pointing into it, and everything else in the file (deleted blocks, copies moved out by an
//! earlier compaction, a crash's partial append) is dead. That costs one scan of the index,
//! which garbage collection, the caller, has just done for its keys anyway.
//!
//! Order keeps every block readable throughout and across a crash: the copies are written and
//! synced, then each index entry is switched to its copy (compare-and-swap, so a block deleted
//! meanwhile stays deleted), the index is flushed, and only then are the old packs removed,
//! under the exclusive side of the lock that reads hold from index look-up to read.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;

use super::{Location, PackStore, lock, sled_err, sync_dir};
use crate::store::Integrity;
use crate::store::{RawBlocks, StoreError};

/// What a compaction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    /// Pack files deleted.
    pub packs_removed: u64,
    /// Live blocks copied out of them.
    pub blocks_moved: u64,
    /// Bytes of those copies.
    pub bytes_moved: u64,
    /// Disk space given back: the deleted packs' sizes less the copies.
    pub reclaimed_bytes: u64,
}

impl PackStore {
    /// Rewrite the live blocks of packs more than half dead, and delete those packs.
    pub fn compact(&self) -> Result<CompactReport, StoreError> {
        let _one_at_a_time = lock(&self.compacting);
        let mut report = CompactReport::default();
        let doomed = self.mostly_dead_packs()?;
        if doomed.is_empty() {
            return Ok(report);
        }
        let numbers: HashSet<u32> = doomed.iter().map(|(n, _)| *n).collect();
        {
            // Appends must not land in a pack about to go.
            let mut writer = lock(&self.writer);
            if numbers.contains(&writer.number) {
                self.rotate(&mut writer);
            }
        }

        let mut moves = Vec::new();
        for entry in self.index.iter() {
            let (key, old) = entry.map_err(sled_err("list blocks"))?;
            let Some(at) = Location::decode(&old).filter(|at| numbers.contains(&at.pack)) else {
                continue;
            };
            let data = self.read(at)?;
            if data.len() != at.len as usize || self.integrity(&key, &data)? == Integrity::Damaged {
                // Truncated by a crash, or damaged: nothing whole to keep, and a copy would
                // carry the damage into a new pack. Left pointing at its removed pack, it
                // reads as corrupt and is deleted then.
                tracing::warn!(
                    pack = at.pack,
                    offset = at.offset,
                    "truncated or damaged block not moved"
                );
                continue;
            }
            // The checksum stays valid: it is of the same bytes.
            let new = self.append(&mut lock(&self.writer), &[&data], false)?[0];
            moves.push((key, old, new));
        }
        // The copies are durable before any entry points at them.
        self.flush_raw()?;
        for (key, old, new) in moves {
            let swapped = self
                .index
                .compare_and_swap(&key, Some(old), Some(&new.encode()[..]))
                .map_err(sled_err("move block"))?;
            if swapped.is_ok() {
                report.blocks_moved += 1;
                report.bytes_moved += u64::from(new.len);
            }
        }
        // The entries are durable before the packs they pointed into go.
        self.index.flush().map_err(sled_err("flush"))?;

        let removed_bytes = {
            let _no_reads = self
                .removal
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut removed = 0;
            for (number, size) in doomed {
                self.evict_reader(number);
                let path = self.pack_path(number);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("remove pack", path, e)),
                }
                report.packs_removed += 1;
                removed += size;
            }
            removed
        };
        sync_dir(&self.dir)?;
        report.reclaimed_bytes = removed_bytes.saturating_sub(report.bytes_moved);
        tracing::info!(
            packs_removed = report.packs_removed,
            blocks_moved = report.blocks_moved,
            reclaimed_bytes = report.reclaimed_bytes,
            "packs compacted"
        );
        Ok(report)
    }

    /// Packs (number, size) whose dead bytes exceed half their size.
    fn mostly_dead_packs(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        let mut live: HashMap<u32, u64> = HashMap::new();
        for value in self.index.iter().values() {
            let value = value.map_err(sled_err("list blocks"))?;
            if let Some(at) = Location::decode(&value) {
                *live.entry(at.pack).or_default() += u64::from(at.len);
            }
        }
        let mut doomed = Vec::new();
        for number in self.pack_numbers()? {
            let path = self.pack_path(number);
            let size = match fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("stat", path, e)),
            };
            let dead = size.saturating_sub(live.get(&number).copied().unwrap_or(0));
            if dead > size / 2 {
                doomed.push((number, size));
            }
        }
        Ok(doomed)
    }
}
