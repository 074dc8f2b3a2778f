//! [`Repo`] over one open SQLite transaction.
//!
//! Every statement goes through `prepare_cached`, so a hot command prepares
//! each of its statements once per connection. The SQL lives in constants
//! so that the tests can check every hot query's plan.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Params, Row};
use serde::de::DeserializeOwned;

use crate::domain::attempt::{Attempt, Claim};
use crate::domain::view::OrderView;
use crate::domain::{
    Breaker, Charge, ChargeStatus, Delivery, DeliveryStatus, Event, KitchenTicket, Menu, MenuId, Order, OrderId,
    OrderItem, OrderStatus, Payment, PaymentId, PaymentStatus, Review, Rider, RiderId, Store, StoreId,
};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::storage::{QueueStatus, Repo, StoredEvent, Table};
use crate::ports::Message;
use crate::{Error, Result};

/// The order statuses of a store owner's inbox: the domain's list, bound
/// to [`STORE_INBOX`]'s placeholders (as many as the list has: the
/// destructuring where it is bound fails to compile otherwise).
pub(super) const INBOX: [OrderStatus; 4] = OrderStatus::IN_STORE_INBOX;
/// The delivery statuses that keep a rider busy (the domain's list).
const BUSY: [DeliveryStatus; 2] = DeliveryStatus::KEEPS_RIDER_BUSY;

macro_rules! store_cols {
    () => {
        "id, name, owner, address, is_open, delivery_charge, review_count, review_sum"
    };
}
macro_rules! menu_cols {
    () => {
        "id, store_id, name, price, available"
    };
}
macro_rules! order_cols {
    () => {
        "id, store_id, customer, address, total, status, reviewed, created_at, updated_at"
    };
}
macro_rules! payment_cols {
    () => {
        "id, order_id, status, amount, card, gateway_ref, idempotency_key, tries, next_at, last_error, created_at, \
         updated_at, maybe_processed, claim_token, claimed_until, unsettled"
    };
}
macro_rules! charge_cols {
    () => {
        "id, order_id, rider_id, status, amount, gateway_ref, idempotency_key, tries, next_at, last_error, \
         created_at, updated_at, maybe_processed, claim_token, claimed_until, unsettled"
    };
}
macro_rules! queued_cols {
    () => {
        "m.id, m.order_id, m.event, m.status, m.recipient, m.text, m.at, d.channel, d.state, d.tries, d.next_at, \
         d.last_error"
    };
}

pub(super) const NEXT_STORE: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM stores";
pub(super) const NEXT_MENU: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM menus";
pub(super) const NEXT_RIDER: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM riders";
pub(super) const NEXT_ORDER: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM orders";
pub(super) const NEXT_PAYMENT: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM payments";
pub(super) const NEXT_CHARGE: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM charges";

const SAVE_STORE: &str = "INSERT INTO stores (id, name, owner, address, is_open, delivery_charge, review_count, \
     review_sum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
     owner = excluded.owner, address = excluded.address, is_open = excluded.is_open, \
     delivery_charge = excluded.delivery_charge, review_count = excluded.review_count, \
     review_sum = excluded.review_sum";
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
/// Every rider has to be looked at; each one's count is an index search.
pub(super) const LEAST_BUSY_RIDER: &str = "SELECT r.id, r.name FROM riders r ORDER BY (SELECT COUNT(*) FROM \
     deliveries d WHERE d.rider_id = r.id AND d.status IN (?1, ?2)), r.id LIMIT 1";

const INSERT_ORDER: &str =
    concat!("INSERT INTO orders (", order_cols!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
const INSERT_ORDER_ITEM: &str =
    "INSERT INTO order_items (order_id, line, menu_id, name, unit_price, qty) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const UPDATE_ORDER: &str = "UPDATE orders SET status = ?2, reviewed = ?3, updated_at = ?4 WHERE id = ?1";
pub(super) const ORDER: &str = concat!("SELECT ", order_cols!(), " FROM orders WHERE id = ?1");
pub(super) const ORDER_ITEMS: &str =
    "SELECT menu_id, name, unit_price, qty FROM order_items WHERE order_id = ?1 ORDER BY line";
pub(super) const STORE_INBOX: &str =
    "SELECT id FROM orders WHERE store_id = ?1 AND status IN (?2, ?3, ?4, ?5) ORDER BY id";

const SAVE_PAYMENT: &str = concat!(
    "INSERT INTO payments (",
    payment_cols!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT (id) DO UPDATE SET ",
    "order_id = excluded.order_id, status = excluded.status, amount = excluded.amount, card = excluded.card, ",
    "maybe_processed = excluded.maybe_processed, claim_token = excluded.claim_token, ",
    "claimed_until = excluded.claimed_until, unsettled = excluded.unsettled, ",
    "gateway_ref = excluded.gateway_ref, idempotency_key = excluded.idempotency_key, tries = excluded.tries, ",
    "next_at = excluded.next_at, last_error = excluded.last_error, created_at = excluded.created_at, ",
    "updated_at = excluded.updated_at"
);
pub(super) const PAYMENT: &str = concat!("SELECT ", payment_cols!(), " FROM payments WHERE id = ?1");
pub(super) const LATEST_PAYMENT: &str =
    concat!("SELECT ", payment_cols!(), " FROM payments WHERE order_id = ?1 ORDER BY id DESC LIMIT 1");
pub(super) const PAYMENTS_AWAITING: &str = concat!(
    "SELECT ",
    payment_cols!(),
    " FROM payments WHERE status IN (?1, ?2) AND (next_at IS NULL OR next_at <= ?3) ORDER BY id LIMIT ?4"
);

const SAVE_TICKET: &str = "INSERT INTO kitchen_tickets (order_id, store_id, status, updated_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (order_id) DO UPDATE SET store_id = excluded.store_id, \
     status = excluded.status, updated_at = excluded.updated_at";
pub(super) const TICKET: &str =
    "SELECT order_id, store_id, status, updated_at FROM kitchen_tickets WHERE order_id = ?1";

const SAVE_DELIVERY: &str = "INSERT INTO deliveries (order_id, rider_id, charge, status, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (order_id) DO UPDATE SET rider_id = excluded.rider_id, \
     charge = excluded.charge, status = excluded.status, updated_at = excluded.updated_at";
pub(super) const DELIVERY: &str =
    "SELECT order_id, rider_id, charge, status, updated_at FROM deliveries WHERE order_id = ?1";

const SAVE_CHARGE: &str = concat!(
    "INSERT INTO charges (",
    charge_cols!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT (id) DO UPDATE SET ",
    "order_id = excluded.order_id, rider_id = excluded.rider_id, status = excluded.status, ",
    "maybe_processed = excluded.maybe_processed, claim_token = excluded.claim_token, ",
    "claimed_until = excluded.claimed_until, unsettled = excluded.unsettled, ",
    "amount = excluded.amount, gateway_ref = excluded.gateway_ref, idempotency_key = excluded.idempotency_key, ",
    "tries = excluded.tries, next_at = excluded.next_at, last_error = excluded.last_error, ",
    "created_at = excluded.created_at, updated_at = excluded.updated_at"
);
pub(super) const CHARGES: &str = concat!("SELECT ", charge_cols!(), " FROM charges WHERE order_id = ?1 ORDER BY id");
const PAYMENTS_IN: &str = concat!("SELECT ", payment_cols!(), " FROM payments WHERE status = ?1 ORDER BY id LIMIT ?2");
const CHARGES_IN: &str = concat!("SELECT ", charge_cols!(), " FROM charges WHERE status = ?1 ORDER BY id LIMIT ?2");
pub(super) const CHARGES_AWAITING: &str = concat!(
    "SELECT ",
    charge_cols!(),
    " FROM charges WHERE status IN (?1, ?2) AND (next_at IS NULL OR next_at <= ?3) ORDER BY id LIMIT ?4"
);
/// How many payments wait for the gateway, and the earliest `next_at`
/// (`?3`, now, for one never tried).
const PAYMENTS_WAITING: &str = "SELECT count(*), min(coalesce(next_at, ?3)) FROM payments WHERE status IN (?1, ?2)";
/// The same for delivery charges.
const CHARGES_WAITING: &str = "SELECT count(*), min(coalesce(next_at, ?3)) FROM charges WHERE status IN (?1, ?2)";

const SAVE_REVIEW: &str = "INSERT INTO reviews (order_id, store_id, customer, score, text, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (order_id) DO UPDATE SET store_id = excluded.store_id, \
     customer = excluded.customer, score = excluded.score, text = excluded.text, created_at = excluded.created_at";

pub(super) const APPEND_EVENT: &str = "INSERT INTO events (id, type, order_id, at, data) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(super) const EVENTS: &str = "SELECT seq, id, type, at, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2";
pub(super) const EVENTS_OF_ORDER: &str =
    "SELECT seq, id, type, at, data FROM events WHERE order_id = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2";

pub(super) const CHECKPOINT: &str = "SELECT seq FROM checkpoints WHERE name = ?1";
const SET_CHECKPOINT: &str =
    "INSERT INTO checkpoints (name, seq) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq";

pub(super) const VIEW: &str = "SELECT view FROM mypage WHERE order_id = ?1";
const SAVE_VIEW: &str = "INSERT INTO mypage (order_id, customer, view) VALUES (?1, ?2, ?3) \
     ON CONFLICT (order_id) DO UPDATE SET customer = excluded.customer, view = excluded.view";
pub(super) const CUSTOMER_VIEWS: &str = "SELECT view FROM mypage WHERE customer = ?1 ORDER BY order_id";
const CLEAR_VIEWS: &str = "DELETE FROM mypage";

const QUEUE_MESSAGE: &str = "INSERT INTO messages (id, order_id, event, status, recipient, text, at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING";
const QUEUE_DELIVERY: &str = "INSERT INTO message_deliveries (message_id, channel, state, tries, next_at, \
     last_error) VALUES (?1, ?2, ?3, 0, ?4, NULL) ON CONFLICT (message_id, channel) DO NOTHING";
/// Oldest message first (so a customer hears of their order's events in
/// order, retries included), then by id and channel.
pub(super) const DUE_MESSAGES: &str = concat!(
    "SELECT ",
    queued_cols!(),
    " FROM message_deliveries d JOIN messages m ON m.id = d.message_id WHERE d.state = ?1 AND d.next_at <= ?2 ",
    "ORDER BY m.at, d.message_id, d.channel LIMIT ?3"
);
/// How many message deliveries wait, and the earliest `next_at`.
const MESSAGES_WAITING: &str = "SELECT count(*), min(next_at) FROM message_deliveries WHERE state = ?1";
/// By message time, then id and channel.
pub(super) const DEAD_MESSAGES: &str = concat!(
    "SELECT ",
    queued_cols!(),
    " FROM message_deliveries d JOIN messages m ON m.id = d.message_id WHERE d.state = ?1 ",
    "ORDER BY m.at, d.message_id, d.channel LIMIT ?2"
);
const SAVE_MESSAGE_DELIVERY: &str = "INSERT INTO message_deliveries (message_id, channel, state, tries, next_at, \
     last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (message_id, channel) DO UPDATE SET \
     state = excluded.state, tries = excluded.tries, next_at = excluded.next_at, last_error = excluded.last_error";

const BREAKER: &str = "SELECT name, state, failures, opened_at, updated_at FROM breakers WHERE name = ?1";
const BREAKERS: &str = "SELECT name, state, failures, opened_at, updated_at FROM breakers ORDER BY name";
const SAVE_BREAKER: &str = "INSERT INTO breakers (name, state, failures, opened_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET state = excluded.state, \
     failures = excluded.failures, opened_at = excluded.opened_at, updated_at = excluded.updated_at";

/// A time as stored: fixed-width RFC 3339 in UTC with microseconds
/// (`2024-05-01T12:00:00.000000Z`; anything finer is dropped), so that
/// comparing the strings compares the times. The same text as chrono's
/// `format("%Y-%m-%dT%H:%M:%S%.6fZ")`, through chrono's RFC 3339 writer,
/// which does not parse a format string on every call: 39 ns against
/// 297 ns (`cargo bench --bench primitives -- time/row`, BENCHMARKS.md).
pub(super) fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads a stored time: any RFC 3339 text, through chrono's RFC 3339 parser
/// (23 ns; its `FromStr`, 101 ns).
pub(super) fn parse_time(table: &str, column: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::storage(format!("{table}.{column} holds `{text}`, which is not a time: {e}")))
}

fn time_at(row: &Row, i: usize, table: &str, column: &str) -> Result<DateTime<Utc>> {
    let text: String = row.get(i)?;
    parse_time(table, column, &text)
}

fn opt_time_at(row: &Row, i: usize, table: &str, column: &str) -> Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(i)?;
    text.map(|t| parse_time(table, column, &t)).transpose()
}

fn status_at<T: FromStr<Err = String>>(row: &Row, i: usize, table: &str, column: &str) -> Result<T> {
    let text: String = row.get(i)?;
    text.parse().map_err(|e| Error::storage(format!("{table}.{column} holds `{text}`: {e}")))
}

fn int_at<T: TryFrom<i64>>(row: &Row, i: usize, table: &str, column: &str) -> Result<T> {
    let n: i64 = row.get(i)?;
    T::try_from(n).map_err(|_| Error::storage(format!("{table}.{column} holds {n}, which is out of range")))
}

fn json<T: DeserializeOwned>(table: &str, key: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::storage(format!("{table} {key} holds bad JSON: {e}")))
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn breaker_row(row: &Row) -> Result<Breaker> {
    Ok(Breaker {
        name: row.get(0)?,
        state: status_at(row, 1, "breakers", "state")?,
        failures: int_at(row, 2, "breakers", "failures")?,
        opened_at: opt_time_at(row, 3, "breakers", "opened_at")?,
        updated_at: time_at(row, 4, "breakers", "updated_at")?,
    })
}

fn store_row(row: &Row) -> Result<Store> {
    Ok(Store {
        id: row.get(0)?,
        name: row.get(1)?,
        owner: row.get(2)?,
        address: row.get(3)?,
        open: row.get(4)?,
        delivery_charge: row.get(5)?,
        review_count: row.get(6)?,
        review_sum: row.get(7)?,
    })
}

fn menu_row(row: &Row) -> Result<Menu> {
    Ok(Menu { id: row.get(0)?, store_id: row.get(1)?, name: row.get(2)?, price: row.get(3)?, available: row.get(4)? })
}

fn rider_row(row: &Row) -> Result<Rider> {
    Ok(Rider { id: row.get(0)?, name: row.get(1)? })
}

fn order_row(row: &Row) -> Result<Order> {
    Ok(Order {
        id: row.get(0)?,
        store_id: row.get(1)?,
        customer: row.get(2)?,
        address: row.get(3)?,
        items: Vec::new(),
        total: row.get(4)?,
        status: status_at(row, 5, "orders", "status")?,
        reviewed: row.get(6)?,
        created_at: time_at(row, 7, "orders", "created_at")?,
        updated_at: time_at(row, 8, "orders", "updated_at")?,
    })
}

fn item_row(row: &Row) -> Result<OrderItem> {
    Ok(OrderItem {
        menu_id: row.get(0)?,
        name: row.get(1)?,
        unit_price: row.get(2)?,
        qty: int_at(row, 3, "order_items", "qty")?,
    })
}

/// The attempt columns: four from `first` on, then `maybe_processed` at 12
/// and the claim and the count of unknown answers from 13 on (added by
/// later migrations, so they come last).
fn attempt_at(row: &Row, first: usize, table: &str) -> Result<Attempt> {
    let token: Option<String> = row.get(13)?;
    let until = opt_time_at(row, 14, table, "claimed_until")?;
    Ok(Attempt {
        idempotency_key: row.get(first)?,
        tries: int_at(row, first + 1, table, "tries")?,
        next_at: opt_time_at(row, first + 2, table, "next_at")?,
        last_error: row.get(first + 3)?,
        maybe_processed: row.get(12)?,
        unsettled: int_at(row, 15, table, "unsettled")?,
        claim: match (token, until) {
            (Some(token), Some(until)) => Some(Claim { token, until }),
            _ => None,
        },
    })
}

fn payment_row(row: &Row) -> Result<Payment> {
    Ok(Payment {
        id: row.get(0)?,
        order_id: row.get(1)?,
        status: status_at::<PaymentStatus>(row, 2, "payments", "status")?,
        amount: row.get(3)?,
        card: row.get(4)?,
        gateway_ref: row.get(5)?,
        attempt: attempt_at(row, 6, "payments")?,
        created_at: time_at(row, 10, "payments", "created_at")?,
        updated_at: time_at(row, 11, "payments", "updated_at")?,
    })
}

fn charge_row(row: &Row) -> Result<Charge> {
    Ok(Charge {
        id: row.get(0)?,
        order_id: row.get(1)?,
        rider_id: row.get(2)?,
        status: status_at::<ChargeStatus>(row, 3, "charges", "status")?,
        amount: row.get(4)?,
        gateway_ref: row.get(5)?,
        attempt: attempt_at(row, 6, "charges")?,
        created_at: time_at(row, 10, "charges", "created_at")?,
        updated_at: time_at(row, 11, "charges", "updated_at")?,
    })
}

fn ticket_row(row: &Row) -> Result<KitchenTicket> {
    Ok(KitchenTicket {
        order_id: row.get(0)?,
        store_id: row.get(1)?,
        status: status_at(row, 2, "kitchen_tickets", "status")?,
        updated_at: time_at(row, 3, "kitchen_tickets", "updated_at")?,
    })
}

fn delivery_row(row: &Row) -> Result<Delivery> {
    Ok(Delivery {
        order_id: row.get(0)?,
        rider_id: row.get(1)?,
        charge: row.get(2)?,
        status: status_at(row, 3, "deliveries", "status")?,
        updated_at: time_at(row, 4, "deliveries", "updated_at")?,
    })
}

fn event_row(row: &Row) -> Result<StoredEvent> {
    let seq: i64 = row.get(0)?;
    let kind: String = row.get(2)?;
    let data: String = row.get(4)?;
    let event = match Event::from_json_parts(&kind, &data) {
        Ok(event) => event,
        // Say whether the text is not JSON at all or the wrong JSON.
        Err(_) => {
            let value: serde_json::Value = json("events", &format!("seq {seq}"), &data)?;
            Event::from_parts(&kind, value)
                .map_err(|e| Error::storage(format!("events seq {seq} holds a bad `{kind}` event: {e}")))?
        }
    };
    Ok(StoredEvent { seq, id: row.get(1)?, at: time_at(row, 3, "events", "at")?, event })
}

fn view_row(row: &Row) -> Result<OrderView> {
    let text: String = row.get(0)?;
    json("mypage", "view", &text)
}

fn queued_row(row: &Row) -> Result<QueuedMessage> {
    let message = Message {
        id: row.get(0)?,
        order_id: row.get(1)?,
        event: row.get(2)?,
        status: row.get(3)?,
        recipient: row.get(4)?,
        text: row.get(5)?,
        at: time_at(row, 6, "messages", "at")?,
    };
    let delivery = MessageDelivery {
        message_id: message.id.clone(),
        channel: row.get(7)?,
        state: status_at::<DeliveryState>(row, 8, "message_deliveries", "state")?,
        tries: int_at(row, 9, "message_deliveries", "tries")?,
        next_at: time_at(row, 10, "message_deliveries", "next_at")?,
        last_error: row.get(11)?,
    };
    Ok(QueuedMessage { message, delivery })
}

/// A [`Repo`] over a connection that is inside a transaction
/// ([`super::SqliteStorage`] opens and closes it).
pub(super) struct SqliteRepo<'a> {
    conn: &'a Connection,
    views: &'a mut super::ViewCache,
}

impl<'a> SqliteRepo<'a> {
    /// A repo over `conn`, which the caller keeps inside a transaction.
    pub(super) fn new(conn: &'a Connection, views: &'a mut super::ViewCache) -> SqliteRepo<'a> {
        SqliteRepo { conn, views }
    }

    /// Runs a cached statement that changes rows; returns how many.
    fn exec(&self, sql: &str, params: impl Params) -> Result<usize> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)?)
    }

    /// The first row of a cached query, decoded by `decode`.
    fn one<T>(&self, sql: &str, params: impl Params, decode: impl FnMut(&Row) -> Result<T>) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query_and_then(params, decode)?;
        rows.next().transpose()
    }

    /// Every row of a cached query, decoded by `decode`.
    fn all<T>(&self, sql: &str, params: impl Params, decode: impl FnMut(&Row) -> Result<T>) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_and_then(params, decode)?;
        rows.collect()
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

    fn save_store(&mut self, s: &Store) -> Result<()> {
        self.exec(
            SAVE_STORE,
            params![s.id, s.name, s.owner, s.address, s.open, s.delivery_charge, s.review_count, s.review_sum],
        )?;
        Ok(())
    }

    fn store(&mut self, id: StoreId) -> Result<Option<Store>> {
        self.one(STORE, [id], store_row)
    }

    fn stores(&mut self) -> Result<Vec<Store>> {
        self.all(STORES, [], store_row)
    }

    fn save_menu(&mut self, m: &Menu) -> Result<()> {
        self.exec(SAVE_MENU, params![m.id, m.store_id, m.name, m.price, m.available])?;
        Ok(())
    }

    fn menu(&mut self, id: MenuId) -> Result<Option<Menu>> {
        self.one(MENU, [id], menu_row)
    }

    fn menu_by_name(&mut self, store: StoreId, name: &str) -> Result<Option<Menu>> {
        self.one(MENU_BY_NAME, params![store, name], menu_row)
    }

    fn menus(&mut self, store: Option<StoreId>) -> Result<Vec<Menu>> {
        match store {
            Some(store) => self.all(MENUS_OF_STORE, [store], menu_row),
            None => self.all(MENUS, [], menu_row),
        }
    }

    fn save_rider(&mut self, r: &Rider) -> Result<()> {
        self.exec(SAVE_RIDER, params![r.id, r.name])?;
        Ok(())
    }

    fn rider(&mut self, id: RiderId) -> Result<Option<Rider>> {
        self.one(RIDER, [id], rider_row)
    }

    fn rider_by_name(&mut self, name: &str) -> Result<Option<Rider>> {
        self.one(RIDER_BY_NAME, [name], rider_row)
    }

    fn riders(&mut self) -> Result<Vec<Rider>> {
        self.all(RIDERS, [], rider_row)
    }

    fn least_busy_rider(&mut self) -> Result<Option<Rider>> {
        self.one(LEAST_BUSY_RIDER, BUSY.map(DeliveryStatus::as_str), rider_row)
    }

    fn insert_order(&mut self, o: &Order) -> Result<()> {
        self.exec(
            INSERT_ORDER,
            params![
                o.id,
                o.store_id,
                o.customer,
                o.address,
                o.total,
                o.status.as_str(),
                o.reviewed,
                time_text(&o.created_at),
                time_text(&o.updated_at),
            ],
        )?;
        let mut stmt = self.conn.prepare_cached(INSERT_ORDER_ITEM)?;
        for (line, item) in o.items.iter().enumerate() {
            let line = i64::try_from(line).unwrap_or(i64::MAX);
            stmt.execute(params![o.id, line, item.menu_id, item.name, item.unit_price, item.qty])?;
        }
        Ok(())
    }

    fn update_order(&mut self, o: &Order) -> Result<()> {
        let changed =
            self.exec(UPDATE_ORDER, params![o.id, o.status.as_str(), o.reviewed, time_text(&o.updated_at)])?;
        if changed == 0 {
            return Err(Error::storage(format!("cannot update order {}: it was never inserted", o.id)));
        }
        Ok(())
    }

    fn order(&mut self, id: OrderId) -> Result<Option<Order>> {
        let Some(mut order) = self.one(ORDER, [id], order_row)? else { return Ok(None) };
        order.items = self.all(ORDER_ITEMS, [id], item_row)?;
        Ok(Some(order))
    }

    fn store_inbox(&mut self, store: StoreId) -> Result<Vec<OrderId>> {
        let [a, b, c, d] = INBOX.map(OrderStatus::as_str);
        self.all(STORE_INBOX, params![store, a, b, c, d], |row| Ok(row.get(0)?))
    }

    fn save_payment(&mut self, p: &Payment) -> Result<()> {
        self.exec(
            SAVE_PAYMENT,
            params![
                p.id,
                p.order_id,
                p.status.as_str(),
                p.amount,
                p.card,
                p.gateway_ref,
                p.attempt.idempotency_key,
                p.attempt.tries,
                p.attempt.next_at.as_ref().map(time_text),
                p.attempt.last_error,
                time_text(&p.created_at),
                time_text(&p.updated_at),
                p.attempt.maybe_processed,
                p.attempt.claim.as_ref().map(|c| c.token.as_str()),
                p.attempt.claim.as_ref().map(|c| time_text(&c.until)),
                p.attempt.unsettled,
            ],
        )?;
        Ok(())
    }

    fn payment(&mut self, id: PaymentId) -> Result<Option<Payment>> {
        self.one(PAYMENT, [id], payment_row)
    }

    fn latest_payment(&mut self, order: OrderId) -> Result<Option<Payment>> {
        self.one(LATEST_PAYMENT, [order], payment_row)
    }

    fn save_ticket(&mut self, t: &KitchenTicket) -> Result<()> {
        self.exec(SAVE_TICKET, params![t.order_id, t.store_id, t.status.as_str(), time_text(&t.updated_at)])?;
        Ok(())
    }

    fn ticket(&mut self, order: OrderId) -> Result<Option<KitchenTicket>> {
        self.one(TICKET, [order], ticket_row)
    }

    fn save_delivery(&mut self, d: &Delivery) -> Result<()> {
        self.exec(
            SAVE_DELIVERY,
            params![d.order_id, d.rider_id, d.charge, d.status.as_str(), time_text(&d.updated_at)],
        )?;
        Ok(())
    }

    fn delivery(&mut self, order: OrderId) -> Result<Option<Delivery>> {
        self.one(DELIVERY, [order], delivery_row)
    }

    fn save_charge(&mut self, c: &Charge) -> Result<()> {
        self.exec(
            SAVE_CHARGE,
            params![
                c.id,
                c.order_id,
                c.rider_id,
                c.status.as_str(),
                c.amount,
                c.gateway_ref,
                c.attempt.idempotency_key,
                c.attempt.tries,
                c.attempt.next_at.as_ref().map(time_text),
                c.attempt.last_error,
                time_text(&c.created_at),
                time_text(&c.updated_at),
                c.attempt.maybe_processed,
                c.attempt.claim.as_ref().map(|c| c.token.as_str()),
                c.attempt.claim.as_ref().map(|c| time_text(&c.until)),
                c.attempt.unsettled,
            ],
        )?;
        Ok(())
    }

    fn charges(&mut self, order: OrderId) -> Result<Vec<Charge>> {
        self.all(CHARGES, [order], charge_row)
    }

    fn save_review(&mut self, r: &Review) -> Result<()> {
        self.exec(SAVE_REVIEW, params![r.order_id, r.store_id, r.customer, r.score, r.text, time_text(&r.created_at)])?;
        Ok(())
    }

    fn payments_awaiting(&mut self, now: DateTime<Utc>, n: usize) -> Result<Vec<Payment>> {
        let (pending, refund) = (PaymentStatus::Pending.as_str(), PaymentStatus::RefundPending.as_str());
        self.all(PAYMENTS_AWAITING, params![pending, refund, time_text(&now), limit(n)], payment_row)
    }

    fn charges_awaiting(&mut self, now: DateTime<Utc>, n: usize) -> Result<Vec<Charge>> {
        let (pending, refund) = (ChargeStatus::Pending.as_str(), ChargeStatus::RefundPending.as_str());
        self.all(CHARGES_AWAITING, params![pending, refund, time_text(&now), limit(n)], charge_row)
    }

    fn payments_needing_attention(&mut self, n: usize) -> Result<Vec<Payment>> {
        self.all(PAYMENTS_IN, params![PaymentStatus::NeedsAttention.as_str(), limit(n)], payment_row)
    }

    fn charges_needing_attention(&mut self, n: usize) -> Result<Vec<Charge>> {
        self.all(CHARGES_IN, params![ChargeStatus::NeedsAttention.as_str(), limit(n)], charge_row)
    }

    fn queue_status(&mut self, now: DateTime<Utc>) -> Result<QueueStatus> {
        let now_text = time_text(&now);
        let waiting = |table: &'static str| {
            move |row: &Row| -> Result<(usize, Option<DateTime<Utc>>)> {
                Ok((int_at(row, 0, table, "count(*)")?, opt_time_at(row, 1, table, "next_at")?))
            }
        };
        let (pending, refund) = (PaymentStatus::Pending.as_str(), PaymentStatus::RefundPending.as_str());
        let payments = self.one(PAYMENTS_WAITING, params![pending, refund, now_text], waiting("payments"))?;
        let (pending, refund) = (ChargeStatus::Pending.as_str(), ChargeStatus::RefundPending.as_str());
        let charges = self.one(CHARGES_WAITING, params![pending, refund, now_text], waiting("charges"))?;
        let messages =
            self.one(MESSAGES_WAITING, params![DeliveryState::Pending.as_str()], waiting("message_deliveries"))?;
        let [payments, charges, messages] = [payments, charges, messages].map(Option::unwrap_or_default);
        Ok(QueueStatus {
            payments: payments.0,
            charges: charges.0,
            messages: messages.0,
            next_due: [payments.1, charges.1, messages.1].into_iter().flatten().min(),
        })
    }

    fn append_event(&mut self, id: &str, at: DateTime<Utc>, event: &Event) -> Result<i64> {
        let data = event.data_json();
        self.exec(APPEND_EVENT, params![id, event.type_name(), event.order_id(), time_text(&at), data])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn events(&mut self, after: i64, order: Option<OrderId>, n: usize) -> Result<Vec<StoredEvent>> {
        match order {
            Some(order) => self.all(EVENTS_OF_ORDER, params![after, limit(n), order], event_row),
            None => self.all(EVENTS, params![after, limit(n)], event_row),
        }
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
        if let Some(view) = self.views.get(order) {
            return Ok(Some(view));
        }
        self.one(VIEW, [order], view_row)
    }

    fn save_view(&mut self, view: &OrderView) -> Result<()> {
        let text = serde_json::to_string(view)
            .map_err(|e| Error::storage(format!("cannot write the view of order {}: {e}", view.order_id)))?;
        self.exec(SAVE_VIEW, params![view.order_id, view.customer, text])?;
        self.views.put(view.clone());
        Ok(())
    }

    fn customer_views(&mut self, customer: &str) -> Result<Vec<OrderView>> {
        self.all(CUSTOMER_VIEWS, [customer], view_row)
    }

    fn clear_views(&mut self) -> Result<()> {
        self.views.clear();
        self.exec(CLEAR_VIEWS, [])?;
        Ok(())
    }

    fn queue_message(&mut self, m: &Message, channels: &[&str]) -> Result<()> {
        let at = time_text(&m.at);
        let added = self.exec(QUEUE_MESSAGE, params![m.id, m.order_id, m.event, m.status, m.recipient, m.text, at])?;
        if added == 0 {
            return Ok(()); // queued before: left as it is
        }
        let mut stmt = self.conn.prepare_cached(QUEUE_DELIVERY)?;
        for channel in channels {
            stmt.execute(params![m.id, channel, DeliveryState::Pending.as_str(), at])?;
        }
        Ok(())
    }

    fn due_messages(&mut self, now: DateTime<Utc>, n: usize) -> Result<Vec<QueuedMessage>> {
        self.all(DUE_MESSAGES, params![DeliveryState::Pending.as_str(), time_text(&now), limit(n)], queued_row)
    }

    fn dead_messages(&mut self, n: usize) -> Result<Vec<QueuedMessage>> {
        self.all(DEAD_MESSAGES, params![DeliveryState::Dead.as_str(), limit(n)], queued_row)
    }

    fn save_message_delivery(&mut self, d: &MessageDelivery) -> Result<()> {
        self.exec(
            SAVE_MESSAGE_DELIVERY,
            params![d.message_id, d.channel, d.state.as_str(), d.tries, time_text(&d.next_at), d.last_error],
        )?;
        Ok(())
    }

    fn breaker(&mut self, name: &str) -> Result<Option<Breaker>> {
        self.one(BREAKER, [name], breaker_row)
    }

    fn breakers(&mut self) -> Result<Vec<Breaker>> {
        self.all(BREAKERS, [], breaker_row)
    }

    fn save_breaker(&mut self, b: &Breaker) -> Result<()> {
        let opened_at = b.opened_at.as_ref().map(time_text);
        self.exec(SAVE_BREAKER, params![b.name, b.state.as_str(), b.failures, opened_at, time_text(&b.updated_at)])?;
        Ok(())
    }
}
