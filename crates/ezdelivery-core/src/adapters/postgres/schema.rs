//! The schema on PostgreSQL as versioned migrations, tracked in the
//! `schema_migrations` table (one row per version applied).
//!
//! The tables mirror SQLite's (`adapters::sqlite::schema`, every version up
//! to the latest, in its final state) column for column, with the same
//! names, order and meaning, so that rows copy from one to the other as
//! they are: `BIGINT` where SQLite has `INTEGER` (booleans too, as 0/1),
//! `TEXT` for text, times as the same fixed-width RFC 3339 UTC text with
//! microseconds, JSON as `TEXT`, foreign keys `DEFERRABLE INITIALLY
//! DEFERRED`. What differs:
//!
//! - ids of stores, menus, riders, orders, payments and charges come from
//!   sequences (`stores_id_seq`, …; `Repo::next_id` is `nextval`). A row
//!   inserted with an id beyond its sequence (a copy from SQLite, a test)
//!   moves the sequence past it (`ezdelivery_bump_id`, an `AFTER INSERT`
//!   trigger), so `next_id` never hands out an id that is taken;
//! - the log's `seq` is an identity column, and each event records the
//!   transaction that appended it (`tx xid8`), which orders the log (see
//!   the module documentation of `adapters::postgres`);
//! - riders' names are unique by a unique index, menus' within a store by
//!   a unique constraint, as in SQLite's latest schema.
//!
//! Migrations run in one transaction holding a transaction-level advisory
//! lock ([`MIGRATION_LOCK`]), so two processes opening a new database at
//! once migrate it once. Never edit a script that has shipped: append one.

use postgres::Client;

use super::failure::describe;
use crate::{Error, Result};

/// The advisory lock key that serialises migrations (`'ezdm'`).
pub(crate) const MIGRATION_LOCK: i64 = 0x657A_646D;

/// The DDL of a gateway-call table, payments or charges: the same
/// columns in SQLite's order, with each table's own column where SQLite
/// has it (`$after_order` after `order_id`, `$after_amount` after `amount`).
macro_rules! call_table {
    ($table:literal, $after_order:literal, $after_amount:literal) => {
        concat!(
            "CREATE TABLE ",
            $table,
            " (
    id              BIGINT NOT NULL PRIMARY KEY,
    order_id        BIGINT NOT NULL REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
",
            $after_order,
            "    status          TEXT   NOT NULL,
    amount          BIGINT NOT NULL,
",
            $after_amount,
            "    gateway_ref     TEXT,
    idempotency_key TEXT   NOT NULL,
    tries           BIGINT NOT NULL,
    next_at         TEXT,
    last_error      TEXT,
    created_at      TEXT   NOT NULL,
    updated_at      TEXT   NOT NULL,
    maybe_processed BIGINT NOT NULL DEFAULT 1,
    claim_token     TEXT,
    claimed_until   TEXT,
    unsettled       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX ",
            $table,
            "_order ON ",
            $table,
            " (order_id);
CREATE INDEX ",
            $table,
            "_due ON ",
            $table,
            " (status, next_at);
"
        )
    };
}

/// Version 1: the whole of SQLite's schema version 5, in its final state.
/// (Later versions follow SQLite's from its version 6; SQLite's versions 7
/// and 8 have no counterpart here: 7 is its event log without
/// `AUTOINCREMENT`, and this log's `seq` comes from a sequence; 8 is
/// SQLite's physical layout, `WITHOUT ROWID` tables and fewer or partial
/// indexes, with the same tables and columns, and this schema keeps its
/// indexes and the event id's unique constraint.)
const V1: &str = concat!(
    r#"
CREATE FUNCTION ezdelivery_bump_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id > COALESCE(pg_sequence_last_value(TG_ARGV[0]::regclass), 0) THEN
        PERFORM setval(TG_ARGV[0]::regclass, NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION ezdelivery_bump_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq > COALESCE(pg_sequence_last_value(TG_ARGV[0]::regclass), 0) THEN
        PERFORM setval(TG_ARGV[0]::regclass, NEW.seq);
    END IF;
    RETURN NULL;
END
$$;

CREATE TABLE stores (
    id              BIGINT NOT NULL PRIMARY KEY,
    name            TEXT   NOT NULL,
    owner           TEXT   NOT NULL,
    address         TEXT   NOT NULL,
    is_open         BIGINT NOT NULL,
    delivery_charge BIGINT NOT NULL,
    review_count    BIGINT NOT NULL,
    review_sum      BIGINT NOT NULL
);

CREATE TABLE menus (
    id        BIGINT NOT NULL PRIMARY KEY,
    store_id  BIGINT NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
    name      TEXT   NOT NULL,
    price     BIGINT NOT NULL,
    available BIGINT NOT NULL,
    UNIQUE (store_id, name)
);

CREATE TABLE riders (
    id   BIGINT NOT NULL PRIMARY KEY,
    name TEXT   NOT NULL
);
CREATE UNIQUE INDEX riders_name_unique ON riders (name);

CREATE TABLE orders (
    id         BIGINT NOT NULL PRIMARY KEY,
    store_id   BIGINT NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
    customer   TEXT   NOT NULL,
    address    TEXT   NOT NULL,
    total      BIGINT NOT NULL,
    status     TEXT   NOT NULL,
    reviewed   BIGINT NOT NULL,
    created_at TEXT   NOT NULL,
    updated_at TEXT   NOT NULL
);
CREATE INDEX orders_store_status ON orders (store_id, status);

CREATE TABLE order_items (
    order_id   BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    line       BIGINT NOT NULL,
    menu_id    BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    unit_price BIGINT NOT NULL,
    qty        BIGINT NOT NULL,
    PRIMARY KEY (order_id, line)
);

"#,
    call_table!("payments", "", "    card            TEXT,\n"),
    r#"
CREATE TABLE kitchen_tickets (
    order_id   BIGINT NOT NULL PRIMARY KEY REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    store_id   BIGINT NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
    status     TEXT   NOT NULL,
    updated_at TEXT   NOT NULL
);

CREATE TABLE deliveries (
    order_id   BIGINT NOT NULL PRIMARY KEY REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    rider_id   BIGINT REFERENCES riders (id) DEFERRABLE INITIALLY DEFERRED,
    charge     BIGINT NOT NULL,
    status     TEXT   NOT NULL,
    updated_at TEXT   NOT NULL
);
CREATE INDEX deliveries_rider_status ON deliveries (rider_id, status);

"#,
    call_table!(
        "charges",
        "    rider_id        BIGINT NOT NULL REFERENCES riders (id) DEFERRABLE INITIALLY DEFERRED,\n",
        ""
    ),
    r#"
CREATE TABLE reviews (
    order_id   BIGINT NOT NULL PRIMARY KEY REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    store_id   BIGINT NOT NULL REFERENCES stores (id) DEFERRABLE INITIALLY DEFERRED,
    customer   TEXT   NOT NULL,
    score      BIGINT NOT NULL,
    text       TEXT   NOT NULL,
    created_at TEXT   NOT NULL
);

CREATE TABLE events (
    seq      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    id       TEXT   NOT NULL UNIQUE,
    type     TEXT   NOT NULL,
    order_id BIGINT,
    at       TEXT   NOT NULL,
    data     TEXT   NOT NULL,
    tx       xid8   NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX events_log ON events (tx, seq);
CREATE INDEX events_order ON events (order_id, tx, seq);

CREATE TABLE checkpoints (
    name TEXT   NOT NULL PRIMARY KEY,
    seq  BIGINT NOT NULL
);

CREATE TABLE mypage (
    order_id BIGINT NOT NULL PRIMARY KEY,
    customer TEXT   NOT NULL,
    view     TEXT   NOT NULL
);
CREATE INDEX mypage_customer ON mypage (customer, order_id);

CREATE TABLE messages (
    id        TEXT   NOT NULL PRIMARY KEY,
    order_id  BIGINT NOT NULL,
    event     TEXT   NOT NULL,
    status    TEXT   NOT NULL,
    recipient TEXT   NOT NULL,
    text      TEXT   NOT NULL,
    at        TEXT   NOT NULL
);

CREATE TABLE message_deliveries (
    message_id TEXT   NOT NULL REFERENCES messages (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    channel    TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    tries      BIGINT NOT NULL,
    next_at    TEXT   NOT NULL,
    last_error TEXT,
    PRIMARY KEY (message_id, channel)
);
CREATE INDEX message_deliveries_due ON message_deliveries (state, next_at);

CREATE TABLE breakers (
    name       TEXT   NOT NULL PRIMARY KEY,
    state      TEXT   NOT NULL,
    failures   BIGINT NOT NULL,
    opened_at  TEXT,
    updated_at TEXT   NOT NULL
);

CREATE SEQUENCE stores_id_seq OWNED BY stores.id;
CREATE SEQUENCE menus_id_seq OWNED BY menus.id;
CREATE SEQUENCE riders_id_seq OWNED BY riders.id;
CREATE SEQUENCE orders_id_seq OWNED BY orders.id;
CREATE SEQUENCE payments_id_seq OWNED BY payments.id;
CREATE SEQUENCE charges_id_seq OWNED BY charges.id;

CREATE TRIGGER stores_bump_id AFTER INSERT ON stores
    FOR EACH ROW EXECUTE FUNCTION ezdelivery_bump_id('stores_id_seq');
CREATE TRIGGER menus_bump_id AFTER INSERT ON menus
    FOR EACH ROW EXECUTE FUNCTION ezdelivery_bump_id('menus_id_seq');
CREATE TRIGGER riders_bump_id AFTER INSERT ON riders
    FOR EACH ROW EXECUTE FUNCTION ezdelivery_bump_id('riders_id_seq');
CREATE TRIGGER orders_bump_id AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION ezdelivery_bump_id('orders_id_seq');
CREATE TRIGGER payments_bump_id AFTER INSERT ON payments
    FOR EACH ROW EXECUTE FUNCTION ezdelivery_bump_id('payments_id_seq');
CREATE TRIGGER charges_bump_id AFTER INSERT ON charges
    FOR EACH ROW EXECUTE FUNCTION ezdelivery_bump_id('charges_id_seq');
-- Only a row given its own number (a copy) can be beyond the sequence.
CREATE TRIGGER events_bump_seq AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION ezdelivery_bump_seq('events_seq_seq');
"#
);

/// Version 2: SQLite's version 6, idempotency keys of requests, column
/// for column (the primary key makes a claim race-free between writers:
/// `INSERT … ON CONFLICT DO NOTHING` waits for a concurrent insert of the
/// same key and then does nothing if it committed).
const V2: &str = "
CREATE TABLE idempotency_keys (
    scope           TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    fingerprint     TEXT   NOT NULL,
    claimed_at      TEXT   NOT NULL,
    status          BIGINT,
    body            TEXT,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_claimed ON idempotency_keys (claimed_at);
";

/// Version 3: SQLite's version 10, the outbox keyed by an integer that
/// grows with the log (`Message::key_of`: the event's sequence number × 4 +
/// the recipient's place), the text id kept as a column, the deliveries
/// referring to the key; the same columns as SQLite's, so `db copy` goes
/// both ways. Messages queued before get their key from their event (the
/// event id is unique, so indexed, here); one whose event or recipient is
/// not found gets a negative key, which no new message can take.
const V3: &str = "
ALTER TABLE messages ADD COLUMN key BIGINT;
UPDATE messages m SET key = k.key
    FROM (SELECT q.id, coalesce(
                     (SELECT e.seq FROM events e WHERE e.id = split_part(q.id, ':', 1)) * 4
                         + CASE split_part(q.id, ':', 2)
                               WHEN 'customer' THEN 0 WHEN 'owner' THEN 1 WHEN 'rider' THEN 2 END,
                     -row_number() OVER (ORDER BY q.id)) AS key
          FROM messages q) k
    WHERE k.id = m.id;
ALTER TABLE messages ALTER COLUMN key SET NOT NULL;
ALTER TABLE message_deliveries ADD COLUMN message_key BIGINT;
UPDATE message_deliveries d SET message_key = m.key FROM messages m WHERE m.id = d.message_id;
ALTER TABLE message_deliveries ALTER COLUMN message_key SET NOT NULL;
ALTER TABLE message_deliveries DROP CONSTRAINT message_deliveries_pkey;
ALTER TABLE message_deliveries DROP COLUMN message_id;
ALTER TABLE messages DROP CONSTRAINT messages_pkey;
ALTER TABLE messages ADD PRIMARY KEY (key);
ALTER TABLE message_deliveries ADD PRIMARY KEY (message_key, channel);
ALTER TABLE message_deliveries ADD FOREIGN KEY (message_key) REFERENCES messages (key)
    ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
";

/// Version 4: SQLite's version 11, the gateway each payment and charge
/// went to, by name.
const V4: &str = "
ALTER TABLE payments ADD COLUMN gateway TEXT;
ALTER TABLE charges ADD COLUMN gateway TEXT;
";

/// Version 5: SQLite's version 12, an order's kitchen ticket and delivery
/// in the order's own row, by the same text (the same columns, so `db
/// copy` goes both ways).
const V5: &str = crate::adapters::rows::ticket_and_delivery_in_the_order!("BIGINT");

/// Version 6: SQLite's version 13, the flags the store inbox's and the
/// riders' indexes are on (the inbox's replaces the index on store and
/// status), by the same text.
const V6: &str = crate::adapters::rows::flags_of_their_own!("BIGINT");

/// The migrations, oldest first; the schema version is their count.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this build writes.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// The columns of ezdelivery's `schema_migrations`, as [`TABLE_SHAPE`] lists them.
const OUR_SHAPE: &str = "applied_at text, version bigint";

/// The columns of the `schema_migrations` table the connection sees, by
/// name with their types (`NULL` when there is none): one read that tells
/// a new database, ezdelivery's, and another program's.
const TABLE_SHAPE: &str =
    "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname) \
     FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations') AND attnum > 0 AND NOT attisdropped";

/// The version recorded in the database: 0 when it has no
/// `schema_migrations` table yet (a new database). A `schema_migrations`
/// of another shape is another program's (golang-migrate's and Rails' have
/// that name): refused, so that its versions are not taken for ours.
pub(crate) fn version(client: &mut Client) -> Result<i64> {
    let fail = |e: postgres::Error| Error::storage(format!("cannot read the schema version: {}", describe(&e)));
    let row = client.query_one(TABLE_SHAPE, &[]).map_err(fail)?;
    match row.try_get::<_, Option<String>>(0).map_err(fail)? {
        None => return Ok(0),
        Some(shape) if shape == OUR_SHAPE => {}
        Some(shape) => {
            return Err(Error::Invalid(crate::domain::validate::Invalid(format!(
                "the database holds a schema_migrations table that is not ezdelivery's (its columns: {shape}), \
                 as another program's migrations would: give ezdelivery a database of its own"
            ))))
        }
    }
    let row = client.query_one("SELECT COALESCE(max(version), 0) FROM schema_migrations", &[]).map_err(fail)?;
    row.try_get(0).map_err(fail)
}

/// Brings the schema up to [`latest`] and returns how many migrations ran.
///
/// A database already up to date costs two small reads. Otherwise the
/// pending scripts run in one transaction that first takes the advisory
/// lock [`MIGRATION_LOCK`] and reads the version again (another process
/// may have migrated meanwhile); a failed script leaves the database as it
/// was. A database of a newer version is refused.
pub(crate) fn migrate(client: &mut Client) -> Result<usize> {
    let found = version(client)?;
    check_known(found)?;
    if found == latest() {
        return Ok(0);
    }
    let fail = |what: &str, e: postgres::Error| {
        // The one cause a user can act on without reading PostgreSQL's
        // words: the user may read and write but not create tables.
        let hint = match e.code() {
            Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
                "; the user must be allowed to create tables in the database (GRANT CREATE ON SCHEMA public TO \
                 the user, or use a database the user owns)"
            }
            _ => "",
        };
        Error::storage(format!("{what}: {}{hint}", describe(&e)))
    };
    let mut tx = client.transaction().map_err(|e| fail("cannot start the schema migration", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| fail("cannot take the schema migration lock", e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .map_err(|e| fail("cannot create schema_migrations", e))?;
    let row = tx
        .query_one("SELECT COALESCE(max(version), 0) FROM schema_migrations", &[])
        .map_err(|e| fail("cannot read the schema version", e))?;
    let current: i64 = row.try_get(0).map_err(|e| fail("cannot read the schema version", e))?;
    check_known(current)?;
    let from = usize::try_from(current).unwrap_or(0);
    let now = crate::adapters::rows::time_text(&crate::ports::Clock::now(&crate::ports::SystemClock));
    for (i, script) in MIGRATIONS.iter().enumerate().skip(from) {
        let version = i as i64 + 1;
        // Foreign keys checked at once, not at commit: an `UPDATE` of a row
        // with a deferred key leaves a check pending, and PostgreSQL
        // refuses `ALTER TABLE` and `CREATE INDEX` on a table while one is.
        tx.batch_execute("SET CONSTRAINTS ALL IMMEDIATE")
            .map_err(|e| fail("cannot check foreign keys at once for the migration", e))?;
        tx.batch_execute(script).map_err(|e| fail(&format!("schema migration to version {version} failed"), e))?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[&version, &now])
            .map_err(|e| fail("cannot record the schema version", e))?;
    }
    tx.commit().map_err(|e| fail("cannot commit the schema migration", e))?;
    Ok(MIGRATIONS.len() - from)
}

/// Refuses a version this build does not know.
pub(crate) fn check_known(version: i64) -> Result<()> {
    if version > latest() {
        // Invalid input, as SQLite's preflight says of a newer file: the
        // database is sound, this program is the wrong one for it.
        return Err(Error::Invalid(crate::domain::validate::Invalid(format!(
            "the database was written by a newer ezdelivery (PostgreSQL schema version {version}; this ezdelivery \
             knows versions up to {}): upgrade ezdelivery to use it",
            latest()
        ))));
    }
    if version < 0 {
        return Err(Error::storage(format!("the database has an unknown schema version {version}")));
    }
    Ok(())
}
