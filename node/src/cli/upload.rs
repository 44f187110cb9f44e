//! Request bodies the CLI streams to a daemon: `multipart/form-data` as Kubo's clients send
//! it to `add`, `block/put` and `dag/import`. [`tree_parts`] lists a file or folder the way
//! [`crate::fsimport`] walks it (hidden names skipped unless asked, children in bytewise
//! order, symlinks inside a tree stored as links, never followed), parent first; a
//! [`MultipartBody`] turns the parts into bytes lazily, opening each file only when its turn
//! comes, so a tree of any size is sent in constant memory.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::fsimport::{FsImportError, io_error, root_name};

/// The boundary between parts; never inside a header we write, and the parser finds it only
/// at a line start followed by `--`.
const BOUNDARY: &str = "distribute-7f3a9c1e5b2d4086-boundary";

/// Characters of a file name sent as-is (the rest is percent-encoded, `/` included).
const NAME_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What one part carries.
pub(super) enum PartBody {
    Directory,
    File(PathBuf),
    Symlink(Vec<u8>),
    Bytes(Vec<u8>),
    /// Bytes produced by a reader (a file assembled on the fly).
    Reader(Box<dyn Read + Send>),
}

/// One part: its path name (`dir/sub/file`) and body.
pub(super) struct Part {
    pub(super) name: String,
    pub(super) body: PartBody,
}

/// The `Content-Type` of a multipart body made by [`MultipartBody`].
pub(super) fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// The parts of `path`, named after its last component, as `add` would import it.
pub(super) fn tree_parts(path: &Path, recursive: bool, hidden: bool) -> Result<Vec<Part>> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    let name = root_name(path)?;
    if meta.is_dir() && !recursive {
        return Err(FsImportError::IsDirectory(path.to_owned()).into());
    }
    let mut parts = Vec::new();
    walk(path, name, &meta, hidden, &mut parts)?;
    Ok(parts)
}

fn walk(
    path: &Path,
    name: String,
    meta: &fs::Metadata,
    hidden: bool,
    parts: &mut Vec<Part>,
) -> Result<()> {
    if meta.is_dir() {
        parts.push(Part {
            name: name.clone(),
            body: PartBody::Directory,
        });
        let mut children = Vec::new();
        for entry in fs::read_dir(path).map_err(|e| io_error(path, e))? {
            let entry = entry.map_err(|e| io_error(path, e))?;
            let child = entry
                .file_name()
                .to_str()
                .ok_or_else(|| FsImportError::NonUtf8Name(entry.path()))?
                .to_owned();
            if child.starts_with('.') && !hidden {
                continue;
            }
            children.push((child, entry.path()));
        }
        children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (child, child_path) in children {
            let meta = fs::symlink_metadata(&child_path).map_err(|e| io_error(&child_path, e))?;
            walk(&child_path, format!("{name}/{child}"), &meta, hidden, parts)?;
        }
    } else if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(|e| io_error(path, e))?;
        parts.push(Part {
            name,
            body: PartBody::Symlink(target.as_os_str().as_encoded_bytes().to_vec()),
        });
    } else if meta.is_file() {
        parts.push(Part {
            name,
            body: PartBody::File(path.to_owned()),
        });
    } else {
        return Err(FsImportError::Unsupported(path.to_owned()).into());
    }
    Ok(())
}

/// The bytes of a multipart body, produced part by part as they are read.
pub(super) struct MultipartBody {
    parts: VecDeque<Part>,
    current: Box<dyn Read + Send>,
    finished: bool,
}

impl MultipartBody {
    pub(super) fn new(parts: Vec<Part>) -> Self {
        Self {
            parts: parts.into(),
            current: Box::new(io::empty()),
            finished: false,
        }
    }

    /// The reader of the next part (head, body, line end), or of the closing boundary.
    fn next_reader(&mut self) -> io::Result<Option<Box<dyn Read + Send>>> {
        let Some(part) = self.parts.pop_front() else {
            if self.finished {
                return Ok(None);
            }
            self.finished = true;
            return Ok(Some(Box::new(Cursor::new(
                format!("--{BOUNDARY}--\r\n").into_bytes(),
            ))));
        };
        let kind = match &part.body {
            PartBody::Directory => "application/x-directory",
            PartBody::Symlink(_) => "application/symlink",
            PartBody::File(_) | PartBody::Bytes(_) | PartBody::Reader(_) => {
                "application/octet-stream"
            }
        };
        let head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {kind}\r\n\r\n",
            utf8_percent_encode(&part.name, NAME_SAFE)
        );
        let head = Cursor::new(head.into_bytes());
        let tail = Cursor::new(b"\r\n".to_vec());
        let reader: Box<dyn Read + Send> = match part.body {
            PartBody::Directory => Box::new(head.chain(tail)),
            PartBody::Symlink(bytes) | PartBody::Bytes(bytes) => {
                Box::new(head.chain(Cursor::new(bytes)).chain(tail))
            }
            PartBody::Reader(reader) => Box::new(head.chain(reader).chain(tail)),
            PartBody::File(path) => {
                let file = fs::File::open(&path)
                    .with_context(|| format!("opening {}", path.display()))
                    .map_err(io::Error::other)?;
                Box::new(
                    head.chain(io::BufReader::with_capacity(1 << 20, file))
                        .chain(tail),
                )
            }
        };
        Ok(Some(reader))
    }
}

impl Read for MultipartBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.current.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.next_reader()? {
                Some(next) => self.current = next,
                None => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::multipart::Parser;

    #[test]
    fn a_tree_is_listed_parent_first_like_fsimport_walks_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("a.txt"), b"a").unwrap();
        fs::write(root.join(".hidden"), b"h").unwrap();
        fs::write(root.join("b/c/x"), b"x").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("l")).unwrap();
        let names: Vec<String> = tree_parts(&root, true, false)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["t", "t/a.txt", "t/b", "t/b/c", "t/b/c/x", "t/l"]);
        let with_hidden = tree_parts(&root, true, true).unwrap();
        assert_eq!(with_hidden[1].name, "t/.hidden");
        assert!(tree_parts(&root, false, false).is_err());
    }

    #[test]
    fn the_body_parses_back_into_the_same_parts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, vec![5u8; 300_000]).unwrap();
        let parts = vec![
            Part {
                name: "d ä/".into(),
                body: PartBody::Directory,
            },
            Part {
                name: "d ä/f".into(),
                body: PartBody::File(file),
            },
            Part {
                name: "d ä/l".into(),
                body: PartBody::Symlink(b"f".to_vec()),
            },
        ];
        let mut body = Vec::new();
        MultipartBody::new(parts).read_to_end(&mut body).unwrap();
        let mut parser = Parser::new(BOUNDARY);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        parser
            .feed::<crate::api::multipart::MultipartError>(&body, &mut |event| {
                use crate::api::multipart::Event;
                match event {
                    Event::Start(head) => {
                        seen.push((head.file_name.clone(), head.content_type.clone()));
                        sizes.push(0);
                    }
                    Event::Data(d) => {
                        if let Some(last) = sizes.last_mut() {
                            *last += d.len();
                        }
                    }
                    Event::End => {}
                }
                Ok(())
            })
            .unwrap();
        parser.finish().unwrap();
        assert_eq!(
            seen,
            [
                ("d ä/".to_owned(), "application/x-directory".to_owned()),
                ("d ä/f".to_owned(), "application/octet-stream".to_owned()),
                ("d ä/l".to_owned(), "application/symlink".to_owned()),
            ]
        );
        assert_eq!(sizes, [0, 300_000, 1]);
    }
}
