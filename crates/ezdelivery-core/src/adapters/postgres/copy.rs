//! [`TableCopy`] for PostgreSQL: the tables of the connection's schema
//! (`current_schema()`) as the catalog lists them, parents first by their
//! foreign keys, ties in the order they were created; rows read by primary
//! key, written by multi-row `INSERT`s with their ids.
//!
//! - **What is left out.** The bookkeeping: the `schema_migrations` table,
//!   the sequences, and the `tx` column of `events` (the transaction that
//!   appended an event; a copied event gets the copying transaction's, so
//!   the copied log, one transaction, reads in number order).
//! - **Export.** One `REPEATABLE READ, READ ONLY` transaction: one snapshot
//!   for every table and for the [`Repo`] that the verification reads, whose
//!   log is read whole (without the horizon of `Storage::read`: everything
//!   the snapshot sees is committed, and the table rows come from that same
//!   snapshot).
//! - **Import.** One write transaction that first locks every table
//!   `IN EXCLUSIVE MODE` (readers go on, writers wait for the copy), so
//!   the emptiness check and the verification see nothing but the copy.
//!   [`TableWriter::after_import`] moves every sequence (the ids' and the
//!   log's identity) past the largest id copied, should a trigger not have
//!   done it already; a sequence is never moved back. Sequences are not
//!   transactional: a copy rolled back may leave them moved on, which only
//!   skips ids.
//! - **Values.** `bigint` (and `integer`, `smallint`) ↔ [`Value::Integer`],
//!   `text` ↔ [`Value::Text`], `NULL` ↔ [`Value::Null`]; a `boolean` reads
//!   as 0/1 (ezdelivery's schema stores them as 0/1 `bigint`s, as SQLite
//!   does). Any other type fails the copy rather than guess.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use postgres::types::ToSql;
use postgres::{Row, Transaction};

use super::failure::{describe, storage_error};
use super::repo::PgRepo;
use super::{snapshot, PostgresStorage, Session};
use crate::domain::validate::Invalid;
use crate::ports::copy::{TableCopy, TableInfo, TableReader, TableWriter, Value};
use crate::ports::Repo;
use crate::{Error, Result};

/// The bookkeeping tables, never copied.
const BOOKKEEPING: &[&str] = &["schema_migrations"];
/// Columns the storage fills in itself (table, column), never copied.
const OWN_COLUMNS: &[(&str, &str)] = &[("events", "tx")];
/// How many rows a read fetches from the server at a time.
const FETCH_ROWS: i32 = 1_000;
/// The most parameters one statement takes (PostgreSQL's limit is 65535).
const MAX_PARAMS: usize = 30_000;

/// Every column of every table of the schema, in declaration order.
const COLUMNS: &str = "SELECT c.relname::text, a.attname::text, a.atttypid::regtype::text, a.attidentity::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.oid, a.attnum";
/// Every table's primary key columns, in key order.
const PRIMARY_KEYS: &str = "SELECT c.relname::text, a.attname::text FROM pg_index i \
     JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, pos) \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
     WHERE i.indisprimary AND n.nspname = current_schema() ORDER BY c.oid, k.pos";
/// Every foreign key: (table, the table it refers to).
const FOREIGN_KEYS: &str = "SELECT c.relname::text, p.relname::text FROM pg_constraint k \
     JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE k.contype = 'f' AND n.nspname = current_schema()";
/// Every column that takes its values from a sequence (an identity, or a
/// sequence `OWNED BY` it): (table, column, sequence).
const SEQUENCES: &str = "SELECT c.relname::text, a.attname::text, s.seq FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
     CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) AS seq) s \
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND s.seq IS NOT NULL ORDER BY c.oid, a.attnum";

impl PostgresStorage {
    /// How many rows each table of the database at `url` holds (its
    /// bookkeeping left out), read without opening it as a storage: nothing
    /// is migrated, created or written, so a `db copy` can refuse a target
    /// that holds rows and leave it exactly as it was. An empty map: the
    /// database has no table yet.
    ///
    /// Fails as [`PostgresStorage::open`] does when `url` cannot be read
    /// or the server cannot be reached; no message holds the password.
    pub fn inspect(url: &str) -> Result<BTreeMap<String, u64>> {
        let (config, shown) = PostgresStorage::config(url)?;
        let mut client = PostgresStorage::connect(&config, &shown)?;
        let fail = |e: postgres::Error| Error::storage(format!("PostgreSQL at {shown}: {}", describe(&e)));
        let mut tx = snapshot(&mut client).map_err(fail)?;
        let names: BTreeSet<String> =
            tx.query(COLUMNS, &[]).map_err(fail)?.iter().map(|row| text(row, 0)).collect::<Result<_>>()?;
        let mut rows = BTreeMap::new();
        for name in names.into_iter().filter(|n| !BOOKKEEPING.contains(&n.as_str())) {
            let row = tx.query_one(&format!("SELECT count(*) FROM {}", quote(&name)), &[]).map_err(fail)?;
            let n: i64 = row.try_get(0).map_err(fail)?;
            rows.insert(name, u64::try_from(n).unwrap_or(0));
        }
        tx.commit().map_err(fail)?;
        Ok(rows)
    }

    /// Whether the URLs `a` and `b` name the same database: the same
    /// hosts, ports and database name, whatever the user, password or
    /// other options. A URL that cannot be read names none.
    pub fn same_database(a: &str, b: &str) -> bool {
        let place = |url: &str| {
            let config = postgres::Config::from_str(url).ok()?;
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    postgres::config::Host::Tcp(name) => name.to_ascii_lowercase(),
                    postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            let hosts = if hosts.is_empty() { vec!["localhost".to_string()] } else { hosts };
            let mut ports: Vec<u16> = config.get_ports().to_vec();
            if ports.is_empty() {
                ports.push(5432);
            }
            let db = config.get_dbname().or(config.get_user()).map(str::to_string);
            Some((hosts, ports, db))
        };
        matches!((place(a), place(b)), (Some(x), Some(y)) if x == y)
    }
}

impl TableCopy for PostgresStorage {
    fn export(&self, work: &mut dyn FnMut(&mut dyn TableReader) -> Result<()>) -> Result<()> {
        let mut session = self.session()?;
        let Session { client, statements } = &mut *session;
        let mut tx = snapshot(client).map_err(storage_error)?;
        let result = {
            let mut tables = PgTables::new(&mut tx, statements);
            let result = work(&mut tables);
            tables.finish(result)
        };
        end(tx, result)
    }

    fn import(&self, work: &mut dyn FnMut(&mut dyn TableWriter) -> Result<()>) -> Result<()> {
        let mut session = self.session()?;
        let Session { client, statements } = &mut *session;
        let mut tx = client.transaction().map_err(storage_error)?;
        let result = {
            let mut tables = PgTables::new(&mut tx, statements);
            let result = tables.lock_all().and_then(|()| work(&mut tables));
            tables.finish(result)
        };
        end(tx, result)
    }
}

/// Commits `tx` when `result` is `Ok`, else rolls it back and returns the
/// work's error.
fn end(tx: Transaction<'_>, result: Result<()>) -> Result<()> {
    match result {
        Ok(()) => tx.commit().map_err(storage_error),
        Err(e) => {
            // The work's error is what the caller needs; dropping `tx`
            // tries the rollback once more should this one fail.
            let _ = tx.rollback();
            Err(e)
        }
    }
}

/// What a column holds, as the copy carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `bigint`, `integer`, `smallint`.
    Integer(IntWidth),
    /// `text`, `character varying`.
    Text,
    /// `boolean`, carried as 0/1.
    Boolean,
    /// Anything else: it cannot be copied.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntWidth {
    Big,
    Int,
    Small,
}

/// One column of a table.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// Its type, as PostgreSQL names it (for messages).
    type_name: String,
    kind: Kind,
    /// `GENERATED ALWAYS AS IDENTITY`: an insert of it says `OVERRIDING
    /// SYSTEM VALUE`.
    always: bool,
}

/// One table of the schema.
#[derive(Debug, Clone, Default)]
struct Table {
    columns: Vec<Column>,
    primary_key: Vec<String>,
    parents: BTreeSet<String>,
}

/// The tables of one open transaction.
pub(super) struct PgTables<'a, 't> {
    tx: &'a mut Transaction<'t>,
    statements: &'a mut HashMap<&'static str, postgres::Statement>,
    /// The schema's tables, in the order they were created, read once.
    known: Option<Vec<(String, Table)>>,
    /// The first statement that failed: PostgreSQL aborted the transaction.
    failed: Option<String>,
}

impl<'a, 't> PgTables<'a, 't> {
    fn new(tx: &'a mut Transaction<'t>, statements: &'a mut HashMap<&'static str, postgres::Statement>) -> Self {
        PgTables { tx, statements, known: None, failed: None }
    }

    /// The work's result, unless it returned `Ok` although a statement
    /// failed (PostgreSQL would roll the transaction back at `COMMIT`).
    fn finish(&self, result: Result<()>) -> Result<()> {
        match (result, &self.failed) {
            (Ok(()), Some(failed)) => Err(Error::storage(format!("the copy's transaction failed: {failed}"))),
            (result, _) => result,
        }
    }

    /// Records a failed statement and turns it into the error to return.
    fn fail(&mut self, e: postgres::Error) -> Error {
        let error = storage_error(e);
        if self.failed.is_none() {
            self.failed = Some(error.to_string());
        }
        error
    }

    fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let rows = self.tx.query(sql, params);
        rows.map_err(|e| self.fail(e))
    }

    /// The schema's tables, read from the catalog once.
    fn known(&mut self) -> Result<&[(String, Table)]> {
        if self.known.is_none() {
            let mut tables: Vec<(String, Table)> = Vec::new();
            for row in self.query(COLUMNS, &[])? {
                let (table, name, type_name, identity): (String, String, String, String) =
                    (text(&row, 0)?, text(&row, 1)?, text(&row, 2)?, text(&row, 3)?);
                if BOOKKEEPING.contains(&table.as_str()) || OWN_COLUMNS.contains(&(table.as_str(), name.as_str())) {
                    continue;
                }
                let kind = match type_name.as_str() {
                    "bigint" => Kind::Integer(IntWidth::Big),
                    "integer" => Kind::Integer(IntWidth::Int),
                    "smallint" => Kind::Integer(IntWidth::Small),
                    "text" | "character varying" => Kind::Text,
                    "boolean" => Kind::Boolean,
                    _ => Kind::Other,
                };
                let column = Column { name, type_name, kind, always: identity == "a" };
                match tables.iter_mut().find(|(t, _)| *t == table) {
                    Some((_, t)) => t.columns.push(column),
                    None => tables.push((table, Table { columns: vec![column], ..Table::default() })),
                }
            }
            for row in self.query(PRIMARY_KEYS, &[])? {
                let (table, column) = (text(&row, 0)?, text(&row, 1)?);
                if let Some((_, t)) = tables.iter_mut().find(|(t, _)| *t == table) {
                    t.primary_key.push(column);
                }
            }
            for row in self.query(FOREIGN_KEYS, &[])? {
                let (table, parent) = (text(&row, 0)?, text(&row, 1)?);
                let is_table = tables.iter().any(|(t, _)| *t == parent);
                if let Some((_, t)) = tables.iter_mut().find(|(t, _)| *t == table) {
                    if parent != table && is_table {
                        t.parents.insert(parent);
                    }
                }
            }
            self.known = Some(tables);
        }
        self.known.as_deref().ok_or_else(|| Error::Internal("the tables were not read".into()))
    }

    /// `table`'s columns named by `columns`, in that order; a table or
    /// column the database does not have is refused: names go into SQL
    /// text, so only the schema's own get there.
    fn check(&mut self, table: &str, columns: &[String]) -> Result<(Vec<Column>, Vec<String>)> {
        let known = self.known()?;
        let Some((_, have)) = known.iter().find(|(t, _)| t == table) else {
            return Err(invalid(format!("the database has no table `{table}`")));
        };
        let mut picked = Vec::with_capacity(columns.len());
        for name in columns {
            match have.columns.iter().find(|c| c.name == *name) {
                Some(column) => picked.push(column.clone()),
                None => return Err(invalid(format!("table `{table}` has no column `{name}`"))),
            }
        }
        // The key, text compared byte for byte (as SQLite's BINARY does).
        let mut order: Vec<String> = have
            .primary_key
            .iter()
            .map(|key| match have.columns.iter().find(|c| c.name == *key) {
                Some(c) if c.kind == Kind::Text => format!("{} COLLATE \"C\"", quote(key)),
                _ => quote(key),
            })
            .collect();
        if order.is_empty() {
            // No key: every column, so that the order is still the same
            // wherever the same rows are.
            order = have
                .columns
                .iter()
                .map(
                    |c| if c.kind == Kind::Text { format!("{} COLLATE \"C\"", quote(&c.name)) } else { quote(&c.name) },
                )
                .collect();
        }
        Ok((picked, order))
    }

    /// Locks every table against writers until the copy ends.
    fn lock_all(&mut self) -> Result<()> {
        let names: Vec<String> = self.known()?.iter().map(|(t, _)| quote(t)).collect();
        if names.is_empty() {
            return Ok(());
        }
        let sql = format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "));
        let done = self.tx.batch_execute(&sql);
        done.map_err(|e| self.fail(e))
    }
}

impl TableReader for PgTables<'_, '_> {
    fn tables(&mut self) -> Result<Vec<TableInfo>> {
        let known = self.known()?;
        // Parents first; among tables free to go, the order they were created in.
        let mut ordered: Vec<&(String, Table)> = Vec::with_capacity(known.len());
        while ordered.len() < known.len() {
            let done = |name: &String| ordered.iter().any(|(n, _)| n == name);
            let next = known
                .iter()
                .filter(|(n, _)| !done(n))
                .find(|(_, t)| t.parents.iter().all(done))
                // A cycle: its foreign keys are checked at commit anyway.
                .or_else(|| known.iter().find(|(n, _)| !done(n)));
            match next {
                Some(table) => ordered.push(table),
                None => break,
            }
        }
        Ok(ordered
            .into_iter()
            .map(|(name, t)| TableInfo {
                name: name.clone(),
                columns: t.columns.iter().map(|c| c.name.clone()).collect(),
            })
            .collect())
    }

    fn count(&mut self, table: &str) -> Result<u64> {
        self.check(table, &[])?;
        let rows = self.query(&format!("SELECT count(*) FROM {}", quote(table)), &[])?;
        let n: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(storage_error)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn rows(&mut self, table: &str, columns: &[String], row: &mut dyn FnMut(Vec<Value>) -> Result<()>) -> Result<()> {
        let (picked, order) = self.check(table, columns)?;
        let select = if columns.is_empty() { "1".to_string() } else { list(columns) };
        let sql = format!("SELECT {select} FROM {} ORDER BY {}", quote(table), order.join(", "));
        let bound = self.tx.bind(sql.as_str(), &[]);
        let portal = bound.map_err(|e| self.fail(e))?;
        loop {
            let fetched = self.tx.query_portal(&portal, FETCH_ROWS);
            let batch = fetched.map_err(|e| self.fail(e))?;
            if batch.is_empty() {
                return Ok(());
            }
            for r in &batch {
                let mut values = Vec::with_capacity(picked.len());
                for (i, column) in picked.iter().enumerate() {
                    values.push(read_value(r, i, table, column)?);
                }
                row(values)?;
            }
        }
    }

    fn repo(&mut self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        let mut repo = PgRepo::new(self.tx, self.statements, false).whole_log();
        let result = work(&mut repo);
        let (failure, _) = repo.finish();
        match (result, failure) {
            (Ok(()), Some(failure)) => {
                self.failed.get_or_insert_with(|| failure.error.to_string());
                Err(failure.error)
            }
            (Err(e), Some(failure)) => {
                self.failed.get_or_insert_with(|| failure.error.to_string());
                Err(e)
            }
            (result, None) => result,
        }
    }
}

impl TableWriter for PgTables<'_, '_> {
    fn insert(&mut self, table: &str, columns: &[String], rows: &[Vec<Value>]) -> Result<()> {
        let (picked, _) = self.check(table, columns)?;
        if picked.is_empty() || rows.is_empty() {
            // A row of no columns: every column takes its default.
            for _ in rows {
                let sql = format!("INSERT INTO {} DEFAULT VALUES", quote(table));
                let done = self.tx.execute(sql.as_str(), &[]);
                done.map_err(|e| self.fail(e))?;
            }
            return Ok(());
        }
        let overriding = if picked.iter().any(|c| c.always) { " OVERRIDING SYSTEM VALUE" } else { "" };
        let per_statement = (MAX_PARAMS / picked.len()).max(1);
        for chunk in rows.chunks(per_statement) {
            let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(chunk.len() * picked.len());
            let mut tuples = Vec::with_capacity(chunk.len());
            for row in chunk {
                if row.len() != picked.len() {
                    return Err(Error::Internal(format!(
                        "a row of {} values for the {} columns of {table}",
                        row.len(),
                        picked.len()
                    )));
                }
                let mut placeholders = Vec::with_capacity(row.len());
                for (value, column) in row.iter().zip(&picked) {
                    params.push(param(value, table, column)?);
                    placeholders.push(format!("${}", params.len()));
                }
                tuples.push(format!("({})", placeholders.join(", ")));
            }
            let sql =
                format!("INSERT INTO {} ({}){overriding} VALUES {}", quote(table), list(columns), tuples.join(", "));
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
            let done = self.tx.execute(sql.as_str(), &refs);
            done.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Moves every sequence past the largest value of its column (the
    /// `AFTER INSERT` triggers have done it for the ids as rows went in;
    /// this makes sure, for every sequence, whatever the triggers did).
    fn after_import(&mut self) -> Result<()> {
        let mut sequences = Vec::new();
        for row in self.query(SEQUENCES, &[])? {
            let (table, column, sequence) = (text(&row, 0)?, text(&row, 1)?, text(&row, 2)?);
            if !BOOKKEEPING.contains(&table.as_str()) {
                sequences.push((table, column, sequence));
            }
        }
        for (table, column, sequence) in sequences {
            let sql = format!(
                "SELECT setval($1::text::regclass, m) FROM (SELECT max({}) AS m FROM {}) s WHERE m IS NOT NULL \
                 AND m > coalesce(pg_sequence_last_value($1::text::regclass), 0)",
                quote(&column),
                quote(&table)
            );
            self.query(&sql, &[&sequence])?;
        }
        Ok(())
    }
}

/// Column `i` of `row` as a copy carries it.
fn read_value(row: &Row, i: usize, table: &str, column: &Column) -> Result<Value> {
    let bad = |e: postgres::Error| Error::storage(format!("cannot read {table}.{}: {e}", column.name));
    Ok(match column.kind {
        Kind::Integer(IntWidth::Big) => row.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Value::Integer),
        Kind::Integer(IntWidth::Int) => {
            row.try_get::<_, Option<i32>>(i).map_err(bad)?.map(|n| Value::Integer(i64::from(n)))
        }
        Kind::Integer(IntWidth::Small) => {
            row.try_get::<_, Option<i16>>(i).map_err(bad)?.map(|n| Value::Integer(i64::from(n)))
        }
        Kind::Text => row.try_get::<_, Option<String>>(i).map_err(bad)?.map(Value::Text),
        Kind::Boolean => row.try_get::<_, Option<bool>>(i).map_err(bad)?.map(|b| Value::Integer(i64::from(b))),
        Kind::Other => {
            return Err(Error::storage(format!(
                "{table}.{} is of type {}, which ezdelivery never writes: it cannot be copied",
                column.name, column.type_name
            )))
        }
    }
    .unwrap_or(Value::Null))
}

/// `value` as a parameter for `column`, of the column's own type.
fn param(value: &Value, table: &str, column: &Column) -> Result<Box<dyn ToSql + Sync>> {
    let misfit = || {
        invalid(format!(
            "a value of {table}.{} does not fit its type here ({}): {value:?}",
            column.name, column.type_name
        ))
    };
    Ok(match (value, column.kind) {
        (Value::Null, Kind::Integer(IntWidth::Big)) => Box::new(None::<i64>),
        (Value::Null, Kind::Integer(IntWidth::Int)) => Box::new(None::<i32>),
        (Value::Null, Kind::Integer(IntWidth::Small)) => Box::new(None::<i16>),
        (Value::Null, Kind::Text) => Box::new(None::<String>),
        (Value::Null, Kind::Boolean) => Box::new(None::<bool>),
        (Value::Integer(n), Kind::Integer(IntWidth::Big)) => Box::new(*n),
        (Value::Integer(n), Kind::Integer(IntWidth::Int)) => Box::new(i32::try_from(*n).map_err(|_| misfit())?),
        (Value::Integer(n), Kind::Integer(IntWidth::Small)) => Box::new(i16::try_from(*n).map_err(|_| misfit())?),
        (Value::Integer(0), Kind::Boolean) => Box::new(false),
        (Value::Integer(1), Kind::Boolean) => Box::new(true),
        (Value::Text(t), Kind::Text) => Box::new(t.clone()),
        _ => return Err(misfit()),
    })
}

/// Column `i` of a catalog row, as text.
fn text(row: &Row, i: usize) -> Result<String> {
    row.try_get(i).map_err(storage_error)
}

/// `"name"`, an identifier quoted for SQL.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"a", "b"`.
fn list(names: &[String]) -> String {
    names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", ")
}

fn invalid(message: String) -> Error {
    Error::Invalid(Invalid(message))
}
