//! Compile-time behaviour of the macros: every mistake gets a clear error on the right span,
//! and every supported form compiles.
//!
//! The cases see `migrate-core` under the name `migrate` (see the dev-dependencies), which
//! holds everything generated code needs, so they build without the MongoDB driver. Forms that
//! involve the driver's handles are tested in the `migrate` crate's own tests.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*/fail/*.rs");
    cases.pass("tests/ui/*/pass/*.rs");
}
