//! The HTTP RPC API of a real `distribute node`: Kubo's paths, status codes and error bodies,
//! bearer-token auth, and the JSON shapes of each command, checked over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use kit::Node;
use kit::daemon::Daemon;
use serde_json::Value;

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// Every NDJSON line of a body.
fn lines(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Assert a Kubo error answer with `status` whose message contains `needle`.
fn assert_error(answer: (u16, Vec<u8>), status: u16, needle: &str) {
    let (got, body) = answer;
    let value = json(&body);
    assert_eq!(got, status, "{value}");
    assert_eq!(value["Type"], "error", "{value}");
    assert_eq!(value["Code"], 0, "{value}");
    let message = value["Message"].as_str().unwrap();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

#[test]
fn paths_methods_and_errors_follow_kubo() {
    let d = Daemon::start(Node::new(), &[]);
    // Unknown command and non-API path: 404.
    assert_error(d.post("no/such/cmd", &[], b""), 404, "unknown command");
    assert_error(
        kit::daemon::post(&format!("{}/elsewhere", d.api), &[], b""),
        404,
        "not an API path",
    );
    // Anything but POST: 405.
    let get = kit::daemon::agent()
        .get(format!("{}/api/v0/id", d.api))
        .call()
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let body = get.into_body().read_to_vec().unwrap();
    assert_eq!(json(&body)["Type"], "error");
    // Bad arguments: 400, naming the problem.
    assert_error(
        d.post("pin/add", &[], b""),
        400,
        "argument \"cid\" is required",
    );
    assert_error(
        d.post("pin/add?arg=not-a-cid", &[], b""),
        400,
        "invalid CID",
    );
    assert_error(
        d.post("pin/ls?type=sideways", &[], b""),
        400,
        "invalid pin type",
    );
    assert_error(
        d.post("pin/add?arg=bafkqaaa&recursive=perhaps", &[], b""),
        400,
        "not a boolean",
    );
    // The node keeps serving.
    let (status, _) = d.post("version", &[], b"");
    assert_eq!(status, 200);
}

#[test]
fn id_and_version_have_kubos_fields() {
    let d = Daemon::start(Node::new(), &[]);
    let (status, body) = d.post("id", &[], b"");
    assert_eq!(status, 200);
    let id = json(&body);
    assert_eq!(id["ID"], d.peer_id.as_str());
    assert!(!id["PublicKey"].as_str().unwrap().is_empty());
    let addrs = id["Addresses"].as_array().unwrap();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| {
        a.as_str()
            .unwrap()
            .ends_with(&format!("/p2p/{}", d.peer_id))
    }));
    assert!(
        id["AgentVersion"]
            .as_str()
            .unwrap()
            .starts_with("distribute/")
    );
    assert!(id["ProtocolVersion"].is_string());

    let (status, body) = d.post("version", &[], b"");
    assert_eq!(status, 200);
    let version = json(&body);
    assert_eq!(version["Version"], env!("CARGO_PKG_VERSION"));
    for field in ["Commit", "Repo", "System", "Golang"] {
        assert!(version[field].is_string(), "{field} in {version}");
    }
}

#[test]
fn pins_have_kubos_shapes_and_accept_uri_forms() {
    let node = Node::new();
    let file = node.write("p.txt", b"pinned through the API\n");
    let cid = node.add(&file, &["--pin=false"]);
    let d = Daemon::start(node, &[]);

    let (status, body) = d.post(&format!("pin/add?arg=ipfs://{cid}"), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body), serde_json::json!({ "Pins": [cid] }));

    let (status, body) = d.post("pin/ls", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["Keys"][&cid]["Type"], "recursive");

    let (status, body) = d.post(&format!("pin/ls?arg=/ipfs/{cid}&stream=true"), &[], b"");
    assert_eq!(status, 200);
    let entries = lines(&body);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["Cid"], cid.as_str());
    assert_eq!(entries[0]["Type"], "recursive");

    let (status, body) = d.post(&format!("pin/rm?arg={cid}"), &[], b"");
    assert_eq!(status, 200);
    assert_eq!(json(&body), serde_json::json!({ "Pins": [cid] }));
    let (_, body) = d.post("pin/ls?type=recursive", &[], b"");
    assert_eq!(json(&body)["Keys"], serde_json::json!({}));
    // Unpinning again fails, naming the CID.
    assert_error(
        d.post(&format!("pin/rm?arg={cid}"), &[], b""),
        500,
        "is not pinned",
    );
    // Pinning what is not in the repository fails and pins nothing.
    let absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    assert_error(
        d.post(&format!("pin/add?arg={absent}"), &[], b""),
        500,
        "not in the repository",
    );
}

#[test]
fn a_token_file_makes_every_call_need_a_bearer_token() {
    let node = Node::new();
    let tokens = node.write("tokens", b"# API tokens\nfirst-token\nsecond-token\n");
    let d = Daemon::start(node, &["--api-token-file", &tokens]);
    assert_error(d.post("id", &[], b""), 401, "unauthorized");
    assert_error(
        d.post("id", &[("Authorization", "Bearer wrong")], b""),
        401,
        "unauthorized",
    );
    let (status, _) = d.post("id", &[("Authorization", "Bearer second-token")], b"");
    assert_eq!(status, 200);
    // The CLI sends the token from the same flag or from the environment.
    d.node.run(&["pin", "ls"]).fails();
    d.node.run(&["--api-token-file", &tokens, "pin", "ls"]).ok();
    let run = d
        .node
        .command(&["id"])
        .env("DISTRIBUTE_API_TOKEN", "first-token")
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
}

#[test]
fn binding_off_loopback_without_a_token_file_is_refused() {
    let node = Node::new();
    let run = node
        .run(&[
            "node",
            "--api=0.0.0.0:0",
            "--listen=/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
        ])
        .fails();
    assert!(run.stderr.contains("--api-token-file"), "{run:?}");
    assert!(!node.repo().join("api").exists());
}
