//! Depth-first walk of a whole DAG (any codec [`links`](super::links) understands), visiting
//! each block once, in the order CAR export and the trustless gateway need (pre-order, links in
//! order, no duplicates). Each block's children are hinted to the source
//! ([`BlockSource::prefetch`]) before they are read, so a network source fetches the missing
//! part of the DAG together.

use std::collections::HashSet;

use cid::Cid;

use super::exporter::{BlockSource, ExportError};
use super::links::links;

/// Called with each block of a walk; an error stops the walk.
pub type Visitor<'a> = dyn FnMut(&Cid, &[u8]) -> Result<(), ExportError> + 'a;

/// Visit every block of the DAG under `root`, pre-order depth-first, each once.
/// Stops at the first error from the source or the visitor.
pub fn walk_dag(
    src: &dyn BlockSource,
    root: &Cid,
    visit: &mut Visitor<'_>,
) -> Result<(), ExportError> {
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let bytes = src
            .get_block(&cid)
            .map_err(|source| ExportError::Source { cid, source })?
            .ok_or(ExportError::Missing(cid))?;
        let children = links(&cid, &bytes).map_err(|e| ExportError::Malformed {
            cid,
            reason: e.to_string(),
        })?;
        visit(&cid, &bytes)?;
        // Everything below is read next: a network source fetches what it lacks together.
        if !children.is_empty() {
            src.prefetch(&children)
                .map_err(|source| ExportError::Source { cid, source })?;
        }
        stack.extend(children.into_iter().rev());
    }
    Ok(())
}
