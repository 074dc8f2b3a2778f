//! The in-memory engine's lifecycles per second, printed the way the
//! cqrs-es peer prints its own (BENCHMARKS.md, "In-memory engine beside
//! cqrs-es"): one engine on a fresh `MemoryStorage`, a warm-up of 1,000
//! lifecycles, then N timed ones (place and pay, cook start, cook finish,
//! deliver start, deliver complete: eight events, seven write
//! transactions, the mypage view and the outbox's messages).
//!
//! `cargo bench --bench memory_peer -- 20000` (any argument that is not a
//! number, such as cargo's `--bench`, is ignored; the default is 20,000).

mod common;

use std::time::Instant;

use ezdelivery_core::adapters::memory::MemoryStorage;

use common::{engine, lifecycle, picks};

const EVENTS_PER_LIFECYCLE: usize = 8;
const WARMUP: usize = 1_000;

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20_000);
    assert!(n > 0, "N must be a positive number");
    let picks = picks();
    let engine = engine(MemoryStorage::new());
    for _ in 0..WARMUP {
        lifecycle(&engine, &picks);
    }
    let started = Instant::now();
    for _ in 0..n {
        lifecycle(&engine, &picks);
    }
    let secs = started.elapsed().as_secs_f64();
    let lps = n as f64 / secs;
    println!(
        "ezdelivery memory: {lps:.0} lifecycles/s ({:.0} events/s, {:.2} µs per lifecycle)",
        lps * EVENTS_PER_LIFECYCLE as f64,
        1e6 / lps
    );
}
