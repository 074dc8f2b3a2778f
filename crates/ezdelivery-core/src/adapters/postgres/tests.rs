//! The PostgreSQL adapter against a real server
//! (`ezdelivery_testkit::postgres`, a fresh database per storage): the
//! storage contract, the log's order under concurrent writers, migrations,
//! retries, errors, LISTEN/NOTIFY, and the engine end to end.
//!
//! Every test that uses the server takes [`serial`] first: the log's
//! horizon is server-wide (`xmin` counts every database's transactions), so
//! a test that holds a transaction open on purpose, or merely creates a
//! database (`CREATE DATABASE` is a transaction too), would hold back
//! another test's readers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ezdelivery_testkit::postgres::{self as pg, PgServer};

use super::*;
use crate::adapters::contract_tests::{self, through};
use crate::domain::{ChannelName, Delivery, DeliveryStatus, Event, KitchenStatus, OrderStatus, PaymentStatus, Rider};
use crate::ports::storage::StoredEvent;
use crate::{Engine, ItemPick, NewOrder};

static SERIAL: Mutex<()> = Mutex::new(());

/// One PostgreSQL test at a time (see the module documentation).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server and a fresh database's URL, or `None` (skipped, said so).
fn fresh() -> Option<(&'static PgServer, String)> {
    let server = pg::server()?;
    Some((server, server.fresh_database()))
}

fn database_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_714_521_600 + secs, 0).expect("a time")
}

fn read<T>(s: &PostgresStorage, work: impl FnMut(&mut dyn Repo) -> Result<T>) -> T {
    through(|w| s.read(w), work).expect("the read fails")
}

fn write<T>(s: &PostgresStorage, work: impl FnMut(&mut dyn Repo) -> Result<T>) -> T {
    through(|w| s.write(w), work).expect("the write fails")
}

fn seqs(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

/// Appends `event` as a raw `INSERT` in `tx` (another program's
/// transaction), returning its number.
fn raw_append(tx: &mut postgres::Transaction<'_>, id: &str, event: &Event) -> i64 {
    let row = tx
        .query_one(
            "INSERT INTO events (id, type, order_id, at, data) VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            &[
                &id,
                &event.type_name(),
                &event.order_id(),
                &crate::adapters::rows::time_text(&at(1)),
                &event.data_json(),
            ],
        )
        .expect("a raw append");
    row.get(0)
}

#[test]
fn the_storage_contract_holds_on_postgresql() {
    let _serial = serial();
    let Some(server) = pg::server() else { return };
    contract_tests::run_all(&|| {
        Box::new(PostgresStorage::open_with(&server.fresh_database(), 2).expect("a fresh database opens"))
    });
}

/// A server that takes the connection and never answers (a stopped
/// postmaster) is a storage error naming the server, not a wait for ever:
/// the connect timeout bounds only the socket, so the whole connect is
/// bounded too. The silent server is a listener on 127.0.0.1 that accepts
/// and reads nothing.
#[test]
fn a_server_that_never_answers_is_an_error_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let accepted = std::thread::spawn(move || listener.accept().map(|(socket, _)| socket));
    let url = format!("postgres://kim:s3cret@127.0.0.1:{port}/ez?connect_timeout=1");
    let Err(Error::Storage(e)) = PostgresStorage::open(&url) else { panic!("a storage error") };
    let text = e.to_string();
    assert!(text.contains("did not answer") && text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    drop(accepted.join().expect("the listener thread"));
}

/// `sslmode=require` is refused as input, saying the client has no TLS,
/// before any connection is tried (the port is closed).
#[test]
fn sslmode_require_is_refused_saying_the_client_has_no_tls() {
    for url in ["postgres://ezd:hunter2@127.0.0.1:1/db?sslmode=require", "host=127.0.0.1 port=1 sslmode=require"] {
        let Err(Error::Invalid(e)) = PostgresStorage::open(url) else { panic!("{url} is refused as input") };
        let text = e.to_string();
        assert!(text.contains("sslmode=require") && text.contains("without it"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

/// A password with a bare `@` is refused before anything is parsed or
/// shown: the parser would take what follows it for the host, and print it.
#[test]
fn a_password_with_a_bare_at_sign_is_refused_without_showing_it() {
    for url in ["postgres://ezd:hunter2@prod@127.0.0.1:1/db", "postgresql://e@zd@127.0.0.1:1/db?sslmode=disable"] {
        let Err(Error::Invalid(e)) = PostgresStorage::open(url) else { panic!("{url} is refused as invalid") };
        assert!(e.0.contains("%40") && !e.0.contains("hunter2") && !e.0.contains("prod"), "{e}");
    }
}

/// libpq's `?port=` for a host written without a port is refused with a
/// way to write it (the `postgres` crate would give the host two ports and
/// fail at connect time, naming the wrong port); with no host in the URL
/// (a socket folder in `?host=`), it is left to the parser.
#[test]
fn a_port_given_as_an_option_beside_a_host_is_refused_saying_how_to_write_it() {
    let url = "postgres://ezd:hunter2@127.0.0.1/db?sslmode=disable&port=5433&password=hunter2";
    let Err(Error::Invalid(e)) = PostgresStorage::open(url) else { panic!("{url} is refused as invalid") };
    assert!(e.0.contains("127.0.0.1") && e.0.contains("host:5433") && !e.0.contains("hunter2"), "{e}");
    let socket = PostgresStorage::open("postgres:///db?host=/nonexistent-folder&port=5433&connect_timeout=1");
    assert!(!matches!(socket, Err(Error::Invalid(_))), "not refused as written: {:?}", socket.err());
}

/// A URL that names no server (`postgres://`, `postgres:///db`) is bad
/// input, not a failure to connect to a server its message made up.
#[test]
fn a_url_without_a_server_is_refused_as_invalid() {
    for url in ["postgres://", "postgresql:///ez", "postgres://kim:hunter2@/ez"] {
        let Err(Error::Invalid(e)) = PostgresStorage::open(url) else { panic!("{url} is refused as invalid") };
        assert!(e.0.contains("names no server") && !e.0.contains("hunter2"), "{e}");
    }
}

/// A fresh database, given to `set_up` (with the owner's URL), as a new role `ezd_<name>_<pid>` that may log
/// in and was granted nothing; `None` (skipped) on a server not our own,
/// which may want passwords where ours trusts every local user.
fn as_a_user_granted_nothing(name: &str, set_up: impl FnOnce(&str)) -> Option<String> {
    let (server, url) = fresh()?;
    if server.folder().is_none() || !url.starts_with("postgres://postgres@") {
        eprintln!("not a server of our own: skipped");
        return None;
    }
    set_up(&url);
    let role = format!("ezd_{name}_{}", std::process::id());
    server.psql(server.url(), &format!("DROP ROLE IF EXISTS \"{role}\"; CREATE ROLE \"{role}\" LOGIN"));
    let as_role = url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    Some(as_role)
}

/// A user who may read and write but not create tables (PostgreSQL 15's
/// default on a database another user owns) is told what to grant.
#[test]
fn a_user_who_may_not_create_tables_is_told_what_to_grant() {
    let Some(as_role) = as_a_user_granted_nothing("nocreate", |_| ()) else { return };
    let Err(Error::Storage(e)) = PostgresStorage::open(&as_role) else { panic!("the migration is refused") };
    assert!(e.to_string().contains("GRANT CREATE ON SCHEMA public"), "{e}");
}

/// The key correctness test: a number handed out early and committed late
/// is neither hidden forever nor read out of turn.
#[test]
fn readers_get_the_log_in_commit_order_and_never_miss_a_late_commit() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    let storage = PostgresStorage::open(&url).expect("opens");
    let mut raw = postgres::Client::connect(&url, NoTls).expect("a raw connection");
    let cooking = |order| Event::CookingStarted { order_id: order };
    let append = |id: &'static str, event: Event| write(&storage, move |r| r.append_event(id, at(2), &event));

    // 1. Event 1 appended by a transaction still open; event 2 committed
    // after it: a reader gets neither until the first commits, then both.
    let mut held = raw.transaction().expect("begin");
    let first = raw_append(&mut held, "held-1", &cooking(1));
    let second = append("later-2", cooking(2));
    assert!(first < second, "{first} < {second}");
    assert_eq!(read(&storage, |r| r.events(0, 100)), vec![], "the later event waits for the earlier");
    // A write sees what is committed, without the horizon; so does a
    // replay, which compares the log with views of the same snapshot.
    assert_eq!(seqs(&write(&storage, |r| r.events(0, 100))), vec![second]);
    assert_eq!(seqs(&read(&storage, |r| r.replay(0, 100))), vec![second], "a replay sees every committed event");
    held.commit().expect("commit");
    assert_eq!(seqs(&read(&storage, |r| r.replay(0, 100))), vec![first, second]);
    assert_eq!(seqs(&read(&storage, |r| r.events(0, 100))), vec![first, second]);

    // 2. A transaction that began writing first (an older transaction id)
    // appends its event after a younger one committed its own: the
    // earlier-numbered event comes after it in the log, and a reader
    // that read up to the later number still gets the earlier one.
    let mut older = raw.transaction().expect("begin");
    older.query_one("SELECT pg_current_xact_id()::text", &[]).expect("a transaction id");
    let younger = append("younger-3", cooking(3));
    assert_eq!(read(&storage, |r| r.events(second, 100)), vec![], "held back by the older transaction");
    let late = raw_append(&mut older, "older-4", &cooking(4));
    assert!(younger < late);
    assert_eq!(read(&storage, |r| r.events(second, 100)), vec![]);
    older.commit().expect("commit");
    let all = read(&storage, |r| r.events(0, 100));
    assert_eq!(seqs(&all), vec![first, second, late, younger], "commit order: the older transaction's first");
    assert_eq!(seqs(&read(&storage, |r| r.replay(0, 100))), vec![first, second, younger, late], "a replay: by number");
    assert_eq!(seqs(&read(&storage, |r| r.events(second, 100))), vec![late, younger]);
    assert_eq!(
        seqs(&read(&storage, |r| r.events(late, 100))),
        vec![younger],
        "after the later number, the earlier-numbered one still comes"
    );
    assert_eq!(read(&storage, |r| r.events(younger, 100)), vec![], "the end of the log");
    assert_eq!(seqs(&read(&storage, |r| r.events(second, 1))), vec![late], "at most the limit");
    // Events asked for by number (as one order's are) come in the same
    // order, after the same position.
    let numbered = |after| seqs(&read(&storage, |r| r.events_numbered(&[second, younger, late], after)));
    assert_eq!(numbered(0), vec![second, late, younger], "by number, in the log's order");
    assert_eq!(numbered(late), vec![younger], "after the later number, the earlier-numbered one still comes");
    assert_eq!(numbered(younger), Vec::<i64>::new(), "the end of the log");
    // A number that names no event counts as the last one numbered below it.
    let gone = through(
        |w| storage.write(w),
        |r| {
            r.append_event("gone", at(3), &cooking(5))?;
            Err::<i64, _>(Error::Internal("rolled back".into()))
        },
    );
    assert!(gone.is_err());
    let last = append("last", cooking(5));
    // The rolled-back number counts as event `late` (the last numbered
    // below it), which the log has before `younger`.
    assert_eq!(seqs(&read(&storage, |r| r.events(last - 1, 100))), vec![younger, last], "a rolled-back number");
    assert_eq!(all[2].event, cooking(4), "the events themselves");
}

#[test]
fn storages_opening_a_new_database_at_once_migrate_it_once() {
    let _serial = serial();
    let Some((server, url)) = fresh() else { return };
    let barrier = Barrier::new(4);
    let opened: Vec<Result<PostgresStorage>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    PostgresStorage::open_with(&url, 1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).collect()
    });
    for storage in &opened {
        let storage = storage.as_ref().expect("every storage opens");
        assert_eq!(storage.schema_version().expect("a version"), schema::latest());
    }
    let versions = server.psql(&url, "SELECT count(*) FROM schema_migrations");
    assert_eq!(versions, schema::latest().to_string(), "each version once");
    assert_eq!(server.psql(&url, "SELECT count(*) FROM pg_class WHERE relname = 'events'"), "1");

    // A database from a newer ezdelivery is refused.
    server.psql(&url, "INSERT INTO schema_migrations VALUES (99, 'later')");
    let newer = PostgresStorage::open(&url).expect_err("refused");
    assert!(matches!(&newer, Error::Invalid(_)), "exit 2, as for a newer SQLite file: {newer:?}");
    assert!(newer.to_string().contains("newer ezdelivery") && newer.to_string().contains("upgrade"), "{newer}");
}

/// A database whose `schema_migrations` is another program's (here
/// golang-migrate's: `version bigint, dirty boolean`) is refused with exit 2
/// and left as it was: its version 3 is not taken for ezdelivery's.
#[test]
fn another_programs_schema_migrations_is_refused() {
    let _serial = serial();
    let Some((server, url)) = fresh() else { return };
    server.psql(&url, "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)");
    server.psql(&url, "INSERT INTO schema_migrations VALUES (3, false)");
    let refused = PostgresStorage::open(&url).expect_err("refused");
    assert!(matches!(&refused, Error::Invalid(_)), "exit 2: {refused:?}");
    let message = refused.to_string();
    assert!(message.contains("not ezdelivery's") && message.contains("dirty boolean"), "{message}");
    assert_eq!(server.psql(&url, "SELECT count(*) FROM pg_class WHERE relname = 'events'"), "0", "nothing created");
}

/// A database of version 4 that holds orders at every stage, tickets and
/// deliveries (with a rider and without) is brought to the latest version
/// in one go: the tickets and deliveries land in their orders' rows, the
/// inbox's and riders' flags follow the statuses, and the engine's reads
/// see what was there. (PostgreSQL refuses `ALTER TABLE` while a deferred
/// key check an `UPDATE` queued is pending: the migration checks keys at
/// once.)
#[test]
fn a_version_4_database_with_orders_is_upgraded_keeping_every_ticket_and_delivery() {
    let _serial = serial();
    let Some((server, url)) = fresh() else { return };
    let mut raw = postgres::Client::connect(&url, NoTls).expect("a raw connection");
    let mut tx = raw.transaction().expect("a transaction");
    tx.batch_execute("CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)")
        .expect("schema_migrations");
    for (i, script) in schema::MIGRATIONS[..4].iter().enumerate() {
        tx.batch_execute(script).expect("an old version's script");
        tx.execute("INSERT INTO schema_migrations VALUES ($1, 'then')", &[&(i as i64 + 1)]).expect("recorded");
    }
    let at = "2026-12-03T12:00:00.000000Z";
    tx.batch_execute(&format!(
        "INSERT INTO stores VALUES (1, 'BBQ', 'park', '', 1, 3000, 0, 0);
         INSERT INTO riders VALUES (1, 'lee'), (2, 'kim');
         INSERT INTO orders (id, store_id, customer, address, total, status, reviewed, created_at, updated_at)
             SELECT n, 1, 'choi', '', 18000, s, 0, '{at}', '{at}'
             FROM (VALUES (1, 'paid'), (2, 'cooking'), (3, 'delivering'), (4, 'delivered'), (5, 'cooking'),
                          (6, 'pending_payment')) AS o (n, s);
         INSERT INTO kitchen_tickets VALUES (1, 1, 'received', '{at}'), (2, 1, 'cooking', '{at}'),
             (3, 1, 'cooked', '{at}'), (4, 1, 'cooked', '{at}'), (5, 1, 'cooking', '{at}');
         INSERT INTO deliveries VALUES (2, 1, 3000, 'preparing', '{at}'), (3, 2, 3000, 'delivering', '{at}'),
             (4, 1, 3000, 'delivered', '{at}'), (5, NULL, 3000, 'preparing', '{at}');"
    ))
    .expect("version 4's rows");
    tx.commit().expect("committed");

    let storage = PostgresStorage::open_with(&url, 1).expect("upgraded");
    assert_eq!(storage.schema_version().expect("a version"), schema::latest());
    let flags =
        server.psql(&url, "SELECT string_agg(id || ':' || in_inbox || rider_busy, ' ' ORDER BY id) FROM orders");
    assert_eq!(flags, "1:10 2:11 3:11 4:00 5:10 6:00", "in the inbox, and keeping a rider busy");
    let gone = server.psql(&url, "SELECT count(*) FROM pg_class WHERE relname IN ('kitchen_tickets', 'deliveries')");
    assert_eq!(gone, "0");
    let t = crate::adapters::rows::parse_time("orders", "updated_at", at).expect("a time");
    read(&storage, |r| {
        assert_eq!(r.store_inbox(1)?, vec![1, 2, 3, 5]);
        assert_eq!(r.ticket(2)?.map(|k| (k.store_id, k.status)), Some((1, KitchenStatus::Cooking)));
        assert_eq!(r.ticket(6)?, None);
        let delivery = Delivery {
            order_id: 3,
            rider_id: Some(2),
            charge: 3000,
            status: DeliveryStatus::Delivering,
            updated_at: t,
        };
        assert_eq!(r.delivery(3)?, Some(delivery));
        assert_eq!(r.delivery(5)?.map(|d| d.rider_id), Some(None));
        assert_eq!(r.delivery(1)?, None);
        assert_eq!(r.least_busy_rider()?.map(|r| r.id), Some(1), "each rider has one delivery: the lower id");
        Ok(())
    });
}

#[test]
fn a_deadlock_runs_the_unit_of_work_again_and_both_commit() {
    let _serial = serial();
    let Some((server, url)) = fresh() else { return };
    // Found in 50 ms rather than a second (needs a superuser; else slower).
    let _ = server.try_psql(&url, &format!("ALTER DATABASE \"{}\" SET deadlock_timeout = '50ms'", database_name(&url)));
    let storage = PostgresStorage::open(&url).expect("opens");
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        for (first, second) in [(1, 2), (2, 1)] {
            let (storage, runs, barrier) = (&storage, &runs, &barrier);
            scope.spawn(move || {
                let mut mine = 0;
                storage
                    .write(&mut |r| {
                        mine += 1;
                        runs.fetch_add(1, Ordering::SeqCst);
                        r.lock_order(first)?;
                        if mine == 1 {
                            barrier.wait(); // both hold their first lock
                        }
                        r.lock_order(second)?;
                        r.append_event(
                            &format!("e-{first}-{mine}"),
                            at(1),
                            &Event::CookingStarted { order_id: first },
                        )?;
                        Ok(())
                    })
                    .expect("both units of work commit in the end");
            });
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 3, "one of them ran again");
    assert_eq!(read(&storage, |r| r.events(0, 100)).len(), 2, "each committed once");
}

/// A unit of work that got its transaction id before an order's lock, while
/// a younger transaction appended events of that order, runs again: the
/// order's events stay in number order in the log.
#[test]
fn an_order_lock_taken_late_by_an_older_transaction_runs_the_unit_again() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    let storage = PostgresStorage::open(&url).expect("opens");
    let (locked, has_xid) = (Barrier::new(2), Barrier::new(2));
    let older_runs = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (storage, locked, has_xid, older_runs) = (&storage, &locked, &has_xid, &older_runs);
        scope.spawn(move || {
            let mut mine = 0;
            storage
                .write(&mut |r| {
                    mine += 1;
                    r.lock_order(7)?;
                    if mine == 1 {
                        locked.wait();
                        has_xid.wait(); // the other has its transaction id: ours is later
                    }
                    r.append_event("younger", at(1), &Event::CookingStarted { order_id: 7 })?;
                    Ok(())
                })
                .expect("commits");
        });
        scope.spawn(move || {
            let mut mine = 0;
            storage
                .write(&mut |r| {
                    mine += 1;
                    older_runs.fetch_add(1, Ordering::SeqCst);
                    if mine == 1 {
                        locked.wait();
                    }
                    r.save_rider(&Rider { id: 1, name: "lee".into() })?; // a transaction id now
                    if mine == 1 {
                        has_xid.wait();
                    }
                    r.lock_order(7)?;
                    r.append_event(&format!("older-{mine}"), at(2), &Event::FoodCooked { order_id: 7 })?;
                    Ok(())
                })
                .expect("commits");
        });
    });
    assert_eq!(older_runs.load(Ordering::SeqCst), 2, "the older transaction ran again");
    let log = read(&storage, |r| r.events(0, 100));
    assert_eq!(log.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["younger", "older-2"]);
    assert!(log[0].seq < log[1].seq, "in number order: {log:?}");
    assert_eq!(read(&storage, |r| r.events_numbered(&[log[0].seq, log[1].seq], 0)), log, "by number");
    assert_eq!(read(&storage, |r| r.events_numbered(&[log[0].seq, log[1].seq], log[0].seq)), log[1..].to_vec());
}

#[test]
fn a_unit_of_work_that_breaks_a_unique_name_is_invalid_and_writes_nothing() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    let storage = PostgresStorage::open(&url).expect("opens");
    write(&storage, |r| r.save_rider(&Rider { id: 1, name: "lee".into() }));
    let store = crate::adapters::contract_tests::store(1);
    let twice = storage.write(&mut |r| {
        r.save_store(&store)?;
        r.save_rider(&Rider { id: 2, name: "kim".into() })?;
        r.save_rider(&Rider { id: 3, name: "lee".into() })
    });
    assert!(matches!(&twice, Err(Error::Invalid(_))), "{twice:?}");
    assert!(twice.as_ref().is_err_and(|e| e.to_string().contains("lee")), "{twice:?}");
    assert_eq!(read(&storage, |r| r.riders()), vec![Rider { id: 1, name: "lee".into() }], "nothing written");
    assert_eq!(read(&storage, |r| r.stores()), vec![]);

    // Swallowing the failure does not commit half a unit of work.
    let swallowed = storage.write(&mut |r| {
        r.save_store(&store)?;
        let _ = r.save_rider(&Rider { id: 3, name: "lee".into() });
        Ok(())
    });
    assert!(swallowed.is_err(), "{swallowed:?}");
    assert_eq!(read(&storage, |r| r.stores()), vec![], "nothing written");
    write(&storage, |r| r.save_store(&store));
    assert_eq!(read(&storage, |r| r.stores()), vec![store.clone()], "the storage is still usable");
}

#[test]
fn errors_never_show_the_password() {
    let refused = PostgresStorage::open("postgres://ezd:s3cret-pw@127.0.0.1:1/orders").expect_err("nothing listens");
    let text = format!("{refused} {refused:?}");
    assert!(matches!(refused, Error::Storage(_)), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(text.contains("ezd@127.0.0.1:1/orders") && text.contains("check"), "{text}");

    let bad = PostgresStorage::open("postgresql://ezd:s3cret-pw@127.0.0.1:notaport/orders").expect_err("bad port");
    let text = format!("{bad} {bad:?}");
    assert!(matches!(bad, Error::Invalid(_)), "{text}");
    assert!(!text.contains("s3cret-pw") && text.contains("ezd:***@127.0.0.1"), "{text}");

    assert_eq!(redact("postgres://u:p%40ss@h:5/db?x=1"), "postgres://u:***@h:5/db?x=1");
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact("host=h password=secret user=u"), "host=h password=*** user=u");
    assert_eq!(redact("postgres://h/db?user=u&password=secret&x=1"), "postgres://h/db?user=u&password=***&x=1");
    assert_eq!(redact("postgres://h/db?PASSWORD=a&password=b"), "postgres://h/db?PASSWORD=***&password=***");
}

#[test]
fn a_wrong_database_name_says_which_and_what_to_check() {
    let _serial = serial();
    let Some(server) = pg::server() else { return };
    let url = format!("{}_missing", server.url().rsplit_once('/').map_or("", |(head, _)| head).to_string() + "/ezd");
    let missing = PostgresStorage::open(&url).expect_err("no such database");
    let text = missing.to_string();
    assert!(text.contains("/ezd_missing") && text.contains("does not exist"), "{text}");
}

/// A unit of work notifies the relay for a payment as it last saved it: one
/// saved waiting and then claimed in the same unit of work (an order placed
/// and paid at once) wakes nobody, so it does not take NOTIFY's server-wide
/// commit lock; one left waiting unclaimed does.
#[test]
fn a_call_claimed_in_the_unit_of_work_that_queued_it_wakes_nobody() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    drop(PostgresStorage::open(&url).expect("opens and migrates"));
    let mut client = postgres::Client::connect(&url, NoTls).expect("connects");
    let mut statements = HashMap::new();
    let waiting = crate::domain::Payment::request(1, 1, 1_000, None, "k".into(), at(0));
    let mut claimed = waiting.clone();
    claimed.attempt.claim = Some(crate::domain::attempt::Claim { token: "t".into(), until: at(60) });
    let notifies = |saves: &[&crate::domain::Payment], client: &mut Client, statements: &mut HashMap<_, _>| {
        let mut tx = client.transaction().expect("a transaction");
        let mut repo = PgRepo::new(&mut tx, statements, true);
        for payment in saves {
            repo.save_payment(payment).expect("saved");
        }
        let (failure, notify) = repo.finish();
        assert!(failure.is_none());
        tx.rollback().expect("rolled back");
        notify
    };
    assert!(!notifies(&[&waiting, &claimed], &mut client, &mut statements), "claimed here: nobody to wake");
    assert!(notifies(&[&waiting], &mut client, &mut statements), "left waiting: the relay is woken");
    assert!(notifies(&[&claimed, &waiting], &mut client, &mut statements), "released here: the relay is woken");
}

#[test]
fn the_relay_is_woken_by_unclaimed_work_and_only_by_it() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    let relay = PostgresStorage::open(&url).expect("opens");
    let engine = Engine::builder(PostgresStorage::open(&url).expect("opens")).build();
    let store = engine.add_store("BBQ", Some("park"), None).expect("a store").id;
    engine.add_menu(store, "m", 1_000).expect("a menu");
    relay.wait_for_work(Duration::from_millis(10)).expect("listens"); // now listening; drains anything before

    // A command with nothing left for the relay: no wake-up.
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            engine.add_menu(store, "n", 2_000).expect("a menu");
        });
        relay.wait_for_work(Duration::from_millis(600)).expect("waits");
    });
    assert!(started.elapsed() >= Duration::from_millis(550), "woken for nothing: {:?}", started.elapsed());

    // A payment left for the relay (unclaimed): woken at once.
    let storage = PostgresStorage::open(&url).expect("opens");
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            let order = engine.place_order(NewOrder::new(store, "kim", &[ItemPick::new("m", 1)])).expect("placed");
            storage
                .write(&mut |r| {
                    let payment = crate::domain::Payment::request(1, order.order_id, 1_000, None, "k".into(), at(0));
                    r.save_payment(&payment)
                })
                .expect("a payment queued");
        });
        relay.wait_for_work(Duration::from_secs(20)).expect("waits");
    });
    assert!(started.elapsed() < Duration::from_secs(10), "not woken: {:?}", started.elapsed());
    assert_eq!(PaymentStatus::Pending, read(&relay, |r| r.payment(1)).expect("saved").status);
}

/// `tests/engine.rs`'s whole lifecycle and cancellation, on PostgreSQL.
#[test]
fn the_engine_runs_an_order_through_its_life_and_a_cancellation_with_refunds() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    let inbox = Inbox::default();
    let engine = Engine::builder(PostgresStorage::open(&url).expect("opens")).notifier(inbox.clone()).build();
    let store = engine.add_store("BBQ", Some("park"), None).expect("a store").id;
    engine.add_menu(store, "후라이드", 18_000).expect("a menu");
    engine.add_menu(store, "콜라", 2_000).expect("a menu");
    engine.add_rider("lee").expect("a rider");
    assert!(matches!(engine.add_rider("lee"), Err(Error::Invalid(_))), "a rider's name is taken once");
    let items = [ItemPick::new("후라이드", 2), ItemPick::new("콜라", 1)];

    let v = engine.place_order(NewOrder::new(store, "kim", &items).deliver_to("seoul").pay_now(None)).expect("paid");
    assert_eq!((v.status, v.total), (OrderStatus::Paid, 38_000));
    let id = v.order_id;
    assert_eq!(engine.store_inbox(store).expect("an inbox").len(), 1);
    let v = engine.start_cooking(id).expect("cooking");
    let d = v.delivery.expect("a delivery");
    assert_eq!(d.rider.as_deref(), Some("lee"));
    assert_eq!(d.charge.expect("a charge").status, crate::domain::ChargeStatus::Paid);
    engine.finish_cooking(id).expect("cooked");
    engine.start_delivery(id, None).expect("on its way");
    assert_eq!(engine.complete_delivery(id).expect("delivered").status, OrderStatus::Delivered);
    engine.review(id, 4, "good").expect("reviewed");
    assert!(matches!(engine.review(id, 5, "again"), Err(Error::Refused(_))));
    let store_now = engine.stores().expect("stores").remove(0);
    assert_eq!((store_now.review_count, store_now.average_score()), (1, Some(4.0)));
    let types: Vec<String> =
        engine.status(id).expect("a view").timeline.into_iter().map(|t| t.kind.to_string()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentApproved",
            "CookingStarted",
            "DeliveryPrepared",
            "DeliveryChargePaid",
            "FoodCooked",
            "DeliveryStarted",
            "DeliveryCompleted",
            "ReviewRegistered"
        ]
    );
    let sent: Vec<String> = inbox.0.lock().expect("inbox").iter().map(|m| m.event.as_str().to_string()).collect();
    assert_eq!(sent.len(), 7, "{sent:?}");

    // Cancelled while cooking: the payment and the rider's charge go back.
    let id = engine.place_order(NewOrder::new(store, "kim", &items).pay_now(None)).expect("paid").order_id;
    engine.start_cooking(id).expect("cooking");
    let v = engine.cancel(id, "changed my mind").expect("cancelled");
    assert_eq!(v.status, OrderStatus::Cancelled);
    assert_eq!(v.payment.expect("a payment").status, PaymentStatus::Refunded);
    let d = v.delivery.expect("a delivery");
    assert_eq!(d.charge.expect("a charge").status, crate::domain::ChargeStatus::Refunded);

    // The log rebuilds the same views; the invariants hold.
    let before = engine.customer_orders("kim").expect("views");
    assert!(engine.rebuild_projection().expect("rebuilt").events > 0);
    assert_eq!(engine.customer_orders("kim").expect("views"), before);
    assert!(engine.check_invariants().expect("checked").is_empty());
}

/// Many threads, one engine, one database: every order lives its whole life.
#[test]
fn one_engine_serves_threads_on_postgresql() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    let inbox = Inbox::default();
    let engine = Engine::builder(PostgresStorage::open(&url).expect("opens")).notifier(inbox.clone()).build();
    let store = engine.add_store("S", Some("park"), None).expect("a store").id;
    engine.add_menu(store, "m", 1_000).expect("a menu");
    engine.add_rider("lee").expect("a rider");
    let orders: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let engine = &engine;
                scope.spawn(move || {
                    let customer = format!("customer {t}");
                    let mut mine = Vec::new();
                    for _ in 0..3 {
                        let picks = [ItemPick::new("m", 1)];
                        let id = engine
                            .place_order(NewOrder::new(store, &customer, &picks).pay_now(None))
                            .expect("placed")
                            .order_id;
                        engine.start_cooking(id).expect("cooking");
                        engine.finish_cooking(id).expect("cooked");
                        engine.start_delivery(id, None).expect("on its way");
                        assert_eq!(engine.complete_delivery(id).expect("delivered").status, OrderStatus::Delivered);
                        mine.push(id);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("no panic")).collect()
    });
    assert_eq!(orders.len(), 12);
    assert!(engine.check_invariants().expect("checked").is_empty());
    engine.relay().expect("relayed");
    let delivered = inbox.0.lock().expect("inbox").clone();
    let mut ids: Vec<&str> = delivered.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), delivered.len(), "each message once");
}

#[test]
fn of_eight_claims_of_one_key_at_once_exactly_one_is_new_on_postgresql() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    // Eight storages, each with its own pool, as eight server processes.
    let engines: Vec<Engine> =
        (0..8).map(|_| Engine::builder(PostgresStorage::open_with(&url, 1).expect("opens")).build()).collect();
    for round in 0..5 {
        contract_tests::eight_claims_at_once(&format!("key-{round}"), |i| &engines[i]);
    }
    // One engine, its pool of eight connections shared by eight threads.
    let engine = Engine::builder(PostgresStorage::open_with(&url, 8).expect("opens")).build();
    for round in 0..5 {
        contract_tests::eight_claims_at_once(&format!("shared-{round}"), |_| &engine);
    }
}

/// A claim that meets a claim of the same key not yet committed (another
/// process's) waits for it: committed, the key is in flight; rolled
/// back, the key is the waiting claim's.
#[test]
fn a_claim_waits_for_an_uncommitted_claim_of_the_same_key() {
    let _serial = serial();
    let Some((_server, url)) = fresh() else { return };
    let engine = Engine::builder(PostgresStorage::open(&url).expect("opens")).build();
    let mut raw = postgres::Client::connect(&url, NoTls).expect("a raw connection");
    let insert =
        "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, claimed_at) VALUES ($1, $2, 'fp', $3)";
    let claimed_at = crate::adapters::rows::time_text(&at(1));
    for commit in [true, false] {
        let key = format!("key-{commit}");
        let mut held = raw.transaction().expect("begin");
        held.execute(insert, &[&"s", &key, &claimed_at]).expect("an uncommitted claim");
        let (sent, got) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let (engine, key) = (&engine, &key);
            scope.spawn(move || sent.send(engine.claim_request("s", key, "fp")).expect("sent"));
            let waited = got.recv_timeout(Duration::from_millis(300));
            assert!(waited.is_err(), "the claim waits for the other transaction: {waited:?}");
            if commit {
                held.commit().expect("commit");
            } else {
                held.rollback().expect("rollback");
            }
            let claim = got.recv_timeout(Duration::from_secs(10)).expect("an answer").expect("claimed");
            let expected =
                if commit { crate::RequestClaim::InFlight { since: at(1) } } else { crate::RequestClaim::New };
            assert_eq!(claim, expected, "committed first: {commit}");
        });
    }
}

/// A notifier that keeps what it is sent.
#[derive(Clone)]
struct Inbox(std::sync::Arc<Mutex<Vec<crate::ports::Message>>>, ChannelName);

impl Default for Inbox {
    fn default() -> Self {
        Inbox(std::sync::Arc::default(), ChannelName::new("test").expect("a channel name"))
    }
}

impl crate::ports::Notifier for Inbox {
    fn channel(&self) -> &ChannelName {
        &self.1
    }
    fn send(&self, m: &crate::ports::Message) -> std::result::Result<(), String> {
        self.0.lock().map_err(|e| e.to_string())?.push(m.clone());
        Ok(())
    }
}

// ───────────────────────────── db copy ─────────────────────────────

mod copying {
    use std::path::Path;

    use super::*;
    use crate::adapters::sqlite::{Contents, SqliteStorage};
    use crate::app::copy::fixture::{busy_database, Down};
    use crate::app::copy::{copy, verify};

    fn sqlite(path: &Path) -> SqliteStorage {
        SqliteStorage::open(path).expect("the SQLite database opens")
    }

    /// A busy SQLite database (every table holds rows) in a folder of its
    /// own, and a fresh PostgreSQL database; `None` without a server.
    fn busy_and_fresh() -> Option<(tempfile::TempDir, std::path::PathBuf, &'static PgServer, String)> {
        let (server, url) = fresh()?;
        let dir = tempfile::tempdir().expect("a folder");
        let source = busy_database(dir.path());
        Some((dir, source, server, url))
    }

    /// [`busy_and_fresh`], copied into PostgreSQL: the URL.
    fn copied() -> Option<(tempfile::TempDir, String)> {
        let (dir, source, _server, url) = busy_and_fresh()?;
        copy(&sqlite(&source), &PostgresStorage::open(&url).expect("opens")).expect("copied");
        Some((dir, url))
    }

    fn contents(path: &Path) -> Contents {
        SqliteStorage::inspect(path).expect("inspect").expect("a database")
    }

    fn all_events(engine: &Engine) -> Vec<StoredEvent> {
        let mut events = engine.events(0, None, 100_000).expect("the log");
        events.sort_by_key(|e| e.seq);
        events
    }

    /// Every view of the database, by order.
    fn views(engine: &Engine) -> Vec<crate::domain::view::OrderView> {
        let mut views = Vec::new();
        for customer in ["kim", "choi", "park", "lim"] {
            views.extend(engine.customer_orders(customer).expect("views"));
        }
        views
    }

    #[test]
    fn a_busy_sqlite_database_goes_to_postgresql_and_back_verified_and_unchanged() {
        let _serial = serial();
        let Some((dir, source, _server, url)) = busy_and_fresh() else { return };
        let before = contents(&source);
        let pg = PostgresStorage::open(&url).expect("opens");

        let there = copy(&sqlite(&source), &pg).expect("the copy into PostgreSQL verifies");
        assert_eq!(there.tables.len(), before.rows.len(), "every table: {there:?}");
        for table in &there.tables {
            assert!(table.rows > 0, "every table holds rows: {there:?}");
            assert_eq!(before.rows_in(&table.name), table.rows, "{}", table.name);
        }
        assert_eq!(there.events, before.rows_in("events"));
        assert_eq!(there.views, 5);
        assert!(there.carried_violations.is_empty(), "{there:?}");
        assert_eq!(verify(&sqlite(&source), &pg).expect("verifies after the fact"), there);

        // The application reads the same from both.
        let pager = Down(ChannelName::new("pager").expect("a channel name"));
        let (old, new) = (crate::app::copy::fixture::engine(&source), Engine::builder(pg).notifier(pager).build());
        assert_eq!(all_events(&old), all_events(&new));
        assert_eq!(views(&old), views(&new));
        assert_eq!(old.breakers().expect("breakers"), new.breakers().expect("breakers"));
        assert_eq!(old.riders().expect("riders"), new.riders().expect("riders"));
        assert!(new.check_invariants().expect("checked").is_empty());

        // And back, into a new SQLite file: the same rows as the first.
        let back = dir.path().join("back.db");
        let pg = PostgresStorage::open(&url).expect("opens");
        let home = copy(&pg, &sqlite(&back)).expect("the copy back verifies");
        assert_eq!(home.tables, there.tables);
        assert_eq!((home.events, home.views), (there.events, there.views));
        assert_eq!(contents(&back), before, "the same rows in every table");
        assert!(verify(&sqlite(&source), &sqlite(&back)).is_ok());
        let again = crate::app::copy::fixture::engine(&back);
        assert_eq!(all_events(&again), all_events(&old));
        assert_eq!(views(&again), views(&old));
    }

    #[test]
    fn a_copy_into_postgresql_goes_on_after_the_copied_ids_and_numbers() {
        let _serial = serial();
        let Some((_dir, url)) = copied() else { return };

        let engine = Engine::builder(PostgresStorage::open(&url).expect("opens")).build();
        let last = all_events(&engine).last().map(|e| e.seq).expect("events");
        let items = [ItemPick::new("콜라", 1)];
        let placed = engine.place_order(NewOrder::new(1, "lim", &items).pay_now(None)).expect("an order");
        assert_eq!(placed.order_id, 6, "after the 5 copied orders");
        assert!(placed.timeline.iter().all(|t| t.seq > last), "{last}: {:?}", placed.timeline);
        assert_eq!(placed.payment.expect("a payment").id, 5, "after the 4 copied payments");
        assert_eq!(engine.add_rider("new").expect("a rider").id, 3);
        assert_eq!(engine.add_store("new", Some("o"), None).expect("a store").id, 2);
        assert!(engine.check_invariants().expect("checked").is_empty());
    }

    #[test]
    fn a_postgresql_target_that_holds_rows_is_refused_and_left_as_it_was() {
        let _serial = serial();
        let Some((_dir, source, server, url)) = busy_and_fresh() else { return };
        let used = Engine::builder(PostgresStorage::open(&url).expect("opens")).build();
        used.add_rider("someone").expect("a rider");
        let snapshot = || {
            server.psql(
                &url,
                "SELECT (SELECT count(*) FROM riders), (SELECT count(*) FROM events), \
                 (SELECT last_value FROM riders_id_seq), (SELECT last_value FROM events_seq_seq), \
                 (SELECT string_agg(name, ',') FROM riders)",
            )
        };
        let before = snapshot();
        let e = copy(&sqlite(&source), &PostgresStorage::open(&url).expect("opens")).expect_err("refused");
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains("must be empty") && e.to_string().contains("1 in riders"), "{e}");
        assert_eq!(snapshot(), before, "untouched");
        assert_eq!(before, "1|1|1|1|someone");
    }

    /// A PostgreSQL log read in commit order that is not number order (an
    /// older transaction appended the later number) copies and verifies:
    /// the logs are compared number by number.
    #[test]
    fn a_postgresql_log_out_of_number_order_copies_and_verifies() {
        let _serial = serial();
        let Some((dir, url)) = copied() else { return };

        let engine = Engine::builder(PostgresStorage::open(&url).expect("opens")).build();
        let mut raw = postgres::Client::connect(&url, NoTls).expect("a raw connection");
        let mut older = raw.transaction().expect("begin");
        older.query_one("SELECT pg_current_xact_id()::text", &[]).expect("a transaction id");
        engine.add_rider("younger").expect("a rider, committed first");
        let late = raw_append(&mut older, "older-event", &Event::StoreOpened { store_id: 1 });
        older.commit().expect("commit");
        let read = engine.events(0, None, 100_000).expect("the log");
        let (at_late, at_younger) = (
            read.iter().position(|e| e.seq == late).expect("the late event"),
            read.iter().position(|e| e.seq == late - 1).expect("the younger event"),
        );
        assert!(at_late < at_younger, "commit order is not number order here");

        let back = dir.path().join("back.db");
        let pg = PostgresStorage::open(&url).expect("opens");
        let report = copy(&pg, &sqlite(&back)).expect("the copy verifies");
        assert_eq!(report.events, read.len() as u64);
        assert!(verify(&pg, &sqlite(&back)).is_ok());
        let copied = crate::app::copy::fixture::engine(&back);
        assert_eq!(all_events(&copied), all_events(&engine));
    }
}

/// A unit of work waits for a busy pool up to `POOL_TIMEOUT`, for a
/// server that refused the last connection and holds none of the pool's
/// only `DOWN_WAIT`.
#[test]
fn a_refused_connection_shortens_the_wait_for_one() {
    use super::{keep_waiting, DOWN_WAIT, POOL_TIMEOUT, RECONNECT_PAUSE};
    assert!(keep_waiting(Duration::ZERO, false, 0) && keep_waiting(Duration::ZERO, true, 0));
    assert!(keep_waiting(DOWN_WAIT, false, 8), "a busy pool is waited for longer");
    assert!(!keep_waiting(DOWN_WAIT, true, 0), "a refusing server is not");
    assert!(keep_waiting(DOWN_WAIT, true, 2), "nor is a pool whose connections the server took, then refused more");
    assert!(!keep_waiting(POOL_TIMEOUT, false, 8) && !keep_waiting(POOL_TIMEOUT, true, 2));
    assert!(DOWN_WAIT > RECONNECT_PAUSE, "the pool tries again before a waiting unit of work gives up");
}

/// A pool larger than the server lets its user connect (a role's
/// `CONNECTION LIMIT` of 2, a pool of 4) is a busy pool, not a server that
/// is down: four units of work at once, each holding its connection a
/// while, all commit, the last two on the first two's connections.
#[test]
fn a_pool_larger_than_the_server_allows_waits_for_its_own_connections() {
    let set_up = |url: &str| drop(PostgresStorage::open(url).expect("the owner sets the database up"));
    let Some(as_role) = as_a_user_granted_nothing("limited", set_up) else { return };
    let (server, database) = (pg::server().expect("the test server"), database_name(&as_role).to_string());
    let role_name = as_role.split("://").nth(1).and_then(|r| r.split('@').next()).expect("the role").to_string();
    server.psql(server.url(), &format!("ALTER ROLE \"{role_name}\" CONNECTION LIMIT 2"));
    let owner_url = as_role.replacen(&format!("postgres://{role_name}@"), "postgres://postgres@", 1);
    server.psql(
        &owner_url,
        &format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role_name}\"; \
             GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO \"{role_name}\""
        ),
    );
    let s = PostgresStorage::open_with(&as_role, 4).expect("open as the limited role");
    let start = Barrier::new(4);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    s.write(&mut |repo| {
                        std::thread::sleep(Duration::from_millis(2_500));
                        repo.next_id(crate::ports::storage::Table::Store).map(drop)
                    })
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("a unit of work's thread")).collect()
    });
    for result in &results {
        assert!(result.is_ok(), "every unit of work commits ({database}): {result:?}");
    }
}

/// A server that goes away and comes back, as the storage sees it: a TCP
/// forwarder on 127.0.0.1 in front of the test server, closed (listener
/// and every connection) and opened again on the same port. While it is
/// closed a unit of work fails as unreachable with the refusal's own
/// words (not a pool's time-out); once it is open again the same storage
/// writes, without being opened anew.
#[test]
fn a_server_that_goes_away_and_comes_back_is_unavailable_then_used_again() {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Forwards 127.0.0.1:`port` to `target` until `closed` is set.
    fn forward(port: u16, target: std::net::SocketAddr, closed: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the forwarder's port");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        std::thread::spawn(move || {
            let mut open: Vec<TcpStream> = Vec::new();
            while !closed.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).expect("a blocking socket");
                let server = TcpStream::connect(target).expect("the test server");
                for (mut from, mut to) in [
                    (client.try_clone().expect("a clone"), server.try_clone().expect("a clone")),
                    (server.try_clone().expect("a clone"), client.try_clone().expect("a clone")),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                open.extend([client, server]);
            }
            for socket in open {
                let _ = socket.shutdown(Shutdown::Both);
            }
        })
    }

    let _serial = serial();
    let Some((server, url)) = fresh() else { return };
    let config: postgres::Config = url.parse().expect("the test database's URL");
    let (Some(postgres::config::Host::Tcp(host)), Some(server_port)) =
        (config.get_hosts().first(), config.get_ports().first())
    else {
        return eprintln!("skipped: {} is not a TCP server", server.url());
    };
    let Ok(target) = format!("{host}:{server_port}").parse::<std::net::SocketAddr>() else {
        return eprintln!("skipped: {host} is not an address the forwarder can reach without a lookup");
    };
    let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
    let password = config.get_password().map(String::from_utf8_lossy).unwrap_or_default();
    let via = format!(
        "host=127.0.0.1 port={port} user={} dbname={} password='{password}'",
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("postgres")
    );

    let closed = Arc::new(AtomicBool::new(false));
    let forwarder = forward(port, target, closed.clone());
    let s = PostgresStorage::open(&via).expect("open through the forwarder");
    assert_eq!(write(&s, |repo| repo.next_id(crate::ports::storage::Table::Store)), 1);

    closed.store(true, Ordering::SeqCst);
    forwarder.join().expect("the forwarder stops");
    let Err(Error::Storage(e)) = s.write(&mut |repo| repo.next_id(crate::ports::storage::Table::Store).map(drop))
    else {
        panic!("a storage error while the server is away")
    };
    let text = e.to_string();
    assert_eq!(e.problem(), crate::StorageProblem::Unreachable, "{text}");
    assert!(text.contains("refused") && !text.contains("timed out"), "the refusal, not a time-out: {text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");

    let closed = Arc::new(AtomicBool::new(false));
    let forwarder = forward(port, target, closed.clone());
    // The pool finds the server again by itself; a unit of work that
    // comes before its next try fails as above, so give it a few.
    let wrote =
        (0..10).find_map(|_| s.write(&mut |repo| repo.next_id(crate::ports::storage::Table::Store).map(drop)).ok());
    assert!(wrote.is_some(), "the same storage writes once the server is back");
    drop(s);
    closed.store(true, Ordering::SeqCst);
    forwarder.join().expect("the forwarder stops");
}

/// A user who may log in but was granted nothing on a database another
/// user set up is told what to grant, as well as what it was refused.
#[test]
fn a_user_without_rights_on_the_tables_is_told_what_to_grant() {
    let set_up = |url: &str| drop(PostgresStorage::open(url).expect("the owner sets the database up"));
    let Some(as_role) = as_a_user_granted_nothing("norights", set_up) else { return };
    let text = match PostgresStorage::open(&as_role) {
        Err(Error::Storage(e)) => e.to_string(),
        Err(e) => panic!("a storage error, not {e:?}"),
        Ok(s) => match s.write(&mut |repo| repo.next_id(crate::ports::storage::Table::Store).map(drop)) {
            Err(Error::Storage(e)) => e.to_string(),
            other => panic!("a storage error, not {other:?}"),
        },
    };
    assert!(text.contains("permission denied for table"), "{text}");
    assert!(text.contains("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public"), "{text}");
}
