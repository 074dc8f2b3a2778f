use std::cell::Cell;
use std::time::{Duration as StdDuration, Instant};

use chrono::DateTime;
use ezdelivery_testkit::files::folder;
use rusqlite::types::Null;

use super::repo;
use super::schema::{self, MIGRATIONS};
use super::*;
use crate::adapters::{contract_tests, rows};
use crate::domain::{DeliveryStatus, OrderStatus, Store};
use crate::StorageProblem;

fn store(id: i64) -> Store {
    Store {
        id,
        name: format!("store {id}").into(),
        owner: "park".into(),
        address: "".into(),
        open: true,
        delivery_charge: 3_000,
        review_count: 0,
        review_sum: 0,
    }
}

fn save_store(s: &mut SqliteStorage, id: i64) {
    s.write(&mut |r| r.save_store(&store(id))).expect("saved");
}

fn stores(s: &mut SqliteStorage) -> Vec<Store> {
    contract_tests::through(|w| s.read(w), |r| r.stores()).expect("read")
}

fn storage_message(result: Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Storage(m)) => m.to_string(),
        other => panic!("expected a storage error, got {other:?}"),
    }
}

/// The storage contract on new files, alternately at `full` and `normal`,
/// each storage made ready by `ready`.
fn contract_on_files_with(ready: impl Fn(SqliteStorage) -> Result<SqliteStorage>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let n = Cell::new(0);
    contract_tests::run_all(&|| {
        n.set(n.get() + 1);
        let path = dir.path().join(format!("db-{}", n.get())).join("ezdelivery.db");
        let sync = if n.get() % 2 == 0 { Synchronous::Normal } else { Synchronous::Full };
        Box::new(SqliteStorage::open_with(&path, sync).and_then(&ready).expect("opened"))
    });
}

#[test]
fn contract_on_files() {
    contract_on_files_with(Ok);
}

#[test]
fn contract_with_checkpoints_in_the_background() {
    // A checkpoint every other page: the worker copies while nearly every
    // commit of the suite goes on.
    contract_on_files_with(|s| s.checkpoint_every(2));
}

/// Bytes of the `-wal` file beside `path`.
fn wal_bytes(path: &Path) -> u64 {
    std::fs::metadata(format!("{}-wal", path.display())).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn checkpoints_in_the_background_keep_the_wal_small_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("background.db");
    let mut s =
        SqliteStorage::open_with(&path, Synchronous::Normal).and_then(|s| s.checkpoint_every(20)).expect("opened");
    let stores_saved = 1_500;
    for id in 1..=stores_saved {
        save_store(&mut s, id);
    }
    let runs = s.session.get_mut().expect("unlocked").checkpoints.as_ref().expect("started").runs();
    assert!(runs > 0, "the worker never checkpointed");
    // Every commit writes at least one page: without checkpoints that
    // start the WAL over, its file would hold all of them.
    let written = stores_saved as u64 * u64::from(PAGE_SIZE);
    assert!(wal_bytes(&path) < written / 4, "the WAL grew to {} bytes", wal_bytes(&path));
    drop(s);
    // The worker was stopped and joined, and the last connection to close
    // checkpointed the rest and removed the WAL.
    assert_eq!(wal_bytes(&path), 0);
    let mut again = SqliteStorage::open(&path).expect("reopened");
    assert_eq!(stores(&mut again).len(), stores_saved as usize);
}

#[test]
fn checkpoints_in_the_background_need_a_file_that_is_written() {
    let in_memory = SqliteStorage::open_in_memory().and_then(SqliteStorage::checkpoint_in_background).expect("kept");
    assert!(in_memory.session.lock().expect("unlocked").checkpoints.is_none());
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("read-only.db");
    drop(SqliteStorage::open(&path).expect("created"));
    let read_only =
        SqliteStorage::open_read_only(&path).and_then(SqliteStorage::checkpoint_in_background).expect("kept");
    assert!(read_only.is_read_only());
    assert!(read_only.session.lock().expect("unlocked").checkpoints.is_none());
    let by_default = SqliteStorage::open(&path).expect("opened");
    assert!(by_default.session.lock().expect("unlocked").checkpoints.is_none());
    let started = by_default.checkpoint_in_background().expect("started");
    assert!(started.session.lock().expect("unlocked").checkpoints.is_some());
}

#[test]
fn contract_in_memory() {
    contract_tests::run_all(&|| Box::new(SqliteStorage::open_in_memory().expect("opened")));
}

#[test]
fn open_sets_the_pragmas() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (sync, level) in [(Synchronous::Full, 2), (Synchronous::Normal, 1)] {
        let s = SqliteStorage::open_with(&dir.path().join(format!("{}.db", sync.as_str())), sync).expect("opened");
        let c = s.connection();
        let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("journal_mode");
        assert_eq!(mode, "wal");
        let pragma = |name: &str| -> i64 { c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0)).expect(name) };
        assert_eq!(pragma("synchronous"), level, "{sync:?}");
        assert_eq!(pragma("foreign_keys"), 1);
        assert_eq!(pragma("busy_timeout"), 10_000);
        assert_eq!(pragma("user_version"), schema::latest());
        // Allowed the whole 64 GiB: this workspace builds SQLite with the
        // cap raised (`.cargo/config.toml`); with SQLite's own cap it would
        // be 2 GiB.
        assert_eq!(pragma("mmap_size"), MMAP_SIZE);
        assert_eq!(pragma("page_size"), i64::from(PAGE_SIZE), "a new file");
    }
    // What the README tells an embedder to do to read without the map.
    let s = SqliteStorage::open(dir.path().join("no-map.db")).expect("opened");
    s.connection().pragma_update(None, "mmap_size", 0).expect("set");
    let mapped: i64 = s.connection().query_row("PRAGMA mmap_size", [], |r| r.get(0)).expect("read");
    assert_eq!(mapped, 0);
    assert_eq!(Synchronous::default(), Synchronous::Full);
    assert_eq!("normal".parse(), Ok(Synchronous::Normal));
    assert_eq!("full".parse(), Ok(Synchronous::Full));
    assert!("off".parse::<Synchronous>().is_err());
}

/// A file with SQLite's default 4 KiB pages, as earlier versions created
/// them, keeps its pages: it opens, takes writes and reopens; and the
/// README's way to give it the new size works: a new file (which `open`
/// creates with the adapter's pages) takes a copy of every row.
#[test]
fn a_file_with_other_pages_keeps_them_and_a_copy_gets_ours() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let old = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&old).expect("created");
        c.pragma_update(None, "page_size", 4096).expect("page size");
        let _mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).expect("WAL");
    }
    assert_ne!(PAGE_SIZE, 4096, "the test needs pages of another size");
    let page_size =
        |s: &SqliteStorage| -> u32 { s.connection().query_row("PRAGMA page_size", [], |r| r.get(0)).expect("read") };
    let mut s = SqliteStorage::open(&old).expect("opened");
    assert_eq!(page_size(&s), 4096);
    for id in 1..=300 {
        save_store(&mut s, id);
    }
    drop(s);
    let mut s = SqliteStorage::open(&old).expect("reopened");
    assert_eq!(page_size(&s), 4096, "kept");
    assert_eq!(stores(&mut s).len(), 300);

    let new = dir.path().join("copy.db");
    let mut copy = SqliteStorage::open(&new).expect("created");
    crate::app::copy::copy(&s, &copy).expect("copied");
    assert_eq!(page_size(&copy), PAGE_SIZE);
    assert_eq!(stores(&mut copy), stores(&mut s));
}

#[cfg(unix)]
#[test]
fn the_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let folder = dir.path().join("data").join("ezdelivery");
    let path = folder.join("ezdelivery.db");
    let mut s = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened");
    save_store(&mut s, 1);
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "the database file");
    assert_eq!(mode(&folder), 0o700, "the folder it created");
    let wal = folder.join("ezdelivery.db-wal");
    assert!(wal.exists(), "WAL mode keeps a -wal file while open");
    assert_eq!(mode(&wal), 0o600, "the -wal file");
}

#[test]
fn migrations_run_once() {
    let conn = Connection::open_in_memory().expect("opened");
    assert_eq!(schema::migrate(&conn).expect("migrated"), MIGRATIONS.len());
    assert_eq!(schema::user_version(&conn).expect("version"), MIGRATIONS.len() as i64);
    assert_eq!(schema::migrate(&conn).expect("up to date"), 0);
    let s = SqliteStorage::open_in_memory().expect("opened");
    assert_eq!(schema::migrate(&s.connection()).expect("up to date"), 0);
}

#[test]
fn reopening_keeps_the_data_and_does_not_migrate_again() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    {
        let mut s = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened");
        save_store(&mut s, 1);
        // Were the migrations to run again, they would fail on the tables
        // that exist, or create this one again.
        s.connection().execute_batch("DROP TABLE breakers").expect("dropped");
    }
    let mut s = SqliteStorage::open_with(&path, Synchronous::Normal).expect("reopened");
    assert_eq!(stores(&mut s), vec![store(1)]);
    let breakers: i64 = s
        .connection()
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'breakers'", [], |r| r.get(0))
        .expect("counted");
    assert_eq!(breakers, 0, "the migrations did not run again");
    save_store(&mut s, 2);
    assert_eq!(stores(&mut s).len(), 2);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    {
        let s = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened");
        s.connection().pragma_update(None, "user_version", schema::latest() + 1).expect("set");
    }
    let message = invalid_message(SqliteStorage::open_with(&path, Synchronous::Full));
    assert!(message.contains("written by a newer ezdelivery"), "{message}");
    assert!(message.contains(&path.display().to_string()), "names the file: {message}");
    let conn = Connection::open(&path).expect("opened");
    assert_eq!(schema::user_version(&conn).expect("version"), schema::latest() + 1, "left as it was");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_as_invalid() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "this is not a database, but it is long enough to have a header").expect("written");
    let message = refused_untouched(&path);
    assert!(message.contains("notes.txt"), "{message}");
}

#[test]
fn a_writer_waits_for_another_writer() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    let first = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened");
    let mut second = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened twice");
    let (locked, wait) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        first
            .write(&mut |r| {
                r.save_store(&store(1))?;
                locked.send(()).expect("sent");
                std::thread::sleep(StdDuration::from_millis(300));
                Ok(())
            })
            .expect("the first write");
    });
    wait.recv().expect("the first writer holds the lock");
    let started = Instant::now();
    second.write(&mut |r| r.save_store(&store(2))).expect("the second write waits, then succeeds");
    assert!(started.elapsed() >= StdDuration::from_millis(150), "it waited: {:?}", started.elapsed());
    holder.join().expect("joined");
    assert_eq!(stores(&mut second), vec![store(1), store(2)]);
}

/// A storage with one of each record that the bad-row test corrupts.
fn one_of_each(now: DateTime<chrono::Utc>) -> SqliteStorage {
    let s = SqliteStorage::open_in_memory().expect("opened");
    s.write(&mut |r| {
        r.save_store(&store(1))?;
        let menu = crate::domain::Menu { id: 1, store_id: 1, name: "치킨".into(), price: 1_000, available: true };
        let (order, placed) = crate::domain::Order::place(1, &store(1), &[(menu, 1)], "kim", "", now)?;
        r.insert_order(&order)?;
        r.save_payment(&crate::domain::Payment::request(1, 1, 1_000, None, "k1".into(), now))?;
        r.append_event("e-1", now, &placed)?;
        r.save_view(&crate::OrderView::start(1, now, &placed).expect("a view"))?;
        let message = crate::ports::Message {
            id: "m".into(),
            key: 1,
            order_id: 1,
            event: "OrderPlaced".parse().expect("an event type"),
            status: "pending_payment".parse().expect("a status"),
            recipient: "kim".into(),
            text: "hi".into(),
            at: now,
        };
        r.queue_message(&message, &["console"])
    })
    .expect("written");
    s
}

#[test]
fn bad_rows_are_storage_errors_naming_table_and_value() {
    let now = DateTime::from_timestamp(1_714_521_600, 0).expect("a time");
    type Load = fn(&mut dyn Repo) -> Result<()>;
    let cases: [(&str, &[&str], Load); 10] = [
        ("UPDATE orders SET status = 'lost'", &["orders.status", "lost"], |r| r.order(1).map(drop)),
        ("UPDATE orders SET created_at = 'yesterday'", &["orders.created_at", "yesterday"], |r| r.order(1).map(drop)),
        ("UPDATE order_items SET qty = -2", &["order_items.qty", "-2"], |r| r.order(1).map(drop)),
        ("UPDATE payments SET tries = -1", &["payments.tries", "-1"], |r| r.latest_payment(1).map(drop)),
        ("UPDATE payments SET next_at = 'soon'", &["payments.next_at", "soon"], |r| r.latest_payment(1).map(drop)),
        ("UPDATE events SET data = '{'", &["events", "JSON"], |r| r.events(0, 10).map(drop)),
        ("UPDATE events SET type = 'Exploded'", &["events", "Exploded"], |r| r.events_numbered(&[1], 0).map(drop)),
        ("UPDATE mypage SET view = '[]'", &["mypage", "JSON"], |r| r.view(1).map(drop)),
        ("UPDATE message_deliveries SET tries = -3", &["message_deliveries.tries", "-3"], |r| {
            r.due_messages(DateTime::from_timestamp(1_714_521_600, 0).expect("a time"), 10).map(drop)
        }),
        ("UPDATE messages SET at = 'never'", &["messages.at", "never"], |r| r.dead_messages(10).map(drop)),
    ];
    for (corrupt, words, load) in cases {
        let s = one_of_each(now);
        s.read(&mut |r| load(r)).expect("fine before");
        s.connection().execute_batch(corrupt).expect("corrupted");
        if corrupt.contains("messages SET at") {
            s.connection().execute_batch("UPDATE message_deliveries SET state = 'dead'").expect("parked");
        }
        let message = match s.read(&mut |r| load(r)) {
            Err(Error::Storage(m)) => m,
            other => panic!("`{corrupt}`: expected a storage error, got {other:?}"),
        };
        for word in words {
            assert!(message.contains(word), "`{corrupt}`: {message:?} lacks {word:?}");
        }
    }
}

#[test]
fn constraint_violations_fail_the_write_and_keep_nothing() {
    let mut s = SqliteStorage::open_in_memory().expect("opened");
    let menu =
        |id, name: &str| crate::domain::Menu { id, store_id: 1, name: name.into(), price: 1_000, available: true };
    s.write(&mut |r| {
        r.save_store(&store(1))?;
        r.save_menu(&menu(1, "치킨"))
    })
    .expect("written");

    // A unique name taken is invalid input (two writers may race to it).
    let taken = s.write(&mut |r| {
        r.save_store(&store(2))?;
        r.save_menu(&menu(2, "치킨"))
    });
    assert!(matches!(&taken, Err(Error::Invalid(m)) if m.0.contains("치킨")), "one name per store: {taken:?}");

    // Foreign keys are checked at commit: a payment of an order that does not exist.
    let now = DateTime::from_timestamp(0, 0).expect("a time");
    let message = storage_message(s.write(&mut |r| {
        r.save_store(&store(3))?;
        r.save_payment(&crate::domain::Payment::request(1, 77, 1_000, None, "k1".into(), now))
    }));
    assert!(message.contains("FOREIGN KEY"), "{message}");
    assert_eq!(stores(&mut s), vec![store(1)]);

    let message = storage_message(s.write(&mut |r| {
        r.update_order(&crate::domain::Order {
            id: 5,
            store_id: 1,
            customer: "kim".into(),
            address: "".into(),
            items: vec![].into(),
            total: 0,
            status: OrderStatus::Paid,
            reviewed: false,
            created_at: now,
            updated_at: now,
        })
    }));
    assert!(message.contains("order 5"), "{message}");
    // Still usable after all that.
    save_store(&mut s, 2);
    assert_eq!(stores(&mut s).len(), 2);
}

#[test]
fn reviews_are_stored_with_every_field() {
    let s = SqliteStorage::open_in_memory().expect("opened");
    let now = DateTime::from_timestamp(1_714_521_600, 987_654_321).expect("a time");
    let order = crate::domain::Order {
        id: 1,
        store_id: 1,
        customer: "kim".into(),
        address: "".into(),
        items: vec![].into(),
        total: 0,
        status: OrderStatus::Delivered,
        reviewed: true,
        created_at: now,
        updated_at: now,
    };
    let review = crate::domain::Review {
        order_id: 1,
        store_id: 1,
        customer: "kim".into(),
        score: 4,
        text: "좋아요".into(),
        created_at: now,
    };
    s.write(&mut |r| {
        r.save_store(&store(1))?;
        r.insert_order(&order)?;
        r.save_review(&review)?;
        r.save_review(&crate::domain::Review { score: 5, ..review.clone() })
    })
    .expect("written");
    let row: (i64, i64, String, i64, String, String) = s
        .connection()
        .query_row("SELECT order_id, store_id, customer, score, text, created_at FROM reviews", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .expect("one review");
    assert_eq!(row, (1, 1, "kim".into(), 5, "좋아요".into(), "2024-05-01T00:00:00.987654Z".into()));
}

#[test]
fn times_are_fixed_width_utc_text_in_time_order() {
    let times = [
        DateTime::from_timestamp(0, 0),
        DateTime::from_timestamp(9, 5_000),
        DateTime::from_timestamp(10, 0),
        DateTime::from_timestamp(1_714_521_600, 999_999_999),
        DateTime::from_timestamp(253_402_300_799, 0),
    ]
    .map(|t| t.expect("a time"));
    let texts = times.map(|t| crate::adapters::rows::time_text(&t));
    assert_eq!(texts[0], "1970-01-01T00:00:00.000000Z");
    assert_eq!(texts[1], "1970-01-01T00:00:09.000005Z");
    assert_eq!(texts[3], "2024-05-01T00:00:00.999999Z", "truncated to microseconds");
    assert_eq!(texts[4], "9999-12-31T23:59:59.000000Z");
    assert!(texts.iter().all(|t| t.len() == texts[0].len()));
    assert!(texts.windows(2).all(|w| w[0] < w[1]), "string order is time order: {texts:?}");
}

#[test]
fn the_inbox_statuses_are_the_domains() {
    let domain: Vec<OrderStatus> = OrderStatus::ALL.iter().copied().filter(|s| s.in_store_inbox()).collect();
    assert_eq!(domain, OrderStatus::IN_STORE_INBOX.to_vec());
    let listed = format!("({})", domain.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "));
    assert_eq!(rows::inbox_statuses!(), listed, "the statuses the migration first sets in_inbox from");
    let s = SqliteStorage::open_in_memory().expect("opened");
    let index: String = s
        .connection()
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'orders_inbox'", [], |r| r.get(0))
        .expect("the inbox's index");
    assert!(index.ends_with("ON orders (store_id, id) WHERE in_inbox = 1"), "the inbox's index: {index}");
    let busy: Vec<String> = DeliveryStatus::KEEPS_RIDER_BUSY.iter().map(|s| format!("'{s}'")).collect();
    assert_eq!(rows::busy_statuses!(), format!("({})", busy.join(", ")), "the statuses rider_busy is first set from");
}

/// The plan of `sql`, one line per step.
fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect(sql);
    let n = stmt.parameter_count();
    let rows =
        stmt.query_map(rusqlite::params_from_iter(std::iter::repeat_n(Null, n)), |r| r.get::<_, String>(3)).expect(sql);
    rows.collect::<rusqlite::Result<_>>().expect(sql)
}

#[test]
fn hot_queries_use_indexes() {
    let s = SqliteStorage::open_in_memory().expect("opened");
    let conn = s.connection();
    let cases: &[(&str, &str, &[&str])] = &[
        ("order row", repo::ORDER_ROW, &["orders USING INTEGER PRIMARY KEY", "i USING PRIMARY KEY"]),
        ("store", repo::STORE, &["stores USING INTEGER PRIMARY KEY"]),
        ("menu", repo::MENU, &["menus USING INTEGER PRIMARY KEY"]),
        ("menu by name", repo::MENU_BY_NAME, &["menus USING INDEX sqlite_autoindex_menus_1"]),
        ("menus of a store", repo::MENUS_OF_STORE, &["menus USING INDEX sqlite_autoindex_menus_1"]),
        ("rider", repo::RIDER, &["riders USING INTEGER PRIMARY KEY"]),
        ("rider by name", repo::RIDER_BY_NAME, &["riders USING COVERING INDEX riders_name"]),
        ("idle rider", rows::IDLE_RIDER, &["orders_rider"]),
        ("least busy rider", rows::LEAST_BUSY_RIDER, &["orders_rider"]),
        ("store inbox", rows::STORE_INBOX, &["orders USING COVERING INDEX orders_inbox"]),
        ("events", repo::EVENTS, &["events USING INTEGER PRIMARY KEY"]),
        ("an event by number", repo::EVENT, &["events USING INTEGER PRIMARY KEY"]),
        ("checkpoint", repo::CHECKPOINT, &["checkpoints USING INDEX sqlite_autoindex_checkpoints_1"]),
        ("view by order", repo::VIEW, &["mypage USING INTEGER PRIMARY KEY"]),
        ("customer views", repo::CUSTOMER_VIEWS, &["mypage USING INDEX mypage_customer"]),
        ("request key", repo::REQUEST, &["idempotency_keys USING INDEX sqlite_autoindex_idempotency_keys_1"]),
        ("purge request keys", repo::PURGE_REQUESTS, &["idempotency_keys USING INDEX idempotency_keys_claimed"]),
        ("due messages", repo::DUE_MESSAGES, &["d USING INDEX message_deliveries_due", "m USING INTEGER PRIMARY KEY"]),
        (
            "dead messages",
            repo::DEAD_MESSAGES,
            &["d USING INDEX message_deliveries_due", "m USING INTEGER PRIMARY KEY"],
        ),
    ];
    let check = |what: &str, sql: &str, uses: &[&str]| {
        let steps = plan(&conn, sql);
        for step in &steps {
            // Choosing a rider reads riders in id order (the idle one stops at
            // the first it finds); the due messages read the channels to leave
            // out from the JSON array given; nothing else scans.
            let allowed = matches!(what, "idle rider" | "least busy rider") && step == "SCAN r"
                || what == "due messages" && step.starts_with("SCAN json_each VIRTUAL TABLE");
            assert!(!step.starts_with("SCAN") || allowed, "{what} scans: {steps:?}");
        }
        for index in uses {
            assert!(steps.iter().any(|step| step.contains(index)), "{what} does not use {index}: {steps:?}");
        }
    };
    for (what, sql, uses) in cases {
        check(what, sql, uses);
    }
    // Riders in id order, not sorted afterwards: the first idle one ends it.
    let idle = plan(&conn, rows::IDLE_RIDER);
    assert!(!idle.iter().any(|step| step.contains("TEMP B-TREE")), "the idle rider's plan sorts: {idle:?}");
    for calls in [repo::PAYMENT_SQL, repo::CHARGE_SQL] {
        let t = calls.table;
        let (order, due) = (format!("{t} USING INDEX {t}_order"), format!("{t} USING INDEX {t}_due"));
        check(&format!("{t} by id"), calls.by_id, &[&format!("{t} USING INTEGER PRIMARY KEY")]);
        check(&format!("the latest of {t}"), calls.latest, &[&order]);
        check(&format!("{t} of an order"), calls.of_order, &[&order]);
        check(&format!("{t} awaiting"), calls.awaiting, &[&due]);
        check(&format!("{t} in a status"), calls.in_status, &[&due]);
    }
    for sql in
        [repo::NEXT_STORE, repo::NEXT_MENU, repo::NEXT_RIDER, repo::NEXT_ORDER, repo::NEXT_PAYMENT, repo::NEXT_CHARGE]
    {
        let steps = plan(&conn, sql);
        assert!(steps.iter().all(|step| !step.starts_with("SCAN")), "{sql}: {steps:?}");
    }
}

#[test]
fn time_text_matches_chrono_format() {
    use chrono::{DateTime, TimeZone, Utc};
    let times: Vec<DateTime<Utc>> = vec![
        Utc.with_ymd_and_hms(2026, 11, 24, 17, 5, 9).unwrap(),
        Utc.timestamp_opt(0, 0).unwrap(),
        Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap(),
        Utc.timestamp_opt(253_402_300_799, 999_999_000).unwrap(),
        Utc.timestamp_opt(-62_135_596_800, 1_000).unwrap(),
    ];
    assert!(crate::adapters::rows::parse_time("t", "c", "2024-13-01T00:00:00.000000Z").is_err());
    assert!(crate::adapters::rows::parse_time("t", "c", "2024-01-01T00:00:00.00000xZ").is_err());
    assert_eq!(
        crate::adapters::rows::parse_time("t", "c", "2024-01-01T09:00:00+09:00").unwrap(),
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
    );
    for t in times {
        let text = crate::adapters::rows::time_text(&t);
        assert_eq!(text, t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        assert_eq!(
            crate::adapters::rows::parse_time("t", "c", &text).unwrap(),
            chrono::SubsecRound::trunc_subsecs(t, 6)
        );
    }
    // Beyond four-digit years, and a leap second: still chrono's `format` text.
    let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31).and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000));
    let odd = [Utc.timestamp_opt(253_402_300_800, 7_000).unwrap(), Utc.timestamp_opt(-62_198_755_200, 0).unwrap()];
    for t in odd.into_iter().chain(leap.map(|t| t.and_utc())) {
        assert_eq!(crate::adapters::rows::time_text(&t), t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
    }
}

#[test]
fn cached_views_follow_writes_of_other_connections() {
    use crate::domain::view::OrderView;
    use crate::domain::{Event, OrderItem};
    let dir = tempfile::tempdir().expect("a folder");
    let path = dir.path().join("cache.db");
    let mut a = SqliteStorage::open_with(&path, Synchronous::Normal).expect("opened");
    let b = SqliteStorage::open_with(&path, Synchronous::Normal).expect("opened again");
    let at = DateTime::from_timestamp(1_714_521_600, 0).expect("a time");
    let placed = Event::OrderPlaced(Box::new(crate::domain::Placed {
        order_id: 1,
        store_id: 1,
        store: "BBQ".into(),
        customer: "kim".into(),
        address: "".into(),
        items: vec![OrderItem { menu_id: 1, name: "후라이드".into(), unit_price: 18_000, qty: 1 }].into(),
        total: 18_000,
    }));
    let view = OrderView::start(1, at, &placed).expect("a view");
    a.write(&mut |r| r.save_view(&view)).expect("saved by a");
    let read =
        |s: &mut SqliteStorage| contract_tests::through(|w| s.read(w), |r| r.view(1)).expect("read").expect("a view");
    assert_eq!(read(&mut a), view);
    let changed = OrderView { address: "서울".into(), ..view.clone() };
    b.write(&mut |r| r.save_view(&changed)).expect("saved by b");
    assert_eq!(read(&mut a), changed, "a sees b's commit, not its cache");
    // A failed write leaves nothing cached either.
    let failed = a.write(&mut |r| {
        r.save_view(&view)?;
        Err(Error::Internal("rolled back".into()))
    });
    assert!(failed.is_err());
    assert_eq!(read(&mut a), changed);
    // Nor does a write straight through the connection.
    a.connection().execute("UPDATE mypage SET view = json_set(view, '$.address', 'raw')", []).expect("raw write");
    assert_eq!(read(&mut a).address, "raw");
}

#[test]
fn cached_rows_are_what_the_file_holds() {
    use crate::domain::{
        Breaker, BreakerName, BreakerState, Charge, Delivery, KitchenStatus, KitchenTicket, Menu, Order, OrderItem,
    };
    let dir = tempfile::tempdir().expect("a folder");
    let path = dir.path().join("orders.db");
    let mut a = SqliteStorage::open_with(&path, Synchronous::Normal).expect("opened");
    let b = SqliteStorage::open_with(&path, Synchronous::Normal).expect("opened again");
    // Nanoseconds, which the file keeps to the microsecond: the cache must too.
    let at = |s: i64| DateTime::from_timestamp(1_714_521_600 + s, 123_456_789).expect("a time");
    let items = vec![
        OrderItem { menu_id: 2, name: "콜라".into(), unit_price: 2_000, qty: 3 },
        OrderItem { menu_id: 1, name: "후라이드".into(), unit_price: 18_000, qty: 1 },
    ];
    let placed = Order {
        id: 1,
        store_id: 1,
        customer: "kim".into(),
        address: "서울".into(),
        total: 24_000,
        items: items.into(),
        status: OrderStatus::PendingPayment,
        reviewed: false,
        created_at: at(0),
        updated_at: at(0),
    };
    let rider = crate::domain::Rider { id: 1, name: "lee".into() };
    let ticket = KitchenTicket { order_id: 1, store_id: 1, status: KitchenStatus::Cooking, updated_at: at(2) };
    let delivery = Delivery {
        order_id: 1,
        rider_id: Some(1),
        charge: 3_000,
        status: DeliveryStatus::Preparing,
        updated_at: at(2),
    };
    let charge = Charge::request(1, 1, 1, 3_000, "ezd-charge-1".into(), at(2));
    let claimed = Charge { attempt: charge.attempt.claim("token".into(), at(9), &"sandbox".into()), ..charge.clone() };
    let menu = Menu { id: 1, store_id: 1, name: "후라이드".into(), price: 18_000, available: true };
    let breaker = |failures| Breaker {
        name: BreakerName::Charge,
        state: BreakerState::Closed,
        failures,
        opened_at: Some(at(7)),
        updated_at: at(failures.into()),
    };
    let row = |s: &mut SqliteStorage| {
        contract_tests::through(
            |w| s.read(w),
            |r| {
                let order = (r.order(1)?, r.ticket(1)?, r.delivery(1)?, r.charges(1)?);
                let catalog =
                    (r.store(1)?, r.menu_by_name(1, "후라이드")?, r.rider(1)?, r.breaker(&BreakerName::Charge)?);
                Ok((order, catalog))
            },
        )
        .expect("read")
    };
    let flags = |s: &SqliteStorage| -> (bool, bool) {
        s.connection()
            .query_row("SELECT in_inbox, rider_busy FROM orders WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("flags")
    };
    // Each step written by `a`, which keeps the row; read by `b`, which
    // reads the file: the two agree, flags included.
    type Step<'a> = &'a dyn Fn(&mut dyn Repo) -> Result<()>;
    let steps: [Step; 9] = [
        &|r| {
            r.save_store(&contract_tests::store(1))?;
            r.save_menu(&menu)?;
            r.save_rider(&rider)?;
            r.save_breaker(&breaker(1))?;
            r.insert_order(&placed)
        },
        &|r| r.update_order(&Order { status: OrderStatus::Paid, updated_at: at(1), ..placed.clone() }),
        &|r| {
            r.update_order(&Order { status: OrderStatus::Cooking, updated_at: at(2), ..placed.clone() })?;
            r.save_ticket(&ticket)?;
            r.save_delivery(&delivery)?;
            r.save_charge(&charge)
        },
        &|r| r.save_charge(&claimed),
        &|r| {
            r.save_store(&Store { name: "BBQ".into(), ..contract_tests::store(1) })?;
            r.save_menu(&Menu { available: false, ..menu.clone() })?;
            r.save_rider(&crate::domain::Rider { name: "park".into(), ..rider.clone() })?;
            r.save_breaker(&breaker(2))
        },
        &|r| {
            r.update_order(&Order { status: OrderStatus::Delivering, updated_at: at(3), ..placed.clone() })?;
            r.save_delivery(&Delivery { status: DeliveryStatus::Delivering, updated_at: at(3), ..delivery.clone() })
        },
        &|r| {
            r.update_order(&Order { status: OrderStatus::Delivered, updated_at: at(4), ..placed.clone() })?;
            r.save_delivery(&Delivery { status: DeliveryStatus::Delivered, updated_at: at(4), ..delivery.clone() })
        },
        &|r| r.add_store_review(1, 5),
        // A second charge of the order: new, so not in its cached list.
        &|r| r.save_charge(&Charge::request(2, 1, 1, 4_000, "ezd-charge-2".into(), at(5))),
    ];
    let mut b = b;
    for (i, step) in steps.iter().enumerate() {
        // What `a` reads before it writes, it keeps (at first: no order, no
        // charges, no breaker).
        row(&mut a);
        a.write(&mut |r| step(r)).expect("written");
        let (cached, fresh) = (row(&mut a), row(&mut b));
        assert_eq!(cached, fresh, "step {i}: the cached rows are the file's");
        let ((order, _, delivery, _), _) = &fresh;
        let order = order.as_ref().expect("the order");
        let busy = delivery.as_ref().is_some_and(|d| d.busy_rider().is_some());
        assert_eq!(flags(&b), (order.status.in_store_inbox(), busy), "step {i}: the flags follow");
    }
    // Another connection's commit, a rolled-back write, a write behind the
    // adapter's back: none leaves `a` reading an old row.
    b.write(&mut |r| {
        r.update_order(&Order { reviewed: true, updated_at: at(5), status: OrderStatus::Delivered, ..placed.clone() })
    })
    .expect("reviewed by b");
    assert!(row(&mut a).0 .0.expect("the order").reviewed, "a sees b's commit");
    let failed = a.write(&mut |r| {
        r.update_order(&Order { status: OrderStatus::Cancelled, ..placed.clone() })?;
        Err(Error::Internal("rolled back".into()))
    });
    assert!(failed.is_err());
    assert_eq!(row(&mut a).0 .0.expect("the order").status, OrderStatus::Delivered);
    a.connection().execute("UPDATE orders SET address = 'raw'", []).expect("raw write");
    assert_eq!(&*row(&mut a).0 .0.expect("the order").address, "raw");
    // A unit of work that panics after a write: its transaction is rolled
    // back, and the storage goes on with the file's rows.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = a.write(&mut |r| {
            r.update_order(&Order { status: OrderStatus::Cancelled, ..placed.clone() })?;
            panic!("a bug in a unit of work");
        });
    }));
    assert!(panicked.is_err());
    assert_eq!(row(&mut a), row(&mut b), "nothing of the panicked write is read");
    assert_eq!(row(&mut a).0 .0.expect("the order").status, OrderStatus::Delivered);
    a.write(&mut |r| r.update_order(&Order { status: OrderStatus::Delivered, updated_at: at(6), ..placed.clone() }))
        .expect("the storage writes again");

    // The review flag through the cache; a read in the same unit of work
    // sees the unit's own change.
    row(&mut a);
    a.write(&mut |r| {
        r.update_order(&Order { status: OrderStatus::Paid, reviewed: true, updated_at: at(7), ..placed.clone() })?;
        assert!(r.store_inbox(1)?.contains(&1), "the inbox reads the unit of work's own change");
        Ok(())
    })
    .expect("written");
    assert_eq!(row(&mut a), row(&mut b));
    assert_eq!(flags(&b), (true, false));
    // Through a storage that has not read the row: written at once.
    let c = SqliteStorage::open_with(&path, Synchronous::Normal).expect("opened a third time");
    c.write(&mut |r| r.update_order(&Order { status: OrderStatus::Cooking, updated_at: at(8), ..placed.clone() }))
        .expect("written at once");
    assert_eq!(row(&mut a), row(&mut b));
    assert_eq!(flags(&b), (true, false));
    // Flags set wrong by hand: the next write sets them right.
    a.connection().execute("UPDATE orders SET in_inbox = 0, rider_busy = 1", []).expect("wrong flags");
    row(&mut a);
    a.write(&mut |r| {
        r.update_order(&Order { status: OrderStatus::Cooked, updated_at: at(9), ..placed.clone() })?;
        r.save_delivery(&Delivery { status: DeliveryStatus::Delivered, updated_at: at(9), ..delivery.clone() })
    })
    .expect("written");
    assert_eq!(flags(&b), (true, false), "the flags are set right again");
    assert_eq!(row(&mut a), row(&mut b));
    // A commit refused (a foreign key is checked then) leaves nothing cached.
    let refused = a.write(&mut |r| r.insert_order(&Order { id: 2, store_id: 99, ..placed.clone() }));
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(contract_tests::through(|w| a.read(w), |r| r.order(2)).expect("read"), None);
    // So does one refused with a change to a kept row still pending when
    // the unit of work ended (written then, refused at the commit).
    row(&mut a);
    let refused = a.write(&mut |r| r.save_delivery(&Delivery { rider_id: Some(99), ..delivery.clone() }));
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(row(&mut a), row(&mut b));
    // A ticket of another store's order is refused from a cached row too.
    row(&mut a);
    let stray = a.write(&mut |r| r.save_ticket(&KitchenTicket { store_id: 2, ..ticket.clone() }));
    assert!(matches!(stray, Err(Error::Storage(_))), "{stray:?}");
    assert_eq!(row(&mut a), row(&mut b));
    // Two orders' rows changed by turns in one unit of work: each is
    // written before the other is changed, and both are in the file.
    a.write(&mut |r| r.insert_order(&Order { id: 2, ..placed.clone() })).expect("inserted");
    a.write(&mut |r| {
        r.update_order(&Order { status: OrderStatus::Paid, updated_at: at(10), ..placed.clone() })?;
        r.update_order(&Order { id: 2, status: OrderStatus::Paid, updated_at: at(10), ..placed.clone() })?;
        r.update_order(&Order { status: OrderStatus::Cooking, updated_at: at(11), ..placed.clone() })
    })
    .expect("written");
    let both = |s: &mut SqliteStorage| {
        contract_tests::through(|w| s.read(w), |r| Ok((r.order(1)?, r.order(2)?))).expect("read")
    };
    // A pending change whose UPDATE fails (a trigger of this connection
    // refuses it), then a panic in the unit of work: the change is not
    // read afterwards.
    row(&mut a);
    let refuse = "CREATE TEMP TRIGGER refuse BEFORE UPDATE ON orders BEGIN SELECT RAISE(ABORT, 'refused'); END";
    a.connection().execute_batch(refuse).expect("a trigger");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = a.write(&mut |r| {
            r.update_order(&Order { status: OrderStatus::Cancelled, updated_at: at(12), ..placed.clone() })?;
            let refused = r.store_inbox(1);
            assert!(refused.is_err(), "the pending UPDATE fails: {refused:?}");
            panic!("a bug that ignores the error");
        });
    }));
    assert!(panicked.is_err());
    a.connection().execute_batch("DROP TRIGGER refuse").expect("dropped");
    assert_eq!(both(&mut a), both(&mut b), "nothing of the failed change is read");
    let (one, two) = both(&mut b);
    assert_eq!((one.map(|o| o.status), two.map(|o| o.status)), (Some(OrderStatus::Cooking), Some(OrderStatus::Paid)));
    assert_eq!(both(&mut a), both(&mut b));
}

// ─────────────── the read-only look before open (preflight) ───────────────

fn invalid_message(result: Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Invalid(m)) => m.0,
        other => panic!("expected an invalid-input error, got {other:?}"),
    }
}

/// Opens `path` expecting a refusal, and checks that it left the folder of
/// `path` as it was (not a byte changed, no file beside it); the message.
fn refused_untouched(path: &Path) -> String {
    let dir = path.parent().expect("a folder");
    let before = folder(dir);
    let message = invalid_message(SqliteStorage::open_with(path, Synchronous::Full));
    assert_eq!(folder(dir), before, "{}: not a byte changed, no file left beside it", path.display());
    message
}

/// A database of another program: tables `foo` and `bar`, in `journal_mode`.
fn foreign_database(path: &Path, journal_mode: &str, user_version: i64) {
    let conn = Connection::open(path).expect("opened");
    let _mode: String =
        conn.query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |r| r.get(0)).expect("journal mode");
    conn.execute_batch("CREATE TABLE foo (x); CREATE TABLE bar (y); INSERT INTO foo VALUES (1);").expect("created");
    conn.pragma_update(None, "user_version", user_version).expect("set");
}

#[test]
fn a_foreign_database_is_refused_untouched_in_either_journal_mode() {
    for mode in ["delete", "wal"] {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("app.db");
        foreign_database(&path, mode, 0);
        let before = folder(dir.path());
        assert_eq!(before.len(), 1, "{mode}: only the database file: {:?}", before.keys());
        let message = refused_untouched(&path);
        assert!(message.contains("is not an ezdelivery database"), "{message}");
        assert!(message.contains("tables bar, foo"), "{message}");
        assert!(!message.contains("--db"), "the library names no flag of the program: {message}");
        assert!(message.contains(&path.display().to_string()), "names the file: {message}");
        let contents = invalid_message(SqliteStorage::inspect(&path));
        assert_eq!(contents, message);
        assert_eq!(folder(dir.path()), before, "{mode}: not a byte changed, no file left beside it");
        let conn = Connection::open(&path).expect("opened");
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("journal mode");
        assert_eq!(journal, mode, "the journal mode is the one it had");
    }
}

#[test]
fn a_newer_database_is_refused_untouched_and_keeps_its_journal_mode() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    {
        let mut s = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened");
        save_store(&mut s, 1);
        let c = s.connection();
        c.pragma_update(None, "user_version", 999).expect("set");
        let _mode: String = c.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).expect("delete mode");
    }
    assert_eq!(folder(dir.path()).len(), 1, "a rollback-journal database: no -wal beside it");
    let message = refused_untouched(&path);
    assert!(message.contains("written by a newer ezdelivery (schema version 999"), "{message}");
    assert!(message.contains(&format!("this one knows up to {}", schema::latest())), "{message}");
    assert!(message.contains("upgrade ezdelivery"), "{message}");
}

#[test]
fn another_programs_database_with_a_high_version_is_not_called_newer() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("app.db");
    foreign_database(&path, "delete", 999);
    let message = refused_untouched(&path);
    assert!(message.contains("is not an ezdelivery database (it has tables bar, foo)"), "{message}");
}

#[test]
fn a_database_with_foreign_tables_beside_ours_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    {
        let s = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened");
        s.connection().execute_batch("CREATE TABLE notes (text)").expect("created");
    }
    let message = refused_untouched(&path);
    assert!(message.contains("(it has table notes)"), "only the foreign one is named: {message}");
}

#[test]
fn our_tables_without_a_schema_version_are_not_ours() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("copy.db");
    Connection::open(&path).expect("opened").execute_batch(MIGRATIONS[0]).expect("created");
    let message = refused_untouched(&path);
    assert!(message.contains("is not an ezdelivery database"), "{message}");
}

#[test]
fn an_older_database_with_some_of_our_tables_is_migrated() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).expect("opened");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.execute_batch("DROP TABLE breakers").expect("a subset of the tables");
        conn.pragma_update(None, "user_version", 1).expect("set");
    }
    let contents = SqliteStorage::inspect(&path).expect("looked at").expect("a database");
    assert_eq!(contents.version, 1);
    assert!(contents.is_empty(), "{contents:?}");
    assert!(!contents.rows.contains_key("breakers"));
    let mut s = SqliteStorage::open_with(&path, Synchronous::Full).expect("ours: opened and migrated");
    assert_eq!(schema::user_version(&s.connection()).expect("version"), schema::latest());
    save_store(&mut s, 1);
}

#[test]
fn an_empty_or_missing_file_is_a_new_database() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let missing = dir.path().join("new").join("ezdelivery.db");
    assert_eq!(SqliteStorage::inspect(&missing).expect("looked at"), None);
    assert!(!dir.path().join("new").exists(), "inspect creates nothing");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("written");
    assert_eq!(SqliteStorage::inspect(&empty).expect("looked at"), None);
    let mut s = SqliteStorage::open_with(&empty, Synchronous::Full).expect("a new database");
    save_store(&mut s, 1);
}

#[test]
fn inspect_counts_the_rows_of_our_tables_without_writing() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    {
        let mut s = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened");
        save_store(&mut s, 1);
        save_store(&mut s, 2);
    }
    let before = folder(dir.path());
    let contents = SqliteStorage::inspect(&path).expect("looked at").expect("a database");
    assert_eq!(contents.version, schema::latest());
    assert_eq!(contents.rows_in("stores"), 2);
    assert_eq!(contents.rows_in("orders"), 0);
    assert_eq!(contents.total_rows(), 2);
    assert!(!contents.is_empty());
    assert!(contents.rows.contains_key("orders") && !contents.rows.contains_key("sqlite_sequence"));
    assert_eq!(folder(dir.path()), before);
}

#[test]
fn a_database_open_elsewhere_is_read_through_its_wal() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    let mut first = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened");
    save_store(&mut first, 1);
    assert!(dir.path().join("ezdelivery.db-wal").exists());
    let contents = SqliteStorage::inspect(&path).expect("looked at").expect("a database");
    assert_eq!(contents.rows_in("stores"), 1, "the row still in the -wal file is seen");
    let mut second = SqliteStorage::open_with(&path, Synchronous::Full).expect("opened twice");
    assert_eq!(stores(&mut second), vec![store(1)]);
}

#[test]
fn our_tables_are_those_the_migrations_create() {
    let ours = super::preflight::our_tables().expect("derived");
    assert_eq!(ours.len(), MIGRATIONS.len() + 1, "one set per version, and version 0");
    assert!(ours[0].is_empty());
    let latest = &ours[MIGRATIONS.len()];
    for table in ["stores", "menus", "riders", "orders", "events", "breakers"] {
        assert!(latest.contains(table), "{table}: {latest:?}");
    }
    assert!(!latest.iter().any(|t| t.starts_with("sqlite_")), "SQLite's own are not listed: {latest:?}");
    assert!(ours.windows(2).all(|w| w[0].is_subset(&w[1])));
}

#[test]
fn reading_the_migrations_finds_the_tables_that_running_them_creates() {
    let run = super::preflight::our_tables().expect("derived");
    assert_eq!(super::preflight::tables_by_reading(), run, "both ways agree at every version");
}

#[test]
fn a_negative_schema_version_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("odd.db");
    Connection::open(&path).expect("opened").pragma_update(None, "user_version", -1).expect("set");
    let message = refused_untouched(&path);
    assert!(message.contains("unknown schema version -1"), "{message}");
}

#[test]
fn a_path_that_is_not_a_plain_file_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("created");
    let message = invalid_message(SqliteStorage::open_with(&sub, Synchronous::Full));
    assert!(message.contains("is a folder, not a database file"), "{message}");
    assert!(invalid_message(SqliteStorage::open_read_only(&sub)).contains("is a folder"));
    assert!(invalid_message(SqliteStorage::open_for_reading(&sub, Synchronous::Full)).contains("is a folder"));
    assert_eq!(std::fs::read_dir(dir.path()).expect("listed").count(), 1, "no -journal beside it");
    #[cfg(unix)]
    {
        let null = Path::new("/dev/null");
        let journal = Path::new("/dev/null-journal");
        if null.exists() && !journal.exists() {
            let message = invalid_message(SqliteStorage::open_with(null, Synchronous::Full));
            assert!(message.contains("/dev/null is a device"), "{message}");
            assert!(!journal.exists() && !Path::new("/dev/null-wal").exists());
        }
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
        if made {
            let message = invalid_message(SqliteStorage::open_with(&fifo, Synchronous::Full));
            assert!(message.contains("is a named pipe (FIFO)"), "{message}");
        } else {
            eprintln!("note: no mkfifo here; the FIFO case is not tried");
        }
    }
}

/// A database at `path` with store 1, closed (no -wal or -shm left).
fn closed_database(path: &Path) {
    let mut s = SqliteStorage::open_with(path, Synchronous::Full).expect("opened");
    save_store(&mut s, 1);
}

#[test]
fn a_database_opened_read_only_is_read_and_never_written() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    closed_database(&path);
    let before = folder(dir.path());
    assert_eq!(before.len(), 1, "{:?}", before.keys());

    let mut s = SqliteStorage::open_read_only(&path).expect("opened read-only");
    assert!(s.is_read_only());
    let mapped: i64 = s.connection().query_row("PRAGMA mmap_size", [], |r| r.get(0)).expect("mmap_size");
    assert_eq!(mapped, MMAP_SIZE, "read through a memory map too");
    assert_eq!(stores(&mut s), vec![store(1)]);
    let message = storage_message(s.write(&mut |r| r.save_store(&store(2))));
    assert!(message.contains("is open read-only") && message.contains("this command writes"), "{message}");
    assert_eq!(stores(&mut s), vec![store(1)]);
    drop(s);
    assert_eq!(folder(dir.path()), before, "nothing created, nothing written");

    // A writable one opened for reading is the ordinary storage.
    let mut s = SqliteStorage::open_for_reading(&path, Synchronous::Full).expect("opened");
    assert!(!s.is_read_only());
    save_store(&mut s, 2);
}

#[test]
fn opened_for_reading_where_nothing_is_it_reads_as_empty_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("no folder").join("missing.db");
    let mut s = SqliteStorage::open_for_reading(&path, Synchronous::Full).expect("opened");
    assert_eq!(stores(&mut s), vec![]);
    drop(s);
    assert!(!dir.path().join("no folder").exists(), "nothing created, not even the folder");
}

#[test]
fn read_only_there_must_be_an_up_to_date_database() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let missing = dir.path().join("missing.db");
    let message = storage_message(SqliteStorage::open_read_only(&missing));
    assert!(message.contains("holds no database yet"), "{message}");
    assert!(!missing.exists());

    let old = dir.path().join("old.db");
    {
        let conn = Connection::open(&old).expect("opened");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.pragma_update(None, "user_version", 1).expect("set");
    }
    let message = storage_message(SqliteStorage::open_read_only(&old));
    assert!(message.contains("older ezdelivery (schema version 1;"), "{message}");
    let message = invalid_message(SqliteStorage::open_read_only(&dir.path().join("..")));
    assert!(message.contains("is a folder"), "{message}");
}

#[test]
fn only_a_failure_for_want_of_access_says_to_check_access() {
    use std::io::{Error as IoError, ErrorKind};
    let problem = |f: &Failed| match &f.error {
        Error::Storage(m) => (m.problem(), m.to_string(), std::error::Error::source(m).is_some()),
        other => panic!("{other:?}"),
    };
    let denied = Failed::io("cannot create /x/y.db".into(), IoError::from(ErrorKind::PermissionDenied));
    assert!(denied.access);
    let (kind, m, source) = problem(&denied);
    assert_eq!(kind, StorageProblem::Access);
    assert!(m.starts_with("cannot create /x/y.db: permission denied; check that the file and its folder are writable"));
    assert!(source, "the I/O error is kept as the source");
    let other = Failed::io("cannot create /x/y.db".into(), IoError::from(ErrorKind::NotADirectory));
    assert!(!other.access);
    let (kind, m, _) = problem(&other);
    assert_eq!(kind, StorageProblem::Other);
    assert!(!m.contains("writable"), "{m}");

    let sqlite = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
    for code in [rusqlite::ffi::SQLITE_READONLY, rusqlite::ffi::SQLITE_CANTOPEN, rusqlite::ffi::SQLITE_PERM] {
        let failed = Failed::sqlite("cannot write to x.db".into(), sqlite(code));
        assert!(failed.access && failed.error.to_string().contains("writable"), "{}", failed.error);
        assert_eq!(problem(&failed).0, StorageProblem::Access);
    }
    let remedies = [
        (rusqlite::ffi::SQLITE_NOTADB, StorageProblem::Damaged),
        (rusqlite::ffi::SQLITE_CORRUPT, StorageProblem::Damaged),
        (rusqlite::ffi::SQLITE_FULL, StorageProblem::Full),
        (rusqlite::ffi::SQLITE_BUSY, StorageProblem::Busy),
        (rusqlite::ffi::SQLITE_LOCKED, StorageProblem::Busy),
        // Out of space as the WAL or its shared memory grows is an I/O error.
        (rusqlite::ffi::SQLITE_IOERR, StorageProblem::Io),
        (rusqlite::ffi::SQLITE_IOERR_WRITE, StorageProblem::Io),
        (rusqlite::ffi::SQLITE_IOERR_SHMSIZE, StorageProblem::Io),
        (rusqlite::ffi::SQLITE_CONSTRAINT, StorageProblem::Other),
    ];
    for (code, remedy) in remedies {
        let failed = Failed::sqlite("cannot write to x.db".into(), sqlite(code));
        assert!(!failed.access && !failed.error.to_string().contains("writable"), "{}", failed.error);
        assert_eq!(problem(&failed).0, remedy, "{}", failed.error);
        // the same, met in a unit of work
        let Error::Storage(met) = Error::from(sqlite(code)) else { panic!("a storage error") };
        assert_eq!(met.problem(), remedy);
    }
    let full = Failed::io("cannot create x.db".into(), IoError::from(ErrorKind::StorageFull));
    assert_eq!(problem(&full).0, StorageProblem::Full);
    // The library names no flag of the program: that is the program's to add.
    for failed in [&denied, &other] {
        assert!(!failed.error.to_string().contains("--db"), "{}", failed.error);
    }
}

#[cfg(unix)]
#[test]
fn a_database_in_a_folder_that_cannot_be_written_is_read_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let folder_path = dir.path().join("ro");
    std::fs::create_dir(&folder_path).expect("created");
    let path = folder_path.join("ezdelivery.db");
    closed_database(&path);
    let set = |mode| std::fs::set_permissions(&folder_path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    set(0o555);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    // Root writes whatever the modes say: then there is nothing to fall back from.
    let root = std::fs::write(folder_path.join("probe"), b"").is_ok();
    if root {
        eprintln!("note: running as root, which may write a read-only folder: the fallback is not exercised");
    } else {
        let message = storage_message(SqliteStorage::open_with(&path, Synchronous::Full));
        assert!(message.contains("check that the file and its folder are writable"), "{message}");
        let mut s = SqliteStorage::open_for_reading(&path, Synchronous::Full).expect("read-only");
        assert!(s.is_read_only());
        assert_eq!(stores(&mut s), vec![store(1)]);
        assert!(storage_message(s.write(&mut |r| r.save_store(&store(2)))).contains("read-only"));
    }
    set(0o755);
}

#[test]
fn a_storage_error_keeps_the_sqlite_error_as_its_source() {
    use std::error::Error as _;
    let e = Error::from(rusqlite::Error::QueryReturnedNoRows);
    let Error::Storage(inner) = &e else { panic!("{e:?}") };
    assert!(e.source().is_some(), "Error::Storage points at what failed");
    let below = inner.source().expect("the SQLite error is kept");
    assert!(below.downcast_ref::<rusqlite::Error>().is_some(), "{below:?}");
    assert_eq!(e.to_string(), format!("storage failed: {}", rusqlite::Error::QueryReturnedNoRows));
    assert!(Error::storage("made up").source().is_some_and(|s| s.source().is_none()));
}

#[test]
fn of_eight_claims_of_one_key_at_once_on_one_file_exactly_one_is_new() {
    use crate::Engine;

    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("ezdelivery.db");
    drop(SqliteStorage::open(&path).expect("created"));
    // Each thread with its own storage on the file, as eight processes would.
    for round in 0..3 {
        contract_tests::eight_claims_at_once(&format!("key-{round}"), |_| {
            Box::new(Engine::builder(SqliteStorage::open(&path).expect("opened")).build())
        });
    }
    // One engine shared by eight threads.
    let engine = Engine::builder(SqliteStorage::open(&path).expect("opened")).build();
    for round in 0..3 {
        contract_tests::eight_claims_at_once(&format!("shared-{round}"), |_| &engine);
    }
}

/// A newer ezdelivery that upgrades the file while this process has it
/// open: this one's next unit of work is refused and writes nothing, where
/// an older worker went on writing rows the old way (paid orders left out
/// of the store's inbox by a schema-12 worker on a schema-13 file).
#[test]
fn a_file_upgraded_by_a_newer_version_under_this_process_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("shared.db");
    let mut s = SqliteStorage::open(&path).expect("opened");
    save_store(&mut s, 1);
    let newer = super::schema::latest() + 1;
    Connection::open(&path).expect("opened").pragma_update(None, "user_version", newer).expect("upgraded");
    let written = s.write(&mut |r| r.save_store(&store(2)));
    let message = storage_message(written);
    assert!(message.contains(&format!("written by a newer ezdelivery (schema version {newer}")), "{message}");
    Connection::open(&path).expect("opened").pragma_update(None, "user_version", newer - 1).expect("back");
    assert_eq!(stores(&mut s).len(), 1, "store 2 was not written");
}
