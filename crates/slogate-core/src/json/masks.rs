//! Bit masks of a 64-byte block and the other per-block arithmetic of a skipped value, in
//! two flavours: [`Baseline`] (SSE2, part of every x86-64 CPU, or eight-byte words on other
//! architectures) and [`Wide`] (AVX2 compares, carry-less multiply for the prefix XOR and
//! POPCNT), used only where the CPU reports those features at run time. With
//! `JsonScanner::skip`, the only `unsafe` code in slogate-core.

use super::skip::{block_word, equal_bytes, Block, LO};

/// The per-block operations of [`super::skip::cross_block_with`].
pub(super) trait BlockOps: Copy {
    /// Bit masks of a block (bit `k` for byte `k`): quotes, backslashes, `{`/`[`, `}`/`]`.
    fn masks(self, block: &Block) -> [u64; 4];
    /// Bit `k` set when an odd number of bits `0..=k` of `x` are set: the bytes inside
    /// strings, from the unescaped quotes.
    fn prefix_xor(self, x: u64) -> u64;
}

/// What every build can run.
#[derive(Clone, Copy, Debug)]
pub(super) struct Baseline;

impl BlockOps for Baseline {
    #[inline(always)]
    fn masks(self, block: &Block) -> [u64; 4] {
        masks_of(block)
    }

    #[inline(always)]
    fn prefix_xor(self, mut x: u64) -> u64 {
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        x
    }
}

/// Proof that this CPU has AVX2, PCLMULQDQ and POPCNT: only [`Wide::detect`] makes one, so
/// the wide operations cannot run where they would fault.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub(super) struct Wide(());

#[cfg(target_arch = "x86_64")]
impl Wide {
    /// The proof, when the CPU has the features (std caches the answer: a few loads).
    #[inline(always)]
    pub(super) fn detect() -> Option<Wide> {
        #[cfg(test)]
        if BASELINE_ONLY.get() {
            return None;
        }
        (std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("popcnt"))
        .then_some(Wide(()))
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
thread_local! {
    /// Set by the tests that run the baseline path on a CPU that has the wide one.
    pub(super) static BASELINE_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
impl BlockOps for Wide {
    #[inline(always)]
    fn masks(self, block: &Block) -> [u64; 4] {
        // SAFETY: a `Wide` exists only when the CPU has AVX2 (`Wide::detect`).
        unsafe { block_masks_avx2(block) }
    }

    #[inline(always)]
    fn prefix_xor(self, x: u64) -> u64 {
        // SAFETY: a `Wide` exists only when the CPU has PCLMULQDQ (`Wide::detect`).
        unsafe { prefix_xor_clmul(x) }
    }
}

/// [`BlockOps::masks`] with two 32-byte compares per character.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_masks_avx2(block: &Block) -> [u64; 4] {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
        _mm256_set_epi64x,
    };
    let mut masks = [0u64; 4];
    for half in 0..2 {
        let w = |k: usize| block_word(block, half * 4 + k) as i64;
        let v = _mm256_set_epi64x(w(3), w(2), w(1), w(0));
        let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
        let shift = half * 32;
        let q = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8)));
        let b = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8)));
        let o = _mm256_movemask_epi8(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8(b'{' as i8)));
        let c = _mm256_movemask_epi8(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8(b'}' as i8)));
        masks[0] |= u64::from(q as u32) << shift;
        masks[1] |= u64::from(b as u32) << shift;
        masks[2] |= u64::from(o as u32) << shift;
        masks[3] |= u64::from(c as u32) << shift;
    }
    masks
}

/// [`BlockOps::prefix_xor`] as one carry-less multiply by all ones (simdjson's way).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
fn prefix_xor_clmul(x: u64) -> u64 {
    use std::arch::x86_64::{
        _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set1_epi8, _mm_set_epi64x,
    };
    let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
    _mm_cvtsi128_si64(product) as u64
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
