//! Plain-text rendering shared by the `Display` impls: aligned tables, skip reasons.

use std::borrow::Cow;
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

/// `text` without the raw server replies that the MongoDB driver prints in its errors'
/// messages (`, server response: Some(RawDocumentBuf { data: "2b01…" })`): hundreds of hex
/// digits that say nothing to a reader of a log or of a recorded error.
pub fn without_raw_replies(text: &str) -> Cow<'_, str> {
    const START: &str = ", server response: Some(RawDocumentBuf { data: \"";
    const END: &str = "\" })";
    if !text.contains(START) {
        return Cow::Borrowed(text);
    }
    let mut kept = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(START) {
        kept.push_str(&rest[..at]);
        let reply = &rest[at + START.len()..];
        rest = match reply.find(END) {
            Some(end) => &reply[end + END.len()..],
            None => "",
        };
    }
    kept.push_str(rest);
    Cow::Owned(kept)
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

#[cfg(test)]
mod tests {
    use super::without_raw_replies;

    #[test]
    fn raw_server_replies_are_left_out() {
        let driver = "Kind: Command failed: Error code 2 (BadValue): no, labels: {}, source: \
                      None, server response: Some(RawDocumentBuf { data: \"2b0100\" })";
        assert_eq!(
            without_raw_replies(driver),
            "Kind: Command failed: Error code 2 (BadValue): no, labels: {}, source: None"
        );
        let twice = format!("{driver}: {driver}");
        assert!(!without_raw_replies(&twice).contains("RawDocumentBuf"));
        assert_eq!(without_raw_replies("plain"), "plain");
    }
}
