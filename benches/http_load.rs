//! `ezdelivery serve` under a bounded load: requests per second and
//! p50/p99/max latency of `POST /orders` (placed and paid, each a new
//! order) and `GET /orders/{id}` (the orders just placed), at one and at
//! several client threads, each beside its floors measured in the same
//! run.
//!
//! **The server** runs in this process, as `ezdelivery serve` builds it:
//! [`ezdelivery_http::router`] and [`ezdelivery_http::serve`] on a tokio
//! multi-thread runtime (one worker per core, as [`ezdelivery_http::run`])
//! in a background thread, listening on `127.0.0.1:0` only, over a fresh
//! SQLite file opened as the CLI opens it (WAL, `synchronous=FULL`, the
//! default), with the sandbox gateways counted by [`Metrics`] and the
//! console notifier writing to nowhere (the CLI's `-q`: messages are still
//! delivered and marked so, one more write transaction a command, as the
//! server does). The tokens come from [`Tokens::parse`] (no file); the
//! server's [`Settings`] are the defaults (8 engine calls at once, the
//! default pool size). At the end a oneshot ends the shutdown future
//! given to `serve` and the thread is joined: a server error fails the
//! bench.
//!
//! **The clients** are plain threads, each with its own `ureq` agent (one
//! keep-alive connection, opened by a `GET /healthz` before the clock
//! starts). A phase is a fixed number of requests split evenly among the
//! threads; the threads start together at a barrier and the phase's time
//! runs from that barrier to the last answer, so requests/s is requests ÷
//! that wall time. Every request is timed on its own, from before it is
//! sent to its body read whole; the latencies of all threads are merged
//! and sorted (p50 and p99 by nearest rank). Every answer is checked
//! after its clock stops: `POST /orders` must be 201 with a `paid` order,
//! `GET /orders/{id}` 200 with that order; anything else panics with the
//! status and body, so a failing server fails the bench instead of looking
//! fast.
//!
//! **The floors**, in the same run, in the same order of phases:
//! - *engine*: the same calls made directly on an engine built the same
//!   way over its own SQLite file, by the same number of threads, no HTTP
//!   (`place_order` with `pay_now`, then `status` of each order made). The
//!   engine's own cost: what the HTTP layer adds is the difference.
//! - *CLI*: the release `ezdelivery` binary, one process a command, on its
//!   own file: `order --pay` then `status ORDER` of the orders it made
//!   (`EZD_CLI_RUNS` each, 100 by default, one at a time). One HTTP request
//!   against one CLI process. The binary is `EZD_BIN`, or `ezdelivery`
//!   beside this bench's own target folder (`cargo build --release -p
//!   ezdelivery-cli` first: this bench does not build it); when there is
//!   none the CLI rows are skipped with a message.
//!
//! Settings (environment): `EZD_HTTP_REQUESTS` requests a phase (2,000),
//! `EZD_HTTP_CONCURRENCY` client threads, comma-separated (`1,8`),
//! `EZD_CLI_RUNS` (100), `EZD_BIN`. Run without `--bench` (`cargo test
//! --benches`) it makes a quick check run of 40 requests and 3 CLI runs.
//! Nothing is asserted about timings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ezdelivery_core::adapters::console::ConsoleNotifier;
use ezdelivery_core::adapters::sandbox::{SandboxCharge, SandboxPayment, SandboxSettings};
use ezdelivery_core::adapters::sqlite::SqliteStorage;
use ezdelivery_core::{Engine, ItemPick, NewOrder};
use ezdelivery_http::metrics::{Metered, Metrics};
use ezdelivery_http::tokens::{sha256_hex, Tokens};
use ezdelivery_http::Settings;
use serde_json::Value;

/// The customer's bearer token (its digest is the server's only copy).
const TOKEN: &str = "bench-kim-token";
/// The customer every order is for.
const CUSTOMER: &str = "kim";
/// Where every order goes.
const ADDRESS: &str = "서울 강남구";
/// The body of every `POST /orders`: the engine floor and the CLI order the same.
const ORDER_BODY: &str = r#"{"store_id":1,"items":[{"menu":"후라이드","qty":2},{"menu":"콜라","qty":1}],"address":"서울 강남구","pay":true}"#;
/// How long a client waits for one answer before the bench fails.
const DEADLINE: Duration = Duration::from_secs(60);
/// Requests of each kind made before the first measured phase, one thread.
const WARM_UP: usize = 100;

/// What to run.
struct Options {
    requests: usize,
    concurrency: Vec<usize>,
    cli_runs: usize,
}

impl Options {
    fn from_env() -> Options {
        let quick = !std::env::args().any(|a| a == "--bench");
        let number = |name: &str, default: usize| match std::env::var(name) {
            Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v}: a whole number, please")),
            Err(_) => default,
        };
        let concurrency = match std::env::var("EZD_HTTP_CONCURRENCY") {
            Ok(v) => v
                .split(',')
                .map(|c| c.trim().parse().unwrap_or_else(|_| panic!("EZD_HTTP_CONCURRENCY={v}: numbers like 1,8")))
                .collect(),
            Err(_) => vec![1, 8],
        };
        let options = Options {
            requests: number("EZD_HTTP_REQUESTS", if quick { 40 } else { 2_000 }),
            concurrency,
            cli_runs: number("EZD_CLI_RUNS", if quick { 3 } else { 100 }),
        };
        assert!(options.requests > 0, "EZD_HTTP_REQUESTS must be at least 1");
        assert!(options.concurrency.iter().all(|&c| c > 0), "EZD_HTTP_CONCURRENCY: at least 1 thread");
        options
    }
}

/// The engine `ezdelivery -q serve` builds on the default SQLite storage:
/// sandbox gateways counted in `metrics`, the console notifier silenced.
fn engine(path: &Path, metrics: &Arc<Metrics>) -> Engine {
    Engine::builder(SqliteStorage::open(path).expect("open the bench database"))
        .payment(Metered::new(SandboxPayment::new(SandboxSettings::default()), Arc::clone(metrics)))
        .charge(Metered::new(SandboxCharge::new(SandboxSettings::default()), Arc::clone(metrics)))
        .notifier(ConsoleNotifier::to(Box::new(std::io::sink())))
        .build()
}

/// Store 1 (owner park) with the two menus of [`ORDER_BODY`], and a rider.
fn seed(engine: &Engine) {
    let store = engine.add_store("교촌치킨", Some("park"), Some("서울")).expect("add the store");
    assert_eq!(store.id, 1, "the bench's orders go to store 1");
    engine.add_menu(store.id, "후라이드", 18_000).expect("add a menu");
    engine.add_menu(store.id, "콜라", 2_000).expect("add a menu");
    engine.add_rider("han").expect("add a rider");
}

/// The server, running in a thread of its own until [`Server::stop`].
struct Server {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: thread::JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn start(engine: Arc<Engine>) -> Server {
        let tokens = Tokens::parse(&format!(
            "[[token]]\nsha256 = \"{}\"\nrole = \"customer\"\nname = \"{CUSTOMER}\"\n",
            sha256_hex(TOKEN)
        ))
        .expect("the bench's tokens");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().expect("the listening address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
                let engine_outlives_runtime = Arc::clone(&engine);
                let served = runtime.block_on(async move {
                    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
                    let at_work = ezdelivery_http::AtWork::default();
                    let metrics = Metrics::new();
                    let router = ezdelivery_http::router(
                        engine,
                        tokens,
                        Arc::clone(&metrics),
                        Settings::default(),
                        stopping,
                        at_work.clone(),
                    );
                    let shutdown = async move {
                        let _ = stopped.await;
                        let _ = stopping_tx.send(true);
                    };
                    let served =
                        ezdelivery_http::serve(listener, router, &Settings::default(), &metrics, shutdown).await;
                    at_work.finished().await;
                    served
                });
                drop(runtime);
                drop(engine_outlives_runtime);
                served
            })
            .expect("start the server thread");
        Server { base, stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("the server thread panicked").expect("the server failed");
    }
}

/// One client thread's keep-alive connection to the server.
struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Client {
    /// A new agent, its connection opened by `GET /healthz`.
    fn connect(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(DEADLINE))
            .max_idle_connections_per_host(1)
            .build()
            .into();
        let client = Client { agent, base: base.to_string(), auth: format!("Bearer {TOKEN}") };
        let (status, body) = client.answer(client.agent.get(format!("{}/healthz", client.base)).call());
        assert_eq!(status, 200, "GET /healthz answered {status}: {body}");
        client
    }

    fn answer(&self, sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
        let mut response = sent.unwrap_or_else(|e| panic!("the request failed: {e}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_else(|e| panic!("reading the answer failed: {e}"));
        (status, body)
    }

    fn post_order(&self) -> (u16, String) {
        self.answer(
            self.agent
                .post(format!("{}/orders", self.base))
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/json")
                .send(ORDER_BODY),
        )
    }

    fn get_order(&self, id: i64) -> (u16, String) {
        self.answer(self.agent.get(format!("{}/orders/{id}", self.base)).header("Authorization", &self.auth).call())
    }
}

/// The order id of a `POST /orders` answer, which must be 201 and paid.
fn placed(status: u16, body: &str) -> i64 {
    assert_eq!(status, 201, "POST /orders answered {status}: {body}");
    let view: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("POST /orders: {e}: {body}"));
    assert_eq!(view["status"], "paid", "POST /orders did not pay: {body}");
    view["order_id"].as_i64().unwrap_or_else(|| panic!("POST /orders: no order_id: {body}"))
}

/// Checks a `GET /orders/{id}` answer: 200 and that order.
fn viewed(id: i64, status: u16, body: &str) {
    assert_eq!(status, 200, "GET /orders/{id} answered {status}: {body}");
    let view: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("GET /orders/{id}: {e}: {body}"));
    assert_eq!(view["order_id"].as_i64(), Some(id), "GET /orders/{id} answered another order: {body}");
}

/// One phase's measurements.
struct Run {
    wall: Duration,
    latencies: Vec<Duration>,
}

/// What a phase's figures come to.
struct Figures {
    requests: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Run {
    fn figures(mut self) -> Figures {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let rank = |q: f64| self.latencies[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Figures {
            requests: n,
            per_second: n as f64 / self.wall.as_secs_f64(),
            p50: rank(0.50),
            p99: rank(0.99),
            max: self.latencies[n - 1],
        }
    }
}

/// Runs `jobs[t]` on thread `t`, each thread with the state `connect`
/// makes before the clock starts; `call` does one job and returns what
/// `check` then checks, off the clock. Returns the phase's time and
/// latencies, and what each job returned, in the order of `jobs`.
fn drive<J, C, R, O>(
    jobs: Vec<Vec<J>>,
    connect: impl Fn() -> C + Sync,
    call: impl Fn(&C, &J) -> R + Sync,
    check: impl Fn(&J, R) -> O + Sync,
) -> (Run, Vec<O>)
where
    J: Send,
    O: Send,
{
    let barrier = Barrier::new(jobs.len() + 1);
    let (barrier, connect, call, check) = (&barrier, &connect, &call, &check);
    thread::scope(|scope| {
        let threads: Vec<_> = jobs
            .into_iter()
            .map(|jobs| {
                scope.spawn(move || {
                    let client = connect();
                    let mut latencies = Vec::with_capacity(jobs.len());
                    let mut outs = Vec::with_capacity(jobs.len());
                    barrier.wait();
                    for job in &jobs {
                        let started = Instant::now();
                        let answer = call(&client, job);
                        latencies.push(started.elapsed());
                        outs.push(check(job, answer));
                    }
                    (latencies, outs)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let mut latencies = Vec::new();
        let mut outs = Vec::new();
        for t in threads {
            let (l, o) = t.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            latencies.extend(l);
            outs.extend(o);
        }
        (Run { wall: started.elapsed(), latencies }, outs)
    })
}

/// `requests` jobs split as evenly as can be among `threads`.
fn split<T: Clone>(items: &[T], threads: usize) -> Vec<Vec<T>> {
    let mut jobs = vec![Vec::new(); threads];
    for (i, item) in items.iter().enumerate() {
        jobs[i % threads].push(item.clone());
    }
    jobs
}

fn post_over_http(base: &str, requests: usize, threads: usize) -> (Run, Vec<i64>) {
    drive(
        split(&vec![(); requests], threads),
        || Client::connect(base),
        |c, _| c.post_order(),
        |_, (s, b)| placed(s, &b),
    )
}

fn get_over_http(base: &str, ids: &[i64], threads: usize) -> Run {
    drive(split(ids, threads), || Client::connect(base), |c, &id| c.get_order(id), |&id, (s, b)| viewed(id, s, &b)).0
}

fn place_in_process(engine: &Engine, requests: usize, threads: usize) -> (Run, Vec<i64>) {
    let picks = [ItemPick::new("후라이드", 2), ItemPick::new("콜라", 1)];
    drive(
        split(&vec![(); requests], threads),
        || (),
        |(), _| engine.place_order(NewOrder::new(1, CUSTOMER, &picks).deliver_to(ADDRESS).pay_now(None)),
        |_, placed| {
            let view = placed.unwrap_or_else(|e| panic!("place_order failed: {e}"));
            assert_eq!(view.status.as_str(), "paid", "place_order did not pay");
            view.order_id
        },
    )
}

fn status_in_process(engine: &Engine, ids: &[i64], threads: usize) -> Run {
    drive(
        split(ids, threads),
        || (),
        |(), &id| engine.status(id),
        |&id, view| {
            let view = view.unwrap_or_else(|e| panic!("status {id} failed: {e}"));
            assert_eq!(view.order_id, id, "status {id} answered another order");
        },
    )
    .0
}

/// The release `ezdelivery` binary: `EZD_BIN`, or beside this bench's
/// target folder, or under `CARGO_TARGET_DIR` or the workspace's `target`.
fn cli_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("EZD_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "EZD_BIN={} is not a file", bin.display());
        return Some(bin);
    }
    let name = format!("ezdelivery{}", std::env::consts::EXE_SUFFIX);
    // this bench is target/release/deps/http_load-…; the binary target/release/ezdelivery
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.join(&name)));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    beside.into_iter().chain([target_dir.join("release").join(&name)]).find(|p| p.is_file())
}

/// One CLI process: its time, from spawning to its exit, and its stdout.
fn cli(bin: &Path, config: &Path, db: &Path, args: &[&str]) -> (Duration, String) {
    let mut command = Command::new(bin);
    command.arg("-q").arg("--json").arg("--config").arg(config).arg("--db").arg(db).args(args);
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "ezdelivery {} exited {}: {stdout}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (took, stdout)
}

/// `order --pay` then `status ORDER`, `runs` times each, one process at a
/// time, on a fresh file seeded like the server's.
fn cli_floor(bin: &Path, dir: &Path, runs: usize) -> (Run, Run) {
    let db = dir.join("cli.db");
    seed(&engine(&db, &Metrics::new()));
    let config = dir.join("empty.toml");
    std::fs::write(&config, "").expect("write the empty config file");
    let order = [
        "order",
        "--store",
        "1",
        "--customer",
        CUSTOMER,
        "--item",
        "후라이드:2",
        "--item",
        "콜라",
        "--address",
        ADDRESS,
        "--pay",
    ];
    // one of each first, as the warm-up: the binary's pages in the page cache
    let (_, first) = cli(bin, &config, &db, &order);
    let id = placed(201, &first);
    cli(bin, &config, &db, &["status", &id.to_string()]);

    let timed = |jobs: &mut dyn FnMut() -> Duration| {
        let started = Instant::now();
        let latencies: Vec<Duration> = (0..runs).map(|_| jobs()).collect();
        Run { wall: started.elapsed(), latencies }
    };
    let mut ids = Vec::with_capacity(runs);
    let orders = timed(&mut || {
        let (took, out) = cli(bin, &config, &db, &order);
        ids.push(placed(201, &out));
        took
    });
    let mut next = ids.iter();
    let statuses = timed(&mut || {
        let id = *next.next().expect("an order for each status");
        let (took, out) = cli(bin, &config, &db, &["status", &id.to_string()]);
        viewed(id, 200, &out);
        took
    });
    (orders, statuses)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn main() {
    let options = Options::from_env();
    let dir = tempfile::tempdir().expect("a temporary folder");
    println!(
        "http_load: {} requests a phase, clients {:?}, {} CLI runs; load average at start {}",
        options.requests,
        options.concurrency,
        options.cli_runs,
        load()
    );

    let server_engine = Arc::new(engine(&dir.path().join("http.db"), &Metrics::new()));
    seed(&server_engine);
    let direct = engine(&dir.path().join("engine.db"), &Metrics::new());
    seed(&direct);
    let server = Server::start(Arc::clone(&server_engine));
    println!("server on {} (SQLite file {})", server.base, dir.path().join("http.db").display());

    // warm-up, one thread: connections, statement caches, the page cache
    let (_, warm) = post_over_http(&server.base, WARM_UP, 1);
    get_over_http(&server.base, &warm, 1);
    let (_, warm) = place_in_process(&direct, WARM_UP, 1);
    status_in_process(&direct, &warm, 1);

    // (phase, clients, HTTP, engine)
    let mut rows: Vec<(&str, usize, Figures, Figures)> = Vec::new();
    for &threads in &options.concurrency {
        let (http_post, http_ids) = post_over_http(&server.base, options.requests, threads);
        let (engine_post, engine_ids) = place_in_process(&direct, options.requests, threads);
        let http_get = get_over_http(&server.base, &http_ids, threads);
        let engine_get = status_in_process(&direct, &engine_ids, threads);
        rows.push(("POST /orders (pay)", threads, http_post.figures(), engine_post.figures()));
        rows.push(("GET /orders/{id}", threads, http_get.figures(), engine_get.figures()));
    }
    server.stop();
    drop(server_engine);

    let cli_rows = match cli_binary() {
        Some(bin) => {
            println!("CLI: {}", bin.display());
            Some(cli_floor(&bin, dir.path(), options.cli_runs))
        }
        None => {
            println!(
                "CLI rows skipped: no release `ezdelivery` binary (build it with `cargo build --release -p \
                 ezdelivery-cli`, or set EZD_BIN)"
            );
            None
        }
    };

    println!();
    println!("load average at end {}", load());
    println!(
        "{:<20} {:>7} {:>8} | {:>10} {:>9} {:>9} {:>9} | {:>10} {:>9} {:>9} {:>9} | {:>9}",
        "phase",
        "clients",
        "requests",
        "HTTP req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "engine /s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "HTTP−eng p50"
    );
    for (phase, threads, http, eng) in &rows {
        println!(
            "{:<20} {:>7} {:>8} | {:>10.0} {:>9} {:>9} {:>9} | {:>10.0} {:>9} {:>9} {:>9} | {:>9}",
            phase,
            threads,
            http.requests,
            http.per_second,
            ms(http.p50),
            ms(http.p99),
            ms(http.max),
            eng.per_second,
            ms(eng.p50),
            ms(eng.p99),
            ms(eng.max),
            ms(http.p50.saturating_sub(eng.p50))
        );
    }
    if let Some((orders, statuses)) = cli_rows {
        println!();
        println!(
            "{:<32} {:>5} {:>10} {:>9} {:>9} {:>9}",
            "CLI, one process a command", "runs", "commands/s", "p50 ms", "p99 ms", "max ms"
        );
        for (label, run) in [("ezdelivery order … --pay", orders), ("ezdelivery status ORDER", statuses)] {
            let f = run.figures();
            println!(
                "{:<32} {:>5} {:>10.0} {:>9} {:>9} {:>9}",
                label,
                f.requests,
                f.per_second,
                ms(f.p50),
                ms(f.p99),
                ms(f.max)
            );
        }
    }
}
