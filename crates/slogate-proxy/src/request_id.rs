//! `X-Request-Id`: kept when the client (or a load balancer in front) sent a sane one,
//! generated otherwise, so one id follows a request through slogate, Rails and the logs.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest incoming id kept (Rails' ActionDispatch::RequestId keeps 255 characters).
const MAX_LEN: usize = 255;

/// Whether an incoming id can be passed on as is: visible ASCII, not too long.
pub fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    nanos ^ (std::ptr::addr_of!(local) as u64).rotate_left(32) ^ u64::from(std::process::id())
}

fn splitmix(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A new id: 32 lowercase hex characters (128 bits), unique per process and thread.
pub fn generate() -> String {
    String::from_utf8_lossy(&generate_bytes()).into_owned()
}

/// [`generate`] without allocating.
pub fn generate_bytes() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (a, b) = STATE.with(|s| (splitmix(s), splitmix(s)));
    let mut out = [0u8; 32];
    for (i, word) in [a, b].into_iter().enumerate() {
        for j in 0..16 {
            out[i * 16 + j] = HEX[((word >> (60 - 4 * j)) & 0xf) as usize];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| generate()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids
            .iter()
            .all(|i| i.len() == 32 && i.bytes().all(|b| b.is_ascii_hexdigit())));
        let a = generate_bytes();
        assert!(a
            .iter()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(a, generate_bytes());
        assert!(is_acceptable(b"abc-123"));
        assert!(!is_acceptable(b"with space"));
        assert!(!is_acceptable(&[b'a'; 300]));
    }
}
