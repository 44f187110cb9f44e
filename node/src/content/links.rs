//! Links of a block, whatever its codec: what GC, pin checks, DAG export and repo verify walk.
//!
//! dag-pb and raw are understood here; other codecs are treated as leaves until a decoder for
//! them lands.

use cid::Cid;
use thiserror::Error;

use super::cid::{CODEC_DAG_PB, CODEC_RAW};
use super::dagpb::{DagPbError, PbNode};

/// A block whose links could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinksError {
    #[error("block {cid}: {source}")]
    DagPb { cid: Cid, source: DagPbError },
}

/// The CIDs a block links to, in order.
pub fn links(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, LinksError> {
    match cid.codec() {
        CODEC_DAG_PB => PbNode::decode(data)
            .map(|n| n.links.into_iter().map(|l| l.cid).collect())
            .map_err(|source| LinksError::DagPb { cid: *cid, source }),
        CODEC_RAW => Ok(Vec::new()),
        _ => Ok(Vec::new()),
    }
}
