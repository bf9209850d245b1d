//! The wall clock that leases are measured on.
//!
//! A lease's expiry is a wall-clock time, since stores share it with other processes, while
//! the waits between lock attempts and refreshes are tokio timers. Reading the wall clock
//! through tokio's clock keeps the two in step. In a normal run tokio's clock is the system's
//! monotonic clock and [`now`] is `SystemTime::now()`; on tokio's paused test clock
//! (`#[tokio::test(start_paused = true)]`) it stands still and advances with the paused time,
//! so leases expire as sleeps elapse and lock tests need not wait in real time.

use std::time::{Instant, SystemTime};

/// The system time, shifted by how far tokio's clock is from the real monotonic clock.
pub(crate) fn now() -> SystemTime {
    let tokio = tokio::time::Instant::now().into_std();
    let real = Instant::now();
    let wall = SystemTime::now();
    match tokio.checked_duration_since(real) {
        Some(ahead) => wall + ahead,
        None => wall - real.duration_since(tokio),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Room for the thread being descheduled between the clock reads of one call.
    const JITTER: Duration = Duration::from_millis(50);

    fn distance(a: SystemTime, b: SystemTime) -> Duration {
        a.duration_since(b).unwrap_or_else(|e| e.duration())
    }

    #[tokio::test]
    async fn in_real_time_it_reads_the_system_clock() {
        assert!(distance(now(), SystemTime::now()) < JITTER);
    }

    #[tokio::test(start_paused = true)]
    async fn on_the_paused_clock_it_moves_only_with_tokio_time() {
        let start = now();
        std::thread::sleep(2 * JITTER);
        assert!(
            distance(now(), start) < JITTER,
            "real time passing does not move it"
        );

        tokio::time::sleep(Duration::from_secs(3600)).await;
        let slept = distance(now(), start);
        assert!(
            slept.abs_diff(Duration::from_secs(3600)) < JITTER,
            "{slept:?}"
        );
    }
}
