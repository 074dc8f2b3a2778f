//! When to try a failed gateway call or message again: exponential back-off
//! with jitter, so many queued calls do not all hit a recovering service at
//! the same instant.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use chrono::{DateTime, Utc};

/// How retries are spaced and when a message is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure, in milliseconds.
    pub base_ms: u64,
    /// The longest wait, in milliseconds.
    pub max_ms: u64,
    /// After this many failed tries a message is parked as dead.
    pub max_message_tries: u32,
    /// After this many answers in a row that leave a gateway call's outcome
    /// unknown (the gateway may have acted, but said nothing readable), the
    /// payment or charge is parked as `needs_attention` for a person.
    pub attention_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 20 tries: with these waits (1 s doubling to 5 minutes), a channel
        // down for about an hour before its messages are parked as dead;
        // 8 had parked them after some four minutes, a deploy's downtime.
        RetryPolicy { base_ms: 1_000, max_ms: 300_000, max_message_tries: 20, attention_after: 10 }
    }
}

impl RetryPolicy {
    /// The wait after `tries` failures: `base * 2^(tries-1)`, at most `max`,
    /// scaled by `jitter` (0.5 ..= 1.5).
    ///
    /// ```
    /// use ezdelivery_core::app::retry::RetryPolicy;
    /// let p = RetryPolicy { base_ms: 100, max_ms: 1_000, ..RetryPolicy::default() };
    /// assert_eq!(p.delay_ms(1, 1.0), 100);
    /// assert_eq!(p.delay_ms(3, 1.0), 400);
    /// assert_eq!(p.delay_ms(30, 1.0), 1_000);
    /// assert_eq!(p.delay_ms(2, 0.5), 100);
    /// ```
    pub fn delay_ms(&self, tries: u32, jitter: f64) -> u64 {
        let exp = tries.saturating_sub(1).min(32);
        let raw = self.base_ms.saturating_mul(1u64 << exp).min(self.max_ms);
        (raw as f64 * jitter.clamp(0.5, 1.5)) as u64
    }

    /// When the next try is due after `tries` failures, with random jitter.
    pub fn next_at(&self, tries: u32, now: DateTime<Utc>) -> DateTime<Utc> {
        let delay = self.delay_ms(tries, 0.5 + unit_random());
        crate::domain::time::after_ms(now, delay)
    }
}

/// A number in `0.0 .. 1.0` from the standard library's randomly keyed hasher:
/// plenty for jitter, and no random-number crate needed.
fn unit_random() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_delay_stays_within_half_and_one_and_a_half() {
        let p = RetryPolicy::default();
        let now = DateTime::from_timestamp(0, 0).unwrap();
        for tries in 1..10 {
            let d = (p.next_at(tries, now) - now).num_milliseconds() as u64;
            let raw = p.delay_ms(tries, 1.0);
            assert!(d >= raw / 2 && d <= raw + raw / 2, "{tries}: {d} vs {raw}");
        }
    }
}
