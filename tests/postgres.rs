//! Many `ezdelivery` processes on one PostgreSQL database at once: the real
//! binary (processes, not threads), a database of the testkit's throwaway
//! server (`ezdelivery_testkit::postgres`), the testkit's fake gateway for
//! payments and delivery charges, and its ledger of the money that really
//! moved.
//!
//! - `eight_processes_drive_their_orders_through_the_whole_lifecycle_at_once`:
//!   each order ends as its process expected, the log holds each order's
//!   events in order, ids are unique, the views equal a rebuild, every
//!   invariant holds (`check_invariants` over a `PostgresStorage`), and
//!   the ledger holds.
//! - `cancel_racing_deliver_start_on_a_cooked_order_lets_exactly_one_win`:
//!   `cancel` and `deliver start` started together on each of 20 cooked
//!   orders: exactly one wins per order, the other is refused (exit 4), and
//!   the money follows the winner.
//! - `four_watch_workers_some_killed_pay_every_queued_order_once`: four
//!   `relay --watch` workers settle payments queued while the gateway was
//!   down; two are killed with SIGKILL mid-batch and replaced; every order
//!   ends paid, charged once per idempotency key, and no message is
//!   delivered twice on its channel while the workers run (those a killed
//!   worker sent without recording go out again once their claims lapse).
//!
//! Each test skips (one SKIPPED line on stderr) when there is no server;
//! with `EZDELIVERY_REQUIRE_PG=1` (CI) that is a failure. Every process,
//! loop and wait is bounded; the waits poll with a deadline, never a
//! timing assertion. Unix only (SIGKILL, SIGTERM).

#![cfg(all(unix, feature = "postgres"))]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use ezdelivery_core::adapters::postgres::PostgresStorage;
use ezdelivery_core::Engine;
use ezdelivery_testkit::cli_world::*;
use ezdelivery_testkit::gateway::{Gateway, Mode};
use ezdelivery_testkit::postgres::server;
use serde_json::Value;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");
/// Every gateway call's budget in these tests: generous, as the test
/// gateway on a loaded machine (eight processes and a PostgreSQL server
/// on two cores) has taken over 400 ms to answer, which made a paid order
/// an unavailable one.
const TIMEOUT_MS: u64 = 2_000;
/// How long a claim on a gateway call lasts (more than twice [`TIMEOUT_MS`]):
/// a killed worker's claims lapse after this long.
const LEASE_MS: u64 = 5_000;
/// How long a test waits for workers to settle what is queued.
const DEADLINE: Duration = Duration::from_secs(90);

/// Payments and charges through `gw`, a short retry back-off and lease, a
/// breaker that never opens, and `notify` (extra config) appended.
fn config(gw: &Gateway, notify: &str) -> String {
    format!(
        "{}{}[retry]\nbase_ms = 50\nmax_ms = 200\nlease_ms = {LEASE_MS}\n{}{notify}",
        http("payment", gw.url(), TIMEOUT_MS),
        http("charge", gw.url(), TIMEOUT_MS),
        breaker(1_000_000, 100)
    )
}

/// A world on a fresh database of the test server with `config`; `None`
/// when there is no server (skipped).
fn world(config: &str) -> Option<World> {
    let pg = server()?;
    Some(World::on_postgres(BIN, config, pg, &pg.fresh_database()))
}

/// The type names of `events` that belong to `order`, in log order.
fn types_of(events: &[Value], order: i64) -> Vec<String> {
    events.iter().filter(|e| e["order_id"] == order).map(|e| e["type"].as_str().expect("a type").to_string()).collect()
}

/// Is `wanted` a subsequence of `all` (same order, gaps allowed)?
fn is_subsequence(wanted: &[&str], all: &[String]) -> bool {
    let mut it = all.iter();
    wanted.iter().all(|w| it.any(|a| a == w))
}

/// What every order's log must hold, in this order, for an order delivered.
const DELIVERED: [&str; 8] = [
    "OrderPlaced",
    "PaymentApproved",
    "CookingStarted",
    "DeliveryPrepared",
    "DeliveryChargePaid",
    "FoodCooked",
    "DeliveryStarted",
    "DeliveryCompleted",
];

/// ... and for an order cancelled while cooking (the refunds come after
/// the cancel).
const CANCELLED: [&str; 5] = ["OrderPlaced", "PaymentApproved", "CookingStarted", "OrderCancelled", "PaymentRefunded"];

/// Every invariant of the library over the world's database, read through
/// a `PostgresStorage` of this test process: none broken.
fn assert_invariants(w: &World) {
    let url = w.postgres_url().expect("a world on PostgreSQL");
    let engine = Engine::builder(PostgresStorage::open(url).expect("open the database")).build();
    let broken = engine.check_invariants().expect("check_invariants");
    assert!(broken.is_empty(), "broken invariants:\n{}", broken.iter().map(|v| format!("  {v}\n")).collect::<String>());
}

/// The views of every customer of `customers` (`status --customer`), for a
/// before/after comparison.
fn views(w: &World, customers: &[String]) -> BTreeMap<String, Value> {
    customers.iter().map(|c| (c.clone(), w.ok(&["status", "--customer", c]))).collect()
}

/// The log as `--json events` prints it: each event's id and `seq` appear
/// once, and the events of one order are in `seq` order (the log as a whole
/// is in commit order, so numbers of different orders may interleave out of
/// order).
fn assert_log_is_whole(events: &[Value]) {
    let mut ids = BTreeSet::new();
    let mut seqs = BTreeSet::new();
    let mut last: HashMap<i64, i64> = HashMap::new();
    for e in events {
        let id = e["id"].as_str().unwrap_or_else(|| panic!("an event id: {e}"));
        assert!(ids.insert(id.to_string()), "event id {id} twice in the log");
        let seq = e["seq"].as_i64().unwrap_or_else(|| panic!("a seq: {e}"));
        assert!(seqs.insert(seq), "seq {seq} twice in the log");
        if let Some(order) = e["order_id"].as_i64() {
            let before = last.insert(order, seq).unwrap_or(0);
            assert!(seq > before, "order {order}'s events out of order: {seq} after {before}");
        }
    }
}

// ───────────────────────────── 1. eight lifecycles at once ─────────────────────────────

/// Eight processes at once, each driving its own orders through the whole
/// lifecycle (order --pay, cook start, cook finish, deliver start, deliver
/// complete; every third order cancelled while cooking instead), with a
/// gateway that takes a little time to answer so the processes overlap.
#[test]
fn eight_processes_drive_their_orders_through_the_whole_lifecycle_at_once() {
    const PROCESSES: usize = 8;
    const ORDERS: usize = 3;
    let gw = Gateway::start(Mode::Up);
    gw.set_latency(5, 40, 1);
    let Some(w) = world(&config(&gw, "")) else { return };
    let shop = w.shop(&["lee", "kang", "choi"]);

    let start = Barrier::new(PROCESSES);
    // (customer, order, expected status) per order, per process
    let driven: Vec<Vec<(String, i64, &str)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PROCESSES)
            .map(|p| {
                let (w, start) = (&w, &start);
                scope.spawn(move || {
                    start.wait();
                    let mut mine = Vec::new();
                    for n in 0..ORDERS {
                        let customer = format!("p{p}");
                        let order = w.paid_order(shop, &customer);
                        let cooking = w.on(&["cook", "start"], order);
                        assert_eq!(cooking["status"], "cooking", "{cooking}");
                        let expected = if (p + n) % 3 == 2 {
                            let v = w.on(&["cancel"], order);
                            assert_eq!(v["status"], "cancelled", "{v}");
                            "cancelled"
                        } else {
                            for step in [&["cook", "finish"][..], &["deliver", "start"], &["deliver", "complete"]] {
                                w.on(step, order);
                            }
                            "delivered"
                        };
                        mine.push((customer, order, expected));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a process's thread")).collect()
    });

    let all: Vec<(String, i64, &str)> = driven.into_iter().flatten().collect();
    let ids: BTreeSet<i64> = all.iter().map(|(_, o, _)| *o).collect();
    assert_eq!(ids.len(), PROCESSES * ORDERS, "every order got an id of its own: {all:?}");
    assert_eq!(w.order_ids(), ids.iter().copied().collect::<Vec<_>>(), "no other order was made");

    let events = w.events();
    assert_log_is_whole(&events);
    for (customer, order, expected) in &all {
        let view = w.status(*order);
        assert_eq!(view["status"], *expected, "order {order} of {customer}: {view}");
        assert_eq!(view["customer"], customer.as_str(), "{view}");
        let types = types_of(&events, *order);
        let wanted: &[&str] = if *expected == "delivered" { &DELIVERED } else { &CANCELLED };
        assert!(is_subsequence(wanted, &types), "order {order} ({expected}): its events {types:?}");
        let timeline: Vec<String> =
            view["timeline"].as_array().expect("a timeline").iter().map(|t| t["type"].to_string()).collect();
        assert_eq!(timeline.len(), types.len(), "order {order}: the timeline is its events: {view}");
    }

    let customers: Vec<String> = (0..PROCESSES).map(|p| format!("p{p}")).collect();
    let before = views(&w, &customers);
    w.ok(&["projection", "rebuild"]);
    assert_eq!(views(&w, &customers), before, "the views equal a rebuild from the log");
    assert_eq!(w.events(), events, "a rebuild appends no event");
    assert_invariants(&w);
    let attention = assert_ledger(&w, &gw, &ids.iter().copied().collect::<Vec<_>>());
    assert!(attention.is_empty(), "nothing needs attention: {attention:?}");
}

// ───────────────────────────── 2. cancel against deliver start ─────────────────────────────

/// On each of 20 cooked, paid orders whose rider's charge is paid, `cancel`
/// and `deliver start` are started at the same moment: exactly one of them
/// wins; the other is refused with exit 4 (invalid_state). The order ends
/// delivering (the cancel refused) or cancelled with its payment and the
/// rider's charge given back; the gateway's ledger agrees: net approvals
/// and charges 1 for a delivering order, 0 for a cancelled one.
#[test]
fn cancel_racing_deliver_start_on_a_cooked_order_lets_exactly_one_win() {
    const ORDERS: usize = 20;
    let gw = Gateway::start(Mode::Up);
    gw.set_latency(5, 30, 2);
    let Some(w) = world(&config(&gw, "")) else { return };
    let shop = w.shop(&["lee"]);
    let mut orders = Vec::new();
    for n in 0..ORDERS {
        let order = w.paid_order(shop, &format!("c{n}"));
        let cooking = w.on(&["cook", "start"], order);
        assert_eq!(cooking["delivery"]["charge"]["status"], "paid", "{cooking}");
        w.on(&["cook", "finish"], order);
        orders.push(order);
    }

    let mut winners: BTreeMap<&str, usize> = BTreeMap::new();
    for &order in &orders {
        let o = order.to_string();
        let start = Barrier::new(2);
        let (cancel, depart) = std::thread::scope(|scope| {
            let run = |args: &'static [&'static str]| {
                let (w, o, start) = (&w, &o, &start);
                scope.spawn(move || {
                    let command = w.command(&[&["--json"], args, &[o.as_str()]].concat());
                    let what = format!("{} {o}", args.join(" "));
                    start.wait();
                    let run = finish(command, &what);
                    (json_outcome(&run, &what), run)
                })
            };
            let cancel = run(&["cancel"]);
            let depart = run(&["deliver", "start"]);
            (cancel.join().expect("the cancel"), depart.join().expect("the departure"))
        });
        let ((cancel_code, cancel_value), cancel_run) = cancel;
        let ((depart_code, depart_value), depart_run) = depart;
        let view = w.status(order);
        match (cancel_code, depart_code) {
            (0, 4) => {
                assert_eq!(cancel_value["status"], "cancelled", "{cancel_value}");
                assert_fails(&depart_run, "deliver start", 4, "invalid_state");
                assert_eq!(view["status"], "cancelled", "{view}");
                assert!(
                    matches!(view["payment"]["status"].as_str(), Some("refunded" | "refund_pending")),
                    "the payment goes back: {view}"
                );
                assert_eq!(view["delivery"]["status"], "cancelled", "{view}");
                assert!(
                    matches!(view["delivery"]["charge"]["status"].as_str(), Some("refunded" | "refund_pending")),
                    "the rider's charge goes back: {view}"
                );
                *winners.entry("cancel").or_default() += 1;
            }
            (4, 0) => {
                assert_eq!(depart_value["status"], "delivering", "{depart_value}");
                let message = assert_fails(&cancel_run, "cancel", 4, "invalid_state");
                assert!(message.contains("on its way"), "the cancel says why: {message}");
                assert_eq!(view["status"], "delivering", "{view}");
                assert_eq!(view["payment"]["status"], "approved", "{view}");
                assert_eq!(view["delivery"]["charge"]["status"], "paid", "{view}");
                *winners.entry("deliver start").or_default() += 1;
            }
            _ => panic!(
                "order {order}: exactly one of cancel and deliver start succeeds, the other exits 4\n{}\n{}\nnow: {view}",
                cancel_run.describe("cancel"),
                depart_run.describe("deliver start")
            ),
        }
    }
    eprintln!("winners: {winners:?}");
    let attention = assert_ledger(&w, &gw, &orders);
    assert!(attention.is_empty(), "nothing needs attention: {attention:?}");
    for &order in &orders {
        let view = w.status(order);
        if view["status"] == "cancelled" {
            assert_eq!(view["payment"]["status"], "refunded", "relay finished the refund: {view}");
            assert_eq!(view["delivery"]["charge"]["status"], "refunded", "{view}");
        }
    }
    assert_invariants(&w);
}

// ───────────────────────────── 3. relay --watch workers, some killed ─────────────────────────────

/// A `relay --watch` worker in the background, its output in files of the
/// world (read when the test fails).
struct Worker {
    child: Child,
    name: String,
}

impl Worker {
    fn start(w: &World, name: &str) -> Worker {
        let out = std::fs::File::create(w.path(&format!("{name}.out"))).expect("the worker's stdout file");
        let err = std::fs::File::create(w.path(&format!("{name}.err"))).expect("the worker's stderr file");
        let mut command = w.command(&["--json", "relay", "--watch", "--interval", "50"]);
        command.stdout(Stdio::from(out)).stderr(Stdio::from(err));
        let child = command.spawn().expect("the ezdelivery binary starts");
        Worker { child, name: name.to_string() }
    }

    /// SIGKILL, and reaped.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the worker");
        self.child.wait().expect("reap the worker");
    }

    /// SIGTERM, then (bounded) its clean exit 0.
    fn stop(mut self, w: &World) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid}");
        let status = wait_bounded(&mut self.child, PROCESS_DEADLINE, "relay --watch");
        let read = |ext: &str| std::fs::read_to_string(w.path(&format!("{}.{ext}", self.name))).unwrap_or_default();
        assert_eq!(status.code(), Some(0), "{} stopped: stdout {}\nstderr {}", self.name, read("out"), read("err"));
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // a test that failed before stopping it leaves no process behind
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The gateway is down while 12 orders are placed with `--pay`: each is
/// kept, its payment queued. Four `relay --watch` workers start and the
/// gateway comes back, answering slowly; once the first order is paid two
/// workers are killed with SIGKILL (mid-batch: most orders still queued)
/// and two others started. Their claims lapse after `lease_ms`; then every
/// order is paid. The gateway acted once per idempotency key (net approvals
/// 1 per order, no approval of an order under two keys), and the jsonl
/// channel holds no message twice while they run.
///
/// Messages a killed worker had claimed stay claimed for the message lease
/// (two minutes, far longer than this test runs), so a message written
/// twice here could only be two workers delivering it at once: a bug.
/// Those a killed worker sent before it could record its batch are in the
/// file and still claimed; once the claims are made to lapse, one `relay`
/// sends them again (README: "A message can arrive more than once") and
/// every message ends recorded as delivered. Whether a kill lands in such
/// a batch is chance (one run in four here); `tests/faults.rs` makes it
/// happen every time, with a webhook that has not answered yet.
#[test]
fn four_watch_workers_some_killed_pay_every_queued_order_once() {
    const ORDERS: usize = 12;
    let gw = Gateway::start(Mode::Failing(503));
    let Some(w) = world("") else { return };
    let jsonl_path = w.path("messages.jsonl");
    std::fs::write(&w.config, config(&gw, &jsonl(&jsonl_path))).expect("write the config file");
    let shop = w.shop(&[]);
    let mut orders = Vec::new();
    for n in 0..ORDERS {
        let (order, _) = w.unavailable_order(shop, &format!("q{n}"));
        orders.push(order);
    }
    assert_eq!(w.queued(), ORDERS as i64, "every payment is queued");

    let mut workers: Vec<Worker> = (0..4).map(|n| Worker::start(&w, &format!("worker{n}"))).collect();
    gw.set_latency(60, 250, 3);
    gw.set_mode(Mode::Up);
    let paid_count = |w: &World| w.count("SELECT count(*) FROM payments WHERE status = 'approved'");
    let until = Instant::now() + DEADLINE;
    while paid_count(&w) == 0 {
        assert!(Instant::now() < until, "no order was paid within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let paid_when_killed = paid_count(&w);
    for worker in workers.drain(..2) {
        worker.kill();
    }
    let killed_at = Instant::now();
    workers.push(Worker::start(&w, "worker4"));
    workers.push(Worker::start(&w, "worker5"));
    eprintln!("killed two workers with {paid_when_killed} of {ORDERS} orders paid");

    while !orders.iter().all(|&o| paid(&w.status(o))) {
        assert!(
            Instant::now() < until,
            "not every order was paid within {DEADLINE:?}:\n{}",
            w.dump("SELECT id, order_id, status, claimed_until, next_at FROM payments WHERE status <> 'approved'")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for worker in workers {
        worker.stop(&w);
    }

    let ledger = gw.ledger();
    for &order in &orders {
        assert_eq!(ledger.approvals(order).len(), 1, "order {order} approved once: {}", ledger.describe(order));
        let tries = approvals(&gw, order);
        let keys: BTreeSet<&str> = tries.iter().map(|e| e.key()).collect();
        assert_eq!(keys.len(), 1, "order {order}: every try under one idempotency key: {keys:?}");
    }
    let attention = assert_ledger(&w, &gw, &orders);
    assert!(attention.is_empty(), "nothing needs attention: {attention:?}");

    let lines = || {
        let text = std::fs::read_to_string(&jsonl_path).expect("the jsonl channel wrote its file");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines() {
            let message = one_object(line, "a jsonl line");
            let id = message["id"].as_str().map(String::from).unwrap_or_else(|| message["id"].to_string());
            *seen.entry(id).or_default() += 1;
        }
        (seen, text)
    };
    let (seen, text) = lines();
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "messages delivered more than once on the jsonl channel: {twice:?}\n{text}");
    let jsonl = |condition: &str| {
        w.texts(&format!(
            "SELECT m.id FROM message_deliveries d JOIN messages m ON m.key = d.message_key \
             WHERE d.channel = 'jsonl' AND {condition}"
        ))
    };
    // A worker killed in the middle of a batch leaves the messages it had
    // sent unrecorded (a batch is recorded once sent), still claimed for
    // two minutes: pending, with no error and a claim that has not lapsed.
    // (Runs take seconds; one slow enough for the claims to lapse would
    // say so here rather than fail below for the wrong reason.)
    assert!(killed_at.elapsed() < Duration::from_secs(110), "the killed workers' claims may have lapsed");
    let delivered = jsonl("d.state = 'delivered'");
    let claimed = jsonl(
        "d.state = 'pending' AND d.last_error IS NULL \
         AND d.next_at > to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    );
    let unrecorded: BTreeSet<String> = seen.keys().filter(|id| !delivered.contains(*id)).cloned().collect();
    assert!(unrecorded.is_subset(&claimed), "in the file, neither recorded as delivered nor claimed: {unrecorded:?}");
    eprintln!(
        "{} messages in the file, {} of them sent by a killed worker and not recorded",
        seen.len(),
        unrecorded.len()
    );
    assert!(delivered.iter().all(|id| seen.contains_key(id)), "each message recorded as delivered is in the file");

    // Once the claims lapse, a relay sends those messages again (the same
    // ids) and records them; every other message goes out once.
    w.psql(
        "UPDATE message_deliveries SET next_at = '2000-01-01T00:00:00.000000Z' \
         WHERE channel = 'jsonl' AND state = 'pending'",
    );
    let relay = w.run(&["relay"]);
    assert_eq!(relay.code, Some(0), "relay after the claims lapsed: {}", relay.stderr);
    let (again, text) = lines();
    for (id, n) in &again {
        let want = if unrecorded.contains(id) { 2 } else { 1 };
        assert_eq!(*n, want, "message {id} in the jsonl file (unrecorded before: {unrecorded:?})\n{text}");
    }
    assert!(jsonl("d.state <> 'delivered'").is_empty(), "every message recorded as delivered at last");
    let in_file: BTreeSet<String> = again.keys().cloned().collect();
    assert_eq!(jsonl("d.state = 'delivered'"), in_file, "each message recorded as delivered is in the file");
    assert_invariants(&w);
}

/// A database written by a newer ezdelivery is refused as a newer SQLite
/// file is: exit 2, saying what to do, and left as it was.
#[test]
fn a_database_of_a_newer_ezdelivery_is_refused_with_exit_2() {
    let Some(w) = world("") else { return };
    w.ok(&["store", "list"]);
    w.psql("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'later')");
    let message = w.fails(&["store", "list"], 2, "invalid_input");
    assert!(message.contains("newer ezdelivery") && message.contains("upgrade ezdelivery"), "{message}");
    assert_eq!(w.psql("SELECT max(version) FROM schema_migrations"), "99", "left as it was");
}
