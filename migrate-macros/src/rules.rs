//! The rules migrate-core applies again at run time, compiled from its own sources so that
//! what the macros accept and what the runtime does cannot drift apart.

#[path = "../../migrate-core/src/rules/checksum.rs"]
pub(crate) mod checksum;
// `Step` is public in migrate-core, which re-exports it.
#[path = "../../migrate-core/src/rules/steps.rs"]
#[allow(unreachable_pub)]
pub(crate) mod steps;
#[path = "../../migrate-core/src/rules/version_syntax.rs"]
pub(crate) mod version_syntax;
