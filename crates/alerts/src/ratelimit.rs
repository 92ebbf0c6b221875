//! Rate limiting and de-duplication of alerts per (rule, container).
//!
//! Each (rule, container) pair has a token bucket (`rate` tokens per second up
//! to `burst`) and remembers the output texts it sent within the de-duplication
//! window. An alert is suppressed when its text was already sent within the
//! window, or when the bucket is empty. Suppressions are counted per pair; the
//! next alert of the pair that goes out reports how many were suppressed since
//! the previous one. Memory is bounded: at most `max_keys` pairs are tracked, the
//! least recently seen are evicted first.

use crate::config::RateLimitConfig;
use serde::Serialize;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// Texts remembered per pair for de-duplication.
const RECENT_TEXTS: usize = 64;

/// What the limiter decided for one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it; `suppressed` alerts of the same pair were held back since the
    /// previous one sent.
    Allow { suppressed: u64 },
    /// The same text was sent within the de-duplication window.
    Duplicate,
    /// The pair's bucket is empty.
    RateLimited,
}

/// Suppression totals of one (rule, container) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuppressedStat {
    pub rule: String,
    /// Empty for host processes.
    pub container_id: String,
    /// Suppressed since the pair was first seen (while it stayed tracked).
    pub suppressed: u64,
    /// Suppressed since the last alert of the pair went out.
    pub pending: u64,
}

struct KeyState {
    rule: String,
    container: String,
    tokens: f64,
    refilled: Instant,
    last_seen: Instant,
    /// (hash of output text, when it was sent)
    recent: VecDeque<(u64, Instant)>,
    pending: u64,
    total: u64,
}

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    window: Duration,
    max_keys: usize,
    hasher: RandomState,
    keys: HashMap<u64, KeyState>,
    rate_limited: u64,
    duplicates: u64,
    evictions: u64,
}

impl RateLimiter {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        RateLimiter {
            rate: cfg.rate,
            burst: f64::from(cfg.burst.max(1)),
            window: cfg.dedup_window(),
            max_keys: cfg.max_keys.max(1),
            hasher: RandomState::new(),
            keys: HashMap::new(),
            rate_limited: 0,
            duplicates: 0,
            evictions: 0,
        }
    }

    /// Decides for an alert of `rule` in `container` (empty for the host) with
    /// output `text`, at `now`.
    pub fn check(&mut self, rule: &str, container: &str, text: &str, now: Instant) -> Decision {
        let key = self.hasher.hash_one((rule, container));
        if !self.keys.contains_key(&key) && self.keys.len() >= self.max_keys {
            self.evict();
        }
        let burst = self.burst;
        let st = self.keys.entry(key).or_insert_with(|| KeyState {
            rule: rule.to_string(),
            container: container.to_string(),
            tokens: burst,
            refilled: now,
            last_seen: now,
            recent: VecDeque::new(),
            pending: 0,
            total: 0,
        });
        st.last_seen = now;
        let elapsed = now.saturating_duration_since(st.refilled).as_secs_f64();
        st.tokens = (st.tokens + elapsed * self.rate).min(burst);
        st.refilled = now;

        let text_hash = if self.window.is_zero() {
            None
        } else {
            while st.recent.front().is_some_and(|(_, t)| now.saturating_duration_since(*t) >= self.window) {
                st.recent.pop_front();
            }
            let h = self.hasher.hash_one(text);
            if st.recent.iter().any(|(r, _)| *r == h) {
                st.pending += 1;
                st.total += 1;
                self.duplicates += 1;
                return Decision::Duplicate;
            }
            Some(h)
        };
        if st.tokens < 1.0 {
            st.pending += 1;
            st.total += 1;
            self.rate_limited += 1;
            return Decision::RateLimited;
        }
        st.tokens -= 1.0;
        if let Some(h) = text_hash {
            if st.recent.len() >= RECENT_TEXTS {
                st.recent.pop_front();
            }
            st.recent.push_back((h, now));
        }
        Decision::Allow { suppressed: std::mem::take(&mut st.pending) }
    }

    /// Drops the least recently seen eighth of the pairs.
    fn evict(&mut self) {
        let n = (self.keys.len() / 8).max(1);
        let mut seen: Vec<(Instant, u64)> = self.keys.iter().map(|(k, s)| (s.last_seen, *k)).collect();
        seen.select_nth_unstable(n - 1);
        for (_, k) in &seen[..n] {
            self.keys.remove(k);
        }
        self.evictions += n as u64;
    }

    pub fn rate_limited(&self) -> u64 {
        self.rate_limited
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    /// The `n` pairs with the most suppressed alerts.
    pub fn top_suppressed(&self, n: usize) -> Vec<SuppressedStat> {
        let mut v: Vec<SuppressedStat> = self
            .keys
            .values()
            .filter(|s| s.total > 0)
            .map(|s| SuppressedStat {
                rule: s.rule.clone(),
                container_id: s.container.clone(),
                suppressed: s.total,
                pending: s.pending,
            })
            .collect();
        v.sort_by(|a, b| b.suppressed.cmp(&a.suppressed).then_with(|| a.rule.cmp(&b.rule)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: f64, burst: u32, window: u64, max_keys: usize) -> RateLimiter {
        RateLimiter::new(&RateLimitConfig { enabled: true, rate, burst, dedup_window_secs: window, max_keys })
    }

    #[test]
    fn burst_then_suppressed_then_reported() {
        let mut l = limiter(1.0, 10, 0, 100);
        let t0 = Instant::now();
        let mut allowed = 0;
        for _ in 0..1000 {
            match l.check("r", "c1", "same text", t0) {
                Decision::Allow { suppressed } => {
                    assert_eq!(suppressed, 0);
                    allowed += 1;
                }
                Decision::RateLimited => {}
                Decision::Duplicate => panic!("dedup is off"),
            }
        }
        assert_eq!(allowed, 10);
        assert_eq!(l.rate_limited(), 990);
        // Another container is not affected.
        assert_eq!(l.check("r", "c2", "same text", t0), Decision::Allow { suppressed: 0 });
        // Half a second later: still no token.
        assert_eq!(l.check("r", "c1", "x", t0 + Duration::from_millis(500)), Decision::RateLimited);
        // One second later a token is back and the alert reports the suppressed.
        assert_eq!(
            l.check("r", "c1", "x", t0 + Duration::from_millis(1000)),
            Decision::Allow { suppressed: 991 }
        );
        assert_eq!(l.check("r", "c1", "x", t0 + Duration::from_millis(1001)), Decision::RateLimited);
        let top = l.top_suppressed(5);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].rule, "r");
        assert_eq!(top[0].container_id, "c1");
        assert_eq!(top[0].suppressed, 992);
        assert_eq!(top[0].pending, 1);
    }

    #[test]
    fn bucket_refills_at_rate_up_to_burst() {
        let mut l = limiter(2.0, 3, 0, 100);
        let t0 = Instant::now();
        let allowed = |l: &mut RateLimiter, t: Instant, n: usize| {
            (0..n).filter(|_| matches!(l.check("r", "", "t", t), Decision::Allow { .. })).count()
        };
        assert_eq!(allowed(&mut l, t0, 10), 3);
        assert_eq!(allowed(&mut l, t0 + Duration::from_secs(1), 10), 2);
        assert_eq!(allowed(&mut l, t0 + Duration::from_secs(100), 10), 3);
    }

    #[test]
    fn identical_text_is_deduplicated_within_the_window() {
        let mut l = limiter(1000.0, 1000, 10, 100);
        let t0 = Instant::now();
        assert_eq!(l.check("r", "c", "a", t0), Decision::Allow { suppressed: 0 });
        for i in 0..99 {
            assert_eq!(l.check("r", "c", "a", t0 + Duration::from_millis(i)), Decision::Duplicate);
        }
        // A different text is not a duplicate, and reports what was suppressed.
        assert_eq!(l.check("r", "c", "b", t0 + Duration::from_secs(1)), Decision::Allow { suppressed: 99 });
        // The same text of another rule is not a duplicate.
        assert_eq!(l.check("r2", "c", "a", t0), Decision::Allow { suppressed: 0 });
        // After the window the text goes out again.
        assert_eq!(l.check("r", "c", "a", t0 + Duration::from_secs(10)), Decision::Allow { suppressed: 0 });
        assert_eq!(l.duplicates(), 99);
    }

    #[test]
    fn keys_are_bounded() {
        let mut l = limiter(1.0, 1, 60, 100);
        let t0 = Instant::now();
        for i in 0..10_000u64 {
            let c = format!("container-{i}");
            l.check("r", &c, "t", t0 + Duration::from_millis(i));
            assert!(l.tracked_keys() <= 100);
        }
        assert!(l.evictions() >= 9_900);
        // The most recent pairs are still tracked: a repeat is suppressed.
        assert_eq!(l.check("r", "container-9999", "t", t0 + Duration::from_secs(10)), Decision::Duplicate);
    }
}
