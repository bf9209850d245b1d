//! Run identifiers and the host name recorded in the history.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one((
        SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ))
}

/// A new execution id: the UTC start time and a random suffix, as Mongock writes it
/// (`2026-11-22T02:47:36.914-4f1c2a`).
pub(crate) fn execution_id() -> String {
    format!(
        "{}-{:06x}",
        format_utc(SystemTime::now()),
        random_u64() & 0xff_ffff
    )
}

/// A new random lock owner id (32 hex digits): this process's token, then a random part.
pub(crate) fn lock_owner() -> String {
    format!("{}{:016x}", process_token(), random_u64())
}

/// 16 hex digits that start every lock owner id of this process.
pub(crate) fn process_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| format!("{:016x}", random_u64()))
}

/// The host name, with `-<service id>` appended when one is configured.
pub(crate) fn hostname(service_identifier: Option<&str>) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    match service_identifier {
        Some(id) => format!("{host}-{id}"),
        None => host,
    }
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.mmm` in UTC.
pub fn format_utc(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_dates() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(format_utc(at(0)), "1970-01-01T00:00:00.000");
        assert_eq!(format_utc(at(951_782_400)), "2000-02-29T00:00:00.000");
        assert_eq!(format_utc(at(1_795_315_656)), "2026-11-22T02:47:36.000");
    }

    #[test]
    fn owners_are_unique() {
        assert_ne!(lock_owner(), lock_owner());
        assert_eq!(lock_owner().len(), 32);
    }
}
