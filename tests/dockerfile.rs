//! Static checks of the `Dockerfile` and `.dockerignore` (no Docker engine runs here): both
//! targets (`node`, `operator`) exist and ship the workspace's release binaries, the final
//! stages run as a non-root numeric user and descend from the small runtime image rather than
//! the toolchain image, every base image is pinned, the builder caches cargo's registry and
//! target dir, and the node image has its `/data` volume and ports. Each check is a function
//! returning the problems it found, and each is also run on a bad Dockerfile to show it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// One instruction: keyword (upper case) and the rest of its logical line.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    /// The FROM argument after global ARG substitution.
    base: String,
    name: Option<String>,
    body: Vec<Instruction>,
}

#[derive(Debug)]
struct Dockerfile {
    stages: Vec<Stage>,
}

/// Parses the subset of the Dockerfile grammar the checks need: comments, line continuations,
/// global `ARG name=default` used in `FROM ${name}`, `FROM image [AS name]`.
fn parse(text: &str) -> Dockerfile {
    let mut logical: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let rest = rest.trim().to_string();
        match keyword.as_str() {
            "ARG" if stages.is_empty() => {
                let (name, default) = rest.split_once('=').unwrap_or((&rest, ""));
                args.insert(name.to_string(), default.to_string());
            }
            "FROM" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let image = words
                    .iter()
                    .find(|w| !w.starts_with("--"))
                    .expect("FROM without an image");
                let mut base = image.to_string();
                for (name, value) in &args {
                    base = base.replace(&format!("${{{name}}}"), value);
                    base = base.replace(&format!("${name}"), value);
                }
                let name = words
                    .iter()
                    .position(|w| w.eq_ignore_ascii_case("as"))
                    .map(|i| words[i + 1].to_string());
                stages.push(Stage {
                    base,
                    name,
                    body: Vec::new(),
                });
            }
            _ => stages
                .last_mut()
                .expect("instruction before the first FROM")
                .body
                .push(Instruction {
                    keyword,
                    args: rest,
                }),
        }
    }
    Dockerfile { stages }
}

impl Dockerfile {
    fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name.as_deref() == Some(name))
    }

    /// The stage and the stages it is built FROM, nearest first.
    fn chain<'a>(&'a self, stage: &'a Stage) -> Vec<&'a Stage> {
        let mut out = vec![stage];
        while let Some(parent) = self.stage(&out.last().unwrap().base) {
            out.push(parent);
        }
        out
    }

    /// The external image a stage finally rests on.
    fn root_image<'a>(&'a self, stage: &'a Stage) -> &'a str {
        &self.chain(stage).last().unwrap().base
    }

    /// Instructions in effect for a stage, from the root image down.
    fn effective(&self, stage: &Stage) -> Vec<Instruction> {
        self.chain(stage)
            .into_iter()
            .rev()
            .flat_map(|s| s.body.iter().cloned())
            .collect()
    }
}

/// `["a", "b"]` exec form to a vector of strings.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not exec form: {args}: {e}"))
}

const TARGETS: [(&str, &str); 2] = [
    ("node", "/usr/local/bin/distribute"),
    ("operator", "/usr/local/bin/distribute-operator"),
];

fn check_targets(df: &Dockerfile) -> Vec<String> {
    let mut problems = Vec::new();
    for (target, binary) in TARGETS {
        let Some(stage) = df.stage(target) else {
            problems.push(format!(
                "no stage named {target} (docker build --target {target})"
            ));
            continue;
        };
        let copies_binary = stage.body.iter().any(|i| {
            i.keyword == "COPY"
                && i.args.contains("--from=builder")
                && i.args.trim_end().ends_with(binary)
        });
        if !copies_binary {
            problems.push(format!("{target}: no COPY --from=builder of {binary}"));
        }
        match df
            .effective(stage)
            .iter()
            .rev()
            .find(|i| i.keyword == "ENTRYPOINT")
        {
            Some(entry) if exec_form(&entry.args).first().map(String::as_str) == Some(binary) => {}
            other => problems.push(format!(
                "{target}: ENTRYPOINT {other:?} does not run {binary}"
            )),
        }
    }
    if let Some(node) = df.stage("node") {
        let entry = node.body.iter().rev().find(|i| i.keyword == "ENTRYPOINT");
        if entry.map(|e| exec_form(&e.args)) != Some(vec![TARGETS[0].1.into(), "node".into()]) {
            problems.push(format!(
                "node: entry point is not `distribute node`: {entry:?}"
            ));
        }
    }
    problems
}

fn check_non_root(df: &Dockerfile) -> Vec<String> {
    let mut problems = Vec::new();
    for (target, _) in TARGETS {
        let Some(stage) = df.stage(target) else {
            continue;
        };
        let user = df
            .effective(stage)
            .into_iter()
            .rev()
            .find(|i| i.keyword == "USER")
            .map(|i| i.args);
        let uid = user
            .as_deref()
            .and_then(|u| u.split(':').next())
            .and_then(|u| u.parse::<u32>().ok());
        if uid != Some(10001) {
            problems.push(format!(
                "{target}: runs as {user:?}, want the numeric user 10001"
            ));
        }
    }
    problems
}

/// A base image is pinned when it carries a digest, or a tag naming a version (a digit in it)
/// that is not `latest`.
fn check_pinned(df: &Dockerfile) -> Vec<String> {
    let mut problems = Vec::new();
    for stage in &df.stages {
        if df.stage(&stage.base).is_some() {
            continue;
        }
        let image = &stage.base;
        if image.contains("@sha256:") {
            continue;
        }
        let last = image.rsplit('/').next().unwrap_or(image);
        match last.split_once(':') {
            Some((_, tag)) if tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()) => {}
            _ => problems.push(format!("base image {image} is not pinned to a version")),
        }
    }
    problems
}

const BUILD_TOOLS: [&str; 8] = [
    "gcc",
    "g++",
    "clang",
    "make",
    "build-essential",
    "pkg-config",
    "cargo",
    "rustc",
];

fn check_runtime_is_small(df: &Dockerfile) -> Vec<String> {
    let mut problems = Vec::new();
    let builder = df.stage("builder").map(|b| df.root_image(b).to_string());
    for (target, _) in TARGETS {
        let Some(stage) = df.stage(target) else {
            continue;
        };
        let root = df.root_image(stage);
        if Some(root) == builder.as_deref() || root.contains("rust") {
            problems.push(format!("{target}: rests on the toolchain image {root}"));
        }
        if df
            .chain(stage)
            .iter()
            .any(|s| s.name.as_deref() == Some("builder"))
        {
            problems.push(format!("{target}: is built FROM the builder stage"));
        }
        for i in df.effective(stage) {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            let tool = BUILD_TOOLS.iter().find(|t| words.contains(t));
            if let (true, Some(tool)) = (i.keyword == "RUN", tool) {
                problems.push(format!("{target}: RUN mentions the build tool {tool}"));
            }
            if i.keyword == "HEALTHCHECK" {
                problems.push(format!("{target}: HEALTHCHECK (Kubernetes probes do this)"));
            }
        }
    }
    problems
}

fn check_builder(df: &Dockerfile) -> Vec<String> {
    let Some(builder) = df.stage("builder") else {
        return vec!["no stage named builder".into()];
    };
    let Some(build) = builder
        .body
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
    else {
        return vec!["builder: no RUN cargo build".into()];
    };
    let mut problems = Vec::new();
    for needed in ["--release", "--locked"] {
        if !build.args.contains(needed) {
            problems.push(format!("builder: cargo build without {needed}"));
        }
    }
    for cache in ["/usr/local/cargo/registry", "/src/target"] {
        if !build
            .args
            .contains(&format!("--mount=type=cache,target={cache}"))
        {
            problems.push(format!("builder: no cache mount for {cache}"));
        }
    }
    problems
}

fn read_dockerfile() -> Dockerfile {
    parse(&std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap())
}

/// Deliberately wrong in every checked way: floating tags, root user, one stage from the
/// toolchain image, a compiler installed at run time, no cache mounts.
const BAD: &str = r#"
FROM rust:latest AS builder
RUN cargo build
FROM debian AS node
RUN apt-get install -y gcc
COPY --from=builder /src/target/release/distribute /usr/local/bin/distribute
HEALTHCHECK CMD true
ENTRYPOINT ["/usr/local/bin/distribute"]
FROM builder AS operator
USER root
ENTRYPOINT ["/bin/sh"]
"#;

#[test]
fn both_targets_ship_their_binary() {
    assert_eq!(check_targets(&read_dockerfile()), Vec::<String>::new());
    let bad = check_targets(&parse(BAD));
    assert!(
        bad.iter().any(|p| p.contains("node: entry point")),
        "{bad:?}"
    );
    assert!(
        bad.iter().any(|p| p.contains("operator: no COPY")),
        "{bad:?}"
    );
}

#[test]
fn final_stages_run_as_user_10001() {
    assert_eq!(check_non_root(&read_dockerfile()), Vec::<String>::new());
    let bad = check_non_root(&parse(BAD));
    assert_eq!(bad.len(), 2, "{bad:?}");
}

#[test]
fn base_images_are_pinned() {
    let df = read_dockerfile();
    assert_eq!(check_pinned(&df), Vec::<String>::new());
    assert!(df.stages.iter().any(|s| s.base.contains("rust:")));
    let bad = check_pinned(&parse(BAD));
    assert_eq!(bad.len(), 2, "{bad:?}");
}

#[test]
fn runtime_stages_hold_no_build_tools() {
    assert_eq!(
        check_runtime_is_small(&read_dockerfile()),
        Vec::<String>::new()
    );
    let bad = check_runtime_is_small(&parse(BAD));
    for want in ["gcc", "HEALTHCHECK", "toolchain image", "FROM the builder"] {
        assert!(bad.iter().any(|p| p.contains(want)), "{want}: {bad:?}");
    }
}

#[test]
fn builder_compiles_locked_release_with_cache_mounts() {
    assert_eq!(check_builder(&read_dockerfile()), Vec::<String>::new());
    assert_eq!(check_builder(&parse(BAD)).len(), 4);
}

/// The packages the builder names with `-p` are workspace members whose binaries are the ones
/// the runtime stages copy.
#[test]
fn builder_builds_the_workspace_binaries() {
    let df = read_dockerfile();
    let build = &df.stage("builder").unwrap().body;
    let build = build
        .iter()
        .find(|i| i.args.contains("cargo build"))
        .unwrap();
    let command = build.args.split("cargo build").nth(1).unwrap();
    let command = command.split("&&").next().unwrap();
    let words: Vec<&str> = command.split_whitespace().collect();
    let packages: Vec<&str> = words
        .windows(2)
        .filter(|w| w[0] == "-p")
        .map(|w| w[1])
        .collect();

    let root = repo_root();
    let workspace: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members = workspace["workspace"]["members"].as_array().unwrap();
    let mut bins_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for member in members {
        let manifest: toml::Table =
            std::fs::read_to_string(root.join(member.as_str().unwrap()).join("Cargo.toml"))
                .unwrap()
                .parse()
                .unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_string();
        let bins = manifest
            .get("bin")
            .and_then(|b| b.as_array())
            .map(|bins| {
                bins.iter()
                    .map(|b| b["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        bins_of.insert(name, bins);
    }
    for (_, binary) in TARGETS {
        let bin = binary.rsplit('/').next().unwrap();
        let owner = packages
            .iter()
            .find(|p| bins_of.get(**p).is_some_and(|b| b.iter().any(|b| b == bin)));
        assert!(
            owner.is_some(),
            "no package built with -p ({packages:?}) has the binary {bin}; workspace: {bins_of:?}"
        );
        assert!(
            build.args.contains(&format!("target/release/{bin}")),
            "the builder does not copy target/release/{bin} out of the cache"
        );
    }
}

#[test]
fn node_image_has_data_volume_and_ports() {
    let df = read_dockerfile();
    let node = df.effective(df.stage("node").unwrap());
    let has = |keyword: &str, args: &str| {
        node.iter()
            .any(|i| i.keyword == keyword && i.args.contains(args))
    };
    assert!(has("VOLUME", "/data"), "no VOLUME /data");
    assert!(has("ENV", "DISTRIBUTE_REPO=/data"), "repo is not /data");
    let exposed: Vec<String> = node
        .iter()
        .filter(|i| i.keyword == "EXPOSE")
        .flat_map(|i| {
            i.args
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    for port in ["4001/tcp", "4001/udp", "5001/tcp", "8080/tcp", "9090/tcp"] {
        assert!(
            exposed.iter().any(|p| p == port),
            "{port} not in {exposed:?}"
        );
    }
    let data_owned = node.iter().any(|i| {
        i.keyword == "COPY" && i.args.contains("--chown=10001:10001") && i.args.ends_with(" /data")
    });
    assert!(data_owned, "/data is not created owned by 10001");
}

/// The build context leaves out build output and VCS data but keeps everything cargo needs
/// (workspace manifests, lock file, crates, and `tests/` which node's `[[test]]` paths name).
#[test]
fn dockerignore_keeps_the_workspace_and_drops_build_output() {
    let text = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for dropped in [".git", "target", "**/node_modules"] {
        assert!(patterns.contains(&dropped), "{dropped} is not ignored");
    }
    for kept in [
        "Cargo.toml",
        "Cargo.lock",
        "node",
        "operator",
        "tests",
        "*",
        "**",
    ] {
        assert!(!patterns.contains(&kept), "{kept} must stay in the context");
    }
}
