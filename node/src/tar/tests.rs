//! Tar tests: round trips through the writer and reader with long names and every entry kind,
//! PAX record lengths, size fields, corrupt and truncated streams, GNU long names and ustar
//! prefixes, and Python's `tarfile` reading what the writer wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;

use super::header::*;
use super::*;

/// Entries to write: path, kind, body.
fn sample() -> Vec<(String, EntryKind, Vec<u8>)> {
    let long_dir = "d".repeat(90);
    let long_file = format!("root/{long_dir}/{}", "f".repeat(60));
    vec![
        ("root".into(), EntryKind::Directory, vec![]),
        ("root/a.txt".into(), EntryKind::File, b"hello\n".to_vec()),
        ("root/empty".into(), EntryKind::File, vec![]),
        ("root/block".into(), EntryKind::File, vec![7u8; BLOCK]),
        ("root/odd".into(), EntryKind::File, vec![9u8; 1000]),
        (format!("root/{long_dir}"), EntryKind::Directory, vec![]),
        (long_file.clone(), EntryKind::File, b"deep".to_vec()),
        (
            "root/link".into(),
            EntryKind::Symlink("a.txt".into()),
            vec![],
        ),
        (
            "root/longlink".into(),
            EntryKind::Symlink(long_file),
            vec![],
        ),
        ("root/ünï".into(), EntryKind::File, "ü".repeat(80).into()),
    ]
}

fn write(entries: &[(String, EntryKind, Vec<u8>)]) -> Vec<u8> {
    let mut tar = TarWriter::new(Vec::new());
    for (path, kind, body) in entries {
        match kind {
            EntryKind::Directory => tar.directory(path).unwrap(),
            EntryKind::Symlink(t) => tar.symlink(path, t).unwrap(),
            EntryKind::File => tar
                .file::<TarError>(path, body.len() as u64, |w| Ok(w.write_all(body)?))
                .unwrap(),
        }
    }
    tar.finish().unwrap()
}

fn read(bytes: &[u8]) -> Vec<(String, EntryKind, Vec<u8>)> {
    let mut reader = TarReader::new(bytes);
    let mut out = Vec::new();
    while let Some(entry) = reader.next_entry().unwrap() {
        let mut body = Vec::new();
        reader.body().read_to_end(&mut body).unwrap();
        assert_eq!(body.len() as u64, entry.size);
        out.push((entry.path, entry.kind, body));
    }
    out
}

#[test]
fn round_trip_with_long_names_and_every_kind() {
    let entries = sample();
    let bytes = write(&entries);
    assert_eq!(bytes.len() % BLOCK, 0);
    assert_eq!(read(&bytes), entries);
}

#[test]
fn unread_bodies_are_skipped() {
    let bytes = write(&sample());
    let mut reader = TarReader::new(&bytes[..]);
    let mut paths = Vec::new();
    while let Some(e) = reader.next_entry().unwrap() {
        paths.push(e.path);
    }
    assert_eq!(paths.len(), sample().len());
}

#[test]
fn pax_record_lengths_count_themselves() {
    for value_len in [0, 1, 5, 6, 7, 90, 94, 95, 96, 990, 995, 9990] {
        let value = "v".repeat(value_len);
        let record = pax_record("path", &value);
        let text = String::from_utf8(record.clone()).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), record.len(), "{text:?}");
        assert_eq!(
            pax_records(&record, 0).unwrap(),
            vec![("path".into(), value)]
        );
    }
}

#[test]
fn size_fields_in_octal_and_base_256() {
    let mut h = encode_header("f", "", TYPE_FILE, 0o644, MAX_OCTAL_SIZE);
    assert_eq!(parse_size(&h[124..136]), Some(MAX_OCTAL_SIZE));
    h = encode_header("f", "", TYPE_FILE, 0o644, MAX_OCTAL_SIZE + 1);
    assert_eq!(parse_size(&h[124..136]), Some(MAX_OCTAL_SIZE + 1));
    check_sum(&h, 0).unwrap();
}

#[test]
fn a_wrong_body_length_is_refused() {
    let mut tar = TarWriter::new(Vec::new());
    let err = tar
        .file::<TarError>("f", 3, |w| Ok(w.write_all(b"four")?))
        .unwrap_err();
    assert!(
        matches!(err, TarError::SizeMismatch { written: 4, .. }),
        "{err}"
    );
}

#[test]
fn corrupt_and_truncated_streams_fail() {
    let mut bytes = write(&sample());
    let mut cut = TarReader::new(&bytes[..BLOCK + 3]);
    cut.next_entry().unwrap();
    assert!(matches!(cut.next_entry(), Err(TarError::Truncated)));
    bytes[0] ^= 1;
    let err = TarReader::new(&bytes[..]).next_entry().unwrap_err();
    assert!(matches!(err, TarError::Checksum { index: 0 }), "{err}");
}

#[test]
fn gnu_long_names_and_ustar_prefixes_are_read() {
    let long = format!("top/{}", "n".repeat(150));
    let mut bytes = Vec::new();
    let gnu = encode_header(
        "././@LongLink",
        "",
        TYPE_GNU_NAME,
        0o644,
        long.len() as u64 + 1,
    );
    bytes.extend_from_slice(&gnu);
    let mut data = long.clone().into_bytes();
    data.push(0);
    data.resize(data.len() + padding(data.len() as u64) as usize, 0);
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&encode_header("truncated", "", TYPE_DIR, 0o755, 0));
    let mut prefixed = encode_header("leaf", "", TYPE_FILE, 0o644, 0);
    prefixed[345..351].copy_from_slice(b"pre/fx");
    prefixed[148..156].fill(b' ');
    let sum: u32 = prefixed.iter().map(|&b| u32::from(b)).sum();
    octal(&mut prefixed[148..155], u64::from(sum));
    bytes.extend_from_slice(&prefixed);
    bytes.extend_from_slice(&[0u8; 2 * BLOCK]);
    let got = read(&bytes);
    assert_eq!(got[0], (long, EntryKind::Directory, vec![]));
    assert_eq!(got[1].0, "pre/fx/leaf");
}

/// Python's `tarfile` (an independent reader) sees the same entries.
#[test]
fn python_tarfile_reads_the_archive() {
    let entries = sample();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    std::fs::write(&path, write(&entries)).unwrap();
    let script = r#"
import json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:") as t:
    for m in t.getmembers():
        kind = "dir" if m.isdir() else "link:" + m.linkname if m.issym() else "file"
        body = t.extractfile(m).read().decode() if m.isfile() else ""
        out.append([m.name, kind, body])
print(json.dumps(out))
"#;
    let _spawning = crate::test_guard::spawning();
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Vec<(String, String, String)> = serde_json::from_slice(&output.stdout).unwrap();
    let want: Vec<(String, String, String)> = entries
        .into_iter()
        .map(|(path, kind, body)| {
            let kind = match kind {
                EntryKind::File => "file".to_owned(),
                EntryKind::Directory => "dir".to_owned(),
                EntryKind::Symlink(t) => format!("link:{t}"),
            };
            (path, kind, String::from_utf8(body).unwrap())
        })
        .collect();
    assert_eq!(seen, want);
}
