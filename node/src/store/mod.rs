//! Block storage: the [`Blockstore`] API the rest of the node calls, and its backends.
//!
//! Blocks are keyed by their multihash, as in Kubo, so the same bytes named by a CIDv0 and a
//! CIDv1 are one block. A backend implements the small [`RawBlocks`] trait (bytes by multihash,
//! no checks); every [`RawBlocks`] is a [`Blockstore`] through one blanket impl that adds the
//! rules in one place: blocks over [`MAX_BLOCK_SIZE`] are refused, identity CIDs are never
//! stored, and [`Blockstore::get`] re-hashes what it read, so a block is never returned
//! unverified: a corrupt one is deleted and reported as [`StoreError::Corrupt`].
//!
//! Backends: [`sled::SledStore`] (a tree in the repo's sled database), [`flatfs::FlatFsStore`]
//! (Kubo's `blocks/` folder layout), [`pack::PackStore`] (blocks appended to pack files),
//! [`tiered::TieredStore`] (small blocks in sled, large ones in packs: the repo's `sled`
//! backend) and [`memory::MemoryStore`] (tests). [`pins`] keeps local
//! pins and [`gc`] collects unpinned blocks and verifies the store; [`walk`] is the DAG walk
//! both share; [`StoreSink`] and [`StoreSource`] plug a store into the importer and exporter.

mod adapt;
pub mod flatfs;
pub mod gc;
pub mod journal;
pub mod memory;
pub mod pack;
pub mod pins;
pub mod sled;
pub mod tiered;
pub mod walk;

pub use adapt::{PipelinedSink, StoreSink, StoreSource};

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

use cid::Cid;
use thiserror::Error;

use crate::content::cid::{CODEC_RAW, MH_IDENTITY, MH_SHA2_256, MH_SHA2_512, verify};

/// A block's storage key: the multihash of its bytes.
pub type Multihash = multihash::Multihash<64>;

/// The largest block accepted, in bytes (2 MiB, as Kubo and bitswap allow); exactly this is fine.
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;

/// The multihashes of the stored blocks, read lazily.
pub type Keys<'a> = Box<dyn Iterator<Item = Result<Multihash, StoreError>> + Send + 'a>;

/// What a store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStat {
    /// Number of stored blocks (identity CIDs are not stored).
    pub blocks: u64,
    /// Sum of the stored blocks' sizes, in bytes.
    pub bytes: u64,
}

/// A block store operation that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "block {cid} is {size} bytes, over the {max}-byte block limit; re-import with a smaller chunk size"
    )]
    TooLarge { cid: Cid, size: usize, max: usize },
    #[error(
        "block {cid} was corrupt on disk and has been deleted; fetch it again or re-add its content"
    )]
    Corrupt { cid: Cid },
    #[error("data does not hash to {cid}; refusing to store it (the source is corrupt or lying)")]
    HashMismatch { cid: Cid },
    #[error(
        "block {cid} uses hash function 0x{code:x}; only sha2-256, sha2-512 and identity are supported"
    )]
    UnsupportedHash { cid: Cid, code: u64 },
    #[error("{op} {path}: {source}; check the disk space and the repo's permissions")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("sled {op}: {source}; the datastore may be damaged, run `repo verify`")]
    Sled {
        op: &'static str,
        source: ::sled::Error,
    },
    #[error(
        "flatfs at {path} is sharded as {found:?}, expected {expected:?}; use a Kubo-style repo"
    )]
    Sharding {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("stored key {key:?} is not a multihash ({reason}); remove the stray entry")]
    BadKey { key: String, reason: String },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// A storage backend: bytes by multihash, with no size, hash or identity rules.
///
/// Implement this for a new backend; callers use [`Blockstore`], which every `RawBlocks` is.
pub trait RawBlocks: Send + Sync {
    /// Store `data` under `mh` unless something is already stored there.
    fn put_raw(&self, mh: &Multihash, data: &[u8]) -> Result<(), StoreError>;
    /// [`RawBlocks::put_raw`] of several blocks whose bytes the caller holds and nobody is
    /// about to read back: backends that can keep them out of the OS page cache do (see
    /// [`Blockstore::put_many_uncached`]).
    fn put_many_raw_uncached(&self, blocks: &[(&Multihash, &[u8])]) -> Result<(), StoreError> {
        blocks
            .iter()
            .try_for_each(|&(mh, data)| self.put_raw(mh, data))
    }
    /// The bytes stored under `mh`, as they are.
    fn get_raw(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether something is stored under `mh`.
    fn has_raw(&self, mh: &Multihash) -> Result<bool, StoreError>;
    /// [`RawBlocks::get_raw`], and what the backend's own checksum says of the bytes. Backends
    /// without checksums keep this default ([`Integrity::Unknown`]), so their reads are hashed.
    fn get_checked(&self, mh: &Multihash) -> Result<Option<(Vec<u8>, Integrity)>, StoreError> {
        Ok(self.get_raw(mh)?.map(|data| (data, Integrity::Unknown)))
    }
    /// Size of what is stored under `mh`.
    fn size_raw(&self, mh: &Multihash) -> Result<Option<u64>, StoreError>;
    /// Remove what is stored under `mh`; false if there was nothing.
    fn delete_raw(&self, mh: &Multihash) -> Result<bool, StoreError>;
    /// Every stored key.
    fn keys_raw(&self) -> Result<Keys<'_>, StoreError>;
    /// Durability barrier: what was stored before survives a crash once this returns.
    fn flush_raw(&self) -> Result<(), StoreError>;
    /// Count blocks and bytes; the default walks every key.
    fn stat_raw(&self) -> Result<StoreStat, StoreError> {
        let mut stat = StoreStat::default();
        for mh in self.keys_raw()? {
            if let Some(size) = self.size_raw(&mh?)? {
                stat.blocks += 1;
                stat.bytes += size;
            }
        }
        Ok(stat)
    }
    /// Give back the space of deleted blocks where deleting left it in use; bytes reclaimed.
    /// Backends that free space on delete keep this default.
    fn compact_raw(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// What a backend's checksum, stored with a block's bytes, says of the bytes it read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// No checksum: only hashing the bytes against the CID can tell.
    Unknown,
    /// The bytes match the checksum written with them.
    Intact,
    /// They do not: damaged since they were written.
    Damaged,
}

/// The block store API: checked puts, verified gets.
pub trait Blockstore: Send + Sync {
    /// Store a block whose CID the caller computed. Idempotent. Identity CIDs are a no-op.
    fn put(&self, cid: &Cid, data: &[u8]) -> Result<(), StoreError>;
    /// [`Blockstore::put`] of blocks fetched from peers: the fetch holds their bytes for the
    /// reader, so where the backend can (pack files, with `O_DIRECT`) they go to disk together
    /// without passing through the page cache. Same checks and durability as `put`; on an
    /// error, some of the blocks may be stored.
    fn put_many_uncached(&self, blocks: &[(Cid, &[u8])]) -> Result<(), StoreError>;
    /// Store a block from an untrusted source: hash it first, refuse it if it does not match.
    fn put_verified(&self, cid: &Cid, data: &[u8]) -> Result<(), StoreError>;
    /// A block's bytes, verified against its CID, or against the checksum the backend wrote
    /// with them where it keeps one (see [`Integrity`]). A corrupt block is deleted and
    /// reported.
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError>;
    /// [`Blockstore::get`] that always hashes the bytes against the CID, checksum or not: for
    /// scrubs and `repo verify`-style walks, where the point is the full check.
    fn get_rehashed(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError>;
    /// The bytes stored under a multihash, not verified: for `repo verify` and diagnostics.
    fn get_unverified(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether the block is available (identity CIDs always are).
    fn has(&self, cid: &Cid) -> Result<bool, StoreError>;
    /// Size of the block in bytes, without reading it where the backend allows.
    fn block_size(&self, cid: &Cid) -> Result<Option<u64>, StoreError>;
    /// Remove a block (whichever CID version names it); false if it was not stored.
    fn delete(&self, cid: &Cid) -> Result<bool, StoreError>;
    /// Remove the block stored under a multihash, as listed by [`Blockstore::keys`].
    fn delete_multihash(&self, mh: &Multihash) -> Result<bool, StoreError>;
    /// Multihashes of every stored block.
    fn keys(&self) -> Result<Keys<'_>, StoreError>;
    /// Durability barrier: every block put before this call survives a crash once it returns.
    fn flush(&self) -> Result<(), StoreError>;
    /// Number and total size of the stored blocks.
    fn stat(&self) -> Result<StoreStat, StoreError>;
    /// Reclaim the disk space deleted blocks still take (see [`pack::PackStore::compact`]);
    /// returns the bytes given back. Garbage collection calls it after sweeping.
    fn compact(&self) -> Result<u64, StoreError>;
}

impl<T: RawBlocks> Blockstore for T {
    fn put(&self, cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
        if stores(cid, data)? {
            self.put_raw(cid.hash(), data)?;
        }
        Ok(())
    }

    fn put_many_uncached(&self, blocks: &[(Cid, &[u8])]) -> Result<(), StoreError> {
        let mut stored = Vec::with_capacity(blocks.len());
        for (cid, data) in blocks {
            if stores(cid, data)? {
                stored.push((cid.hash(), *data));
            }
        }
        self.put_many_raw_uncached(&stored)
    }

    fn put_verified(&self, cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
        check_size(cid, data.len())?;
        check_hash(cid, data)?;
        self.put(cid, data)
    }

    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        read_checked(self, cid, true)
    }

    fn get_rehashed(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        read_checked(self, cid, false)
    }

    fn get_unverified(&self, mh: &Multihash) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(mh)
    }

    fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        if cid.hash().code() == MH_IDENTITY {
            return Ok(true);
        }
        self.has_raw(cid.hash())
    }

    fn block_size(&self, cid: &Cid) -> Result<Option<u64>, StoreError> {
        let mh = cid.hash();
        if mh.code() == MH_IDENTITY {
            return Ok(Some(mh.digest().len() as u64));
        }
        self.size_raw(mh)
    }

    fn delete(&self, cid: &Cid) -> Result<bool, StoreError> {
        if cid.hash().code() == MH_IDENTITY {
            return Ok(false);
        }
        self.delete_raw(cid.hash())
    }

    fn delete_multihash(&self, mh: &Multihash) -> Result<bool, StoreError> {
        self.delete_raw(mh)
    }

    fn keys(&self) -> Result<Keys<'_>, StoreError> {
        self.keys_raw()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.flush_raw()
    }

    fn stat(&self) -> Result<StoreStat, StoreError> {
        self.stat_raw()
    }

    fn compact(&self) -> Result<u64, StoreError> {
        self.compact_raw()
    }
}

/// A verified read: against the backend's checksum when `trust_checksum` and the backend
/// has one, against the CID's hash otherwise. Corrupt blocks are deleted and reported.
fn read_checked<T: RawBlocks + ?Sized>(
    store: &T,
    cid: &Cid,
    trust_checksum: bool,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mh = cid.hash();
    if mh.code() == MH_IDENTITY {
        return Ok(Some(mh.digest().to_vec()));
    }
    let Some((data, integrity)) = store.get_checked(mh)? else {
        return Ok(None);
    };
    // A checksum the bytes still match stands in for the hash: the CID was checked against
    // these bytes before they were stored, and CRC-32 finds the damage storage does (bit
    // flips, torn or misplaced writes) at a fraction of SHA-256's cost, which was a third of
    // a serving node's CPU time in a 1 GiB transfer. The fetching peer hashes every block it
    // receives anyway.
    let checked = match integrity {
        Integrity::Intact if trust_checksum => Ok(()),
        Integrity::Damaged => Err(StoreError::HashMismatch { cid: *cid }),
        Integrity::Intact | Integrity::Unknown => check_hash(cid, &data),
    };
    match checked {
        Ok(()) => Ok(Some(data)),
        Err(StoreError::HashMismatch { .. }) => {
            store.delete_raw(mh)?;
            tracing::warn!(%cid, size = data.len(), "corrupt block deleted");
            Err(StoreError::Corrupt { cid: *cid })
        }
        Err(other) => Err(other),
    }
}

/// Whether `data` hashes to `mh`: `Ok(false)` on a mismatch, an error for unknown hash functions.
pub fn matches_multihash(mh: &Multihash, data: &[u8]) -> Result<bool, StoreError> {
    match check_hash(&Cid::new_v1(CODEC_RAW, *mh), data) {
        Ok(()) => Ok(true),
        Err(StoreError::HashMismatch { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Whether a put of `data` under `cid` stores anything: not for an identity CID (its bytes
/// are in the CID); an error for a block too large or a hash function we do not store.
fn stores(cid: &Cid, data: &[u8]) -> Result<bool, StoreError> {
    check_size(cid, data.len())?;
    match cid.hash().code() {
        MH_IDENTITY => Ok(false),
        MH_SHA2_256 | MH_SHA2_512 => Ok(true),
        code => Err(StoreError::UnsupportedHash { cid: *cid, code }),
    }
}

fn check_size(cid: &Cid, size: usize) -> Result<(), StoreError> {
    if size > MAX_BLOCK_SIZE {
        return Err(StoreError::TooLarge {
            cid: *cid,
            size,
            max: MAX_BLOCK_SIZE,
        });
    }
    Ok(())
}

fn check_hash(cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
    use crate::content::cid::CidError;
    match verify(cid, data) {
        Ok(()) => Ok(()),
        Err(CidError::UnsupportedHash(code)) => {
            Err(StoreError::UnsupportedHash { cid: *cid, code })
        }
        Err(_) => Err(StoreError::HashMismatch { cid: *cid }),
    }
}
