//! Checks of rate limiting shared by the router's pacer and store tests: send as fast as a
//! token bucket allows, then count the busiest window.

use std::ops::{Add, AddAssign};
use std::time::Duration;

/// The send times of a sender that sends whenever `take(now)` gives no wait and otherwise
/// waits what it says, from `start` until `end` on a simulated clock; and the clock when it
/// stopped (at or after `end`).
pub fn send_greedily<T>(start: T, end: T, mut take: impl FnMut(T) -> Duration) -> (Vec<T>, T)
where
    T: Copy + PartialOrd + AddAssign<Duration>,
{
    let mut sent = Vec::new();
    let mut now = start;
    while now < end {
        let wait = take(now);
        if wait.is_zero() {
            sent.push(now);
        } else {
            now += wait;
        }
    }
    (sent, now)
}

/// The most sends in any `window` that starts at a send (`sent` in time order).
pub fn most_in_window<T>(sent: &[T], window: Duration) -> usize
where
    T: Copy + PartialOrd + Add<Duration, Output = T>,
{
    (0..sent.len())
        .map(|i| {
            sent[i..]
                .iter()
                .take_while(|t| **t < sent[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_second_with_a_burst_of_three() {
        let mut tokens = 3.0f64;
        let mut last = Duration::ZERO;
        let (sent, stop) = send_greedily(Duration::ZERO, Duration::from_secs(10), |now| {
            tokens = (tokens + (now - last).as_secs_f64()).min(3.0);
            last = now;
            if tokens >= 1.0 {
                tokens -= 1.0;
                Duration::ZERO
            } else {
                Duration::from_secs_f64(1.0 - tokens)
            }
        });
        assert_eq!(sent.len(), 12, "{sent:?}");
        assert!(stop >= Duration::from_secs(10));
        assert_eq!(most_in_window(&sent, Duration::from_secs(1)), 3);
        assert_eq!(most_in_window(&sent, Duration::from_secs(5)), 7);
        assert_eq!(most_in_window::<Duration>(&[], Duration::from_secs(5)), 0);
    }
}
