//! `ezdelivery db copy --to URL|PATH`: the `--db` database, whole, into a
//! new one, verified before it is committed (`ezdelivery_core::app::copy`).
//!
//! The target is a SQLite file (created if missing, as `--db` is), or a
//! `postgres://` / `postgresql://` URL, which [`open_postgres`] refuses
//! until this build has a PostgreSQL storage. Before anything is written,
//! a target that is the source itself, or an existing database that holds
//! rows, is refused (exit 2) and left untouched. A URL is shown only with
//! its password redacted ([`redact`]).

use std::path::{Path, PathBuf};

use ezdelivery_core::adapters::sqlite::SqliteStorage;
use ezdelivery_core::app::copy;
use ezdelivery_core::ports::copy::TableCopy;
use ezdelivery_core::Result;

use crate::args::DbCommand;
use crate::config::Config;
use crate::errors;
use crate::render::{self, Output};

/// Where a copy goes.
enum Target {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, as given (never printed as it is: [`redact`]).
    Postgres(String),
}

impl Target {
    fn parse(to: &str) -> Target {
        if to.starts_with("postgres://") || to.starts_with("postgresql://") {
            Target::Postgres(to.to_string())
        } else {
            Target::Sqlite(PathBuf::from(to))
        }
    }

    /// The target as people see it.
    fn shown(&self) -> String {
        match self {
            Target::Sqlite(path) => path.display().to_string(),
            Target::Postgres(url) => redact(url),
        }
    }
}

/// Runs `db copy` from the database at `db`.
pub fn run(db: &Path, config: &Config, command: &DbCommand) -> Result<Output> {
    let DbCommand::Copy { to } = command;
    let target = Target::parse(to);
    // Looked at read-only first: a missing source is not created, a
    // foreign or newer file is refused as `--db` refuses it.
    if SqliteStorage::inspect(db)?.is_none() {
        return Err(errors::copy_without_source(db));
    }
    let open_source = || {
        // As every command opens it (brought up to date); one that cannot
        // be written is read read-only. Opened before the target is
        // created, so a source that cannot be opened leaves no file behind.
        SqliteStorage::open_for_reading(db, config.storage.synchronous)
    };
    let (from, to): (SqliteStorage, Box<dyn TableCopy>) = match &target {
        Target::Sqlite(path) => {
            if same_file(db, path) {
                return Err(errors::copy_into_itself(db));
            }
            // Before it is opened (opening migrates): a database that holds
            // rows is refused and left byte for byte as it was.
            if let Some(contents) = SqliteStorage::inspect(path)? {
                if !contents.is_empty() {
                    return Err(errors::copy_into_non_empty(&target.shown(), &holdings(&contents)));
                }
            }
            let from = open_source()?;
            (from, Box::new(SqliteStorage::open_with(path, config.storage.synchronous)?))
        }
        Target::Postgres(url) => {
            let to = open_postgres(url)?;
            (open_source()?, to)
        }
    };
    let report = copy::copy(&from, to.as_ref())?;
    Ok(render::copy(&db.display().to_string(), &target.shown(), &report))
}

/// "81 rows (26 in events, 16 in messages, 16 in message_deliveries, …)":
/// the tables that hold the most.
fn holdings(contents: &ezdelivery_core::adapters::sqlite::Contents) -> String {
    const LISTED: usize = 3;
    let mut tables: Vec<(&String, &u64)> = contents.rows.iter().filter(|(_, n)| **n > 0).collect();
    tables.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut listed: Vec<String> = tables.iter().take(LISTED).map(|(t, n)| format!("{n} in {t}")).collect();
    if tables.len() > LISTED {
        listed.push("…".into());
    }
    let total = contents.total_rows();
    format!("{total} row{} ({})", if total == 1 { "" } else { "s" }, listed.join(", "))
}

/// The PostgreSQL target of a copy.
// PG: with the `postgres` feature, `PostgresStorage::open(url)` (which
// implements `TableCopy`) plugs in here:
// `Ok(Box::new(ezdelivery_core::adapters::postgres::PostgresStorage::open(url)?))`.
// Its errors must not repeat the URL's password.
fn open_postgres(url: &str) -> Result<Box<dyn TableCopy>> {
    Err(errors::postgres_not_supported(&redact(url)))
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

/// `url` with its password replaced by `***`: in the user part
/// (`postgres://user:***@host/db`) and as a `password=` parameter. When in
/// doubt (an `@` further on), more is hidden, never less.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let rest = match rest.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => rest.to_string(),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(redact("postgres://ez:s3cret@db.local:5432/orders"), "postgres://ez:***@db.local:5432/orders");
        assert_eq!(redact("postgresql://ez@db/orders"), "postgresql://ez@db/orders");
        assert_eq!(redact("postgres://db/orders?sslmode=require"), "postgres://db/orders?sslmode=require");
        assert_eq!(redact("postgres://ez:p@ss/w@db/orders"), "postgres://ez:***@db/orders");
        assert_eq!(
            redact("postgres://db/orders?user=ez&password=s3cret&sslmode=require"),
            "postgres://db/orders?user=ez&password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://ez:s3cret@db/o?PASSWORD=x"), "postgres://ez:***@db/o?PASSWORD=***");
    }
}
