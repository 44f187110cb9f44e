//! Byte ranges (pure): the `Range: bytes=…` header and the trustless gateway's
//! `entity-bytes=from:to` parameter, parsed into [`ByteRange`]s and resolved against a size.
//!
//! One range per request: a header naming several ranges is answered with the whole content
//! (RFC 9110 lets a server ignore `Range`), an unparsable one is a 400.

use super::error::GatewayError;

/// A `Range` header as written, before the size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-` or `bytes=first-last` (inclusive).
    FromTo { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// A range resolved against the content's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Bytes `[offset, offset + length)`, non-empty and inside the content.
    Part { offset: u64, length: u64 },
    /// No byte of the content is in the range: 416.
    Unsatisfiable,
}

/// Parse a `Range` header. `Ok(None)`: serve the whole content (several ranges, or a unit
/// other than bytes).
pub fn parse_range_header(value: &str) -> Result<Option<ByteRange>, GatewayError> {
    let bad = || GatewayError::BadRequest(format!("invalid Range header {value:?}"));
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.trim().split_once('-').ok_or_else(bad)?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    if a.trim().is_empty() {
        return Ok(Some(ByteRange::Suffix(number(b)?)));
    }
    let first = number(a)?;
    let last = if b.trim().is_empty() {
        None
    } else {
        Some(number(b)?)
    };
    if last.is_some_and(|l| l < first) {
        return Err(bad());
    }
    Ok(Some(ByteRange::FromTo { first, last }))
}

impl ByteRange {
    /// The bytes of a `size`-byte content this range covers.
    pub fn resolve(self, size: u64) -> Resolved {
        match self {
            Self::FromTo { first, .. } if first >= size => Resolved::Unsatisfiable,
            Self::FromTo { first, last } => {
                let end = last.map_or(size, |l| l.saturating_add(1).min(size));
                Resolved::Part {
                    offset: first,
                    length: end - first,
                }
            }
            Self::Suffix(0) => Resolved::Unsatisfiable,
            Self::Suffix(_) if size == 0 => Resolved::Unsatisfiable,
            Self::Suffix(n) => {
                let length = n.min(size);
                Resolved::Part {
                    offset: size - length,
                    length,
                }
            }
        }
    }
}

/// `entity-bytes=from:to` of the trustless gateway: `from` and `to` are byte positions,
/// negative ones count from the end, `to` is inclusive or `*` for the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityBytes {
    pub from: i64,
    /// `None` for `*`.
    pub to: Option<i64>,
}

impl EntityBytes {
    pub fn parse(value: &str) -> Result<Self, GatewayError> {
        let bad = || {
            GatewayError::BadRequest(format!(
                "invalid entity-bytes {value:?}: expected from:to, e.g. 0:1023 or -100:*"
            ))
        };
        let (a, b) = value.split_once(':').ok_or_else(bad)?;
        let from = a.parse::<i64>().map_err(|_| bad())?;
        let to = if b == "*" {
            None
        } else {
            Some(b.parse::<i64>().map_err(|_| bad())?)
        };
        // Two positions on the same side of the content can be compared without the size.
        if let Some(to) = to
            && (from >= 0) == (to >= 0)
            && to < from
        {
            return Err(bad());
        }
        Ok(Self { from, to })
    }

    /// `[offset, offset + length)` within a `size`-byte entity; length 0 when empty.
    pub fn resolve(self, size: u64) -> (u64, u64) {
        let size_i = i64::try_from(size).unwrap_or(i64::MAX);
        let position = |p: i64| -> u64 {
            let abs = if p < 0 { size_i.saturating_add(p) } else { p };
            u64::try_from(abs.clamp(0, size_i)).unwrap_or(0)
        };
        let offset = position(self.from);
        let end = match self.to {
            None => size,
            Some(to) => position(to).saturating_add(1).min(size),
        };
        (offset, end.saturating_sub(offset))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(header: &str, size: u64, expected: Option<Resolved>) {
        let got = parse_range_header(header).unwrap().map(|r| r.resolve(size));
        assert_eq!(got, expected, "{header} over {size} bytes");
    }

    #[test]
    fn range_headers() {
        let part = |offset, length| Some(Resolved::Part { offset, length });
        check("bytes=0-0", 10, part(0, 1));
        check("bytes=2-5", 10, part(2, 4));
        check("bytes=2-", 10, part(2, 8));
        check("bytes=5-100", 10, part(5, 5));
        check("bytes=-3", 10, part(7, 3));
        check("bytes=-30", 10, part(0, 10));
        check("bytes=10-", 10, Some(Resolved::Unsatisfiable));
        check("bytes=-0", 10, Some(Resolved::Unsatisfiable));
        check("bytes=0-", 0, Some(Resolved::Unsatisfiable));
        check("bytes=0-1,4-5", 10, None);
        check("items=0-1", 10, None);
    }

    #[test]
    fn malformed_ranges_are_bad_requests() {
        for header in [
            "bytes=a-b",
            "bytes=5-2",
            "bytes=",
            "bytes=-",
            "bytes=1",
            "bytes=--1",
        ] {
            let err = parse_range_header(header).unwrap_err();
            assert_eq!(err.status(), 400, "{header}");
        }
    }

    #[test]
    fn entity_bytes() {
        let r = |s: &str, size| EntityBytes::parse(s).unwrap().resolve(size);
        assert_eq!(r("0:*", 100), (0, 100));
        assert_eq!(r("0:9", 100), (0, 10));
        assert_eq!(r("10:19", 100), (10, 10));
        assert_eq!(r("-10:*", 100), (90, 10));
        assert_eq!(r("-10:-1", 100), (90, 10));
        assert_eq!(r("50:500", 100), (50, 50));
        assert_eq!(r("200:*", 100), (100, 0));
        assert_eq!(r("0:-1", 100), (0, 100));
        for bad in ["", "1", "a:b", "5:2", "-1:-5", "1:2:3"] {
            assert_eq!(EntityBytes::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}
