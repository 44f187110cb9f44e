//! The `distribute` binary as a user drives it: known CIDs through `add`, round trips through
//! `cat`/`get`/`ls`, pins and GC, CAR export/import, blocks, CID formatting — on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use kit::{Node, gen_bytes, load_vectors, shared_dir};

const BACKENDS: [&str; 2] = ["sled", "flatfs"];

#[test]
fn hello_world_and_empty_dir_have_kubo_cids() {
    let node = Node::new();
    let hello = node.write("hello.txt", b"hello world\n");
    let out = node.run(&["add", &hello]).ok();
    assert_eq!(
        out.stdout,
        "added QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o hello.txt\n"
    );
    let empty = node.mkdir("empty");
    assert_eq!(
        node.add(&empty, &["-r"]),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
    assert!(
        node.repo().join("config.toml").exists(),
        "repo created on first use"
    );
}

#[test]
fn shared_tree_vectors_through_add_r() {
    let node = Node::new();
    node.write("dir/a", &gen_bytes(1, 10));
    node.write("dir/b/c", &gen_bytes(2, 300_000));
    node.write("dir/b/d", &gen_bytes(3, 0));
    node.mkdir("dir/e");
    node.write("dir/.hidden", b"skipped unless --hidden");
    let dir = node.dir.path().join("in/dir");
    let dir = dir.to_str().unwrap();
    for v in load_vectors()
        .iter()
        .filter(|v| v.name.as_deref() == Some("small"))
    {
        let flags: &[&str] = if v.profile == "v1" {
            &["-r", "--cid-version", "1"]
        } else {
            &["-r"]
        };
        assert_eq!(node.add(dir, flags), v.cid, "{v:?}");
    }
    let with_hidden = node.add(dir, &["-r", "--hidden"]);
    assert_ne!(
        with_hidden,
        "QmQK5E3ZLNBS9cac763hdZDvdtmEJc5ww11qVot6GNsF8p"
    );
    let out = node.run(&["add", "-r", dir]).ok().stdout;
    let names: Vec<&str> = out.lines().map(|l| l.split(' ').nth(2).unwrap()).collect();
    assert_eq!(
        names,
        ["dir/a", "dir/b/c", "dir/b/d", "dir/b", "dir/e", "dir"],
        "post-order, root last"
    );
}

#[test]
fn file_vectors_through_add() {
    let node = Node::new();
    for v in load_vectors()
        .iter()
        .filter(|v| v.kind == "file" && v.size.unwrap() <= 1_048_576)
    {
        let path = node.write(
            &format!("f-{}-{}", v.seed.unwrap(), v.size.unwrap()),
            &gen_bytes(v.seed.unwrap(), v.size.unwrap()),
        );
        let flags: &[&str] = if v.profile == "v1" {
            &["--cid-version=1"]
        } else {
            &[]
        };
        assert_eq!(node.add(&path, flags), v.cid, "{v:?}");
    }
}

#[test]
fn round_trip_on_both_backends() {
    for backend in BACKENDS {
        let node = Node::with_backend(backend);
        let data = gen_bytes(42, 3_000_000);
        let path = node.write("big.bin", &data);
        for flags in [
            &[][..],
            &["--cid-version", "1"],
            &["--trickle"],
            &["--chunker", "buzhash"],
            &["--chunker=size-1000", "--raw-leaves"],
            &["--profile", "unixfs-v1-2025"],
        ] {
            let cid = node.add(&path, flags);
            assert_eq!(node.cat(&cid), data, "{backend} {flags:?}");
            let range = node
                .run(&["cat", &cid, "--offset", "262140", "--length", "10"])
                .ok()
                .raw_stdout;
            assert_eq!(range, &data[262_140..262_150], "{backend} {flags:?}");
            for form in [format!("ipfs://{cid}"), format!("/ipfs/{cid}")] {
                assert_eq!(node.cat(&form).len(), data.len());
            }
        }
        if backend == "flatfs" {
            let shards = std::fs::read_to_string(node.repo().join("blocks/SHARDING")).unwrap();
            assert_eq!(shards.trim(), "/repo/flatfs/shard/v1/next-to-last/2");
        }
    }
}

#[test]
fn get_writes_trees_and_ls_lists_them() {
    let node = Node::new();
    node.write("site/index.html", b"<h1>hi</h1>");
    node.write("site/img/a.png", &gen_bytes(5, 500_000));
    node.mkdir("site/empty");
    std::os::unix::fs::symlink("index.html", node.dir.path().join("in/site/link")).unwrap();
    let site = node.dir.path().join("in/site");
    let root = node.add(site.to_str().unwrap(), &["-r"]);
    let ls = node.run(&["ls", &root]).ok().stdout;
    let names: Vec<&str> = ls.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(names, ["empty/", "img/", "index.html", "link"]);
    let out = node.dir.path().join("out");
    node.run(&["get", &root, out.to_str().unwrap()]).ok();
    assert_eq!(
        std::fs::read(out.join("img/a.png")).unwrap(),
        gen_bytes(5, 500_000)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("index.html")).unwrap(),
        "<h1>hi</h1>"
    );
    assert!(out.join("empty").is_dir());
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap().to_str(),
        Some("index.html")
    );
    let sub = node
        .run(&["cat", &format!("{root}/img/a.png"), "--length", "4"])
        .ok()
        .raw_stdout;
    assert_eq!(sub, gen_bytes(5, 4));
    node.run(&["get", &root, out.to_str().unwrap()]).fails();
}

#[test]
fn sharded_directory_round_trips() {
    let node = Node::new();
    for i in 0..10_000u64 {
        node.write(&format!("nft/{i}.json"), &gen_bytes(i, 64));
    }
    let dir = node.dir.path().join("in/nft");
    let root = node.add(dir.to_str().unwrap(), &["-r"]);
    assert_eq!(root, "Qmcc6yb4dG8n2RynA8dUUE7cqsdf1A5WarBTqtLXAcTpsJ");
    assert_eq!(
        node.cat(&format!("ipfs://{root}/1234.json")),
        gen_bytes(1234, 64)
    );
    assert_eq!(node.run(&["ls", &root]).ok().stdout.lines().count(), 10_000);
}

#[test]
fn pins_gc_and_block_commands() {
    for backend in BACKENDS {
        let node = Node::with_backend(backend);
        let kept = node.add(&node.write("kept", &gen_bytes(1, 600_000)), &[]);
        let loose = node.add(
            &node.write("loose", &gen_bytes(2, 600_000)),
            &["--pin=false"],
        );
        let pins = node.run(&["pin", "ls", "--type", "recursive"]).ok().stdout;
        assert_eq!(pins, format!("{kept} recursive\n"));
        let all = node.run(&["pin", "ls"]).ok().stdout;
        assert_eq!(
            all.lines().filter(|l| l.ends_with(" indirect")).count(),
            3,
            "{all}"
        );
        let removed = node.run(&["repo", "gc"]).ok().stdout;
        assert_eq!(
            removed.lines().count(),
            4,
            "root + 3 leaves of the unpinned file: {removed}"
        );
        node.run(&["cat", &loose]).fails();
        assert_eq!(node.cat(&kept), gen_bytes(1, 600_000));
        node.run(&["pin", "rm", &kept]).ok();
        node.run(&["pin", "rm", &kept]).fails();
        node.run(&["repo", "gc"]).ok();
        let stat = node.run(&["repo", "stat"]).ok().stdout;
        assert!(stat.starts_with("NumObjects: 0\n"), "{stat}");
        node.run(&["pin", "add", &kept]).fails();

        let put = node
            .run(&["block", "put", &node.write("blk", b"raw block")])
            .ok()
            .stdout;
        let cid = put.trim();
        assert_eq!(
            node.run(&["block", "get", cid]).ok().raw_stdout,
            b"raw block"
        );
        assert_eq!(
            node.run(&["block", "stat", cid]).ok().stdout,
            format!("Key: {cid}\nSize: 9\n")
        );
        node.run(&["pin", cid]).ok();
        node.run(&["repo", "gc"]).ok();
        assert_eq!(
            node.run(&["block", "get", cid]).ok().raw_stdout,
            b"raw block"
        );
        node.run(&["repo", "verify"]).ok();
    }
}

#[test]
fn dag_export_import_between_repos() {
    let a = Node::with_backend("sled");
    let b = Node::with_backend("flatfs");
    a.write("t/x", &gen_bytes(9, 700_000));
    a.write("t/y/z", b"zzz");
    let root = a.add(
        a.dir.path().join("in/t").to_str().unwrap(),
        &["-r", "--cid-version", "1"],
    );
    let car = a.dir.path().join("t.car");
    a.run(&["dag", "export", &root, "-o", car.to_str().unwrap()])
        .ok();
    let stdout_car = a
        .run(&["dag", "export", &format!("ipfs://{root}")])
        .ok()
        .raw_stdout;
    assert_eq!(std::fs::read(&car).unwrap(), stdout_car);
    let out = b.run(&["dag", "import", car.to_str().unwrap()]).ok().stdout;
    assert_eq!(out, format!("Pinned root\t{root}\tsuccess\n"));
    assert_eq!(b.cat(&format!("{root}/x")), gen_bytes(9, 700_000));
    assert_eq!(
        b.run(&["pin", "ls", "-t", "recursive", "-q"])
            .ok()
            .stdout
            .trim(),
        root
    );
}

#[test]
fn imports_gateway_conformance_cars() {
    let node = Node::new();
    let fixtures = shared_dir().join("gateway-fixtures");
    let car = fixtures.join("trustless_gateway_car/single-layer-hamt-with-multi-block-files.car");
    let out = node
        .run(&["dag", "import", car.to_str().unwrap()])
        .ok()
        .stdout;
    assert!(
        out.contains("bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i\tsuccess"),
        "{out}"
    );
    let ls = node
        .run(&[
            "ls",
            "bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i",
        ])
        .ok()
        .stdout;
    assert!(ls.lines().count() > 10, "{ls}");
    let partial = fixtures.join("trustless_gateway_car/file-3k-and-3-blocks-missing-block.car");
    let run = node
        .run(&["dag", "import", partial.to_str().unwrap()])
        .fails();
    assert!(run.stdout.contains("FAILED"), "{run:?}");
    node.run(&["cat", "QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk"])
        .fails();
}

#[test]
fn cid_format_converts() {
    let node = Node::new();
    let out = node
        .run(&[
            "cid",
            "format",
            "-v",
            "1",
            "-b",
            "base32",
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
        ])
        .ok()
        .stdout;
    let v1 = out.trim();
    assert!(v1.starts_with("bafybei"));
    let back = node.run(&["cid", "format", "-v", "0", v1]).ok().stdout;
    assert_eq!(
        back.trim(),
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
}

/// A progress bar appears on a terminal for inputs over 1 MB, and never in pipes or scripts.
#[test]
fn progress_bar_only_on_a_terminal() {
    let node = Node::new();
    let big = node.write("big", &gen_bytes(8, 3_000_000));
    let piped = node.run(&["add", &big]).ok();
    assert!(
        !piped.stderr.contains("MiB/"),
        "no bar when stderr is a pipe: {piped:?}"
    );
    // util-linux `script` gives the command a pseudo-terminal.
    let command = format!(
        "{} --repo {} add {}",
        kit::bin(),
        node.repo().display(),
        big
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("MiB/"),
        "a progress bar on the terminal: {text}"
    );
    assert!(text.contains("added "), "{text}");
}
