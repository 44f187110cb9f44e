//! A streaming, bounded `multipart/form-data` parser for `add` (pure: bytes in, events out).
//!
//! Fed the body chunk by chunk, it reports each part's start (with its file name, percent-
//! decoded as Kubo clients encode paths, and content type), its data as it arrives, and its
//! end; it never holds more than one part header (at most [`MAX_HEADER`] bytes) plus a
//! delimiter's length of data. Malformed input is an error naming the problem: a missing
//! boundary, a header block too large, too many parts, a body that ends inside a part.

use memchr::memmem;

/// Largest header block of one part.
pub const MAX_HEADER: usize = 8 << 10;
/// Most parts one request may hold.
pub const MAX_PARTS: usize = 100_000;
/// Longest boundary (RFC 2046 says 70).
const MAX_BOUNDARY: usize = 200;

/// What the parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    Start(PartHead),
    Data(&'a [u8]),
    End,
}

/// The headers of a part that matter to `add`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartHead {
    /// `filename` of `Content-Disposition`, percent-decoded; empty if absent.
    pub file_name: String,
    /// `Content-Type`, lower-cased, without parameters; empty if absent.
    pub content_type: String,
}

/// Malformed or oversized multipart input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MultipartError {
    #[error("Content-Type must be multipart/form-data with a boundary")]
    NoBoundary,
    #[error("a part's headers exceed {MAX_HEADER} bytes")]
    HeaderTooLarge,
    #[error("more than {MAX_PARTS} parts in one request")]
    TooManyParts,
    #[error("malformed part header line {0:?}")]
    BadHeader(String),
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    #[error("the multipart body ended inside a part (no closing boundary)")]
    Truncated,
}

impl MultipartError {
    /// Whether the request was too large rather than malformed.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::HeaderTooLarge | Self::TooManyParts)
    }
}

/// The boundary of a `multipart/form-data` Content-Type.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let mut params = content_type.split(';');
    let kind = params.next().unwrap_or("").trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NoBoundary);
    }
    let boundary = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .ok_or(MultipartError::NoBoundary)?;
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return Err(MultipartError::NoBoundary);
    }
    Ok(boundary)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter: `--` ends the body, CRLF starts a part.
    AfterDelimiter,
    Headers,
    Body,
    Done,
}

/// The parser; see the module doc.
pub struct Parser {
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    state: State,
    parts: usize,
}

impl Parser {
    pub fn new(boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Self {
            delimiter,
            // The first delimiter has no CRLF before it; pretend it has.
            buf: b"\r\n".to_vec(),
            state: State::Preamble,
            parts: 0,
        }
    }

    /// Consume `chunk`, reporting events to `emit` (which may fail, stopping the parse).
    pub fn feed<E: From<MultipartError>>(
        &mut self,
        chunk: &[u8],
        emit: &mut dyn FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            match self.state {
                State::Done => {
                    pos = self.buf.len(); // epilogue: ignored
                    break;
                }
                State::Preamble => match memmem::find(rest, &self.delimiter) {
                    Some(i) => {
                        pos += i + self.delimiter.len();
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        if rest.len() > MAX_HEADER {
                            return Err(MultipartError::Malformed("no boundary found").into());
                        }
                        break;
                    }
                },
                State::AfterDelimiter => {
                    if rest.len() < 2 {
                        break;
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Done;
                    } else if rest.starts_with(b"\r\n") {
                        pos += 2;
                        self.parts += 1;
                        if self.parts > MAX_PARTS {
                            return Err(MultipartError::TooManyParts.into());
                        }
                        self.state = State::Headers;
                    } else {
                        return Err(MultipartError::Malformed("bad delimiter line").into());
                    }
                }
                State::Headers => match memmem::find(rest, b"\r\n\r\n") {
                    Some(i) if i > MAX_HEADER => return Err(MultipartError::HeaderTooLarge.into()),
                    Some(i) => {
                        let head = parse_head(&rest[..i])?;
                        pos += i + 4;
                        self.state = State::Body;
                        emit(Event::Start(head))?;
                    }
                    None if rest.starts_with(b"\r\n") => {
                        // A part with no headers at all.
                        pos += 2;
                        self.state = State::Body;
                        emit(Event::Start(PartHead::default()))?;
                    }
                    None => {
                        if rest.len() > MAX_HEADER {
                            return Err(MultipartError::HeaderTooLarge.into());
                        }
                        break;
                    }
                },
                State::Body => match memmem::find(rest, &self.delimiter) {
                    Some(i) => {
                        if i > 0 {
                            emit(Event::Data(&rest[..i]))?;
                        }
                        emit(Event::End)?;
                        pos += i + self.delimiter.len();
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        // Keep what could be the start of a delimiter.
                        let safe = rest.len().saturating_sub(self.delimiter.len() - 1);
                        if safe > 0 {
                            emit(Event::Data(&rest[..safe]))?;
                            pos += safe;
                        }
                        break;
                    }
                },
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }

    /// The body has ended: fail unless it was complete.
    pub fn finish(&self) -> Result<(), MultipartError> {
        match self.state {
            State::Done => Ok(()),
            State::Preamble => Err(MultipartError::Malformed("no boundary found")),
            _ => Err(MultipartError::Truncated),
        }
    }
}

fn parse_head(bytes: &[u8]) -> Result<PartHead, MultipartError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| MultipartError::Malformed("part headers are not UTF-8"))?;
    let mut head = PartHead::default();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| MultipartError::BadHeader(line.chars().take(80).collect()))?;
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("content-type") {
            let kind = value.split(';').next().unwrap_or("");
            head.content_type = kind.trim().to_ascii_lowercase();
        } else if name.trim().eq_ignore_ascii_case("content-disposition")
            && let Some(raw) = disposition_param(value, "filename")
        {
            head.file_name = percent_encoding::percent_decode_str(&raw)
                .decode_utf8()
                .map_err(|_| MultipartError::Malformed("file name is not UTF-8"))?
                .into_owned();
        }
    }
    Ok(head)
}

/// A parameter of a Content-Disposition value, unquoted.
fn disposition_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Owned {
        Start(PartHead),
        Data(Vec<u8>),
        End,
    }

    /// Parse `body` fed in chunks of `step` bytes, merging adjacent data events.
    fn parse(body: &[u8], step: usize) -> Result<Vec<Owned>, MultipartError> {
        let mut parser = Parser::new("XyZ");
        let mut out: Vec<Owned> = Vec::new();
        for chunk in body.chunks(step) {
            parser.feed::<MultipartError>(chunk, &mut |e| {
                match e {
                    Event::Start(h) => out.push(Owned::Start(h)),
                    Event::Data(d) => match out.last_mut() {
                        Some(Owned::Data(prev)) => prev.extend_from_slice(d),
                        _ => out.push(Owned::Data(d.to_vec())),
                    },
                    Event::End => out.push(Owned::End),
                }
                Ok(())
            })?;
        }
        parser.finish()?;
        Ok(out)
    }

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d%2Fa%20b.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--Xy world\r\n--XyZ--\r\n";

    #[test]
    fn parts_come_out_whole_whatever_the_chunking() {
        let want = vec![
            Owned::Start(PartHead {
                file_name: "d".into(),
                content_type: "application/x-directory".into(),
            }),
            Owned::End,
            Owned::Start(PartHead {
                file_name: "d/a b.txt".into(),
                content_type: "application/octet-stream".into(),
            }),
            Owned::Data(b"hello\r\n--Xy world".to_vec()),
            Owned::End,
        ];
        for step in [1, 2, 3, 7, 64, BODY.len()] {
            assert_eq!(parse(BODY, step).unwrap(), want, "step {step}");
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(
            parse(&BODY[..BODY.len() - 12], 5),
            Err(MultipartError::Truncated)
        );
        assert!(matches!(
            parse(b"no boundary here", 4),
            Err(MultipartError::Malformed(_))
        ));
        let mut huge = b"--XyZ\r\nX-Big: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEADER + 10));
        assert_eq!(parse(&huge, 1000), Err(MultipartError::HeaderTooLarge));
        assert!(matches!(
            parse(b"--XyZ\r\nnot a header\r\n\r\nx\r\n--XyZ--", 100),
            Err(MultipartError::BadHeader(_))
        ));
        assert!(matches!(
            parse(b"--XyZ!!", 100),
            Err(MultipartError::Malformed(_))
        ));
    }

    #[test]
    fn boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\"").unwrap(),
            "abc"
        );
        assert_eq!(boundary("multipart/form-data;boundary=x").unwrap(), "x");
        assert_eq!(boundary("text/plain"), Err(MultipartError::NoBoundary));
        assert_eq!(
            boundary("multipart/form-data"),
            Err(MultipartError::NoBoundary)
        );
    }
}
