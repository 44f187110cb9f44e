//! `distribute block get|put|stat|rm`: single blocks by CID, offline or through a daemon's
//! `block/*` calls (the same checks run here first, so errors read the same).

use std::io::Read;

use anyhow::{Context, Result, bail};

use super::args::BlockCommand;
use super::output::{Ctx, cid_arg, cid_args, line};
use super::remote::{Remote, args, copy_body};
use super::upload::{MultipartBody, Part, PartBody, content_type};
use crate::content::cid::{CODEC_DAG_PB, CODEC_RAW, block_cid};
use crate::content::dagpb::PbNode;
use crate::store::MAX_BLOCK_SIZE;

pub(super) fn run(ctx: &mut Ctx<'_>, cmd: BlockCommand) -> Result<()> {
    let repo = ctx.repo;
    match cmd {
        BlockCommand::Get { cid } => {
            let cid = cid_arg(&cid)?;
            let data = ctx.source.get_block(&cid).map_err(|e| anyhow::anyhow!(e))?;
            let data = data.with_context(|| format!("block {cid} is not available"))?;
            ctx.out.write_all(&data)?;
        }
        BlockCommand::Put { file, cid_codec } => {
            let (codec, data) = put_input(file.map(|f| ctx.path(&f)), &cid_codec)?;
            let cid = block_cid(codec, 1, &data);
            repo.blocks().put(&cid, &data)?;
            repo.blocks().flush()?;
            ctx.line(format_args!("{cid}"))?;
        }
        BlockCommand::Stat { cid } => {
            let cid = cid_arg(&cid)?;
            let size = repo
                .blocks()
                .block_size(&cid)?
                .with_context(|| format!("block {cid} is not in the repository"))?;
            ctx.line(format_args!("Key: {cid}"))?;
            ctx.line(format_args!("Size: {size}"))?;
        }
        BlockCommand::Rm { cids } => {
            let cids = cid_args(&cids)?;
            for cid in &cids {
                if !matches!(
                    repo.pins().is_pinned(repo.blocks(), cid)?,
                    crate::store::pins::PinStatus::NotPinned
                ) {
                    bail!("cannot remove {cid}: it is pinned");
                }
                if !repo.blocks().delete(cid)? {
                    bail!("block {cid} is not in the repository");
                }
                ctx.line(format_args!("removed {cid}"))?;
            }
            repo.blocks().flush()?;
        }
    }
    Ok(())
}

/// The codec and bytes of a `block put`, checked as the store would check them.
fn put_input(file: Option<std::path::PathBuf>, cid_codec: &str) -> Result<(u64, Vec<u8>)> {
    let codec = match cid_codec {
        "raw" => CODEC_RAW,
        "dag-pb" => CODEC_DAG_PB,
        other => bail!("unsupported --cid-codec {other:?} (expected raw or dag-pb)"),
    };
    let mut data = Vec::new();
    let limit = MAX_BLOCK_SIZE as u64 + 1;
    match &file {
        Some(path) => std::fs::File::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .take(limit)
            .read_to_end(&mut data)?,
        None => std::io::stdin().lock().take(limit).read_to_end(&mut data)?,
    };
    if data.len() > MAX_BLOCK_SIZE {
        bail!(
            "block is over the {MAX_BLOCK_SIZE}-byte limit; use `distribute add` to chunk large data"
        );
    }
    if codec == CODEC_DAG_PB {
        PbNode::decode(&data)
            .context("--cid-codec dag-pb given, but the data is not valid dag-pb")?;
    }
    Ok((codec, data))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BlockStat {
    key: String,
    size: u64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Removed {
    hash: String,
    error: String,
}

/// `block` through a daemon.
pub(super) fn remote(
    remote: &Remote,
    cmd: BlockCommand,
    cwd: &std::path::Path,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    match cmd {
        BlockCommand::Get { cid } => {
            cid_arg(&cid)?;
            let body = remote.call("block/get", &args(&[cid]), None)?;
            copy_body(&mut body.into_reader(), out)?;
        }
        BlockCommand::Put { file, cid_codec } => {
            let (_, data) = put_input(file.map(|f| cwd.join(f)), &cid_codec)?;
            let mut body = MultipartBody::new(vec![Part {
                name: "block".into(),
                body: PartBody::Bytes(data),
            }]);
            let kind = content_type();
            remote.lines(
                "block/put",
                &vec![("cid-codec", cid_codec)],
                Some((&kind, &mut body)),
                &mut |stat: BlockStat| line(out, format_args!("{}", stat.key)),
            )?;
        }
        BlockCommand::Stat { cid } => {
            cid_arg(&cid)?;
            let mut params = args(&[cid]);
            params.push(("offline", "true".into()));
            let stat: BlockStat = remote.json("block/stat", &params)?;
            line(out, format_args!("Key: {}", stat.key))?;
            line(out, format_args!("Size: {}", stat.size))?;
        }
        BlockCommand::Rm { cids } => {
            cid_args(&cids)?;
            remote.lines("block/rm", &args(&cids), None, &mut |r: Removed| {
                if !r.error.is_empty() {
                    bail!("{}", r.error);
                }
                line(out, format_args!("removed {}", r.hash))
            })?;
        }
    }
    Ok(())
}
