//! Lateness of claimed jobs (claim time minus due time, on the queue's clock) since the
//! process started, summarised as percentiles for `queueStats`.

use std::sync::Mutex;

/// Samples kept; older ones are overwritten (a ring), so memory stays bounded.
const CAPACITY: usize = 65_536;

/// Percentiles of recorded lateness, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatenessSummary {
    /// Samples recorded since start.
    pub count: u64,
    /// Median.
    pub p50: i64,
    /// 90th percentile.
    pub p90: i64,
    /// 99th percentile.
    pub p99: i64,
    /// Largest.
    pub max: i64,
}

#[derive(Default)]
struct Ring {
    samples: Vec<i64>,
    next: usize,
    count: u64,
}

/// Records lateness samples from every worker of the process.
#[derive(Default)]
pub struct LatenessRecorder {
    ring: Mutex<Ring>,
}

impl std::fmt::Debug for LatenessRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatenessRecorder").finish_non_exhaustive()
    }
}

impl LatenessRecorder {
    /// Records one job's lateness (negative values, early claims, count as 0).
    pub fn record(&self, lateness_ms: i64) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let value = lateness_ms.max(0);
        if ring.samples.len() < CAPACITY {
            ring.samples.push(value);
        } else {
            let slot = ring.next;
            ring.samples[slot] = value;
        }
        ring.next = (ring.next + 1) % CAPACITY;
        ring.count += 1;
    }

    /// Percentiles over the retained samples.
    pub fn summary(&self) -> LatenessSummary {
        let (mut samples, count) = {
            let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            (ring.samples.clone(), ring.count)
        };
        if samples.is_empty() {
            return LatenessSummary::default();
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        LatenessSummary {
            count,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let recorder = LatenessRecorder::default();
        for ms in 1..=100 {
            recorder.record(ms);
        }
        recorder.record(-5);
        let s = recorder.summary();
        assert_eq!(s.count, 101);
        assert_eq!(s.p50, 50);
        assert_eq!(s.p99, 99);
        assert_eq!(s.max, 100);
    }
}
