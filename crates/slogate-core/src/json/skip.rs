//! Crossing skipped values and string runs many bytes at a time: eight-byte words (SWAR)
//! and 64-byte blocks whose masks come from [`super::masks`].

use memchr::memchr2;

use super::masks::BlockOps;

pub(super) const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in the bytes of `v` that are zero; the lowest flagged byte is exact (borrows
/// only disturb bytes above it), which is all the scanners below use.
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(LO) & !v & HI
}

#[inline(always)]
pub(super) fn word(input: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&input[i..i + 8]);
    u64::from_le_bytes(b)
}

/// High bit set in exactly the bytes of `x` equal to `c`.
#[inline(always)]
pub(super) fn equal_bytes(x: u64, c: u8) -> u64 {
    let v = x ^ (u64::from(c) * LO);
    !(((v & !HI).wrapping_add(!HI)) | v) & HI
}

/// Crosses a word of a skipped value: the new depth and string state, or `None` when the
/// word holds a backslash or might close the value (then the byte loop takes over).
#[inline(always)]
pub(super) fn cross_word(x: u64, depth: u32, in_string: bool) -> Option<(u32, bool)> {
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
    let n_closes = count_flags(closes);
    if n_closes >= depth {
        return depth_after(opens, closes, depth).map(|d| (d, still_inside));
    }
    Some((depth + count_flags(opens) - n_closes, still_inside))
}

/// The depth after the brackets flagged in `opens` and `closes` (one bit each, in text
/// order from the lowest bit), from `depth`; `None` when it reaches zero on the way (the
/// skipped value ends there, and the byte loop finds where). Only for words and blocks with
/// as many closing brackets as the depth: a response's small nested objects close several
/// brackets per block, which a count alone would hand to the byte loop every time.
#[inline(always)]
fn depth_after(opens: u64, closes: u64, mut depth: u32) -> Option<u32> {
    let mut brackets = opens | closes;
    while brackets != 0 {
        let bit = brackets & brackets.wrapping_neg();
        if closes & bit != 0 {
            depth -= 1;
            if depth == 0 {
                return None;
            }
        } else {
            depth = depth.saturating_add(1);
        }
        brackets ^= bit;
    }
    Some(depth)
}

/// 64 bytes of a skipped value, crossed at once.
pub(super) type Block = [u8; 64];

/// Word `k` (of 8) of a block, with no bounds check left to make.
#[inline(always)]
pub(super) fn block_word(block: &Block, k: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&block[(k & 7) * 8..(k & 7) * 8 + 8]);
    u64::from_le_bytes(b)
}

/// The state of a skipped value carried from one 64-byte block to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SkipState {
    pub(super) depth: u32,
    pub(super) in_string: bool,
    /// The next byte is escaped (the block ended inside a string on an odd run of backslashes).
    pub(super) escaped: bool,
}

/// Crosses 64 bytes of a skipped value at once, the way simdjson finds string boundaries:
/// bit masks of quotes, backslashes and brackets; the escaped bytes from the runs of
/// backslashes; a prefix XOR over the unescaped quotes gives the bytes inside strings; the
/// brackets outside them change the depth. `None` when the block may close the value, or
/// holds a backslash outside a string (invalid JSON: the byte loop decides), so the caller
/// crosses it byte by byte with exactly the same result.
#[inline(always)]
pub(super) fn cross_block_with<O: BlockOps>(
    ops: O,
    block: &Block,
    state: SkipState,
) -> Option<SkipState> {
    let [quotes, backslashes, opens, closes] = ops.masks(block);
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
    let mut inside = ops.prefix_xor(quotes & !escaped);
    if state.in_string {
        inside = !inside;
    }
    if backslashes & !escaped & !inside != 0 {
        return None;
    }
    let opens = opens & !inside;
    let closes = closes & !inside;
    let n_closes = closes.count_ones();
    let depth = if n_closes < state.depth {
        state.depth.saturating_add(opens.count_ones()) - n_closes
    } else {
        depth_after(opens, closes, state.depth)?
    };
    Some(SkipState {
        depth,
        in_string: inside >> 63 == 1,
        escaped: next_escaped,
    })
}

/// [`cross_block_with`] on the operations every build can run.
#[cfg(test)]
pub(super) fn cross_block(block: &Block, state: SkipState) -> Option<SkipState> {
    cross_block_with(super::masks::Baseline, block, state)
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
pub(super) fn find_structure(input: &[u8], mut i: usize) -> usize {
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
pub(super) fn find_string_special(input: &[u8], i: usize) -> usize {
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

/// The index of the first byte at or after `i` that a JSON string must escape (`"`, `\` or
/// a control byte below 0x20), eight bytes at a time.
pub(super) fn find_escape(input: &[u8], mut i: usize) -> Option<usize> {
    while i + 8 <= input.len() {
        let x = word(input, i);
        // A byte below 0x20 is one whose top three bits are zero.
        let m = string_special_bytes(x) | zero_bytes(x & (0xe0 * LO));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i < input.len() && input.len() >= 8 {
        // The last 1-7 bytes: the word ending the input, with the bytes before `i` masked
        // off. Those may hold anything (the caller may start mid-word), so the flags here are
        // the exact ones, which no borrow from a lower byte can disturb.
        let start = input.len() - 8;
        let x = word(input, start);
        let m = (equal_bytes(x, b'"') | equal_bytes(x, b'\\') | equal_bytes(x & (0xe0 * LO), 0))
            & (!0u64 << ((i - start) * 8));
        return (m != 0).then(|| start + (m.trailing_zeros() / 8) as usize);
    }
    input[i..]
        .iter()
        .position(|&b| b < 0x20 || matches!(b, b'"' | b'\\'))
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "x86_64")]
    use super::super::masks::Wide;
    use super::super::masks::{block_masks_swar, masks_of};
    use super::super::xorshift;
    use super::*;

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
            0x1F,
            0x20,
            0xE0,
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
            let naive_e = (start..len).find(|&j| buf[j] < 0x20 || matches!(buf[j], b'"' | b'\\'));
            assert_eq!(find_escape(&buf, start), naive_e, "{buf:?} from {start}");
        }
        let long = [vec![b'a'; 1000], vec![b'\\']].concat();
        assert_eq!(find_string_special(&long, 3), 1000);
    }

    /// The byte-at-a-time semantics of a skipped value, as the slow loop of `skip` applies
    /// them: the state after `block`, or `None` where `cross_block` must refuse (the value
    /// ends in the block, or a backslash outside a string).
    fn walk_block(block: &[u8], state: SkipState) -> Option<SkipState> {
        let mut depth = state.depth;
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
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return None;
                    }
                }
                b'\\' => return None,
                _ => {}
            }
        }
        Some(SkipState {
            depth,
            in_string,
            escaped,
        })
    }

    /// Eight bytes without a backslash, crossed as a word: the byte loop's state after
    /// them, or `None` exactly where the skipped value ends among them.
    #[test]
    fn word_crossing_matches_the_byte_loop() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let alphabet = [b'"', b'{', b'}', b'[', b']', b'a', b',', 0xDB, 0xFD, b';'];
        let mut crossed_closing = 0;
        for _ in 0..200_000 {
            let bytes: [u8; 8] =
                std::array::from_fn(|_| alphabet[next() as usize % alphabet.len()]);
            let r = next();
            let state = SkipState {
                depth: 1 + (r % 6) as u32,
                in_string: (r >> 8) & 1 == 1,
                escaped: false,
            };
            let want = walk_block(&bytes, state).map(|s| (s.depth, s.in_string));
            let got = cross_word(u64::from_le_bytes(bytes), state.depth, state.in_string);
            assert_eq!(got, want, "{bytes:?} {state:?}");
            let closes = bytes.iter().filter(|&&b| b == b'}' || b == b']').count();
            if want.is_some() && closes as u32 >= state.depth {
                crossed_closing += 1;
            }
        }
        // Words that close as many brackets as the depth and still do not end the value.
        assert!(crossed_closing > 1_000, "{crossed_closing}");
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
            #[cfg(target_arch = "x86_64")]
            if let Some(wide) = Wide::detect() {
                assert_eq!(wide.masks(&block), block_masks_swar(&block), "{block:?}");
                assert_eq!(
                    cross_block_with(wide, &block, state),
                    want,
                    "wide: {block:?} {state:?}"
                );
            }
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
            let block = window.try_into().expect("64 bytes");
            assert_eq!(cross_block(block, state), want, "{window:?} {state:?}");
            #[cfg(target_arch = "x86_64")]
            if let Some(wide) = Wide::detect() {
                assert_eq!(
                    cross_block_with(wide, block, state),
                    want,
                    "wide: {window:?} {state:?}"
                );
            }
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
}
