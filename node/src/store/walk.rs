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
///
/// `visit` returns false to stop the walk early. Store errors other than corruption abort it.
pub fn walk_dag(
    store: &dyn Blockstore,
    root: &Cid,
    seen: &mut HashSet<Multihash>,
    visit: impl FnMut(&Cid) -> bool,
) -> Result<WalkReport, StoreError> {
    walk_dag_trusting(store, root, seen, &HashSet::new(), visit)
}

/// [`walk_dag`], reading the blocks in `fresh` without hashing them again: blocks verified
/// against their CIDs moments ago (a fetch's deliveries), whose check would only repeat.
pub fn walk_dag_trusting(
    store: &dyn Blockstore,
    root: &Cid,
    seen: &mut HashSet<Multihash>,
    fresh: &HashSet<Multihash>,
    mut visit: impl FnMut(&Cid) -> bool,
) -> Result<WalkReport, StoreError> {
    let mut report = WalkReport::default();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(*cid.hash()) {
            continue;
        }
        let read = if fresh.contains(cid.hash()) {
            store.get_unverified(cid.hash())
        } else {
            store.get(&cid)
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
    fn fresh_blocks_are_read_without_their_hash_check() {
        let store = MemoryStore::default();
        let cid = block_cid(0x55, 1, b"leaf");
        // Bytes that do not hash to the CID, as if damaged after they were stored.
        store.put_raw(cid.hash(), b"damaged").unwrap();
        let fresh: HashSet<Multihash> = [*cid.hash()].into_iter().collect();
        let trusted =
            walk_dag_trusting(&store, &cid, &mut HashSet::new(), &fresh, |_| true).unwrap();
        assert!(trusted.is_complete(), "a fresh block is taken as read");
        let checked = walk_dag(&store, &cid, &mut HashSet::new(), |_| true).unwrap();
        assert_eq!(
            checked.missing,
            [cid],
            "otherwise it is checked, found corrupt"
        );
        assert!(!store.has(&cid).unwrap(), "and removed");
    }
}
