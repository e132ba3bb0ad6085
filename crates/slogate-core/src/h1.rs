//! The app's HTTP/1.1 answers, framed: where a response head ends, how its body is delimited
//! (RFC 9112 §6.3), whether the connection can carry another request, and the chunked
//! transfer coding undone. Pure, fed bytes: the engine's own upstream client
//! (`upstream.client: slogate`) reads the socket and calls these.
//!
//! ```
//! use slogate_core::h1::{parse_head, ChunkedDecoder, Framing};
//!
//! let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
//! let mut slots = [std::mem::MaybeUninit::uninit(); 16];
//! let (head, headers) = parse_head(answer, &mut slots, false).unwrap().unwrap();
//! assert_eq!(headers[0].name, "Transfer-Encoding");
//! assert_eq!((head.status, head.framing, head.keep_alive), (200, Framing::Chunked, true));
//! let mut decoder = ChunkedDecoder::default();
//! let step = decoder.decode(&answer[head.len..]).unwrap();
//! assert_eq!(&answer[head.len..][step.data.unwrap()], b"hello");
//! ```

use std::mem::MaybeUninit;
use std::ops::Range;

/// The most header lines an answer may have (hyper's default).
pub const MAX_HEADERS: usize = 100;

/// The longest chunk-size line (with its extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// The most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body whatever the headers say (an answer to HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the app closes the connection.
    UntilClose,
}

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its length in bytes, blank line included: the body starts there.
    pub len: usize,
    /// The status code.
    pub status: u16,
    /// The minor HTTP version (`HTTP/1.0` or `HTTP/1.1`).
    pub minor: u8,
    /// How many of the caller's header slots were filled.
    pub headers: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection can carry another request after this answer.
    pub keep_alive: bool,
}

impl Head {
    /// An interim answer (1xx but `101 Switching Protocols`): a final one follows it.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// Why a response head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x (httparse's reason).
    Malformed(&'static str),
    /// More header lines than the caller has slots for.
    TooManyHeaders,
    /// A `Content-Length` that is not one non-negative integer.
    BadContentLength,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Malformed(why) => write!(f, "malformed response head: {why}"),
            HeadError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} response headers"),
            HeadError::BadContentLength => write!(f, "invalid Content-Length in the response"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Parses the response head at the start of `buf` into `slots`: `None` while it is
/// incomplete. `head_request` says the request was `HEAD` (its answer has no body). The
/// head's headers are `slots[..head.headers]`, initialised.
pub fn parse_head<'b, 'h>(
    buf: &'b [u8],
    slots: &'h mut [MaybeUninit<httparse::Header<'b>>],
    head_request: bool,
) -> Result<Option<(Head, &'h [httparse::Header<'b>])>, HeadError> {
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        slots,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Malformed(malformed(e))),
    };
    // A complete parse fills all three.
    let (status, minor) = (response.code.unwrap_or(0), response.version.unwrap_or(0));
    let count = response.headers.len();
    let (framing, keep_alive) = framing(
        status,
        minor,
        head_request,
        response.headers.iter().map(|h| (h.name, h.value)),
    )?;
    let head = Head {
        len,
        status,
        minor,
        headers: count,
        framing,
        keep_alive,
    };
    Ok(Some((head, response.headers)))
}

fn malformed(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::Version => "invalid HTTP version",
        _ => "invalid",
    }
}

/// How the body of an answer with these head fields is delimited, and whether its
/// connection can be reused after it (RFC 9112 §6.3 and §9.3).
pub fn framing<'h>(
    status: u16,
    minor: u8,
    head_request: bool,
    headers: impl Iterator<Item = (&'h str, &'h [u8])>,
) -> Result<(Framing, bool), HeadError> {
    let mut length: Option<u64> = None;
    let mut bad_length = false;
    // The last transfer coding named, if any.
    let mut last_coding: Option<&[u8]> = None;
    let mut close = false;
    for (name, value) in headers {
        // Only three names matter; their lengths tell most others apart at once.
        if !matches!(name.len(), 10 | 14 | 17) {
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            for item in value.split(|&b| b == b',') {
                match (decimal(trim(item)), length) {
                    (Some(n), None) => length = Some(n),
                    (Some(n), Some(m)) if n == m => {}
                    _ => bad_length = true,
                }
            }
            if value.is_empty() {
                bad_length = true;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for item in value.split(|&b| b == b',') {
                let coding = trim(item);
                if !coding.is_empty() {
                    last_coding = Some(coding);
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            close |= value
                .split(|&b| b == b',')
                .any(|t| trim(t).eq_ignore_ascii_case(b"close"));
        }
    }
    let reusable = minor == 1 && !close;
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok((Framing::None, reusable));
    }
    if let Some(coding) = last_coding {
        // Transfer-Encoding overrides Content-Length; a message with both may be an attempt
        // to smuggle one past the other, and its connection is not reused (§6.3, 3).
        let both = length.is_some() || bad_length;
        return Ok(if coding.eq_ignore_ascii_case(b"chunked") {
            (Framing::Chunked, reusable && !both)
        } else {
            (Framing::UntilClose, false)
        });
    }
    match (length, bad_length) {
        (_, true) => Err(HeadError::BadContentLength),
        (Some(n), false) => Ok((Framing::Length(n), reusable)),
        (None, false) => Ok((Framing::UntilClose, false)),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !matches!(c, b' ' | b'\t'));
    let end = b.iter().rposition(|c| !matches!(c, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &b[s..=e],
        _ => &[],
    }
}

fn decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

/// Undoes the chunked transfer coding, fed the body's bytes in pieces of any size.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// The chunk size being read, then the bytes of the chunk still to come.
    size: u64,
    /// Bytes of the current size line (digits, extensions) or of all trailers so far.
    line: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    /// The first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// More hex digits, or what ends them.
    Size,
    /// Whitespace after the size, before an extension or the line's end.
    SizeSpace,
    /// A chunk extension, skipped up to CR.
    Extension,
    /// LF after the size line.
    SizeLf,
    /// Chunk data.
    Data,
    /// CR after a chunk's data.
    DataCr,
    /// LF after a chunk's data.
    DataLf,
    /// The start of a trailer line, or the CR of the final blank line.
    TrailerStart,
    /// A trailer line, skipped up to CR.
    Trailer,
    /// LF ending a trailer line.
    TrailerLf,
    /// LF of the final blank line.
    EndLf,
    /// The body ended.
    Done,
}

/// What one [`ChunkedDecoder::decode`] call made of its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input used: the caller drops them before the next call.
    pub consumed: usize,
    /// The body bytes among them (a range of the input), if any.
    pub data: Option<Range<usize>>,
    /// The last chunk and the trailers were read: the body ended at `consumed`.
    pub done: bool,
}

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk size that is not hexadecimal, or a size line that does not end in CRLF.
    BadSize,
    /// A chunk size past 2^64.
    SizeOverflow,
    /// Chunk data not followed by CRLF.
    BadDataEnd,
    /// A size line or trailers longer than slogate accepts.
    TooLong,
    /// A trailer line that does not end in CRLF.
    BadTrailer,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChunkError::BadSize => "invalid chunk size line",
            ChunkError::SizeOverflow => "chunk size too large",
            ChunkError::BadDataEnd => "chunk data not followed by CRLF",
            ChunkError::TooLong => "chunk size line or trailers too long",
            ChunkError::BadTrailer => "invalid trailer line",
        })
    }
}

impl std::error::Error for ChunkError {}

impl ChunkedDecoder {
    /// Whether the body ended.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Reads `input` up to the end of the first piece of chunk data in it (returned as a
    /// range), or to its end, or to the end of the body.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == ChunkState::Data {
                let take = (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = ChunkState::DataCr;
                }
                return Ok(Decoded {
                    consumed: i + take,
                    data: Some(i..i + take),
                    done: false,
                });
            }
            let b = input[i];
            i += 1;
            self.state = match self.state {
                ChunkState::SizeStart | ChunkState::Size => match hex(b) {
                    Some(d) => {
                        if self.size >> 60 != 0 {
                            return Err(ChunkError::SizeOverflow);
                        }
                        self.size = self.size << 4 | u64::from(d);
                        ChunkState::Size
                    }
                    None if self.state == ChunkState::SizeStart => return Err(ChunkError::BadSize),
                    None => self.after_size(b)?,
                },
                ChunkState::SizeSpace => self.after_size(b)?,
                ChunkState::Extension => match b {
                    b'\r' => ChunkState::SizeLf,
                    b'\n' => return Err(ChunkError::BadSize),
                    _ => ChunkState::Extension,
                },
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadSize);
                    }
                    self.line = 0;
                    if self.size == 0 {
                        ChunkState::TrailerStart
                    } else {
                        ChunkState::Data
                    }
                }
                ChunkState::DataCr if b == b'\r' => ChunkState::DataLf,
                ChunkState::DataLf if b == b'\n' => {
                    self.line = 0;
                    ChunkState::SizeStart
                }
                ChunkState::DataCr | ChunkState::DataLf => return Err(ChunkError::BadDataEnd),
                ChunkState::TrailerStart => match b {
                    b'\r' => ChunkState::EndLf,
                    b'\n' => return Err(ChunkError::BadTrailer),
                    _ => ChunkState::Trailer,
                },
                ChunkState::Trailer => match b {
                    b'\r' => ChunkState::TrailerLf,
                    b'\n' => return Err(ChunkError::BadTrailer),
                    _ => ChunkState::Trailer,
                },
                ChunkState::TrailerLf if b == b'\n' => ChunkState::TrailerStart,
                ChunkState::EndLf if b == b'\n' => {
                    self.state = ChunkState::Done;
                    return Ok(Decoded {
                        consumed: i,
                        data: None,
                        done: true,
                    });
                }
                ChunkState::TrailerLf | ChunkState::EndLf => return Err(ChunkError::BadTrailer),
                ChunkState::Data => unreachable!("data is taken above"),
                ChunkState::Done => {
                    return Ok(Decoded {
                        consumed: i - 1,
                        data: None,
                        done: true,
                    })
                }
            };
            self.line += 1;
            let limit = if matches!(
                self.state,
                ChunkState::TrailerStart | ChunkState::Trailer | ChunkState::TrailerLf
            ) {
                MAX_TRAILERS
            } else {
                MAX_CHUNK_LINE
            };
            if self.line > limit {
                return Err(ChunkError::TooLong);
            }
        }
        Ok(Decoded {
            consumed: input.len(),
            data: None,
            done: self.state == ChunkState::Done,
        })
    }

    /// The state after a chunk size's digits, on `b`.
    fn after_size(&self, b: u8) -> Result<ChunkState, ChunkError> {
        Ok(match b {
            b' ' | b'\t' => ChunkState::SizeSpace,
            b';' => ChunkState::Extension,
            b'\r' => ChunkState::SizeLf,
            _ => return Err(ChunkError::BadSize),
        })
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(text: &str, head_request: bool) -> Result<Option<Head>, HeadError> {
        let mut slots = [MaybeUninit::uninit(); MAX_HEADERS];
        parse_head(text.as_bytes(), &mut slots, head_request).map(|h| h.map(|(h, _)| h))
    }

    fn framed(text: &str) -> (Framing, bool) {
        let h = head(text, false).unwrap().unwrap();
        (h.framing, h.keep_alive)
    }

    #[test]
    fn a_head_is_complete_only_with_its_blank_line() {
        let full = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for end in 0..full.len() - 2 {
            assert_eq!(head(&full[..end], false), Ok(None), "{end} bytes");
        }
        let h = head(full, false).unwrap().unwrap();
        assert_eq!(
            (h.len, h.status, h.minor, h.headers),
            (full.len() - 2, 200, 1, 1)
        );
    }

    #[test]
    fn bodies_are_delimited_as_rfc_9112_says() {
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        // Chunked not last: the body runs to the close.
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            (Framing::UntilClose, false)
        );
        // Both: chunked wins, the connection is not reused.
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, false)
        );
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\n\r\n"),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            framed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, Close\r\n\r\n"),
            (Framing::Length(5), false)
        );
        assert_eq!(
            framed("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n"),
            (Framing::Length(5), false)
        );
        for status in [
            "100 Continue",
            "103 Early Hints",
            "204 No Content",
            "304 Not Modified",
        ] {
            let text = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            assert_eq!(framed(&text), (Framing::None, true), "{status}");
        }
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::None);
        assert!(head("HTTP/1.1 103 Early Hints\r\n\r\n", false)
            .unwrap()
            .unwrap()
            .is_interim());
        assert!(!head("HTTP/1.1 101 Switching Protocols\r\n\r\n", false)
            .unwrap()
            .unwrap()
            .is_interim());
    }

    #[test]
    fn lengths_that_are_not_one_number_are_refused() {
        for cl in [
            "-1",
            "5, 6",
            "",
            "0x10",
            "+5",
            "1 2",
            "99999999999999999999",
        ] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(
                head(&text, false),
                Err(HeadError::BadContentLength),
                "{cl:?}"
            );
        }
        assert_eq!(
            head(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                false
            ),
            Err(HeadError::BadContentLength)
        );
        assert!(matches!(
            head("HTTP/1.1 2000 OK\r\n\r\n", false),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            head("SMTP 220 hello\r\n\r\n", false),
            Err(HeadError::Malformed(_))
        ));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: a\r\n")).collect();
        assert_eq!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n"), false),
            Err(HeadError::TooManyHeaders)
        );
    }

    /// Decodes `input` fed in the given pieces: the body, and where it ended (relative to
    /// the input), or the error.
    fn decode_split(input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Option<usize>), ChunkError> {
        let mut d = ChunkedDecoder::default();
        let mut body = Vec::new();
        let mut offset = 0;
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        bounds.push(input.len());
        bounds.sort_unstable();
        for end in bounds {
            while offset < end {
                let piece = &input[offset..end];
                let step = d.decode(piece)?;
                if let Some(r) = step.data {
                    body.extend_from_slice(&piece[r]);
                }
                offset += step.consumed;
                if step.done {
                    return Ok((body, Some(offset)));
                }
                if step.consumed == 0 {
                    break;
                }
            }
        }
        Ok((body, None))
    }

    fn encode(chunks: &[Vec<u8>], ext: bool, trailers: &[(String, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            out.extend_from_slice(format!("{:X}", c.len()).as_bytes());
            if ext {
                out.extend_from_slice(b" ;name=\"va;lue\"");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for (k, v) in trailers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn a_chunked_body_is_undone() {
        let input = b"5\r\nhello\r\na;x=y\r\n, world!!!\r\n0\r\nEtag: x\r\n\r\nNEXT";
        let (body, end) = decode_split(input, &[]).unwrap();
        assert_eq!(body, b"hello, world!!!");
        assert_eq!(end, Some(input.len() - 4));
        // Byte by byte, the same.
        let cuts: Vec<usize> = (0..input.len()).collect();
        assert_eq!(decode_split(input, &cuts).unwrap(), (body, end));
    }

    #[test]
    fn broken_chunked_bodies_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"5\r\nhello\rX",
            b"5 x\r\n",
            b"11111111111111111\r\n",
            b"0\r\nbad\nline\r\n\r\n",
            b"0\r\n\rX",
        ] {
            assert!(
                decode_split(bad, &[]).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE));
        assert_eq!(decode_split(long.as_bytes(), &[]), Err(ChunkError::TooLong));
        let trailers = format!("0\r\n{}\r\n\r\n", "x".repeat(MAX_TRAILERS));
        assert_eq!(
            decode_split(trailers.as_bytes(), &[]),
            Err(ChunkError::TooLong)
        );
        // The largest size that fits is accepted (its data just never comes here).
        assert_eq!(
            decode_split(b"FFFFFFFFFFFFFFFF\r\n", &[]),
            Ok((vec![], None))
        );
    }

    proptest! {
        #[test]
        fn the_body_is_the_same_however_it_is_split(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
            ext in any::<bool>(),
            trailers in prop::collection::vec(("[A-Za-z-]{1,10}", "[ -~]{0,20}"), 0..3),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            tail in prop::collection::vec(any::<u8>(), 0..20),
        ) {
            let mut input = encode(&chunks, ext, &trailers);
            let end = input.len();
            input.extend_from_slice(&tail);
            let (body, ended) = decode_split(&input, &cuts).unwrap();
            prop_assert_eq!(body, chunks.concat());
            prop_assert_eq!(ended, Some(end));
        }

        #[test]
        fn damaged_input_gets_the_same_verdict_however_it_is_split(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 0..4),
            at in any::<usize>(),
            byte in any::<u8>(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut input = encode(&chunks, false, &[]);
            let at = at % input.len();
            input[at] = byte;
            let whole = decode_split(&input, &[]);
            prop_assert_eq!(decode_split(&input, &cuts), whole);
        }

        #[test]
        fn any_head_is_parsed_or_refused_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let mut slots = [MaybeUninit::uninit(); MAX_HEADERS];
            let _ = parse_head(&bytes, &mut slots, false);
        }
    }
}
