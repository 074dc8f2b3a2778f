//! [`Repo`] over one open PostgreSQL transaction.
//!
//! The SQL is SQLite's (`adapters::sqlite::repo`) with `$n` placeholders
//! (the store inbox binds its statuses, where SQLite's spells them for its
//! partial index), except where several writers need more: ids from sequences, the order
//! lock, the log read in `(tx, seq)` order under the horizon, the relay's
//! claim of messages with `FOR UPDATE … SKIP LOCKED`. Every statement is
//! prepared once per connection and kept (the session's statement cache).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::types::{FromSql, ToSql};
use postgres::{Row, Statement, Transaction};

use super::failure::{describe, retryable, storage_error, Failure};
use crate::adapters::calls::CallRecord;
use crate::adapters::rows::{
    self, call_cols, call_sql, goes_to, limit, menu_cols, order_cols, queued_cols, request_cols, store_cols, time_text,
    CallSql, SqlRow,
};
use crate::domain::view::OrderView;
use crate::domain::{
    Breaker, BreakerName, Charge, Delivery, Event, KitchenTicket, Menu, MenuId, Order, OrderId, OrderStatus, Payment,
    PaymentId, Review, Rider, RiderId, Store, StoreId,
};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::requests::{RequestClaim, StoredResponse};
use crate::ports::storage::{Repo, StoredEvent, Table};
use crate::ports::Message;
use crate::{Error, Result};

/// The first key of an order's advisory lock (`'ezdo'`); the second is
/// the order's id, wrapped to 32 bits (orders 2³² apart share a lock,
/// which only makes them wait for each other).
pub(super) const ORDER_LOCK: i32 = 0x657A_646F;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// `nextval` of a table's sequence, and what it would give (for a read).
macro_rules! id_sql {
    ($seq:literal) => {
        (
            concat!("SELECT nextval('", $seq, "')"),
            concat!("SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM ", $seq),
        )
    };
}

const SAVE_STORE: &str = "INSERT INTO stores (id, name, owner, address, is_open, delivery_charge, review_count, \
     review_sum) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
     owner = excluded.owner, address = excluded.address, is_open = excluded.is_open, \
     delivery_charge = excluded.delivery_charge";
const ADD_STORE_REVIEW: &str =
    "UPDATE stores SET review_count = review_count + 1, review_sum = review_sum + $2 WHERE id = $1";
const STORE: &str = concat!("SELECT ", store_cols!(), " FROM stores WHERE id = $1");
const STORES: &str = concat!("SELECT ", store_cols!(), " FROM stores ORDER BY id");

const SAVE_MENU: &str = "INSERT INTO menus (id, store_id, name, price, available) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, name = excluded.name, price = excluded.price, \
     available = excluded.available";
const MENU: &str = concat!("SELECT ", menu_cols!(), " FROM menus WHERE id = $1");
const MENU_BY_NAME: &str = concat!("SELECT ", menu_cols!(), " FROM menus WHERE store_id = $1 AND name = $2");
const MENUS_OF_STORE: &str = concat!("SELECT ", menu_cols!(), " FROM menus WHERE store_id = $1 ORDER BY id");
const MENUS: &str = concat!("SELECT ", menu_cols!(), " FROM menus ORDER BY id");

const SAVE_RIDER: &str =
    "INSERT INTO riders (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name";
const RIDER: &str = "SELECT id, name FROM riders WHERE id = $1";
const RIDER_BY_NAME: &str = "SELECT id, name FROM riders WHERE name = $1 ORDER BY id LIMIT 1";
const RIDERS: &str = "SELECT id, name FROM riders ORDER BY id";

const INSERT_ORDER: &str =
    concat!("INSERT INTO orders (", order_cols!(), ", in_inbox) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
/// An order's items in one statement: line numbers from 0, in order.
const INSERT_ORDER_ITEMS: &str = "INSERT INTO order_items (order_id, line, menu_id, name, unit_price, qty) \
     SELECT $1, i.n - 1, i.menu_id, i.name, i.unit_price, i.qty \
     FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[]) WITH ORDINALITY \
     AS i (menu_id, name, unit_price, qty, n)";
const UPDATE_ORDER: &str = "UPDATE orders SET status = $2, reviewed = $3, updated_at = $4 WHERE id = $1";
const ORDER: &str = concat!("SELECT ", order_cols!(), " FROM orders WHERE id = $1");
/// Order `$1`'s kitchen ticket, if one was saved (a [`rows::ticket`] row).
const TICKET: &str = "SELECT id, store_id, kitchen_status, kitchen_updated_at FROM orders \
     WHERE id = $1 AND kitchen_status IS NOT NULL";
/// Order `$1`'s delivery, if one was saved (a [`rows::delivery`] row).
const DELIVERY: &str = "SELECT id, delivery_rider_id, delivery_charge, delivery_status, \
     delivery_updated_at FROM orders WHERE id = $1 AND delivery_status IS NOT NULL";
const ORDER_ITEMS: &str = "SELECT menu_id, name, unit_price, qty FROM order_items WHERE order_id = $1 ORDER BY line";

const SAVE_REVIEW: &str = "INSERT INTO reviews (order_id, store_id, customer, score, text, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO UPDATE SET store_id = excluded.store_id, \
     customer = excluded.customer, score = excluded.score, text = excluded.text, created_at = excluded.created_at";

const APPEND_EVENT: &str =
    "INSERT INTO events (id, type, order_id, at, data) VALUES ($1, $2, $3, $4, $5) RETURNING seq";

/// The log after the event numbered `$1` (or the last one numbered below
/// it), in `(tx, seq)` order; `$rest` ends the query (`ORDER BY` with a
/// limit `$2`, or the numbers `$2` asked for first); `$horizon` limits both
/// the position and the events to transactions that have ended for every
/// snapshot (reads).
macro_rules! events_sql {
    ($horizon:literal, $rest:literal) => {
        concat!(
            "WITH pos AS (SELECT coalesce(p.tx, '0'::xid8) AS ptx, coalesce(p.seq, 0) AS pseq FROM (SELECT 1) one ",
            "LEFT JOIN LATERAL (SELECT tx, seq FROM events WHERE seq <= $1",
            $horizon,
            " ORDER BY seq DESC LIMIT 1) p ON true) ",
            "SELECT seq, id, type, at, data FROM events, pos WHERE (tx, seq) > (ptx, pseq)",
            $horizon,
            $rest
        )
    };
}
const EVENTS_READ: &str =
    events_sql!(" AND tx < pg_snapshot_xmin(pg_current_snapshot())", " ORDER BY tx, seq LIMIT $2");
const EVENTS_WRITE: &str = events_sql!("", " ORDER BY tx, seq LIMIT $2");
/// The log as this transaction sees it, by number: for replays.
const REPLAY: &str = "SELECT seq, id, type, at, data FROM events WHERE seq > $1 ORDER BY seq LIMIT $2";
/// Of the events numbered `$2` (an order's, as its view lists them), those
/// after event `$1` in the log's order. Without the horizon: the view and
/// these events are of one snapshot, and one order's events commit in
/// number order (they are appended under the order's lock).
const EVENTS_NUMBERED: &str = events_sql!("", " AND seq = ANY($2) ORDER BY tx, seq");

const LOCK_ORDER: &str = "SELECT pg_advisory_xact_lock($1, $2)::text, pg_current_xact_id_if_assigned()::text";
/// Whether a transaction later than `$2` appended events of order `$1`.
const LATER_EVENTS_OF_ORDER: &str = "SELECT EXISTS (SELECT 1 FROM events WHERE order_id = $1 AND tx > $2::text::xid8)";

const CHECKPOINT: &str = "SELECT seq FROM checkpoints WHERE name = $1";
const SET_CHECKPOINT: &str =
    "INSERT INTO checkpoints (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq";

const VIEW: &str = "SELECT view FROM mypage WHERE order_id = $1";
const SAVE_VIEW: &str = "INSERT INTO mypage (order_id, customer, view) VALUES ($1, $2, $3) \
     ON CONFLICT (order_id) DO UPDATE SET customer = excluded.customer, view = excluded.view";
const CUSTOMER_VIEWS: &str = "SELECT view FROM mypage WHERE customer = $1 ORDER BY order_id";
const LOCK_EVENTS: &str = "LOCK TABLE events IN SHARE MODE";
const CLEAR_VIEWS: &str = "DELETE FROM mypage";

const PURGE_DELIVERED: &str = "DELETE FROM messages WHERE at < $1 AND NOT EXISTS \
     (SELECT 1 FROM message_deliveries d WHERE d.message_key = messages.key AND d.state <> $2)";
const QUEUE_MESSAGE: &str = "INSERT INTO messages (key, id, order_id, event, status, recipient, text, at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING";
const QUEUE_DELIVERIES: &str = "INSERT INTO message_deliveries (message_key, channel, state, tries, next_at, \
     last_error) SELECT $1, c.channel, $3, 0, $4, NULL FROM unnest($2::text[]) AS c (channel) \
     ON CONFLICT (message_key, channel) DO NOTHING";
macro_rules! due_sql {
    ($lock:literal) => {
        concat!(
            "SELECT ",
            queued_cols!(),
            " FROM message_deliveries d JOIN messages m ON m.key = d.message_key WHERE d.state = $1 ",
            "AND d.next_at <= $2 AND d.channel <> ALL($4::text[]) ORDER BY m.at, m.id, d.channel LIMIT $3",
            $lock
        )
    };
}
/// Oldest message first, then by id and channel.
const DUE_MESSAGES: &str = due_sql!("");
/// The same, in a write: the rows are locked for the relay that claims
/// them, and rows another relay locked are skipped, not waited for.
const DUE_MESSAGES_CLAIMED: &str = due_sql!(" FOR UPDATE OF d SKIP LOCKED");
const MESSAGES_WAITING: &str = "SELECT count(*), min(next_at) FROM message_deliveries WHERE state = $1";
/// The channels message deliveries wait on (`COLLATE "C"`: in byte order,
/// as SQLite's and the memory adapter's).
const WAITING_CHANNELS: &str =
    "SELECT DISTINCT channel COLLATE \"C\" FROM message_deliveries WHERE state = $1 ORDER BY 1";
const DEAD_MESSAGES: &str = concat!(
    "SELECT ",
    queued_cols!(),
    " FROM message_deliveries d JOIN messages m ON m.key = d.message_key WHERE d.state = $1 ",
    "ORDER BY m.at, m.id, d.channel LIMIT $2"
);
const SAVE_MESSAGE_DELIVERY: &str = "INSERT INTO message_deliveries (message_key, channel, state, tries, next_at, \
     last_error) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_key, channel) DO UPDATE SET \
     state = excluded.state, tries = excluded.tries, next_at = excluded.next_at, last_error = excluded.last_error";

/// Inserts a key unless one of its sender holds it. A concurrent insert of
/// the same key not committed yet makes it wait for that transaction's end
/// (then it does nothing if that one committed, inserts if it rolled back),
/// so of several claims at once exactly one inserts.
const CLAIM_REQUEST: &str = "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, claimed_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (scope, idempotency_key) DO NOTHING";
/// Run after a claim that inserted nothing: in `READ COMMITTED` a statement
/// sees what committed before it started, so the row that stopped the
/// insert is seen (unless it was deleted since).
const REQUEST: &str =
    concat!("SELECT ", request_cols!(), " FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2");
const FINISH_REQUEST: &str =
    "UPDATE idempotency_keys SET status = $3, body = $4 WHERE scope = $1 AND idempotency_key = $2";
const FORGET_REQUEST: &str = "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2";
const PURGE_REQUESTS: &str = "DELETE FROM idempotency_keys WHERE claimed_at < $1";
/// How many times a claim inserts again when the key that stopped its
/// insert was deleted (forgotten, purged) before it could be read.
const CLAIM_TRIES: usize = 3;

const ORDER_COUNTS: &str = "SELECT status, count(*) FROM orders GROUP BY status";

const BREAKER: &str = "SELECT name, state, failures, opened_at, updated_at FROM breakers WHERE name = $1";
const BREAKERS: &str = "SELECT name, state, failures, opened_at, updated_at FROM breakers ORDER BY name";
const SAVE_BREAKER: &str = "INSERT INTO breakers (name, state, failures, opened_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET state = excluded.state, \
     failures = excluded.failures, opened_at = excluded.opened_at, updated_at = excluded.updated_at";

/// Column `i` of `row`.
fn get<'r, T: FromSql<'r>>(row: &'r Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(|e| Error::storage(format!("cannot read column {i}: {}", describe(&e))))
}

/// A [`Repo`] over a transaction that [`super::PostgresStorage`] opens and
/// ends; it remembers what the storage must know at the end: the first
/// statement that failed, and whether to wake the relay.
pub(super) struct PgRepo<'a, 't> {
    tx: &'a mut Transaction<'t>,
    statements: &'a mut HashMap<&'static str, Statement>,
    /// A write transaction (else read-only).
    write: bool,
    /// The log is read whole, without the horizon (`db copy`: on its
    /// snapshot, or in its write transaction, every event seen is committed
    /// or its own), though the repo only reads.
    whole_log: bool,
    /// The first failure: whether to run the unit of work again, and what
    /// happened. PostgreSQL aborts the transaction at a failed statement.
    failure: Option<(bool, String)>,
    /// Orders whose lock this unit of work holds.
    locked: HashSet<OrderId>,
    /// Payments and charges (table, id) whose last save in this unit of
    /// work left them waiting for the gateway with nobody holding the call.
    /// A call saved unclaimed and then claimed in the same unit of work (a
    /// payment placed and paid at once) is not here: its caller makes the
    /// call right after the commit, and the relay has nothing to wake for.
    unclaimed_calls: HashSet<(&'static str, i64)>,
    /// Deliveries queued here and not claimed here: (message, channel) →
    /// their `next_at` as queued.
    unclaimed: HashMap<(String, String), String>,
}

impl<'a, 't> PgRepo<'a, 't> {
    /// A repo over `tx`, with the connection's statement cache.
    pub(super) fn new(
        tx: &'a mut Transaction<'t>,
        statements: &'a mut HashMap<&'static str, Statement>,
        write: bool,
    ) -> PgRepo<'a, 't> {
        PgRepo {
            tx,
            statements,
            write,
            whole_log: false,
            failure: None,
            locked: HashSet::new(),
            unclaimed_calls: HashSet::new(),
            unclaimed: HashMap::new(),
        }
    }

    /// The same repo, but reading the whole log that the transaction sees,
    /// without the horizon ([`super::copy`]: the copy's snapshot holds
    /// only committed events, and the table rows read beside them come
    /// from that same snapshot).
    pub(super) fn whole_log(mut self) -> PgRepo<'a, 't> {
        self.whole_log = true;
        self
    }

    /// What the storage needs once the work returned: the first failure,
    /// and whether to notify the relay before committing.
    pub(super) fn finish(self) -> (Option<Failure>, bool) {
        let failure = self.failure.map(|(retry, message)| Failure { error: Error::storage(message), retry });
        (failure, !self.unclaimed_calls.is_empty() || !self.unclaimed.is_empty())
    }

    /// Records a failed statement and turns it into the error to return.
    fn fail(&mut self, e: postgres::Error) -> Error {
        let retry = retryable(e.code());
        if self.failure.is_none() {
            self.failure = Some((retry, describe(&e)));
        }
        storage_error(e)
    }

    fn prepared(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let prepared = self.tx.prepare(sql);
        let statement = prepared.map_err(|e| self.fail(e))?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs a statement that changes rows; returns how many.
    fn exec(&mut self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        let statement = self.prepared(sql)?;
        let done = self.tx.execute(&statement, params);
        done.map_err(|e| self.fail(e))
    }

    /// Runs a statement that adds a name that must be unique: a unique
    /// violation is invalid input, said by `taken` (and the unit of work
    /// fails as a whole, since the transaction is aborted).
    fn exec_unique(&mut self, sql: &'static str, params: Params<'_>, taken: impl FnOnce() -> String) -> Result<u64> {
        let statement = self.prepared(sql)?;
        match self.tx.execute(&statement, params) {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                let message = taken();
                if self.failure.is_none() {
                    self.failure = Some((false, message.clone()));
                }
                Err(Error::Invalid(crate::domain::validate::Invalid(message)))
            }
            done => done.map_err(|e| self.fail(e)),
        }
    }

    fn rows(&mut self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        let statement = self.prepared(sql)?;
        let rows = self.tx.query(&statement, params);
        rows.map_err(|e| self.fail(e))
    }

    /// The first row of a query, decoded.
    fn one<T>(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
        decode: impl Fn(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        self.rows(sql, params)?.first().map(decode).transpose()
    }

    /// Every row of a query, decoded.
    fn all<T>(&mut self, sql: &'static str, params: Params<'_>, decode: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
        self.rows(sql, params)?.iter().map(decode).collect()
    }

    /// Saves a payment or charge, and remembers to wake the relay when, as
    /// last saved here, it waits for the gateway and nobody holds its call.
    fn save_call<C: PgCall>(&mut self, call: &C) -> Result<()> {
        call.save(self)?;
        let key = (C::SQL.table, call.id());
        if call.waits() && call.attempt().claim.is_none() {
            self.unclaimed_calls.insert(key);
        } else {
            self.unclaimed_calls.remove(&key);
        }
        Ok(())
    }

    fn calls_awaiting<C: PgCall>(&mut self, now: DateTime<Utc>, gateway: &str, n: usize) -> Result<Vec<C>> {
        let [a, b] = C::WAITING.map(C::status_text);
        self.all(C::SQL.awaiting, &[&a, &b, &time_text(&now), &gateway, &limit(n)], C::from_row)
    }

    fn calls_needing_attention<C: PgCall>(&mut self, n: usize) -> Result<Vec<C>> {
        self.all(C::SQL.in_status, &[&C::status_text(C::ATTENTION), &limit(n)], C::from_row)
    }

    fn calls_waiting<C: PgCall>(&mut self, now: &str, gateway: &str) -> Result<crate::adapters::calls::CallsWaiting> {
        let [a, b] = C::WAITING.map(C::status_text);
        let table = C::SQL.table;
        let found = self
            .one(C::SQL.waiting, &[&gateway, &a, &now, &b], |row| crate::adapters::calls::calls_waiting(row, table))?;
        Ok(found.unwrap_or_default())
    }

    /// How many message deliveries wait, and the earliest due.
    fn messages_waiting(&mut self) -> Result<Option<(usize, Option<DateTime<Utc>>)>> {
        let pending = DeliveryState::Pending.as_str();
        self.one(MESSAGES_WAITING, &[&pending], |row| rows::waiting(row, "message_deliveries"))
    }

    fn channels_waiting(&mut self) -> Result<Vec<String>> {
        self.all(WAITING_CHANNELS, &[&DeliveryState::Pending.as_str()], |row| rows::get(row, 0))
    }
}

/// A payment or a delivery charge as its table holds it.
trait PgCall: CallRecord {
    const SQL: CallSql;
    fn save(&self, repo: &mut PgRepo<'_, '_>) -> Result<()>;
    fn from_row(row: &Row) -> Result<Self>;
}

macro_rules! pg_call {
    ($record:ident, $table:literal, $own:ident, $decode:ident) => {
        impl PgCall for $record {
            const SQL: CallSql = call_sql!($table, $own);

            fn save(&self, repo: &mut PgRepo<'_, '_>) -> Result<()> {
                let a = &self.attempt;
                let claim = a.claim.as_ref();
                repo.exec(
                    Self::SQL.save,
                    &[
                        &self.id,
                        &self.order_id,
                        &self.status.as_str(),
                        &self.amount,
                        &self.gateway_ref,
                        &&*a.idempotency_key,
                        &i64::from(a.tries),
                        &a.next_at.as_ref().map(time_text),
                        &a.last_error,
                        &time_text(&self.created_at),
                        &time_text(&self.updated_at),
                        &i64::from(a.maybe_processed),
                        &claim.map(|c| &*c.token),
                        &claim.map(|c| time_text(&c.until)),
                        &i64::from(a.unsettled),
                        &a.gateway.as_deref(),
                        &self.$own,
                    ],
                )?;
                Ok(())
            }

            fn from_row(row: &Row) -> Result<$record> {
                rows::$decode(row)
            }
        }
    };
}

pg_call!(Payment, "payments", card, payment);
pg_call!(Charge, "charges", rider_id, charge);

impl Repo for PgRepo<'_, '_> {
    /// `nextval` of the table's sequence. In a read-only unit of work,
    /// where nothing can be saved, the id the next write would get at the
    /// least (a sequence cannot move there).
    fn next_id(&mut self, table: Table) -> Result<i64> {
        let (next, peek) = match table {
            Table::Store => id_sql!("stores_id_seq"),
            Table::Menu => id_sql!("menus_id_seq"),
            Table::Rider => id_sql!("riders_id_seq"),
            Table::Order => id_sql!("orders_id_seq"),
            Table::Payment => id_sql!("payments_id_seq"),
            Table::Charge => id_sql!("charges_id_seq"),
        };
        let sql = if self.write { next } else { peek };
        self.one(sql, &[], |row| get(row, 0))?.ok_or_else(|| Error::storage(format!("no id for {table:?}")))
    }

    /// `pg_advisory_xact_lock(ORDER_LOCK, id)`, once per unit of work (a
    /// read has nothing to serialise). A unit of work that had a
    /// transaction id already, while a later transaction appended events of
    /// the order, is run again (see the module documentation).
    fn lock_order(&mut self, id: OrderId) -> Result<()> {
        if !self.write || self.locked.contains(&id) {
            return Ok(());
        }
        // Wrapping to 32 bits on purpose: the lock's second key is an int4.
        let key = id as i32;
        let xid = self.one(LOCK_ORDER, &[&ORDER_LOCK, &key], |row| get::<Option<String>>(row, 1))?.flatten();
        self.locked.insert(id);
        if let Some(xid) = xid {
            let later = self.one(LATER_EVENTS_OF_ORDER, &[&id, &xid], |row| get::<bool>(row, 0))?;
            if later == Some(true) {
                let message = format!(
                    "order {id}: a later transaction appended its events while this unit of work waited for its \
                     lock; the unit of work runs again"
                );
                self.failure = Some((true, message.clone()));
                return Err(Error::storage(message));
            }
        }
        Ok(())
    }

    fn save_store(&mut self, s: &Store) -> Result<()> {
        self.exec(
            SAVE_STORE,
            &[
                &s.id,
                &s.name.as_str(),
                &s.owner.as_str(),
                &s.address.as_str(),
                &i64::from(s.open),
                &s.delivery_charge,
                &s.review_count,
                &s.review_sum,
            ],
        )?;
        Ok(())
    }

    fn add_store_review(&mut self, id: StoreId, score: u8) -> Result<()> {
        match self.exec(ADD_STORE_REVIEW, &[&id, &i64::from(score)])? {
            1 => Ok(()),
            _ => Err(Error::not_found(crate::Record::Store, id)),
        }
    }

    fn store(&mut self, id: StoreId) -> Result<Option<Store>> {
        self.one(STORE, &[&id], |r| rows::store(r))
    }

    fn stores(&mut self) -> Result<Vec<Store>> {
        self.all(STORES, &[], |r| rows::store(r))
    }

    fn save_menu(&mut self, m: &Menu) -> Result<()> {
        self.exec_unique(
            SAVE_MENU,
            &[&m.id, &m.store_id, &m.name.as_str(), &m.price, &i64::from(m.available)],
            || crate::domain::validate::menu_taken(m.store_id, &m.name),
        )?;
        Ok(())
    }

    fn menu(&mut self, id: MenuId) -> Result<Option<Menu>> {
        self.one(MENU, &[&id], |r| rows::menu(r))
    }

    fn menu_by_name(&mut self, store: StoreId, name: &str) -> Result<Option<Menu>> {
        self.one(MENU_BY_NAME, &[&store, &name], |r| rows::menu(r))
    }

    fn menus(&mut self, store: Option<StoreId>) -> Result<Vec<Menu>> {
        match store {
            Some(store) => self.all(MENUS_OF_STORE, &[&store], |r| rows::menu(r)),
            None => self.all(MENUS, &[], |r| rows::menu(r)),
        }
    }

    fn save_rider(&mut self, r: &Rider) -> Result<()> {
        self.exec_unique(SAVE_RIDER, &[&r.id, &r.name.as_str()], || crate::domain::validate::rider_taken(&r.name))?;
        Ok(())
    }

    fn rider(&mut self, id: RiderId) -> Result<Option<Rider>> {
        self.one(RIDER, &[&id], |r| rows::rider(r))
    }

    fn rider_by_name(&mut self, name: &str) -> Result<Option<Rider>> {
        self.one(RIDER_BY_NAME, &[&name], |r| rows::rider(r))
    }

    fn riders(&mut self) -> Result<Vec<Rider>> {
        self.all(RIDERS, &[], |r| rows::rider(r))
    }

    fn least_busy_rider(&mut self) -> Result<Option<Rider>> {
        rows::least_busy_rider(|sql| self.one(sql, &[], |r| rows::rider(r)))
    }

    fn insert_order(&mut self, o: &Order) -> Result<()> {
        self.exec(
            INSERT_ORDER,
            &[
                &o.id,
                &o.store_id,
                &&*o.customer,
                &&*o.address,
                &o.total,
                &o.status.as_str(),
                &i64::from(o.reviewed),
                &time_text(&o.created_at),
                &time_text(&o.updated_at),
                &i64::from(o.status.in_store_inbox()),
            ],
        )?;
        if o.items.is_empty() {
            return Ok(());
        }
        let menus: Vec<i64> = o.items.iter().map(|i| i.menu_id).collect();
        let names: Vec<&str> = o.items.iter().map(|i| i.name.as_str()).collect();
        let prices: Vec<i64> = o.items.iter().map(|i| i.unit_price).collect();
        let qtys: Vec<i64> = o.items.iter().map(|i| i64::from(i.qty)).collect();
        self.exec(INSERT_ORDER_ITEMS, &[&o.id, &menus, &names, &prices, &qtys])?;
        Ok(())
    }

    fn update_order(&mut self, o: &Order) -> Result<()> {
        let changed =
            self.exec(UPDATE_ORDER, &[&o.id, &o.status.as_str(), &i64::from(o.reviewed), &time_text(&o.updated_at)])?;
        if changed == 0 {
            return Err(Error::storage(format!("cannot update order {}: it was never inserted", o.id)));
        }
        self.exec(rows::SET_INBOX, &[&i64::from(o.status.in_store_inbox()), &o.id])?;
        Ok(())
    }

    fn order(&mut self, id: OrderId) -> Result<Option<Order>> {
        let Some(mut order) = self.one(ORDER, &[&id], |r| rows::order(r))? else { return Ok(None) };
        order.items = self.all(ORDER_ITEMS, &[&id], |r| rows::item(r))?.into();
        Ok(Some(order))
    }

    fn store_inbox(&mut self, store: StoreId) -> Result<Vec<OrderId>> {
        self.all(rows::STORE_INBOX, &[&store], |row| get(row, 0))
    }

    fn order_counts(&mut self) -> Result<Vec<(OrderStatus, u64)>> {
        rows::order_counts(self.all(ORDER_COUNTS, &[], |row| Ok((get(row, 0)?, get(row, 1)?)))?)
    }

    fn save_payment(&mut self, p: &Payment) -> Result<()> {
        self.save_call(p)
    }

    fn payment(&mut self, id: PaymentId) -> Result<Option<Payment>> {
        self.one(Payment::SQL.by_id, &[&id], Payment::from_row)
    }

    fn latest_payment(&mut self, order: OrderId) -> Result<Option<Payment>> {
        self.one(Payment::SQL.latest, &[&order], Payment::from_row)
    }

    fn save_ticket(&mut self, t: &KitchenTicket) -> Result<()> {
        let changed =
            self.exec(rows::SAVE_TICKET, &[&t.status.as_str(), &time_text(&t.updated_at), &t.order_id, &t.store_id])?;
        crate::adapters::saved_on_order(changed > 0, "kitchen ticket", t.order_id, Some(t.store_id))
    }

    fn ticket(&mut self, order: OrderId) -> Result<Option<KitchenTicket>> {
        self.one(TICKET, &[&order], |r| rows::ticket(r))
    }

    fn save_delivery(&mut self, d: &Delivery) -> Result<()> {
        let changed =
            self.exec(rows::SAVE_DELIVERY, &[&d.charge, &d.status.as_str(), &time_text(&d.updated_at), &d.order_id])?;
        crate::adapters::saved_on_order(changed > 0, "delivery", d.order_id, None)?;
        let (rider, busy) = rows::rider_columns(Some(d));
        self.exec(rows::SET_RIDER, &[&rider, &i64::from(busy), &d.order_id])?;
        Ok(())
    }

    fn delivery(&mut self, order: OrderId) -> Result<Option<Delivery>> {
        self.one(DELIVERY, &[&order], |r| rows::delivery(r))
    }

    fn save_charge(&mut self, c: &Charge) -> Result<()> {
        self.save_call(c)
    }

    fn charges(&mut self, order: OrderId) -> Result<Vec<Charge>> {
        self.all(Charge::SQL.of_order, &[&order], Charge::from_row)
    }

    fn save_review(&mut self, r: &Review) -> Result<()> {
        self.exec(
            SAVE_REVIEW,
            &[&r.order_id, &r.store_id, &r.customer, &i64::from(r.score), &r.text, &time_text(&r.created_at)],
        )?;
        Ok(())
    }

    crate::adapters::calls::call_queues!();

    fn append_event(&mut self, id: &str, at: DateTime<Utc>, event: &Event) -> Result<i64> {
        let data = event.data_json();
        let seq =
            self.one(APPEND_EVENT, &[&id, &event.type_name(), &event.order_id(), &time_text(&at), &data], |row| {
                get(row, 0)
            })?;
        seq.ok_or_else(|| Error::storage("appending an event returned no sequence number"))
    }

    /// The log in `(tx, seq)` order (see the module documentation): in a
    /// read, up to the horizon of ended transactions; in a write (or a
    /// copy's transaction), all of it that this transaction sees.
    fn events(&mut self, after: i64, n: usize) -> Result<Vec<StoredEvent>> {
        let sql = if self.write || self.whole_log { EVENTS_WRITE } else { EVENTS_READ };
        self.all(sql, &[&after, &limit(n)], |r| rows::event(r))
    }

    fn events_numbered(&mut self, seqs: &[i64], after: i64) -> Result<Vec<StoredEvent>> {
        self.all(EVENTS_NUMBERED, &[&after, &seqs], |r| rows::event(r))
    }

    fn replay(&mut self, after: i64, n: usize) -> Result<Vec<StoredEvent>> {
        self.all(REPLAY, &[&after, &limit(n)], |r| rows::event(r))
    }

    fn checkpoint(&mut self, projector: &str) -> Result<i64> {
        Ok(self.one(CHECKPOINT, &[&projector], |row| get(row, 0))?.unwrap_or(0))
    }

    fn set_checkpoint(&mut self, projector: &str, seq: i64) -> Result<()> {
        self.exec(SET_CHECKPOINT, &[&projector, &seq])?;
        Ok(())
    }

    fn view(&mut self, order: OrderId) -> Result<Option<OrderView>> {
        self.one(VIEW, &[&order], |r| rows::view(r))
    }

    fn save_view(&mut self, view: &OrderView) -> Result<()> {
        let text = serde_json::to_string(view)
            .map_err(|e| Error::storage(format!("cannot write the view of order {}: {e}", view.order_id)))?;
        self.exec(SAVE_VIEW, &[&view.order_id, &&*view.customer, &text])?;
        Ok(())
    }

    fn customer_views(&mut self, customer: &str) -> Result<Vec<OrderView>> {
        self.all(CUSTOMER_VIEWS, &[&customer], |r| rows::view(r))
    }

    /// Takes `LOCK TABLE events IN SHARE MODE` first: the rebuild that
    /// follows reads the whole log, with no event still to commit.
    fn clear_views(&mut self) -> Result<()> {
        self.exec(LOCK_EVENTS, &[])?;
        self.exec(CLEAR_VIEWS, &[])?;
        Ok(())
    }

    fn queue_message(&mut self, m: &Message, channels: &[&str]) -> Result<()> {
        let at = time_text(&m.at);
        let added = self.exec(
            QUEUE_MESSAGE,
            &[&m.key, &m.id, &m.order_id, &m.event.as_str(), &m.status.as_str(), &m.recipient.as_str(), &m.text, &at],
        )?;
        if added == 0 || channels.is_empty() {
            return Ok(()); // queued before: left as it is
        }
        let pending = DeliveryState::Pending.as_str();
        self.exec(QUEUE_DELIVERIES, &[&m.key, &channels, &pending, &at])?;
        for channel in channels {
            self.unclaimed.insert((m.id.clone(), (*channel).to_string()), at.clone());
        }
        Ok(())
    }

    /// In a write, the deliveries are locked for the caller to claim
    /// (`FOR UPDATE … SKIP LOCKED`): concurrent relays take different ones
    /// and never wait for each other.
    fn due_messages_except(&mut self, now: DateTime<Utc>, n: usize, channels: &[&str]) -> Result<Vec<QueuedMessage>> {
        let sql = if self.write { DUE_MESSAGES_CLAIMED } else { DUE_MESSAGES };
        let params: [&(dyn ToSql + Sync); 4] =
            [&DeliveryState::Pending.as_str(), &time_text(&now), &limit(n), &channels];
        self.all(sql, &params, |r| rows::queued(r))
    }

    fn dead_messages(&mut self, n: usize) -> Result<Vec<QueuedMessage>> {
        self.all(DEAD_MESSAGES, &[&DeliveryState::Dead.as_str(), &limit(n)], |r| rows::queued(r))
    }

    fn save_message_delivery(&mut self, d: &MessageDelivery) -> Result<()> {
        let next_at = time_text(&d.next_at);
        self.exec(
            SAVE_MESSAGE_DELIVERY,
            &[&d.message_key, &d.channel, &d.state.as_str(), &i64::from(d.tries), &next_at, &d.last_error],
        )?;
        let key = (d.message_id.clone(), d.channel.clone());
        if let Some(queued_at) = self.unclaimed.get(&key) {
            // Claimed (due later) or settled in this unit of work.
            if d.state != DeliveryState::Pending || next_at > *queued_at {
                self.unclaimed.remove(&key);
            }
        }
        Ok(())
    }

    fn purge_delivered_messages(&mut self, before: DateTime<Utc>) -> Result<usize> {
        // Their deliveries go with them (ON DELETE CASCADE).
        let purged = self.exec(PURGE_DELIVERED, &[&time_text(&before), &DeliveryState::Delivered.as_str()])?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }

    /// `INSERT … ON CONFLICT DO NOTHING`, then, if it inserted nothing, a
    /// read of the row that stopped it (see [`CLAIM_REQUEST`]). Under a
    /// stricter isolation than the storage's `READ COMMITTED` (a database
    /// whose default says so), an insert that meets a row its snapshot
    /// cannot see fails with a serialization failure, and the unit of work
    /// runs again like any other conflict, with a newer snapshot.
    fn claim_request(&mut self, scope: &str, key: &str, fingerprint: &str, at: DateTime<Utc>) -> Result<RequestClaim> {
        let at = time_text(&at);
        for _ in 0..CLAIM_TRIES {
            if self.exec(CLAIM_REQUEST, &[&scope, &key, &fingerprint, &at])? == 1 {
                return Ok(RequestClaim::New);
            }
            if let Some(claim) = self.one(REQUEST, &[&scope, &key], |row| rows::request_claim(row, fingerprint))? {
                return Ok(claim);
            }
        }
        Err(Error::storage(format!(
            "an idempotency key was deleted {CLAIM_TRIES} times while it was being claimed; try again"
        )))
    }

    fn finish_request(&mut self, scope: &str, key: &str, response: &StoredResponse) -> Result<bool> {
        let status = i64::from(response.status);
        Ok(self.exec(FINISH_REQUEST, &[&scope, &key, &status, &response.body])? > 0)
    }

    fn forget_request(&mut self, scope: &str, key: &str) -> Result<bool> {
        Ok(self.exec(FORGET_REQUEST, &[&scope, &key])? > 0)
    }

    fn purge_requests(&mut self, before: DateTime<Utc>) -> Result<usize> {
        let purged = self.exec(PURGE_REQUESTS, &[&time_text(&before)])?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }

    fn breaker(&mut self, name: &BreakerName) -> Result<Option<Breaker>> {
        self.one(BREAKER, &[&name.as_str()], |r| rows::breaker(r))
    }

    fn breakers(&mut self) -> Result<Vec<Breaker>> {
        self.all(BREAKERS, &[], |r| rows::breaker(r))
    }

    fn save_breaker(&mut self, b: &Breaker) -> Result<()> {
        let opened_at = b.opened_at.as_ref().map(time_text);
        self.exec(
            SAVE_BREAKER,
            &[&b.name.as_str(), &b.state.as_str(), &i64::from(b.failures), &opened_at, &time_text(&b.updated_at)],
        )?;
        Ok(())
    }
}

impl SqlRow for Row {
    fn int(&self, i: usize) -> Result<Option<i64>> {
        get(self, i)
    }

    fn text(&self, i: usize) -> Result<Option<String>> {
        get(self, i)
    }
}
