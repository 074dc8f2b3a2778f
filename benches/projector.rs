//! Projector throughput: `projection rebuild` (delete every view, replay
//! the whole log in one transaction) on a WAL file of 10,000 delivered
//! orders, in events per second, beside its raw-SQLite floor: the same
//! reads of the log and the same view writes with bare prepared
//! statements, without decoding events or building views.

mod common;

use std::time::Duration;

use criterion::{Criterion, Throughput};
use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
use ezdelivery_core::Engine;
use rusqlite::{params, Connection};

const GROUP: &str = "projector";
const ORDERS: u64 = 10_000;

fn main() {
    let (fixture, _) = common::fixture(ORDERS);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("rebuild.db");
    std::fs::copy(&fixture, &path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let events: u64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
    let view: String = conn.query_row("SELECT view FROM mypage LIMIT 1", [], |r| r.get(0)).unwrap();
    drop(conn);

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(events)).sample_size(10).measurement_time(Duration::from_secs(15));

    let engine = Engine::builder(SqliteStorage::open_with(&path, Synchronous::Full).unwrap()).build();
    group.bench_function("rebuild", |b| {
        b.iter(|| {
            let p = engine.rebuild_projection().unwrap();
            assert_eq!(p.events as u64, events);
        })
    });
    drop(engine);

    let conn = Connection::open(&path).unwrap();
    common::pragmas(&conn, Synchronous::Full);
    group.bench_function("rebuild_floor", |b| {
        b.iter(|| {
            conn.execute_batch("BEGIN IMMEDIATE; DELETE FROM mypage;").unwrap();
            let mut read = conn
                .prepare_cached(
                    "SELECT seq, id, type, order_id, at, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .unwrap();
            let mut write = conn
                .prepare_cached(
                    "INSERT INTO mypage (order_id, customer, view) VALUES (?1, ?2, ?3) ON CONFLICT (order_id) \
                     DO UPDATE SET customer = excluded.customer, view = excluded.view",
                )
                .unwrap();
            let (mut after, mut seen, mut last_order) = (0i64, 0u64, None);
            loop {
                let mut rows = read.query(params![after, 1000]).unwrap();
                let mut n = 0;
                while let Some(row) = rows.next().unwrap() {
                    n += 1;
                    after = row.get(0).unwrap();
                    let order: Option<i64> = row.get(3).unwrap();
                    let _data: String = row.get(5).unwrap();
                    // One view write per run of an order's events, as the projector does.
                    if order.is_some() && order != last_order {
                        write.execute(params![order, "customer", view]).unwrap();
                        last_order = order;
                    }
                }
                seen += n;
                if n < 1000 {
                    break;
                }
            }
            drop((read, write));
            conn.execute_batch("UPDATE checkpoints SET seq = (SELECT MAX(seq) FROM events); COMMIT;").unwrap();
            assert_eq!(seen, events);
        })
    });
    group.finish();
    c.final_summary();
    common::print_ratios(GROUP, &[("projection rebuild", "rebuild", "rebuild_floor")]);
    for id in ["rebuild", "rebuild_floor"] {
        if let Some(ns) = common::mean_ns(GROUP, id) {
            println!("{id:<28} {:.0} events/s ({events} events)", events as f64 / (ns / 1e9));
        }
    }
}
