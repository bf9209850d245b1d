//! The hash behind a unit's checksum: 64-bit FNV-1a. The macros hash the tokens of the unit's
//! struct and of each step method with it; the runtime then combines those hashes with it
//! into the unit's checksum.
//!
//! This file is compiled into both migrate-core and migrate-macros (`#[path]`), so it must
//! stay std-only; its functions are `const fn` so that either side may call them in a const.

const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The hash of no bytes, where every hash starts.
pub(crate) const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues `hash` over `bytes`.
// The macros' half of the rule: they hash tokens with it; the runtime only combines.
#[allow(dead_code)]
pub(crate) const fn extend(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(PRIME);
        i += 1;
    }
    hash
}

/// Combines the token hashes of a unit's struct and step methods, in that order, into the
/// unit's checksum: the hash of their little-endian bytes.
// The runtime's half of the rule, called by `__private::Checksum`; the macros never combine.
#[allow(dead_code)]
pub(crate) const fn combine(parts: &[u64]) -> u64 {
    let mut hash = OFFSET_BASIS;
    let mut i = 0;
    while i < parts.len() {
        hash = extend_part(hash, parts[i]);
        i += 1;
    }
    hash
}

/// Continues `hash` over the eight little-endian bytes of `part`. rustc interprets this in
/// every unit's `static`, so it is written for its interpreter: unrolled, with shifts rather
/// than bytes and indexing, and multiplying in `u128` (which cannot overflow) rather than
/// calling `wrapping_mul`; each call costs the interpreter a frame.
const fn extend_part(hash: u64, part: u64) -> u64 {
    const P: u128 = PRIME as u128;
    let hash = ((hash ^ (part & 0xff)) as u128 * P) as u64;
    let hash = ((hash ^ ((part >> 8) & 0xff)) as u128 * P) as u64;
    let hash = ((hash ^ ((part >> 16) & 0xff)) as u128 * P) as u64;
    let hash = ((hash ^ ((part >> 24) & 0xff)) as u128 * P) as u64;
    let hash = ((hash ^ ((part >> 32) & 0xff)) as u128 * P) as u64;
    let hash = ((hash ^ ((part >> 40) & 0xff)) as u128 * P) as u64;
    let hash = ((hash ^ ((part >> 48) & 0xff)) as u128 * P) as u64;
    ((hash ^ (part >> 56)) as u128 * P) as u64
}

// Pure and fast, so running once in each crate that compiles this file is harmless.
#[cfg(test)]
mod tests {
    use super::{combine, extend, OFFSET_BASIS};

    #[test]
    fn extend_is_fnv_1a() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(extend(OFFSET_BASIS, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(extend(OFFSET_BASIS, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(extend(OFFSET_BASIS, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn extend_continues_where_it_stopped() {
        assert_eq!(
            extend(extend(OFFSET_BASIS, b"foo"), b"bar"),
            extend(OFFSET_BASIS, b"foobar")
        );
    }

    #[test]
    fn combine_hashes_the_parts_in_order() {
        let bytes: Vec<u8> = [7u64, 9].iter().flat_map(|p| p.to_le_bytes()).collect();
        assert_eq!(combine(&[7, 9]), extend(OFFSET_BASIS, &bytes));
        let parts = [
            u64::MAX,
            0x0123_4567_89ab_cdef,
            0,
            0xfedc_ba98_7654_3210,
            1 << 63,
        ];
        let bytes: Vec<u8> = parts.iter().flat_map(|p| p.to_le_bytes()).collect();
        assert_eq!(combine(&parts), extend(OFFSET_BASIS, &bytes));
        assert_ne!(combine(&[7, 9]), combine(&[9, 7]));
    }
}
