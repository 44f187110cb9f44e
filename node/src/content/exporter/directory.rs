//! Directory reads: path resolution ([`resolve`]), one name's lookup ([`lookup`]) and
//! listings ([`list`]), for basic directories and HAMT-sharded ones. A lookup follows only the
//! shard nodes on its name's hash path; a listing reads every shard node (hinting each level's
//! sub-shards with [`BlockSource::prefetch_blocks`]) but no entry.

use cid::Cid;

use super::{BlockSource, Decoded, ExportError, ListEntry, decode};
use crate::content::cid::IpfsPath;
use crate::content::dagpb::PbNode;
use crate::content::murmur3::hamt_hash;
use crate::content::unixfs::DataType;

/// Follow `path` from its root through directories (basic and sharded) to the CID it names.
pub fn resolve(src: &dyn BlockSource, path: &IpfsPath) -> Result<Cid, ExportError> {
    let mut current = path.root;
    for name in &path.segments {
        current = lookup(src, &current, name)?;
    }
    Ok(current)
}

/// The child named `name` of the directory at `dir`.
pub fn lookup(src: &dyn BlockSource, dir: &Cid, name: &str) -> Result<Cid, ExportError> {
    let not_found = || ExportError::NotFound {
        cid: *dir,
        name: name.to_owned(),
    };
    match decode(src, dir)? {
        Decoded::Unixfs(node, data) if data.kind == DataType::Directory => node
            .links
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.cid)
            .ok_or_else(not_found),
        Decoded::Unixfs(node, data) if data.kind == DataType::HamtShard => {
            let hash = hamt_hash(name.as_bytes());
            let (mut node, mut shard_cid) = (node, *dir);
            for &byte in hash.iter() {
                let prefix = format!("{byte:02X}");
                let link = node
                    .links
                    .iter()
                    .find(|l| l.name().starts_with(&prefix))
                    .ok_or_else(not_found)?;
                if link.name().len() > 2 {
                    return if &link.name()[2..] == name {
                        Ok(link.cid)
                    } else {
                        Err(not_found())
                    };
                }
                shard_cid = link.cid;
                node = match decode(src, &shard_cid)? {
                    Decoded::Unixfs(n, d) if d.kind == DataType::HamtShard => n,
                    _ => {
                        return Err(ExportError::Malformed {
                            cid: shard_cid,
                            reason: "HAMT link to a non-shard node".into(),
                        });
                    }
                };
            }
            Err(ExportError::TooDeep(shard_cid))
        }
        _ => Err(ExportError::NotDirectory(*dir)),
    }
}

/// Entries of the directory at `dir`, in stored order (name order; hash order for shards).
pub fn list(src: &dyn BlockSource, dir: &Cid) -> Result<Vec<ListEntry>, ExportError> {
    let mut out = Vec::new();
    match decode(src, dir)? {
        Decoded::Unixfs(node, data) if data.kind == DataType::Directory => {
            out.extend(node.links.iter().map(|l| ListEntry {
                name: l.name().to_owned(),
                cid: l.cid,
                tsize: l.tsize.unwrap_or(0),
            }));
        }
        Decoded::Unixfs(node, data) if data.kind == DataType::HamtShard => {
            list_shard(src, dir, &node, 0, &mut out)?
        }
        _ => return Err(ExportError::NotDirectory(*dir)),
    }
    Ok(out)
}

fn list_shard(
    src: &dyn BlockSource,
    cid: &Cid,
    node: &PbNode,
    depth: usize,
    out: &mut Vec<ListEntry>,
) -> Result<(), ExportError> {
    if depth > 8 {
        return Err(ExportError::TooDeep(*cid));
    }
    // Sub-shards (two-character names) are read next: ask for them together.
    let shards: Vec<Cid> = node
        .links
        .iter()
        .filter(|l| l.name().len() == 2)
        .map(|l| l.cid)
        .collect();
    if !shards.is_empty() {
        src.prefetch_blocks(&shards)
            .map_err(|source| ExportError::Source { cid: *cid, source })?;
    }
    for link in &node.links {
        let name = link.name();
        if !name.is_char_boundary(2.min(name.len())) || name.len() < 2 {
            return Err(ExportError::Malformed {
                cid: *cid,
                reason: format!("bad HAMT link name {name:?}"),
            });
        }
        if name.len() == 2 {
            match decode(src, &link.cid)? {
                Decoded::Unixfs(child, d) if d.kind == DataType::HamtShard => {
                    list_shard(src, &link.cid, &child, depth + 1, out)?
                }
                _ => {
                    return Err(ExportError::Malformed {
                        cid: link.cid,
                        reason: "HAMT link to a non-shard node".into(),
                    });
                }
            }
        } else {
            out.push(ListEntry {
                name: name[2..].to_owned(),
                cid: link.cid,
                tsize: link.tsize.unwrap_or(0),
            });
        }
    }
    Ok(())
}
