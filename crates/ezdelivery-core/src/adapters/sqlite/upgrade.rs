//! The steps of a schema migration that SQL alone cannot take, run in the
//! migration's transaction right after the script of their version.
//!
//! **Version 4: the log carries every refund requested.** Before it, asking
//! for a payment's refund or a delivery charge's return wrote no event: the
//! mypage projector inferred it (an approval for an order no longer pending,
//! a cancellation or rejection after approval, a charge paid for a
//! cancelled delivery). Now the domain emits
//! [`Event::PaymentRefundRequested`] and
//! [`Event::DeliveryChargeRefundRequested`], and the projector only copies
//! facts, so an old log must gain the events it lacks or it would rebuild
//! to other views.
//!
//! Which are lacking is read from the records, not inferred again: a
//! payment or charge that waits for its refund (`refund_pending`) while the
//! last event naming it is still its taking (`PaymentApproved`,
//! `DeliveryChargePaid`) had its refund asked for without an event. Any
//! later move of it (refunded, given up, requeued) wrote one, so there is
//! nothing to add for those: the projector's old inference was overridden
//! by that event anyway.
//!
//! The missing events are appended, not inserted where they belonged: the
//! sequence numbers of the log are public (`events --after`, the
//! projector's checkpoint, a view's timeline) and must not move. Appended,
//! each still folds to the same status, since nothing later names its
//! record; it is dated with its order's last event, so the view's
//! `updated_at` stays as it was. Its view gains it in the same transaction.

use rusqlite::{params, Transaction};

use crate::domain::{ChargeStatus, Event, EventType, OrderId, PaymentStatus, Won};
use crate::ports::Repo;
use crate::Result;

/// The schema version whose migration appends the refund requests.
const REFUNDS_REQUESTED: usize = 4;

/// Runs the Rust step of schema version `version`, if it has one.
pub(super) fn after(version: usize, tx: &Transaction<'_>) -> Result<()> {
    if version == REFUNDS_REQUESTED {
        for kind in &REFUNDABLE {
            append_refunds_requested(tx, kind)?;
        }
    }
    Ok(())
}

/// A kind of record whose refund requests older logs lack: its table, the
/// field of its events that names it, its status while its refund is
/// awaited, and the event of its taking.
type Refundable = (&'static str, &'static str, &'static str, EventType);

/// Payments and delivery charges.
const REFUNDABLE: [Refundable; 2] = [
    ("payments", "payment_id", PaymentStatus::RefundPending.as_str(), EventType::PaymentApproved),
    ("charges", "charge_id", ChargeStatus::RefundPending.as_str(), EventType::DeliveryChargePaid),
];

/// The event that says the refund of what `taken` took was requested.
fn refund_requested(taken: EventType, order_id: OrderId, id: i64, amount: Won) -> Option<Event> {
    match taken {
        EventType::PaymentApproved => Some(Event::PaymentRefundRequested { order_id, payment_id: id, amount }),
        EventType::DeliveryChargePaid => Some(Event::DeliveryChargeRefundRequested { order_id, charge_id: id, amount }),
        _ => None,
    }
}

/// Appends the request of every refund of a kind of record that its log lacks.
fn append_refunds_requested(tx: &Transaction<'_>, &(table, field, refund_pending, taken): &Refundable) -> Result<()> {
    // The table and field names are this file's constants, never input.
    let lacking = format!(
        "SELECT r.order_id, r.id, r.amount,
                (SELECT e.at FROM events e WHERE e.order_id = r.order_id ORDER BY e.seq DESC LIMIT 1)
         FROM {table} r
         WHERE r.status = ?1
           AND (SELECT e.type FROM events e
                WHERE e.order_id = r.order_id AND json_extract(e.data, '$.{field}') = r.id
                ORDER BY e.seq DESC LIMIT 1) = ?2
         ORDER BY r.order_id, r.id",
    );
    let mut found = tx.prepare(&lacking)?;
    let rows = found.query_map(params![refund_pending, taken.as_str()], |row| {
        Ok((row.get::<_, OrderId>(0)?, row.get::<_, i64>(1)?, row.get::<_, Won>(2)?, row.get::<_, String>(3)?))
    })?;
    let lacking: Vec<_> = rows.collect::<std::result::Result<_, _>>()?;
    let mut cache = super::cache::RowCache::default();
    let mut repo = super::repo::SqliteRepo::new(tx, &mut cache);
    for (order, id, amount, at) in lacking {
        let Some(event) = refund_requested(taken, order, id, amount) else { continue };
        let at = super::repo::parse_time("events", "at", &at)?;
        // Random, not in time order as the engine's are: unique is what counts.
        let event_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let seq = repo.append_event(&event_id, at, &event)?;
        // Its view gains it now, as a unit of work's own events are
        // projected in its transaction: no checkpoint is left behind.
        if let Some(mut view) = repo.view(order)? {
            view.apply(seq, at, &event);
            repo.save_view(&view)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use rusqlite::Connection;

    use super::super::{SqliteStorage, Synchronous};
    use crate::domain::view::OrderView;
    use crate::domain::{ChargeStatus, EventType, OrderStatus, PaymentStatus};
    use crate::ports::{ChargeGateway, ChargeRequest, GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest};
    use crate::{Engine, ItemPick, NewOrder};

    /// Takes money at once; gives it back only while `refunds` is up, and
    /// takes it only while `takes` is up (else its answer is unreadable).
    #[derive(Clone)]
    struct Gateway {
        takes: Arc<AtomicBool>,
        refunds: Arc<AtomicBool>,
    }

    impl Gateway {
        fn answer(up: &AtomicBool, gateway_ref: &str) -> GatewayOutcome {
            if up.load(Ordering::SeqCst) {
                GatewayOutcome::Approved { gateway_ref: gateway_ref.into() }
            } else {
                GatewayOutcome::Unavailable { reason: "scripted outage".into() }
            }
        }
    }

    impl PaymentGateway for Gateway {
        fn name(&self) -> &str {
            "test"
        }

        fn approve(&self, r: &PaymentRequest) -> GatewayOutcome {
            Gateway::answer(&self.takes, &format!("p-{}", r.idempotency_key))
        }
        fn refund(&self, _: &RefundRequest) -> GatewayOutcome {
            Gateway::answer(&self.refunds, "r")
        }
    }

    impl ChargeGateway for Gateway {
        fn name(&self) -> &str {
            "test"
        }

        fn pay(&self, r: &ChargeRequest) -> GatewayOutcome {
            Gateway::answer(&self.takes, &format!("c-{}", r.idempotency_key))
        }
        fn refund(&self, _: &RefundRequest) -> GatewayOutcome {
            Gateway::answer(&self.refunds, "cr")
        }
    }

    fn engine(path: &std::path::Path, gateway: &Gateway) -> Engine {
        let storage = SqliteStorage::open_with(path, Synchronous::Normal).expect("opened");
        Engine::builder(storage).payment(gateway.clone()).charge(gateway.clone()).build()
    }

    /// The view without the timeline entries of the events older logs lack.
    fn as_before_version_4(view: &OrderView) -> OrderView {
        let new = [EventType::PaymentRefundRequested, EventType::DeliveryChargeRefundRequested];
        let timeline = view.timeline.iter().filter(|t| !new.contains(&t.kind)).cloned().collect();
        OrderView { timeline, ..view.clone() }
    }

    /// Gives the tables versions 8 to 13 changed their form of version 7 (the
    /// shipped DDL of version 1, repeated on purpose: this makes an old
    /// file), keeping every row but the gateways version 11 recorded; with
    /// `foreign_keys` off (the bundled SQLite turns it on by default), so
    /// dropping the new tables cascades nothing.
    fn to_version_7(conn: &Connection) {
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             ALTER TABLE payments DROP COLUMN gateway;
             ALTER TABLE charges DROP COLUMN gateway;
             CREATE TABLE messages_old (
                 id        TEXT    NOT NULL PRIMARY KEY,
                 order_id  INTEGER NOT NULL,
                 event     TEXT    NOT NULL,
                 status    TEXT    NOT NULL,
                 recipient TEXT    NOT NULL,
                 text      TEXT    NOT NULL,
                 at        TEXT    NOT NULL
             );
             INSERT INTO messages_old SELECT id, order_id, event, status, recipient, text, at FROM messages;
             CREATE TABLE message_deliveries_old (
                 message_id TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                 channel    TEXT    NOT NULL,
                 state      TEXT    NOT NULL,
                 tries      INTEGER NOT NULL,
                 next_at    TEXT    NOT NULL,
                 last_error TEXT,
                 PRIMARY KEY (message_id, channel)
             );
             INSERT INTO message_deliveries_old
                 SELECT m.id, d.channel, d.state, d.tries, d.next_at, d.last_error
                 FROM message_deliveries d JOIN messages m ON m.key = d.message_key;
             DROP TABLE message_deliveries;
             DROP TABLE messages;
             ALTER TABLE messages_old RENAME TO messages;
             ALTER TABLE message_deliveries_old RENAME TO message_deliveries;
             CREATE INDEX message_deliveries_due ON message_deliveries (state, next_at);
             CREATE TABLE order_items_old (
                 order_id   INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                 line       INTEGER NOT NULL,
                 menu_id    INTEGER NOT NULL,
                 name       TEXT    NOT NULL,
                 unit_price INTEGER NOT NULL,
                 qty        INTEGER NOT NULL,
                 PRIMARY KEY (order_id, line)
             );
             INSERT INTO order_items_old SELECT * FROM order_items;
             DROP TABLE order_items;
             ALTER TABLE order_items_old RENAME TO order_items;
             CREATE TABLE kitchen_tickets (
                 order_id   INTEGER NOT NULL PRIMARY KEY REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
                 store_id   INTEGER NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
                 status     TEXT    NOT NULL,
                 updated_at TEXT    NOT NULL
             );
             INSERT INTO kitchen_tickets
                 SELECT id, store_id, kitchen_status, kitchen_updated_at FROM orders WHERE kitchen_status IS NOT NULL;
             CREATE TABLE deliveries (
                 order_id   INTEGER NOT NULL PRIMARY KEY REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
                 rider_id   INTEGER REFERENCES riders (id) DEFERRABLE INITIALLY DEFERRED,
                 charge     INTEGER NOT NULL,
                 status     TEXT    NOT NULL,
                 updated_at TEXT    NOT NULL
             );
             INSERT INTO deliveries
                 SELECT id, delivery_rider_id, delivery_charge, delivery_status, delivery_updated_at FROM orders
                 WHERE delivery_status IS NOT NULL;
             CREATE INDEX deliveries_rider_status ON deliveries (rider_id, status);
             CREATE TABLE orders_old (
                 id         INTEGER NOT NULL PRIMARY KEY,
                 store_id   INTEGER NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
                 customer   TEXT    NOT NULL,
                 address    TEXT    NOT NULL,
                 total      INTEGER NOT NULL,
                 status     TEXT    NOT NULL,
                 reviewed   INTEGER NOT NULL,
                 created_at TEXT    NOT NULL,
                 updated_at TEXT    NOT NULL
             );
             INSERT INTO orders_old
                 SELECT id, store_id, customer, address, total, status, reviewed, created_at, updated_at FROM orders;
             DROP TABLE orders;
             ALTER TABLE orders_old RENAME TO orders;
             CREATE INDEX orders_store_status ON orders (store_id, status);
             CREATE UNIQUE INDEX events_id ON events (id);
             CREATE INDEX events_order ON events (order_id, seq);
             PRAGMA foreign_keys = ON;",
        )
        .expect("version 7's tables");
    }

    /// The `CREATE` statement of `name`.
    fn sql_of(conn: &Connection, name: &str) -> String {
        conn.query_row("SELECT sql FROM sqlite_master WHERE name = ?1", [name], |r| r.get(0)).expect(name)
    }

    /// A file at version 7, full of rows (`app::copy::fixture`), opened by
    /// this build: every row of every table is kept, the outbox and the
    /// items are keyed in their own b-tree, the inbox's index holds only
    /// the inbox, the event log has no index but its key (version 9), each
    /// message is keyed by its event's number and its recipient (version
    /// 10), kitchen tickets and deliveries are in their orders' rows
    /// (version 12), the inbox's and the riders' indexes are on flags set
    /// from the statuses (version 13), every foreign key still holds, each order's events are
    /// read as before, and the engine goes on from where the file was.
    #[test]
    fn a_version_7_file_gets_the_tables_of_versions_8_to_13_keeping_every_row() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = crate::app::copy::fixture::busy_database(dir.path());
        // Orders in the store's inbox, which the new partial index must hold.
        let (store, inbox) = {
            let e = crate::app::copy::fixture::engine(&path);
            let store = e.stores().expect("stores")[0].id;
            let items = [ItemPick::new("후라이드", 1)];
            let paid = e.place_order(NewOrder::new(store, "lim", &items).pay_now(None)).expect("placed").order_id;
            let cooking = e.place_order(NewOrder::new(store, "lim", &items).pay_now(None)).expect("placed").order_id;
            e.start_cooking(cooking).expect("cooking");
            let inbox: Vec<_> = e.store_inbox(store).expect("the inbox").iter().map(|v| v.order_id).collect();
            assert_eq!(inbox, [paid, cooking]);
            (store, inbox)
        };
        let before = {
            let conn = Connection::open(&path).expect("opened");
            let (keyed, messages) = keyed_by_their_events(&conn);
            assert_eq!(keyed, messages, "the engine keys each message by its event's number and its recipient");
            to_version_7(&conn);
            conn.pragma_update(None, "user_version", 7).expect("version 7");
            assert!(!sql_of(&conn, "messages").contains("WITHOUT ROWID"));
            dump(&conn)
        };
        let deliveries = before.iter().find(|(t, _)| t == "message_deliveries").map(|(_, r)| r.len());
        assert!(deliveries > Some(0), "the fixture queues message deliveries");

        let e = crate::app::copy::fixture::engine(&path);
        let conn = Connection::open(&path).expect("opened");
        assert_eq!(dump_in_version_7_columns(&conn), before, "every row of every table kept");
        for table in ["message_deliveries", "order_items"] {
            assert!(sql_of(&conn, table).ends_with("WITHOUT ROWID"), "{table}: {}", sql_of(&conn, table));
        }
        assert!(sql_of(&conn, "messages").contains("key       INTEGER NOT NULL PRIMARY KEY"));
        let (keyed, messages) = keyed_by_their_events(&conn);
        assert!(messages > 0, "the fixture queues messages");
        assert_eq!(keyed, messages, "every message keyed by its event's number and its recipient");
        assert!(sql_of(&conn, "message_deliveries").contains("REFERENCES \"messages\""));
        assert!(sql_of(&conn, "orders_inbox").ends_with("WHERE in_inbox = 1"));
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN \
                 ('orders', 'events', 'messages', 'message_deliveries', 'order_items') ORDER BY name",
            )
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .expect("indexes");
        assert_eq!(indexes, ["message_deliveries_due", "orders_inbox", "orders_rider"], "no other index");
        assert!(sql_of(&conn, "orders_rider").ends_with("WHERE rider_busy = 1"));
        let misfiled = |conn: &Connection| -> i64 {
            conn.query_row(
                concat!(
                    "SELECT count(*) FROM orders WHERE in_inbox <> (status IN ",
                    crate::adapters::rows::inbox_statuses!(),
                    ") OR rider_busy <> (delivery_rider_id IS NOT NULL AND delivery_status IN ",
                    crate::adapters::rows::busy_statuses!(),
                    ")"
                ),
                [],
                |r| r.get(0),
            )
            .expect("counted")
        };
        assert_eq!(misfiled(&conn), 0, "in_inbox and rider_busy are set from each order's statuses (version 13)");
        for gone in ["kitchen_tickets", "deliveries"] {
            let left: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master WHERE tbl_name = ?1", [gone], |r| r.get(0))
                .expect("tables");
            assert_eq!(left, 0, "{gone} is kept in the orders' rows (version 12)");
        }
        let rebuilt: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE '%!_v%' ESCAPE '!'", [], |r| r.get(0))
            .expect("tables");
        assert_eq!(rebuilt, 0, "the rebuild's tables are renamed");
        let broken: i64 =
            conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).expect("checked");
        assert_eq!(broken, 0, "every foreign key holds");

        let kept: Vec<_> = e.store_inbox(store).expect("the inbox").iter().map(|v| v.order_id).collect();
        assert_eq!(kept, inbox, "the inbox's index holds the orders that were in the inbox");
        let paid = e
            .place_order(NewOrder::new(store, "kim", &[ItemPick::new("후라이드", 1)]).pay_now(None))
            .expect("placed")
            .order_id;
        assert!(
            e.store_inbox(store).expect("the inbox").iter().any(|o| o.order_id == paid),
            "a new order is in the inbox"
        );
        assert_eq!(e.status(paid).expect("a view").items.len(), 1);
        // The flags follow the statuses as the order goes on.
        e.start_cooking(paid).expect("cooking");
        e.finish_cooking(paid).expect("cooked");
        e.start_delivery(paid, None).expect("on its way");
        assert_eq!(misfiled(&conn), 0, "on its way");
        e.complete_delivery(paid).expect("delivered");
        assert_eq!(misfiled(&conn), 0, "delivered");
        assert!(e.store_inbox(store).expect("the inbox").iter().all(|o| o.order_id != paid), "delivered: out");

        // One order's events, read through its view, are what the log holds
        // of that order: for every order of the busy file, from the start
        // and after its second event, and at most two.
        let log = e.events(0, None, 100_000).expect("the log");
        let orders: std::collections::BTreeSet<_> = log.iter().filter_map(|s| s.event.order_id()).collect();
        assert!(orders.len() > 5, "a busy file: {} orders", orders.len());
        for order in orders {
            let of: Vec<_> = log.iter().filter(|s| s.event.order_id() == Some(order)).cloned().collect();
            assert_eq!(e.events(0, Some(order), 1_000).expect("its events"), of, "order {order}");
            let after = of.get(1).map_or(0, |s| s.seq);
            let rest: Vec<_> = of.iter().filter(|s| s.seq > after).take(2).cloned().collect();
            assert_eq!(e.events(after, Some(order), 2).expect("its events"), rest, "order {order} after {after}");
        }
    }

    /// Gives the event log back its form up to version 6 (`AUTOINCREMENT`,
    /// the unique id as an inline constraint), keeping every row.
    fn to_version_6_log(conn: &Connection) {
        conn.execute_batch(
            "CREATE TABLE events_old (
                 seq      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
                 id       TEXT    NOT NULL UNIQUE,
                 type     TEXT    NOT NULL,
                 order_id INTEGER,
                 at       TEXT    NOT NULL,
                 data     TEXT    NOT NULL
             );
             INSERT INTO events_old SELECT seq, id, type, order_id, at, data FROM events ORDER BY seq;
             DROP TABLE events;
             ALTER TABLE events_old RENAME TO events;
             CREATE INDEX events_order ON events (order_id, seq);",
        )
        .expect("version 6's event log");
    }

    /// Every row of every table of ours, as text, by table then by its
    /// first two columns.
    fn dump(conn: &Connection) -> Vec<(String, Vec<String>)> {
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name")
            .expect("tables")
            .query_map([], |r| r.get(0))
            .expect("tables")
            .collect::<rusqlite::Result<_>>()
            .expect("tables");
        tables
            .into_iter()
            .map(|t| {
                // Every column of every row, in a stable order, whatever the table's key.
                let rows = rows_of(conn, &format!("SELECT * FROM {t} ORDER BY 1, 2"));
                (t, rows)
            })
            .collect()
    }

    /// Every row `select` reads, each as its values joined by `|`.
    fn rows_of(conn: &Connection, select: &str) -> Vec<String> {
        let mut stmt = conn.prepare(select).expect("rows");
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            let values: Vec<String> =
                (0..n).map(|i| r.get_ref(i).map(|v| format!("{v:?}"))).collect::<rusqlite::Result<_>>()?;
            Ok(values.join("|"))
        })
        .expect("rows")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
    }

    /// How many messages have the key [`Message::key_of`](crate::ports::outbox::Message::key_of)
    /// gives their event's number and their recipient, and how many there are.
    fn keyed_by_their_events(conn: &Connection) -> (i64, i64) {
        let keyed = "SELECT count(*) FROM messages m JOIN events e ON e.id = substr(m.id, 1, instr(m.id, ':') - 1) \
             WHERE m.key = e.seq * 4 + CASE substr(m.id, instr(m.id, ':') + 1) \
             WHEN 'customer' THEN 0 WHEN 'owner' THEN 1 WHEN 'rider' THEN 2 END";
        conn.query_row(&format!("SELECT ({keyed}), (SELECT count(*) FROM messages)"), [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("keys")
    }

    /// [`dump`], with the outbox in the columns it had up to version 9 (the
    /// message's key left out, each delivery naming its message by id),
    /// payments and charges in those they had up to version 10 (no
    /// gateway; checked to be NULL in every row), and orders, kitchen
    /// tickets and deliveries in the tables they had up to version 11.
    fn dump_in_version_7_columns(conn: &Connection) -> Vec<(String, Vec<String>)> {
        for table in ["payments", "charges"] {
            let named = rows_of(conn, &format!("SELECT id FROM {table} WHERE gateway IS NOT NULL"));
            assert_eq!(named, Vec::<String>::new(), "rows from before version 11 name no gateway");
        }
        let as_before = [
            (
                "payments",
                "SELECT id, order_id, status, amount, card, gateway_ref, idempotency_key, tries, next_at, last_error, \
                 created_at, updated_at, maybe_processed, claim_token, claimed_until, unsettled FROM payments",
            ),
            (
                "charges",
                "SELECT id, order_id, rider_id, status, amount, gateway_ref, idempotency_key, tries, next_at, \
                 last_error, created_at, updated_at, maybe_processed, claim_token, claimed_until, unsettled FROM charges",
            ),
            ("orders", "SELECT id, store_id, customer, address, total, status, reviewed, created_at, updated_at FROM orders"),
            (
                "kitchen_tickets",
                "SELECT id, store_id, kitchen_status, kitchen_updated_at FROM orders WHERE kitchen_status IS NOT NULL",
            ),
            (
                "deliveries",
                "SELECT id, delivery_rider_id, delivery_charge, delivery_status, delivery_updated_at FROM orders \
                 WHERE delivery_status IS NOT NULL",
            ),
            ("messages", "SELECT id, order_id, event, status, recipient, text, at FROM messages"),
            (
                "message_deliveries",
                "SELECT m.id, d.channel, d.state, d.tries, d.next_at, d.last_error \
                 FROM message_deliveries d JOIN messages m ON m.key = d.message_key",
            ),
        ];
        let mut tables = dump(conn);
        for (table, select) in as_before {
            let rows = rows_of(conn, &format!("{select} ORDER BY 1, 2"));
            match tables.iter_mut().find(|(t, _)| t == table) {
                Some((_, kept)) => *kept = rows,
                None => tables.push((table.to_string(), rows)),
            }
        }
        tables.sort();
        tables
    }

    #[test]
    fn a_version_6_log_is_rebuilt_without_autoincrement_keeping_every_row() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("v6.db");
        let gateway = Gateway { takes: Arc::new(AtomicBool::new(true)), refunds: Arc::new(AtomicBool::new(true)) };
        let e = engine(&path, &gateway);
        let store = e.add_store("BBQ", Some("park"), None).expect("store").id;
        e.add_menu(store, "후라이드", 18_000).expect("menu");
        e.add_rider("lee").expect("rider");
        let items = [ItemPick::new("후라이드", 2)];
        let mut ids = Vec::new();
        for _ in 0..3 {
            let id = e.place_order(NewOrder::new(store, "kim", &items).pay_now(None)).expect("placed").order_id;
            e.start_cooking(id).expect("cooking");
            ids.push(id);
        }
        e.finish_cooking(ids[0]).expect("cooked");
        e.start_delivery(ids[0], None).expect("on its way");
        e.complete_delivery(ids[0]).expect("delivered");
        e.cancel(ids[1], "changed my mind").expect("cancelled");
        let views: Vec<OrderView> = ids.iter().map(|&id| e.status(id).expect("a view")).collect();
        drop(e);
        // The same database as version 6 wrote it.
        let before = {
            let conn = Connection::open(&path).expect("opened");
            let (keyed, messages) = keyed_by_their_events(&conn);
            assert_eq!(keyed, messages, "the engine keys each message by its event's number and its recipient");
            to_version_7(&conn);
            to_version_6_log(&conn);
            conn.pragma_update(None, "user_version", 6).expect("version 6");
            let sql = sql_of(&conn, "events");
            assert!(sql.contains("AUTOINCREMENT"), "{sql}");
            dump(&conn)
        };
        let last: i64 = before.iter().find(|(t, _)| t == "events").map(|(_, rows)| rows.len() as i64).expect("events");

        let e = engine(&path, &gateway);
        {
            let conn = Connection::open(&path).expect("opened");
            assert_eq!(
                dump_in_version_7_columns(&conn),
                before,
                "every row of every table kept, events with their seq"
            );
            let sql = sql_of(&conn, "events");
            assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
        }
        for (id, view) in ids.iter().zip(&views) {
            assert_eq!(&e.status(*id).expect("a view"), view, "order {id}");
        }
        // New events follow the largest seq, and the views still rebuild to the same.
        e.finish_cooking(ids[2]).expect("cooked");
        let log = e.events(0, None, 1_000).expect("the log");
        assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "sequence numbers increase");
        assert_eq!(log.last().expect("an event").seq, last + 1);
        let now: Vec<OrderView> = ids.iter().map(|&id| e.status(id).expect("a view")).collect();
        e.rebuild_projection().expect("rebuilt");
        assert_eq!(ids.iter().map(|&id| e.status(id).expect("a view")).collect::<Vec<_>>(), now);
    }

    #[test]
    fn a_log_without_refund_requests_rebuilds_to_the_same_views() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("old.db");
        let gateway = Gateway { takes: Arc::new(AtomicBool::new(true)), refunds: Arc::new(AtomicBool::new(false)) };
        let mut e = engine(&path, &gateway);
        let store = e.add_store("BBQ", Some("park"), None).expect("store").id;
        e.add_menu(store, "후라이드", 18_000).expect("menu");
        e.add_rider("lee").expect("rider");
        let order = |e: &mut Engine| {
            let items = [ItemPick::new("후라이드", 1)];
            e.place_order(NewOrder::new(store, "kim", &items)).expect("placed").order_id
        };
        // Cancelled while cooking: the payment and the rider's charge wait for their refunds.
        let cancelled = order(&mut e);
        e.pay(cancelled, None).expect("paid");
        e.start_cooking(cancelled).expect("cooking");
        e.cancel(cancelled, "changed my mind").expect("cancelled");
        // Rejected: the payment waits for its refund.
        let rejected = order(&mut e);
        e.pay(rejected, None).expect("paid");
        e.reject(rejected, "out of rice").expect("rejected");
        // Approved only after it was cancelled: it goes straight back.
        let late = order(&mut e);
        gateway.takes.store(false, Ordering::SeqCst);
        assert!(e.pay(late, None).is_err(), "the approval's answer was unreadable");
        gateway.takes.store(true, Ordering::SeqCst);
        e.cancel(late, "").expect("cancelled");
        // Refunded in the end: its refund request is overridden by a later event.
        let refunded = order(&mut e);
        e.pay(refunded, None).expect("paid");
        gateway.refunds.store(true, Ordering::SeqCst);
        e.cancel(refunded, "").expect("cancelled");

        let ids = [cancelled, rejected, late, refunded];
        let before: Vec<OrderView> = ids.iter().map(|&id| e.status(id).expect("a view")).collect();
        let status = |v: &OrderView| {
            (
                v.status,
                v.payment.as_ref().map(|p| p.status),
                v.delivery.as_ref().and_then(|d| d.charge.as_ref()).map(|c| c.status),
            )
        };
        // What the projector of version 3 showed for these orders.
        let shown = [
            (OrderStatus::Cancelled, Some(PaymentStatus::RefundPending), Some(ChargeStatus::RefundPending)),
            (OrderStatus::Rejected, Some(PaymentStatus::RefundPending), None),
            (OrderStatus::Cancelled, Some(PaymentStatus::RefundPending), None),
            (OrderStatus::Cancelled, Some(PaymentStatus::Refunded), None),
        ];
        assert_eq!(before.iter().map(status).collect::<Vec<_>>(), shown);
        drop(e);

        // The same database as version 3 wrote it: no refund requests in its log.
        {
            let conn = Connection::open(&path).expect("opened");
            let removed = conn
                .execute(
                    "DELETE FROM events WHERE type IN ('PaymentRefundRequested', 'DeliveryChargeRefundRequested')",
                    [],
                )
                .expect("removed");
            assert_eq!(removed, 5, "three payments and a charge wait for refunds, and one was refunded");
            // Back to version 3's schema (version 5's index, version 6's
            // table, version 7's event log and version 8's tables undone too).
            to_version_7(&conn);
            conn.execute_batch(
                "DROP INDEX riders_name_unique; CREATE INDEX riders_name ON riders (name, id); \
                 DROP TABLE idempotency_keys;",
            )
            .expect("version 3's tables and indexes");
            to_version_6_log(&conn);
            conn.pragma_update(None, "user_version", 3).expect("version 3");
        }

        let e = engine(&path, &gateway);
        let appended: Vec<EventType> =
            e.events(0, None, 1_000).expect("the log").iter().rev().take(4).map(|s| s.event.kind()).collect();
        assert_eq!(
            appended,
            [
                EventType::DeliveryChargeRefundRequested,
                EventType::PaymentRefundRequested,
                EventType::PaymentRefundRequested,
                EventType::PaymentRefundRequested,
            ],
            "appended for the payments and the charge that still wait for them, and for no other"
        );
        e.rebuild_projection().expect("rebuilt");
        for (id, was) in ids.iter().zip(&before) {
            let now = e.status(*id).expect("a view");
            assert_eq!(as_before_version_4(&now), as_before_version_4(was), "order {id}");
        }
        assert_eq!(ids.iter().map(|&id| status(&e.status(id).expect("a view"))).collect::<Vec<_>>(), shown);
    }
}
