//! `ezdelivery db copy --to URL|PATH`: the `--db` database (a SQLite file
//! or a PostgreSQL database), whole, into a new one of either kind,
//! verified before it is committed (`ezdelivery_core::app::copy`).
//!
//! The target is a SQLite file (created if missing, as `--db` is), or a
//! `postgres://` / `postgresql://` URL naming an existing database (its
//! schema is created if it has none). Before anything is written, a target
//! that is the source itself (the same file by any path; the same host,
//! port and database name, whatever the user or password), or a database
//! that holds rows, is refused (exit 2) and left untouched. A URL is shown
//! only with its password redacted ([`redact`]), and the password is taken
//! out of any error the copy ends with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ezdelivery_core::adapters::sqlite::SqliteStorage;
use ezdelivery_core::app::copy;
use ezdelivery_core::ports::copy::TableCopy;
use ezdelivery_core::{Error, Result, StorageError, StorageProblem};

use crate::args::DbCommand;
use crate::config::Config;
use crate::errors;
use crate::render::{self, Output};
use crate::storage::{redact, Database};

/// Where a copy goes.
enum Target {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, as given (never printed as it is: [`redact`]).
    Postgres(String),
}

impl Target {
    /// `to` read as `--db` is read (a URL of another kind is refused).
    fn parse(to: &str) -> Result<Target> {
        Ok(match Database::from_arg(Some(std::path::Path::new(to)))? {
            Database::Sqlite(path) => Target::Sqlite(path),
            Database::Postgres(url) => Target::Postgres(url),
        })
    }

    /// The target as people see it.
    fn shown(&self) -> String {
        match self {
            Target::Sqlite(path) => path.display().to_string(),
            Target::Postgres(url) => redact(url),
        }
    }

    /// `error` without the target's password (a SQLite path is kept).
    fn scrub(&self, error: Error) -> Error {
        match self {
            Target::Sqlite(_) => error,
            Target::Postgres(url) => Database::Postgres(url.clone()).scrub(error),
        }
    }
}

/// Runs `db copy` from the database `db` (errors naming `db` itself are
/// scrubbed by the caller; those naming the target here).
pub fn run(db: &Database, config: &Config, command: &DbCommand) -> Result<Output> {
    let DbCommand::Copy { to } = command;
    let target = Target::parse(to)?;
    copy_to(db, config, &target).map_err(|e| target.scrub(e))
}

fn copy_to(db: &Database, config: &Config, target: &Target) -> Result<Output> {
    // Looked at read-only first: a missing source is not created, a
    // foreign or newer file is refused as `--db` refuses it.
    if let Database::Sqlite(path) = db {
        if SqliteStorage::inspect(path)?.is_none() {
            return Err(errors::copy_without_source(path));
        }
    }
    let itself = match (db, target) {
        (Database::Sqlite(a), Target::Sqlite(b)) => same_file(a, b),
        (Database::Postgres(a), Target::Postgres(b)) => same_database(a, b),
        _ => false,
    };
    if itself {
        return Err(errors::copy_into_itself(&db.to_string()));
    }
    // Before the target is opened (opening migrates): a database that
    // holds rows is refused and left exactly as it was.
    let holding = match target {
        Target::Sqlite(path) => SqliteStorage::inspect(path)?.map(|contents| contents.rows).unwrap_or_default(),
        Target::Postgres(url) => inspect_postgres(url).map_err(about_target)?,
    };
    if holding.values().any(|n| *n > 0) {
        let postgres = matches!(target, Target::Postgres(_));
        return Err(errors::copy_into_non_empty(&target.shown(), &holdings(&holding), postgres));
    }
    // The source as every command opens it (brought up to date; a SQLite
    // file that cannot be written is read read-only), before the target
    // is opened: a source that cannot be opened leaves no file behind.
    let from: Box<dyn TableCopy> = match db {
        Database::Sqlite(path) => Box::new(SqliteStorage::open_for_reading(path, config.storage.synchronous)?),
        Database::Postgres(url) => open_postgres(url)?,
    };
    let to: Box<dyn TableCopy> = match target {
        Target::Sqlite(path) => Box::new(SqliteStorage::open_with(path, config.storage.synchronous)?),
        Target::Postgres(url) => open_postgres(url).map_err(about_target)?,
    };
    let report = copy::copy(from.as_ref(), to.as_ref())?;
    Ok(render::copy(&db.to_string(), &target.shown(), &report))
}

/// A target's server that cannot be reached: the step to take is about
/// `--to`, not `--db` (which [`errors::message`] would name).
fn about_target(error: Error) -> Error {
    match error {
        Error::Storage(e) if e.problem() == StorageProblem::Unreachable => {
            Error::Storage(StorageError::new(format!("{e}; check the --to URL and that its server runs")))
        }
        other => other,
    }
}

/// "81 rows (26 in events, 16 in messages, 16 in message_deliveries, …)":
/// the tables that hold the most.
fn holdings(rows: &BTreeMap<String, u64>) -> String {
    const LISTED: usize = 3;
    let mut tables: Vec<(&String, &u64)> = rows.iter().filter(|(_, n)| **n > 0).collect();
    tables.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut listed: Vec<String> = tables.iter().take(LISTED).map(|(t, n)| format!("{n} in {t}")).collect();
    if tables.len() > LISTED {
        listed.push("…".into());
    }
    let total: u64 = rows.values().sum();
    format!("{total} row{} ({})", if total == 1 { "" } else { "s" }, listed.join(", "))
}

/// The PostgreSQL database at `url`, as a storage to copy from or into
/// (brought up to date as `--db` is). Its errors never hold the password.
#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> Result<Box<dyn TableCopy>> {
    Ok(Box::new(ezdelivery_core::adapters::postgres::PostgresStorage::open(url)?))
}

/// How many rows each table of the PostgreSQL database at `url` holds,
/// read without writing anything.
#[cfg(feature = "postgres")]
fn inspect_postgres(url: &str) -> Result<BTreeMap<String, u64>> {
    ezdelivery_core::adapters::postgres::PostgresStorage::inspect(url)
}

/// Whether two PostgreSQL URLs name the same database.
#[cfg(feature = "postgres")]
fn same_database(a: &str, b: &str) -> bool {
    ezdelivery_core::adapters::postgres::PostgresStorage::same_database(a, b)
}

/// A build without PostgreSQL refuses a PostgreSQL URL (exit 2).
#[cfg(not(feature = "postgres"))]
fn open_postgres(url: &str) -> Result<Box<dyn TableCopy>> {
    Err(errors::postgres_not_supported(&redact(url)))
}

/// A build without PostgreSQL refuses a PostgreSQL URL (exit 2).
#[cfg(not(feature = "postgres"))]
fn inspect_postgres(url: &str) -> Result<BTreeMap<String, u64>> {
    Err(errors::postgres_not_supported(&redact(url)))
}

/// Without PostgreSQL, URLs are compared as written.
#[cfg(not(feature = "postgres"))]
fn same_database(a: &str, b: &str) -> bool {
    a == b
}

/// Whether `a` and `b` are the same file (the same path, a link to it, or
/// another path to it); a `b` that does not exist yet is not.
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if ma.dev() == mb.dev() && ma.ino() == mb.ino() {
            return true;
        }
    }
    let _ = (ma, mb);
    matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}
