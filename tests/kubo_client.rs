//! The real JS `kubo-rpc-client` (npm, `tests/kubo-client/`) against a real `distribute node`:
//! add a file and a directory, cat (whole, range, path), pin add/ls/rm, id. The script prints
//! what each call returned; the CIDs are checked against the same content added offline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::path::PathBuf;
use std::process::Command;

use kit::Node;
use kit::daemon::Daemon;
use serde_json::Value;

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/kubo-client")
}

/// Run the client script against `d`, installing its npm packages first if needed.
fn run_client(d: &Daemon, token: Option<&str>) -> Value {
    let dir = client_dir();
    if !dir.join("node_modules").is_dir() {
        let status = Command::new("bash")
            .arg(dir.join("../interop/install.sh"))
            .arg(&dir)
            .status()
            .expect("running tests/interop/install.sh (needs Node.js >= 20 and npm)");
        assert!(
            status.success(),
            "installing kubo-rpc-client failed ({status})"
        );
    }
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .args(["--import", "../interop/polyfill.mjs", "check.mjs", &d.api]);
    if let Some(token) = token {
        cmd.arg(token);
    }
    let out = cmd
        .output()
        .expect("running node (Node.js >= 20 is needed)");
    assert!(
        out.status.success(),
        "kubo-rpc-client script failed: {}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn kubo_rpc_client_adds_cats_pins_and_identifies() {
    let node = Node::new();
    // Reference CIDs: the same content added offline.
    let hello = node.add(
        &node.write("hello.txt", b"hello from kubo-rpc-client\n"),
        &["--pin=false"],
    );
    let later = node.add(
        &node.write("later.txt", b"pin me later\n"),
        &["--pin=false"],
    );
    let tree = node.mkdir("tree");
    std::fs::create_dir_all(format!("{tree}/sub")).unwrap();
    std::fs::write(format!("{tree}/a.txt"), b"first\n").unwrap();
    std::fs::write(format!("{tree}/sub/b.txt"), b"second\n").unwrap();
    let offline_tree = node.run(&["add", "-r", "--pin=false", &tree]).ok().stdout;
    let tokens = node.write("tokens", b"kubo-client-token\n");
    let d = Daemon::start(node, &["--api-token-file", &tokens]);

    let r = run_client(&d, Some("kubo-client-token"));
    assert_eq!(r["id"]["id"], d.peer_id.as_str());
    assert!(!r["id"]["addresses"].as_array().unwrap().is_empty(), "{r}");
    assert!(
        r["id"]["agentVersion"]
            .as_str()
            .unwrap()
            .starts_with("distribute/")
    );

    assert_eq!(r["file"]["cid"], hello.as_str());
    assert_eq!(r["file"]["path"], "hello.txt");
    let tree_added: Vec<String> = r["dir"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "added {} {}",
                e["cid"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(tree_added, offline_tree.lines().collect::<Vec<_>>());

    assert_eq!(r["cat"], "hello from kubo-rpc-client\n");
    assert_eq!(r["catRange"], "from");
    assert_eq!(r["catPath"], "second\n");

    assert_eq!(r["unpinned"], later.as_str());
    assert_eq!(r["pinAdd"], later.as_str());
    let listed: Vec<(String, String)> = r["pinLs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["cid"].as_str().unwrap().to_owned(),
                p["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        listed.contains(&(later.clone(), "recursive".to_owned())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(hello.clone(), "recursive".to_owned())),
        "{listed:?}"
    );
    assert_eq!(r["pinLsOne"][0]["cid"], later.as_str());
    assert_eq!(r["pinLsOne"][0]["type"], "recursive");
    assert_eq!(r["pinRm"], later.as_str());
    let after: Vec<&str> = r["pinLsAfterRm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(!after.contains(&later.as_str()), "{after:?}");
    assert!(after.contains(&hello.as_str()), "{after:?}");
    assert!(
        r["pinRmAgain"].as_str().unwrap().contains("not pinned"),
        "{r}"
    );
}
