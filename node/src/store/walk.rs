//! Walking a DAG through a block store: what pin checks, GC marking and `repo verify` share.
//!
//! The walk is depth-first with an explicit stack and a caller-owned set of visited multihashes,
//! so walking several roots visits a shared subtree once. Blocks that are missing (or found
//! corrupt, and so deleted by [`Blockstore::get`]) and blocks whose links cannot be decoded are
//! recorded, not fatal: each caller decides what they mean.

use std::collections::HashSet;

use cid::Cid;

use super::{Blockstore, Multihash, StoreError};
use crate::content::links::{LinksError, links};

/// What a walk could not follow.
#[derive(Debug, Default)]
pub struct WalkReport {
    /// Blocks reached by a link but not in the store (or corrupt, and now deleted).
    pub missing: Vec<Cid>,
    /// Blocks present whose links could not be read: their children are unknown.
    pub undecodable: Vec<(Cid, LinksError)>,
}

impl WalkReport {
    /// Whether every block of the DAG was found and understood.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.undecodable.is_empty()
    }
}

/// Walk the DAG under `root`, calling `visit` on every block present and not yet in `seen`.
/// Every block is read with its hash check, so a corrupt block is deleted and reported
/// missing.
///
/// `visit` returns false to stop the walk early. Store errors other than corruption abort it.
pub fn walk_dag(
    store: &dyn Blockstore,
    root: &Cid,
    seen: &mut HashSet<Multihash>,
    visit: impl FnMut(&Cid) -> bool,
) -> Result<WalkReport, StoreError> {
    walk(store, root, seen, true, visit)
}

/// [`walk_dag`] without the hash checks: whether the DAG is all here, the question a pin
/// asks (as Kubo does with `HashOnRead` off). Damage on disk is the scrub's to find, and every
/// read that serves a block still checks it.
pub fn walk_dag_present(
    store: &dyn Blockstore,
    root: &Cid,
    seen: &mut HashSet<Multihash>,
    visit: impl FnMut(&Cid) -> bool,
) -> Result<WalkReport, StoreError> {
    walk(store, root, seen, false, visit)
}

fn walk(
    store: &dyn Blockstore,
    root: &Cid,
    seen: &mut HashSet<Multihash>,
    verify: bool,
    mut visit: impl FnMut(&Cid) -> bool,
) -> Result<WalkReport, StoreError> {
    let mut report = WalkReport::default();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(*cid.hash()) {
            continue;
        }
        let read = if verify {
            store.get_rehashed(&cid)
        } else {
            store.get_unverified(cid.hash())
        };
        let data = match read {
            Ok(Some(data)) => data,
            Ok(None) | Err(StoreError::Corrupt { .. }) => {
                report.missing.push(cid);
                continue;
            }
            Err(e) => return Err(e),
        };
        if !visit(&cid) {
            break;
        }
        match links(&cid, &data) {
            // Reverse so children are visited in link order.
            Ok(children) => stack.extend(children.into_iter().rev()),
            Err(e) => report.undecodable.push((cid, e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::content::cid::block_cid;
    use crate::store::RawBlocks;
    use crate::store::memory::MemoryStore;

    #[test]
    fn a_presence_walk_skips_the_hash_check_a_full_walk_makes() {
        let store = MemoryStore::default();
        let cid = block_cid(0x55, 1, b"leaf");
        // Bytes that do not hash to the CID, as if damaged after they were stored.
        store.put_raw(cid.hash(), b"damaged").unwrap();
        let present = walk_dag_present(&store, &cid, &mut HashSet::new(), |_| true).unwrap();
        assert!(present.is_complete(), "present is all it asks");
        let checked = walk_dag(&store, &cid, &mut HashSet::new(), |_| true).unwrap();
        assert_eq!(
            checked.missing,
            [cid],
            "otherwise it is checked, found corrupt"
        );
        assert!(!store.has(&cid).unwrap(), "and removed");
    }
}
