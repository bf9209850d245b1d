//! What a test's change units did, recorded where the test can check it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The lines units push as they run, in order, and a count of attempts.
///
/// Clones share one record: register a clone as a dependency (`Dep<Recorder>` or
/// `&Recorder` in a unit) and read the lines from the test afterwards.
#[derive(Debug, Default, Clone)]
pub(crate) struct Recorder(Arc<Record>);

#[derive(Debug, Default)]
struct Record {
    lines: Mutex<Vec<String>>,
    attempts: AtomicUsize,
}

impl Recorder {
    /// Appends a line.
    pub(crate) fn push(&self, line: impl Into<String>) {
        self.0.lines.lock().unwrap().push(line.into());
    }

    /// Every line pushed so far, in order.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lines.lock().unwrap().clone()
    }

    /// Counts an attempt and returns its number, from 1.
    pub(crate) fn attempt(&self) -> usize {
        self.0.attempts.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// How many attempts were counted.
    pub(crate) fn attempts(&self) -> usize {
        self.0.attempts.load(Ordering::SeqCst)
    }
}
