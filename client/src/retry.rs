//! [`RetryPolicy`]: how often and how patiently idempotent reads are resent.
//!
//! Only reads are retried, and only after an `UNAVAILABLE` status or a broken
//! connection (the client decides that, see `client.rs`); this module is just
//! the schedule: capped exponential backoff with "equal jitter" (a random
//! delay between half the ceiling and the ceiling), so that many clients
//! that failed together do not retry together.

use std::time::Duration;

use rand::Rng as _;

/// Bounded retries with capped exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Backoff ceiling before the first retry.
    pub initial_backoff: Duration,
    /// The ceiling never grows past this.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Two retries, after about 50 ms and 100 ms, capped at 1 s.
    fn default() -> Self {
        Self { max_retries: 2, initial_backoff: Duration::from_millis(50), max_backoff: Duration::from_secs(1) }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// The backoff ceiling before retry number `retry` (0-based):
    /// `initial_backoff * 2^retry`, capped at `max_backoff`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial_backoff.checked_mul(factor).unwrap_or(self.max_backoff).min(self.max_backoff)
    }

    /// The delay to sleep before retry number `retry`: uniformly random
    /// between half the ceiling and the ceiling.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::rng().random_range(0..=spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff_ceiling(0), Duration::from_millis(50));
        assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(100));
        assert_eq!(policy.backoff_ceiling(4), Duration::from_millis(800));
        assert_eq!(policy.backoff_ceiling(5), Duration::from_secs(1));
        assert_eq!(policy.backoff_ceiling(200), Duration::from_secs(1));
    }

    #[test]
    fn jittered_backoff_stays_within_half_and_full_ceiling() {
        let policy = RetryPolicy::default();
        for retry in 0..8 {
            let ceiling = policy.backoff_ceiling(retry);
            for _ in 0..50 {
                let delay = policy.backoff(retry);
                assert!(delay >= ceiling / 2 && delay <= ceiling, "{delay:?} vs {ceiling:?}");
            }
        }
    }
}
