//! The HTTP gateway against real daemons on loopback: the path gateway (files, directories,
//! listings, ranges, caching headers, redirects), the trustless gateway (raw blocks, CAR
//! streams verified block by block), subdomain mode, error statuses, fetching over Bitswap
//! from another daemon (only the blocks a range, listing or path needs), a 504 for content
//! nobody has, and `nft add` round trips.
//! Content comes from the gateway conformance CARs in `shared/gateway-fixtures`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::io::{Read, Write};
use std::time::Duration;

use distribute::car::CarReader;
use kit::daemon::Daemon;
use kit::{Node, gen_bytes, wait_for};

/// How long a daemon may take to connect to the peer it was bootstrapped from.
const CONNECT: Duration = Duration::from_secs(120);

const DIR_WITH_FILES: &str = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy";
const HELLO: &str = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4";
const MULTIBLOCK: &str = "bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa";
const LISTING: &str = "bafybeig6ka5mlwkl4subqhaiatalkcleo4jgnr3hqwvpmsqfca27cijp3i";
const PERCENT: &str = "bafybeig675grnxcmshiuzdaz2xalm6ef4thxxds6o6ypakpghm5kghpc34";
const HAMT: &str = "bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i";
const MIXED: &str = "bafybeidh6k2vzukelqtrjsmd4p52cpmltd2ufqrdtdg6yigi73in672fwu";
const CBOR: &str = "bafireif3aymeikgfbofx533yf5vlx4kimzq6zmzmpra2mnzfsfnmv4hchm";
/// The subdomain fixture's root: a directory whose `hello-CIDv1_TOO_LONG` is a sha2-512 block.
const SUBDOMAIN_ROOT: &str = "QmYiPNLU7Hc739sqcBH5DgVmk5mKTQVzKSqvJJeNGWTgrE";
const HELLO_SHA512: &str = "bafkrgqhhyivzstcz3hhswshfjgy6ertgmnqeleynhwt4dlfsthi4hn7zgh4uvlsb5xncykzapi3ocd4lzogukir6ksdy6wzrnz6ohnv4aglcs";

const FIXTURES: &[&str] = &[
    "path_gateway_unixfs/dir-with-files.car",
    "dir_listing/fixtures.car",
    "path_gateway_unixfs/dir-with-percent-encoded-filename.car",
    "trustless_gateway_car/single-layer-hamt-with-multi-block-files.car",
    "trustless_gateway_car/subdir-with-mixed-block-files.car",
    "path_gateway_dag/plain-cbor.car",
    "subdomain_gateway/fixtures.car",
];

/// A node with the fixtures imported (offline), then its daemon started with a gateway.
fn gateway_node(extra: &[&str]) -> Daemon {
    let node = Node::new();
    let dir = kit::shared_dir().join("gateway-fixtures");
    let paths: Vec<String> = FIXTURES
        .iter()
        .map(|f| dir.join(f).to_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["dag", "import"];
    args.extend(paths.iter().map(String::as_str));
    node.run(&args).ok();
    let mut flags = vec!["--gateway=127.0.0.1:0"];
    flags.extend_from_slice(extra);
    Daemon::start(node, &flags)
}

struct Resp {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(Duration::from_secs(180)))
        .build()
        .new_agent()
}

fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Resp {
    let agent = agent();
    let response = match method {
        "GET" => {
            let mut r = agent.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        "HEAD" => {
            let mut r = agent.head(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        "POST" => agent.post(url).send_empty(),
        "PUT" => agent.put(url).send_empty(),
        "DELETE" => agent.delete(url).call(),
        other => panic!("method {other}"),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

fn get(url: &str) -> Resp {
    request("GET", url, &[])
}

/// A request written by hand (paths no client library would send as is, or a Host header).
fn raw(base: &str, head: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(stream, "{head}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    text.push_str(&String::from_utf8_lossy(&bytes));
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn path_gateway_files_directories_and_headers() {
    let d = gateway_node(&[]);
    let gw = d.gateway.clone().expect("node.json names the gateway");

    // A file by path: bytes, type from the extension, caching and IPFS headers.
    let r = get(&format!("{gw}/ipfs/{DIR_WITH_FILES}/hello.txt"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello world\n");
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        r.header("cache-control"),
        "public, max-age=29030400, immutable"
    );
    assert_eq!(r.header("etag"), format!("\"{HELLO}\""));
    assert_eq!(
        r.header("x-ipfs-path"),
        format!("/ipfs/{DIR_WITH_FILES}/hello.txt")
    );
    assert_eq!(
        r.header("x-ipfs-roots"),
        format!("{DIR_WITH_FILES},{HELLO}")
    );
    assert_eq!(r.header("accept-ranges"), "bytes");

    // HEAD: the same headers, no body.
    let h = request(
        "HEAD",
        &format!("{gw}/ipfs/{DIR_WITH_FILES}/hello.txt"),
        &[],
    );
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(h.header("content-length"), "12");
    assert_eq!(h.header("etag"), format!("\"{HELLO}\""));

    // A bare CID (raw leaf, no name): type by sniffing.
    let r = get(&format!("{gw}/ipfs/{HELLO}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");

    // If-None-Match with the ETag → 304.
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{DIR_WITH_FILES}/hello.txt"),
        &[("If-None-Match", &format!("\"{HELLO}\""))],
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), format!("\"{HELLO}\""));

    // Ranges over a multi-block file: bytes equal the slice of the whole.
    let whole = get(&format!("{gw}/ipfs/{MULTIBLOCK}")).body;
    assert!(whole.len() > 1000, "{}", whole.len());
    let size = whole.len();
    for (range, from, to) in [
        ("bytes=0-9", 0, 9),
        ("bytes=500-", 500, size - 1),
        ("bytes=-7", size - 7, size - 1),
        ("bytes=250-260", 250, 260),
    ] {
        let r = request(
            "GET",
            &format!("{gw}/ipfs/{MULTIBLOCK}"),
            &[("Range", range)],
        );
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, &whole[from..=to], "{range}");
        assert_eq!(
            r.header("content-range"),
            format!("bytes {from}-{to}/{size}"),
            "{range}"
        );
    }
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{MULTIBLOCK}"),
        &[("Range", "bytes=5000-")],
    );
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), format!("bytes */{size}"));
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{MULTIBLOCK}"),
        &[("Range", "bytes=x-y")],
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Range"), "{}", r.text());

    // Directory without a trailing slash → 301; with one, a listing.
    let r = get(&format!("{gw}/ipfs/{DIR_WITH_FILES}?x=1"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), format!("/ipfs/{DIR_WITH_FILES}/?x=1"));
    let r = get(&format!("{gw}/ipfs/{DIR_WITH_FILES}/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    let etag = r.header("etag").to_owned();
    assert_ne!(
        etag,
        format!("\"{DIR_WITH_FILES}\""),
        "listing ETag differs from the CID's"
    );
    let html = r.text();
    for needle in [
        "href=\"hello.txt\"",
        "href=\"multiblock.txt\"",
        HELLO,
        "12 B",
        "ascii-copy.txt",
    ] {
        assert!(
            html.contains(needle),
            "{needle} missing from listing:\n{html}"
        );
    }
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{DIR_WITH_FILES}/"),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(r.status, 304);

    // Non-ASCII and percent-encoded names are escaped in listings and resolve when encoded.
    let r = get(&format!("{gw}/ipfs/{LISTING}/"));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("href=\"%C4%85\""), "{}", r.text());
    let r = get(&format!("{gw}/ipfs/{LISTING}/%C4%85/%C4%99/"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("href=\"../\""));
    let r = get(&format!("{gw}/ipfs/{PERCENT}/"));
    assert!(
        r.text()
            .contains("Portugal%252C%2BEspa%C3%B1a%3DPeninsula%20Ib%C3%A9rica.txt"),
        "{}",
        r.text()
    );
    let r = get(&format!(
        "{gw}/ipfs/{PERCENT}/Portugal%252C+Espa%C3%B1a=Peninsula%20Ib%C3%A9rica.txt"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("hello"), "{}", r.text());

    // A HAMT-sharded directory: lookup and listing.
    let r = get(&format!("{gw}/ipfs/{HAMT}/470.txt"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ipfs-roots"), format!("{HAMT},{MULTIBLOCK}"));
    let r = get(&format!("{gw}/ipfs/{HAMT}/"));
    assert_eq!(r.text().matches("<tr><td><a href=").count(), 1000);

    // A CBOR block: served as it is, with its codec's type.
    let r = get(&format!("{gw}/ipfs/{CBOR}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/cbor");
    let cbor_cid = distribute::content::cid::parse_cid(CBOR).unwrap();
    distribute::content::cid::verify(&cbor_cid, &r.body).unwrap();

    // ?filename= and &download=true.
    let r = get(&format!("{gw}/ipfs/{HELLO}?filename=greeting.txt"));
    assert_eq!(
        r.header("content-disposition"),
        "inline; filename=\"greeting.txt\""
    );
    let r = get(&format!(
        "{gw}/ipfs/{HELLO}?filename=greeting.txt&download=true"
    ));
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=\"greeting.txt\""
    );

    // The identity CID probe.
    let r = get(&format!("{gw}/ipfs/bafkqaaa"));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());

    // The ipfs:// protocol handler.
    let r = get(&format!(
        "{gw}/ipfs/?uri=ipfs%3A%2F%2F{DIR_WITH_FILES}%2Fhello.txt"
    ));
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        format!("/ipfs/{DIR_WITH_FILES}/hello.txt")
    );

    // A sha2-512 block (the subdomain fixture) imports, verifies and serves by path and raw.
    let r = get(&format!("{gw}/ipfs/{SUBDOMAIN_ROOT}/hello-CIDv1_TOO_LONG"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"hello\n");
    assert_eq!(r.header("etag"), format!("\"{HELLO_SHA512}\""));
    let r = get(&format!("{gw}/ipfs/{HELLO_SHA512}?format=raw"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"hello\n");
}

#[test]
fn bad_requests_get_clear_errors_and_the_node_keeps_serving() {
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_flag = format!("--metrics=127.0.0.1:{metrics_port}");
    let d = gateway_node(&[&metrics_flag]);
    let gw = d.gateway.clone().unwrap();
    let check = |url: &str, status: u16, needle: &str| {
        let r = get(url);
        assert_eq!(r.status, status, "{url}: {}", r.text());
        assert!(
            r.text().contains(needle),
            "{url}: {:?} lacks {needle:?}",
            r.text()
        );
    };
    check(&format!("{gw}/ipfs/not-a-cid"), 400, "invalid CID");
    check(
        &format!("{gw}/ipfs/{DIR_WITH_FILES}/missing.txt"),
        404,
        "missing.txt",
    );
    check(
        &format!("{gw}/ipfs/{DIR_WITH_FILES}/hello.txt/deeper"),
        404,
        "not a directory",
    );
    check(
        &format!("{gw}/ipfs/{DIR_WITH_FILES}/%2e%2e/x"),
        400,
        "cannot go up",
    );
    check(&format!("{gw}/ipfs/{HELLO}?format=zip"), 400, "format");
    check(&format!("{gw}/"), 404, "/ipfs/<cid>");
    for method in ["POST", "PUT", "DELETE"] {
        let r = request(method, &format!("{gw}/ipfs/{HELLO}"), &[]);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), "GET, HEAD, OPTIONS");
    }
    // Paths a client library would normalise, written by hand.
    for path in [
        format!("/ipfs/{DIR_WITH_FILES}/../../etc/passwd"),
        format!("/ipfs/{DIR_WITH_FILES}/./hello.txt"),
        format!("/ipfs/{DIR_WITH_FILES}/%2E%2E/%2e%2e/etc/passwd"),
    ] {
        let (status, text) = raw(&gw, &format!("GET {path} HTTP/1.1\r\nHost: localhost"));
        assert_eq!(status, 400, "{path}: {text}");
    }
    let (status, _) = raw(&gw, "GET /ipfs/%ff%fe HTTP/1.1\r\nHost: localhost");
    assert_eq!(status, 400);
    let (status, _) = raw(&gw, "BREW /ipfs/x HTTP/1.1\r\nHost: localhost");
    assert_eq!(status, 405);
    // Still serving.
    let r = get(&format!("{gw}/ipfs/{DIR_WITH_FILES}/hello.txt"));
    assert_eq!(r.body, b"hello world\n");

    // Metrics count responses by status.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.node.repo().join("node.json")).unwrap())
            .unwrap();
    assert!(
        doc["gateway"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let text = get(&format!("http://127.0.0.1:{metrics_port}/metrics")).text();
    assert!(
        text.contains("gateway_requests_total{status=\"400\"}"),
        "{text}"
    );
    assert!(
        text.contains("gateway_requests_total{status=\"405\"}"),
        "{text}"
    );
    assert!(
        text.contains("gateway_request_duration_seconds_count"),
        "{text}"
    );
}

/// Parse a CAR body with the node's verifying reader: every block hashes to its CID.
fn car_blocks(body: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut reader = CarReader::new(body).expect("CAR header");
    let roots = reader.roots().iter().map(|c| c.to_string()).collect();
    let mut cids = Vec::new();
    while let Some((cid, data)) = reader.next_block().expect("verified block") {
        distribute::content::cid::verify(&cid, &data).unwrap();
        cids.push(cid.to_string());
    }
    (roots, cids)
}

#[test]
fn trustless_gateway_raw_blocks_and_cars() {
    let d = gateway_node(&[]);
    let gw = d.gateway.clone().unwrap();

    // Raw block by ?format= and by Accept.
    for (url, accept) in [
        (
            format!("{gw}/ipfs/{DIR_WITH_FILES}/hello.txt?format=raw"),
            None,
        ),
        (
            format!("{gw}/ipfs/{DIR_WITH_FILES}/hello.txt"),
            Some("application/vnd.ipld.raw"),
        ),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let r = request("GET", &url, &headers);
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(r.header("content-type"), "application/vnd.ipld.raw");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert_eq!(r.header("etag"), format!("\"{HELLO}.raw\""));
        assert_eq!(r.body, b"hello world\n");
    }
    let r = get(&format!("{gw}/ipfs/{DIR_WITH_FILES}?format=raw"));
    let cid = distribute::content::cid::parse_cid(DIR_WITH_FILES).unwrap();
    distribute::content::cid::verify(&cid, &r.body).unwrap();

    // CAR, whole DAG: roots header, DFS order, no duplicates, every block verified.
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{DIR_WITH_FILES}"),
        &[(
            "Accept",
            "application/vnd.ipld.car; version=1; order=dfs; dups=n",
        )],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    let etag = r.header("etag").to_owned();
    assert!(etag.contains(".car."), "{etag}");
    let (roots, cids) = car_blocks(&r.body);
    assert_eq!(roots, vec![DIR_WITH_FILES]);
    assert_eq!(cids[0], DIR_WITH_FILES);
    let unique: std::collections::HashSet<_> = cids.iter().collect();
    assert_eq!(unique.len(), cids.len(), "no duplicates: {cids:?}");
    // ascii.txt and ascii-copy.txt share a block, sent once: the fixture's 9 blocks.
    assert_eq!(cids.len(), 9, "{cids:?}");
    // Same as `dag export`, which writes the same DFS order.
    let export = d
        .node
        .run(&["dag", "export", DIR_WITH_FILES])
        .ok()
        .raw_stdout;
    assert_eq!(car_blocks(&export).1, cids);

    // dag-scope=block along a path: the path's blocks and the terminal block only.
    let r = get(&format!(
        "{gw}/ipfs/{DIR_WITH_FILES}/multiblock.txt?format=car&dag-scope=block"
    ));
    let (roots, cids) = car_blocks(&r.body);
    assert_eq!(roots, vec![DIR_WITH_FILES]);
    assert_eq!(cids, vec![DIR_WITH_FILES, MULTIBLOCK]);
    // dag-scope=entity: the whole file; entity-bytes: only the blocks covering the range.
    let r = get(&format!(
        "{gw}/ipfs/{DIR_WITH_FILES}/multiblock.txt?format=car&dag-scope=entity"
    ));
    let (_, entity) = car_blocks(&r.body);
    assert!(entity.len() > 3, "{entity:?}");
    assert_eq!(&entity[..2], &[DIR_WITH_FILES, MULTIBLOCK]);
    let r = get(&format!(
        "{gw}/ipfs/{DIR_WITH_FILES}/multiblock.txt?format=car&dag-scope=entity&entity-bytes=0:0"
    ));
    let (_, first) = car_blocks(&r.body);
    assert_eq!(first.len(), 3, "path, file root, first leaf: {first:?}");
    assert_eq!(first[2], entity[2]);
    // Directory entity: its own block(s) only; a HAMT brings its shards.
    let r = get(&format!(
        "{gw}/ipfs/{MIXED}/subdir?format=car&dag-scope=entity"
    ));
    let (_, cids) = car_blocks(&r.body);
    assert_eq!(cids.len(), 2, "{cids:?}");
    let r = get(&format!("{gw}/ipfs/{HAMT}?format=car&dag-scope=entity"));
    let (_, shards) = car_blocks(&r.body);
    assert!(
        shards.len() > 1 && !shards.contains(&MULTIBLOCK.to_owned()),
        "{shards:?}"
    );
    // HEAD of a CAR: headers only. Unsupported CAR versions: 406.
    let h = request(
        "HEAD",
        &format!("{gw}/ipfs/{DIR_WITH_FILES}?format=car"),
        &[],
    );
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{DIR_WITH_FILES}"),
        &[("Accept", "application/vnd.ipld.car; version=2")],
    );
    assert_eq!(r.status, 406);
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{DIR_WITH_FILES}?format=car"),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(r.status, 304);
}

#[test]
fn subdomain_mode_redirects_and_serves_by_host() {
    let node = Node::new();
    node.write("site/index.html", b"<html>hi</html>");
    let site = node.mkdir("site");
    let v0 = node.add(&site, &["-r"]);
    assert!(v0.starts_with("Qm"), "{v0}");
    let d = Daemon::start(
        node,
        &["--gateway=127.0.0.1:0", "--subdomain-host=example.org"],
    );
    let gw = d.gateway.clone().unwrap();
    let port = gw.rsplit(':').next().unwrap();
    let v1 = distribute::gateway::subdomain::canonical_label(
        &distribute::content::cid::parse_cid(&v0).unwrap(),
    );
    // Path URL on the base host → the CID's subdomain (CIDv0 becomes CIDv1 base32).
    let (status, text) = raw(
        &gw,
        &format!("GET /ipfs/{v0}/index.html?a=b HTTP/1.1\r\nHost: example.org:{port}"),
    );
    assert_eq!(status, 301, "{text}");
    assert_eq!(
        header_of(&text, "location"),
        Some(format!("http://{v1}.ipfs.example.org:{port}/index.html?a=b").as_str())
    );
    // A CIDv0 label (not DNS-safe) → its canonical spelling; a lower-cased one is no CID.
    let (status, text) = raw(
        &gw,
        &format!("GET / HTTP/1.1\r\nHost: {v0}.ipfs.example.org"),
    );
    assert_eq!(status, 301, "{text}");
    assert_eq!(
        header_of(&text, "location"),
        Some(format!("http://{v1}.ipfs.example.org/").as_str())
    );
    let (status, text) = raw(
        &gw,
        &format!(
            "GET / HTTP/1.1\r\nHost: {}.ipfs.example.org",
            v0.to_lowercase()
        ),
    );
    assert_eq!(status, 400, "{text}");
    // Content by Host header: the directory's index.html at /.
    for path in ["/", "/index.html"] {
        let (status, text) = raw(
            &gw,
            &format!("GET {path} HTTP/1.1\r\nHost: {v1}.ipfs.example.org"),
        );
        assert_eq!(status, 200, "{path}: {text}");
        assert!(text.ends_with("<html>hi</html>"), "{text}");
        assert_eq!(
            header_of(&text, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            header_of(&text, "x-ipfs-roots").unwrap().starts_with(&v1),
            "{text}"
        );
    }
    // Other hosts keep path gateway behaviour.
    let r = get(&format!("{gw}/ipfs/{v0}/index.html"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<html>hi</html>");
}

/// A gateway daemon bootstrapped from `provider`, once connected to it: its 60 s retrieval
/// timeout is for finding and fetching, not for the first connection.
fn gateway_fetching_from(provider: &Daemon) -> Daemon {
    let bootstrap = format!("--bootstrap={}", provider.addr());
    let d = Daemon::start(
        Node::new(),
        &[
            "--gateway=127.0.0.1:0",
            &bootstrap,
            "--retrieval-timeout=60",
        ],
    );
    wait_for(
        "the gateway node to connect to the provider",
        CONNECT,
        || d.node.run(&["peers"]).stdout.contains(&provider.peer_id),
    );
    d
}

#[test]
fn content_from_another_daemon_over_bitswap_and_504_when_nobody_has_it() {
    let provider = Daemon::start(Node::new(), &[]);
    let data = gen_bytes(7, 3 << 20);
    let file = provider.node.write("big.bin", &data);
    let cid = provider.node.add(&file, &[]);
    let d = gateway_fetching_from(&provider);
    let gw = d.gateway.clone().unwrap();
    // 3 MiB: streamed, verified block by block on the way.
    let r = get(&format!("{gw}/ipfs/{cid}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "bytes differ");
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{cid}"),
        &[("Range", "bytes=1048570-1048589")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[1048570..=1048589]);
    drop(d);

    // A CID nobody has, with a short retrieval timeout: 504 and Retry-After.
    let lonely = Daemon::start(
        Node::new(),
        &["--gateway=127.0.0.1:0", "--retrieval-timeout=2"],
    );
    let gw = lonely.gateway.clone().unwrap();
    let missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    let r = get(&format!("{gw}/ipfs/{missing}"));
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.header("retry-after"), "2");
    // A partial DAG (one leaf missing, nobody has it): 504 too, not a short body.
    let partial = kit::shared_dir()
        .join("gateway-fixtures/trustless_gateway_car/file-3k-and-3-blocks-missing-block.car");
    let import = lonely
        .node
        .run(&["dag", "import", partial.to_str().unwrap()]);
    assert!(import.stderr.contains("incomplete"), "{import:?}");
    let r = get(&format!(
        "{gw}/ipfs/QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk"
    ));
    assert_eq!(r.status, 504, "{}", r.text());
    let r = get(&format!("{gw}/ipfs/bafkqaaa"));
    assert_eq!(r.status, 200, "still serving after a timeout");
}

/// The hot-block cache serves a popular file from memory, but only while the store has it:
/// once unpinned and collected, the same URL is a 504 like any content nobody has.
#[test]
fn cached_content_stops_being_served_once_collected() {
    let d = Daemon::start(
        Node::new(),
        &["--gateway=127.0.0.1:0", "--retrieval-timeout=2"],
    );
    let gw = d.gateway.clone().unwrap();
    let data = gen_bytes(11, 600 << 10);
    let file = d.node.write("hot.bin", &data);
    let cid = d.node.add(&file, &[]);
    for _ in 0..3 {
        let r = get(&format!("{gw}/ipfs/{cid}"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.body == data, "bytes differ");
    }
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{cid}"),
        &[("Range", "bytes=300000-300009")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[300000..300010]);
    d.node.run(&["pin", "rm", &cid]).ok();
    d.node.run(&["repo", "gc"]).ok();
    let r = get(&format!("{gw}/ipfs/{cid}"));
    assert_eq!(
        r.status, 504,
        "collected content is not served from the cache"
    );
}

/// Blocks in a daemon's store (`repo/stat`).
fn stored_blocks(d: &Daemon) -> u64 {
    let (status, body) = d.post("repo/stat", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let stat: serde_json::Value = serde_json::from_slice(&body).unwrap();
    stat["NumObjects"].as_u64().unwrap()
}

/// Whether a daemon holds a block, without fetching it (`block/stat?offline=true`).
fn holds(d: &Daemon, cid: &str) -> bool {
    let (status, body) = d.post(&format!("block/stat?arg={cid}&offline=true"), &[], b"");
    assert!(
        status == 200 || status == 404,
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    status == 200
}

#[test]
fn remote_ranges_listings_and_paths_fetch_only_the_blocks_they_need() {
    let provider = Daemon::start(Node::new(), &[]);
    // 16 MiB in 64 KiB chunks: 256 leaves under two inner nodes and a root.
    let data = gen_bytes(11, 16 << 20);
    let file = provider.node.write("big.bin", &data);
    let cid = provider.node.add(&file, &["--chunker=size-65536"]);
    const FILE_BLOCKS: u64 = 256 + 2 + 1;
    // A directory with a big file (its own chunks) and a small one.
    let inner = gen_bytes(12, 4 << 20);
    provider.node.write("dir/inner.bin", &inner);
    provider.node.write("dir/a.txt", b"small file\n");
    let dir_path = provider.node.mkdir("dir");
    let dir = provider
        .node
        .add(&dir_path, &["-r", "--chunker=size-65536"]);
    let inner_file = provider.node.write("inner.bin", &inner);
    let inner_cid = provider.node.add(&inner_file, &["--chunker=size-65536"]);

    let d = gateway_fetching_from(&provider);
    let gw = d.gateway.clone().unwrap();
    let empty = stored_blocks(&d);

    // (a) A few bytes in the middle: 206 with those bytes, and only the blocks on the way
    // (root, an inner node, a leaf) fetched, not the file.
    let middle = 9_000_000;
    let r = request(
        "GET",
        &format!("{gw}/ipfs/{cid}"),
        &[("Range", &format!("bytes={middle}-{}", middle + 9))],
    );
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(
        r.header("content-range"),
        format!("bytes {middle}-{}/{}", middle + 9, data.len())
    );
    assert_eq!(r.body, &data[middle..middle + 10]);
    let after_range = stored_blocks(&d);
    let fetched = after_range - empty;
    assert!(
        fetched * 10 < FILE_BLOCKS,
        "a 10-byte range fetched {fetched} of the file's {FILE_BLOCKS} blocks"
    );

    // (b) A listing of the remote directory: the directory's block, not its files.
    let r = get(&format!("{gw}/ipfs/{dir}/"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("inner.bin"), "{}", r.text());
    assert!(holds(&d, &dir));
    assert!(!holds(&d, &inner_cid), "the listing fetched inner.bin");
    let after_listing = stored_blocks(&d);
    assert!(
        after_listing - after_range <= 2,
        "the listing fetched {} blocks",
        after_listing - after_range
    );
    // A path through the directory: the small file, still not the big one.
    let r = get(&format!("{gw}/ipfs/{dir}/a.txt"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"small file\n");
    assert!(!holds(&d, &inner_cid), "the path lookup fetched inner.bin");
    // The RPC API's ls reads each entry's own block (for its type and size), not below it.
    let before_ls = stored_blocks(&d);
    let (status, body) = d.post(&format!("ls?arg={dir}"), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let ls: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let links = ls["Objects"][0]["Links"].as_array().unwrap();
    let inner_link = links.iter().find(|l| l["Name"] == "inner.bin").unwrap();
    assert_eq!(inner_link["Size"].as_u64(), Some(inner.len() as u64));
    assert!(holds(&d, &inner_cid));
    assert_eq!(
        stored_blocks(&d) - before_ls,
        1,
        "ls fetched more than inner.bin's root"
    );

    // (c) The whole file: every byte, and now every block is local.
    let r = get(&format!("{gw}/ipfs/{cid}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "bytes differ");
    assert!(stored_blocks(&d) - before_ls >= FILE_BLOCKS - fetched);
    // The directory's whole DAG as a CAR: what was not fetched yet (inner.bin) comes now.
    let r = get(&format!("{gw}/ipfs/{dir}?format=car"));
    assert_eq!(r.status, 200, "{}", r.text());
    let (roots, blocks) = car_blocks(&r.body);
    assert_eq!(roots, vec![dir.clone()]);
    // The directory, a.txt, and inner.bin's 64 leaves and root.
    assert_eq!(blocks.len(), 1 + 1 + 64 + 1, "{blocks:?}");
    assert!(blocks.contains(&inner_cid));
    assert!(holds(&d, &inner_cid));
    let r = get(&format!("{gw}/ipfs/{dir}/inner.bin"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == inner, "bytes differ");
}

#[test]
fn nft_add_round_trips_through_the_gateway() {
    let node = Node::new();
    let image = gen_bytes(3, 300_000);
    let media = node.write("cat picture.png", &image);
    // Offline first.
    let out = node
        .run(&[
            "nft",
            "add",
            "--name",
            "Cat #1",
            "--description",
            "A cat",
            "--attribute",
            "eyes=green",
            "--attribute",
            "level=7",
            &media,
        ])
        .ok()
        .stdout;
    let uri = out.trim().to_owned();
    assert!(
        uri.starts_with("ipfs://") && uri.ends_with("/metadata.json"),
        "{uri}"
    );
    node.run(&[
        "nft",
        "add",
        "--name",
        "x",
        "--attribute",
        "novalue",
        &media,
    ])
    .fails();
    node.run(&["nft", "add", "--name", "x", "missing.png"])
        .fails();
    let d = Daemon::start(node, &["--gateway=127.0.0.1:0"]);
    let gw = d.gateway.clone().unwrap();
    let check = |uri: &str, name: &str| {
        let path = uri.trim_start_matches("ipfs://");
        let r = get(&format!("{gw}/ipfs/{path}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), "application/json");
        let meta: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(meta["name"], name);
        let image_uri = meta["image"].as_str().unwrap();
        assert!(image_uri.starts_with("ipfs://"), "{image_uri}");
        assert!(image_uri.ends_with("/cat%20picture.png"), "{image_uri}");
        let img = get(&format!(
            "{gw}/ipfs/{}",
            image_uri.trim_start_matches("ipfs://")
        ));
        assert_eq!(img.status, 200);
        assert_eq!(img.header("content-type"), "image/png");
        assert!(img.body == image, "image bytes differ");
        meta
    };
    let meta = check(&uri, "Cat #1");
    assert_eq!(meta["description"], "A cat");
    assert_eq!(
        meta["attributes"],
        serde_json::json!([{"trait_type": "eyes", "value": "green"},
                           {"trait_type": "level", "value": 7}])
    );
    // With the daemon running, the command goes through it.
    let out = d
        .node
        .run(&["nft", "add", "--name", "Cat #2", &media])
        .ok()
        .stdout;
    let uri2 = out.trim().to_owned();
    assert_ne!(uri2, uri);
    check(&uri2, "Cat #2");
    let root = uri2
        .trim_start_matches("ipfs://")
        .split('/')
        .next()
        .unwrap();
    let pins = d.node.run(&["pin", "ls", "-q"]).ok().stdout;
    assert!(pins.contains(root), "{pins}");
}

#[test]
fn gateway_command_runs_a_node_with_its_gateway() {
    let node = Node::new();
    let file = node.write("a.txt", b"through the gateway command\n");
    let cid = node.add(&file, &[]);
    let d = Daemon::start_as(node, "gateway", &["--port=0"]);
    let gw = d.gateway.clone().unwrap();
    let r = get(&format!("{gw}/ipfs/{cid}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"through the gateway command\n");
}
