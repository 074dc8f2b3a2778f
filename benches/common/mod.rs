//! What the benchmarks share: a ready engine, one full lifecycle, the
//! raw-SQLite floor that does the same row writes with bare prepared
//! statements, and a summary that prints each figure beside its floor.

#![allow(dead_code)] // each bench uses a part

use std::path::{Path, PathBuf};

use ezdelivery_core::adapters::sqlite::{checkpoint_pages, SqliteStorage, Synchronous, MMAP_SIZE};
use ezdelivery_core::app::messages::Audience;
use ezdelivery_core::ports::outbox::Message;
use ezdelivery_core::ports::Storage;
use ezdelivery_core::{Engine, ItemPick, NewOrder};
use rusqlite::{params, Connection};

/// An engine over `storage` with a store (two menus) and five riders; the
/// library's defaults otherwise: sandbox gateways, system clock, no
/// notifier channel (messages are queued in the outbox all the same).
pub fn engine(storage: impl Storage + 'static) -> Engine {
    let engine = Engine::builder(storage).build();
    let store = engine.add_store("교촌치킨", Some("park"), Some("서울")).unwrap();
    engine.add_menu(store.id, "후라이드", 18_000).unwrap();
    engine.add_menu(store.id, "콜라", 2_000).unwrap();
    for name in ["lee", "kim", "choi", "jung", "kang"] {
        engine.add_rider(name).unwrap();
    }
    engine
}

/// The items every benchmark order has.
pub fn picks() -> Vec<ItemPick> {
    vec![ItemPick::new("후라이드", 2), ItemPick::new("콜라", 1)]
}

/// One full lifecycle: place and pay, cook start, cook finish, deliver
/// start, deliver complete. Seven write transactions.
pub fn lifecycle(engine: &Engine, picks: &[ItemPick]) {
    let order =
        engine.place_order(NewOrder::new(1, "kim", picks).deliver_to("서울 강남구").pay_now(None)).unwrap().order_id;
    engine.start_cooking(order).unwrap();
    engine.finish_cooking(order).unwrap();
    engine.start_delivery(order, None).unwrap();
    let done = engine.complete_delivery(order).unwrap();
    assert_eq!(done.status.as_str(), "delivered");
}

/// The PRAGMAs `SqliteStorage` sets.
pub fn pragmas(conn: &Connection, synchronous: Synchronous) {
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).unwrap();
    conn.pragma_update(None, "synchronous", synchronous.as_str()).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    conn.pragma_update(None, "cache_size", -32_768).unwrap();
    // The step of the file's page size, as the adapter sets it.
    let page_size: u32 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let pages = checkpoint_pages(page_size);
    let _: i64 = conn.query_row(&format!("PRAGMA wal_autocheckpoint = {pages}"), [], |r| r.get(0)).unwrap();
    conn.pragma_update(None, "mmap_size", MMAP_SIZE).unwrap();
}

/// The payloads the floor writes: the JSON of real events, views and
/// message texts of one lifecycle, so the rows are as large as the
/// engine's.
pub struct Payloads {
    /// The `data` of the lifecycle's eight events, in order, with their types.
    events: Vec<(String, String)>,
    /// A view as JSON after each of the seven transactions.
    views: Vec<String>,
    /// A message text.
    message: String,
}

impl Payloads {
    /// Runs one lifecycle on an in-memory database and keeps its payloads.
    pub fn capture() -> Payloads {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capture.db");
        let engine = engine(SqliteStorage::open_with(&path, Synchronous::Normal).unwrap());
        lifecycle(&engine, &picks());
        drop(engine);
        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn.prepare("SELECT type, data FROM events WHERE order_id = 1 ORDER BY seq").unwrap();
        let events: Vec<(String, String)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(events.len(), 8, "a lifecycle writes eight events");
        let view: String = conn.query_row("SELECT view FROM mypage WHERE order_id = 1", [], |r| r.get(0)).unwrap();
        let message: String =
            conn.query_row("SELECT text FROM messages WHERE order_id = 1 LIMIT 1", [], |r| r.get(0)).unwrap();
        // The view grows by one timeline entry per event; the floor writes
        // the final view's size from the start, which only flatters the floor.
        Payloads { events, views: vec![view; 7], message }
    }
}

/// The raw-SQLite floor of one lifecycle: the same 47 row writes in the same
/// seven `BEGIN IMMEDIATE` transactions, on the same schema and PRAGMAs,
/// with bare cached prepared statements, no reads and ids counted in memory.
///
/// | tx | what the engine commits | rows |
/// |---|---|---|
/// | 1 | order placed: orders, 2 order_items, payments, events, mypage, checkpoints, messages | 8 |
/// | 2 | payment approved: orders, its kitchen ticket, payments, events, mypage, checkpoints, 2 messages | 8 |
/// | 3 | cooking started: orders, its ticket, its delivery, charges, 2 events, mypage, checkpoints, messages | 9 |
/// | 4 | charge paid: charges, events, mypage, checkpoints | 4 |
/// | 5 | food cooked: orders, its ticket, events, mypage, checkpoints, messages | 6 |
/// | 6 | delivery started: orders, its delivery, events, mypage, checkpoints, messages | 6 |
/// | 7 | delivered: orders, its delivery, events, mypage, checkpoints, messages | 6 |
///
/// (An order's kitchen ticket and delivery are columns of its row since
/// schema 12: each is a second `UPDATE` of the order's row.)
pub struct Floor {
    conn: Connection,
    payloads: Payloads,
    order: i64,
    seq: i64,
}

const F_INSERT_ORDER: &str = "INSERT INTO orders (id, store_id, customer, address, total, status, reviewed, \
     created_at, updated_at) VALUES (?1, 1, 'kim', '서울 강남구', 38000, 'pending_payment', 0, ?2, ?2)";
const F_INSERT_ITEM: &str = "INSERT INTO order_items (order_id, line, menu_id, name, unit_price, qty) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const F_UPDATE_ORDER: &str = "UPDATE orders SET status = ?2, reviewed = 0, updated_at = ?3 WHERE id = ?1";
const F_SET_INBOX: &str = "UPDATE orders SET in_inbox = ?1 WHERE id = ?2 AND in_inbox <> ?1";
const F_SAVE_PAYMENT: &str = "INSERT INTO payments (id, order_id, status, amount, card, gateway_ref, \
     idempotency_key, tries, next_at, last_error, created_at, updated_at) VALUES (?1, ?1, ?2, 38000, NULL, ?3, \
     ?4, ?5, NULL, NULL, ?6, ?6) ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
     gateway_ref = excluded.gateway_ref, tries = excluded.tries, updated_at = excluded.updated_at";
const F_SAVE_TICKET: &str = "UPDATE orders SET kitchen_status = ?2, kitchen_updated_at = ?3 WHERE id = ?1";
const F_SAVE_DELIVERY: &str = "UPDATE orders SET delivery_charge = 3000, delivery_status = ?2, \
     delivery_updated_at = ?3 WHERE id = ?1";
const F_SET_RIDER: &str = "UPDATE orders SET delivery_rider_id = 1, rider_busy = ?1 WHERE id = ?2 \
     AND (coalesce(delivery_rider_id, 0) <> 1 OR rider_busy <> ?1)";
const F_SAVE_CHARGE: &str = "INSERT INTO charges (id, order_id, rider_id, status, amount, gateway_ref, \
     idempotency_key, tries, next_at, last_error, created_at, updated_at) VALUES (?1, ?1, 1, ?2, 3000, ?3, ?4, ?5, \
     NULL, NULL, ?6, ?6) ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
     gateway_ref = excluded.gateway_ref, tries = excluded.tries, updated_at = excluded.updated_at";
const F_APPEND_EVENT: &str = "INSERT INTO events (id, type, order_id, at, data) VALUES (?1, ?2, ?3, ?4, ?5)";
const F_SAVE_VIEW: &str = "INSERT INTO mypage (order_id, customer, view) VALUES (?1, 'kim', ?2) \
     ON CONFLICT (order_id) DO UPDATE SET customer = excluded.customer, view = excluded.view";
const F_CHECKPOINT: &str = "INSERT INTO checkpoints (name, seq) VALUES ('mypage', ?1) \
     ON CONFLICT (name) DO UPDATE SET seq = excluded.seq";
const F_MESSAGE: &str = "INSERT INTO messages (key, id, order_id, event, status, recipient, text, at) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'kim', ?6, ?7) ON CONFLICT (key) DO NOTHING";

impl Floor {
    /// A floor on a database that already has the schema (and the same
    /// store, menus and riders as [`engine`]), opened with the same PRAGMAs.
    pub fn open(path: Option<&Path>, synchronous: Synchronous) -> Floor {
        let payloads = Payloads::capture();
        let conn = match path {
            Some(path) => {
                // The adapter creates the schema and the catalogue; then the
                // floor opens its own bare connection.
                drop(engine(SqliteStorage::open_with(path, synchronous).unwrap()));
                Connection::open(path).unwrap()
            }
            None => {
                let conn = Connection::open_in_memory().unwrap();
                let schema = schema_sql();
                conn.execute_batch(&schema).unwrap();
                conn.execute_batch(
                    "INSERT INTO stores VALUES (1, '교촌치킨', 'park', '서울', 1, 3000, 0, 0);
                     INSERT INTO riders VALUES (1, 'lee');",
                )
                .unwrap();
                conn
            }
        };
        pragmas(&conn, synchronous);
        conn.set_prepared_statement_cache_capacity(64);
        let order: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM orders", [], |r| r.get(0)).unwrap();
        let seq: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0)).unwrap();
        Floor { conn, payloads, order, seq }
    }

    fn tx(&mut self, body: impl FnOnce(&mut Floor) -> rusqlite::Result<()>) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        body(self).unwrap();
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn event(&mut self, index: usize, at: &str) -> rusqlite::Result<()> {
        self.seq += 1;
        let id = format!("00000000-0000-4000-8000-{:012}", self.seq);
        let (kind, data) = &self.payloads.events[index];
        self.conn.prepare_cached(F_APPEND_EVENT)?.execute(params![id, kind, self.order, at, data])?;
        Ok(())
    }

    fn view(&mut self, stage: usize) -> rusqlite::Result<()> {
        self.conn.prepare_cached(F_SAVE_VIEW)?.execute(params![self.order, self.payloads.views[stage]])?;
        self.conn.prepare_cached(F_CHECKPOINT)?.execute([self.seq])?;
        Ok(())
    }

    fn message(&mut self, event: &str, audience: Audience, status: &str, at: &str) -> rusqlite::Result<()> {
        let id = format!("00000000-0000-4000-8000-{:012}:{}", self.seq, audience.as_str());
        let key = Message::key_of(self.seq, audience.place());
        self.conn.prepare_cached(F_MESSAGE)?.execute(params![
            key,
            id,
            self.order,
            event,
            status,
            self.payloads.message,
            at
        ])?;
        Ok(())
    }

    fn order_status(&mut self, status: &str, at: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(F_UPDATE_ORDER)?.execute(params![self.order, status, at])?;
        let in_inbox = ["paid", "cooking", "cooked", "delivering"].contains(&status);
        self.conn.prepare_cached(F_SET_INBOX)?.execute(params![in_inbox, self.order])?;
        Ok(())
    }

    /// The writes of one lifecycle.
    pub fn lifecycle(&mut self) {
        let at = "2026-11-24T12:00:00.000000Z";
        self.order += 1;
        let o = self.order;
        self.tx(|f| {
            f.conn.prepare_cached(F_INSERT_ORDER)?.execute(params![o, at])?;
            let mut item = f.conn.prepare_cached(F_INSERT_ITEM)?;
            item.execute(params![o, 0, 1, "후라이드", 18_000, 2])?;
            item.execute(params![o, 1, 2, "콜라", 2_000, 1])?;
            drop(item);
            f.event(0, at)?;
            let key = format!("ezd-pay-{o}");
            f.conn.prepare_cached(F_SAVE_PAYMENT)?.execute(params![o, "pending", None::<String>, key, 0, at])?;
            f.view(0)?;
            f.message("OrderPlaced", Audience::Customer, "pending_payment", at)
        });
        self.tx(|f| {
            f.order_status("paid", at)?;
            f.conn.prepare_cached(F_SAVE_TICKET)?.execute(params![o, "received", at])?;
            let (key, gateway) = (format!("ezd-pay-{o}"), format!("sandbox-pay-ezd-pay-{o}"));
            f.conn.prepare_cached(F_SAVE_PAYMENT)?.execute(params![o, "approved", gateway, key, 1, at])?;
            f.event(1, at)?;
            f.view(1)?;
            f.message("PaymentApproved", Audience::Customer, "paid", at)?;
            f.message("PaymentApproved", Audience::Owner, "paid", at)
        });
        self.tx(|f| {
            f.order_status("cooking", at)?;
            f.conn.prepare_cached(F_SAVE_TICKET)?.execute(params![o, "cooking", at])?;
            f.conn.prepare_cached(F_SAVE_DELIVERY)?.execute(params![o, "preparing", at])?;
            f.conn.prepare_cached(F_SET_RIDER)?.execute(params![true, o])?;
            let key = format!("ezd-charge-{o}");
            f.conn.prepare_cached(F_SAVE_CHARGE)?.execute(params![o, "pending", None::<String>, key, 0, at])?;
            f.event(2, at)?;
            f.event(3, at)?;
            f.view(2)?;
            f.message("CookingStarted", Audience::Customer, "cooking", at)
        });
        self.tx(|f| {
            let (key, gateway) = (format!("ezd-charge-{o}"), format!("sandbox-charge-ezd-charge-{o}"));
            f.conn.prepare_cached(F_SAVE_CHARGE)?.execute(params![o, "paid", gateway, key, 1, at])?;
            f.event(4, at)?;
            f.view(3)
        });
        self.tx(|f| {
            f.order_status("cooked", at)?;
            f.conn.prepare_cached(F_SAVE_TICKET)?.execute(params![o, "cooked", at])?;
            f.event(5, at)?;
            f.view(4)?;
            f.message("FoodCooked", Audience::Customer, "cooked", at)
        });
        self.tx(|f| {
            f.order_status("delivering", at)?;
            f.conn.prepare_cached(F_SAVE_DELIVERY)?.execute(params![o, "delivering", at])?;
            f.conn.prepare_cached(F_SET_RIDER)?.execute(params![true, o])?;
            f.event(6, at)?;
            f.view(5)?;
            f.message("DeliveryStarted", Audience::Customer, "delivering", at)
        });
        self.tx(|f| {
            f.order_status("delivered", at)?;
            f.conn.prepare_cached(F_SAVE_DELIVERY)?.execute(params![o, "delivered", at])?;
            f.conn.prepare_cached(F_SET_RIDER)?.execute(params![false, o])?;
            f.event(7, at)?;
            f.view(6)?;
            f.message("DeliveryCompleted", Audience::Customer, "delivered", at)
        });
    }

    /// The floor's connection (for checks).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The schema as the adapter creates it, read back from a fresh database.
pub fn schema_sql() -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    drop(SqliteStorage::open_with(&path, Synchronous::Normal).unwrap());
    let conn = Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
        .unwrap();
    let all: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    all.join(";\n") + ";"
}

/// How many rows each table of `conn` holds (and how many orders have a
/// kitchen ticket and a delivery), for comparing the floor with the engine.
pub fn row_counts(conn: &Connection) -> Vec<(String, i64)> {
    let counts = [
        ("orders", "SELECT COUNT(*) FROM orders"),
        ("order_items", "SELECT COUNT(*) FROM order_items"),
        ("payments", "SELECT COUNT(*) FROM payments"),
        ("kitchen tickets", "SELECT COUNT(*) FROM orders WHERE kitchen_status IS NOT NULL"),
        ("deliveries", "SELECT COUNT(*) FROM orders WHERE delivery_status IS NOT NULL"),
        ("charges", "SELECT COUNT(*) FROM charges"),
        ("events", "SELECT COUNT(*) FROM events"),
        ("mypage", "SELECT COUNT(*) FROM mypage"),
        ("messages", "SELECT COUNT(*) FROM messages"),
    ];
    counts.iter().map(|(what, sql)| (what.to_string(), conn.query_row(sql, [], |r| r.get(0)).unwrap())).collect()
}

/// Where criterion writes its results (as criterion finds it).
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(option_env!("CARGO_TARGET_TMPDIR").unwrap_or("target/tmp"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("criterion")
}

/// The time per iteration of a benchmark that just ran, in nanoseconds:
/// criterion's headline estimate (the slope of its linear regression, or
/// the mean where there is no slope), as it prints it.
pub fn mean_ns(group: &str, id: &str) -> Option<f64> {
    let path = criterion_dir().join(group).join(id).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["slope"]["point_estimate"].as_f64().or_else(|| json["mean"]["point_estimate"].as_f64())
}

/// Prints `name: engine … floor … ratio` for pairs of benchmarks of `group`.
pub fn print_ratios(group: &str, pairs: &[(&str, &str, &str)]) {
    println!("\n== {group}: engine against its raw-SQLite floor (criterion's estimates)");
    for (name, engine, floor) in pairs {
        match (mean_ns(group, engine), mean_ns(group, floor)) {
            (Some(e), Some(f)) => {
                println!("{name:<28} engine {:>12}  floor {:>12}  ratio {:.2}x", human(e), human(f), e / f)
            }
            _ => println!("{name:<28} (not measured in this run)"),
        }
    }
}

/// Nanoseconds for people.
pub fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Orders in the template the fixtures are cloned from.
pub const TEMPLATE_ORDERS: u64 = 1_000;
/// Customers in the template: 50 orders each.
pub const TEMPLATE_CUSTOMERS: u64 = 20;
/// Bump when the way fixtures are built changes, or the schema they are
/// built with, so a cached one is rebuilt rather than upgraded in place
/// (an upgrade leaves free pages and a larger file behind). 2: schema 8;
/// 3: schema 10 (the outbox keyed by integer; copies shift the keys too);
/// 4: schema 12 (payments and charges record their gateway; tickets and
/// deliveries in their orders' rows); 5: schema 13 (the inbox's and the
/// riders' flags).
const FIXTURE_VERSION: u32 = 5;

/// A database of `orders` delivered orders (a multiple of
/// [`TEMPLATE_ORDERS`]), each customer with 50 of them, built once and
/// cached under the target folder. Returns its path and the build time
/// (read back from the cache's note when it was built before).
///
/// The first 1,000 orders are driven through the whole lifecycle by the
/// engine (seven write transactions each, customers `customer 1` … `customer
/// 20` in turn, one to three items). Larger fixtures clone those rows with
/// `INSERT … SELECT`, shifting every id (orders, payments, charges) and
/// giving each copy its own 20 customers; event `data` and views get the
/// new order id and customer, so every table, index and row size is what
/// a million orders driven one by one would leave (event and timeline
/// sequence numbers inside the JSON are the template's: the fixture serves
/// read benchmarks).
pub fn fixture(orders: u64) -> (PathBuf, std::time::Duration) {
    assert!(orders.is_multiple_of(TEMPLATE_ORDERS), "fixtures are whole copies of the template");
    let dir = Path::new(option_env!("CARGO_TARGET_TMPDIR").unwrap_or("target/tmp")).join("ezdelivery-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("orders-{orders}-v{FIXTURE_VERSION}.db"));
    let note = path.with_extension("build-seconds");
    if path.exists() {
        if let Some(secs) = std::fs::read_to_string(&note).ok().and_then(|s| s.trim().parse::<f64>().ok()) {
            return (path, std::time::Duration::from_secs_f64(secs));
        }
    }
    let started = std::time::Instant::now();
    let building = path.with_extension("building");
    let _ = std::fs::remove_file(&building);
    build_template(&building);
    if orders > TEMPLATE_ORDERS {
        clone_template(&building, orders / TEMPLATE_ORDERS);
    }
    let took = started.elapsed();
    std::fs::rename(&building, &path).unwrap();
    std::fs::write(&note, format!("{}\n", took.as_secs_f64())).unwrap();
    eprintln!("built the {orders}-order fixture {} in {:.1} s", path.display(), took.as_secs_f64());
    (path, took)
}

fn build_template(path: &Path) {
    let engine = engine(SqliteStorage::open_with(path, Synchronous::Normal).unwrap());
    let menus = ["후라이드", "콜라"];
    for i in 0..TEMPLATE_ORDERS {
        let customer = format!("customer {}", i % TEMPLATE_CUSTOMERS + 1);
        let picks: Vec<ItemPick> =
            (0..=(i % 3)).map(|k| ItemPick::new(menus[(k % 2) as usize], 1 + (i % 2) as u32)).collect();
        let order = engine
            .place_order(NewOrder::new(1, &customer, &picks).deliver_to("서울 강남구").pay_now(None))
            .unwrap()
            .order_id;
        engine.start_cooking(order).unwrap();
        engine.finish_cooking(order).unwrap();
        engine.start_delivery(order, None).unwrap();
        engine.complete_delivery(order).unwrap();
    }
    drop(engine);
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
}

/// Adds `copies - 1` shifted copies of the template's orders.
fn clone_template(path: &Path, copies: u64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;")
        .unwrap();
    let max = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let (t, p, c) =
        (max("SELECT MAX(id) FROM orders"), max("SELECT MAX(id) FROM payments"), max("SELECT MAX(id) FROM charges"));
    let m = max("SELECT MAX(key) + 1 FROM messages");
    let k = TEMPLATE_CUSTOMERS as i64;
    // Tables of the template, kept apart while copies are added.
    conn.execute_batch(
        "CREATE TEMP TABLE t_orders AS SELECT * FROM orders;
         CREATE TEMP TABLE t_items AS SELECT * FROM order_items;
         CREATE TEMP TABLE t_payments AS SELECT * FROM payments;
         CREATE TEMP TABLE t_charges AS SELECT * FROM charges;
         CREATE TEMP TABLE t_events AS SELECT * FROM events WHERE order_id IS NOT NULL;
         CREATE TEMP TABLE t_mypage AS SELECT * FROM mypage;
         CREATE TEMP TABLE t_messages AS SELECT * FROM messages;",
    )
    .unwrap();
    let cust = |col: &str| format!("'customer ' || (CAST(substr({col}, 10) AS INTEGER) + ?1 * {k})");
    let uuid = "lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-8' || \
                substr(h, 18, 3) || '-' || substr(h, 21, 12))";
    let statements = [
        format!(
            "INSERT INTO orders SELECT id + ?1 * {t}, store_id, {}, address, total, status, reviewed, created_at, \
             updated_at, kitchen_status, kitchen_updated_at, delivery_rider_id, delivery_charge, delivery_status, \
             delivery_updated_at, in_inbox, rider_busy FROM t_orders ORDER BY id",
            cust("customer")
        ),
        format!("INSERT INTO order_items SELECT order_id + ?1 * {t}, line, menu_id, name, unit_price, qty FROM t_items ORDER BY order_id, line"),
        format!(
            "INSERT INTO payments SELECT id + ?1 * {p}, order_id + ?1 * {t}, status, amount, card, gateway_ref, \
             'ezd-pay-' || (id + ?1 * {p}), tries, next_at, last_error, created_at, updated_at, maybe_processed, \
             claim_token, claimed_until, unsettled, gateway FROM t_payments ORDER BY id"
        ),
        format!(
            "INSERT INTO charges SELECT id + ?1 * {c}, order_id + ?1 * {t}, rider_id, status, amount, gateway_ref, \
             'ezd-charge-' || (id + ?1 * {c}), tries, next_at, last_error, created_at, updated_at, maybe_processed, \
             claim_token, claimed_until, unsettled, gateway FROM t_charges ORDER BY id"
        ),
        format!(
            "INSERT INTO events (id, type, order_id, at, data) SELECT {uuid}, type, order_id + ?1 * {t}, at, \
             json_replace(json_replace(data, '$.order_id', order_id + ?1 * {t}), '$.customer', \
             {}) FROM (SELECT *, hex(randomblob(16)) AS h FROM t_events) ORDER BY seq",
            cust("json_extract(data, '$.customer')")
        ),
        format!(
            "INSERT INTO mypage SELECT order_id + ?1 * {t}, {}, json_set(view, '$.order_id', order_id + ?1 * {t}, \
             '$.customer', {}) FROM t_mypage ORDER BY order_id",
            cust("customer"),
            cust("customer")
        ),
        format!(
            "INSERT INTO messages SELECT key + ?1 * {m}, id || '#' || ?1, order_id + ?1 * {t}, event, status, \
             CASE WHEN recipient LIKE 'customer %' THEN {} ELSE recipient END, text, at FROM t_messages ORDER BY id",
            cust("recipient")
        ),
    ];
    for copy in 1..copies as i64 {
        conn.execute_batch("BEGIN").unwrap();
        for sql in &statements {
            conn.prepare_cached(sql).unwrap().execute([copy]).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        if copy % 100 == 0 {
            eprintln!("fixture: {} of {copies} copies", copy);
        }
    }
    conn.execute_batch(
        "UPDATE checkpoints SET seq = (SELECT MAX(seq) FROM events) WHERE name = 'mypage';
         PRAGMA journal_mode = WAL;",
    )
    .unwrap();
}
