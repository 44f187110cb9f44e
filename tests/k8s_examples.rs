//! The CIDs in the Kubernetes examples are real: `tests/e2e/make-nft-collection.py` writes the
//! demo NFT collection, the `distribute` binary adds it (as `tests/e2e/kind.sh` does inside a
//! node pod), and the CIDs it prints are the ones `k8s/examples/nft-collection.yaml` pins; the
//! same for the file `k8s/examples/pin.yaml` pins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::path::Path;
use std::process::Command;

use kit::Node;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The `cid:` values of a manifest, with an `ipfs://` prefix removed.
fn pinned_cids(example: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("k8s/examples").join(example)).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("cid: "))
        .map(|c| c.trim().trim_start_matches("ipfs://").to_string())
        .collect()
}

fn make_collection(out: &Path, images_cid: &str) {
    let script = repo_root().join("tests/e2e/make-nft-collection.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(out)
        .arg(images_cid)
        .status()
        .unwrap();
    assert!(status.success(), "{} failed", script.display());
}

#[test]
fn nft_collection_cids_are_what_distribute_add_gives() {
    let node = Node::new();
    let dir = node.mkdir("collection");
    let dir = Path::new(&dir);
    make_collection(dir, "-");
    let v1 = ["-r", "--cid-version", "1"];
    let images = node.add(dir.join("images").to_str().unwrap(), &v1);
    make_collection(dir, &images);
    let metadata = node.add(dir.join("metadata").to_str().unwrap(), &v1);
    let contract = node.add(
        dir.join("contract.json").to_str().unwrap(),
        &["--cid-version", "1"],
    );
    assert_eq!(
        pinned_cids("nft-collection.yaml"),
        [images.clone(), metadata.clone(), contract]
    );

    // Each token's metadata points at its image in the collection.
    let token: serde_json::Value =
        serde_json::from_slice(&node.cat(&format!("{metadata}/3.json"))).unwrap();
    assert_eq!(token["image"], format!("ipfs://{images}/3.png"));
    assert!(node.cat(&format!("{images}/3.png")).starts_with(b"\x89PNG"));
}

#[test]
fn pin_example_cid_is_the_hello_file() {
    let node = Node::new();
    let file = node.write("hello.txt", b"Hello from Distribute\n");
    assert_eq!(pinned_cids("pin.yaml"), [node.add(&file, &[])]);
}
