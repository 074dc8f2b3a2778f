//! The schema as versioned migrations, tracked with `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up; a database
//! at version `n` has had the first `n` scripts applied. Never edit a script
//! that has shipped: append a new one.
//!
//! The SQL stays close to what PostgreSQL accepts too: plain `INTEGER` and
//! `TEXT` columns, times as fixed-width RFC 3339 UTC text, booleans as 0/1,
//! foreign keys `DEFERRABLE INITIALLY DEFERRED` (checked at commit, so a unit
//! of work may save records in any order), `ON CONFLICT` upserts. The event log's
//! sequence number is its integer key: up to version 6 with
//! `AUTOINCREMENT`, since version 7 without (see [`V7`]).

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::{Error, Result};

/// Version 1: stores, menus, riders, orders, payments, kitchen tickets, deliveries,
/// charges, reviews, the event log, checkpoints, mypage, the outbox and breakers.
const V1: &str = "
CREATE TABLE stores (
    id              INTEGER NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    is_open         INTEGER NOT NULL,
    delivery_charge INTEGER NOT NULL,
    review_count    INTEGER NOT NULL,
    review_sum      INTEGER NOT NULL
);

CREATE TABLE menus (
    id        INTEGER NOT NULL PRIMARY KEY,
    store_id  INTEGER NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
    name      TEXT    NOT NULL,
    price     INTEGER NOT NULL,
    available INTEGER NOT NULL,
    UNIQUE (store_id, name)
);

CREATE TABLE riders (
    id   INTEGER NOT NULL PRIMARY KEY,
    name TEXT    NOT NULL
);
CREATE INDEX riders_name ON riders (name, id);

CREATE TABLE orders (
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
CREATE INDEX orders_store_status ON orders (store_id, status);

CREATE TABLE order_items (
    order_id   INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    line       INTEGER NOT NULL,
    menu_id    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    unit_price INTEGER NOT NULL,
    qty        INTEGER NOT NULL,
    PRIMARY KEY (order_id, line)
);

CREATE TABLE payments (
    id              INTEGER NOT NULL PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    status          TEXT    NOT NULL,
    amount          INTEGER NOT NULL,
    card            TEXT,
    gateway_ref     TEXT,
    idempotency_key TEXT    NOT NULL,
    tries           INTEGER NOT NULL,
    next_at         TEXT,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_due ON payments (status, next_at);

CREATE TABLE kitchen_tickets (
    order_id   INTEGER NOT NULL PRIMARY KEY REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    store_id   INTEGER NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
    status     TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);

CREATE TABLE deliveries (
    order_id   INTEGER NOT NULL PRIMARY KEY REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    rider_id   INTEGER REFERENCES riders (id) DEFERRABLE INITIALLY DEFERRED,
    charge     INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE INDEX deliveries_rider_status ON deliveries (rider_id, status);

CREATE TABLE charges (
    id              INTEGER NOT NULL PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    rider_id        INTEGER NOT NULL REFERENCES riders (id) DEFERRABLE INITIALLY DEFERRED,
    status          TEXT    NOT NULL,
    amount          INTEGER NOT NULL,
    gateway_ref     TEXT,
    idempotency_key TEXT    NOT NULL,
    tries           INTEGER NOT NULL,
    next_at         TEXT,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX charges_order ON charges (order_id);
CREATE INDEX charges_due ON charges (status, next_at);

CREATE TABLE reviews (
    order_id   INTEGER NOT NULL PRIMARY KEY REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    store_id   INTEGER NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
    customer   TEXT    NOT NULL,
    score      INTEGER NOT NULL,
    text       TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

CREATE TABLE events (
    seq      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id       TEXT    NOT NULL UNIQUE,
    type     TEXT    NOT NULL,
    order_id INTEGER,
    at       TEXT    NOT NULL,
    data     TEXT    NOT NULL
);
CREATE INDEX events_order ON events (order_id, seq);

CREATE TABLE checkpoints (
    name TEXT    NOT NULL PRIMARY KEY,
    seq  INTEGER NOT NULL
);

CREATE TABLE mypage (
    order_id INTEGER NOT NULL PRIMARY KEY,
    customer TEXT    NOT NULL,
    view     TEXT    NOT NULL
);
CREATE INDEX mypage_customer ON mypage (customer, order_id);

CREATE TABLE messages (
    id        TEXT    NOT NULL PRIMARY KEY,
    order_id  INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    status    TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    at        TEXT    NOT NULL
);

CREATE TABLE message_deliveries (
    message_id TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    channel    TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    tries      INTEGER NOT NULL,
    next_at    TEXT    NOT NULL,
    last_error TEXT,
    PRIMARY KEY (message_id, channel)
);
CREATE INDEX message_deliveries_due ON message_deliveries (state, next_at);

CREATE TABLE breakers (
    name       TEXT    NOT NULL PRIMARY KEY,
    state      TEXT    NOT NULL,
    failures   INTEGER NOT NULL,
    opened_at  TEXT,
    updated_at TEXT    NOT NULL
);
";

/// Whether the gateway may have acted on a payment's or charge's current
/// call without our knowing the answer (see `Attempt::maybe_processed`).
/// Rows from before it are taken as "maybe": the safe side.
const V2: &str = "
ALTER TABLE payments ADD COLUMN maybe_processed INTEGER NOT NULL DEFAULT 1;
ALTER TABLE charges ADD COLUMN maybe_processed INTEGER NOT NULL DEFAULT 1;
";

/// Claims on gateway calls (see `domain::attempt`): the holder's token and
/// the end of its lease, and how many answers in a row left the outcome
/// unknown (`needs_attention` after too many).
const V3: &str = "
ALTER TABLE payments ADD COLUMN claim_token TEXT;
ALTER TABLE payments ADD COLUMN claimed_until TEXT;
ALTER TABLE payments ADD COLUMN unsettled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE charges ADD COLUMN claim_token TEXT;
ALTER TABLE charges ADD COLUMN claimed_until TEXT;
ALTER TABLE charges ADD COLUMN unsettled INTEGER NOT NULL DEFAULT 0;
";

/// The event log carries every refund requested: no SQL, the step is
/// Rust (`upgrade.rs`), run after this empty script.
const V4: &str = "";

/// Riders' names are unique by a constraint, not only by the check before
/// an insert: on a storage with several writers two inserts may race, and
/// the constraint turns the loser into invalid input. (A database written
/// by an older version cannot hold two riders of one name: their one
/// writer checked first.)
const V5: &str = "
CREATE UNIQUE INDEX riders_name_unique ON riders (name);
DROP INDEX riders_name;
";

/// Idempotency keys of requests (`ports::requests`), one per sender
/// (`scope`) and key: the primary key is what makes a claim race-free on
/// every storage. `status` and `body` stay NULL until the request
/// finishes; `claimed_at` is what a purge goes by.
const V6: &str = "
CREATE TABLE idempotency_keys (
    scope           TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    claimed_at      TEXT    NOT NULL,
    status          INTEGER,
    body            TEXT,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_claimed ON idempotency_keys (claimed_at);
";

/// The event log without `AUTOINCREMENT` (issue 12, "Write less per
/// order"): it made every append also rewrite SQLite's `sqlite_sequence`
/// page, one WAL frame per write transaction. The log is rebuilt with the
/// same rows, the same `seq` of each; `seq` is still the row's integer
/// key, which SQLite fills with one more than the largest stored, and the
/// adapter appends only under the one write lock and never deletes an
/// event, so sequence numbers stay unique and increasing. The unique index
/// on the event id gets a name of its own. (Dropping the old table drops
/// its `sqlite_sequence` row too.)
const V7: &str = "
CREATE TABLE events_v7 (
    seq      INTEGER NOT NULL PRIMARY KEY,
    id       TEXT    NOT NULL,
    type     TEXT    NOT NULL,
    order_id INTEGER,
    at       TEXT    NOT NULL,
    data     TEXT    NOT NULL
);
INSERT INTO events_v7 (seq, id, type, order_id, at, data)
    SELECT seq, id, type, order_id, at, data FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_v7 RENAME TO events;
CREATE UNIQUE INDEX events_id ON events (id);
CREATE INDEX events_order ON events (order_id, seq);
";

/// Fewer b-trees written per order (issue 12, "Write less per order"):
/// every b-tree a transaction touches costs at least one WAL frame (a
/// whole page), and `benches/wal_floor.rs` counts them by table.
///
/// - **The outbox and the order items keyed in their own b-tree**
///   (`WITHOUT ROWID`): a rowid table with a text or composite primary key
///   is two b-trees, the rows and the key's index, so each queued message
///   wrote two pages. `messages` and `message_deliveries` are rebuilt
///   together, children first, so no `ON DELETE CASCADE` fires: the new
///   deliveries reference the new messages before the old tables go, and
///   the rename carries the reference over.
/// - **The store inbox's index holds only the orders in it**: the index
///   on `(store_id, status)` moved its entry to another place in the
///   b-tree on every status change (two pages, eight frames a lifecycle);
///   the partial index on `(store_id, id, status)` of the inbox statuses
///   (`OrderStatus::IN_STORE_INBOX`) rewrites one entry in place (the
///   status last in the key: the query reads no row), and none before
///   payment or once the order is finished. Counting orders by
///   status (`/metrics`) reads the table instead.
/// - **No unique index on the event id** (one page per transaction): ids
///   are version-7 UUIDs with 74 bits drawn at random per engine
///   (`app::event_ids`), unique without a b-tree to prove it, as UUIDs are
///   everywhere else; the sequence number stays the log's key.
const V8: &str = "
CREATE TABLE messages_v8 (
    id        TEXT    NOT NULL PRIMARY KEY,
    order_id  INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    status    TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    at        TEXT    NOT NULL
) WITHOUT ROWID;
INSERT INTO messages_v8 (id, order_id, event, status, recipient, text, at)
    SELECT id, order_id, event, status, recipient, text, at FROM messages;
CREATE TABLE message_deliveries_v8 (
    message_id TEXT    NOT NULL REFERENCES messages_v8 (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    channel    TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    tries      INTEGER NOT NULL,
    next_at    TEXT    NOT NULL,
    last_error TEXT,
    PRIMARY KEY (message_id, channel)
) WITHOUT ROWID;
INSERT INTO message_deliveries_v8 (message_id, channel, state, tries, next_at, last_error)
    SELECT message_id, channel, state, tries, next_at, last_error FROM message_deliveries;
DROP TABLE message_deliveries;
DROP TABLE messages;
ALTER TABLE messages_v8 RENAME TO messages;
ALTER TABLE message_deliveries_v8 RENAME TO message_deliveries;
CREATE INDEX message_deliveries_due ON message_deliveries (state, next_at);

CREATE TABLE order_items_v8 (
    order_id   INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    line       INTEGER NOT NULL,
    menu_id    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    unit_price INTEGER NOT NULL,
    qty        INTEGER NOT NULL,
    PRIMARY KEY (order_id, line)
) WITHOUT ROWID;
INSERT INTO order_items_v8 (order_id, line, menu_id, name, unit_price, qty)
    SELECT order_id, line, menu_id, name, unit_price, qty FROM order_items;
DROP TABLE order_items;
ALTER TABLE order_items_v8 RENAME TO order_items;

DROP INDEX orders_store_status;
CREATE INDEX orders_inbox ON orders (store_id, id, status) WHERE status IN ('paid', 'cooking', 'cooked', 'delivering');

DROP INDEX events_id;
";

/// No index of the event log by order (issue 12, "Write less per order"):
/// every event wrote a page of it, seven or eight a lifecycle. One order's
/// events are read by number from its view's timeline instead
/// (`Engine::events`), which each unit of work keeps in the same
/// transaction as the log.
const V9: &str = "
DROP INDEX IF EXISTS events_order;
";

/// The outbox keyed by an integer that grows with the log (issue 12,
/// "Write less per order"): `messages` was keyed by its text id in a
/// `WITHOUT ROWID` b-tree, where an append that fills a leaf rebalances
/// three siblings and their parent; a rowid table's append adds one leaf.
/// 13.5 WAL frames a lifecycle became 6.9. The key is the event's sequence
/// number × 4 + the recipient's place (`Message::key_of`), one to one with
/// the text id, which stays as a plain column; `message_deliveries` refers
/// to the key. Messages queued before get their key from their event,
/// found by its id through an index that lives only during the migration
/// (a message whose event or recipient is not found gets a negative key,
/// which no new message can take).
const V10: &str = "
CREATE INDEX events_id_v10 ON events (id);
CREATE TABLE messages_v10 (
    key       INTEGER NOT NULL PRIMARY KEY,
    id        TEXT    NOT NULL,
    order_id  INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    status    TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    at        TEXT    NOT NULL
);
INSERT INTO messages_v10 (key, id, order_id, event, status, recipient, text, at)
    SELECT coalesce(
               (SELECT e.seq FROM events e WHERE e.id = substr(m.id, 1, instr(m.id, ':') - 1)) * 4
                   + CASE substr(m.id, instr(m.id, ':') + 1)
                         WHEN 'customer' THEN 0 WHEN 'owner' THEN 1 WHEN 'rider' THEN 2 END,
               -row_number() OVER (ORDER BY m.id)),
           m.id, m.order_id, m.event, m.status, m.recipient, m.text, m.at
    FROM messages m;
CREATE INDEX messages_v10_id ON messages_v10 (id);
CREATE TABLE message_deliveries_v10 (
    message_key INTEGER NOT NULL REFERENCES messages_v10 (key) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    channel     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    tries       INTEGER NOT NULL,
    next_at     TEXT    NOT NULL,
    last_error  TEXT,
    PRIMARY KEY (message_key, channel)
) WITHOUT ROWID;
INSERT INTO message_deliveries_v10 (message_key, channel, state, tries, next_at, last_error)
    SELECT m.key, d.channel, d.state, d.tries, d.next_at, d.last_error
    FROM message_deliveries d JOIN messages_v10 m ON m.id = d.message_id;
DROP TABLE message_deliveries;
DROP TABLE messages;
DROP INDEX messages_v10_id;
DROP INDEX events_id_v10;
ALTER TABLE messages_v10 RENAME TO messages;
ALTER TABLE message_deliveries_v10 RENAME TO message_deliveries;
CREATE INDEX message_deliveries_due ON message_deliveries (state, next_at);
";

/// The gateway each payment and charge went to, by name
/// (`PaymentGateway::name`; `Attempt::gateway`): only that gateway may
/// settle it. Rows from before are NULL, and go to the next gateway that
/// claims them, as they did before.
const V11: &str = "
ALTER TABLE payments ADD COLUMN gateway TEXT;
ALTER TABLE charges ADD COLUMN gateway TEXT;
";

/// An order's kitchen ticket and delivery in the order's own row (issue
/// 12, "Write less per order"): each is one to one with its order and
/// changes in the transactions that change the order, so their tables
/// were a page more in each of those (six WAL frames a lifecycle). The
/// text is PostgreSQL's version 5 too
/// (`rows::ticket_and_delivery_in_the_order!`).
const V12: &str = crate::adapters::rows::ticket_and_delivery_in_the_order!("INTEGER");

/// The flags the store inbox's and the riders' indexes are on (issue 12,
/// "Write less per order"): `in_inbox` and `rider_busy`, each set only
/// when it changes, instead of the statuses, which cost a page at each
/// status change (three frames a lifecycle for the inbox, one or two for
/// the riders). The text is PostgreSQL's version 6 too
/// (`rows::flags_of_their_own!`).
const V13: &str = crate::adapters::rows::flags_of_their_own!("INTEGER");

/// The migrations, oldest first; the schema version is their count.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13];

/// The schema version this build writes.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to [`latest`] and returns how many migrations ran.
///
/// A database already up to date costs one `PRAGMA user_version` read. The
/// pending scripts run in one `BEGIN IMMEDIATE` transaction, so two
/// processes opening a new database at once migrate it once; a failed
/// script leaves the database as it was.
pub(crate) fn migrate(conn: &Connection) -> Result<usize> {
    let version = user_version(conn)?;
    if version == latest() {
        return Ok(0);
    }
    check_known(version)?;
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    // Another process may have migrated while this one waited for the lock.
    let version = user_version(&tx)?;
    check_known(version)?;
    let from = usize::try_from(version).unwrap_or(0);
    for (i, script) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(script).map_err(|e| {
            super::failure::sqlite_failure(format!("schema migration to version {} failed: {e}", i + 1), e)
        })?;
        super::upgrade::after(i + 1, &tx)?;
    }
    tx.pragma_update(None, "user_version", latest())?;
    tx.commit()?;
    Ok(MIGRATIONS.len() - from)
}

/// The schema version recorded in the database (0: empty database).
pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Refuses a database whose schema is newer than this build's: one a newer
/// ezdelivery upgraded after this process opened it.
pub(super) fn refuse_newer(conn: &Connection) -> Result<()> {
    let version: i64 = conn.prepare_cached("PRAGMA user_version")?.query_row([], |row| row.get(0))?;
    check_known(version)
}

fn check_known(version: i64) -> Result<()> {
    if version > latest() {
        return Err(Error::storage(format!(
            "the database was written by a newer ezdelivery (schema version {version}; this ezdelivery knows \
             versions up to {}): upgrade ezdelivery to use it",
            latest()
        )));
    }
    if version < 0 {
        return Err(Error::storage(format!("the database has an unknown schema version {version}")));
    }
    Ok(())
}
