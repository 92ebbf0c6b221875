//! Run-queue latency per container (bpf/sched.h): how long a container's
//! runnable tasks waited for a CPU, as log2 histograms per cgroup that the
//! kernel fills in place. Read on demand (a metrics scrape, `rampart top`).

use crate::abi;

/// Buckets of a histogram: bucket i >= 1 holds waits of [2^i, 2^(i+1)) µs,
/// bucket 0 waits under 2 µs.
pub const SLOTS: usize = 32;

/// One cgroup's waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunQueueHistogram {
    pub slots: [u64; SLOTS],
    pub count: u64,
    pub sum_ns: u64,
}

impl Default for RunQueueHistogram {
    fn default() -> Self {
        RunQueueHistogram { slots: [0; SLOTS], count: 0, sum_ns: 0 }
    }
}

impl RunQueueHistogram {
    /// The kernel writes no count (one atomic add less per sample): it is
    /// the slots' sum.
    pub(crate) fn from_raw(raw: &abi::runq_hist) -> Self {
        RunQueueHistogram { slots: raw.slots, count: raw.slots.iter().sum(), sum_ns: raw.sum_ns }
    }

    /// Add another cgroup's waits (a container with several cgroups).
    pub fn merge(&mut self, other: &RunQueueHistogram) {
        for (a, b) in self.slots.iter_mut().zip(other.slots.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
    }

    /// Upper bound of bucket `i` in seconds (its waits are below it).
    pub fn upper_bound_seconds(i: usize) -> f64 {
        (2u64 << i) as f64 / 1e6
    }

    /// Cumulative counts per upper bound, for a Prometheus histogram; the
    /// buckets past the last non-empty one are left out (`+Inf` covers them).
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let last = self.slots.iter().rposition(|n| *n > 0).unwrap_or(0);
        let mut total = 0;
        self.slots[..=last]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                total += n;
                (Self::upper_bound_seconds(i), total)
            })
            .collect()
    }

    /// The wait below which `q` (0..=1) of the waits fall, as a bucket's upper
    /// bound in seconds; `None` without waits.
    pub fn quantile_upper_bound(&self, q: f64) -> Option<f64> {
        let total: u64 = self.slots.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.slots.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(Self::upper_bound_seconds(i));
            }
        }
        Some(Self::upper_bound_seconds(SLOTS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(usize, u64)]) -> RunQueueHistogram {
        let mut h = RunQueueHistogram::default();
        for (i, n) in pairs {
            h.slots[*i] = *n;
            h.count += n;
        }
        h
    }

    #[test]
    fn buckets_cumulate_up_to_the_last_used_one() {
        let h = hist(&[(0, 5), (3, 2), (10, 1)]);
        let c = h.cumulative();
        assert_eq!(c.len(), 11);
        assert_eq!(c[0], (2e-6, 5));
        assert_eq!(c[3], (16e-6, 7));
        assert_eq!(c[10], (2048e-6, 8));
        assert_eq!(RunQueueHistogram::default().cumulative(), vec![(2e-6, 0)]);
    }

    #[test]
    fn quantiles_are_bucket_bounds() {
        let h = hist(&[(1, 90), (12, 10)]);
        assert_eq!(h.quantile_upper_bound(0.5), Some(4e-6));
        assert_eq!(h.quantile_upper_bound(0.9), Some(4e-6));
        assert_eq!(h.quantile_upper_bound(0.99), Some(8192e-6));
        assert_eq!(RunQueueHistogram::default().quantile_upper_bound(0.99), None);
    }

    #[test]
    fn merging_adds_everything() {
        let mut a = hist(&[(2, 1)]);
        a.sum_ns = 10;
        let mut b = hist(&[(2, 2), (5, 1)]);
        b.sum_ns = 5;
        a.merge(&b);
        assert_eq!((a.slots[2], a.slots[5], a.count, a.sum_ns), (3, 1, 4, 15));
    }
}
