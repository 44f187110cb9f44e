//! Fixed-size chunker (`size-N`): every chunk is N bytes except possibly the last.

use std::io::Read;

use super::{Chunker, read_full};

/// Splits a stream into chunks of exactly `size` bytes (the last may be shorter).
pub struct FixedSize<R> {
    reader: R,
    size: usize,
    done: bool,
}

impl<R: Read> FixedSize<R> {
    pub fn new(reader: R, size: usize) -> Self {
        Self {
            reader,
            size: size.max(1),
            done: false,
        }
    }
}

impl<R: Read> Chunker for FixedSize<R> {
    fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = vec![0u8; self.size];
        let n = read_full(&mut self.reader, &mut buf)?;
        if n < self.size {
            self.done = true;
        }
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(len: usize, size: usize) -> Vec<usize> {
        let data = vec![7u8; len];
        let mut c = FixedSize::new(&data[..], size);
        let mut out = Vec::new();
        while let Some(chunk) = c.next_chunk().expect("read") {
            out.push(chunk.len());
        }
        out
    }

    #[test]
    fn splits_at_exact_boundaries() {
        assert_eq!(sizes(0, 4), Vec::<usize>::new());
        assert_eq!(sizes(4, 4), vec![4]);
        assert_eq!(sizes(9, 4), vec![4, 4, 1]);
    }
}
