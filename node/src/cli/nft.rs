//! `distribute nft add`: one directory DAG per token, pinned, printed as
//! `ipfs://<root>/metadata.json`.
//!
//! Layout (a metadata file cannot name the CID of a directory that contains it, so the media
//! gets its own directory, which the root links):
//!
//! ```text
//! <root>/
//!   metadata.json   {"name", "description", "image": "ipfs://<media-dir>/<file>", "attributes"}
//!   media/          = <media-dir>
//!     <file>        the media bytes
//! ```
//!
//! `ipfs://<media-dir>/<file>` keeps the file name (gateways derive the content type from it)
//! and resolves inside the same pinned DAG (`<root>/media/<file>` is the same file). Blocks
//! are CIDv1 with raw leaves, so every CID can be a subdomain-gateway label.

use std::io::BufReader;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use super::args::{NftAddArgs, NftCommand};
use super::output::Ctx;
use crate::content::directory::{DirEntry, build_directory, validate_name};
use crate::content::importer::{ImportOptions, import_bytes, import_file};
use crate::gateway::request::SEGMENT;
use crate::store::StoreSink;
use crate::store::pins::PinMode;

/// Name of the link to the media directory inside the token's root.
const MEDIA_DIR: &str = "media";
const METADATA: &str = "metadata.json";

pub(super) fn run(ctx: &mut Ctx<'_>, command: NftCommand) -> Result<()> {
    match command {
        NftCommand::Add(a) => add(ctx, &a),
    }
}

fn add(ctx: &mut Ctx<'_>, a: &NftAddArgs) -> Result<()> {
    let attributes = a
        .attributes
        .iter()
        .map(|kv| parse_attribute(kv))
        .collect::<Result<Vec<_>>>()?;
    let path = ctx.path(&a.media);
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: the media needs a UTF-8 file name", a.media.display()))?
        .to_owned();
    validate_name(&file_name)?;
    let file = std::fs::File::open(&path)
        .with_context(|| format!("opening the media file {}", a.media.display()))?;
    if file.metadata()?.is_dir() {
        bail!(
            "{} is a directory; nft add takes one media file",
            a.media.display()
        );
    }
    let opts = ImportOptions::default().with_cid_version(1);
    let store = ctx.repo.blocks();
    let mut sink = StoreSink::new(store);
    let media = import_file(BufReader::new(file), &opts, &mut sink, &mut |_| {})
        .with_context(|| format!("importing {}", a.media.display()))?;
    let media_dir = build_directory(
        vec![DirEntry {
            name: file_name.clone(),
            child: media,
        }],
        &opts,
        &mut sink,
    )?;
    let image = format!(
        "ipfs://{}/{}",
        media_dir.cid,
        percent_encoding::utf8_percent_encode(&file_name, SEGMENT)
    );
    let metadata = metadata_json(&a.name, a.description.as_deref(), &image, &attributes);
    let text = serde_json::to_vec_pretty(&metadata)?;
    let meta = import_bytes(&text, &opts, &mut sink)?;
    let root = build_directory(
        vec![
            DirEntry {
                name: MEDIA_DIR.into(),
                child: media_dir,
            },
            DirEntry {
                name: METADATA.into(),
                child: meta,
            },
        ],
        &opts,
        &mut sink,
    )?;
    store.flush()?;
    ctx.repo.pins().add(&root.cid, PinMode::Recursive)?;
    ctx.repo.pins().flush()?;
    ctx.line(format_args!("ipfs://{}/{METADATA}", root.cid))
}

/// `key=value` → (key, value); integer values become JSON numbers.
fn parse_attribute(text: &str) -> Result<(String, Value)> {
    let Some((key, value)) = text.split_once('=') else {
        bail!("attribute {text:?} is not key=value");
    };
    if key.trim().is_empty() {
        bail!("attribute {text:?} has an empty key");
    }
    let value = match value.parse::<i64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(value),
    };
    Ok((key.trim().to_owned(), value))
}

/// ERC-721 / ERC-1155 metadata with OpenSea-style attributes.
fn metadata_json(
    name: &str,
    description: Option<&str>,
    image: &str,
    attributes: &[(String, Value)],
) -> Value {
    let mut doc = Map::new();
    doc.insert("name".into(), json!(name));
    if let Some(d) = description {
        doc.insert("description".into(), json!(d));
    }
    doc.insert("image".into(), json!(image));
    let traits: Vec<Value> = attributes
        .iter()
        .map(|(k, v)| json!({ "trait_type": k, "value": v }))
        .collect();
    doc.insert("attributes".into(), Value::Array(traits));
    Value::Object(doc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        assert_eq!(
            parse_attribute("eyes=blue").unwrap(),
            ("eyes".into(), json!("blue"))
        );
        assert_eq!(
            parse_attribute("level=7").unwrap(),
            ("level".into(), json!(7))
        );
        assert_eq!(
            parse_attribute("note=a=b").unwrap(),
            ("note".into(), json!("a=b"))
        );
        assert!(parse_attribute("novalue").is_err());
        assert!(parse_attribute("=x").is_err());
    }

    #[test]
    fn metadata_shape() {
        let doc = metadata_json(
            "Cat",
            Some("a cat"),
            "ipfs://bafy/cat.png",
            &[("eyes".into(), json!("green"))],
        );
        assert_eq!(
            doc,
            json!({"name": "Cat", "description": "a cat", "image": "ipfs://bafy/cat.png",
                   "attributes": [{"trait_type": "eyes", "value": "green"}]})
        );
        let bare = metadata_json("Cat", None, "ipfs://x/y", &[]);
        assert!(bare.get("description").is_none());
        assert_eq!(bare["attributes"], json!([]));
    }
}
