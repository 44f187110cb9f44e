//! The tar header block, both ways: [`encode_header`] writes a ustar header and
//! [`pax_record`] a PAX `key=value` record; the reader's side checks a header's checksum
//! ([`check_sum`]), parses its numeric fields ([`parse_size`], octal or base-256), its name
//! (with the ustar prefix) and a PAX header's records. Pure functions over bytes.

use super::{BLOCK, TarError};

/// Longest name or link target a ustar header field holds.
pub(super) const NAME_FIELD: usize = 100;
/// Largest size the 11 octal digits of the size field hold; larger ones use base-256.
pub(super) const MAX_OCTAL_SIZE: u64 = 0o777_7777_7777;

pub(super) const TYPE_FILE: u8 = b'0';
pub(super) const TYPE_FILE_OLD: u8 = 0;
pub(super) const TYPE_SYMLINK: u8 = b'2';
pub(super) const TYPE_DIR: u8 = b'5';
pub(super) const TYPE_PAX: u8 = b'x';
pub(super) const TYPE_PAX_GLOBAL: u8 = b'g';
pub(super) const TYPE_GNU_NAME: u8 = b'L';
pub(super) const TYPE_GNU_LINK: u8 = b'K';

/// `"<len> <key>=<value>\n"`, where `<len>` counts the whole record, itself included.
pub(super) fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

/// A ustar header block.
pub(super) fn encode_header(name: &str, link: &str, kind: u8, mode: u32, size: u64) -> [u8; BLOCK] {
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
pub(super) fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

pub(super) fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

pub(super) fn check_sum(h: &[u8; BLOCK], index: u64) -> Result<(), TarError> {
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
pub(super) fn parse_octal(field: &[u8]) -> Option<u64> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end]).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The size field: octal, or base-256 when its first byte has the high bit set.
pub(super) fn parse_size(field: &[u8]) -> Option<u64> {
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
pub(super) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The name of a ustar header, joined to its prefix field.
pub(super) fn ustar_name(h: &[u8; BLOCK]) -> String {
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
pub(super) fn pax_records(data: &[u8], index: u64) -> Result<Vec<(String, String)>, TarError> {
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
