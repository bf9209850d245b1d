//! Rules that `#[change_unit]` and the method markers apply at compile time and this crate
//! applies again at run time.
//!
//! Each rule is one std-only file that `migrate-macros` compiles into itself with
//! `#[path = ...]`, so the compile-time check and the runtime behaviour cannot drift apart.

pub(crate) mod checksum;
pub(crate) mod steps;
pub(crate) mod version_syntax;

#[cfg(test)]
mod tests {
    use super::checksum;

    // Generated code combines checksums through `__private::checksum`, which must agree
    // with the shared rule the macros hash with.
    #[test]
    fn generated_code_combines_checksums_by_the_shared_rule() {
        let cases: [&[u64]; 4] = [&[], &[0], &[1, 2, 3], &[u64::MAX, 0x0123_4567_89ab_cdef]];
        for parts in cases {
            assert_eq!(
                crate::__private::checksum(parts),
                checksum::combine(parts),
                "{parts:?}"
            );
        }
    }
}
