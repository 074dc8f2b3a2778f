//! Event ids: version-7 UUIDs (RFC 9562) in time order, laid out by the
//! `uuid` crate (`uuid::Builder`). This file names nothing else of
//! ezdelivery-core, only `chrono` and `uuid`, so that
//! `benches/primitives.rs` can include it (`#[path]`) and measure it beside
//! `uuid`'s own generator.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

/// Hands out event ids: version-7 UUIDs built by
/// [`uuid::Builder::from_unix_timestamp_millis`] from the command's time in
/// milliseconds and, in the 74 bits left to the caller, 32 bits drawn once
/// per engine and then a 42-bit counter that starts at a random value
/// too. Unique within the process by the counter, across processes by the
/// 74 random bits each engine starts from (two engines collide only by
/// drawing the same 32 bits and counters that meet within one
/// millisecond), which is why the SQLite log keeps no unique index on the
/// id (schema version 8). In time order, so the outbox's key, which
/// starts with the event id, grows at its end instead of touching a
/// random page on every insert.
///
/// Not `uuid`'s own `Uuid::new_v7` with a `ContextV7` (its counter, reseeded
/// every millisecond): that asks the OS for random bits on every id, 322 ns
/// an id against 25 ns here (`cargo bench --bench primitives -- event_id`),
/// and a lifecycle has eight events: the in-memory adapter's lifecycle took
/// 24.3–25.7 µs with it against 20.5–20.9 µs (BENCHMARKS.md, "Hand-written
/// code or a library").
///
/// Shared by the threads of an engine without a lock: the counter is an
/// atomic one (a mutex around it was two locked instructions an event).
pub(crate) struct EventIds {
    random: u32,
    counter: AtomicU64,
}

/// The counter's 42 bits.
const COUNTER: u64 = (1 << 42) - 1;

impl EventIds {
    /// Ids with fresh random bits (one `getrandom`).
    pub(crate) fn new() -> EventIds {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        EventIds { random: (high >> 32) as u32, counter: AtomicU64::new(low & COUNTER) }
    }

    /// The next id, for an event that happened at `at`; written as text
    /// (hyphenated, lower case) only where it is needed, on the stack.
    pub(crate) fn next(&self, at: DateTime<Utc>) -> uuid::Uuid {
        // Wrapping: the counter's bits past 42 are masked off below.
        let counter = self.counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & COUNTER;
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        let random = u64::from(self.random);
        // The builder puts the version over the top 4 bits of the first two
        // bytes and the variant over the top 2 of the third: 12 random bits
        // there, then 20 random bits and the counter.
        let mut bytes = [0u8; 10];
        bytes[..2].copy_from_slice(&((random >> 20) as u16).to_be_bytes());
        bytes[2..].copy_from_slice(&(((random & 0xf_ffff) << 42) | counter).to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_time_random_bits_and_counter_are_where_they_were() {
        let ids = super::EventIds { random: 0xabcd_e123, counter: 6.into() };
        let at = chrono::DateTime::from_timestamp(1_764_000_000, 123_456_789).unwrap();
        let (high, low) = ids.next(at).as_u64_pair();
        assert_eq!(high >> 16, 1_764_000_000_123, "milliseconds first");
        assert_eq!(high & 0xffff, 0x7abc, "version 7, then the top 12 random bits");
        assert_eq!(low, (0b10 << 62) | (0xd_e123 << 42) | 7, "variant, 20 random bits, the counter");
        let full = super::EventIds { random: 0, counter: super::COUNTER.into() };
        assert_eq!(full.next(at).as_u64_pair().1, 0b10 << 62, "the counter's 42 bits wrap to 0");
        assert_eq!(full.next(at).as_u64_pair().1, (0b10 << 62) | 1);
    }

    #[test]
    fn event_ids_are_unique_ordered_version_7_uuids() {
        let ids = super::EventIds::new();
        let at = chrono::DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let text = |id: uuid::Uuid| id.hyphenated().to_string();
        let all: Vec<String> = (0..1000).map(|_| text(ids.next(at))).collect();
        let parsed = uuid::Uuid::parse_str(&all[0]).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert!(all.windows(2).all(|w| w[0] < w[1]), "in order");
        let later = text(ids.next(at + chrono::TimeDelta::milliseconds(1)));
        assert!(later > all[999]);
        let other = text(super::EventIds::new().next(at));
        assert!(!all.contains(&other));
        let counters = [super::EventIds::new().counter.into_inner(), super::EventIds::new().counter.into_inner()];
        assert_ne!(counters[0], counters[1], "each engine's counter starts at random bits of its own");
    }
}
