//! A resumable, push-style JSON scanner that hands a [`Visitor`] only the parts it asks for.
//!
//! GraphQL requests and responses are JSON documents of which slogate needs a handful of
//! shallow members (`operationName`, `query`, `data`, `errors[].extensions.code`). The scanner
//! walks the document as chunks arrive, in constant memory:
//!
//! * containers the visitor *tracks* are tokenised fully, and every member key is reported;
//! * containers the visitor *skips* (a `data` tree, `variables`) are crossed by counting
//!   brackets outside strings, without looking at keys or values;
//! * strings the visitor *captures* are decoded (escapes included) into a buffer bounded by
//!   the visitor's limit; all other strings are stepped over.
//!
//! The verdict does not depend on how the input is split: every state survives a chunk
//! boundary, including one inside an escape sequence.
//!
//! The API is here; the scanner's state machine is in `scanner`, the word-at-a-time and
//! 64-byte-block crossing of skipped values in `skip`, and the block masks (SSE2, the
//! crate's only `unsafe`) in `masks`.

mod masks;
mod scanner;
mod skip;

pub use scanner::JsonScanner;

/// Identifies a tracked container to the visitor; chosen by the visitor itself.
pub type Tag = u8;

/// The tag of the (virtual) parent of the top-level value.
pub const ROOT: Tag = 0;

/// How deep tracked containers may nest; the visitors in this crate track at most five levels.
pub const MAX_TRACKED_DEPTH: usize = 16;

/// The kind of a value, known from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `{`
    Object,
    /// `[`
    Array,
    /// `"`
    String,
    /// `-` or a digit
    Number,
    /// `true` or `false`
    Bool,
    /// `null`
    Null,
}

/// Where a value sits in its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    /// The top-level value.
    Root,
    /// An object member, with its decoded key.
    Member(&'a [u8]),
    /// An object member whose key is longer than any key a visitor compares against.
    Long,
    /// An array element.
    Index(u32),
}

/// What the visitor wants done with a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Step over it.
    Skip,
    /// If it is a container, tokenise it and report its members under this tag.
    Track(Tag),
    /// If it is a string, decode it and hand it over, keeping at most this many bytes.
    Capture(usize),
    /// If it is a string, hand over its raw bytes as they appear between the quotes, escapes
    /// untouched, keeping at most this many bytes. Much faster than decoding when the text is
    /// only compared or hashed; [`unescape`] decodes it when needed.
    CaptureRaw(usize),
}

/// Receives the parts of a document it asked for.
pub trait Visitor {
    /// A value starts under `parent` at `key`; say what to do with it.
    fn value(&mut self, parent: Tag, key: Key<'_>, kind: ValueKind) -> Interest;
    /// A captured string ended. `truncated` is set when it was longer than the limit.
    fn string(&mut self, parent: Tag, key: Key<'_>, value: &[u8], truncated: bool) {
        let _ = (parent, key, value, truncated);
    }
    /// A tracked container closed.
    fn end(&mut self, tag: Tag) {
        let _ = tag;
    }
}

/// Why a document was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// A byte that cannot appear where it was found.
    Unexpected,
    /// Tracked containers nested beyond [`MAX_TRACKED_DEPTH`].
    TooDeep,
    /// Something other than whitespace after the top-level value.
    TrailingData,
}

/// Where the scanner stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// More input is expected.
    Partial,
    /// One complete top-level value was read.
    Complete,
    /// The input is not JSON.
    Invalid(JsonError),
}

/// Appends `s` to `out` as a JSON string, quoted and escaped as serde_json writes it
/// (`\"`, `\\`, the short escapes, `\u00XX` for other control bytes; everything else
/// as is). Runs without an escape are copied whole, found eight bytes at a time.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = skip::find_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Decodes the raw content of a JSON string (as [`Interest::CaptureRaw`] hands it over).
/// `None` if it holds an invalid escape.
pub fn unescape(raw: &[u8]) -> Option<String> {
    struct One(Option<Vec<u8>>);
    impl Visitor for One {
        fn value(&mut self, _p: Tag, _k: Key<'_>, _kind: ValueKind) -> Interest {
            Interest::Capture(usize::MAX)
        }
        fn string(&mut self, _p: Tag, _k: Key<'_>, value: &[u8], _t: bool) {
            self.0 = Some(value.to_vec());
        }
    }
    if memchr::memchr(b'\\', raw).is_none() {
        return String::from_utf8(raw.to_vec()).ok();
    }
    let mut scanner = JsonScanner::new();
    let mut one = One(None);
    scanner.feed(b"\"", &mut one);
    scanner.feed(raw, &mut one);
    scanner.feed(b"\"", &mut one);
    if scanner.finish(&mut one) != Status::Complete {
        return None;
    }
    one.0.and_then(|v| String::from_utf8(v).ok())
}

/// A small deterministic generator for the randomised tests of the scanner and its skips.
#[cfg(test)]
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them_at_every_offset() {
        for len in 0..26 {
            for at in 0..len {
                for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', 'é', '\u{7f}', ' '] {
                    let s: String = (0..len)
                        .map(|i| if i == at { special } else { 'a' })
                        .collect();
                    let mut out = Vec::new();
                    write_string(&mut out, &s);
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        serde_json::to_string(&s).unwrap(),
                        "{s:?}"
                    );
                }
            }
        }
        // Every byte value below 0x80 at once, then after a clean run of eight.
        let all: String = (0u8..0x80).map(char::from).collect();
        for s in [all.clone(), format!("abcdefgh{all}")] {
            let mut out = Vec::new();
            write_string(&mut out, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }
    }
}
