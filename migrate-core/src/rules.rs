//! Rules that `#[change_unit]` and the method markers apply at compile time and this crate
//! applies again at run time.
//!
//! Each rule is one std-only file that `migrate-macros` compiles into itself with
//! `#[path = ...]`, so the compile-time check and the runtime behaviour cannot drift apart.

pub(crate) mod checksum;
pub(crate) mod steps;
pub(crate) mod version_syntax;
