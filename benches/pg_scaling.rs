//! Whole order lifecycles per second on PostgreSQL with 1, 2, 4 and 8
//! client **processes**, each beside the same server's `pgbench` figure
//! with as many clients: its floor.
//!
//! `cargo bench --bench pg_scaling` (PostgreSQL: a throwaway server from
//! `initdb`/`postgres` on `PATH`, started by `ezdelivery_testkit::postgres`
//! with `fsync=off`, `synchronous_commit=off`, `full_page_writes=off`, or
//! the server of `EZDELIVERY_TEST_PG=postgres://…`; `pgbench` from `PATH`
//! or beside `postgres`). `-- 'lifecycles/4'` picks one N.
//!
//! How it measures. A fresh database gets one store (two menus) and five
//! riders, once. For each N, N worker processes are started: this bench's
//! own binary again, with [`WORKER`] set to the database's URL. Each opens
//! `PostgresStorage::open_with(url, 2)`, builds an `Engine` with the
//! sandbox gateways (the library's defaults), runs two lifecycles to warm
//! up (connections open, statements prepared) and then waits on its stdin
//! for `run K`: K whole lifecycles (place+pay, cook start, cook finish,
//! deliver start, deliver complete) on orders of its own, answering `done`
//! on stdout. One criterion iteration is "every worker runs one lifecycle"
//! (`iter_custom`: `run iters` to all N, the wall time until the last
//! `done`), with a throughput of N elements, so criterion's elements per
//! second are lifecycles per second. Process start and connecting are not
//! timed. Criterion is used for the multi-process case too; the workers
//! stay up across its samples.
//!
//! Beside each N, in the same run: `pgbench -M prepared -n -c N -j N -T 5`
//! (TPC-B-like, 5 statements a transaction) on databases of its own made by
//! `pgbench -i -s 1` (what the issue names: its one `pgbench_branches` row
//! is written by every transaction, so its clients queue on that row) and
//! `pgbench -i -s 8` (scale ≥ clients, pgbench's own advice: the floor
//! without that hot row). Before the timed runs, one worker's 200
//! lifecycles are counted on the server: write transactions (transaction
//! ids, `pg_current_xact_id()`), and all commits (`pg_stat_database`). The
//! summary at the end divides the engine's write transactions per second by
//! pgbench's TPS. While each N runs, a thread samples what the engine's
//! backends wait for (`pg_stat_activity`, every 20 ms) and prints the
//! shares: the lock waits a hot row would cause show there.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ezdelivery_core::adapters::postgres::PostgresStorage;
use ezdelivery_core::Engine;

const GROUP: &str = "pg_scaling";
/// Set to a database URL: this process is a worker (see the module docs).
const WORKER: &str = "EZDELIVERY_PG_SCALING_WORKER";
/// The client process counts.
const CLIENTS: [usize; 4] = [1, 2, 4, 8];
/// Each worker's pool.
const POOL: u32 = 2;
/// pgbench's duration per run, seconds.
const PGBENCH_SECONDS: u32 = 5;
/// The pgbench scales run beside the engine.
const PGBENCH_SCALES: [u32; 2] = [1, 8];
/// Lifecycles counted for transactions per lifecycle.
const COUNTED: u64 = 200;

/// A worker: opens the storage, warms up, then runs `run K` requests.
fn worker(url: &str) -> ! {
    let storage = PostgresStorage::open_with(url, POOL).expect("the worker opens the database");
    let engine = Engine::builder(storage).build();
    let picks = common::picks();
    let warm_up: u64 = std::env::var("EZDELIVERY_PG_SCALING_WARM_UP").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    for _ in 0..warm_up {
        common::lifecycle(&engine, &picks);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").and_then(|()| out.flush()).expect("stdout");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let k: u64 = line.strip_prefix("run ").and_then(|k| k.trim().parse().ok()).expect("run K");
        for _ in 0..k {
            common::lifecycle(&engine, &picks);
        }
        writeln!(out, "done").and_then(|()| out.flush()).expect("stdout");
    }
    drop(engine);
    std::process::exit(0)
}

/// N running workers.
struct Workers {
    procs: Vec<(Child, ChildStdin, BufReader<ChildStdout>)>,
}

impl Workers {
    fn start(url: &str, n: usize, warm_up: u64) -> Workers {
        let exe = std::env::current_exe().expect("the bench binary");
        let procs: Vec<_> = (0..n)
            .map(|_| {
                let mut child = Command::new(&exe)
                    .env(WORKER, url)
                    .env("EZDELIVERY_PG_SCALING_WARM_UP", warm_up.to_string())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("a worker starts");
                let stdin = child.stdin.take().expect("piped");
                let stdout = BufReader::new(child.stdout.take().expect("piped"));
                (child, stdin, stdout)
            })
            .collect();
        let mut workers = Workers { procs };
        workers.expect_all("ready");
        workers
    }

    fn expect_all(&mut self, word: &str) {
        for (_, _, out) in &mut self.procs {
            let mut line = String::new();
            out.read_line(&mut line).expect("a worker's stdout");
            assert_eq!(line.trim(), word, "a worker failed (its stderr says why)");
        }
    }

    /// Every worker runs `k` lifecycles; the wall time until the last is done.
    fn run(&mut self, k: u64) -> Duration {
        let started = Instant::now();
        for (_, stdin, _) in &mut self.procs {
            writeln!(stdin, "run {k}").and_then(|()| stdin.flush()).expect("a worker's stdin");
        }
        self.expect_all("done");
        started.elapsed()
    }

    fn stop(self) {
        for (mut child, stdin, _) in self.procs {
            drop(stdin);
            let status = child.wait().expect("a worker ends");
            assert!(status.success(), "a worker failed: {status}");
        }
    }
}

/// What the engine's backends were doing, sampled from `pg_stat_activity`.
struct Sampler {
    stop: Arc<AtomicBool>,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    thread: std::thread::JoinHandle<u64>,
}

impl Sampler {
    fn start(maintenance_url: &str, database: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let (url, db, stop2, counts2) =
            (maintenance_url.to_string(), database.to_string(), stop.clone(), counts.clone());
        let thread = std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("the sampler connects");
            let query = client
                .prepare(
                    "SELECT state || ' ' || coalesce(wait_event_type || ':' || wait_event, 'on CPU') FROM \
                     pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> \
                     pg_backend_pid() AND state <> 'idle'",
                )
                .expect("prepare");
            let mut samples = 0;
            while !stop2.load(Ordering::Relaxed) {
                if let Ok(rows) = client.query(&query, &[&db]) {
                    samples += 1;
                    let mut counts = counts2.lock().unwrap();
                    for row in rows {
                        *counts.entry(row.get::<_, String>(0)).or_default() += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            samples
        });
        Sampler { stop, counts, thread }
    }

    /// The states seen, as the mean number of backends in each per sample.
    fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().expect("the sampler") as f64;
        let counts = self.counts.lock().unwrap();
        let mut seen: Vec<(&String, &u64)> = counts.iter().collect();
        seen.sort_by(|a, b| b.1.cmp(a.1));
        let shown: Vec<String> =
            seen.iter().map(|(k, n)| format!("{k} {:.2}", **n as f64 / samples.max(1.0))).collect();
        format!("{} samples; backends not idle, mean per sample: {}", samples, shown.join(", "))
    }
}

/// `pgbench`: on `PATH` (Debian's wrapper too), else beside `postgres`.
fn pgbench() -> Option<PathBuf> {
    let on_path = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    on_path("pgbench").or_else(|| {
        let postgres = std::fs::canonicalize(on_path("postgres")?).ok()?;
        let beside = postgres.parent()?.join("pgbench");
        beside.is_file().then_some(beside)
    })
}

fn run_pgbench(pgbench: &Path, args: &[String]) -> String {
    let out = Command::new(pgbench).args(args).stdin(Stdio::null()).output().expect("pgbench runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "pgbench {args:?} failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    text
}

/// pgbench's TPS (without the initial connection time).
fn pgbench_tps(pgbench: &Path, url: &str, clients: usize) -> f64 {
    let n = clients.to_string();
    let t = PGBENCH_SECONDS.to_string();
    let args: Vec<String> =
        ["-M", "prepared", "-n", "-c", &n, "-j", &n, "-T", &t, url].iter().map(|s| s.to_string()).collect();
    let text = run_pgbench(pgbench, &args);
    text.lines()
        .find_map(|l| l.strip_prefix("tps = ").and_then(|rest| rest.split_whitespace().next()?.parse().ok()))
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

/// The database name at the end of a URL.
fn database_of(url: &str) -> String {
    url.split('?').next().unwrap_or(url).rsplit('/').next().unwrap_or_default().to_string()
}

/// Write transactions and all commits per lifecycle, counted on the server.
fn count_transactions(pg: &ezdelivery_testkit::postgres::PgServer, url: &str) -> (f64, f64) {
    let db = database_of(url);
    let commits = || -> i64 {
        // A worker's statistics reach pg_stat_database when its backends
        // exit, shortly after the worker does.
        std::thread::sleep(Duration::from_millis(1500));
        pg.psql(pg.url(), &format!("SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'")).parse().unwrap()
    };
    let xid = || -> i64 { pg.psql(pg.url(), "SELECT pg_current_xact_id()::text").parse().unwrap() };
    // A worker that only opens, to subtract what opening costs.
    let (c0, x0) = (commits(), xid());
    Workers::start(url, 1, 0).stop();
    let (c1, x1) = (commits(), xid());
    let mut one = Workers::start(url, 1, 0);
    one.run(COUNTED);
    one.stop();
    let (c2, x2) = (commits(), xid());
    // Each xid() call takes one transaction id itself.
    let writes = ((x2 - x1 - 1) - (x1 - x0 - 1)) as f64 / COUNTED as f64;
    let all = ((c2 - c1) - (c1 - c0)) as f64 / COUNTED as f64;
    (writes, all)
}

struct Row {
    clients: usize,
    pgbench: Vec<(u32, f64)>,
    waits: String,
}

fn main() {
    if let Ok(url) = std::env::var(WORKER) {
        worker(&url);
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let Some(pg) = ezdelivery_testkit::postgres::server() else {
        eprintln!("pg_scaling: no PostgreSQL server (see above); nothing measured");
        return;
    };
    let pgbench = pgbench().expect("pgbench on PATH or beside postgres");
    println!("PostgreSQL: {}", pg.psql(pg.url(), "SELECT version()"));
    let settings = pg.psql(
        pg.url(),
        "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN \
         ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_connections', 'wal_level')",
    );
    println!("settings: {settings}");

    let url = pg.fresh_database();
    let setup = common::engine(PostgresStorage::open_with(&url, 1).expect("the database opens"));
    assert_eq!(setup.stores().expect("stores")[0].id, 1, "the lifecycle orders from store 1");
    drop(setup);
    let (writes, all) = count_transactions(pg, &url);
    println!("one lifecycle: {writes:.2} write transactions, {all:.2} transactions in all (read-only included)");

    let bench_dbs: Vec<(u32, String)> = PGBENCH_SCALES
        .iter()
        .map(|&scale| {
            let db = pg.fresh_database();
            run_pgbench(&pgbench, &["-i".into(), "-q".into(), "-s".into(), scale.to_string(), db.clone()]);
            (scale, db)
        })
        .collect();

    let db = database_of(&url);
    let mut rows = Vec::new();
    let mut group = c.benchmark_group(GROUP);
    for clients in CLIENTS {
        group.throughput(Throughput::Elements(clients as u64));
        let mut workers = Workers::start(&url, clients, 2);
        let sampler = Sampler::start(pg.url(), &db);
        group.bench_function(BenchmarkId::new("lifecycles", clients), |b| b.iter_custom(|iters| workers.run(iters)));
        let waits = sampler.finish();
        workers.stop();
        let pgbench = bench_dbs.iter().map(|(scale, db)| (*scale, pgbench_tps(&pgbench, db, clients))).collect();
        rows.push(Row { clients, pgbench, waits });
    }
    group.finish();
    c.final_summary();

    println!("\n== {GROUP}: lifecycles/s by client processes (criterion's estimates), beside pgbench -M prepared");
    println!("one lifecycle = {writes:.2} write transactions ({all:.2} with the read-only ones)");
    println!(
        "{:>3} {:>13} {:>9} {:>15} {:>15} {:>13} {:>13}",
        "N", "lifecycles/s", "vs N=1", "write tx/s", "pgbench s=1", "÷ pgbench s=1", "÷ pgbench s=8"
    );
    let mut first = None;
    for row in &rows {
        let Some(ns) = common::mean_ns(GROUP, &format!("lifecycles/{}", row.clients)) else {
            println!("{:>3} (not measured in this run)", row.clients);
            continue;
        };
        let per_s = row.clients as f64 * 1e9 / ns;
        let base = *first.get_or_insert(per_s);
        let tx = per_s * writes;
        let tps = |scale| row.pgbench.iter().find(|(s, _)| *s == scale).map_or(f64::NAN, |(_, t)| *t);
        println!(
            "{:>3} {:>13.1} {:>8.2}x {:>15.1} {:>15.1} {:>12.2}x {:>12.2}x   (pgbench s=8 {:.1})",
            row.clients,
            per_s,
            per_s / base,
            tx,
            tps(1),
            tx / tps(1),
            tx / tps(8),
            tps(8)
        );
    }
    println!("\nwhat the engine's backends were doing while each N ran (pg_stat_activity):");
    for row in &rows {
        println!("N={}: {}", row.clients, row.waits);
    }
}
