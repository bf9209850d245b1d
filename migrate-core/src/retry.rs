//! Backoff for transient failures: exponential, with jitter, under an overall deadline.

use std::time::Duration;

use tokio::time::Instant;

use crate::ids;

/// The first pause.
const BASE: Duration = Duration::from_millis(50);
/// The longest pause.
const CAP: Duration = Duration::from_secs(5);

/// The pauses between the attempts of one operation that fails transiently: exponential,
/// with jitter, until a deadline. The runner retries its own writes with one; a unit that
/// retries its own transient errors gets one from
/// [`RunContext::backoff`](crate::RunContext::backoff).
#[derive(Debug)]
pub struct Backoff {
    deadline: Instant,
    retries: u32,
}

impl Backoff {
    /// Retries allowed until `budget` from now has passed.
    pub(crate) fn new(budget: Duration) -> Self {
        Backoff {
            deadline: Instant::now() + budget,
            retries: 0,
        }
    }

    /// How many retries were granted so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The pause before the next attempt: exponential in the retries so far, with jitter
    /// between half and all of it so that racing runners spread out. `None` once the pause
    /// would end past the deadline.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let exponential = BASE.saturating_mul(1 << self.retries.min(16)).min(CAP);
        let jitter = (ids::random_u64() % 1_000) as u32;
        let delay = exponential / 2 + exponential / 2 * jitter / 1_000;
        if Instant::now() + delay > self.deadline {
            return None;
        }
        self.retries += 1;
        Some(delay)
    }

    /// Sleeps the next pause; `false` (without sleeping) once the deadline is reached.
    pub async fn wait(&mut self) -> bool {
        match self.next_delay() {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pauses_grow_and_stop_at_the_deadline() {
        let mut backoff = Backoff::new(Duration::from_secs(10));
        let mut pauses = Vec::new();
        while let Some(delay) = backoff.next_delay() {
            tokio::time::sleep(delay).await;
            pauses.push(delay);
        }
        assert!(pauses.len() >= 4, "{pauses:?}");
        assert!(pauses[0] >= BASE / 2 && pauses[0] <= BASE, "{pauses:?}");
        assert!(pauses.iter().all(|p| *p <= CAP), "{pauses:?}");
        assert!(pauses[3] >= BASE * 4, "exponential: {pauses:?}");
        let total: Duration = pauses.iter().sum();
        assert!(total <= Duration::from_secs(10), "{total:?}");
        assert_eq!(backoff.retries() as usize, pauses.len());
    }
}
