//! Placeholder for the content-defined chunker; replaced by the real one.

use std::io::Read;

use super::{Chunker, FixedSize};

/// Content-defined chunker with Kubo's buzhash parameters.
pub struct Buzhash<R> {
    inner: FixedSize<R>,
}

impl<R: Read> Buzhash<R> {
    pub fn new(reader: R) -> Self {
        Self {
            inner: FixedSize::new(reader, super::DEFAULT_CHUNK_SIZE),
        }
    }
}

impl<R: Read> Chunker for Buzhash<R> {
    fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        self.inner.next_chunk()
    }
}
