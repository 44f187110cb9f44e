//! Tests of repo creation, opening, config and locking, including a lock held by a real
//! second process.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use super::*;
use crate::content::cid::{CODEC_RAW, block_cid};
use crate::store::pins::PinMode;

/// Env var telling [`hold_lock_until_stdin_closes`] which repo to lock.
const HOLD_LOCK_ENV: &str = "DISTRIBUTE_TEST_HOLD_LOCK";
/// Printed by the child once it holds the lock; libtest may have started the line.
const LOCKED_LINE: &str = "distribute-test: lock held";

fn locked_message(pid: u32) -> String {
    format!("repo is locked by PID {pid}; is a daemon running?")
}

#[test]
fn init_lays_out_each_backend() {
    let _reopening = crate::test_guard::reopening();
    let tmp = tempfile::tempdir().unwrap();
    for kind in [BlockstoreKind::Sled, BlockstoreKind::Flatfs] {
        let path = tmp.path().join(kind.to_string());
        let repo = Repo::init(&path, kind).unwrap();
        assert_eq!(repo.config().store.backend, kind);
        assert_eq!(repo.path(), path);
        let config = fs::read_to_string(path.join("config.toml")).unwrap();
        assert!(
            config.contains(&format!("backend = \"{kind}\"")),
            "{config}"
        );
        assert!(path.join("datastore").is_dir());
        assert_eq!(
            path.join("blocks/SHARDING").exists(),
            kind == BlockstoreKind::Flatfs
        );
        let pid = fs::read_to_string(path.join("repo.lock")).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
    }
}

#[test]
fn init_over_an_existing_repo_is_refused() {
    let _reopening = crate::test_guard::reopening();
    let tmp = tempfile::tempdir().unwrap();
    drop(Repo::init(tmp.path(), BlockstoreKind::Sled).unwrap());
    let err = Repo::init(tmp.path(), BlockstoreKind::Flatfs).unwrap_err();
    assert!(matches!(err, RepoError::AlreadyInitialised { .. }), "{err}");
    assert_eq!(
        Repo::open(tmp.path()).unwrap().config().store.backend,
        BlockstoreKind::Sled
    );
}

#[test]
fn open_without_a_repo_says_to_init_first() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Repo::open(&tmp.path().join("nothing")).unwrap_err();
    assert!(matches!(err, RepoError::NotInitialised { .. }), "{err}");
    assert!(err.to_string().contains("init"), "{err}");
    assert!(
        !tmp.path().join("nothing").exists(),
        "open created the folder"
    );
}

#[test]
fn reopening_keeps_backend_blocks_and_pins() {
    let _reopening = crate::test_guard::reopening();
    let tmp = tempfile::tempdir().unwrap();
    let cid = block_cid(CODEC_RAW, 1, b"kept");
    {
        let repo = Repo::init(tmp.path(), BlockstoreKind::Flatfs).unwrap();
        repo.blocks().put(&cid, b"kept").unwrap();
        repo.pins().add(&cid, PinMode::Direct).unwrap();
        repo.flush().unwrap();
    }
    let key = crate::store::flatfs::key_of(cid.hash());
    assert!(
        tmp.path()
            .join("blocks")
            .join(crate::store::flatfs::shard_of(&key))
            .join(key + ".data")
            .is_file()
    );

    let repo = Repo::open_or_init(tmp.path(), BlockstoreKind::Sled).unwrap();
    assert_eq!(repo.config().store.backend, BlockstoreKind::Flatfs);
    assert_eq!(
        repo.blocks().get(&cid).unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(repo.pins().get(&cid).unwrap(), Some(PinMode::Direct));
    assert!(repo.gc().unwrap().removed.is_empty());
}

#[test]
fn sled_repo_keeps_blocks_across_reopen() {
    let _reopening = crate::test_guard::reopening();
    let tmp = tempfile::tempdir().unwrap();
    let cid = block_cid(CODEC_RAW, 1, b"in sled");
    {
        let repo = Repo::open_or_init(tmp.path(), BlockstoreKind::Sled).unwrap();
        repo.blocks().put(&cid, b"in sled").unwrap();
    }
    let repo = Repo::open(tmp.path()).unwrap();
    assert_eq!(
        repo.blocks().get(&cid).unwrap().as_deref(),
        Some(&b"in sled"[..])
    );
    assert!(!tmp.path().join("blocks").exists());
}

#[test]
fn second_open_in_one_process_is_locked_and_names_our_pid() {
    let _reopening = crate::test_guard::reopening();
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::init(tmp.path(), BlockstoreKind::Sled).unwrap();
    for second in [
        Repo::open(tmp.path()),
        Repo::open_or_init(tmp.path(), BlockstoreKind::Sled),
    ] {
        let err = second.unwrap_err();
        assert_eq!(err.to_string(), locked_message(std::process::id()));
    }
    let err = Repo::init(tmp.path(), BlockstoreKind::Sled).unwrap_err();
    assert!(matches!(err, RepoError::Locked { .. }), "{err}");
    drop(repo);
    Repo::open(tmp.path()).unwrap();
}

/// Not a test on its own: run as a child process by
/// [`lock_held_by_another_process_names_its_pid_and_dies_with_it`].
#[test]
#[ignore = "helper: run in a child process by the lock tests"]
fn hold_lock_until_stdin_closes() {
    let Some(path) = std::env::var_os(HOLD_LOCK_ENV) else {
        return;
    };
    let _repo = Repo::open(Path::new(&path)).unwrap();
    println!("{LOCKED_LINE}");
    io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = io::stdin().read_to_end(&mut rest);
}

#[test]
fn lock_held_by_another_process_names_its_pid_and_dies_with_it() {
    let _spawning = crate::test_guard::spawning();
    let tmp = tempfile::tempdir().unwrap();
    drop(Repo::init(tmp.path(), BlockstoreKind::Sled).unwrap());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "repo::tests::hold_lock_until_stdin_closes"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(HOLD_LOCK_ENV, tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let locked = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.ends_with(LOCKED_LINE));
    assert!(locked, "the child exited without taking the lock");

    let err = Repo::open(tmp.path()).unwrap_err();
    assert_eq!(err.to_string(), locked_message(child.id()));

    // SIGKILL: no destructor runs, the kernel alone releases the lock.
    child.kill().unwrap();
    child.wait().unwrap();
    Repo::open(tmp.path()).unwrap();
}

#[test]
fn lock_held_by_flock_1_is_refused() {
    let _spawning = crate::test_guard::spawning();
    let tmp = tempfile::tempdir().unwrap();
    drop(Repo::init(tmp.path(), BlockstoreKind::Sled).unwrap());
    let lock = tmp.path().join("repo.lock");
    // util-linux flock(1), if present, holds the lock while `cat` waits for stdin.
    let Ok(mut child) = Command::new("flock")
        .arg(&lock)
        .args([
            "sh",
            "-c",
            "echo 4242 > \"$0\"; echo held; cat",
            lock.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        return;
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    let err = Repo::open(tmp.path()).unwrap_err();
    assert_eq!(err.to_string(), locked_message(4242));
    drop(child.stdin.take());
    child.wait().unwrap();
    Repo::open(tmp.path()).unwrap();
}

#[test]
fn backend_kind_parses_and_displays() {
    for (text, kind) in [
        ("sled", BlockstoreKind::Sled),
        ("flatfs", BlockstoreKind::Flatfs),
    ] {
        assert_eq!(text.parse::<BlockstoreKind>().unwrap(), kind);
        assert_eq!(kind.to_string(), text);
    }
    for bad in ["", "Sled", "rocksdb"] {
        let err = bad.parse::<BlockstoreKind>().unwrap_err();
        assert!(err.to_string().contains("\"sled\" or \"flatfs\""), "{err}");
    }
}

#[test]
fn config_fills_missing_fields_and_tolerates_unknown_ones() {
    let check = |text: &str, expected: Config| {
        assert_eq!(toml::from_str::<Config>(text).unwrap(), expected, "{text}")
    };
    let flatfs = Config {
        store: StoreConfig {
            backend: BlockstoreKind::Flatfs,
            ..StoreConfig::default()
        },
    };
    check("", Config::default());
    check("[store]\nbackend = \"flatfs\"\n", flatfs.clone());
    check(
        "[store]\nbackend = \"flatfs\"\nfuture = 1\n[net]\nport = 4001\n",
        flatfs,
    );
    assert_eq!(Config::default().store.sled_cache_mib, 32);
}

#[test]
fn damaged_config_is_reported_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Repo::init(tmp.path(), BlockstoreKind::Sled).unwrap());
    fs::write(
        tmp.path().join("config.toml"),
        "[store]\nbackend = \"floppy\"\n",
    )
    .unwrap();
    let err = Repo::open(tmp.path()).unwrap_err();
    assert!(matches!(err, RepoError::BadConfig { .. }), "{err}");
    assert!(err.to_string().contains("config.toml"), "{err}");
}

#[test]
fn repo_path_prefers_env_then_home() {
    let os = |s: &str| Some(std::ffi::OsString::from(s));
    assert_eq!(
        repo_path_from(os("/r"), os("/h")).unwrap(),
        PathBuf::from("/r")
    );
    assert_eq!(
        repo_path_from(os(""), os("/h")).unwrap(),
        PathBuf::from("/h/.distribute")
    );
    assert_eq!(
        repo_path_from(None, os("/h")).unwrap(),
        PathBuf::from("/h/.distribute")
    );
    assert!(matches!(repo_path_from(None, None), Err(RepoError::NoHome)));
}
