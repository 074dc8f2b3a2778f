//! Time arithmetic the domain and the application share: pure functions of
//! a given `now` (the domain never reads a clock).

use chrono::{DateTime, TimeDelta, Utc};

/// `at` plus `ms` milliseconds, saturating at the latest time chrono knows
/// (a lease or a back-off of `u64::MAX` ms is "never", not a panic).
///
/// ```
/// use chrono::{DateTime, Utc};
/// use ezdelivery_core::domain::time::after_ms;
/// let t = DateTime::from_timestamp(0, 0).unwrap();
/// assert_eq!(after_ms(t, 1_500), DateTime::from_timestamp(1, 500_000_000).unwrap());
/// assert_eq!(after_ms(t, u64::MAX), DateTime::<Utc>::MAX_UTC);
/// ```
pub fn after_ms(at: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    i64::try_from(ms)
        .ok()
        .and_then(TimeDelta::try_milliseconds)
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
