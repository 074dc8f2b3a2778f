//! `status ORDER` and `status --customer NAME` (50 orders) on databases of
//! 1,000 and 1,000,000 orders (WAL files, synchronous=FULL), each beside
//! its raw-SQLite floor: the same row reads with bare prepared statements
//! in the same deferred read transaction, without decoding the views.
//!
//! The million-order fixture is built once and cached under the target
//! folder; `cargo bench --bench status` says how long building took.
//! `EZDELIVERY_BENCH_ORDERS=100000` picks a smaller large fixture.

mod common;

use std::hint::black_box;
use std::path::Path;

use criterion::Criterion;
use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
use ezdelivery_core::Engine;
use rusqlite::Connection;

const GROUP: &str = "status";

/// Order ids spread over the whole database, the same in every run.
fn order_ids(orders: u64) -> Vec<i64> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % orders) as i64 + 1
        })
        .collect()
}

/// A customer's name spread over the database (each has 50 orders).
fn customers(orders: u64) -> Vec<String> {
    let count = orders / 50;
    order_ids(count).into_iter().map(|i| format!("customer {i}")).collect()
}

fn floor_connection(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    common::pragmas(&conn, Synchronous::Full);
    conn
}

fn bench_size(c: &mut Criterion, orders: u64, label: &str) {
    let (path, built) = common::fixture(orders);
    println!("fixture of {orders} orders: {} (built in {:.1} s)", path.display(), built.as_secs_f64());
    // Read the file once, so that the engine and the floor both run on a
    // warm operating-system page cache, whichever goes first.
    std::io::copy(&mut std::fs::File::open(&path).unwrap(), &mut std::io::sink()).unwrap();
    let mut group = c.benchmark_group(GROUP);
    let ids = order_ids(orders);
    let names = customers(orders);

    let engine = Engine::builder(SqliteStorage::open_with(&path, Synchronous::Full).unwrap()).build();
    let mut i = 0;
    group.bench_function(format!("order_{label}"), |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            black_box(engine.status(ids[i]).unwrap())
        })
    });
    let mut n = 0;
    group.bench_function(format!("customer_{label}"), |b| {
        b.iter(|| {
            n = (n + 1) % names.len();
            let views = engine.customer_orders(&names[n]).unwrap();
            assert_eq!(views.len(), 50);
            black_box(views)
        })
    });
    drop(engine);

    let conn = floor_connection(&path);
    let mut i = 0;
    group.bench_function(format!("order_{label}_floor"), |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            conn.execute_batch("BEGIN").unwrap();
            let view: String = conn
                .prepare_cached("SELECT view FROM mypage WHERE order_id = ?1")
                .unwrap()
                .query_row([ids[i]], |r| r.get(0))
                .unwrap();
            conn.execute_batch("COMMIT").unwrap();
            black_box(view)
        })
    });
    let mut n = 0;
    group.bench_function(format!("customer_{label}_floor"), |b| {
        b.iter(|| {
            n = (n + 1) % names.len();
            conn.execute_batch("BEGIN").unwrap();
            let mut stmt =
                conn.prepare_cached("SELECT view FROM mypage WHERE customer = ?1 ORDER BY order_id").unwrap();
            let views: Vec<String> =
                stmt.query_map([&names[n]], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
            drop(stmt);
            conn.execute_batch("COMMIT").unwrap();
            assert_eq!(views.len(), 50);
            black_box(views)
        })
    });
    group.finish();
}

fn main() {
    let large: u64 = std::env::var("EZDELIVERY_BENCH_ORDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut c = Criterion::default().configure_from_args();
    bench_size(&mut c, 1_000, "1k");
    bench_size(&mut c, large, "large");
    c.final_summary();
    common::print_ratios(
        GROUP,
        &[
            ("status, 1k orders", "order_1k", "order_1k_floor"),
            ("status, large", "order_large", "order_large_floor"),
            ("status --customer, 1k", "customer_1k", "customer_1k_floor"),
            ("status --customer, large", "customer_large", "customer_large_floor"),
            ("status: large against 1k", "order_large", "order_1k"),
            ("--customer: large against 1k", "customer_large", "customer_1k"),
        ],
    );
}
