//! Bit masks of a 64-byte block: SSE2 where the build enables it (the only `unsafe` code in
//! slogate-core), eight-byte words elsewhere.

use super::skip::{block_word, equal_bytes, Block, LO};

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
pub(super) fn masks_of(block: &Block) -> [u64; 4] {
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
pub(super) fn masks_of(block: &Block) -> [u64; 4] {
    block_masks_swar(block)
}

/// The same masks a word at a time, for other architectures (and compared with the SSE2
/// version by the tests).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
pub(super) fn block_masks_swar(block: &Block) -> [u64; 4] {
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
