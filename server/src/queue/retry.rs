//! When to try a failed publish again: exponential backoff with full jitter, unless the
//! platform said when (Retry-After), which wins.

use std::time::Duration;

use rand::Rng;

/// Retry policy of the publishing queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a job is dead-lettered (the first one included).
    pub max_attempts: u32,
    /// Backoff cap before jitter for the first retry; doubles each attempt.
    pub base: Duration,
    /// Largest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_secs(5),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryPolicy {
    /// Whether a job that failed on attempt `attempts` may be tried again.
    pub fn may_retry(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }

    /// The delay before the next attempt after `attempts` failed ones: a uniform random
    /// duration in `[0, min(cap, base · 2^(attempts-1))]` ("full jitter"), or the
    /// platform's `retry_after` when it gave one.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after;
        }
        let exponent = attempts.saturating_sub(1).min(30);
        let ceiling = self
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.cap)
            .as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_exponential_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1_000),
        };
        for attempts in 1..=6 {
            let ceiling = (100u64 << (attempts - 1)).min(1_000);
            let mut seen_max = 0;
            for _ in 0..500 {
                let d = policy.delay(attempts, None).as_millis() as u64;
                assert!(d <= ceiling, "attempt {attempts}: {d} > {ceiling}");
                seen_max = seen_max.max(d);
            }
            assert!(seen_max > ceiling / 2, "jitter spreads over the range");
        }
    }

    #[test]
    fn retry_after_wins_and_attempts_are_bounded() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(42))),
            Duration::from_secs(42)
        );
        assert!(policy.may_retry(1) && policy.may_retry(2));
        assert!(!policy.may_retry(3));
    }
}
