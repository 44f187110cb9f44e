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

/// Every command the CLI has, run once on the repository offline and once more with a daemon
/// holding it (so through the HTTP API): the same stdout, the same error lines. The sequence
/// leaves the repository as it found it (what it adds unpinned, `repo gc` removes; what it
/// puts, it removes), so both runs start from the same state. Only `id`'s addresses (none
/// offline) and the output paths of `get` and `dag export` differ, by design.
#[test]
fn every_command_prints_the_same_offline_and_through_a_daemon() {
    let node = Node::new();
    let data = gen_bytes(5, 600_000);
    let file = node.write("f.bin", &data);
    let dir = node.mkdir("tree");
    std::fs::create_dir_all(format!("{dir}/sub")).unwrap();
    std::fs::write(format!("{dir}/sub/x.txt"), b"x\n").unwrap();
    std::fs::write(format!("{dir}/.hidden"), b"h\n").unwrap();
    std::fs::write(format!("{dir}/{}", "n".repeat(120)), b"long name\n").unwrap();
    std::os::unix::fs::symlink("sub/x.txt", format!("{dir}/link")).unwrap();
    let loose = node.write("loose.txt", b"added unpinned, collected by repo gc\n");
    let raw = node.write("raw.bin", b"a raw block of its own");
    let media = node.write("cat.png", b"\x89PNG not really");
    // The pinned state both runs start from.
    let file_cid = node.add(&file, &[]);
    let dir_cid = node.add(&dir, &["-r"]);

    let script = |node: &Node, tag: &str| -> Vec<(String, String)> {
        let mut outputs = Vec::new();
        let mut run = |args: &[&str]| {
            let out = node.run(args);
            let shown = if out.code == 0 {
                out.stdout
            } else {
                format!("{}[exit {}] {}", out.stdout, out.code, out.stderr.trim())
            };
            outputs.push((args.join(" "), shown.clone()));
            shown
        };
        let car = format!("{tag}.car");
        let got_file = format!("{tag}-file");
        let got_dir = format!("{tag}-dir");
        run(&["add", &file]);
        run(&["add", "-r", &dir]);
        run(&["add", "-r", "-H", "-q", "--pin=false", &dir]);
        run(&["add", "-Q", "--cid-version=1", &file]);
        run(&[
            "add",
            "--raw-leaves",
            "--chunker=size-100000",
            "--trickle",
            &file,
        ]);
        run(&["add", "--profile=unixfs-v1-2025", "--pin=false", &loose]);
        run(&["cat", &file_cid]);
        run(&[
            "cat",
            "-o",
            "1000",
            "-l",
            "20",
            &format!("/ipfs/{dir_cid}/sub/x.txt"),
        ]);
        run(&["ls", &dir_cid]);
        run(&["ls", &format!("ipfs://{dir_cid}/sub")]);
        run(&["ls", &file_cid]);
        run(&["get", &file_cid, "-o", &got_file]);
        run(&["get", &dir_cid, "-o", &got_dir]);
        run(&["pin", "ls"]);
        run(&["pin", "ls", "-t", "recursive", "-q"]);
        run(&["pin", "add", "--recursive=false", &file_cid]);
        run(&["pin", "ls", "-t", "direct"]);
        run(&["pin", "rm", &file_cid]);
        run(&["pin", &file_cid]);
        run(&["dag", "export", &dir_cid, "-o", &car]);
        run(&["dag", "import", &car]);
        run(&["dag", "import", "--pin-roots=false", &car]);
        let raw_cid = run(&["block", "put", &raw]).trim().to_owned();
        run(&["block", "put", "--cid-codec", "raw", &raw]);
        run(&["block", "get", &raw_cid]);
        run(&["block", "stat", &raw_cid]);
        run(&["block", "rm", &raw_cid]);
        run(&["block", "rm", &raw_cid]);
        run(&["block", "rm", &file_cid]);
        run(&["block", "stat", &raw_cid]);
        let nft = run(&[
            "nft",
            "add",
            "--name",
            "Cat",
            "--attribute",
            "level=7",
            &media,
        ])
        .trim()
        .to_owned();
        let nft_root = nft
            .trim_start_matches("ipfs://")
            .trim_end_matches("/metadata.json")
            .to_owned();
        run(&["cat", &format!("{nft_root}/metadata.json")]);
        run(&["pin", "rm", &nft_root]);
        run(&["repo", "gc"]);
        run(&["repo", "gc", "-q"]);
        run(&["repo", "stat"]);
        run(&["repo", "verify"]);
        run(&["cid", "format", "-v", "1", "-b", "base32", &file_cid]);
        // Errors read the same.
        run(&["cat", "not-a-cid"]);
        run(&["cat", &dir_cid]);
        run(&["ls", &format!("{dir_cid}/nope")]);
        run(&["get", &file_cid, "-o", &got_file]);
        run(&["block", "put", "--cid-codec", "dag-pb", &raw]);
        run(&["add", "/nonexistent/path"]);
        run(&["add", &dir]);
        // Written files are compared as bytes and trees.
        let tree = |path: &str| -> String {
            let root = node.dir.path().join(path);
            let mut lines = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(p) = stack.pop() {
                let meta = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(&root).unwrap().display().to_string();
                if meta.is_dir() {
                    lines.push(format!("{rel}/"));
                    for e in std::fs::read_dir(&p).unwrap() {
                        stack.push(e.unwrap().path());
                    }
                } else if meta.file_type().is_symlink() {
                    lines.push(format!(
                        "{rel} -> {}",
                        std::fs::read_link(&p).unwrap().display()
                    ));
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    lines.push(format!("{rel}: {} bytes, {:x}", bytes.len(), crc(&bytes)));
                }
            }
            lines.sort();
            lines.join("\n")
        };
        outputs.push(("written file".into(), tree(&got_file)));
        outputs.push(("written tree".into(), tree(&got_dir)));
        let car_bytes = std::fs::read(node.dir.path().join(&car)).unwrap();
        outputs.push(("exported CAR".into(), format!("{:x}", crc(&car_bytes))));
        outputs
    };

    let offline = script(&node, "offline");
    let id_offline: serde_json::Value =
        serde_json::from_str(&node.run(&["id"]).ok().stdout).unwrap();
    for cmd in [
        &["peers"][..],
        &["swarm", "connect", "/ip4/127.0.0.1/tcp/1"],
        &["dht", "inspect"],
        &["findprovs", &file_cid],
        &["cluster", "peers"],
        &["status", &file_cid],
    ] {
        let out = node.run(cmd).fails();
        assert!(
            out.stderr.contains("needs the running node"),
            "{cmd:?}: {}",
            out.stderr
        );
    }

    let d = kit::daemon::Daemon::start(node, &[]);
    let node = &d.node;
    let online = script(node, "online");
    assert_eq!(offline.len(), online.len());
    for ((cmd, want), (_, got)) in offline.iter().zip(&online) {
        let got = got.replace("online", "offline");
        assert_eq!(&got, want, "`{cmd}` printed differently through the daemon");
    }
    let id_online: serde_json::Value =
        serde_json::from_str(&node.run(&["id"]).ok().stdout).unwrap();
    assert_eq!(id_online["ID"], id_offline["ID"]);
    assert_eq!(id_online["PublicKey"], id_offline["PublicKey"]);
    assert!(!id_online["Addresses"].as_array().unwrap().is_empty());

    // The commands that need the node work through it.
    assert_eq!(node.run(&["peers"]).ok().stdout, "");
    let dht = node.run(&["dht", "inspect"]).ok().stdout;
    assert_eq!(dht, "routing table: 0 peers in 0 buckets\n");
    node.run(&["findprovs", "-n", "1", &file_cid]).ok();
    node.run(&["swarm", "connect", "/ip4/127.0.0.1/tcp/1"])
        .fails();
    for cmd in [&["cluster", "peers"][..], &["status", &file_cid]] {
        let out = node.run(cmd).fails();
        assert!(
            out.stderr.contains("not in a cluster"),
            "{cmd:?}: {}",
            out.stderr
        );
    }
    // A daemon on the repository refuses a second one and `init`.
    node.run(&["init"]).fails();
}

/// A small checksum to compare written bytes in one line.
fn crc(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
