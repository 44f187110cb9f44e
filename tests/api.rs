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
    let d = Daemon::start(node, &["--fetch-timeout=2"]);

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
    // Pinning what is neither in the repository nor on any peer fails once the fetch timeout
    // passes, and pins nothing.
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

/// A multipart body of `(filename, content type, data)` parts with boundary `B0undary`.
fn multipart(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, kind, data) in parts {
        body.extend_from_slice(b"--B0undary\r\n");
        body.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {kind}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--B0undary--\r\n");
    body
}

const MULTIPART: (&str, &str) = ("Content-Type", "multipart/form-data; boundary=B0undary");
const DIR: &str = "application/x-directory";
const FILE: &str = "application/octet-stream";

#[test]
fn add_streams_files_and_trees_with_kubos_cids_and_cat_reads_them() {
    let node = Node::new();
    // The same tree added offline gives the reference CIDs.
    let data = kit::gen_bytes(11, 600_000);
    let dir = node.mkdir("tree");
    std::fs::create_dir_all(format!("{dir}/sub")).unwrap();
    std::fs::write(format!("{dir}/sub/big.bin"), &data).unwrap();
    std::fs::write(format!("{dir}/a b.txt"), b"spaced\n").unwrap();
    let offline = node.run(&["add", "-r", "--pin=false", &dir]).ok().stdout;
    let d = Daemon::start(node, &[]);

    let body = multipart(&[
        ("tree", DIR, b""),
        ("tree%2Fa%20b.txt", FILE, b"spaced\n"),
        ("tree%2Fsub", DIR, b""),
        ("tree%2Fsub%2Fbig.bin", FILE, &data),
    ]);
    let (status, answer) = d.post("add?progress=true", &[MULTIPART], &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let events = lines(&answer);
    let added: Vec<String> = events
        .iter()
        .filter(|e| e["Hash"].is_string())
        .map(|e| {
            assert!(e["Size"].as_str().unwrap().parse::<u64>().is_ok(), "{e}");
            format!(
                "added {} {}",
                e["Hash"].as_str().unwrap(),
                e["Name"].as_str().unwrap()
            )
        })
        .collect();
    let want: Vec<&str> = offline.lines().collect();
    assert_eq!(added, want);
    let progress: Vec<u64> = events
        .iter()
        .filter(|e| e["Name"] == "tree/sub/big.bin" && e["Bytes"].is_u64())
        .map(|e| e["Bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(progress.last(), Some(&(data.len() as u64)), "{events:?}");

    // The root is pinned; cat reads files by path, with ranges.
    let root = events.last().unwrap()["Hash"].as_str().unwrap().to_owned();
    let (_, pins) = d.post(&format!("pin/ls?arg={root}"), &[], b"");
    assert_eq!(json(&pins)["Keys"][&root]["Type"], "recursive");
    let (status, bytes) = d.post(&format!("cat?arg=/ipfs/{root}/sub/big.bin"), &[], b"");
    assert_eq!(status, 200);
    assert!(bytes == data);
    let (_, part) = d.post(
        &format!("cat?arg=ipfs://{root}/sub/big.bin&offset=1000&length=5000"),
        &[],
        b"",
    );
    assert!(part == data[1000..6000]);
    assert_error(
        d.post(&format!("cat?arg={root}/nope"), &[], b""),
        404,
        "no link named",
    );
    assert_error(
        d.post(&format!("cat?arg={root}"), &[], b""),
        400,
        "is a directory",
    );
}

#[test]
fn add_options_follow_kubo() {
    let node = Node::new();
    let file = node.write("f.txt", b"options\n");
    let v1 = node.add(&file, &["--cid-version=1", "--pin=false"]);
    let d = Daemon::start(node, &[]);
    let body = multipart(&[("f.txt", FILE, b"options\n")]);
    let (status, answer) = d.post("add?cid-version=1&pin=false", &[MULTIPART], &body);
    assert_eq!(status, 200);
    let events = lines(&answer);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["Hash"], v1.as_str());
    assert_eq!(events[0]["Name"], "f.txt");
    let (_, pins) = d.post("pin/ls", &[], b"");
    assert_eq!(json(&pins)["Keys"], serde_json::json!({}));
    // Wrapped: the wrapper comes last with an empty name.
    let (_, answer) = d.post("add?wrap-with-directory=true", &[MULTIPART], &body);
    let events = lines(&answer);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["Name"], "");
    assert_error(
        d.post("add?cid-version=7", &[MULTIPART], &body),
        400,
        "cid-version",
    );
    assert_error(
        d.post("add?chunker=nonsense", &[MULTIPART], &body),
        400,
        "chunker",
    );
}

#[test]
fn bad_multipart_gets_clear_4xx_and_the_node_keeps_serving() {
    let d = Daemon::start(Node::new(), &[]);
    let good = multipart(&[("ok.txt", FILE, b"ok")]);
    // No multipart content type, or no boundary.
    assert_error(d.post("add", &[], &good), 400, "boundary");
    assert_error(
        d.post("add", &[("Content-Type", "multipart/form-data")], &good),
        400,
        "boundary",
    );
    // Traversal and empty segments in names.
    for bad in ["..%2Fetc%2Fpasswd", "a%2F..%2Fb", "a%2F%2Fb"] {
        let body = multipart(&[(bad, FILE, b"x")]);
        assert_error(d.post("add", &[MULTIPART], &body), 400, "entry path");
    }
    // A body cut off inside a part, and one with no boundary at all.
    assert_error(
        d.post("add", &[MULTIPART], &good[..good.len() - 16]),
        400,
        "ended inside a part",
    );
    assert_error(
        d.post("add", &[MULTIPART], b"just some bytes"),
        400,
        "no boundary",
    );
    // A giant part header, and too many parts.
    let mut giant = b"--B0undary\r\nX-Filler: ".to_vec();
    giant.extend(std::iter::repeat_n(b'a', 64 << 10));
    giant.extend_from_slice(b"\r\n\r\nx\r\n--B0undary--\r\n");
    assert_error(d.post("add", &[MULTIPART], &giant), 413, "headers exceed");
    let many: Vec<(String, &str, &[u8])> = (0..100_001)
        .map(|i| (format!("d{i}"), DIR, &b""[..]))
        .collect();
    let parts: Vec<(&str, &str, &[u8])> =
        many.iter().map(|(n, k, d)| (n.as_str(), *k, *d)).collect();
    // Too many parts is only seen once the entries before the limit have been streamed: the
    // status is already 200, so the answer ends with Kubo's error line instead.
    let (status, answer) = d.post("add", &[MULTIPART], &multipart(&parts));
    assert_eq!(status, 200);
    let last = lines(&answer).pop().unwrap();
    assert_eq!(last["Type"], "error", "{last}");
    assert!(
        last["Message"].as_str().unwrap().contains("parts"),
        "{last}"
    );
    // Still serving, and nothing was pinned by the failures.
    let (status, answer) = d.post("add", &[MULTIPART], &good);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let (_, pins) = d.post("pin/ls?type=recursive", &[], b"");
    assert_eq!(json(&pins)["Keys"].as_object().unwrap().len(), 1);
}

#[test]
fn ls_lists_entries_with_kubos_types_and_sizes() {
    let node = Node::new();
    let dir = node.mkdir("listed");
    std::fs::create_dir_all(format!("{dir}/inner")).unwrap();
    std::fs::write(format!("{dir}/inner/x.txt"), b"x\n").unwrap();
    std::fs::write(format!("{dir}/file.txt"), b"twelve bytes").unwrap();
    std::os::unix::fs::symlink("file.txt", format!("{dir}/link")).unwrap();
    let root = node.add(&dir, &["-r"]);
    let d = Daemon::start(node, &[]);

    let (status, body) = d.post(&format!("ls?arg=/ipfs/{root}"), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let value = json(&body);
    let objects = value["Objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["Hash"], format!("/ipfs/{root}"));
    let links = objects[0]["Links"].as_array().unwrap();
    let by_name = |name: &str| {
        links
            .iter()
            .find(|l| l["Name"] == name)
            .unwrap_or_else(|| panic!("{name} missing in {value}"))
    };
    assert_eq!(links.len(), 3, "{value}");
    assert_eq!(by_name("file.txt")["Type"], 2);
    assert_eq!(by_name("file.txt")["Size"], 12);
    assert_eq!(by_name("file.txt")["Target"], "");
    assert_eq!(by_name("inner")["Type"], 1);
    assert_eq!(by_name("link")["Type"], 4);
    assert_eq!(by_name("link")["Target"], "file.txt");
    // The file's CID is what the CLI resolves for the same path.
    let file_cid = by_name("file.txt")["Hash"].as_str().unwrap().to_owned();
    let (_, content) = d.post(&format!("cat?arg={file_cid}"), &[], b"");
    assert_eq!(content, b"twelve bytes");

    // A file has no links; a subdirectory lists its own.
    let (_, body) = d.post(&format!("ls?arg={file_cid}"), &[], b"");
    assert_eq!(json(&body)["Objects"][0]["Links"], serde_json::json!([]));
    let (_, body) = d.post(&format!("ls?arg={root}/inner"), &[], b"");
    assert_eq!(json(&body)["Objects"][0]["Links"][0]["Name"], "x.txt");

    assert_error(
        d.post("ls", &[], b""),
        400,
        "argument \"ipfs-path\" is required",
    );
    assert_error(
        d.post(&format!("ls?arg={root}/nope"), &[], b""),
        404,
        "no link named \"nope\"",
    );
}

/// A multipart body with one file part.
fn one_file(data: &[u8]) -> Vec<u8> {
    multipart(&[("blob", FILE, data)])
}

#[test]
fn blocks_put_stat_get_round_trip_with_kubos_cids() {
    let d = Daemon::start(Node::new(), &["--fetch-timeout=1"]);
    let data = b"a block through the RPC API";
    let expected =
        distribute::content::cid::block_cid(distribute::content::cid::CODEC_RAW, 1, data)
            .to_string();

    let (status, body) = d.post("block/put", &[MULTIPART], &one_file(data));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json(&body),
        serde_json::json!({ "Key": expected, "Size": data.len() })
    );

    let (status, body) = d.post(&format!("block/stat?arg={expected}"), &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        json(&body),
        serde_json::json!({ "Key": expected, "Size": data.len() })
    );
    let (status, body) = d.post(&format!("block/get?arg=/ipfs/{expected}"), &[], b"");
    assert_eq!(status, 200);
    assert_eq!(body, data);

    // dag-pb blocks are checked; unsupported options and bad CIDs are 400s.
    assert_error(
        d.post("block/put?cid-codec=dag-pb", &[MULTIPART], &one_file(data)),
        400,
        "not valid dag-pb",
    );
    assert_error(
        d.post("block/put?mhtype=md5", &[MULTIPART], &one_file(data)),
        400,
        "\"mhtype\"",
    );
    assert_error(
        d.post(
            "block/put?cid-codec=dag-cbor",
            &[MULTIPART],
            &one_file(data),
        ),
        400,
        "\"cid-codec\"",
    );
    assert_error(
        d.post("block/put", &[MULTIPART], b"--B0undary--\r\n"),
        400,
        "no file",
    );
    assert_error(
        d.post("block/stat?arg=bafy-nonsense", &[], b""),
        400,
        "invalid CID",
    );
    // A block nobody has: 404 once the fetch timeout passes.
    let absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    assert_error(
        d.post(&format!("block/get?arg={absent}"), &[], b""),
        404,
        "timed out",
    );
}

#[test]
fn dag_export_gives_a_car_another_node_imports() {
    let node = Node::new();
    let data = kit::gen_bytes(5, 700_000);
    let file = node.write("car.bin", &data);
    let cid = node.add(&file, &[]);
    let d = Daemon::start(node, &[]);

    let (status, car) = d.post(&format!("dag/export?arg={cid}"), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&car));
    let other = Node::new();
    let car_path = other.write("export.car", &car);
    other.run(&["dag", "import", &car_path]).ok();
    assert_eq!(other.cat(&cid), data);

    assert_error(
        d.post("dag/export", &[], b""),
        400,
        "argument \"root\" is required",
    );
    assert_error(d.post("dag/export?arg=zzz", &[], b""), 400, "invalid CID");
}

#[test]
fn repo_stat_counts_blocks_and_gc_removes_unpinned_ones() {
    let node = Node::new();
    let pinned = node.write("kept.txt", b"pinned, survives gc\n");
    let kept = node.add(&pinned, &[]);
    let d = Daemon::start(node, &["--fetch-timeout=1"]);
    let loose = b"an unpinned block";
    let (_, body) = d.post("block/put", &[MULTIPART], &one_file(loose));
    let loose_cid = json(&body)["Key"].as_str().unwrap().to_owned();

    let (status, body) = d.post("repo/stat", &[], b"");
    assert_eq!(status, 200);
    let stat = json(&body);
    assert_eq!(stat["NumObjects"], 2, "{stat}");
    assert!(stat["RepoSize"].as_u64().unwrap() >= loose.len() as u64);
    assert!(stat["StorageMax"].is_u64());
    assert!(stat["Version"].is_string());
    assert_eq!(
        stat["RepoPath"],
        d.node.repo().display().to_string().as_str()
    );

    let (status, body) = d.post("repo/gc", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let removed = lines(&body);
    assert_eq!(
        removed,
        vec![serde_json::json!({ "Key": { "/": loose_cid } })]
    );
    let (_, body) = d.post("repo/stat", &[], b"");
    assert_eq!(json(&body)["NumObjects"], 1);
    assert_error(
        d.post(&format!("block/stat?arg={loose_cid}"), &[], b""),
        404,
        "timed out",
    );
    let (_, content) = d.post(&format!("cat?arg={kept}"), &[], b"");
    assert_eq!(content, b"pinned, survives gc\n");
    assert_error(
        d.post("repo/gc?quiet=maybe", &[], b""),
        400,
        "not a boolean",
    );
}

#[test]
fn dag_import_stores_and_pins_the_roots_of_multipart_cars() {
    let source = Node::new();
    let data = kit::gen_bytes(9, 900_000);
    let file = source.write("imported.bin", &data);
    let cid = source.add(&file, &[]);
    let car = source.run(&["dag", "export", &cid]).ok().raw_stdout;
    let d = Daemon::start(Node::new(), &[]);

    let body = multipart(&[("file.car", FILE, &car)]);
    let (status, answer) = d.post("dag/import?stats=true", &[MULTIPART], &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let events = lines(&answer);
    assert_eq!(
        events[0],
        serde_json::json!({ "Root": { "Cid": { "/": cid }, "PinErrorMsg": "" } })
    );
    assert!(
        events[1]["Stats"]["BlockCount"].as_u64().unwrap() > 1,
        "{events:?}"
    );
    let (_, pins) = d.post(&format!("pin/ls?arg={cid}"), &[], b"");
    assert_eq!(json(&pins)["Keys"][&cid]["Type"], "recursive");
    let (_, content) = d.post(&format!("cat?arg={cid}"), &[], b"");
    assert_eq!(content, data);

    // Not a CAR: 400 naming it; the node keeps serving.
    let junk = multipart(&[("junk.car", FILE, b"not a car at all")]);
    assert_error(d.post("dag/import", &[MULTIPART], &junk), 400, "CAR 1");
    assert_error(
        d.post("dag/import", &[MULTIPART], b"--B0undary--\r\n"),
        400,
        "no CAR file",
    );
    let (status, _) = d.post("version", &[], b"");
    assert_eq!(status, 200);
}

#[test]
fn swarm_connect_and_peers_between_two_nodes_and_findprovs_checks_its_input() {
    let a = Daemon::start(Node::new(), &[]);
    // B bootstraps from A (so A is in its DHT routing table); connecting again reports it.
    let b = Daemon::start(Node::new(), &["--bootstrap", &a.addr()]);

    let (status, body) = b.post(&format!("swarm/connect?arg={}", a.addr()), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json(&body),
        serde_json::json!({ "Strings": [format!("connect {} success", a.peer_id)] })
    );
    let (status, body) = b.post("swarm/peers", &[], b"");
    assert_eq!(status, 200);
    let peers = json(&body);
    let entry = peers["Peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Peer"] == a.peer_id.as_str())
        .unwrap_or_else(|| panic!("{} not in {peers}", a.peer_id))
        .clone();
    assert!(
        entry["Addr"]
            .as_str()
            .unwrap()
            .starts_with("/ip4/127.0.0.1/"),
        "{entry}"
    );

    assert_error(
        b.post("swarm/connect?arg=not-a-multiaddr", &[], b""),
        400,
        "not a multiaddr",
    );
    assert_error(
        b.post("routing/findprovs", &[], b""),
        400,
        "argument \"key\" is required",
    );
    assert_error(
        b.post("routing/findprovs?arg=bafkqaaa&num-providers=0", &[], b""),
        400,
        "at least 1",
    );
}

/// Entries of a tar answer: path, kind ("file", "dir", "link:<target>") and file bytes.
fn untar(body: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    use distribute::tar::{EntryKind, TarReader};
    use std::io::Read;
    let mut reader = TarReader::new(body);
    let mut entries = Vec::new();
    while let Some(entry) = reader.next_entry().unwrap() {
        let mut bytes = Vec::new();
        reader.body().read_to_end(&mut bytes).unwrap();
        let kind = match entry.kind {
            EntryKind::File => "file".to_owned(),
            EntryKind::Directory => "dir".to_owned(),
            EntryKind::Symlink(t) => format!("link:{t}"),
        };
        entries.push((entry.path, kind, bytes));
    }
    entries
}

#[test]
fn get_answers_a_tar_of_files_and_trees_as_kubo_does() {
    let node = Node::new();
    let data = kit::gen_bytes(21, 700_000);
    let dir = node.mkdir("tree");
    let long = "l".repeat(120); // over ustar's 100-byte name field
    std::fs::create_dir_all(format!("{dir}/sub")).unwrap();
    std::fs::write(format!("{dir}/sub/big.bin"), &data).unwrap();
    std::fs::write(format!("{dir}/{long}"), b"long name\n").unwrap();
    std::os::unix::fs::symlink("sub/big.bin", format!("{dir}/link")).unwrap();
    let root = node.add(&dir, &["-r"]);
    let file = node.add(&node.write("one.txt", b"just one\n"), &[]);
    let d = Daemon::start(node, &[]);

    let response = kit::daemon::agent()
        .post(format!("{}/api/v0/get?arg={root}&archive=true", d.api))
        .send_empty()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-type").as_deref(), Some("application/x-tar"));
    assert_eq!(header("x-stream-output").as_deref(), Some("1"));
    let size: u64 = header("x-content-length").unwrap().parse().unwrap();
    assert!(size >= data.len() as u64, "X-Content-Length {size}");
    let body = response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    let entries = untar(&body);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let long_path = format!("{root}/{long}");
    let link_path = format!("{root}/link");
    let sub = format!("{root}/sub");
    let big = format!("{root}/sub/big.bin");
    assert_eq!(
        names,
        [root.as_str(), &link_path, &long_path, &sub, &big],
        "directory order is the DAG's (bytewise names)"
    );
    assert_eq!(entries[0].1, "dir");
    assert_eq!(entries[1].1, "link:sub/big.bin");
    assert_eq!(entries[2].2, b"long name\n");
    assert!(entries[4].2 == data, "file bytes differ");

    // A file by path (the entry takes the last segment's name) and by ipfs:// URI.
    let (status, body) = d.post(&format!("get?arg=/ipfs/{root}/sub/big.bin"), &[], b"");
    assert_eq!(status, 200);
    let entries = untar(&body);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "big.bin");
    assert!(entries[0].2 == data);
    let (status, body) = d.post(&format!("get?arg=ipfs://{file}"), &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        untar(&body),
        [(file.clone(), "file".into(), b"just one\n".to_vec())]
    );

    assert_error(
        d.post(&format!("get?arg={root}&compress=true"), &[], b""),
        400,
        "compression is not supported",
    );
    assert_error(
        d.post(&format!("get?arg={root}/nope"), &[], b""),
        404,
        "no link named",
    );
    assert_error(d.post("get?arg=not-a-cid", &[], b""), 400, "");
    assert_error(d.post("get", &[], b""), 400, "required");
}

/// A daemon killed with SIGKILL leaves `node.json` and `api` behind; the next daemon on the
/// repository removes them as soon as it holds the lock, before anything can fail (here:
/// its API port is taken), so no client finds a dead daemon's API.
#[test]
fn a_killed_daemons_files_are_removed_by_the_next_start() {
    let mut d = Daemon::start(Node::new(), &[]);
    d.kill();
    let repo = d.node.repo();
    assert!(repo.join("node.json").exists() && repo.join("api").exists());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = d
        .node
        .run(&[
            "node",
            "--no-mdns",
            "--listen=/ip4/127.0.0.1/tcp/0",
            &format!("--api=127.0.0.1:{port}"),
        ])
        .fails();
    assert!(out.stderr.contains(&port.to_string()), "{}", out.stderr);
    assert!(!repo.join("node.json").exists(), "stale node.json left");
    assert!(!repo.join("api").exists(), "stale api file left");
    // The repository works offline again, and a new daemon starts and answers.
    d.node.run(&["repo", "stat"]).ok();
    let node = std::mem::replace(&mut d.node, Node::new());
    let again = Daemon::start(node, &[]);
    let id = again.node.run(&["id"]).ok().stdout;
    assert!(id.contains(&again.peer_id), "{id}");
}
