//! Compile-time behaviour of the macros: every mistake gets a clear error on the right span,
//! and every supported form compiles.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*/fail/*.rs");
    cases.pass("tests/ui/*/pass/*.rs");
}
