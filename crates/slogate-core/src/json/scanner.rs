//! The scanner's state machine: tokenises tracked containers, steps over or captures
//! strings, and hands skipped values to [`super::skip`].

use arrayvec::ArrayVec;

#[cfg(target_arch = "x86_64")]
use super::masks::Wide;
use super::masks::{Baseline, BlockOps};
use super::skip::{
    cross_block_with, cross_word, find_string_special, find_structure, word, Block, SkipState,
};
use super::*;

/// Longest member key kept for comparison; longer keys are reported as [`Key::Long`].
const MAX_KEY_LEN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting a value (top level, after `:` or after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ArrayStart,
    /// After `{`: a key or `}`.
    ObjectStart,
    /// After `,` in an object: a key.
    Key,
    /// Inside a member key.
    KeyString,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    AfterValue,
    /// Inside a string value.
    ValueString,
    /// Inside `true`, `false` or `null`.
    Literal,
    /// Inside a number.
    Number,
    /// Crossing a skipped container.
    Skip,
    Done,
    Failed(JsonError),
}

/// Where a number stands in the JSON number grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumberState {
    /// After `-`.
    Sign,
    /// After a leading `0`.
    Zero,
    /// In the integer digits.
    Int,
    /// After `.`.
    Dot,
    /// In the fraction digits.
    Frac,
    /// After `e`/`E`.
    Exp,
    /// After the exponent's sign.
    ExpSign,
    /// In the exponent digits.
    ExpDigits,
}

impl NumberState {
    fn start(b: u8) -> NumberState {
        match b {
            b'-' => NumberState::Sign,
            b'0' => NumberState::Zero,
            _ => NumberState::Int,
        }
    }

    /// The state after `b`, or `None` if `b` ends the number.
    fn next(self, b: u8) -> Option<NumberState> {
        use NumberState::*;
        Some(match (self, b) {
            (Sign, b'0') => Zero,
            (Sign, b'1'..=b'9') | (Int, b'0'..=b'9') => Int,
            (Zero | Int, b'.') => Dot,
            (Dot | Frac, b'0'..=b'9') => Frac,
            (Zero | Int | Frac, b'e' | b'E') => Exp,
            (Exp, b'+' | b'-') => ExpSign,
            (Exp | ExpSign | ExpDigits, b'0'..=b'9') => ExpDigits,
            _ => return None,
        })
    }

    fn complete(self) -> bool {
        matches!(
            self,
            NumberState::Zero | NumberState::Int | NumberState::Frac | NumberState::ExpDigits
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    tag: Tag,
    object: bool,
    index: u32,
}

/// Where decoded string bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    Key,
    Capture,
    /// Raw bytes between the quotes.
    Raw,
    Discard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// Inside `\uXXXX`: digits read so far and their value.
    Unicode(u8, u16),
}

/// The scanner. Create one per document, feed it chunks, then call [`JsonScanner::finish`].
#[derive(Debug)]
pub struct JsonScanner {
    state: State,
    /// The tracked containers, innermost last (bounded: no allocation per document).
    stack: ArrayVec<Frame, MAX_TRACKED_DEPTH>,
    key: [u8; MAX_KEY_LEN],
    key_len: usize,
    key_long: bool,
    escape: Escape,
    high_surrogate: Option<u16>,
    sink: Sink,
    capture: Vec<u8>,
    capture_limit: usize,
    capture_truncated: bool,
    literal: &'static [u8],
    literal_pos: usize,
    number: NumberState,
    skip_depth: u32,
    skip_in_string: bool,
    skip_escaped: bool,
    /// Backslashes ending the raw string content seen so far (their parity says whether the
    /// next quote is escaped).
    raw_backslashes: usize,
}

impl Default for JsonScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonScanner {
    /// A scanner at the start of a document.
    pub fn new() -> Self {
        JsonScanner {
            state: State::Value,
            stack: ArrayVec::new_const(),
            key: [0; MAX_KEY_LEN],
            key_len: 0,
            key_long: false,
            escape: Escape::None,
            high_surrogate: None,
            sink: Sink::Discard,
            capture: Vec::new(),
            capture_limit: 0,
            capture_truncated: false,
            literal: b"",
            literal_pos: 0,
            number: NumberState::Sign,
            skip_depth: 0,
            skip_in_string: false,
            skip_escaped: false,
            raw_backslashes: 0,
        }
    }

    /// Where the scanner stands after the input fed so far.
    pub fn status(&self) -> Status {
        match self.state {
            State::Done => Status::Complete,
            State::Failed(e) => Status::Invalid(e),
            _ => Status::Partial,
        }
    }

    /// Feed the next chunk. Returns the status after it.
    pub fn feed<V: Visitor>(&mut self, input: &[u8], visitor: &mut V) -> Status {
        let mut i = 0;
        while i < input.len() {
            i = match self.state {
                State::Failed(_) => break,
                State::Skip => self.skip(input, i),
                State::KeyString => self.string_body(input, i, visitor),
                State::ValueString => self.string_body(input, i, visitor),
                State::Literal => self.literal_body(input, i),
                State::Number => self.number_body(input, i),
                _ => self.structural(input, i, visitor),
            };
        }
        self.status()
    }

    /// The input ended. A number at the very end of the document is complete only now.
    pub fn finish<V: Visitor>(&mut self, visitor: &mut V) -> Status {
        let _ = visitor;
        if self.state == State::Number && self.stack.is_empty() && self.number.complete() {
            self.state = State::Done;
        }
        self.status()
    }

    fn fail(&mut self, e: JsonError) -> usize {
        self.state = State::Failed(e);
        usize::MAX
    }

    /// The parent tag and key of the value about to start.
    fn position(&self) -> (Tag, Key<'_>) {
        match self.stack.last() {
            None => (ROOT, Key::Root),
            Some(f) if f.object => {
                if self.key_long {
                    (f.tag, Key::Long)
                } else {
                    (f.tag, Key::Member(&self.key[..self.key_len]))
                }
            }
            Some(f) => (f.tag, Key::Index(f.index)),
        }
    }

    /// Handles one structural byte (whitespace skipped first). Returns the next index.
    fn structural<V: Visitor>(&mut self, input: &[u8], mut i: usize, visitor: &mut V) -> usize {
        while i < input.len() && matches!(input[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        let Some(&b) = input.get(i) else {
            return i;
        };
        match self.state {
            State::Value => self.begin_value(b, i, visitor),
            State::ArrayStart if b == b']' => self.close(false, i, visitor),
            State::ArrayStart => self.begin_value(b, i, visitor),
            State::ObjectStart if b == b'}' => self.close(true, i, visitor),
            State::ObjectStart | State::Key if b == b'"' => {
                self.key_len = 0;
                self.key_long = false;
                self.sink = Sink::Key;
                self.state = State::KeyString;
                i + 1
            }
            State::Colon if b == b':' => {
                self.state = State::Value;
                i + 1
            }
            State::AfterValue => self.after_value(b, i, visitor),
            State::Done => self.fail(JsonError::TrailingData),
            _ => self.fail(JsonError::Unexpected),
        }
    }

    fn after_value<V: Visitor>(&mut self, b: u8, i: usize, visitor: &mut V) -> usize {
        let Some(frame) = self.stack.last_mut() else {
            return self.fail(JsonError::TrailingData);
        };
        match (b, frame.object) {
            (b',', true) => {
                self.state = State::Key;
                i + 1
            }
            (b',', false) => {
                frame.index = frame.index.saturating_add(1);
                self.state = State::Value;
                i + 1
            }
            (b'}', true) => self.close(true, i, visitor),
            (b']', false) => self.close(false, i, visitor),
            _ => self.fail(JsonError::Unexpected),
        }
    }

    fn close<V: Visitor>(&mut self, object: bool, i: usize, visitor: &mut V) -> usize {
        match self.stack.pop() {
            Some(frame) if frame.object == object => {
                visitor.end(frame.tag);
                self.value_done();
                i + 1
            }
            _ => self.fail(JsonError::Unexpected),
        }
    }

    fn value_done(&mut self) {
        self.state = if self.stack.is_empty() {
            State::Done
        } else {
            State::AfterValue
        };
    }

    fn begin_value<V: Visitor>(&mut self, b: u8, i: usize, visitor: &mut V) -> usize {
        let kind = match b {
            b'{' => ValueKind::Object,
            b'[' => ValueKind::Array,
            b'"' => ValueKind::String,
            b't' | b'f' => ValueKind::Bool,
            b'n' => ValueKind::Null,
            b'-' | b'0'..=b'9' => ValueKind::Number,
            _ => return self.fail(JsonError::Unexpected),
        };
        let (parent, key) = self.position();
        let interest = visitor.value(parent, key, kind);
        match kind {
            ValueKind::Object | ValueKind::Array => match interest {
                Interest::Track(tag) => {
                    if self.stack.len() >= MAX_TRACKED_DEPTH {
                        return self.fail(JsonError::TooDeep);
                    }
                    let object = kind == ValueKind::Object;
                    self.stack.push(Frame {
                        tag,
                        object,
                        index: 0,
                    });
                    self.state = if object {
                        State::ObjectStart
                    } else {
                        State::ArrayStart
                    };
                }
                _ => {
                    self.skip_depth = 1;
                    self.skip_in_string = false;
                    self.skip_escaped = false;
                    self.state = State::Skip;
                }
            },
            ValueKind::String => {
                self.sink = match interest {
                    Interest::Capture(limit) | Interest::CaptureRaw(limit) => {
                        // No room reserved ahead: a string inside one chunk (nearly every
                        // one) is then one allocation of its own size, where a reserve of a
                        // few KB took malloc's slow path for every request's first capture.
                        self.capture.clear();
                        self.capture_limit = limit;
                        self.capture_truncated = false;
                        self.raw_backslashes = 0;
                        if matches!(interest, Interest::CaptureRaw(_)) {
                            Sink::Raw
                        } else {
                            Sink::Capture
                        }
                    }
                    _ => Sink::Discard,
                };
                self.state = State::ValueString;
            }
            ValueKind::Bool | ValueKind::Null => {
                self.literal = match b {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                self.literal_pos = 1;
                self.state = State::Literal;
            }
            ValueKind::Number => {
                self.number = NumberState::start(b);
                self.state = State::Number;
            }
        }
        i + 1
    }

    fn literal_body(&mut self, input: &[u8], mut i: usize) -> usize {
        while i < input.len() && self.literal_pos < self.literal.len() {
            if input[i] != self.literal[self.literal_pos] {
                return self.fail(JsonError::Unexpected);
            }
            self.literal_pos += 1;
            i += 1;
        }
        if self.literal_pos == self.literal.len() {
            self.value_done();
        }
        i
    }

    fn number_body(&mut self, input: &[u8], mut i: usize) -> usize {
        while i < input.len() {
            match self.number.next(input[i]) {
                Some(next) => {
                    self.number = next;
                    i += 1;
                }
                None if self.number.complete() => {
                    // The delimiter belongs to the container; a top-level number followed by
                    // anything but whitespace is trailing data, which `structural` reports.
                    self.value_done();
                    return i;
                }
                None => return self.fail(JsonError::Unexpected),
            }
        }
        i
    }

    /// Crosses a skipped container by counting brackets outside strings.
    #[inline]
    #[allow(unsafe_code)]
    fn skip(&mut self, input: &[u8], i: usize) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let Some(wide) = Wide::detect() {
            // SAFETY: `skip_wide` needs AVX2, PCLMULQDQ and POPCNT, which `wide` proves.
            return unsafe { self.skip_wide(wide, input, i) };
        }
        self.skip_with(Baseline, input, i)
    }

    /// [`Self::skip_with`] compiled for the CPUs that have the [`Wide`] operations (POPCNT
    /// counts the brackets too).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,pclmulqdq,popcnt")]
    fn skip_wide(&mut self, wide: Wide, input: &[u8], i: usize) -> usize {
        self.skip_with(wide, input, i)
    }

    #[inline(always)]
    fn skip_with<O: BlockOps>(&mut self, ops: O, input: &[u8], mut i: usize) -> usize {
        let n = input.len();
        let mut depth = self.skip_depth;
        let mut in_string = self.skip_in_string;
        let mut escaped = self.skip_escaped;
        // After a block that had to be crossed byte by byte, the next 64 bytes go the slow
        // way too, so the closing block is not retried at every byte.
        let mut slow_until = i;
        while i < n {
            // Fastest path: 64 bytes at a time, escapes included.
            let block = input
                .get(i..i + 64)
                .and_then(|b| <&Block>::try_from(b).ok());
            if let (true, Some(block)) = (i >= slow_until, block) {
                let state = SkipState {
                    depth,
                    in_string,
                    escaped,
                };
                if let Some(next) = cross_block_with(ops, block, state) {
                    depth = next.depth;
                    in_string = next.in_string;
                    escaped = next.escaped;
                    i += 64;
                    continue;
                }
                slow_until = i + 64;
            }
            // Fast path: eight bytes without a backslash that cannot close the skipped value
            // are crossed with word arithmetic, whatever their mix of strings and brackets.
            if !escaped && i + 8 <= n {
                if let Some((d, s)) = cross_word(word(input, i), depth, in_string) {
                    depth = d;
                    in_string = s;
                    i += 8;
                    continue;
                }
            }
            if in_string {
                if escaped {
                    escaped = false;
                    i += 1;
                    continue;
                }
                i = find_string_special(input, i);
                if i >= n {
                    break;
                }
                if input[i] == b'\\' {
                    escaped = true;
                } else {
                    in_string = false;
                }
                i += 1;
                continue;
            }
            i = find_structure(input, i);
            if i >= n {
                break;
            }
            match input[i] {
                b'"' => in_string = true,
                b'{' | b'[' => depth = depth.saturating_add(1),
                _ => {
                    depth -= 1;
                    if depth == 0 {
                        self.skip_depth = 0;
                        self.value_done();
                        return i + 1;
                    }
                }
            }
            i += 1;
        }
        self.skip_depth = depth;
        self.skip_in_string = in_string;
        self.skip_escaped = escaped;
        i
    }

    fn push_decoded(&mut self, bytes: &[u8]) {
        match self.sink {
            Sink::Discard => {}
            Sink::Key => {
                let room = MAX_KEY_LEN - self.key_len;
                if bytes.len() > room {
                    self.key_long = true;
                } else {
                    self.key[self.key_len..self.key_len + bytes.len()].copy_from_slice(bytes);
                    self.key_len += bytes.len();
                }
            }
            Sink::Capture | Sink::Raw => {
                let room = self.capture_limit.saturating_sub(self.capture.len());
                if bytes.len() > room {
                    self.capture.extend_from_slice(&bytes[..room]);
                    self.capture_truncated = true;
                } else {
                    self.capture.extend_from_slice(bytes);
                }
            }
        }
    }

    fn push_char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.push_decoded(c.encode_utf8(&mut buf).as_bytes());
    }

    /// Pushes a decoded `\uXXXX` code unit, pairing surrogates.
    fn push_code_unit(&mut self, unit: u16) {
        match (self.high_surrogate.take(), unit) {
            (None, 0xD800..=0xDBFF) => self.high_surrogate = Some(unit),
            (Some(high), 0xDC00..=0xDFFF) => {
                let c = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                self.push_char(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            (Some(_), _) => {
                self.push_char(char::REPLACEMENT_CHARACTER);
                self.push_code_unit(unit);
            }
            (None, _) => self
                .push_char(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER)),
        }
    }

    fn flush_surrogate(&mut self) {
        if self.high_surrogate.take().is_some() {
            self.push_char(char::REPLACEMENT_CHARACTER);
        }
    }

    /// Reads string content (key or value) up to and including the closing quote.
    /// Raw capture: find the closing quote with memchr, telling escaped quotes by the parity
    /// of the backslashes before them; copy the bytes untouched. A string that starts in
    /// this chunk (nothing carried from the last) and ends in it is handed to the visitor
    /// from the input itself: no copy through the capture buffer, which would grow from
    /// nothing for each request's document.
    fn raw_string_body<V: Visitor>(
        &mut self,
        input: &[u8],
        mut i: usize,
        visitor: &mut V,
    ) -> usize {
        let fresh = self.capture.is_empty() && !self.capture_truncated && self.raw_backslashes == 0;
        let start = fresh.then_some(i);
        while i < input.len() {
            let rest = &input[i..];
            let Some(off) = memchr::memchr(b'"', rest) else {
                self.count_backslashes(rest);
                self.push_decoded(&input[start.unwrap_or(i)..]);
                return input.len();
            };
            self.count_backslashes(&rest[..off]);
            let escaped = self.raw_backslashes % 2 == 1;
            if escaped {
                if start.is_none() {
                    self.push_decoded(&rest[..=off]);
                }
                self.raw_backslashes = 0;
                i += off + 1;
                continue;
            }
            match start {
                Some(start) => self.raw_string_closed(&input[start..i + off], visitor),
                None => {
                    self.push_decoded(&rest[..off]);
                    self.string_closed(visitor);
                }
            }
            return i + off + 1;
        }
        // The chunk ended just after an escaped quote: what it held of the string is kept.
        if let Some(start) = start {
            self.push_decoded(&input[start..]);
        }
        i
    }

    /// [`Self::string_closed`] for a raw capture held whole in the input: truncated to the
    /// limit as [`Self::push_decoded`] would have.
    fn raw_string_closed<V: Visitor>(&mut self, value: &[u8], visitor: &mut V) {
        let truncated = value.len() > self.capture_limit;
        let value = &value[..value.len().min(self.capture_limit)];
        let (parent, key) = self.position();
        visitor.string(parent, key, value, truncated);
        self.sink = Sink::Discard;
        self.value_done();
    }

    fn count_backslashes(&mut self, run: &[u8]) {
        let trailing = run.iter().rev().take_while(|&&b| b == b'\\').count();
        if trailing == run.len() {
            self.raw_backslashes += trailing;
        } else {
            self.raw_backslashes = trailing;
        }
    }

    fn string_body<V: Visitor>(&mut self, input: &[u8], mut i: usize, visitor: &mut V) -> usize {
        if self.sink == Sink::Raw {
            return self.raw_string_body(input, i, visitor);
        }
        while i < input.len() {
            match self.escape {
                Escape::Backslash => {
                    let b = input[i];
                    i += 1;
                    let decoded = match b {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            self.escape = Escape::Unicode(0, 0);
                            continue;
                        }
                        _ => return self.fail(JsonError::Unexpected),
                    };
                    self.escape = Escape::None;
                    self.flush_surrogate();
                    self.push_decoded(&[decoded]);
                    continue;
                }
                Escape::Unicode(n, acc) => {
                    let digit = match input[i] {
                        d @ b'0'..=b'9' => d - b'0',
                        d @ b'a'..=b'f' => d - b'a' + 10,
                        d @ b'A'..=b'F' => d - b'A' + 10,
                        _ => return self.fail(JsonError::Unexpected),
                    };
                    i += 1;
                    let acc = (acc << 4) | u16::from(digit);
                    if n == 3 {
                        self.escape = Escape::None;
                        self.push_code_unit(acc);
                    } else {
                        self.escape = Escape::Unicode(n + 1, acc);
                    }
                    continue;
                }
                Escape::None => {}
            }
            let rest = &input[i..];
            let special = find_string_special(input, i);
            match (special < input.len()).then(|| special - i) {
                None => {
                    if !rest.is_empty() {
                        self.flush_surrogate();
                    }
                    self.push_decoded(rest);
                    return input.len();
                }
                Some(off) => {
                    if off > 0 {
                        self.flush_surrogate();
                    }
                    self.push_decoded(&rest[..off]);
                    i += off + 1;
                    if rest[off] == b'\\' {
                        self.escape = Escape::Backslash;
                    } else {
                        self.flush_surrogate();
                        self.string_closed(visitor);
                        return i;
                    }
                }
            }
        }
        i
    }

    fn string_closed<V: Visitor>(&mut self, visitor: &mut V) {
        if self.state == State::KeyString {
            self.state = State::Colon;
            return;
        }
        if matches!(self.sink, Sink::Capture | Sink::Raw) {
            let captured = std::mem::take(&mut self.capture);
            let (parent, key) = self.position();
            visitor.string(parent, key, &captured, self.capture_truncated);
            self.capture = captured;
            self.capture.clear();
        }
        self.sink = Sink::Discard;
        self.value_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records everything as a flat event list; tracks every container, captures every string.
    #[derive(Default)]
    struct Recorder {
        events: Vec<String>,
        next_tag: Tag,
    }

    fn key_str(key: Key<'_>) -> String {
        match key {
            Key::Root => "root".into(),
            Key::Member(k) => String::from_utf8_lossy(k).into_owned(),
            Key::Long => "(long)".into(),
            Key::Index(n) => format!("[{n}]"),
        }
    }

    impl Visitor for Recorder {
        fn value(&mut self, parent: Tag, key: Key<'_>, kind: ValueKind) -> Interest {
            self.events
                .push(format!("{parent}:{}:{kind:?}", key_str(key)));
            match kind {
                ValueKind::String => Interest::Capture(8),
                ValueKind::Object | ValueKind::Array => {
                    self.next_tag += 1;
                    Interest::Track(self.next_tag)
                }
                _ => Interest::Skip,
            }
        }
        fn string(&mut self, _parent: Tag, _key: Key<'_>, value: &[u8], truncated: bool) {
            self.events.push(format!(
                "={}{}",
                String::from_utf8_lossy(value),
                if truncated { "…" } else { "" }
            ));
        }
        fn end(&mut self, tag: Tag) {
            self.events.push(format!("end{tag}"));
        }
    }

    fn run_split(doc: &[u8], split: usize) -> (Status, Vec<String>) {
        let mut s = JsonScanner::new();
        let mut r = Recorder::default();
        for chunk in doc.chunks(split.max(1)) {
            s.feed(chunk, &mut r);
        }
        (s.finish(&mut r), r.events)
    }

    fn run(doc: &str) -> (Status, Vec<String>) {
        let whole = run_split(doc.as_bytes(), doc.len().max(1));
        for split in 1..doc.len().max(2) {
            assert_eq!(
                run_split(doc.as_bytes(), split),
                whole,
                "split {split} of {doc}"
            );
        }
        whole
    }

    #[test]
    fn reports_members_and_captures() {
        let (st, ev) =
            run(r#" {"a": [1, "x\"y", true], "b\u0041": {"c": null}, "d": "0123456789"} "#);
        assert_eq!(st, Status::Complete);
        assert_eq!(
            ev,
            vec![
                "0:root:Object",
                "1:a:Array",
                "2:[0]:Number",
                "2:[1]:String",
                "=x\"y",
                "2:[2]:Bool",
                "end2",
                "1:bA:Object",
                "3:c:Null",
                "end3",
                "1:d:String",
                "=01234567…",
                "end1"
            ]
        );
    }

    #[test]
    fn decodes_surrogate_pairs_and_bad_surrogates() {
        let (_, ev) = run(r#"["\ud83d\ude00", "\ud83dx", "\u00e9"]"#);
        assert_eq!(ev[2], "=😀");
        assert_eq!(ev[4], "=\u{fffd}x");
        assert_eq!(ev[6], "=é");
    }

    #[test]
    fn rejects_what_is_not_json() {
        for doc in [
            "<html>",
            "{\"a\" 1}",
            "{\"a\":1,}x",
            "[1 2]",
            "{\"a\":tru}",
            "{\"a\":1]",
            "[\"\\x\"]",
            "{} {}",
            "1 2",
            "[-]",
            "[01]",
            "[1.]",
            "[1e]",
            "[.5]",
            "[1.5e+]",
        ] {
            let (st, _) = run(doc);
            assert!(matches!(st, Status::Invalid(_)), "{doc}: {st:?}");
        }
    }

    #[test]
    fn incomplete_documents_stay_partial() {
        for doc in ["{", "{\"a\":", "[1,", "\"abc", "{\"a\":{\"b\":[", "tru"] {
            assert_eq!(run(doc).0, Status::Partial, "{doc}");
        }
        assert_eq!(run("12").0, Status::Complete);
        assert_eq!(run("-").0, Status::Partial);
        assert_eq!(run("[-0.5e-3, 0, 10E+2]").0, Status::Complete);
    }

    /// Tracks the root and skips every value in it, noting the keys it was offered.
    struct SkipData(Vec<String>);

    impl Visitor for SkipData {
        fn value(&mut self, _p: Tag, key: Key<'_>, _k: ValueKind) -> Interest {
            self.0.push(key_str(key));
            match key {
                Key::Root => Interest::Track(1),
                _ => Interest::Skip,
            }
        }
    }

    #[test]
    fn skips_untracked_containers_without_reading_keys() {
        let doc = br#"{"data": {"x": "}]\"{", "y": [[[{}]]]}, "errors": []}"#;
        for split in 1..doc.len() {
            let mut s = JsonScanner::new();
            let mut v = SkipData(vec![]);
            for c in doc.chunks(split) {
                s.feed(c, &mut v);
            }
            assert_eq!(s.finish(&mut v), Status::Complete);
            assert_eq!(v.0, vec!["root", "data", "errors"]);
        }
    }

    #[test]
    fn skipped_values_end_in_the_same_place_on_either_block_path_and_any_split() {
        // A skipped value of a few kilobytes: strings with runs of backslashes, escaped
        // quotes and brackets, nested containers, so that 64-byte blocks hold every case.
        let mut next = super::super::xorshift(0x2545_f491_4f6c_dd1d);
        let strings = [
            r#""a\\\\""#,
            r#""\"}]{[""#,
            r#""\\\\\\\"x""#,
            r#""plain text""#,
            r#""\u00e9\n""#,
        ];
        let mut data = String::from("[");
        let mut depth = 1;
        while data.len() < 4000 || depth > 1 {
            match next() % 7 {
                0 if depth < 12 => {
                    data.push_str("{\"k\":[");
                    depth += 2;
                }
                1 if depth > 2 => {
                    data.push_str("0]},");
                    depth -= 2;
                }
                _ => {
                    data.push_str(strings[(next() % 5) as usize]);
                    data.push(',');
                }
            }
            if data.len() > 4000 && depth > 1 {
                data.push_str("0]},");
                depth -= 2;
            }
        }
        data.push_str("0]");
        let doc = format!(r#"{{"data": {data}, "errors": [{{"x": "}}"}}], "z": 1}}"#);
        for baseline in [false, true] {
            #[cfg(target_arch = "x86_64")]
            super::super::masks::BASELINE_ONLY.set(baseline);
            for split in [doc.len(), 1, 7, 63, 64, 65, 1000] {
                let mut s = JsonScanner::new();
                let mut v = SkipData(vec![]);
                for c in doc.as_bytes().chunks(split) {
                    s.feed(c, &mut v);
                }
                assert_eq!(s.finish(&mut v), Status::Complete, "{baseline} {split}");
                assert_eq!(v.0, ["root", "data", "errors", "z"], "{baseline} {split}");
            }
        }
        #[cfg(target_arch = "x86_64")]
        super::super::masks::BASELINE_ONLY.set(false);
    }

    #[test]
    fn raw_capture_keeps_escapes_and_finds_the_closing_quote() {
        struct Raw(usize, Vec<(Vec<u8>, bool)>);
        impl Visitor for Raw {
            fn value(&mut self, _p: Tag, key: Key<'_>, kind: ValueKind) -> Interest {
                match (key, kind) {
                    (Key::Root, _) => Interest::Track(1),
                    (_, ValueKind::String) => Interest::CaptureRaw(self.0),
                    _ => Interest::Skip,
                }
            }
            fn string(&mut self, _p: Tag, _k: Key<'_>, v: &[u8], t: bool) {
                self.1.push((v.to_vec(), t));
            }
        }
        let doc = br#"{"a":"x\"y","b":"q\\","c":"\\\"z","d":"\u00e9\n"}"#;
        let want: Vec<&[u8]> = vec![br#"x\"y"#, br#"q\\"#, br#"\\\"z"#, br#"\u00e9\n"#];
        // Whole, split anywhere, and truncated at the limit (a string held whole in one
        // chunk is handed over from the input, one carried over through the buffer).
        for limit in [0, 3, 4, 1000] {
            let want: Vec<(Vec<u8>, bool)> = want
                .iter()
                .map(|w| (w[..w.len().min(limit)].to_vec(), w.len() > limit))
                .collect();
            for split in 1..=doc.len() {
                let mut s = JsonScanner::new();
                let mut v = Raw(limit, vec![]);
                for c in doc.chunks(split) {
                    s.feed(c, &mut v);
                }
                assert_eq!(s.finish(&mut v), Status::Complete, "split {split}");
                assert_eq!(v.1, want, "limit {limit}, split {split}");
            }
        }
        assert_eq!(unescape(br#"x\"y"#).as_deref(), Some("x\"y"));
        assert_eq!(unescape(br#"\u00e9\n"#).as_deref(), Some("\u{e9}\n"));
        assert_eq!(unescape(br#"bad\q"#), None);
    }

    #[test]
    fn tracked_depth_is_bounded() {
        let doc = "[".repeat(MAX_TRACKED_DEPTH + 1);
        assert_eq!(run(&doc).0, Status::Invalid(JsonError::TooDeep));
    }
}
