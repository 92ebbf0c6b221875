//! Live alerts on events the kernel dropped: the agent is blind for those,
//! and whoever watches its alerts must know at once, not when it exits.
//! The first drop is reported right away; later ones at most once per
//! interval, each report carrying what was lost since the previous one.

use sensor::SensorStats;
use std::time::{Duration, Instant};

/// The rule name drop alerts are raised under (source `internal`).
pub const DROP_RULE: &str = "Kernel dropped events";
/// Shortest time between two drop alerts.
pub const DROP_ALERT_INTERVAL: Duration = Duration::from_secs(10);

/// What one drop alert says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReport {
    /// Lost since the previous report.
    pub lost: u64,
    /// Lost since the agent started.
    pub lost_total: u64,
    /// Lost since start, per CPU.
    pub per_cpu: Vec<u64>,
    /// Records that could not be decoded since start (counted apart).
    pub undecodable_total: u64,
}

#[derive(Debug)]
pub struct DropWatch {
    reported: u64,
    last_alert: Option<Instant>,
    interval: Duration,
}

impl Default for DropWatch {
    fn default() -> Self {
        DropWatch { reported: 0, last_alert: None, interval: DROP_ALERT_INTERVAL }
    }
}

impl DropWatch {
    /// A report when drops happened since the last one and the interval has
    /// passed (always when `now` is `None`: the stream is ending).
    pub fn check(&mut self, stats: &SensorStats, now: Option<Instant>) -> Option<DropReport> {
        let total = stats.lost_total();
        if total <= self.reported {
            return None;
        }
        if let (Some(now), Some(last)) = (now, self.last_alert) {
            if now.duration_since(last) < self.interval {
                return None;
            }
        }
        let report = DropReport {
            lost: total - self.reported,
            lost_total: total,
            per_cpu: stats.lost.clone(),
            undecodable_total: stats.decode_errors,
        };
        self.reported = total;
        self.last_alert = now.or(self.last_alert);
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(lost: &[u64]) -> SensorStats {
        SensorStats { lost: lost.to_vec(), ..Default::default() }
    }

    #[test]
    fn first_drop_at_once_then_rate_limited_and_nothing_lost() {
        let mut w = DropWatch::default();
        let t0 = Instant::now();
        assert_eq!(w.check(&stats(&[0, 0]), Some(t0)), None);
        let r = w.check(&stats(&[3, 1]), Some(t0)).expect("first drop");
        assert_eq!((r.lost, r.lost_total, r.per_cpu.clone()), (4, 4, vec![3, 1]));
        assert_eq!(w.check(&stats(&[10, 1]), Some(t0 + Duration::from_secs(1))), None, "within the interval");
        let r = w.check(&stats(&[12, 1]), Some(t0 + DROP_ALERT_INTERVAL)).expect("after the interval");
        assert_eq!((r.lost, r.lost_total), (9, 13));
        // At the end, whatever was not reported yet, without waiting.
        let r = w.check(&stats(&[12, 2]), None).expect("final report");
        assert_eq!((r.lost, r.lost_total), (1, 14));
        assert_eq!(w.check(&stats(&[12, 2]), None), None);
    }
}
