//! `distribute block get|put|stat|rm`: single blocks by CID.

use std::io::Read;

use anyhow::{Context, Result, bail};

use super::args::BlockCommand;
use super::output::{Ctx, cid_arg, cid_args};
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
            let codec = match cid_codec.as_str() {
                "raw" => CODEC_RAW,
                "dag-pb" => CODEC_DAG_PB,
                other => bail!("unsupported --cid-codec {other:?} (expected raw or dag-pb)"),
            };
            let mut data = Vec::new();
            let limit = MAX_BLOCK_SIZE as u64 + 1;
            match &file {
                Some(path) => std::fs::File::open(ctx.path(path))
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
