//! [`TableCopy`] for SQLite: the tables as `sqlite_master` lists them (but
//! SQLite's own, `sqlite_sequence` among them), parents first by their
//! foreign keys; rows read by primary key, written by plain `INSERT`s.
//!
//! No sequence needs setting: the event log's `seq` is its integer key, so
//! the next event the copy appends follows the largest copied.

use std::collections::{BTreeSet, HashMap};
use std::sync::PoisonError;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::repo::SqliteRepo;
use super::{RowCache, SqliteStorage};
use crate::domain::validate::Invalid;
use crate::ports::copy::{TableCopy, TableInfo, TableReader, TableWriter, Value};
use crate::ports::Repo;
use crate::{Error, Result};

impl TableCopy for SqliteStorage {
    fn export(&self, work: &mut dyn FnMut(&mut dyn TableReader) -> Result<()>) -> Result<()> {
        self.tables(TransactionBehavior::Deferred, &mut |tables| work(tables))
    }

    fn import(&self, work: &mut dyn FnMut(&mut dyn TableWriter) -> Result<()>) -> Result<()> {
        if let Some(file) = &self.read_only {
            return Err(Error::storage(format!("{file} is open read-only: nothing can be copied into it")));
        }
        self.tables(TransactionBehavior::Immediate, &mut |tables| work(tables))
    }
}

impl SqliteStorage {
    /// Runs `work` over the tables in one transaction of `behavior`,
    /// committed when it returns `Ok`. The connection's cached rows are
    /// dropped before and after: rows written here bypass the repo.
    fn tables(
        &self,
        behavior: TransactionBehavior,
        work: &mut dyn FnMut(&mut SqliteTables) -> Result<()>,
    ) -> Result<()> {
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let super::Session { conn, cache, checkpoints } = &mut *session;
        let tx = conn.transaction_with_behavior(behavior)?;
        cache.check(&tx)?;
        cache.clear();
        let result = work(&mut SqliteTables { conn: &tx, cache, known: None });
        cache.clear();
        match result {
            Ok(()) => {
                tx.commit()?;
                if let Some(checkpoints) = checkpoints {
                    checkpoints.after_commit(conn);
                }
                Ok(())
            }
            Err(e) => {
                // The work's error is what the caller needs; dropping `tx`
                // tries the rollback once more should this one fail.
                let _ = tx.rollback();
                Err(e)
            }
        }
    }
}

/// The tables of one open transaction.
pub(super) struct SqliteTables<'a> {
    conn: &'a Connection,
    cache: &'a mut RowCache,
    /// Each table's columns, read once.
    known: Option<HashMap<String, Vec<String>>>,
}

impl SqliteTables<'_> {
    /// The columns of every table, read from the schema once.
    fn known(&mut self) -> Result<&HashMap<String, Vec<String>>> {
        if self.known.is_none() {
            let mut known = HashMap::new();
            for name in table_names(self.conn)? {
                let columns = columns(self.conn, &name)?;
                known.insert(name, columns);
            }
            self.known = Some(known);
        }
        self.known.as_ref().ok_or_else(|| Error::Internal("the tables were not read".into()))
    }

    /// Refuses a table or column the database does not have: names go
    /// into SQL text, so only the schema's own get there.
    fn check(&mut self, table: &str, columns: &[String]) -> Result<()> {
        let known = self.known()?;
        let Some(have) = known.get(table) else {
            return Err(invalid(format!("the database has no table `{table}`")));
        };
        if let Some(missing) = columns.iter().find(|c| !have.contains(c)) {
            return Err(invalid(format!("table `{table}` has no column `{missing}`")));
        }
        Ok(())
    }
}

impl TableReader for SqliteTables<'_> {
    fn tables(&mut self) -> Result<Vec<TableInfo>> {
        let names = table_names(self.conn)?;
        let mut parents: HashMap<String, BTreeSet<String>> = HashMap::new();
        for name in &names {
            let sql = format!("SELECT \"table\" FROM pragma_foreign_key_list({})", quote_literal(name));
            let mut statement = self.conn.prepare(&sql)?;
            let refs =
                statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<BTreeSet<_>>>()?;
            parents.insert(name.clone(), refs.into_iter().filter(|p| p != name && names.contains(p)).collect());
        }
        // Parents first; among tables free to go, the order they were created in.
        let mut ordered: Vec<String> = Vec::with_capacity(names.len());
        while ordered.len() < names.len() {
            let next = names
                .iter()
                .filter(|n| !ordered.contains(n))
                .find(|n| parents.get(*n).is_none_or(|p| p.iter().all(|p| ordered.contains(p))))
                // A cycle: its foreign keys are checked at commit anyway.
                .or_else(|| names.iter().find(|n| !ordered.contains(n)));
            match next {
                Some(n) => ordered.push(n.clone()),
                None => break,
            }
        }
        let mut tables = Vec::with_capacity(ordered.len());
        for name in ordered {
            let columns = columns(self.conn, &name)?;
            tables.push(TableInfo { name, columns });
        }
        Ok(tables)
    }

    fn count(&mut self, table: &str) -> Result<u64> {
        self.check(table, &[])?;
        let n: i64 = self.conn.query_row(&format!("SELECT COUNT(*) FROM {}", quote(table)), [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn rows(&mut self, table: &str, columns: &[String], row: &mut dyn FnMut(Vec<Value>) -> Result<()>) -> Result<()> {
        self.check(table, columns)?;
        let key = primary_key(self.conn, table)?;
        let order = if key.is_empty() { "rowid".to_string() } else { list(&key) };
        let sql = format!("SELECT {} FROM {} ORDER BY {order}", list(columns), quote(table));
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for (i, column) in columns.iter().enumerate() {
                values.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Integer(n),
                    ValueRef::Text(bytes) => Value::Text(String::from_utf8(bytes.to_vec()).map_err(|_| {
                        Error::storage(format!("{table}.{column} holds text that is not UTF-8: it cannot be copied"))
                    })?),
                    ValueRef::Real(_) | ValueRef::Blob(_) => {
                        return Err(Error::storage(format!(
                            "{table}.{column} holds a {} value, which ezdelivery never writes: it cannot be copied",
                            r.get_ref(i)?.data_type()
                        )))
                    }
                });
            }
            row(values)?;
        }
        Ok(())
    }

    fn repo(&mut self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        let mut repo = SqliteRepo::new(self.conn, self.cache);
        work(&mut repo)?;
        repo.flush()
    }
}

impl TableWriter for SqliteTables<'_> {
    fn insert(&mut self, table: &str, columns: &[String], rows: &[Vec<Value>]) -> Result<()> {
        self.check(table, columns)?;
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT INTO {} ({}) VALUES ({})", quote(table), list(columns), placeholders.join(", "));
        let mut statement = self.conn.prepare_cached(&sql)?;
        for row in rows {
            if row.len() != columns.len() {
                return Err(Error::Internal(format!(
                    "a row of {} values for the {} columns of {table}",
                    row.len(),
                    columns.len()
                )));
            }
            let values = row.iter().map(|v| match v {
                Value::Null => SqlValue::Null,
                Value::Integer(n) => SqlValue::Integer(*n),
                Value::Text(t) => SqlValue::Text(t.clone()),
            });
            statement.execute(rusqlite::params_from_iter(values))?;
        }
        Ok(())
    }

    fn after_import(&mut self) -> Result<()> {
        // The next event's seq, as every other id, is one more than the
        // largest stored.
        Ok(())
    }
}

/// The tables of the database but SQLite's own, in the order they were created.
fn table_names(conn: &Connection) -> Result<Vec<String>> {
    let mut statement = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )?;
    let mut names = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    // In the order the migrations first create them, not as `sqlite_master`
    // holds them now: a table rebuilt by a later version (the event log in
    // version 7) keeps its place, as PostgreSQL's schema has it.
    let mut order: Vec<String> = Vec::new();
    for script in super::schema::MIGRATIONS {
        for table in super::preflight::created_tables(script) {
            if !order.contains(&table) {
                order.push(table);
            }
        }
    }
    // Stable: tables the migrations do not name keep their order, last.
    names.sort_by_key(|name| order.iter().position(|t| t == name).unwrap_or(usize::MAX));
    Ok(names)
}

/// The columns of `table`, in declaration order.
fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let sql = format!("SELECT name FROM pragma_table_info({}) ORDER BY cid", quote_literal(table));
    let mut statement = conn.prepare(&sql)?;
    let names = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

/// The primary key's columns of `table`, in key order (empty: none).
fn primary_key(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let sql = format!("SELECT name FROM pragma_table_info({}) WHERE pk > 0 ORDER BY pk", quote_literal(table));
    let mut statement = conn.prepare(&sql)?;
    let names = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

/// `"name"`, an identifier quoted for SQL.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'name'`, a string literal for SQL.
fn quote_literal(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}

/// `"a", "b"`.
fn list(names: &[String]) -> String {
    names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", ")
}

fn invalid(message: String) -> Error {
    Error::Invalid(Invalid(message))
}
