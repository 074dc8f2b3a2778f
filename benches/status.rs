//! `status ORDER` and `status --customer NAME` (50 orders) on databases of
//! 1,000 and 1,000,000 orders (WAL files, synchronous=FULL), each beside
//! its raw-SQLite floor: the same row reads with bare prepared statements
//! in the same deferred read transaction, without decoding the views.
//!
//! The million-order fixture is built once and cached under the target
//! folder; `cargo bench --bench status` says how long building took.
//! `EZDELIVERY_BENCH_ORDERS=100000` picks a smaller large fixture.
//!
//! Criterion measures each size for seconds, minutes apart, so a ratio of
//! two of its figures also measures how the machine changed in between (on
//! a shared virtual machine, 1k alone moved by 18 % between two runs). The
//! last part therefore times both sizes in paired rounds, a fraction of a
//! second each, one size then the other (the first swapped every round),
//! and prints the ratio of each round and their median. Each size gets an
//! untimed pass first, so it is timed in the state criterion's loop keeps
//! it in. `EZDELIVERY_BENCH_ROUNDS` sets the rounds (21; 0 skips them);
//! run under `taskset -c 0` to keep the thread on one core.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
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

/// The `i`th read of `status ORDER` over `ids` (cycling).
fn engine_order(engine: &Engine, ids: &[i64], i: usize) {
    black_box(engine.status(ids[i % ids.len()]).unwrap());
}

/// The `i`th read of `status --customer` over `names` (cycling).
fn engine_customer(engine: &Engine, names: &[String], i: usize) {
    let views = engine.customer_orders(&names[i % names.len()]).unwrap();
    assert_eq!(views.len(), 50);
    black_box(views);
}

/// The floor of [`engine_order`]: the view row's bare read.
fn floor_order(conn: &Connection, ids: &[i64], i: usize) {
    conn.execute_batch("BEGIN").unwrap();
    let view: String = conn
        .prepare_cached("SELECT view FROM mypage WHERE order_id = ?1")
        .unwrap()
        .query_row([ids[i % ids.len()]], |r| r.get(0))
        .unwrap();
    conn.execute_batch("COMMIT").unwrap();
    black_box(view);
}

/// The floor of [`engine_customer`]: the view rows' bare read.
fn floor_customer(conn: &Connection, names: &[String], i: usize) {
    conn.execute_batch("BEGIN").unwrap();
    let mut stmt = conn.prepare_cached("SELECT view FROM mypage WHERE customer = ?1 ORDER BY order_id").unwrap();
    let views: Vec<String> =
        stmt.query_map([&names[i % names.len()]], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    drop(stmt);
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(views.len(), 50);
    black_box(views);
}

/// Criterion's loop over the reads `read(1)`, `read(2)`, ….
fn bench_reads(group: &mut BenchmarkGroup<'_, WallTime>, id: String, mut read: impl FnMut(usize)) {
    let mut i = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            i += 1;
            read(i)
        })
    });
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
    bench_reads(&mut group, format!("order_{label}"), |i| engine_order(&engine, &ids, i));
    bench_reads(&mut group, format!("customer_{label}"), |i| engine_customer(&engine, &names, i));
    drop(engine);

    let conn = floor_connection(&path);
    bench_reads(&mut group, format!("order_{label}_floor"), |i| floor_order(&conn, &ids, i));
    bench_reads(&mut group, format!("customer_{label}_floor"), |i| floor_customer(&conn, &names, i));
    group.finish();
}

/// Nanoseconds a call of `read(i)` takes, over `reads` calls after `warm`
/// untimed ones (`i` counts on from 0 through both).
fn per_read(warm: usize, reads: usize, read: &mut dyn FnMut(usize)) -> f64 {
    (0..warm).for_each(&mut *read);
    let start = Instant::now();
    (warm..warm + reads).for_each(read);
    start.elapsed().as_nanos() as f64 / reads as f64
}

/// The middle of `values` (the mean of the two middle ones for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// `large` against `small` in `rounds` paired rounds: prints each round's
/// two figures and their ratio, then the median ratio.
fn paired(
    name: &str,
    rounds: usize,
    (warm, reads): (usize, usize),
    small: &mut dyn FnMut(usize),
    large: &mut dyn FnMut(usize),
) {
    println!("\n== {name}: large against 1k, paired rounds ({warm} untimed reads, then {reads} timed, each size)");
    let (mut ratios, mut growths) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for round in 1..=rounds {
        let (s, l) = if round % 2 == 1 {
            let s = per_read(warm, reads, small);
            (s, per_read(warm, reads, large))
        } else {
            let l = per_read(warm, reads, large);
            (per_read(warm, reads, small), l)
        };
        ratios.push(l / s);
        growths.push(l - s);
        println!("round {round:>2}: 1k {:>10}  large {:>10}  ratio {:.3}", common::human(s), common::human(l), l / s);
    }
    let (min, max) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    println!(
        "{name}: median ratio {:.3} (min {min:.3}, max {max:.3}, {rounds} rounds); median growth {}",
        median(&ratios),
        common::human(median(&growths))
    );
}

/// The paired rounds of `status ORDER` and `status --customer`, and of
/// their floors (see the module's comment).
fn paired_rounds(large: u64, rounds: usize) {
    let paths = [common::fixture(1_000).0, common::fixture(large).0];
    let [small_engine, large_engine] =
        paths.each_ref().map(|p| Engine::builder(SqliteStorage::open_with(p, Synchronous::Full).unwrap()).build());
    let [small_conn, large_conn] = paths.each_ref().map(|p| floor_connection(p));
    let (small_ids, large_ids) = (order_ids(1_000), order_ids(large));
    let (small_names, large_names) = (customers(1_000), customers(large));
    // One untimed pass over the ids, as criterion's loop cycles over them;
    // a customer's 50 views take longer, so fewer of those.
    let orders = (small_ids.len(), 4 * small_ids.len());
    let names = (256, 2048);
    paired("status ORDER", rounds, orders, &mut |i| engine_order(&small_engine, &small_ids, i), &mut |i| {
        engine_order(&large_engine, &large_ids, i)
    });
    paired("status ORDER's floor", rounds, orders, &mut |i| floor_order(&small_conn, &small_ids, i), &mut |i| {
        floor_order(&large_conn, &large_ids, i)
    });
    paired("status --customer", rounds, names, &mut |i| engine_customer(&small_engine, &small_names, i), &mut |i| {
        engine_customer(&large_engine, &large_names, i)
    });
    paired(
        "status --customer's floor",
        rounds,
        names,
        &mut |i| floor_customer(&small_conn, &small_names, i),
        &mut |i| floor_customer(&large_conn, &large_names, i),
    );
}

fn main() {
    let large: u64 = std::env::var("EZDELIVERY_BENCH_ORDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rounds: usize = std::env::var("EZDELIVERY_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(21);
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
    if rounds > 0 {
        paired_rounds(large, rounds);
    }
}
