//! A fast hasher for the runner's own maps, keyed by unit ids and authors.
//!
//! The standard library's SipHash resists collision attacks, which these maps do not need:
//! their keys come from the application's binary and its own history collection. Hashing
//! every history entry and every unit at start-up is a measurable part of a start with
//! nothing to apply, so these maps multiply words instead (the Fx hash of rustc and Firefox).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A `HashSet` with [`FxHasher`].
pub(crate) type FxHashSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

/// A `HashSet` with room for `capacity` values.
pub(crate) fn set_with_capacity<T>(capacity: usize) -> FxHashSet<T> {
    FxHashSet::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
}

/// A `HashMap` with room for `capacity` entries.
pub(crate) fn map_with_capacity<K, V>(capacity: usize) -> FxHashMap<K, V> {
    FxHashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
}

/// Folds each word into the state with a rotate, an xor and a multiplication.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Whole words, then the tail in at most three loads: no copy into a buffer.
        let mut rest = bytes;
        while let Some((word, tail)) = rest.split_first_chunk::<8>() {
            self.add(u64::from_le_bytes(*word));
            rest = tail;
        }
        if let Some((half, tail)) = rest.split_first_chunk::<4>() {
            self.add(u64::from(u32::from_le_bytes(*half)));
            rest = tail;
        }
        if let Some((pair, tail)) = rest.split_first_chunk::<2>() {
            self.add(u64::from(u16::from_le_bytes(*pair)));
            rest = tail;
        }
        if let Some(&byte) = rest.first() {
            self.add(u64::from(byte));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The multiplication leaves its best-mixed bits at the top, but a hash table picks
        // the bucket from the low bits: without the rotation, keys that differ only in later
        // bytes ("u00001", "u00002", ...) share buckets, and every probe walks a long chain.
        self.hash.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_differ_in_a_tail_or_a_split_hash_apart() {
        let mut map = map_with_capacity(4);
        map.insert(("unit-0001", "a"), 1);
        map.insert(("unit-0002", "a"), 2);
        map.insert(("unit-000", "1a"), 3);
        map.insert(("unit-0001", "b"), 4);
        assert_eq!(map.len(), 4);
        assert_eq!(map[&("unit-0001", "a")], 1);
        assert_eq!(map[&("unit-000", "1a")], 3);
        assert_eq!(map.get(&("unit-0001", "c")), None);
    }

    #[test]
    fn ids_that_differ_in_their_last_bytes_spread_over_the_low_bits() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let build = BuildHasherDefault::<FxHasher>::default();
        // 10,000 keys into 16,384 buckets chosen by the low 14 bits: a uniform hash fills
        // about 7,000 of them.
        let buckets: std::collections::HashSet<u64> = (1..=10_000)
            .map(|k| build.hash_one(format!("u{k:05}").as_str()) & 0x3fff)
            .collect();
        assert!(buckets.len() > 6_000, "{} buckets", buckets.len());
    }
}
