//! `simulate` end to end: a small run on each storage keeps every
//! invariant, its counts add up, and a seed gives the same run twice.
//! No timing assertions.

use ezdelivery_core::adapters::memory::MemoryStorage;
use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
use ezdelivery_core::app::simulate::{SimConfig, SimReport};
use ezdelivery_core::Engine;

fn config() -> SimConfig {
    SimConfig {
        orders: 200,
        customers: 20,
        stores: 3,
        riders: 4,
        cancel_rate: 0.2,
        payment_unavailable_rate: 0.3,
        seed: 42,
    }
}

fn run(engine: &Engine, config: &SimConfig) -> SimReport {
    let mut last = 0;
    let report = engine
        .simulate(config, &mut |done, total| {
            assert!(done >= last && done <= total);
            last = done;
        })
        .unwrap();
    assert_eq!(last, config.orders, "progress reached the end");
    report
}

fn assert_sound(report: &SimReport) {
    assert!(report.violations.is_empty(), "invariants broken: {:#?}", report.violations);
    assert_eq!(report.orders, 200);
    assert_eq!(report.delivered + report.cancelled + report.still_queued, report.orders, "{report:#?}");
    assert!(report.cancelled > 0 && report.queued > 0 && report.retried >= report.queued, "{report:#?}");
    assert_eq!(report.still_queued, 0, "the simulated gateway comes back");
    let placed = report.commands.iter().find(|c| c.command == "order+pay").unwrap();
    assert_eq!(placed.count, 200);
    assert!(placed.p50 <= placed.p99 && placed.p99 <= placed.max);
}

fn counts(r: &SimReport) -> (u64, u64, u64, u64, u64) {
    (r.delivered, r.cancelled, r.queued, r.retried, r.still_queued)
}

#[test]
fn simulate_on_memory_keeps_every_invariant_and_is_deterministic() {
    let engine = Engine::builder(MemoryStorage::new()).build();
    let first = run(&engine, &config());
    assert_sound(&first);
    let again = Engine::builder(MemoryStorage::new()).build();
    assert_eq!(counts(&run(&again, &config())), counts(&first), "the same seed, the same run");
    let other = SimConfig { seed: 7, ..config() };
    let third = Engine::builder(MemoryStorage::new()).build();
    assert_ne!(counts(&run(&third, &other)), counts(&first), "another seed, another run");
}

#[test]
fn simulate_on_a_sqlite_file_keeps_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open_with(&dir.path().join("sim.db"), Synchronous::Normal).unwrap();
    let engine = Engine::builder(storage).build();
    let report = run(&engine, &config());
    assert_sound(&report);
    let memory = Engine::builder(MemoryStorage::new()).build();
    assert_eq!(counts(&run(&memory, &config())), counts(&report), "both storages run the same simulation");
    // A second run on the same database adds to it and still holds.
    let again = run(&engine, &SimConfig { seed: 43, ..config() });
    assert!(again.violations.is_empty(), "{:#?}", again.violations);
}

/// A simulation of `orders` orders on a new SQLite file that keeps every
/// invariant, the engine over it, and a raw connection to the file for a
/// test to break what it holds (the folder lives as long as the first).
fn simulated_file(orders: u64) -> (tempfile::TempDir, Engine, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("simulated.db");
    let engine = Engine::builder(SqliteStorage::open_with(&path, Synchronous::Normal).unwrap()).build();
    let report = run(&engine, &SimConfig { orders, ..config() });
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let conn = rusqlite::Connection::open(&path).unwrap();
    (dir, engine, conn)
}

#[test]
fn the_check_finds_a_broken_read_model() {
    let (_dir, engine, conn) = simulated_file(20);
    conn.execute("UPDATE mypage SET view = json_set(view, '$.total', 1) WHERE order_id = 3", []).unwrap();
    conn.execute("UPDATE orders SET status = 'delivered' WHERE id = 5 AND status = 'cancelled'", []).unwrap();
    let violations = engine.check_invariants().unwrap();
    assert!(violations.iter().any(|v| v.order == Some(3) && v.rule == "read_model"), "{violations:#?}");
}

/// A rider paid twice, paid for a cancelled order, or paid another amount
/// than the event says is found, as is a payment record that contradicts
/// the log's refund; none of these show in the read model.
#[test]
fn the_check_finds_riders_paid_wrongly_and_records_that_contradict_the_log() {
    let (_dir, engine, conn) = simulated_file(60);
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let delivered = one("SELECT id FROM orders WHERE status = 'delivered' ORDER BY id LIMIT 1");
    let other = one("SELECT id FROM orders WHERE status = 'delivered' ORDER BY id LIMIT 1 OFFSET 1");
    let taken_back = one("SELECT o.id FROM orders o JOIN charges c ON c.order_id = o.id \
         WHERE o.status = 'cancelled' AND c.status IN ('refunded', 'refund_pending') ORDER BY o.id LIMIT 1");
    let refunded = one("SELECT o.id FROM orders o JOIN payments p ON p.order_id = o.id \
         WHERE o.status = 'cancelled' AND p.status = 'refunded' ORDER BY o.id LIMIT 1");
    // a second paid charge, copied from the first
    let columns =
        "rider_id, status, amount, gateway_ref, idempotency_key, tries, next_at, last_error, created_at, updated_at";
    conn.execute(
        &format!(
            "INSERT INTO charges (order_id, {columns}) SELECT order_id, {} FROM charges WHERE order_id = ?1",
            columns.replace("idempotency_key", "idempotency_key || '-again'")
        ),
        [delivered],
    )
    .unwrap();
    conn.execute("UPDATE charges SET amount = 999999 WHERE order_id = ?1", [other]).unwrap();
    conn.execute("UPDATE charges SET status = 'paid' WHERE order_id = ?1", [taken_back]).unwrap();
    conn.execute("UPDATE payments SET status = 'approved' WHERE order_id = ?1", [refunded]).unwrap();
    let violations = engine.check_invariants().unwrap();
    for (order, rule) in [
        (delivered, "charged_once"),
        (other, "charge_amount"),
        (taken_back, "charge_taken_back"),
        (refunded, "refunded"),
    ] {
        assert!(violations.iter().any(|v| v.order == Some(order) && v.rule == rule), "{rule}: {violations:#?}");
    }
}
