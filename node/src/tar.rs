//! The tar format `get` speaks: [`TarWriter`] writes the archive the RPC API's `get` answers
//! (POSIX ustar headers; a PAX extended header carries a path or link target longer than
//! the 100 bytes a ustar field holds, as Go's `archive/tar` in Kubo does), and [`TarReader`]
//! reads such an archive back for the CLI, which unpacks a daemon's answer. The reader also
//! understands GNU long names (`L`/`K` entries) and ustar name prefixes, and skips global PAX
//! headers; it refuses hard links, devices and FIFOs, which a UnixFS DAG never holds.
//!
//! Both sides stream: a file's bytes go straight through, nothing is held but one header.
//! Timestamps are 0 and owners root, as a UnixFS DAG carries neither.

use std::io::{self, Read, Write};

/// Bytes in a tar block; headers and padded bodies are multiples of it.
pub const BLOCK: usize = 512;
/// Longest name or link target a ustar header field holds.
const NAME_FIELD: usize = 100;
/// Largest size the 11 octal digits of the size field hold; larger ones use base-256.
const MAX_OCTAL_SIZE: u64 = 0o777_7777_7777;
/// Largest extended header (PAX or GNU long name) the reader accepts.
const MAX_EXTENDED: u64 = 1 << 20;

const TYPE_FILE: u8 = b'0';
const TYPE_FILE_OLD: u8 = 0;
const TYPE_SYMLINK: u8 = b'2';
const TYPE_DIR: u8 = b'5';
const TYPE_PAX: u8 = b'x';
const TYPE_PAX_GLOBAL: u8 = b'g';
const TYPE_GNU_NAME: u8 = b'L';
const TYPE_GNU_LINK: u8 = b'K';

/// Why writing or reading an archive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarError {
    #[error("tar stream: {0}")]
    Io(#[from] io::Error),
    #[error("tar entry {path}: declared {declared} bytes but {written} were written")]
    SizeMismatch {
        path: String,
        declared: u64,
        written: u64,
    },
    #[error("tar header {index}: bad checksum (not a tar stream, or corrupt)")]
    Checksum { index: u64 },
    #[error("tar header {index}: malformed {field} field")]
    Field { index: u64, field: &'static str },
    #[error("tar stream ends inside an entry")]
    Truncated,
    #[error("tar entry {path}: type {kind:?} is not supported (files, directories, symlinks only)")]
    UnsupportedType { path: String, kind: char },
    #[error("tar extended header of {0} bytes is over the limit")]
    ExtendedTooLarge(u64),
}

/// Writes entries into a tar stream; [`TarWriter::finish`] ends it.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// A directory entry.
    pub fn directory(&mut self, path: &str) -> Result<(), TarError> {
        self.header(path, "", TYPE_DIR, 0o755, 0)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), TarError> {
        self.header(path, target, TYPE_SYMLINK, 0o777, 0)
    }

    /// A file of `size` bytes, which `body` writes to the writer it is given; fails if it
    /// writes another number of bytes (the archive is then unusable).
    pub fn file<E>(
        &mut self,
        path: &str,
        size: u64,
        body: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<TarError>,
    {
        self.header(path, "", TYPE_FILE, 0o644, size)?;
        let mut counting = Counting {
            inner: &mut self.out,
            written: 0,
        };
        body(&mut counting)?;
        let written = counting.written;
        if written != size {
            return Err(TarError::SizeMismatch {
                path: path.to_owned(),
                declared: size,
                written,
            }
            .into());
        }
        self.pad(size).map_err(E::from)
    }

    /// End the archive (two zero blocks) and hand back the writer.
    pub fn finish(mut self) -> Result<W, TarError> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn pad(&mut self, size: u64) -> Result<(), TarError> {
        let rest = (size % BLOCK as u64) as usize;
        if rest != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rest])?;
        }
        Ok(())
    }

    /// One entry's header, preceded by a PAX header when a name does not fit.
    fn header(
        &mut self,
        path: &str,
        link: &str,
        kind: u8,
        mode: u32,
        size: u64,
    ) -> Result<(), TarError> {
        let mut records = Vec::new();
        if path.len() > NAME_FIELD {
            records.extend_from_slice(&pax_record("path", path));
        }
        if link.len() > NAME_FIELD {
            records.extend_from_slice(&pax_record("linkpath", link));
        }
        if !records.is_empty() {
            let name = format!("PaxHeaders/{}", truncate(path, NAME_FIELD - 11));
            let head = encode_header(&name, "", TYPE_PAX, 0o644, records.len() as u64);
            self.out.write_all(&head)?;
            self.out.write_all(&records)?;
            self.pad(records.len() as u64)?;
        }
        let head = encode_header(
            truncate(path, NAME_FIELD),
            truncate(link, NAME_FIELD),
            kind,
            mode,
            size,
        );
        self.out.write_all(&head)?;
        Ok(())
    }
}

/// A writer that counts what passes through.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `"<len> <key>=<value>\n"`, where `<len>` counts the whole record, itself included.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

/// A ustar header block.
fn encode_header(name: &str, link: &str, kind: u8, mode: u32, size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0); // uid
    octal(&mut h[116..124], 0); // gid
    if size <= MAX_OCTAL_SIZE {
        octal(&mut h[124..136], size);
    } else {
        // Base-256: a set high bit, then the size big-endian.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], 0); // mtime
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
    h
}

/// `value` as zero-padded octal digits filling `field` but its last byte (NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// What an entry of an archive is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink(String),
}

/// One entry's header; a file's bytes are read with [`TarReader::body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The full path, without a trailing slash.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
}

/// Reads a tar stream entry by entry.
pub struct TarReader<R: Read> {
    inner: R,
    /// Bytes of the current entry's body not read yet, then its padding.
    remaining: u64,
    padding: u64,
    headers: u64,
    done: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            remaining: 0,
            padding: 0,
            headers: 0,
            done: false,
        }
    }

    /// The next entry (skipping what is left of the current one), or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        self.skip_rest()?;
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        loop {
            if self.done {
                return Ok(None);
            }
            let mut h = [0u8; BLOCK];
            if !self.read_block(&mut h)? {
                self.done = true;
                return Ok(None);
            }
            let index = self.headers;
            self.headers += 1;
            if h.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            check_sum(&h, index)?;
            let size = parse_size(&h[124..136]).ok_or(TarError::Field {
                index,
                field: "size",
            })?;
            let kind = h[156];
            match kind {
                TYPE_PAX | TYPE_PAX_GLOBAL | TYPE_GNU_NAME | TYPE_GNU_LINK => {
                    let data = self.read_extended(size)?;
                    match kind {
                        TYPE_PAX => {
                            for (key, value) in pax_records(&data, index)? {
                                match key.as_str() {
                                    "path" => long_name = Some(value),
                                    "linkpath" => long_link = Some(value),
                                    _ => {}
                                }
                            }
                        }
                        TYPE_GNU_NAME => long_name = Some(c_string(&data)),
                        TYPE_GNU_LINK => long_link = Some(c_string(&data)),
                        _ => {} // global PAX headers carry nothing we use
                    }
                    continue;
                }
                _ => {}
            }
            let path = long_name.take().unwrap_or_else(|| ustar_name(&h));
            let link = long_link.take().unwrap_or_else(|| c_string(&h[157..257]));
            let path = path.trim_end_matches('/').to_owned();
            let (kind, size) = match kind {
                TYPE_FILE | TYPE_FILE_OLD => (EntryKind::File, size),
                TYPE_DIR => (EntryKind::Directory, 0),
                TYPE_SYMLINK => (EntryKind::Symlink(link), 0),
                other => {
                    return Err(TarError::UnsupportedType {
                        path,
                        kind: char::from(other),
                    });
                }
            };
            self.remaining = size;
            self.padding = padding(size);
            return Ok(Some(Entry { path, kind, size }));
        }
    }

    /// The current entry's bytes.
    pub fn body(&mut self) -> impl Read + '_ {
        Body { reader: self }
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let skip = self.remaining + self.padding;
        if skip > 0 {
            let copied = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())?;
            if copied < skip {
                return Err(TarError::Truncated);
            }
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    /// One block; `false` at a clean end of stream, an error at a partial block.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool, TarError> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(TarError::Truncated),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    fn read_extended(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        if size > MAX_EXTENDED {
            return Err(TarError::ExtendedTooLarge(size));
        }
        let total = size + padding(size);
        let mut data = Vec::with_capacity(total as usize);
        (&mut self.inner).take(total).read_to_end(&mut data)?;
        if (data.len() as u64) < total {
            return Err(TarError::Truncated);
        }
        data.truncate(size as usize);
        Ok(data)
    }
}

/// The reader of one entry's bytes.
struct Body<'a, R: Read> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.reader.remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.reader.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                TarError::Truncated,
            ));
        }
        self.reader.remaining -= n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn check_sum(h: &[u8; BLOCK], index: u64) -> Result<(), TarError> {
    let stored = parse_octal(&h[148..156]).ok_or(TarError::Field {
        index,
        field: "checksum",
    })?;
    let unsigned: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    // Some old writers summed signed bytes.
    let signed: i64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(TarError::Checksum { index })
    }
}

/// Octal digits, optionally surrounded by spaces and ended by NUL.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end]).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The size field: octal, or base-256 when its first byte has the high bit set.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(value);
    }
    parse_octal(field)
}

/// Bytes up to the first NUL, as text.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The name of a ustar header, joined to its prefix field.
fn ustar_name(h: &[u8; BLOCK]) -> String {
    let name = c_string(&h[..100]);
    if &h[257..262] == b"ustar" {
        let prefix = c_string(&h[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// The `key=value` records of a PAX extended header.
fn pax_records(data: &[u8], index: u64) -> Result<Vec<(String, String)>, TarError> {
    let bad = TarError::Field {
        index,
        field: "pax record",
    };
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or(TarError::Field {
                index,
                field: "pax record",
            })?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(TarError::Field {
                index,
                field: "pax record",
            })?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad);
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or(TarError::Field {
                index,
                field: "pax record",
            })?;
        records.push((
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
        ));
        rest = &rest[len..];
    }
    Ok(records)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
}
