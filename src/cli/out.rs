//! Standard output that a closed reader cannot abort: `migrate run | head -1` must still
//! apply every unit and exit with the run's code.
//!
//! `println!` panics when a write fails (a closed pipe, a full disk), which in a unit
//! listener would stop a run halfway. Here the first failed write ends the output instead:
//! the rest is dropped quietly, and the command goes on with its work.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to standard output failed; nothing is written after that.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output and flushes it, unless an earlier write failed.
pub(super) fn write(text: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    if stdout
        .write_fmt(text)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes one line to standard error, ignoring a failure: a warning or an error message
/// that cannot be shown must not abort the command either.
pub(super) fn warn(text: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// `print!` through [`write`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))
    };
}

/// `println!` through [`write`].
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(super) use {out, outln};
