//! [`TarReader`]: reads an archive entry by entry for the CLI's `get`. Extended headers (PAX,
//! GNU long names) are gathered into the entry they precede; a file's bytes are read through
//! [`TarReader::body`], and whatever is not read is skipped at the next entry.

use std::io::{self, Read};

use super::header::{
    TYPE_DIR, TYPE_FILE, TYPE_FILE_OLD, TYPE_GNU_LINK, TYPE_GNU_NAME, TYPE_PAX, TYPE_PAX_GLOBAL,
    TYPE_SYMLINK, c_string, check_sum, padding, parse_size, pax_records, ustar_name,
};
use super::{BLOCK, Entry, EntryKind, TarError};

/// Largest extended header (PAX or GNU long name) the reader accepts.
const MAX_EXTENDED: u64 = 1 << 20;

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
