//! What the two SQL storages share: the columns their queries read, in
//! the order they read them, and the decoding of a row into a record. The
//! tables are the same on SQLite and PostgreSQL, column for column and
//! value for value (integers, text, times as fixed-width RFC 3339 text,
//! flags as 0 or 1, JSON as text), so one decoder serves both; each
//! adapter only says how to read an integer or a text from its own row
//! type ([`SqlRow`]).

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;

use crate::domain::attempt::{Attempt, Claim};
use crate::domain::view::OrderView;
use crate::domain::SmolStr;
use crate::domain::{
    Breaker, Charge, Delivery, Event, KitchenTicket, Menu, Order, OrderItem, OrderStatus, Payment, Rider, RiderId,
    Store,
};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::requests::{RequestClaim, StoredResponse};
use crate::ports::storage::StoredEvent;
use crate::ports::Message;
use crate::{Error, Result};

/// A store's columns.
macro_rules! store_cols {
    () => {
        "id, name, owner, address, is_open, delivery_charge, review_count, review_sum"
    };
}
/// A menu's columns.
macro_rules! menu_cols {
    () => {
        "id, store_id, name, price, available"
    };
}
/// An order's columns (its items are read apart).
macro_rules! order_cols {
    () => {
        "id, store_id, customer, address, total, status, reviewed, created_at, updated_at"
    };
}
/// The columns of a gateway-call table, payments or charges, in the order
/// every query binds and reads them: all that the two share, then `$own`,
/// the one column of its own (the payment's card, the charge's rider).
macro_rules! call_cols {
    ($own:ident) => {
        concat!(
            "id, order_id, status, amount, gateway_ref, idempotency_key, tries, next_at, last_error, created_at, ",
            "updated_at, maybe_processed, claim_token, claimed_until, unsettled, gateway, ",
            stringify!($own)
        )
    };
}
/// The condition that a row of a gateway-call table may be settled
/// through the gateway named by parameter `$gateway`, `$pending` being the
/// status that takes money: `Attempt::goes_to` (and `CallRecord::goes_to`)
/// in SQL. A take that is not in doubt (never processed, no claim) may
/// go to any gateway.
macro_rules! goes_to {
    ($gateway:literal, $pending:literal) => {
        concat!(
            "(gateway IS NULL OR gateway = ",
            $gateway,
            " OR (status = ",
            $pending,
            " AND maybe_processed = 0 AND claim_token IS NULL))"
        )
    };
}

/// The migration that keeps an order's kitchen ticket and delivery in the
/// order's own row (SQLite's version 12, PostgreSQL's 5), one text for
/// both: `$int` is the storage's type of ids. A ticket's store is its
/// order's; a ticket or delivery never saved has a NULL status. The
/// riders' index holds only the orders that have a rider (the others are
/// never asked for).
macro_rules! ticket_and_delivery_in_the_order {
    ($int:literal) => {
        concat!(
            "ALTER TABLE orders ADD COLUMN kitchen_status TEXT;\n",
            "ALTER TABLE orders ADD COLUMN kitchen_updated_at TEXT;\n",
            "ALTER TABLE orders ADD COLUMN delivery_rider_id ",
            $int,
            " REFERENCES riders (id) DEFERRABLE INITIALLY DEFERRED;\n",
            "ALTER TABLE orders ADD COLUMN delivery_charge ",
            $int,
            ";\n",
            "ALTER TABLE orders ADD COLUMN delivery_status TEXT;\n",
            "ALTER TABLE orders ADD COLUMN delivery_updated_at TEXT;\n",
            "UPDATE orders SET kitchen_status = t.status, kitchen_updated_at = t.updated_at\n",
            "    FROM kitchen_tickets t WHERE t.order_id = orders.id;\n",
            "UPDATE orders SET delivery_rider_id = d.rider_id, delivery_charge = d.charge, delivery_status = d.status,\n",
            "                  delivery_updated_at = d.updated_at\n",
            "    FROM deliveries d WHERE d.order_id = orders.id;\n",
            "DROP TABLE kitchen_tickets;\n",
            "DROP TABLE deliveries;\n",
            "CREATE INDEX orders_rider ON orders (delivery_rider_id, delivery_status) ",
            "WHERE delivery_rider_id IS NOT NULL;\n"
        )
    };
}

/// The order statuses of a store owner's inbox as SQL literals: the
/// domain's `OrderStatus::IN_STORE_INBOX` (a test holds them to it), from
/// which [`flags_of_their_own!`] first sets `in_inbox`.
macro_rules! inbox_statuses {
    () => {
        "('paid', 'cooking', 'cooked', 'delivering')"
    };
}

/// The flags the orders' two busy indexes are on (SQLite's version 13,
/// PostgreSQL's 6): `in_inbox`, 1 while the order is in its store's inbox,
/// and `rider_busy`, 1 while its delivery keeps its rider busy. The indexes
/// used to be on the statuses, and SQLite rewrites an index entry at every
/// `UPDATE` that sets a column of its key or of its `WHERE`, changed or
/// not: a page at each of an order's five status changes in the inbox and
/// its delivery's three. A flag is set only when it changes ([`SET_INBOX`],
/// [`SET_RIDER`]): when the order enters the inbox and leaves it, when a
/// rider is given the delivery and is done with it. `$int` is the
/// storage's integer type.
macro_rules! flags_of_their_own {
    ($int:literal) => {
        concat!(
            "ALTER TABLE orders ADD COLUMN in_inbox ",
            $int,
            " NOT NULL DEFAULT 0;\n",
            "ALTER TABLE orders ADD COLUMN rider_busy ",
            $int,
            " NOT NULL DEFAULT 0;\n",
            "UPDATE orders SET in_inbox = 1 WHERE status IN ",
            $crate::adapters::rows::inbox_statuses!(),
            ";\n",
            "UPDATE orders SET rider_busy = 1 WHERE delivery_rider_id IS NOT NULL AND delivery_status IN ",
            $crate::adapters::rows::busy_statuses!(),
            ";\n",
            "DROP INDEX IF EXISTS orders_inbox;\n",
            "DROP INDEX IF EXISTS orders_store_status;\n",
            "DROP INDEX orders_rider;\n",
            "CREATE INDEX orders_inbox ON orders (store_id, id) WHERE in_inbox = 1;\n",
            "CREATE INDEX orders_rider ON orders (delivery_rider_id) WHERE rider_busy = 1;\n"
        )
    };
}

/// The delivery statuses that keep a rider busy as SQL literals: the
/// domain's `DeliveryStatus::KEEPS_RIDER_BUSY` (a test holds them to it),
/// from which [`flags_of_their_own!`] first sets `rider_busy`.
macro_rules! busy_statuses {
    () => {
        "('preparing', 'delivering')"
    };
}

/// Store `$1`'s inbox: its orders whose `in_inbox` is set, by id (only
/// those are in the partial index `orders_inbox`).
pub(crate) const STORE_INBOX: &str = "SELECT id FROM orders WHERE store_id = $1 AND in_inbox = 1 ORDER BY id";
/// Sets order `$2`'s `in_inbox` to `$1`, unless it is that already: an
/// `UPDATE` that sets it rewrites its index entry, changed or not.
pub(crate) const SET_INBOX: &str = "UPDATE orders SET in_inbox = $1 WHERE id = $2 AND in_inbox <> $1";

/// A queued message's columns (`m`) with one delivery's (`d`).
macro_rules! queued_cols {
    () => {
        "m.id, m.order_id, m.event, m.status, m.recipient, m.text, m.at, d.channel, d.state, d.tries, d.next_at, \
         d.last_error, m.key"
    };
}
pub(crate) use {
    busy_statuses, call_cols, flags_of_their_own, goes_to, inbox_statuses, menu_cols, order_cols, queued_cols,
    store_cols, ticket_and_delivery_in_the_order,
};

/// The statements of one gateway-call table: the payments' and the
/// charges' are made by [`call_sql!`] from one text, so they cannot drift
/// apart, and both storages run the same text: numbered parameters `$n`,
/// which SQLite reads as parameters named `$n` and numbers by their first
/// appearance, so every statement here names them in order.
pub(crate) struct CallSql {
    /// The table's name, for error messages.
    pub(crate) table: &'static str,
    /// The upsert of every column, bound in [`call_cols!`] order.
    pub(crate) save: &'static str,
    /// One record by id (`$1`).
    pub(crate) by_id: &'static str,
    /// An order's newest record (`$1`).
    pub(crate) latest: &'static str,
    /// An order's records, oldest first (`$1`).
    pub(crate) of_order: &'static str,
    /// Waiting (`$1` taking money, `$2` giving it back), due at `$3` or
    /// never tried, and that may go to gateway `$4` ([`goes_to!`]), by id,
    /// at most `$5`.
    pub(crate) awaiting: &'static str,
    /// In status `$1`, by id, at most `$2`.
    pub(crate) in_status: &'static str,
    /// Of those that wait (`$2` taking money, `$4` giving it back): how
    /// many may go to gateway `$1` ([`goes_to!`]), the earliest `next_at`
    /// among them (`$3`, now, for one never tried), and how many wait in
    /// all.
    pub(crate) waiting: &'static str,
}

/// The [`CallSql`] of table `$table`, whose own column is `$own`.
macro_rules! call_sql {
    ($table:literal, $own:ident) => {
        CallSql {
            table: $table,
            save: concat!(
                "INSERT INTO ",
                $table,
                " (",
                call_cols!($own),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ",
                // Not `order_id`: a payment's or charge's order never changes, and
                // SQLite rewrites the index entry of every column set.
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, ",
                "amount = excluded.amount, gateway_ref = excluded.gateway_ref, ",
                "idempotency_key = excluded.idempotency_key, tries = excluded.tries, next_at = excluded.next_at, ",
                "last_error = excluded.last_error, created_at = excluded.created_at, updated_at = excluded.updated_at, ",
                "maybe_processed = excluded.maybe_processed, claim_token = excluded.claim_token, ",
                "claimed_until = excluded.claimed_until, unsettled = excluded.unsettled, gateway = excluded.gateway, ",
                stringify!($own),
                " = excluded.",
                stringify!($own)
            ),
            by_id: concat!("SELECT ", call_cols!($own), " FROM ", $table, " WHERE id = $1"),
            latest: concat!("SELECT ", call_cols!($own), " FROM ", $table, " WHERE order_id = $1 ORDER BY id DESC LIMIT 1"),
            of_order: concat!("SELECT ", call_cols!($own), " FROM ", $table, " WHERE order_id = $1 ORDER BY id"),
            awaiting: concat!(
                "SELECT ",
                call_cols!($own),
                " FROM ",
                $table,
                " WHERE status IN ($1, $2) AND (next_at IS NULL OR next_at <= $3) AND ",
                goes_to!("$4", "$1"),
                " ORDER BY id LIMIT $5"
            ),
            in_status: concat!("SELECT ", call_cols!($own), " FROM ", $table, " WHERE status = $1 ORDER BY id LIMIT $2"),
            waiting: concat!(
                "SELECT count(*) FILTER (WHERE ",
                goes_to!("$1", "$2"),
                "), min(coalesce(next_at, $3)) FILTER (WHERE ",
                goes_to!("$1", "$2"),
                "), count(*) FROM ",
                $table,
                " WHERE status IN ($2, $4)"
            ),
        }
    };
}
pub(crate) use call_sql;

/// A row of a query, as far as decoding needs it: column `i` as an integer
/// or a text, `None` for NULL.
pub(crate) trait SqlRow {
    /// Column `i` as an integer (`None`: NULL).
    fn int(&self, i: usize) -> Result<Option<i64>>;
    /// Column `i` as a text (`None`: NULL).
    fn text(&self, i: usize) -> Result<Option<String>>;
}

/// Columns `from..` of `row`, read as a row of their own: one query
/// that reads several records (an order and its ticket, say) is decoded
/// by each record's decoder.
pub(crate) struct Columns<'a> {
    pub(crate) row: &'a dyn SqlRow,
    pub(crate) from: usize,
}

impl SqlRow for Columns<'_> {
    fn int(&self, i: usize) -> Result<Option<i64>> {
        self.row.int(self.from + i)
    }

    fn text(&self, i: usize) -> Result<Option<String>> {
        self.row.text(self.from + i)
    }
}

/// Column `i` of `row` as a `T`.
pub(crate) fn get<T: Column>(row: &dyn SqlRow, i: usize) -> Result<T> {
    T::read(row, i)
}

/// A value one column holds.
pub(crate) trait Column: Sized {
    /// Reads it from column `i` of `row`.
    fn read(row: &dyn SqlRow, i: usize) -> Result<Self>;
}

fn not_null<T>(value: Option<T>, i: usize) -> Result<T> {
    value.ok_or_else(|| Error::storage(format!("column {i} is NULL where a value must be")))
}

impl Column for i64 {
    fn read(row: &dyn SqlRow, i: usize) -> Result<i64> {
        not_null(row.int(i)?, i)
    }
}

impl Column for Arc<str> {
    fn read(row: &dyn SqlRow, i: usize) -> Result<Arc<str>> {
        String::read(row, i).map(Arc::from)
    }
}

impl Column for SmolStr {
    fn read(row: &dyn SqlRow, i: usize) -> Result<SmolStr> {
        String::read(row, i).map(SmolStr::from)
    }
}

impl Column for Option<i64> {
    fn read(row: &dyn SqlRow, i: usize) -> Result<Option<i64>> {
        row.int(i)
    }
}

impl Column for String {
    fn read(row: &dyn SqlRow, i: usize) -> Result<String> {
        not_null(row.text(i)?, i)
    }
}

impl Column for Option<String> {
    fn read(row: &dyn SqlRow, i: usize) -> Result<Option<String>> {
        row.text(i)
    }
}

/// A flag, stored as 0 or 1.
impl Column for bool {
    fn read(row: &dyn SqlRow, i: usize) -> Result<bool> {
        Ok(get::<i64>(row, i)? != 0)
    }
}

/// A time as stored: fixed-width RFC 3339 in UTC with microseconds
/// (`2024-05-01T12:00:00.000000Z`; anything finer is dropped), so that
/// comparing the strings compares the times. The same text as chrono's
/// `format("%Y-%m-%dT%H:%M:%S%.6fZ")`, through chrono's RFC 3339 writer,
/// which does not parse a format string on every call: 39 ns against
/// 297 ns (`cargo bench --bench primitives -- time/row`, BENCHMARKS.md).
pub(crate) fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads a stored time: any RFC 3339 text, through chrono's RFC 3339 parser
/// (23 ns; its `FromStr`, 101 ns).
pub(crate) fn parse_time(table: &str, column: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::storage_caused(format!("{table}.{column} holds `{text}`, which is not a time: {e}"), e))
}

/// The time in column `i`.
pub(crate) fn time_at(row: &dyn SqlRow, i: usize, table: &str, column: &str) -> Result<DateTime<Utc>> {
    parse_time(table, column, &get::<String>(row, i)?)
}

/// The time in column `i`, if any.
pub(crate) fn opt_time_at(row: &dyn SqlRow, i: usize, table: &str, column: &str) -> Result<Option<DateTime<Utc>>> {
    get::<Option<String>>(row, i)?.map(|t| parse_time(table, column, &t)).transpose()
}

/// The status (or any name) in column `i`.
pub(crate) fn status_at<T: FromStr<Err = String>>(row: &dyn SqlRow, i: usize, table: &str, column: &str) -> Result<T> {
    let text: String = get(row, i)?;
    text.parse().map_err(|e| Error::storage(format!("{table}.{column} holds `{text}`: {e}")))
}

/// The integer in column `i`, as a narrower type.
pub(crate) fn int_at<T: TryFrom<i64>>(row: &dyn SqlRow, i: usize, table: &str, column: &str) -> Result<T> {
    let n: i64 = get(row, i)?;
    T::try_from(n).map_err(|_| Error::storage(format!("{table}.{column} holds {n}, which is out of range")))
}

/// `text` read as JSON, or a storage error naming where it was.
pub(crate) fn json<T: DeserializeOwned>(table: &str, key: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::storage_caused(format!("{table} {key} holds bad JSON: {e}"), e))
}

/// A `LIMIT` of `n`.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row of how many wait and the earliest `next_at` of `table`.
pub(crate) fn waiting(row: &dyn SqlRow, table: &str) -> Result<(usize, Option<DateTime<Utc>>)> {
    Ok((int_at(row, 0, table, "count(*)")?, opt_time_at(row, 1, table, "next_at")?))
}

/// The columns a claim reads of a stored idempotency key.
macro_rules! request_cols {
    () => {
        "fingerprint, claimed_at, status, body"
    };
}
pub(crate) use request_cols;

/// What a stored key's row of [`request_cols!`] says to a claim with
/// `fingerprint`.
pub(crate) fn request_claim(row: &dyn SqlRow, fingerprint: &str) -> Result<RequestClaim> {
    let table = "idempotency_keys";
    let claimed: String = get(row, 0)?;
    let since = time_at(row, 1, table, "claimed_at")?;
    let status: Option<i64> = get(row, 2)?;
    let response = match status {
        None => None,
        Some(_) => Some(StoredResponse { status: int_at(row, 2, table, "status")?, body: get(row, 3)? }),
    };
    Ok(RequestClaim::of_stored(&claimed, since, response, fingerprint))
}

/// How many orders are in each status, from the rows of a `GROUP BY
/// status` (a status and its count): every status, in
/// [`OrderStatus::ALL`]'s order, zeros included.
pub(crate) fn order_counts(rows: Vec<(String, i64)>) -> Result<Vec<(OrderStatus, u64)>> {
    let mut counts: Vec<(OrderStatus, u64)> = OrderStatus::ALL.iter().map(|&s| (s, 0)).collect();
    for (text, n) in rows {
        let status: OrderStatus =
            text.parse().map_err(|e| Error::storage(format!("orders.status holds `{text}`: {e}")))?;
        let n = u64::try_from(n).map_err(|_| Error::storage(format!("a count of {n} orders `{text}`")))?;
        if let Some(entry) = counts.iter_mut().find(|(s, _)| *s == status) {
            entry.1 = n;
        }
    }
    Ok(counts)
}

/// A breaker's row.
pub(crate) fn breaker(row: &dyn SqlRow) -> Result<Breaker> {
    Ok(Breaker {
        name: status_at(row, 0, "breakers", "name")?,
        state: status_at(row, 1, "breakers", "state")?,
        failures: int_at(row, 2, "breakers", "failures")?,
        opened_at: opt_time_at(row, 3, "breakers", "opened_at")?,
        updated_at: time_at(row, 4, "breakers", "updated_at")?,
    })
}

/// A row of [`store_cols!`].
pub(crate) fn store(row: &dyn SqlRow) -> Result<Store> {
    Ok(Store {
        id: get(row, 0)?,
        name: get(row, 1)?,
        owner: get(row, 2)?,
        address: get(row, 3)?,
        open: get(row, 4)?,
        delivery_charge: get(row, 5)?,
        review_count: get(row, 6)?,
        review_sum: get(row, 7)?,
    })
}

/// A row of [`menu_cols!`].
pub(crate) fn menu(row: &dyn SqlRow) -> Result<Menu> {
    Ok(Menu {
        id: get(row, 0)?,
        store_id: get(row, 1)?,
        name: get(row, 2)?,
        price: get(row, 3)?,
        available: get(row, 4)?,
    })
}

/// The idle rider with the lowest id: no delivery of theirs keeps them busy
/// (`rider_busy`, [`SET_RIDER`]). Riders are read in id
/// order and the first idle one ends the search, so the query reads as
/// many riders as there are busy ones below it, not every rider.
pub(crate) const IDLE_RIDER: &str = "SELECT r.id, r.name FROM riders r WHERE NOT EXISTS (SELECT 1 FROM orders o \
     WHERE o.delivery_rider_id = r.id AND o.rider_busy = 1) ORDER BY r.id LIMIT 1";

/// The rider with the fewest deliveries that keep them busy, the lowest id
/// among equals. It counts every rider's, so [`least_busy_rider`] asks
/// it only when [`IDLE_RIDER`] finds nobody.
pub(crate) const LEAST_BUSY_RIDER: &str = "SELECT r.id, r.name FROM riders r ORDER BY (SELECT count(*) FROM \
     orders o WHERE o.delivery_rider_id = r.id AND o.rider_busy = 1), r.id LIMIT 1";

/// The least busy rider as [`Repo::least_busy_rider`](crate::ports::storage::Repo::least_busy_rider)
/// defines it, for an adapter that runs a query given its SQL ([`IDLE_RIDER`]
/// first, [`LEAST_BUSY_RIDER`] only when nobody is idle).
pub(crate) fn least_busy_rider(mut ask: impl FnMut(&'static str) -> Result<Option<Rider>>) -> Result<Option<Rider>> {
    match ask(IDLE_RIDER)? {
        Some(idle) => Ok(Some(idle)),
        None => ask(LEAST_BUSY_RIDER),
    }
}

/// A rider's row (`id, name`).
pub(crate) fn rider(row: &dyn SqlRow) -> Result<Rider> {
    Ok(Rider { id: get(row, 0)?, name: get(row, 1)? })
}

/// A row of [`order_cols!`], without its items.
pub(crate) fn order(row: &dyn SqlRow) -> Result<Order> {
    Ok(Order {
        id: get(row, 0)?,
        store_id: get(row, 1)?,
        customer: get(row, 2)?,
        address: get(row, 3)?,
        items: Arc::from([]),
        total: get(row, 4)?,
        status: status_at(row, 5, "orders", "status")?,
        reviewed: get(row, 6)?,
        created_at: time_at(row, 7, "orders", "created_at")?,
        updated_at: time_at(row, 8, "orders", "updated_at")?,
    })
}

/// An order item's row (`menu_id, name, unit_price, qty`).
pub(crate) fn item(row: &dyn SqlRow) -> Result<OrderItem> {
    Ok(OrderItem {
        menu_id: get(row, 0)?,
        name: get(row, 1)?,
        unit_price: get(row, 2)?,
        qty: int_at(row, 3, "order_items", "qty")?,
    })
}

/// Decodes a row of [`call_cols!`] of `$table` into a `$record`, whose
/// own column is `$own`: payments and charges name their shared fields
/// alike, so one text reads both.
macro_rules! call_row {
    ($name:ident, $record:ident, $table:literal, $own:ident) => {
        #[doc = concat!("A row of [`call_cols!`] of `", $table, "`.")]
        pub(crate) fn $name(row: &dyn SqlRow) -> Result<$record> {
            let token: Option<String> = get(row, 12)?;
            let until = opt_time_at(row, 13, $table, "claimed_until")?;
            let attempt = Attempt {
                idempotency_key: get(row, 5)?,
                tries: int_at(row, 6, $table, "tries")?,
                next_at: opt_time_at(row, 7, $table, "next_at")?,
                last_error: get(row, 8)?,
                maybe_processed: get(row, 11)?,
                unsettled: int_at(row, 14, $table, "unsettled")?,
                claim: match (token, until) {
                    (Some(token), Some(until)) => Some(Claim { token: token.into(), until }),
                    _ => None,
                },
                gateway: get::<Option<String>>(row, 15)?.map(Arc::from),
            };
            Ok($record {
                id: get(row, 0)?,
                order_id: get(row, 1)?,
                status: status_at(row, 2, $table, "status")?,
                amount: get(row, 3)?,
                gateway_ref: get(row, 4)?,
                attempt,
                created_at: time_at(row, 9, $table, "created_at")?,
                updated_at: time_at(row, 10, $table, "updated_at")?,
                $own: get(row, 16)?,
            })
        }
    };
}

call_row!(payment, Payment, "payments", card);
call_row!(charge, Charge, "charges", rider_id);

/// Saves a kitchen ticket (`$1` status, `$2` updated, `$3` order, `$4` its
/// store: SQLite numbers the parameters as they first appear): a ticket
/// is its order's `kitchen_` columns (SQLite schema 12, PostgreSQL 5), so
/// it changes no row when its order is not there (or is another store's).
pub(crate) const SAVE_TICKET: &str =
    "UPDATE orders SET kitchen_status = $1, kitchen_updated_at = $2 WHERE id = $3 AND store_id = $4";
/// Saves order `$4`'s delivery but for its rider (`$1` charge, `$2`
/// status, `$3` updated): its order's `delivery_` columns, as
/// [`SAVE_TICKET`]; [`SET_RIDER`] saves the rider.
pub(crate) const SAVE_DELIVERY: &str = "UPDATE orders SET delivery_charge = $1, delivery_status = $2, \
     delivery_updated_at = $3 WHERE id = $4";
/// Sets order `$3`'s delivery rider to `$1` and `rider_busy` to `$2`,
/// unless they are that already: setting them rewrites their index entry
/// (`orders_rider`), changed or not. (No rider compares as rider 0, which
/// no rider is: `IS DISTINCT FROM` needs SQLite 3.39. The cast tells
/// PostgreSQL the parameter's type, which `coalesce` with `0` would make
/// `int4`.)
pub(crate) const SET_RIDER: &str = "UPDATE orders SET delivery_rider_id = $1, rider_busy = $2 WHERE id = $3 \
     AND (coalesce(delivery_rider_id, 0) <> coalesce(CAST($1 AS BIGINT), 0) OR rider_busy <> $2)";
/// The values of [`SET_RIDER`]'s columns, `delivery_rider_id` and
/// `rider_busy`, for an order's delivery (`None`: the order has none).
pub(crate) fn rider_columns(delivery: Option<&Delivery>) -> (Option<RiderId>, bool) {
    delivery.map_or((None, false), |d| (d.rider_id, d.busy_rider().is_some()))
}

/// A kitchen ticket's row (`order_id, store_id, status, updated_at`).
pub(crate) fn ticket(row: &dyn SqlRow) -> Result<KitchenTicket> {
    Ok(KitchenTicket {
        order_id: get(row, 0)?,
        store_id: get(row, 1)?,
        status: status_at(row, 2, "orders", "kitchen_status")?,
        updated_at: time_at(row, 3, "orders", "kitchen_updated_at")?,
    })
}

/// A delivery's row (`order_id, rider_id, charge, status, updated_at`).
pub(crate) fn delivery(row: &dyn SqlRow) -> Result<Delivery> {
    Ok(Delivery {
        order_id: get(row, 0)?,
        rider_id: get(row, 1)?,
        charge: get(row, 2)?,
        status: status_at(row, 3, "orders", "delivery_status")?,
        updated_at: time_at(row, 4, "orders", "delivery_updated_at")?,
    })
}

/// An event's row (`seq, id, type, at, data`).
pub(crate) fn event(row: &dyn SqlRow) -> Result<StoredEvent> {
    let seq: i64 = get(row, 0)?;
    let kind: String = get(row, 2)?;
    let data: String = get(row, 4)?;
    let event = match Event::from_json_parts(&kind, &data) {
        Ok(event) => event,
        // Say whether the text is not JSON at all or the wrong JSON.
        Err(_) => {
            let value: serde_json::Value = json("events", &format!("seq {seq}"), &data)?;
            Event::from_parts(&kind, value)
                .map_err(|e| Error::storage_caused(format!("events seq {seq} holds a bad `{kind}` event: {e}"), e))?
        }
    };
    Ok(StoredEvent { seq, id: get(row, 1)?, at: time_at(row, 3, "events", "at")?, event })
}

/// A mypage row (`view`).
pub(crate) fn view(row: &dyn SqlRow) -> Result<OrderView> {
    json("mypage", "view", &get::<String>(row, 0)?)
}

/// A row of [`queued_cols!`].
pub(crate) fn queued(row: &dyn SqlRow) -> Result<QueuedMessage> {
    let message = Message {
        id: get(row, 0)?,
        order_id: get(row, 1)?,
        event: status_at(row, 2, "messages", "event")?,
        status: status_at(row, 3, "messages", "status")?,
        recipient: get(row, 4)?,
        text: get(row, 5)?,
        at: time_at(row, 6, "messages", "at")?,
        key: get(row, 12)?,
    };
    let delivery = MessageDelivery {
        message_id: message.id.clone(),
        message_key: message.key,
        channel: get(row, 7)?,
        state: status_at::<DeliveryState>(row, 8, "message_deliveries", "state")?,
        tries: int_at(row, 9, "message_deliveries", "tries")?,
        next_at: time_at(row, 10, "message_deliveries", "next_at")?,
        last_error: get(row, 11)?,
    };
    Ok(QueuedMessage { message, delivery })
}
