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

use memchr::memchr2;

/// Identifies a tracked container to the visitor; chosen by the visitor itself.
pub type Tag = u8;

/// The tag of the (virtual) parent of the top-level value.
pub const ROOT: Tag = 0;

/// How deep tracked containers may nest; the visitors in this crate track at most five levels.
pub const MAX_TRACKED_DEPTH: usize = 16;

/// Longest member key kept for comparison; longer keys are reported as [`Key::Long`].
const MAX_KEY_LEN: usize = 64;

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

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in the bytes of `v` that are zero; the lowest flagged byte is exact (borrows
/// only disturb bytes above it), which is all the scanners below use.
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(LO) & !v & HI
}

#[inline(always)]
fn word(input: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&input[i..i + 8]);
    u64::from_le_bytes(b)
}

/// High bit set in exactly the bytes of `x` equal to `c`.
#[inline(always)]
fn equal_bytes(x: u64, c: u8) -> u64 {
    let v = x ^ (u64::from(c) * LO);
    !(((v & !HI).wrapping_add(!HI)) | v) & HI
}

/// Crosses a word of a skipped value: the new depth and string state, or `None` when the
/// word holds a backslash or might close the value (then the byte loop takes over).
#[inline(always)]
fn cross_word(x: u64, depth: u32, in_string: bool) -> Option<(u32, bool)> {
    if equal_bytes(x, b'\\') != 0 {
        return None;
    }
    let folded = x | (0x20 * LO);
    // 0xFF in each byte from a quote up to the next: the bytes inside a string.
    let mut inside = (equal_bytes(x, b'"') >> 7).wrapping_mul(0xFF);
    inside ^= inside << 8;
    inside ^= inside << 16;
    inside ^= inside << 32;
    if in_string {
        inside = !inside;
    }
    let outside = !inside & HI;
    let opens = equal_bytes(folded, b'{') & outside;
    let closes = equal_bytes(folded, b'}') & outside;
    let still_inside = inside >> 63 == 1;
    if opens | closes == 0 {
        return Some((depth, still_inside));
    }
    let closes = count_flags(closes);
    if closes >= depth {
        return None;
    }
    Some((depth + count_flags(opens) - closes, still_inside))
}

/// 64 bytes of a skipped value, crossed at once.
type Block = [u8; 64];

/// Word `k` (of 8) of a block, with no bounds check left to make.
#[inline(always)]
fn block_word(block: &Block, k: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&block[(k & 7) * 8..(k & 7) * 8 + 8]);
    u64::from_le_bytes(b)
}

/// The state of a skipped value carried from one 64-byte block to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SkipState {
    depth: u32,
    in_string: bool,
    /// The next byte is escaped (the block ended inside a string on an odd run of backslashes).
    escaped: bool,
}

/// The high bits of a word's flagged bytes (see [`equal_bytes`]) packed into eight bits,
/// byte `k` to bit `k`: the multiply gathers the eight flags in the top byte.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn pack_flags(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Bit masks of a 64-byte block (bit `k` for byte `k`): quotes, backslashes, `{`/`[`, `}`/`]`.
/// SSE2 (always present on x86-64): sixteen bytes per compare, the flags gathered by
/// `pmovmskb`. The words are loaded with safe code; the compiler folds them into one load.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[allow(unsafe_code)]
fn masks_of(block: &Block) -> [u64; 4] {
    // SAFETY: `block_masks` only needs SSE2, which this build enables (the cfg above; it is
    // part of the x86-64 baseline). It reads the block through safe slice indexing.
    unsafe { block_masks(block) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn block_masks(block: &Block) -> [u64; 4] {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
    };
    let mut masks = [0u64; 4];
    for lane in 0..4 {
        let lo = block_word(block, lane * 2) as i64;
        let hi = block_word(block, lane * 2 + 1) as i64;
        let v = _mm_set_epi64x(hi, lo);
        let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let shift = lane * 16;
        let q = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)));
        let b = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)));
        let o = _mm_movemask_epi8(_mm_cmpeq_epi8(folded, _mm_set1_epi8(b'{' as i8)));
        let c = _mm_movemask_epi8(_mm_cmpeq_epi8(folded, _mm_set1_epi8(b'}' as i8)));
        masks[0] |= u64::from(q as u16) << shift;
        masks[1] |= u64::from(b as u16) << shift;
        masks[2] |= u64::from(o as u16) << shift;
        masks[3] |= u64::from(c as u16) << shift;
    }
    masks
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn masks_of(block: &Block) -> [u64; 4] {
    block_masks_swar(block)
}

/// The same masks a word at a time, for other architectures (and compared with the SSE2
/// version by the tests).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn block_masks_swar(block: &Block) -> [u64; 4] {
    let mut masks = [0u64; 4];
    for k in 0..8 {
        let x = block_word(block, k);
        let folded = x | (0x20 * LO);
        let shift = k * 8;
        masks[0] |= pack_flags(equal_bytes(x, b'"')) << shift;
        masks[1] |= pack_flags(equal_bytes(x, b'\\')) << shift;
        masks[2] |= pack_flags(equal_bytes(folded, b'{')) << shift;
        masks[3] |= pack_flags(equal_bytes(folded, b'}')) << shift;
    }
    masks
}

/// Crosses 64 bytes of a skipped value at once, the way simdjson finds string boundaries:
/// bit masks of quotes, backslashes and brackets; the escaped bytes from the runs of
/// backslashes; a prefix XOR over the unescaped quotes gives the bytes inside strings; the
/// brackets outside them change the depth. `None` when the block may close the value, or
/// holds a backslash outside a string (invalid JSON: the byte loop decides), so the caller
/// crosses it byte by byte with exactly the same result.
#[inline]
fn cross_block(block: &Block, state: SkipState) -> Option<SkipState> {
    let [quotes, backslashes, opens, closes] = masks_of(block);
    let prev_escaped = u64::from(state.escaped);
    let (escaped, next_escaped) = if backslashes == 0 {
        (prev_escaped, false)
    } else {
        // simdjson's escape scanner: a byte is escaped when an odd run of backslashes
        // precedes it (a backslash escaped by the previous block starts no run).
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let starts = backslashes & !prev_escaped;
        let follows = (starts << 1) | prev_escaped;
        let odd_starts = starts & !EVEN & !follows;
        let (even_runs, overflow) = odd_starts.overflowing_add(starts);
        ((EVEN ^ (even_runs << 1)) & follows, overflow)
    };
    let mut inside = quotes & !escaped;
    inside ^= inside << 1;
    inside ^= inside << 2;
    inside ^= inside << 4;
    inside ^= inside << 8;
    inside ^= inside << 16;
    inside ^= inside << 32;
    if state.in_string {
        inside = !inside;
    }
    if backslashes & !escaped & !inside != 0 {
        return None;
    }
    let opens = opens & !inside;
    let closes = (closes & !inside).count_ones();
    if closes >= state.depth {
        return None;
    }
    Some(SkipState {
        depth: state.depth.saturating_add(opens.count_ones()) - closes,
        in_string: inside >> 63 == 1,
        escaped: next_escaped,
    })
}

/// Number of flagged bytes (high bits) in a word, without relying on a popcount instruction
/// (absent from baseline x86-64): the multiply sums the eight 0/1 bytes into the top byte.
#[inline(always)]
fn count_flags(m: u64) -> u32 {
    ((m >> 7).wrapping_mul(LO) >> 56) as u32
}

/// Flags `"`, `{`, `[`, `}` and `]` in a word (`[`/`]` are `{`/`}` with bit 5 clear).
#[inline(always)]
fn structure_bytes(x: u64) -> u64 {
    let folded = x | (0x20 * LO);
    zero_bytes(x ^ (u64::from(b'"') * LO))
        | zero_bytes(folded ^ (u64::from(b'{') * LO))
        | zero_bytes(folded ^ (u64::from(b'}') * LO))
}

/// Flags `"` and `\\` in a word.
#[inline(always)]
fn string_special_bytes(x: u64) -> u64 {
    zero_bytes(x ^ (u64::from(b'"') * LO)) | zero_bytes(x ^ (u64::from(b'\\') * LO))
}

/// The index of the next `"`, `{`, `}`, `[` or `]` at or after `i` (or `input.len()`),
/// eight bytes at a time.
#[inline]
fn find_structure(input: &[u8], mut i: usize) -> usize {
    while i + 8 <= input.len() {
        let m = structure_bytes(word(input, i));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < input.len() {
        if matches!(input[i], b'"' | b'{' | b'}' | b'[' | b']') {
            return i;
        }
        i += 1;
    }
    i
}

/// The index of the next `"` or `\\` at or after `i` (or `input.len()`). Short runs (keys,
/// small values) are scanned a word at a time; long ones go to memchr's vectorised search.
#[inline]
fn find_string_special(input: &[u8], i: usize) -> usize {
    let mut j = i;
    let inline_end = input.len().min(i + 64);
    while j + 8 <= inline_end {
        let m = string_special_bytes(word(input, j));
        if m != 0 {
            return j + (m.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    if inline_end == input.len() {
        while j < input.len() {
            if matches!(input[j], b'"' | b'\\') {
                return j;
            }
            j += 1;
        }
        return j;
    }
    memchr2(b'"', b'\\', &input[j..]).map_or(input.len(), |off| j + off)
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
    stack: Vec<Frame>,
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
    consumed: u64,
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
            stack: Vec::new(),
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
            consumed: 0,
        }
    }

    /// Bytes fed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
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
        self.consumed += input.len() as u64;
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
                        self.capture.clear();
                        // Documents are usually a few KB; avoid growing from empty by doubling.
                        self.capture.reserve(limit.min(4096));
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
    fn skip(&mut self, input: &[u8], mut i: usize) -> usize {
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
                if let Some(next) = cross_block(block, state) {
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
    /// of the backslashes before them; copy the bytes untouched.
    fn raw_string_body<V: Visitor>(
        &mut self,
        input: &[u8],
        mut i: usize,
        visitor: &mut V,
    ) -> usize {
        while i < input.len() {
            let rest = &input[i..];
            let Some(off) = memchr::memchr(b'"', rest) else {
                self.count_backslashes(rest);
                self.push_decoded(rest);
                return input.len();
            };
            self.count_backslashes(&rest[..off]);
            let escaped = self.raw_backslashes % 2 == 1;
            if escaped {
                self.push_decoded(&rest[..=off]);
                self.raw_backslashes = 0;
                i += off + 1;
                continue;
            }
            self.push_decoded(&rest[..off]);
            self.string_closed(visitor);
            return i + off + 1;
        }
        i
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

    #[test]
    fn skips_untracked_containers_without_reading_keys() {
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
    fn raw_capture_keeps_escapes_and_finds_the_closing_quote() {
        struct Raw(Vec<Vec<u8>>);
        impl Visitor for Raw {
            fn value(&mut self, _p: Tag, key: Key<'_>, kind: ValueKind) -> Interest {
                match (key, kind) {
                    (Key::Root, _) => Interest::Track(1),
                    (_, ValueKind::String) => Interest::CaptureRaw(1000),
                    _ => Interest::Skip,
                }
            }
            fn string(&mut self, _p: Tag, _k: Key<'_>, v: &[u8], _t: bool) {
                self.0.push(v.to_vec());
            }
        }
        let doc = br#"{"a":"x\"y","b":"q\\","c":"\\\"z","d":"\u00e9\n"}"#;
        for split in 1..doc.len() {
            let mut s = JsonScanner::new();
            let mut v = Raw(vec![]);
            for c in doc.chunks(split) {
                s.feed(c, &mut v);
            }
            assert_eq!(s.finish(&mut v), Status::Complete, "split {split}");
            let want: Vec<&[u8]> = vec![br#"x\"y"#, br#"q\\"#, br#"\\\"z"#, br#"\u00e9\n"#];
            assert_eq!(v.0, want, "split {split}");
        }
        assert_eq!(unescape(br#"x\"y"#).as_deref(), Some("x\"y"));
        assert_eq!(unescape(br#"\u00e9\n"#).as_deref(), Some("\u{e9}\n"));
        assert_eq!(unescape(br#"bad\q"#), None);
    }

    /// A small deterministic generator for the randomised tests below.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn word_scanners_match_the_naive_search() {
        let mut next = xorshift(0x1234_5678_9abc_def1);
        // Bytes near the searched ones (bit 5 flips, borrows across bytes) are the risky ones.
        let alphabet = [
            b'"',
            b'\\',
            b'{',
            b'}',
            b'[',
            b']',
            0x5A,
            0x7C,
            0x02,
            0x00,
            0xFF,
            b'a',
            0x21,
            0x23,
            0x5C ^ 0x20,
            0x80,
        ];
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let start = if len == 0 {
                0
            } else {
                (next() as usize) % (len + 1)
            };
            let naive_s = (start..len)
                .find(|&j| matches!(buf[j], b'"' | b'{' | b'}' | b'[' | b']'))
                .unwrap_or(len);
            let naive_q = (start..len)
                .find(|&j| matches!(buf[j], b'"' | b'\\'))
                .unwrap_or(len);
            assert_eq!(find_structure(&buf, start), naive_s, "{buf:?} from {start}");
            assert_eq!(
                find_string_special(&buf, start),
                naive_q,
                "{buf:?} from {start}"
            );
        }
        let long = [vec![b'a'; 1000], vec![b'\\']].concat();
        assert_eq!(find_string_special(&long, 3), 1000);
    }

    /// The byte-at-a-time semantics of a skipped value, as the slow loop of `skip` applies
    /// them: the state after `block`, or `None` where `cross_block` must refuse (a bracket
    /// count that may close the value, or a backslash outside a string).
    fn walk_block(block: &[u8], state: SkipState) -> Option<SkipState> {
        let (mut opens, mut closes) = (0u32, 0u32);
        let (mut in_string, mut escaped) = (state.in_string, state.escaped);
        for &b in block {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => opens += 1,
                b'}' | b']' => closes += 1,
                b'\\' => return None,
                _ => {}
            }
        }
        if closes >= state.depth {
            return None;
        }
        Some(SkipState {
            depth: state.depth + opens - closes,
            in_string,
            escaped,
        })
    }

    #[test]
    fn block_crossing_matches_the_byte_loop() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        // Runs of backslashes and quotes are what the escape arithmetic must get right; the
        // bytes one bit away from the searched ones catch a wrong byte comparison.
        let alphabet = [
            b'"', b'"', b'{', b'}', b'[', b']', b'a', b' ', b'|', 0x02, 0xDB, 0xFD, 0xA2, b':',
            b',', b'\\', b'\\', b'\\',
        ];
        let quotes_and_backslashes = [b'"', b'\\'];
        let (mut some, mut escapes) = (0, 0);
        for round in 0..200_000 {
            let mut block = [0u8; 64];
            // Three mixes: only quotes and backslashes; no backslash at all (long clean runs,
            // a carried escape alone); everything.
            for b in block.iter_mut() {
                let r = next() as usize;
                *b = match round % 3 {
                    0 => quotes_and_backslashes[r % 2],
                    1 => alphabet[r % (alphabet.len() - 3)],
                    _ => alphabet[r % alphabet.len()],
                };
            }
            let r = next();
            let in_string = r & 1 == 1;
            let state = SkipState {
                depth: 1 + ((r >> 1) % 40) as u32,
                in_string,
                escaped: in_string && (r >> 8) & 1 == 1,
            };
            assert_eq!(masks_of(&block), block_masks_swar(&block), "{block:?}");
            let want = walk_block(&block, state);
            assert_eq!(cross_block(&block, state), want, "{block:?} {state:?}");
            if want.is_some() {
                some += 1;
                escapes += usize::from(block.contains(&b'\\'));
            }
        }
        // Random blocks mostly hold a backslash outside a string (refused), so count that
        // enough were crossed, escapes included, for the comparison to mean something.
        assert!(
            some > 2_000 && escapes > 200,
            "too few blocks crossed: {some} ({escapes})"
        );

        // JSON-like text: strings full of escapes (runs of backslashes, escaped quotes and
        // brackets) between brackets, read through 64-byte windows at every offset, with the
        // state the byte loop has at the window's start.
        let pieces: [&[u8]; 10] = [
            b"a",
            b" {",
            b"}",
            b"\\\"",
            b"\\\\",
            b"\\\\\\\"",
            b"\\n",
            b"[x]",
            b"\\u00e9",
            b"\\\\\\\\",
        ];
        let mut text = Vec::new();
        while text.len() < 8192 {
            match next() % 6 {
                0 => text.push(b'{'),
                1 => text.push(b'['),
                2 => text.extend_from_slice(b"],"),
                3 => text.extend_from_slice(b"}:"),
                _ => {
                    text.push(b'"');
                    for _ in 0..next() % 12 {
                        text.extend_from_slice(pieces[(next() as usize) % pieces.len()]);
                    }
                    text.push(b'"');
                }
            }
        }
        let mut state = SkipState {
            depth: 100_000,
            in_string: false,
            escaped: false,
        };
        let (mut crossed, mut with_escapes) = (0, 0);
        for start in 0..text.len() - 64 {
            let window = &text[start..start + 64];
            let want = walk_block(window, state);
            assert_eq!(
                cross_block(window.try_into().expect("64 bytes"), state),
                want,
                "{window:?} {state:?}"
            );
            if want.is_some() {
                crossed += 1;
                with_escapes += usize::from(window.contains(&b'\\'));
            }
            state = walk_block(&text[start..start + 1], state).expect("well formed");
        }
        assert!(
            crossed > 8_000 && with_escapes > 4_000,
            "{crossed} {with_escapes}"
        );
    }

    #[test]
    fn tracked_depth_is_bounded() {
        let doc = "[".repeat(MAX_TRACKED_DEPTH + 1);
        assert_eq!(run(&doc).0, Status::Invalid(JsonError::TooDeep));
    }
}
