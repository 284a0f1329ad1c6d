//! Pacing: one token bucket per rate-limited target (a Slack channel, a Google Chat space, an
//! incoming webhook), shared by every queue that posts there, so two receivers posting to the
//! same channel still stay within its limit together.
//!
//! A bucket starts with one token, not a full burst: after a restart the destination may still
//! be counting the messages sent just before it, and a full burst then could exceed its limit.
//! A `Retry-After` from the destination pauses the whole bucket, not just the one message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Rate;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

/// Token buckets by target key.
#[derive(Debug, Default)]
pub struct Pacer {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Pacer {
    /// An empty pacer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a token for `key` at `now` if one is available and returns zero; otherwise returns
    /// how long to wait before asking again. `rate` is the current configured rate (it may change
    /// on reload; the bucket follows).
    pub fn try_take(&self, key: &str, rate: Rate, now: Instant) -> Duration {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: 1.0,
            last: now,
            paused_until: None,
        });
        if let Some(until) = b.paused_until {
            if until > now {
                return until - now;
            }
            b.paused_until = None;
            // A pause means the destination saw too much: start again from one token.
            b.tokens = b.tokens.min(1.0);
            b.last = until;
        }
        let per_second = rate.per_second.max(f64::MIN_POSITIVE);
        let burst = f64::from(rate.burst.max(1));
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_second).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64(((1.0 - b.tokens) / per_second).min(3600.0))
        }
    }

    /// Stops `key` until `until` (a destination's `Retry-After`), and spends its tokens.
    pub fn pause(&self, key: &str, until: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: 0.0,
            last: until,
            paused_until: None,
        });
        b.tokens = 0.0;
        b.paused_until = Some(b.paused_until.map_or(until, |p| p.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon_e2e::pacing::{most_in_window, send_greedily};

    const SLACK: Rate = Rate {
        per_second: 1.0,
        burst: 3,
    };

    #[test]
    fn starts_with_one_token_then_refills_up_to_the_burst() {
        let p = Pacer::new();
        let t = Instant::now();
        assert_eq!(p.try_take("c", SLACK, t), Duration::ZERO);
        let wait = p.try_take("c", SLACK, t);
        assert_eq!(wait, Duration::from_secs(1));
        // Ten idle seconds refill only up to the burst of 3.
        let later = t + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(p.try_take("c", SLACK, later), Duration::ZERO);
        }
        assert!(p.try_take("c", SLACK, later) > Duration::ZERO);
    }

    #[test]
    fn sustained_rate_never_exceeds_per_second_plus_burst() {
        let p = Pacer::new();
        let t0 = Instant::now();
        let (sent, _) = send_greedily(t0, t0 + Duration::from_secs(60), |now| {
            p.try_take("c", SLACK, now)
        });
        // In any 10 s window at most burst + 10 messages.
        let most = most_in_window(&sent, Duration::from_secs(10));
        assert!(most <= 13, "{most} messages in a 10 s window");
        assert!(
            sent.len() >= 59,
            "rate is used, not starved: {}",
            sent.len()
        );
    }

    #[test]
    fn buckets_are_per_key() {
        let p = Pacer::new();
        let t = Instant::now();
        assert_eq!(p.try_take("a", SLACK, t), Duration::ZERO);
        assert_eq!(p.try_take("b", SLACK, t), Duration::ZERO);
    }

    #[test]
    fn pause_holds_the_bucket_until_retry_after() {
        let p = Pacer::new();
        let t = Instant::now() + Duration::from_secs(100);
        assert_eq!(p.try_take("c", SLACK, t), Duration::ZERO);
        p.pause("c", t + Duration::from_secs(30));
        assert_eq!(p.try_take("c", SLACK, t), Duration::from_secs(30));
        // After the pause one token is there again, not a burst.
        let after = t + Duration::from_secs(31);
        assert_eq!(p.try_take("c", SLACK, after), Duration::ZERO);
        assert!(p.try_take("c", SLACK, after) > Duration::ZERO);
    }
}
