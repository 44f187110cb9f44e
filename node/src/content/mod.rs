//! Content model: CIDs, dag-pb and UnixFS encoding, chunkers, DAG layouts, the importer that
//! turns files and directories into blocks, and the exporter that turns blocks back into bytes.
//!
//! Nothing here touches the disk or network on its own: the importer writes blocks into a
//! [`BlockSink`](importer::BlockSink) and the exporter reads them from a
//! [`BlockSource`](exporter::BlockSource), so both are testable with in-memory maps.

pub mod cbor;
pub mod chunker;
pub mod cid;
pub mod dagpb;
pub mod directory;
pub mod exporter;
pub mod importer;
pub mod layout;
pub mod links;
pub mod murmur3;
pub mod proto;
pub mod unixfs;
pub mod walk;
