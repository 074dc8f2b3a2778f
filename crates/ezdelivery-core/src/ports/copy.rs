//! The copy port: a whole database as tables of plain values, so that
//! `app::copy` can move one storage's data into another of a different
//! kind (SQLite → PostgreSQL) without knowing either.
//!
//! It works below the [`Repo`]: rows, not records. That is only sound
//! because every storage keeps the same tables, with the same columns and
//! the same representations (integers, text, times as fixed-width RFC 3339
//! text, booleans as 0/1, JSON as text); a storage may add columns of its
//! own that fill themselves in (PostgreSQL's `tx` on `events`), and keeps
//! its bookkeeping (schema version, sequences) out of [`TableReader::tables`].
//!
//! A copy runs in two transactions held at once: one consistent snapshot
//! of the source ([`TableCopy::export`]) and one write transaction on the
//! target ([`TableCopy::import`]), committed only when the work returns
//! `Ok`: the verification runs inside it, so a copy that does not verify
//! leaves the target as it was.

use crate::ports::{Repo, Storage};
use crate::Result;

/// One value of one column, as every storage can hold it. ezdelivery's
/// schema has no other kind of value (no floats, no blobs): a storage that
/// finds one fails the export rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A whole number (SQLite `INTEGER`, PostgreSQL `BIGINT`).
    Integer(i64),
    /// Text (UTF-8).
    Text(String),
}

/// One table of the data: its name and its columns, in the order the
/// storage declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// The table's name (`orders`).
    pub name: String,
    /// Its columns' names.
    pub columns: Vec<String>,
}

/// A storage whose data can be copied out of and into, whole. Storages
/// that implement it: `SqliteStorage` (and PostgreSQL's, with the
/// `postgres` feature).
pub trait TableCopy: Storage {
    /// Runs `work` on one consistent snapshot of the data; it must not write.
    fn export(&self, work: &mut dyn FnMut(&mut dyn TableReader) -> Result<()>) -> Result<()>;

    /// Runs `work` in one write transaction: committed when it returns
    /// `Ok`, rolled back, with nothing written, when it returns `Err`.
    fn import(&self, work: &mut dyn FnMut(&mut dyn TableWriter) -> Result<()>) -> Result<()>;
}

/// Reads tables inside one transaction ([`TableCopy::export`], or the
/// import's own, which sees what it wrote).
pub trait TableReader {
    /// The tables that hold data, each before any table whose foreign keys
    /// refer to it (parents first), ties in a stable order. The storage's
    /// bookkeeping (SQLite's `sqlite_sequence`, a schema-version table) is
    /// left out.
    fn tables(&mut self) -> Result<Vec<TableInfo>>;

    /// How many rows `table` holds.
    fn count(&mut self, table: &str) -> Result<u64>;

    /// Hands every row of `table` to `row`, as the values of `columns` in
    /// that order, by primary key ascending (integers by value, text byte
    /// for byte: PostgreSQL orders with `COLLATE "C"`), so two storages
    /// holding the same rows give them in the same order. An error of
    /// `row` stops the reading and is returned. A table or column that the
    /// storage does not have is [`crate::Error::Invalid`].
    fn rows(&mut self, table: &str, columns: &[String], row: &mut dyn FnMut(Vec<Value>) -> Result<()>) -> Result<()>;

    /// Runs `work` on the storage's [`Repo`] over this same transaction:
    /// records as the application reads them (the event log, the views),
    /// for the verification.
    fn repo(&mut self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()>;
}

/// Writes tables inside the import's transaction ([`TableCopy::import`]).
pub trait TableWriter: TableReader {
    /// Inserts `rows` into `table`, each the values of `columns` in that
    /// order, exactly as given (ids included). Columns left out take their
    /// defaults. A table or column that the storage does not have is
    /// [`crate::Error::Invalid`].
    fn insert(&mut self, table: &str, columns: &[String], rows: &[Vec<Value>]) -> Result<()>;

    /// Called once every table is in, before the verification: whatever
    /// the storage derives from the rows is brought up to date, so that
    /// ids and sequence numbers handed out after the copy follow the
    /// largest copied (PostgreSQL resets its sequences; SQLite has nothing
    /// to do: an integer key follows the largest stored by itself).
    fn after_import(&mut self) -> Result<()>;
}
