//! [`Repo`] over one open SQLite transaction.
//!
//! Every statement goes through `prepare_cached`, so a hot command prepares
//! each of its statements once per connection. The SQL lives in constants
//! so that the tests can check every hot query's plan; only the `UPDATE`
//! that writes an order's pending changes is built from the columns that
//! changed (`super::pending`), and reaches its row by primary key.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Params, Row};

use std::cell::RefCell;

use super::cache::{as_stored, charge_as_stored, Kept, OrderRow, RowCache};
use super::pending::PendingRow;
use crate::adapters::calls::CallRecord;
pub(super) use crate::adapters::rows::parse_time;
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

pub(super) const NEXT_STORE: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM stores";
pub(super) const NEXT_MENU: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM menus";
pub(super) const NEXT_RIDER: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM riders";
pub(super) const NEXT_ORDER: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM orders";
pub(super) const NEXT_PAYMENT: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM payments";
pub(super) const NEXT_CHARGE: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM charges";

const SAVE_STORE: &str = "INSERT INTO stores (id, name, owner, address, is_open, delivery_charge, review_count, \
     review_sum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
     owner = excluded.owner, address = excluded.address, is_open = excluded.is_open, \
     delivery_charge = excluded.delivery_charge";
const ADD_STORE_REVIEW: &str =
    "UPDATE stores SET review_count = review_count + 1, review_sum = review_sum + ?2 WHERE id = ?1";
pub(super) const STORE: &str = concat!("SELECT ", store_cols!(), " FROM stores WHERE id = ?1");
const STORES: &str = concat!("SELECT ", store_cols!(), " FROM stores ORDER BY id");

const SAVE_MENU: &str = "INSERT INTO menus (id, store_id, name, price, available) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, name = excluded.name, price = excluded.price, \
     available = excluded.available";
pub(super) const MENU: &str = concat!("SELECT ", menu_cols!(), " FROM menus WHERE id = ?1");
pub(super) const MENU_BY_NAME: &str = concat!("SELECT ", menu_cols!(), " FROM menus WHERE store_id = ?1 AND name = ?2");
pub(super) const MENUS_OF_STORE: &str = concat!("SELECT ", menu_cols!(), " FROM menus WHERE store_id = ?1 ORDER BY id");
const MENUS: &str = concat!("SELECT ", menu_cols!(), " FROM menus ORDER BY id");

const SAVE_RIDER: &str =
    "INSERT INTO riders (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET name = excluded.name";
pub(super) const RIDER: &str = "SELECT id, name FROM riders WHERE id = ?1";
pub(super) const RIDER_BY_NAME: &str = "SELECT id, name FROM riders WHERE name = ?1 ORDER BY id LIMIT 1";
const RIDERS: &str = "SELECT id, name FROM riders ORDER BY id";

const INSERT_ORDER: &str =
    concat!("INSERT INTO orders (", order_cols!(), ", in_inbox) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
const INSERT_ORDER_ITEM: &str =
    "INSERT INTO order_items (order_id, line, menu_id, name, unit_price, qty) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const UPDATE_ORDER: &str = "UPDATE orders SET status = ?2, reviewed = ?3, updated_at = ?4 WHERE id = ?1";
/// An order's whole row and its items, one item a row: the order's
/// columns (0–8), its kitchen ticket's as [`rows::ticket`] decodes them
/// (9–12), its delivery's as [`rows::delivery`] does (13–17), its flags
/// (18–20: `in_inbox`, `rider_busy`, `delivery_rider_id` as stored), and
/// an item's (21–24; NULL for an order without items): one statement
/// reads all a command loads of an order, and the shared decoders read it.
pub(super) const ORDER_ROW: &str = concat!(
    "SELECT ",
    order_cols!(),
    ", id, store_id, kitchen_status, kitchen_updated_at",
    ", id, delivery_rider_id, delivery_charge, delivery_status, delivery_updated_at",
    ", in_inbox, rider_busy, delivery_rider_id",
    ", i.menu_id, i.name, i.unit_price, i.qty",
    " FROM orders LEFT JOIN order_items i ON i.order_id = orders.id WHERE orders.id = ?1 ORDER BY i.line"
);
/// Where [`ORDER_ROW`]'s ticket, delivery, flag and item columns start,
/// and the ticket's and delivery's status columns (NULL: none was saved).
const ROW_TICKET: usize = 9;
const ROW_TICKET_STATUS: usize = 11;
const ROW_DELIVERY: usize = 13;
const ROW_DELIVERY_STATUS: usize = 16;
const ROW_FLAGS: usize = 18;
const ROW_ITEM: usize = 21;

/// The payments' statements.
pub(super) const PAYMENT_SQL: CallSql = call_sql!("payments", card);
/// The delivery charges' statements.
pub(super) const CHARGE_SQL: CallSql = call_sql!("charges", rider_id);

const SAVE_REVIEW: &str = "INSERT INTO reviews (order_id, store_id, customer, score, text, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (order_id) DO UPDATE SET store_id = excluded.store_id, \
     customer = excluded.customer, score = excluded.score, text = excluded.text, created_at = excluded.created_at";

pub(super) const APPEND_EVENT: &str = "INSERT INTO events (id, type, order_id, at, data) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(super) const EVENTS: &str = "SELECT seq, id, type, at, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2";
pub(super) const EVENT: &str = "SELECT seq, id, type, at, data FROM events WHERE seq = ?1";

pub(super) const CHECKPOINT: &str = "SELECT seq FROM checkpoints WHERE name = ?1";
const SET_CHECKPOINT: &str =
    "INSERT INTO checkpoints (name, seq) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq";

pub(super) const VIEW: &str = "SELECT view FROM mypage WHERE order_id = ?1";
const SAVE_VIEW: &str = "INSERT INTO mypage (order_id, customer, view) VALUES (?1, ?2, ?3) \
     ON CONFLICT (order_id) DO UPDATE SET customer = excluded.customer, view = excluded.view";
/// Tried before [`SAVE_VIEW`]: the view alone when its customer is the one
/// stored, as it almost always is. SQLite rewrites the entry of every
/// index on a column an `UPDATE` sets, changed or not, and
/// `mypage_customer`'s page was one more WAL frame in each of a
/// lifecycle's seven transactions.
const UPDATE_VIEW: &str = "UPDATE mypage SET view = ?3 WHERE order_id = ?1 AND customer = ?2";
pub(super) const CUSTOMER_VIEWS: &str = "SELECT view FROM mypage WHERE customer = ?1 ORDER BY order_id";
const CLEAR_VIEWS: &str = "DELETE FROM mypage";

const PURGE_DELIVERED: &str = "DELETE FROM messages WHERE at < ?1 AND NOT EXISTS \
     (SELECT 1 FROM message_deliveries d WHERE d.message_key = messages.key AND d.state <> ?2)";
const QUEUE_MESSAGE: &str = "INSERT INTO messages (key, id, order_id, event, status, recipient, text, at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (key) DO NOTHING";
const QUEUE_DELIVERY: &str = "INSERT INTO message_deliveries (message_key, channel, state, tries, next_at, \
     last_error) VALUES (?1, ?2, ?3, 0, ?4, NULL) ON CONFLICT (message_key, channel) DO NOTHING";
/// Oldest message first (so a customer hears of their order's events in
/// order, retries included), then by id and channel.
pub(super) const DUE_MESSAGES: &str = concat!(
    "SELECT ",
    queued_cols!(),
    " FROM message_deliveries d JOIN messages m ON m.key = d.message_key WHERE d.state = ?1 AND d.next_at <= ?2 ",
    "AND d.channel NOT IN (SELECT value FROM json_each(?4)) ORDER BY m.at, m.id, d.channel LIMIT ?3"
);
/// How many message deliveries wait, and the earliest `next_at`.
const MESSAGES_WAITING: &str = "SELECT count(*), min(next_at) FROM message_deliveries WHERE state = ?1";
/// The channels message deliveries wait on.
const WAITING_CHANNELS: &str = "SELECT DISTINCT channel FROM message_deliveries WHERE state = ?1 ORDER BY channel";
/// By message time, then id and channel.
pub(super) const DEAD_MESSAGES: &str = concat!(
    "SELECT ",
    queued_cols!(),
    " FROM message_deliveries d JOIN messages m ON m.key = d.message_key WHERE d.state = ?1 ",
    "ORDER BY m.at, m.id, d.channel LIMIT ?2"
);
const SAVE_MESSAGE_DELIVERY: &str = "INSERT INTO message_deliveries (message_key, channel, state, tries, next_at, \
     last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (message_key, channel) DO UPDATE SET \
     state = excluded.state, tries = excluded.tries, next_at = excluded.next_at, last_error = excluded.last_error";

/// Inserts a key unless one of its sender holds it: one row changed means
/// claimed (the unit of work holds SQLite's one write lock, so nothing
/// can come between this and the read that follows).
const CLAIM_REQUEST: &str = "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, claimed_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope, idempotency_key) DO NOTHING";
pub(super) const REQUEST: &str =
    concat!("SELECT ", request_cols!(), " FROM idempotency_keys WHERE scope = ?1 AND idempotency_key = ?2");
const FINISH_REQUEST: &str =
    "UPDATE idempotency_keys SET status = ?3, body = ?4 WHERE scope = ?1 AND idempotency_key = ?2";
const FORGET_REQUEST: &str = "DELETE FROM idempotency_keys WHERE scope = ?1 AND idempotency_key = ?2";
pub(super) const PURGE_REQUESTS: &str = "DELETE FROM idempotency_keys WHERE claimed_at < ?1";

/// Every order is counted: a scan of the table (no index holds every
/// order's status: one would be rewritten on every status change), for a
/// metrics scrape now and then.
pub(super) const ORDER_COUNTS: &str = "SELECT status, count(*) FROM orders GROUP BY status";

const BREAKER: &str = "SELECT name, state, failures, opened_at, updated_at FROM breakers WHERE name = ?1";
const BREAKERS: &str = "SELECT name, state, failures, opened_at, updated_at FROM breakers ORDER BY name";
const SAVE_BREAKER: &str = "INSERT INTO breakers (name, state, failures, opened_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET state = excluded.state, \
     failures = excluded.failures, opened_at = excluded.opened_at, updated_at = excluded.updated_at";

/// A payment or a delivery charge as its table holds it.
trait SqlCall: CallRecord {
    /// Its table's statements.
    const SQL: CallSql;

    /// Upserts it: every column, in [`call_cols!`] order.
    fn save(&self, repo: &SqliteRepo<'_>) -> Result<()>;

    /// Reads one row of [`call_cols!`].
    fn from_row(row: &dyn SqlRow) -> Result<Self>;
}

/// Implements [`SqlCall`] for a record of table `$table` with its own column
/// `$own`: the records name their shared fields alike, so one text binds
/// and reads both.
macro_rules! sql_call {
    ($record:ident, $table:literal, $own:ident, $decode:ident) => {
        impl SqlCall for $record {
            const SQL: CallSql = call_sql!($table, $own);

            fn save(&self, repo: &SqliteRepo<'_>) -> Result<()> {
                let a = &self.attempt;
                let claim = a.claim.as_ref();
                repo.exec(
                    Self::SQL.save,
                    params![
                        self.id,
                        self.order_id,
                        self.status.as_str(),
                        self.amount,
                        self.gateway_ref,
                        a.idempotency_key,
                        a.tries,
                        a.next_at.as_ref().map(time_text),
                        a.last_error,
                        time_text(&self.created_at),
                        time_text(&self.updated_at),
                        a.maybe_processed,
                        claim.map(|c| &*c.token),
                        claim.map(|c| time_text(&c.until)),
                        a.unsettled,
                        a.gateway.as_deref(),
                        self.$own,
                    ],
                )?;
                Ok(())
            }

            fn from_row(row: &dyn SqlRow) -> Result<$record> {
                rows::$decode(row)
            }
        }
    };
}

sql_call!(Payment, "payments", card, payment);
sql_call!(Charge, "charges", rider_id, charge);

/// A [`Repo`] over a connection that is inside a transaction
/// ([`super::SqliteStorage`] opens and closes it, calling
/// [`SqliteRepo::flush`] before it commits).
pub(super) struct SqliteRepo<'a> {
    conn: &'a Connection,
    cache: &'a mut RowCache,
    /// The changes to a cached order's row not written yet.
    pending: RefCell<Option<PendingRow>>,
}

impl<'a> SqliteRepo<'a> {
    /// A repo over `conn`, which the caller keeps inside a transaction.
    pub(super) fn new(conn: &'a Connection, cache: &'a mut RowCache) -> SqliteRepo<'a> {
        SqliteRepo { conn, cache, pending: RefCell::new(None) }
    }

    /// Writes the changes to an order's row that are still pending
    /// ([`PendingRow`]): before the unit of work commits, and before every
    /// query and every direct change of an order's row (`next_id` and the
    /// projector's checkpoint read no column it changes, and do not wait).
    /// Should the `UPDATE` fail, the changes stay pending, so that the
    /// repo, when dropped, empties the cache that holds them.
    pub(super) fn flush(&self) -> Result<()> {
        let changed = {
            let pending = self.pending.borrow();
            let Some(pending) = pending.as_ref() else { return Ok(()) };
            let (sql, values) = pending.statement();
            (pending.id, self.conn.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(values))?)
        };
        match changed {
            (_, 1) => {
                *self.pending.borrow_mut() = None;
                Ok(())
            }
            (id, _) => Err(Error::storage(format!("cannot update order {id}: its row is not there"))),
        }
    }

    /// Records a change to cached order `id`'s row, to be written by
    /// [`SqliteRepo::flush`] (another order's pending changes are written
    /// first).
    fn pend(&self, id: OrderId, change: impl FnOnce(&mut PendingRow)) -> Result<()> {
        if self.pending.borrow().as_ref().is_some_and(|p| p.id != id) {
            self.flush()?;
        }
        change(self.pending.borrow_mut().get_or_insert_with(|| PendingRow::new(id)));
        Ok(())
    }

    /// Order `id`'s row: from the cache, or read ([`ORDER_ROW`]) and
    /// cached.
    fn order_row(&mut self, id: OrderId) -> Result<Option<&OrderRow>> {
        if self.cache.orders.get(&id).is_none() {
            let Some(row) = self.read_order_row(id)? else { return Ok(None) };
            self.cache.orders.put(id, row);
        }
        Ok(self.cache.orders.get(&id))
    }

    /// The record of `key` in the cache's `kind`, or else read by `read`
    /// and kept.
    fn kept<K: Eq + std::hash::Hash, V: Clone>(
        &mut self,
        kind: fn(&mut RowCache) -> &mut Kept<K, V>,
        key: K,
        read: impl FnOnce(&Self) -> Result<Option<V>>,
    ) -> Result<Option<V>> {
        if let Some(found) = kind(self.cache).get(&key) {
            return Ok(Some(found.clone()));
        }
        let found = read(self)?;
        if let Some(found) = &found {
            kind(self.cache).put(key, found.clone());
        }
        Ok(found)
    }

    fn read_order_row(&self, id: OrderId) -> Result<Option<OrderRow>> {
        self.flush()?;
        let mut stmt = self.conn.prepare_cached(ORDER_ROW)?;
        let mut rows = stmt.query([id])?;
        let mut found: Option<OrderRow> = None;
        let mut items = Vec::new();
        while let Some(row) = rows.next()? {
            if found.is_none() {
                let columns = |from| rows::Columns { row, from };
                let saved = |i| -> Result<bool> { Ok(SqlRow::text(row, i)?.is_some()) };
                let order = rows::order(row)?;
                let delivery =
                    saved(ROW_DELIVERY_STATUS)?.then(|| rows::delivery(&columns(ROW_DELIVERY))).transpose()?;
                // The flags as stored, against what they must be: a row
                // changed by hand may hold others, which its next write
                // then sets again.
                let (in_inbox, busy, rider): (bool, bool, Option<RiderId>) =
                    (rows::get(row, ROW_FLAGS)?, rows::get(row, ROW_FLAGS + 1)?, rows::get(row, ROW_FLAGS + 2)?);
                found = Some(OrderRow {
                    inbox_holds: in_inbox == order.status.in_store_inbox(),
                    rider_holds: (rider, busy) == rows::rider_columns(delivery.as_ref()),
                    ticket: saved(ROW_TICKET_STATUS)?.then(|| rows::ticket(&columns(ROW_TICKET))).transpose()?,
                    order,
                    delivery,
                });
            }
            if SqlRow::int(row, ROW_ITEM)?.is_some() {
                items.push(rows::item(&rows::Columns { row, from: ROW_ITEM })?);
            }
        }
        Ok(found.map(|mut found| {
            found.order.items = items.into();
            found
        }))
    }

    /// Runs a cached statement that changes rows; returns how many.
    fn exec(&self, sql: &str, params: impl Params) -> Result<usize> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)?)
    }

    /// Runs a cached statement that adds a name that must be unique: a
    /// unique constraint it breaks is invalid input, said by `taken` (two
    /// units of work raced to add the same name).
    fn exec_unique(&self, sql: &str, params: impl Params, taken: impl FnOnce() -> String) -> Result<usize> {
        match self.conn.prepare_cached(sql)?.execute(params) {
            Err(rusqlite::Error::SqliteFailure(f, _)) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => {
                Err(Error::Invalid(crate::domain::validate::Invalid(taken())))
            }
            done => Ok(done?),
        }
    }

    /// The first row of a cached query, decoded by `decode`.
    fn one<T>(
        &self,
        sql: &str,
        params: impl Params,
        mut decode: impl FnMut(&dyn SqlRow) -> Result<T>,
    ) -> Result<Option<T>> {
        self.flush()?;
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query_and_then(params, |row| decode(row))?;
        rows.next().transpose()
    }

    /// The payments or charges waiting for gateway `gateway` and due at `now`.
    fn calls_awaiting<C: SqlCall>(&self, now: DateTime<Utc>, gateway: &str, n: usize) -> Result<Vec<C>> {
        let [a, b] = C::WAITING.map(C::status_text);
        self.all(C::SQL.awaiting, params![a, b, time_text(&now), gateway, limit(n)], C::from_row)
    }

    /// The payments or charges a person must look at.
    fn calls_needing_attention<C: SqlCall>(&self, n: usize) -> Result<Vec<C>> {
        self.all(C::SQL.in_status, params![C::status_text(C::ATTENTION), limit(n)], C::from_row)
    }

    /// What waits of the payments or charges, for gateway `gateway` (see
    /// [`crate::adapters::calls::CallsWaiting`]).
    fn calls_waiting<C: SqlCall>(&self, now: &str, gateway: &str) -> Result<crate::adapters::calls::CallsWaiting> {
        let [a, b] = C::WAITING.map(C::status_text);
        let table = C::SQL.table;
        let found = self.one(C::SQL.waiting, params![gateway, a, now, b], |row| {
            crate::adapters::calls::calls_waiting(row, table)
        })?;
        Ok(found.unwrap_or_default())
    }

    /// How many message deliveries wait, and the earliest due.
    fn messages_waiting(&mut self) -> Result<Option<(usize, Option<DateTime<Utc>>)>> {
        let pending = DeliveryState::Pending.as_str();
        self.one(MESSAGES_WAITING, [pending], |row| rows::waiting(row, "message_deliveries"))
    }

    fn channels_waiting(&mut self) -> Result<Vec<String>> {
        self.all(WAITING_CHANNELS, [DeliveryState::Pending.as_str()], |row| rows::get(row, 0))
    }

    /// Every row of a cached query, decoded by `decode`.
    fn all<T>(
        &self,
        sql: &str,
        params: impl Params,
        mut decode: impl FnMut(&dyn SqlRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.flush()?;
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_and_then(params, |row| decode(row))?;
        rows.collect()
    }
}

impl Drop for SqliteRepo<'_> {
    fn drop(&mut self) {
        // Dropped with changes unwritten (an error, a panic): the cache
        // holds rows the database will not, and the transaction is
        // rolled back anyway.
        if self.pending.get_mut().is_some() {
            self.cache.clear();
        }
    }
}

impl Repo for SqliteRepo<'_> {
    fn next_id(&mut self, table: Table) -> Result<i64> {
        let sql = match table {
            Table::Store => NEXT_STORE,
            Table::Menu => NEXT_MENU,
            Table::Rider => NEXT_RIDER,
            Table::Order => NEXT_ORDER,
            Table::Payment => NEXT_PAYMENT,
            Table::Charge => NEXT_CHARGE,
        };
        Ok(self.conn.prepare_cached(sql)?.query_row([], |row| row.get(0))?)
    }

    fn lock_order(&mut self, _id: OrderId) -> Result<()> {
        // The unit of work holds SQLite's one write lock already.
        Ok(())
    }

    fn save_store(&mut self, s: &Store) -> Result<()> {
        self.exec(
            SAVE_STORE,
            params![
                s.id,
                s.name.as_str(),
                s.owner.as_str(),
                s.address.as_str(),
                s.open,
                s.delivery_charge,
                s.review_count,
                s.review_sum
            ],
        )?;
        self.cache.stores.clear();
        Ok(())
    }

    fn add_store_review(&mut self, id: StoreId, score: u8) -> Result<()> {
        self.cache.stores.clear();
        match self.exec(ADD_STORE_REVIEW, params![id, score])? {
            1 => Ok(()),
            _ => Err(Error::not_found(crate::Record::Store, id)),
        }
    }

    fn store(&mut self, id: StoreId) -> Result<Option<Store>> {
        self.kept(|c| &mut c.stores, id, |repo| repo.one(STORE, [id], rows::store))
    }

    fn stores(&mut self) -> Result<Vec<Store>> {
        self.all(STORES, [], rows::store)
    }

    fn save_menu(&mut self, m: &Menu) -> Result<()> {
        self.exec_unique(SAVE_MENU, params![m.id, m.store_id, m.name.as_str(), m.price, m.available], || {
            crate::domain::validate::menu_taken(m.store_id, &m.name)
        })?;
        self.cache.menus.clear();
        Ok(())
    }

    fn menu(&mut self, id: MenuId) -> Result<Option<Menu>> {
        self.one(MENU, [id], rows::menu)
    }

    fn menu_by_name(&mut self, store: StoreId, name: &str) -> Result<Option<Menu>> {
        self.kept(
            |c| &mut c.menus,
            (store, name.to_owned()),
            |repo| repo.one(MENU_BY_NAME, params![store, name], rows::menu),
        )
    }

    fn menus(&mut self, store: Option<StoreId>) -> Result<Vec<Menu>> {
        match store {
            Some(store) => self.all(MENUS_OF_STORE, [store], rows::menu),
            None => self.all(MENUS, [], rows::menu),
        }
    }

    fn save_rider(&mut self, r: &Rider) -> Result<()> {
        self.exec_unique(SAVE_RIDER, params![r.id, r.name.as_str()], || crate::domain::validate::rider_taken(&r.name))?;
        self.cache.riders.clear();
        Ok(())
    }

    fn rider(&mut self, id: RiderId) -> Result<Option<Rider>> {
        self.kept(|c| &mut c.riders, id, |repo| repo.one(RIDER, [id], rows::rider))
    }

    fn rider_by_name(&mut self, name: &str) -> Result<Option<Rider>> {
        self.one(RIDER_BY_NAME, [name], rows::rider)
    }

    fn riders(&mut self) -> Result<Vec<Rider>> {
        self.all(RIDERS, [], rows::rider)
    }

    fn least_busy_rider(&mut self) -> Result<Option<Rider>> {
        rows::least_busy_rider(|sql| self.one(sql, [], rows::rider))
    }

    fn insert_order(&mut self, o: &Order) -> Result<()> {
        self.exec(
            INSERT_ORDER,
            params![
                o.id,
                o.store_id,
                o.customer.as_str(),
                o.address.as_str(),
                o.total,
                o.status.as_str(),
                o.reviewed,
                time_text(&o.created_at),
                time_text(&o.updated_at),
                o.status.in_store_inbox(),
            ],
        )?;
        let mut stmt = self.conn.prepare_cached(INSERT_ORDER_ITEM)?;
        for (line, item) in o.items.iter().enumerate() {
            let line = i64::try_from(line).unwrap_or(i64::MAX);
            stmt.execute(params![o.id, line, item.menu_id, item.name.as_str(), item.unit_price, item.qty])?;
        }
        let order = Order { created_at: as_stored(o.created_at), updated_at: as_stored(o.updated_at), ..o.clone() };
        let row = OrderRow { order, ticket: None, delivery: None, inbox_holds: true, rider_holds: true };
        self.cache.orders.put(o.id, row);
        Ok(())
    }

    fn update_order(&mut self, o: &Order) -> Result<()> {
        let in_inbox = o.status.in_store_inbox();
        let Some(row) = self.cache.orders.get_mut(&o.id) else {
            // Not cached: written at once, the flag too (unless it is so).
            self.flush()?;
            let changed =
                self.exec(UPDATE_ORDER, params![o.id, o.status.as_str(), o.reviewed, time_text(&o.updated_at)])?;
            if changed == 0 {
                return Err(Error::storage(format!("cannot update order {}: it was never inserted", o.id)));
            }
            self.exec(rows::SET_INBOX, params![in_inbox, o.id])?;
            return Ok(());
        };
        // The flag follows the status: the cached row says whether it changes.
        let inbox_changes = !row.inbox_holds || row.order.status.in_store_inbox() != in_inbox;
        row.inbox_holds = true;
        row.order.status = o.status;
        row.order.reviewed = o.reviewed;
        row.order.updated_at = as_stored(o.updated_at);
        self.pend(o.id, |p| p.order(o, inbox_changes))
    }

    fn order(&mut self, id: OrderId) -> Result<Option<Order>> {
        Ok(self.order_row(id)?.map(|row| row.order.clone()))
    }

    fn store_inbox(&mut self, store: StoreId) -> Result<Vec<OrderId>> {
        self.all(rows::STORE_INBOX, [store], |row| rows::get(row, 0))
    }

    fn order_counts(&mut self) -> Result<Vec<(OrderStatus, u64)>> {
        rows::order_counts(self.all(ORDER_COUNTS, [], |row| Ok((rows::get(row, 0)?, rows::get(row, 1)?)))?)
    }

    fn save_payment(&mut self, p: &Payment) -> Result<()> {
        p.save(self)
    }

    fn payment(&mut self, id: PaymentId) -> Result<Option<Payment>> {
        self.one(PAYMENT_SQL.by_id, [id], Payment::from_row)
    }

    fn latest_payment(&mut self, order: OrderId) -> Result<Option<Payment>> {
        self.one(PAYMENT_SQL.latest, [order], Payment::from_row)
    }

    fn save_ticket(&mut self, t: &KitchenTicket) -> Result<()> {
        let saved = |done| crate::adapters::saved_on_order(done, "kitchen ticket", t.order_id, Some(t.store_id));
        let Some(row) = self.cache.orders.get_mut(&t.order_id) else {
            self.flush()?;
            let params = params![t.status.as_str(), time_text(&t.updated_at), t.order_id, t.store_id];
            return saved(self.exec(rows::SAVE_TICKET, params)? > 0);
        };
        // As `SAVE_TICKET`, which changes no row of another store's order.
        saved(row.order.store_id == t.store_id)?;
        row.ticket = Some(KitchenTicket { updated_at: as_stored(t.updated_at), ..t.clone() });
        self.pend(t.order_id, |p| p.ticket(t))
    }

    fn ticket(&mut self, order: OrderId) -> Result<Option<KitchenTicket>> {
        Ok(self.order_row(order)?.and_then(|row| row.ticket.clone()))
    }

    fn save_delivery(&mut self, d: &Delivery) -> Result<()> {
        let rider = rows::rider_columns(Some(d));
        let Some(row) = self.cache.orders.get_mut(&d.order_id) else {
            self.flush()?;
            let params = params![d.charge, d.status.as_str(), time_text(&d.updated_at), d.order_id];
            crate::adapters::saved_on_order(self.exec(rows::SAVE_DELIVERY, params)? > 0, "delivery", d.order_id, None)?;
            self.exec(rows::SET_RIDER, params![rider.0, rider.1, d.order_id])?;
            return Ok(());
        };
        // The rider's columns are set only when the cached row says they change.
        let rider_changes = !row.rider_holds || rows::rider_columns(row.delivery.as_ref()) != rider;
        row.rider_holds = true;
        row.delivery = Some(Delivery { updated_at: as_stored(d.updated_at), ..d.clone() });
        self.pend(d.order_id, |p| p.delivery(d, rider_changes.then_some(rider)))
    }

    fn delivery(&mut self, order: OrderId) -> Result<Option<Delivery>> {
        Ok(self.order_row(order)?.and_then(|row| row.delivery.clone()))
    }

    fn save_charge(&mut self, c: &Charge) -> Result<()> {
        c.save(self)?;
        let kept = self.cache.charges.get_mut(&c.order_id).and_then(|list| list.iter_mut().find(|k| k.id == c.id));
        match kept {
            Some(kept) => *kept = charge_as_stored(c),
            None => self.cache.charges.clear(),
        }
        Ok(())
    }

    fn charges(&mut self, order: OrderId) -> Result<Vec<Charge>> {
        let found = self.kept(
            |c| &mut c.charges,
            order,
            |repo| repo.all(CHARGE_SQL.of_order, [order], Charge::from_row).map(Some),
        )?;
        Ok(found.unwrap_or_default())
    }

    fn save_review(&mut self, r: &Review) -> Result<()> {
        self.exec(SAVE_REVIEW, params![r.order_id, r.store_id, r.customer, r.score, r.text, time_text(&r.created_at)])?;
        Ok(())
    }

    crate::adapters::calls::call_queues!();

    fn append_event(&mut self, id: &str, at: DateTime<Utc>, event: &Event) -> Result<i64> {
        let data = event.data_json();
        self.exec(APPEND_EVENT, params![id, event.type_name(), event.order_id(), time_text(&at), data])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn events(&mut self, after: i64, n: usize) -> Result<Vec<StoredEvent>> {
        self.all(EVENTS, params![after, limit(n)], rows::event)
    }

    fn events_numbered(&mut self, seqs: &[i64], after: i64) -> Result<Vec<StoredEvent>> {
        let mut events = Vec::with_capacity(seqs.len());
        // One writer at a time: the log's order is number order.
        for &seq in seqs.iter().filter(|&&seq| seq > after) {
            events.extend(self.one(EVENT, [seq], rows::event)?);
        }
        Ok(events)
    }

    fn checkpoint(&mut self, projector: &str) -> Result<i64> {
        let seq = self.conn.prepare_cached(CHECKPOINT)?.query_row([projector], |row| row.get(0)).optional()?;
        Ok(seq.unwrap_or(0))
    }

    fn set_checkpoint(&mut self, projector: &str, seq: i64) -> Result<()> {
        self.exec(SET_CHECKPOINT, params![projector, seq])?;
        Ok(())
    }

    fn view(&mut self, order: OrderId) -> Result<Option<OrderView>> {
        // Only what this connection wrote is cached: a command's next write
        // loads the view its last one saved.
        if let Some(view) = self.cache.views.get(&order) {
            return Ok(Some(view.clone()));
        }
        self.one(VIEW, [order], rows::view)
    }

    fn save_view(&mut self, view: &OrderView) -> Result<()> {
        let text = serde_json::to_string(view)
            .map_err(|e| Error::storage_caused(format!("cannot write the view of order {}: {e}", view.order_id), e))?;
        if self.exec(UPDATE_VIEW, params![view.order_id, view.customer.as_str(), text])? == 0 {
            self.exec(SAVE_VIEW, params![view.order_id, view.customer.as_str(), text])?;
        }
        self.cache.views.put(view.order_id, view.clone());
        Ok(())
    }

    fn customer_views(&mut self, customer: &str) -> Result<Vec<OrderView>> {
        self.all(CUSTOMER_VIEWS, [customer], rows::view)
    }

    fn clear_views(&mut self) -> Result<()> {
        self.cache.views.clear();
        self.exec(CLEAR_VIEWS, [])?;
        Ok(())
    }

    fn queue_message(&mut self, m: &Message, channels: &[&str]) -> Result<()> {
        let at = time_text(&m.at);
        let added = self.exec(
            QUEUE_MESSAGE,
            params![m.key, m.id, m.order_id, m.event.as_str(), m.status.as_str(), m.recipient.as_str(), m.text, at],
        )?;
        if added == 0 {
            return Ok(()); // queued before: left as it is
        }
        let mut stmt = self.conn.prepare_cached(QUEUE_DELIVERY)?;
        for channel in channels {
            stmt.execute(params![m.key, channel, DeliveryState::Pending.as_str(), at])?;
        }
        Ok(())
    }

    fn due_messages_except(&mut self, now: DateTime<Utc>, n: usize, channels: &[&str]) -> Result<Vec<QueuedMessage>> {
        // The channels left out, as a JSON array for `json_each`.
        let except = serde_json::to_string(channels)
            .map_err(|e| Error::storage_caused(format!("cannot write the channels to leave out: {e}"), e))?;
        let pending = DeliveryState::Pending.as_str();
        self.all(DUE_MESSAGES, params![pending, time_text(&now), limit(n), except], rows::queued)
    }

    fn dead_messages(&mut self, n: usize) -> Result<Vec<QueuedMessage>> {
        self.all(DEAD_MESSAGES, params![DeliveryState::Dead.as_str(), limit(n)], rows::queued)
    }

    fn purge_delivered_messages(&mut self, before: DateTime<Utc>) -> Result<usize> {
        // Their deliveries go with them (ON DELETE CASCADE).
        self.exec(PURGE_DELIVERED, params![time_text(&before), DeliveryState::Delivered.as_str()])
    }

    fn save_message_delivery(&mut self, d: &MessageDelivery) -> Result<()> {
        self.exec(
            SAVE_MESSAGE_DELIVERY,
            params![d.message_key, d.channel, d.state.as_str(), d.tries, time_text(&d.next_at), d.last_error],
        )?;
        Ok(())
    }

    fn claim_request(&mut self, scope: &str, key: &str, fingerprint: &str, at: DateTime<Utc>) -> Result<RequestClaim> {
        if self.exec(CLAIM_REQUEST, params![scope, key, fingerprint, time_text(&at)])? == 1 {
            return Ok(RequestClaim::New);
        }
        // Under the one write lock, the row that stopped the insert is still there.
        self.one(REQUEST, params![scope, key], |row| rows::request_claim(row, fingerprint))?
            .ok_or_else(|| Error::storage("an idempotency key vanished while it was claimed"))
    }

    fn finish_request(&mut self, scope: &str, key: &str, response: &StoredResponse) -> Result<bool> {
        Ok(self.exec(FINISH_REQUEST, params![scope, key, response.status, response.body])? > 0)
    }

    fn forget_request(&mut self, scope: &str, key: &str) -> Result<bool> {
        Ok(self.exec(FORGET_REQUEST, params![scope, key])? > 0)
    }

    fn purge_requests(&mut self, before: DateTime<Utc>) -> Result<usize> {
        self.exec(PURGE_REQUESTS, [time_text(&before)])
    }

    fn breaker(&mut self, name: &BreakerName) -> Result<Option<Breaker>> {
        // Kept when there is none too: a breaker is saved only once a call failed.
        let found = self.kept(
            |c| &mut c.breakers,
            name.clone(),
            |repo| repo.one(BREAKER, [name.as_str()], rows::breaker).map(Some),
        )?;
        Ok(found.flatten())
    }

    fn breakers(&mut self) -> Result<Vec<Breaker>> {
        self.all(BREAKERS, [], rows::breaker)
    }

    fn save_breaker(&mut self, b: &Breaker) -> Result<()> {
        let opened_at = b.opened_at.as_ref().map(time_text);
        self.exec(
            SAVE_BREAKER,
            params![b.name.as_str(), b.state.as_str(), b.failures, opened_at, time_text(&b.updated_at)],
        )?;
        self.cache.breakers.clear();
        Ok(())
    }
}

impl SqlRow for Row<'_> {
    fn int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }

    fn text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.get(i)?)
    }
}
