//! Distribute: an IPFS-compatible content-addressed storage engine.
//!
//! Module map:
//! - [`content`]: CIDs, chunkers, DAG layouts, dag-pb and UnixFS encoding, importer and exporter.
//!   Pure: no file or network I/O beyond the `Read`/`Write` handles it is given.
//! - [`store`]: the [`store::Blockstore`] trait and its sled, flatfs and in-memory backends,
//!   local pins and garbage collection.
//! - [`car`]: CAR v1 reading and writing.
//! - [`repo`]: the on-disk repository (config, lock, store) that commands open.
//! - [`cli`]: the `distribute` command line.

pub mod car;
pub mod cli;
pub mod content;
pub mod fsimport;
pub mod repo;
pub mod store;
