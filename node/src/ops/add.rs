//! Adding a tree that arrives as a sequence of entries (the parts of an `add` request):
//! directories by path, files as byte streams, symlinks by target. Kubo's `add` result shapes
//! (`{"Name","Hash","Size"}`, `{"Name","Bytes"}` progress) live here too.
//!
//! Entries come parent-first in walk order (`d`, `d/a`, `d/a/x`, `d/b`, …), as Kubo clients and
//! the CLI send them. [`TreeAdder`] keeps a stack of the directories still open; an entry
//! outside the top one closes it (builds its block, reports it), so every entry is reported
//! post-order exactly as a filesystem `add -r` reports it. A missing parent directory is
//! opened implicitly.

use std::io::Read;

use serde::{Deserialize, Serialize};

use super::OpError;
use crate::content::directory::{DirEntry, build_directory, validate_name};
use crate::content::importer::{BlockSink, ImportOptions, import_file, import_symlink};
use crate::content::layout::Child;

/// One added entry, in Kubo's shape (`Size` is a decimal string there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddedEntry {
    pub name: String,
    pub hash: String,
    pub size: String,
}

/// A progress report: bytes of the file `name` read so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddProgress {
    pub name: String,
    pub bytes: u64,
}

/// A line of `add`'s NDJSON answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AddEvent {
    Added(AddedEntry),
    Progress(AddProgress),
}

struct OpenDir {
    path: String,
    entries: Vec<DirEntry>,
}

/// Builds a tree from entries given by path; see the module doc.
pub struct TreeAdder<'a> {
    opts: ImportOptions,
    sink: &'a mut dyn BlockSink,
    stack: Vec<OpenDir>,
    roots: Vec<(String, Child)>,
    on_entry: &'a mut dyn FnMut(&str, &Child) -> Result<(), OpError>,
}

/// Split and check a relative entry path (no empty, `.` or `..` segments).
fn segments(path: &str) -> Result<Vec<&str>, OpError> {
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        validate_name(part).map_err(|e| OpError::Invalid(format!("entry path {path:?}: {e}")))?;
    }
    Ok(parts)
}

impl<'a> TreeAdder<'a> {
    /// `on_entry(path, child)` is called for each finished entry, post-order.
    pub fn new(
        opts: ImportOptions,
        sink: &'a mut dyn BlockSink,
        on_entry: &'a mut dyn FnMut(&str, &Child) -> Result<(), OpError>,
    ) -> Self {
        Self {
            opts,
            sink,
            stack: Vec::new(),
            roots: Vec::new(),
            on_entry,
        }
    }

    /// Close open directories until the top one is `path`'s parent, opening missing ones.
    fn enter_parent_of(&mut self, path: &str) -> Result<(), OpError> {
        let parts = segments(path)?;
        let parent = &parts[..parts.len() - 1];
        while let Some(top) = self.stack.last() {
            let top_parts: Vec<&str> = top.path.split('/').collect();
            if parent.starts_with(&top_parts) {
                break;
            }
            self.close_top()?;
        }
        let open = self.stack.len();
        for depth in open..parent.len() {
            self.stack.push(OpenDir {
                path: parent[..=depth].join("/"),
                entries: Vec::new(),
            });
        }
        Ok(())
    }

    fn close_top(&mut self) -> Result<(), OpError> {
        let Some(dir) = self.stack.pop() else {
            return Ok(());
        };
        let child = build_directory(dir.entries, &self.opts, self.sink)
            .map_err(|e| OpError::Invalid(format!("directory {:?}: {e}", dir.path)))?;
        self.finish_entry(&dir.path, child)
    }

    fn finish_entry(&mut self, path: &str, child: Child) -> Result<(), OpError> {
        (self.on_entry)(path, &child)?;
        let name = path.rsplit('/').next().unwrap_or(path).to_owned();
        match self.stack.last_mut() {
            Some(parent) => parent.entries.push(DirEntry { name, child }),
            None => self.roots.push((name, child)),
        }
        Ok(())
    }

    /// Open directory `path`.
    pub fn directory(&mut self, path: &str) -> Result<(), OpError> {
        self.enter_parent_of(path)?;
        self.stack.push(OpenDir {
            path: path.to_owned(),
            entries: Vec::new(),
        });
        Ok(())
    }

    /// Import file `path` from `reader`; `on_bytes` gets the bytes read so far. A file with
    /// an empty path is a top-level entry named by its CID (as Kubo names unnamed content).
    pub fn file(
        &mut self,
        path: &str,
        reader: impl Read + Send,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<(), OpError> {
        if path.is_empty() {
            while !self.stack.is_empty() {
                self.close_top()?;
            }
            let child = import_file(reader, &self.opts, self.sink, on_bytes)
                .map_err(|e| OpError::Invalid(format!("unnamed file: {e}")))?;
            return self.finish_entry(&child.cid.to_string(), child);
        }
        self.enter_parent_of(path)?;
        let child = import_file(reader, &self.opts, self.sink, on_bytes)
            .map_err(|e| OpError::Invalid(format!("{path}: {e}")))?;
        self.finish_entry(path, child)
    }

    /// Add symlink `path` pointing at `target`.
    pub fn symlink(&mut self, path: &str, target: &[u8]) -> Result<(), OpError> {
        self.enter_parent_of(path)?;
        let child = import_symlink(target, &self.opts, self.sink)
            .map_err(|e| OpError::Invalid(format!("{path}: {e}")))?;
        self.finish_entry(path, child)
    }

    /// Close every directory; with `wrap`, put the top-level entries in one more directory
    /// (reported with an empty name). Returns the roots to pin.
    pub fn finish(mut self, wrap: bool) -> Result<Vec<Child>, OpError> {
        while !self.stack.is_empty() {
            self.close_top()?;
        }
        let roots = std::mem::take(&mut self.roots);
        if wrap {
            let entries = roots
                .into_iter()
                .map(|(name, child)| DirEntry { name, child })
                .collect();
            let child = build_directory(entries, &self.opts, self.sink)
                .map_err(|e| OpError::Invalid(format!("wrapping directory: {e}")))?;
            (self.on_entry)("", &child)?;
            return Ok(vec![child]);
        }
        Ok(roots.into_iter().map(|(_, child)| child).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreSink;
    use crate::store::memory::MemoryStore;

    fn add(entries: &[(&str, Option<&[u8]>)], wrap: bool) -> Result<Vec<String>, OpError> {
        let store = MemoryStore::default();
        let mut sink = StoreSink::new(&store);
        let mut seen = Vec::new();
        let mut on_entry = |path: &str, _: &Child| {
            seen.push(path.to_owned());
            Ok(())
        };
        let mut adder = TreeAdder::new(ImportOptions::default(), &mut sink, &mut on_entry);
        for (path, data) in entries {
            match data {
                Some(d) => adder.file(path, *d, &mut |_| {})?,
                None => adder.directory(path)?,
            }
        }
        adder.finish(wrap)?;
        Ok(seen)
    }

    #[test]
    fn entries_are_reported_post_order() {
        let seen = add(
            &[
                ("d", None),
                ("d/a", None),
                ("d/a/x", Some(b"x")),
                ("d/b", None),
                ("d/b/y", Some(b"y")),
                ("d/z", Some(b"z")),
            ],
            false,
        )
        .unwrap();
        assert_eq!(seen, ["d/a/x", "d/a", "d/b/y", "d/b", "d/z", "d"]);
    }

    #[test]
    fn missing_parents_open_implicitly_and_wrap_adds_a_root() {
        let seen = add(&[("p/q/f", Some(b"f")), ("g", Some(b"g"))], true).unwrap();
        assert_eq!(seen, ["p/q/f", "p/q", "p", "g", ""]);
        let seen = add(&[("", Some(b"unnamed"))], false).unwrap();
        assert!(seen[0].starts_with("Qm"), "{seen:?}");
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["../x", "a/../b", "/abs", "a//b", "."] {
            let err = add(&[(bad, Some(b"x"))], false).unwrap_err();
            assert!(matches!(err, OpError::Invalid(_)), "{bad}: {err}");
        }
    }
}
