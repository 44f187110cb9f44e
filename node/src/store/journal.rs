//! The journals the repo keeps its small state in (`<repo>/pins.journal`, see [`super::pins`];
//! `<repo>/cluster.journal`, see [`crate::cluster::store`]): append-only files of frames, each
//! `length: u32 LE | check: 4 bytes | payload`, where `check` is the start of the payload's
//! SHA-256. A crash can leave a torn last frame; [`frames`] stops at the first frame that is
//! cut short or fails its check and says where, so the owner can cut the file back to its
//! last whole frame. Byte handling, plus the file operations every journal needs: [`read`],
//! [`cut_back`] (the torn tail), [`open_append`] and [`replace`] (a compacted journal swapped
//! in whole).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Largest payload a frame may carry (a pin record is a few hundred bytes).
pub const MAX_PAYLOAD: usize = 16 << 20;

const HEADER: usize = 8;

fn check(payload: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(payload);
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Append one frame holding `payload` to `out`.
pub fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    // Payloads are built here from bounded records; MAX_PAYLOAD is far below u32::MAX.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&check(payload));
    out.extend_from_slice(payload);
}

/// The whole frames at the start of `bytes`, and the length they cover: anything after it
/// is a torn or damaged tail.
pub fn frames(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[..4]);
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_PAYLOAD {
            break;
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if check(payload) != header[4..] {
            break;
        }
        out.push(payload);
        at += HEADER + len;
    }
    (out, at)
}

/// The bytes of the journal at `path`; none when it does not exist yet.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

/// Cut the journal at `path`, open as `file` and `len` bytes long, back to its first `good`
/// bytes (where [`frames`] stopped), with a warning; nothing to do when `good == len`.
pub fn cut_back(file: &File, path: &Path, good: u64, len: u64) -> io::Result<()> {
    if good >= len {
        return Ok(());
    }
    tracing::warn!(
        path = %path.display(),
        dropped_bytes = len - good,
        "journal ends in a torn or damaged record; cut back to the last whole one"
    );
    file.set_len(good)?;
    file.sync_all()
}

/// Open the journal at `path` for appending, creating it if needed.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Replace the journal at `path` by one holding `bytes` (written to a temporary file, synced,
/// renamed over it), and open it for appending. A crash leaves the old or the new journal.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    {
        let mut f = File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    open_append(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn journal(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            put_frame(&mut out, p);
        }
        out
    }

    #[test]
    fn frames_come_back_in_order() {
        let bytes = journal(&[b"one", b"", b"three"]);
        let (got, good) = frames(&bytes);
        assert_eq!(got, [&b"one"[..], b"", b"three"]);
        assert_eq!(good, bytes.len());
    }

    #[test]
    fn a_torn_last_frame_is_left_out() {
        let bytes = journal(&[b"kept", b"torn off"]);
        let whole = HEADER + 4;
        for cut in whole..bytes.len() {
            let (got, good) = frames(&bytes[..cut]);
            assert_eq!(got, [&b"kept"[..]], "cut at {cut}");
            assert_eq!(good, whole);
        }
    }

    #[test]
    fn a_damaged_frame_ends_the_journal() {
        let mut bytes = journal(&[b"first", b"second", b"third"]);
        let second_payload = HEADER + 5 + HEADER;
        bytes[second_payload] ^= 1;
        let (got, good) = frames(&bytes);
        assert_eq!(got, [&b"first"[..]]);
        assert_eq!(good, HEADER + 5);
    }

    #[test]
    fn an_absurd_length_is_a_damaged_frame() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 12]);
        assert_eq!(frames(&bytes), (Vec::<&[u8]>::new(), 0));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (got, good) = frames(&bytes);
            prop_assert!(good <= bytes.len());
            prop_assert_eq!(got.iter().map(|p| p.len() + HEADER).sum::<usize>(), good);
        }
    }
}
