//! `cargo xtask bench --quick` runs end to end and prints its tables. It checks no timing.
//!
//! Ignored by default: its first run builds the MongoDB driver in release and debug mode for
//! the benchmark programs (minutes). Run it with `cargo test -p xtask --test bench_quick --
//! --ignored`.

use std::process::Command;

#[test]
#[ignore = "builds the benchmark programs (minutes); run with --ignored"]
fn quick_bench_prints_every_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--quick"])
        .output()
        .expect("running xtask bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "xtask bench --quick failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "| case | migrate | raw driver | ratio |",
        "| apply 50, replica set",
        "| apply 50, standalone",
        "| no-op start, 50 applied",
        "### Database commands per applied unit",
        "### No-op start by number of applied units",
        "| batch update, 5,000 documents, 1,000 a batch",
        "### Batch update",
        "| debug build, 50 units",
        "| release build, 50 units",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
}
