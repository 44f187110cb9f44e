//! Directory nodes: a basic UnixFS directory (links sorted byte-wise by name) or, once the
//! directory would be over Kubo's 256 KiB threshold, a HAMT-sharded directory (fanout 256,
//! murmur3-x64-64 of the entry name, one hash byte per level).
//!
//! Planning (which entry lands in which shard) is a pure function of the entries; blocks are
//! written to the given [`BlockSink`] bottom-up.

use std::collections::BTreeMap;

use super::cid::{CODEC_DAG_PB, block_cid};
use super::dagpb::{PbLink, PbNode};
use super::importer::{BlockSink, ImportError, ImportOptions, ShardEstimate};
use super::layout::Child;
use super::murmur3::hamt_hash;
use super::unixfs::{DataType, UnixfsData};

/// Multihash code of murmur3-x64-64, recorded in HAMT nodes.
pub const HAMT_HASH_MURMUR3: u64 = 0x22;
/// Children per HAMT node.
pub const HAMT_FANOUT: usize = 256;

/// One named entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub child: Child,
}

/// Check a directory entry name the way a filesystem would.
pub fn validate_name(name: &str) -> Result<(), ImportError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(ImportError::BadName(name.to_owned()));
    }
    Ok(())
}

/// Build a directory over `entries` (any order) and write its blocks to `sink`.
pub fn build_directory(
    mut entries: Vec<DirEntry>,
    opts: &ImportOptions,
    sink: &mut dyn BlockSink,
) -> Result<Child, ImportError> {
    for entry in &entries {
        validate_name(&entry.name)?;
    }
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    if let Some(pair) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(ImportError::DuplicateName(pair[0].name.clone()));
    }
    let node = PbNode {
        links: entries
            .iter()
            .map(|e| PbLink::new(e.child.cid, e.name.clone(), e.child.tsize))
            .collect(),
        data: Some(UnixfsData::new(DataType::Directory).encode()),
    };
    let estimate = match opts.shard_estimate {
        ShardEstimate::Links => entries
            .iter()
            .map(|e| e.name.len() + e.child.cid.encoded_len())
            .sum(),
        ShardEstimate::Block => node.encoded_len(),
    };
    if estimate > opts.shard_threshold {
        let hashed: Vec<(usize, [u8; 8])> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, hamt_hash(e.name.as_bytes())))
            .collect();
        return build_shard(&entries, &hashed, 0, opts.cid_version, sink);
    }
    write_node(&node, opts.cid_version, sink)
}

fn write_node(
    node: &PbNode,
    cid_version: u8,
    sink: &mut dyn BlockSink,
) -> Result<Child, ImportError> {
    let bytes = node.encode();
    let cid = block_cid(CODEC_DAG_PB, cid_version, &bytes);
    sink.put(&cid, &bytes).map_err(ImportError::Sink)?;
    let below: u64 = node.links.iter().filter_map(|l| l.tsize).sum();
    Ok(Child {
        cid,
        tsize: bytes.len() as u64 + below,
        filesize: 0,
    })
}

/// One HAMT node at `depth` over the entries `members` (indices into `entries` with their hash).
fn build_shard(
    entries: &[DirEntry],
    members: &[(usize, [u8; 8])],
    depth: usize,
    cid_version: u8,
    sink: &mut dyn BlockSink,
) -> Result<Child, ImportError> {
    if depth >= 8 {
        return Err(ImportError::HashCollision(members.len()));
    }
    let mut slots: BTreeMap<u8, Vec<(usize, [u8; 8])>> = BTreeMap::new();
    for member in members {
        slots.entry(member.1[depth]).or_default().push(*member);
    }
    let mut bitfield = [0u8; HAMT_FANOUT / 8];
    let mut links = Vec::with_capacity(slots.len());
    for (slot, in_slot) in &slots {
        let index = usize::from(*slot);
        // Bit `index` of a big-endian bitfield; stored without leading zero bytes, as Go's
        // big.Int-backed encoding (and so Kubo's CIDs) has it.
        bitfield[HAMT_FANOUT / 8 - 1 - index / 8] |= 1 << (index % 8);
        if let [(only, _)] = in_slot.as_slice() {
            let entry = &entries[*only];
            links.push(PbLink::new(
                entry.child.cid,
                format!("{slot:02X}{}", entry.name),
                entry.child.tsize,
            ));
        } else {
            let child = build_shard(entries, in_slot, depth + 1, cid_version, sink)?;
            links.push(PbLink::new(child.cid, format!("{slot:02X}"), child.tsize));
        }
    }
    let mut data = UnixfsData::new(DataType::HamtShard);
    let first = bitfield
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bitfield.len());
    data.data = Some(bytes::Bytes::copy_from_slice(&bitfield[first..]));
    data.hash_type = Some(HAMT_HASH_MURMUR3);
    data.fanout = Some(HAMT_FANOUT as u64);
    write_node(
        &PbNode {
            links,
            data: Some(data.encode()),
        },
        cid_version,
        sink,
    )
}
