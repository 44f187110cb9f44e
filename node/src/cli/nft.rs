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
//!
//! Through a daemon the DAG is built here just the same, written to a temporary CAR file
//! and sent to the daemon's `dag/import`, which stores it and pins its root.

use std::io::{BufReader, Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use super::args::{NftAddArgs, NftCommand};
use super::output::{Ctx, line};
use super::remote::Remote;
use super::upload::{MultipartBody, Part, PartBody, content_type};
use crate::car::CarWriter;
use crate::content::directory::{DirEntry, build_directory, validate_name};
use crate::content::importer::{BlockSink, SinkError};
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
    let store = ctx.repo.blocks();
    let mut sink = StoreSink::new(store);
    let root = build(a, &ctx.cwd, &mut sink)?;
    store.flush()?;
    ctx.repo.pins().add(&root, PinMode::Recursive)?;
    ctx.repo.pins().flush()?;
    ctx.line(format_args!("ipfs://{root}/{METADATA}"))
}

/// Blocks appended to a CAR file whose header comes later (the root is known at the end).
struct CarSections {
    car: CarWriter<std::io::BufWriter<std::fs::File>>,
}

impl BlockSink for CarSections {
    fn put(&mut self, cid: &cid::Cid, data: &[u8]) -> Result<(), SinkError> {
        Ok(self.car.write_block(cid, data)?)
    }
}

/// `nft add` through a daemon.
pub(super) fn remote(
    remote: &Remote,
    command: NftCommand,
    cwd: &Path,
    out: &mut dyn Write,
) -> Result<()> {
    let NftCommand::Add(a) = command;
    let mut file = tempfile::tempfile().context("creating a temporary CAR file")?;
    // The sections follow a header without roots, which is skipped when sending.
    let no_roots = CarWriter::new(Vec::new(), &[])?.finish()?.len() as u64;
    let mut sink = CarSections {
        car: CarWriter::new(std::io::BufWriter::new(file.try_clone()?), &[])?,
    };
    let root = build(&a, cwd, &mut sink)?;
    sink.car.finish()?.flush()?;
    file.seek(std::io::SeekFrom::Start(no_roots))?;
    let header = CarWriter::new(Vec::new(), &[root])?.finish()?;
    let car = std::io::Cursor::new(header).chain(file);
    let mut body = MultipartBody::new(vec![Part {
        name: "nft.car".into(),
        body: PartBody::Reader(Box::new(car)),
    }]);
    let kind = content_type();
    let mut failure = None;
    remote.lines(
        "dag/import",
        &vec![("pin-roots", "true".to_owned())],
        Some((&kind, &mut body)),
        &mut |l: serde_json::Value| {
            if let Some(message) = l["Root"]["PinErrorMsg"].as_str()
                && !message.is_empty()
            {
                failure = Some(message.to_owned());
            }
            Ok(())
        },
    )?;
    if let Some(message) = failure {
        bail!("the daemon did not pin {root}: {message}");
    }
    line(out, format_args!("ipfs://{root}/{METADATA}"))
}

/// Build the token's directory DAG into `sink`; its root.
fn build(a: &NftAddArgs, cwd: &Path, sink: &mut dyn BlockSink) -> Result<cid::Cid> {
    let attributes = a
        .attributes
        .iter()
        .map(|kv| parse_attribute(kv))
        .collect::<Result<Vec<_>>>()?;
    let path = cwd.join(&a.media);
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
    let media = import_file(BufReader::new(file), &opts, sink, &mut |_| {})
        .with_context(|| format!("importing {}", a.media.display()))?;
    let media_dir = build_directory(
        vec![DirEntry {
            name: file_name.clone(),
            child: media,
        }],
        &opts,
        sink,
    )?;
    let image = format!(
        "ipfs://{}/{}",
        media_dir.cid,
        percent_encoding::utf8_percent_encode(&file_name, SEGMENT)
    );
    let metadata = metadata_json(&a.name, a.description.as_deref(), &image, &attributes);
    let text = serde_json::to_vec_pretty(&metadata)?;
    let meta = import_bytes(&text, &opts, sink)?;
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
        sink,
    )?;
    Ok(root.cid)
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
