//! The small pieces every command runs many times, each beside the library
//! call it could be (or was) instead, in one run: the figures behind the
//! choices in BENCHMARKS.md, "Hand-written code or a library".
//!
//! - `time`: a stored row's time (chrono's RFC 3339 writer against its
//!   format string), a view's timeline entry (written and read through
//!   chrono's RFC 3339 functions against chrono's serde impls);
//! - `event_id`: the engine's event ids against `uuid`'s own v7 generators;
//! - `event_json`: an event's `data` as JSON text and back, against going
//!   through a `serde_json::Value`;
//! - `id_map`: the memory adapter's id-keyed maps with foldhash against
//!   std's hasher.
//!
//! `cargo bench --bench primitives` (add `-- time`, `-- event_id`, … to pick;
//! `-- --quick` for a rough figure).

#[path = "../crates/ezdelivery-core/src/app/event_ids.rs"]
mod event_ids;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hint::black_box;

use chrono::{DateTime, SecondsFormat, Utc};
use criterion::Criterion;
use ezdelivery_core::domain::view::TimelineEntry;
use ezdelivery_core::domain::{Event, EventType, OrderItem, Placed};
use serde::{Deserialize, Serialize};

/// A timeline entry with chrono's own serde impls for its time.
#[derive(Serialize, Deserialize)]
struct ChronoEntry {
    seq: i64,
    #[serde(rename = "type")]
    kind: String,
    at: DateTime<Utc>,
}

fn time(c: &mut Criterion) {
    let mut group = c.benchmark_group("time");
    let t = DateTime::from_timestamp(1_764_000_000, 123_456_000).expect("a time");
    // A stored row's time (`sqlite::repo::time_text`).
    group.bench_function("row/rfc3339", |b| b.iter(|| black_box(&t).to_rfc3339_opts(SecondsFormat::Micros, true)));
    group
        .bench_function("row/format_string", |b| b.iter(|| black_box(&t).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()));
    let text = t.to_rfc3339_opts(SecondsFormat::Micros, true);
    assert_eq!(text, t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
    group.bench_function("row_read/rfc3339", |b| {
        b.iter(|| DateTime::parse_from_rfc3339(black_box(&text)).map(|t| t.with_timezone(&Utc)))
    });
    group.bench_function("row_read/from_str", |b| b.iter(|| black_box(&text).parse::<DateTime<Utc>>()));

    // A view's timeline entry (`domain::view::stored_time`).
    let ours = TimelineEntry { seq: 3, kind: EventType::CookingStarted, at: t };
    let theirs = ChronoEntry { seq: 3, kind: "CookingStarted".into(), at: t };
    let json = serde_json::to_string(&ours).expect("json");
    assert_eq!(json, serde_json::to_string(&theirs).expect("json"), "the same text");
    group.bench_function("view_entry/rfc3339", |b| b.iter(|| serde_json::to_string(black_box(&ours))));
    group.bench_function("view_entry/chrono_serde", |b| b.iter(|| serde_json::to_string(black_box(&theirs))));
    group.bench_function("view_entry_read/rfc3339", |b| {
        b.iter(|| serde_json::from_str::<TimelineEntry>(black_box(&json)))
    });
    group.bench_function("view_entry_read/chrono_serde", |b| {
        b.iter(|| serde_json::from_str::<ChronoEntry>(black_box(&json)))
    });
    group.finish();
}

fn event_id(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_id");
    let at = DateTime::from_timestamp(1_764_000_000, 123_456_000).expect("a time");
    let (secs, nanos) = (at.timestamp() as u64, at.timestamp_subsec_nanos());
    let ids = event_ids::EventIds::new();
    // Written out, as the uuid ones below are.
    group.bench_function("engine", |b| {
        b.iter(|| ids.next(black_box(at)).hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned())
    });
    // uuid's counter, reseeded every millisecond, and random bits per id.
    let context = uuid::ContextV7::new();
    group.bench_function("uuid_context_v7", |b| {
        b.iter(|| {
            let uuid = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(&context, black_box(secs), nanos));
            uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
        })
    });
    // The same on the system clock, through the process-wide context.
    group.bench_function("uuid_now_v7", |b| {
        b.iter(|| uuid::Uuid::now_v7().hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned())
    });
    group.finish();
}

fn event_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_json");
    let item = |menu_id, name: &str, unit_price, qty| OrderItem { menu_id, name: name.into(), unit_price, qty };
    let placed = Event::OrderPlaced(Box::new(Placed {
        order_id: 12_345,
        store_id: 1,
        store: "교촌치킨".into(),
        customer: "kim".into(),
        address: "서울 강남구".into(),
        items: vec![item(1, "후라이드", 18_000, 2), item(2, "콜라", 2_000, 1)].into(),
        total: 38_000,
    }));
    let started = Event::DeliveryStarted { order_id: 12_345, rider_id: 3, rider: "lee".into() };
    for (name, event) in [("order_placed", &placed), ("delivery_started", &started)] {
        let data = event.data_json();
        assert_eq!(data, event.data().to_string());
        group.bench_function(format!("{name}/write/raw_value"), |b| b.iter(|| black_box(event).data_json()));
        group.bench_function(format!("{name}/write/value"), |b| b.iter(|| black_box(event).data().to_string()));
        group.bench_function(format!("{name}/read/raw_value"), |b| {
            b.iter(|| Event::from_json_parts(event.type_name(), black_box(&data)))
        });
        group.bench_function(format!("{name}/read/value"), |b| {
            b.iter(|| serde_json::from_str(black_box(&data)).and_then(|v| Event::from_parts(event.type_name(), v)))
        });
    }
    group.finish();
}

/// 10,000 ids inserted, then each looked up: a map of the memory adapter.
fn fill_and_find<S: BuildHasher + Default>(n: i64) -> usize {
    let mut map: HashMap<i64, i64, S> = HashMap::default();
    for id in 1..=n {
        map.insert(id, id);
    }
    (1..=n).filter(|id| map.contains_key(id)).count()
}

fn id_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("id_map");
    group.bench_function("foldhash", |b| b.iter(|| fill_and_find::<foldhash::fast::RandomState>(black_box(10_000))));
    group.bench_function("std", |b| b.iter(|| fill_and_find::<std::hash::RandomState>(black_box(10_000))));
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    time(&mut c);
    event_id(&mut c);
    event_json(&mut c);
    id_map(&mut c);
    c.final_summary();
}
