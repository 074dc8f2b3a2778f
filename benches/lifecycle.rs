//! One full order lifecycle (place+pay, cook start, cook finish, deliver
//! start, deliver complete: seven write transactions) on each storage,
//! each beside its raw-SQLite floor doing the same 47 row writes.
//!
//! One more figure has the engine itself as its floor: the in-memory
//! SQLite lifecycle with 5,005 riders beside the same with five, to show
//! that choosing a rider does not read them all.
//!
//! `cargo bench --bench lifecycle` (add `-- memory` or `-- wal` to pick).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ezdelivery_core::adapters::memory::MemoryStorage;
use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};

use common::{engine, lifecycle, picks, Floor};

const GROUP: &str = "lifecycle";
/// Riders registered for the many-riders figure (on top of the usual five).
const RIDERS: usize = 5_000;

fn benches(c: &mut Criterion) {
    let picks = picks();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(1));

    // A fresh adapter for every sample: the figure for an adapter holding
    // up to a few thousand orders (criterion's iterations per sample).
    group.bench_function("memory", |b| {
        b.iter_custom(|iters| {
            let memory = engine(MemoryStorage::new());
            let start = Instant::now();
            for _ in 0..iters {
                lifecycle(black_box(&memory), &picks);
            }
            start.elapsed()
        })
    });
    // The same adapter once it holds 100,000 orders (and more as it runs):
    // everything stays in memory, so it grows by several kilobytes an order.
    let memory = engine(MemoryStorage::new());
    let filling = Instant::now();
    for _ in 0..100_000 {
        lifecycle(&memory, &picks);
    }
    println!("memory adapter filled with 100,000 lifecycles in {:.1} s", filling.elapsed().as_secs_f64());
    group.bench_function("memory_100k", |b| b.iter(|| lifecycle(black_box(&memory), &picks)));
    drop(memory);

    let in_memory = engine(SqliteStorage::open_in_memory().unwrap());
    group.bench_function("sqlite_in_memory", |b| b.iter(|| lifecycle(&in_memory, &picks)));
    drop(in_memory);
    // The same with 5,000 riders instead of five: choosing the rider at
    // cook start must not read every rider (its floor is the line above).
    let many_riders = engine(SqliteStorage::open_in_memory().unwrap());
    for i in 0..RIDERS {
        many_riders.add_rider(&format!("rider {i}")).unwrap();
    }
    group.bench_function("sqlite_in_memory_riders", |b| b.iter(|| lifecycle(&many_riders, &picks)));
    drop(many_riders);
    let mut floor = Floor::open(None, Synchronous::Full);
    group.bench_function("sqlite_in_memory_floor", |b| b.iter(|| floor.lifecycle()));
    drop(floor);

    // A WAL file with synchronous=FULL, the default: every commit waits for
    // the disk, so there are fewer samples.
    group.sample_size(20).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let engine_db = dir.path().join("engine.db");
    let floor_db = dir.path().join("floor.db");
    let wal = engine(SqliteStorage::open_with(&engine_db, Synchronous::Full).unwrap());
    group.bench_function("sqlite_wal_file", |b| b.iter(|| lifecycle(&wal, &picks)));
    drop(wal);
    let mut floor = Floor::open(Some(&floor_db), Synchronous::Full);
    group.bench_function("sqlite_wal_file_floor", |b| b.iter(|| floor.lifecycle()));
    drop(floor);

    // The same with synchronous=NORMAL, the documented opt-in: commits are
    // not synced one by one, only at checkpoints.
    let (engine_normal, floor_normal) = (dir.path().join("engine-normal.db"), dir.path().join("floor-normal.db"));
    let wal = engine(SqliteStorage::open_with(&engine_normal, Synchronous::Normal).unwrap());
    group.bench_function("sqlite_wal_file_normal", |b| b.iter(|| lifecycle(&wal, &picks)));
    drop(wal);
    let mut floor = Floor::open(Some(&floor_normal), Synchronous::Normal);
    group.bench_function("sqlite_wal_file_normal_floor", |b| b.iter(|| floor.lifecycle()));
    drop(floor);
    group.finish();

    check_same_rows(&engine_db, &floor_db);
}

/// The floor inserted as many rows per lifecycle into each table as the engine.
fn check_same_rows(engine_db: &std::path::Path, floor_db: &std::path::Path) {
    let (e, f) = (rusqlite::Connection::open(engine_db).unwrap(), rusqlite::Connection::open(floor_db).unwrap());
    let per_order = |conn: &rusqlite::Connection| {
        let orders: i64 = conn.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get(0)).unwrap();
        common::row_counts(conn)
            .into_iter()
            .map(|(t, n)| (t, if orders == 0 { 0.0 } else { n as f64 / orders as f64 }))
            .collect::<Vec<_>>()
    };
    let (e, f) = (per_order(&e), per_order(&f));
    for ((table, en), (_, fl)) in e.iter().zip(&f) {
        // The engine's event count includes the catalogue's few events.
        if (en - fl).abs() > 0.05 {
            panic!("rows per lifecycle differ in {table}: engine {en:.2}, floor {fl:.2}");
        }
    }
    println!("rows per lifecycle (engine = floor): {e:?}");
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    common::print_ratios(
        GROUP,
        &[
            ("sqlite in memory", "sqlite_in_memory", "sqlite_in_memory_floor"),
            ("5,005 riders beside 5", "sqlite_in_memory_riders", "sqlite_in_memory"),
            ("sqlite WAL file (FULL)", "sqlite_wal_file", "sqlite_wal_file_floor"),
            ("sqlite WAL file (NORMAL)", "sqlite_wal_file_normal", "sqlite_wal_file_normal_floor"),
        ],
    );
    for id in ["memory", "memory_100k", "sqlite_in_memory", "sqlite_wal_file", "sqlite_wal_file_normal"] {
        if let Some(ns) = common::mean_ns(GROUP, id) {
            println!("{id:<28} {:>12} per lifecycle = {:.0} lifecycles/s", common::human(ns), 1e9 / ns);
        }
    }
}
