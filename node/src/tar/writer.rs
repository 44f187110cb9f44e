//! [`TarWriter`]: the streaming writer of `get`'s archives. Each entry is one ustar header
//! (preceded by a PAX header when a path or link target is longer than a ustar field), then a
//! file's bytes padded to the block; the writer checks that a file's body writes exactly the
//! size its header declared.

use std::io::{self, Write};

use super::header::{
    NAME_FIELD, TYPE_DIR, TYPE_FILE, TYPE_PAX, TYPE_SYMLINK, encode_header, pax_record,
};
use super::{BLOCK, TarError};

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
