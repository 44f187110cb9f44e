//! Adding files and directory trees from the local filesystem (`distribute add [-r]`).
//!
//! Walks the tree depth-first with entries in byte-wise name order, imports each file through
//! [`content::importer`](crate::content::importer), builds each directory once its entries are
//! known, and reports every entry post-order (a directory after its contents, the root last),
//! as Kubo prints them. Hidden entries (names starting with `.`) are skipped unless asked for;
//! symbolic links inside a tree are stored as UnixFS symlinks, never followed.

use std::fs;
use std::path::{Path, PathBuf};

use cid::Cid;
use thiserror::Error;

use crate::content::directory::{DirEntry, build_directory};
use crate::content::importer::{
    BlockSink, ImportError, ImportOptions, import_file, import_symlink,
};
use crate::content::layout::Child;

/// Why adding a path failed. Each names the path.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FsImportError {
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),
    #[error("{}: is a directory (use -r to add directories)", .0.display())]
    IsDirectory(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: unsupported file type (only files, directories and symlinks can be added)", .0.display())]
    Unsupported(PathBuf),
    #[error("{}: file name is not valid UTF-8", .0.display())]
    NonUtf8Name(PathBuf),
    #[error("{}: {source}", path.display())]
    Import { path: PathBuf, source: ImportError },
}

/// One added entry, as `add` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// Path relative to the parent of the added root (`dir/sub/file`).
    pub name: String,
    pub cid: Cid,
    /// File bytes for files, cumulative DAG size for directories.
    pub size: u64,
    pub child: Child,
}

/// Options of a filesystem add.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    pub import: ImportOptions,
    pub recursive: bool,
    pub hidden: bool,
}

/// Add `path`, calling `on_entry` for each entry as it is finished and `on_bytes` with the
/// number of file bytes read so far. Returns the root entry.
pub fn add_path(
    path: &Path,
    opts: &AddOptions,
    sink: &mut dyn BlockSink,
    on_entry: &mut dyn FnMut(&Added),
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Added, FsImportError> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    let name = root_name(path)?;
    if meta.is_dir() && !opts.recursive {
        return Err(FsImportError::IsDirectory(path.to_owned()));
    }
    let mut walker = Walker {
        opts,
        sink,
        on_entry,
        on_bytes,
        bytes_before: 0,
    };
    walker.add(path, &name, &meta)
}

/// The name `add` gives the entry for `path`: its last component, or for `.` and `/` the
/// canonical folder's name.
pub(crate) fn root_name(path: &Path) -> Result<String, FsImportError> {
    Ok(match path.file_name() {
        Some(n) => n
            .to_str()
            .ok_or_else(|| FsImportError::NonUtf8Name(path.to_owned()))?
            .to_owned(),
        None => fs::canonicalize(path)
            .map_err(|e| io_error(path, e))?
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("root")
            .to_owned(),
    })
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> FsImportError {
    if source.kind() == std::io::ErrorKind::NotFound {
        FsImportError::NotFound(path.to_owned())
    } else {
        FsImportError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

struct Walker<'a> {
    opts: &'a AddOptions,
    sink: &'a mut dyn BlockSink,
    on_entry: &'a mut dyn FnMut(&Added),
    on_bytes: &'a mut dyn FnMut(u64),
    /// File bytes of files already finished, so progress is cumulative over a tree.
    bytes_before: u64,
}

impl Walker<'_> {
    fn add(
        &mut self,
        path: &Path,
        name: &str,
        meta: &fs::Metadata,
    ) -> Result<Added, FsImportError> {
        let import_err = |source| FsImportError::Import {
            path: path.to_owned(),
            source,
        };
        let (child, size) = if meta.is_dir() {
            let entries = self.add_children(path, name)?;
            let child =
                build_directory(entries, &self.opts.import, self.sink).map_err(import_err)?;
            (child, child.tsize)
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(path).map_err(|e| io_error(path, e))?;
            let child = import_symlink(
                target.as_os_str().as_encoded_bytes(),
                &self.opts.import,
                self.sink,
            )
            .map_err(import_err)?;
            (child, 0)
        } else if meta.is_file() {
            let file = fs::File::open(path).map_err(|e| io_error(path, e))?;
            let before = self.bytes_before;
            let on_bytes = &mut *self.on_bytes;
            let child = import_file(
                std::io::BufReader::with_capacity(1 << 20, file),
                &self.opts.import,
                self.sink,
                &mut |n| on_bytes(before + n),
            )
            .map_err(import_err)?;
            self.bytes_before += child.filesize;
            (child, child.filesize)
        } else {
            return Err(FsImportError::Unsupported(path.to_owned()));
        };
        let added = Added {
            name: name.to_owned(),
            cid: child.cid,
            size,
            child,
        };
        (self.on_entry)(&added);
        Ok(added)
    }

    fn add_children(&mut self, dir: &Path, dir_name: &str) -> Result<Vec<DirEntry>, FsImportError> {
        let mut children = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let file_name = entry.file_name();
            let name = file_name
                .to_str()
                .ok_or_else(|| FsImportError::NonUtf8Name(entry.path()))?
                .to_owned();
            if name.starts_with('.') && !self.opts.hidden {
                continue;
            }
            children.push((name, entry.path()));
        }
        children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut entries = Vec::with_capacity(children.len());
        for (name, path) in children {
            let meta = fs::symlink_metadata(&path).map_err(|e| io_error(&path, e))?;
            let added = self.add(&path, &format!("{dir_name}/{name}"), &meta)?;
            entries.push(DirEntry {
                name,
                child: added.child,
            });
        }
        Ok(entries)
    }
}
