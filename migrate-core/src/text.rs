//! Plain-text rendering shared by the `Display` impls: aligned tables, skip reasons.

use std::fmt;

use crate::report::{RunStatus, SkipReason};
use crate::unlock::ReleaseReason;

/// A skip reason in words, for tables and logs.
pub(crate) fn skip_text(reason: &SkipReason) -> String {
    match reason {
        SkipReason::AlreadyExecuted => "already executed".into(),
        SkipReason::SystemVersion { version } => {
            format!("system version {version} outside the window")
        }
        SkipReason::Profile => "not selected by the active profiles".into(),
        SkipReason::AfterTarget { target } => format!("ordered after `{target}`"),
    }
}

/// Why a lock was released by hand, in words, for logs.
pub(crate) fn release_reason_text(reason: ReleaseReason) -> &'static str {
    match reason {
        ReleaseReason::Expired => "its lease had ended",
        ReleaseReason::OwnedByThisProcess => "it belonged to this process",
        ReleaseReason::Forced => "forced while its lease was still running",
    }
}

/// How a run ended, in words, for logs.
pub(crate) fn run_status_text(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "completed",
        RunStatus::Disabled => "disabled",
        RunStatus::LockUnavailable => "lock unavailable",
    }
}

/// Writes rows as columns padded to their widest cell; the last column is not padded.
pub fn write_table(f: &mut fmt::Formatter<'_>, rows: &[Vec<String>]) -> fmt::Result {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}
