//! Time arithmetic the domain and the application share: pure functions of
//! a given `now` (the domain never reads a clock).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

/// `at` plus `ms` milliseconds, saturating at [`latest`] (a lease or a
/// back-off of `u64::MAX` ms is "never", not a panic, and a time every
/// storage can keep).
///
/// ```
/// use chrono::{DateTime, Utc};
/// use ezdelivery_core::domain::time::{after_ms, latest};
/// let t = DateTime::from_timestamp(0, 0).unwrap();
/// assert_eq!(after_ms(t, 1_500), DateTime::from_timestamp(1, 500_000_000).unwrap());
/// assert_eq!(after_ms(t, u64::MAX), latest());
/// assert_eq!(after_ms(t, 200_000 * 365 * 86_400_000), latest());
/// ```
pub fn after_ms(at: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    i64::try_from(ms)
        .ok()
        .and_then(TimeDelta::try_milliseconds)
        .and_then(|d| at.checked_add_signed(d))
        .map_or(latest(), |t| t.min(latest()))
}

/// The latest time a storage keeps: the last microsecond of the year 9999
/// (times are written with four-digit years). A time computed past it
/// (a lease or back-off of centuries, set by an embedder) stands at it:
/// written as it was, SQLite could not read it back, and every later read
/// of the row failed.
pub fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 999_999_000).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at` for people, to the second, in RFC 3339 UTC (`2024-05-01T09:00:00Z`):
/// when a lease lapses, when a breaker lets calls through again.
///
/// ```
/// use ezdelivery_core::domain::time::to_the_second;
/// let t = chrono::DateTime::from_timestamp(1_714_554_000, 999_000_000).unwrap();
/// assert_eq!(to_the_second(&t), "2024-05-01T09:00:00Z");
/// ```
pub fn to_the_second(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}
