//! Which storage `--db` (or `EZDELIVERY_DB`) names, and opening it: a
//! `postgres://` or `postgresql://` URL is a PostgreSQL database, anything
//! else the path of a SQLite file. [`open`] is the one place that picks the
//! adapter.
//!
//! A URL may hold a password: it is never printed. [`Database`] shows a
//! URL through [`redact`], and [`Database::scrub`] takes it (and its
//! password) out of any error a command on it ends with.

use std::fmt;
use std::path::{Path, PathBuf};

use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};

use crate::config::StorageConfig;
use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::ports::Storage;
use ezdelivery_core::{Error, Result, StorageError};

/// The database a command runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, created with its folder on first use.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its URL (which may hold a password: show
    /// it only through [`redact`]).
    Postgres(String),
}

/// Whether `text` is a PostgreSQL URL rather than a file name.
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The scheme of `text` when it reads as a URL (`mysql://…`): letters,
/// digits, `+`, `-` or `.` after a letter, then `://`.
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))).then_some(scheme)
}

/// Whether `text` reads as libpq's `host=… dbname=…` connection string:
/// words of `key=value`, one of them a key libpq knows. A file could be
/// named so, but taking one for a file would write its password into a
/// file name.
fn is_libpq_keywords(text: &str) -> bool {
    const KEYS: [&str; 6] = ["host", "hostaddr", "port", "dbname", "user", "password"];
    let words: Vec<&str> = text.split_whitespace().collect();
    !words.is_empty()
        && words.iter().all(|w| w.contains('='))
        && words.iter().any(|w| w.split_once('=').is_some_and(|(key, _)| KEYS.contains(&key)))
}

impl Database {
    /// What `--db` names (already filled in from `EZDELIVERY_DB`), or
    /// without it the default SQLite file in the platform data folder.
    pub fn from_arg(db: Option<&Path>) -> Result<Database> {
        let Some(db) = db else {
            let data = dirs::data_dir().ok_or_else(|| {
                invalid("no data folder is known for this platform: pass --db PATH or set EZDELIVERY_DB".into())
            })?;
            return Ok(Database::Sqlite(data.join("ezdelivery").join("ezdelivery.db")));
        };
        match db.to_str() {
            Some(text) if is_postgres_url(text) => Ok(Database::Postgres(text.to_string())),
            // A misspelled or foreign URL would otherwise become folders
            // named after its parts, its password among them.
            // Not shown either: it may hold `password=…`.
            Some(text) if is_libpq_keywords(text) => Err(invalid(
                "--db takes a postgresql:// URL, not libpq's key=value form: write \
                 postgresql://user@host:port/dbname (the password in PGPASSWORD)"
                    .into(),
            )),
            Some(text) if let Some(scheme) = url_scheme(text) => Err(invalid(format!(
                "`{scheme}://…` is a URL of a database ezdelivery does not open: give a postgresql:// URL or a \
                 file path (a file whose name holds `://` as ./NAME)"
            ))),
            // Not shown: it may hold a password.
            None if is_postgres_url(&db.to_string_lossy()) => {
                Err(invalid("the PostgreSQL URL of --db is not valid UTF-8".into()))
            }
            _ => Ok(Database::Sqlite(db.to_path_buf())),
        }
    }

    /// `error` with this database's URL shown redacted and its password
    /// (as written, and percent-decoded) replaced by `***`, wherever the
    /// error's message (or the error below it) holds them; the error's kind,
    /// hence its exit code, is kept. A SQLite path is left as it is.
    pub fn scrub(&self, error: Error) -> Error {
        let Database::Postgres(url) = self else { return error };
        let mut secrets: Vec<String> = vec![url.clone()];
        for password in passwords(url) {
            secrets.push(percent_decoded(&password));
            secrets.push(password);
        }
        secrets.retain(|s| !s.is_empty());
        let hide = |text: &str| {
            let mut text = text.replace(url.as_str(), &redact(url));
            for secret in &secrets[1..] {
                text = text.replace(secret.as_str(), "***");
            }
            text
        };
        let mut whole = error.to_string();
        let mut below = std::error::Error::source(&error);
        while let Some(e) = below {
            whole.push_str(&e.to_string());
            below = e.source();
        }
        if !secrets.iter().any(|s| whole.contains(s.as_str())) {
            return error;
        }
        match error {
            Error::Invalid(Invalid(message)) => invalid(hide(&message)),
            Error::Internal(message) => Error::Internal(hide(&message)),
            Error::MoneyMoved { order, what, source } => {
                Error::MoneyMoved { order, what, source: Box::new(self.scrub(*source)) }
            }
            Error::Storage(e) => {
                // The error below may hold the secret too: its words join the message.
                let mut message = e.to_string();
                let mut below = std::error::Error::source(&e);
                while let Some(cause) = below {
                    message.push_str(&format!(": {cause}"));
                    below = cause.source();
                }
                Error::Storage(StorageError::new(hide(&message)))
            }
            Error::NotFound { what, id, store } => Error::NotFound { what, id: hide(&id), store },
            Error::Declined { order, reason } => Error::Declined { order, reason: hide(&reason) },
            Error::Unavailable { order, kept, reason, breaker_open } => {
                Error::Unavailable { order, kept, reason: hide(&reason), breaker_open }
            }
            // The state machine's refusals hold nothing from outside.
            refused @ Error::Refused(_) => refused,
        }
    }
}

/// A path as it is; a URL through [`redact`].
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// What a command does with its database, as far as opening it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads: a SQLite file that cannot be written is opened read-only,
    /// and one that does not exist reads as empty and is not created
    /// ([`SqliteStorage::open_for_reading`]).
    Reads,
    /// Reads what others write for as long as it runs (`events --follow`):
    /// as [`Access::Reads`], but a file that does not exist yet is created,
    /// so that it sees the first writes.
    Follows,
    /// Writes, and exits when done.
    Writes,
    /// Writes for as long as it runs (`serve`, `simulate`, `relay --watch`):
    /// at `synchronous = "normal"` a SQLite file's WAL is checkpointed on a
    /// thread of its own ([`SqliteStorage::checkpoint_in_background`]), so
    /// that commands seldom wait for the disk's syncs of a checkpoint. Not at
    /// `full`, where every commit waits for the disk anyway and it gained
    /// nothing measurable (BENCHMARKS.md), not worth its larger `-wal` file.
    Lasts,
}

/// Opens `db` for `access`: a SQLite file, or a PostgreSQL database
/// ([`open_postgres`], which opens it as usual whatever the command).
pub fn open(db: &Database, config: &StorageConfig, access: Access) -> Result<Box<dyn Storage>> {
    let synchronous = config.synchronous;
    Ok(match db {
        Database::Sqlite(path) => {
            let storage = match access {
                Access::Reads => SqliteStorage::open_for_reading(path, synchronous),
                Access::Follows if SqliteStorage::holds_nothing_yet(path) => {
                    SqliteStorage::open_with(path, synchronous)
                }
                Access::Follows => SqliteStorage::open_for_reading(path, synchronous),
                Access::Lasts if synchronous == Synchronous::Normal => {
                    SqliteStorage::open_with(path, synchronous).and_then(SqliteStorage::checkpoint_in_background)
                }
                Access::Writes | Access::Lasts => SqliteStorage::open_with(path, synchronous),
            };
            Box::new(storage.map_err(crate::config::another_file)?)
        }
        Database::Postgres(url) => open_postgres(url, config.pool_size()?).map_err(|e| db.scrub(e))?,
    })
}

/// Opens the PostgreSQL database at `url` (brought up to date, as a SQLite
/// file is). Its errors never repeat the URL's password.
#[cfg(feature = "postgres")]
pub fn open_postgres(url: &str, pool_size: u32) -> Result<Box<dyn Storage>> {
    Ok(Box::new(ezdelivery_core::adapters::postgres::PostgresStorage::open_with(url, pool_size)?))
}

/// A program built without PostgreSQL refuses a PostgreSQL URL (exit 2),
/// without repeating it.
#[cfg(not(feature = "postgres"))]
pub fn open_postgres(_url: &str, _pool_size: u32) -> Result<Box<dyn Storage>> {
    Err(invalid(
        "this ezdelivery was built without PostgreSQL (the `postgres` feature): pass --db PATH, or use a build with it"
            .into(),
    ))
}

/// `url` with its password replaced by `***`: the one in the user
/// information (`postgres://user:***@host/db`) and any query parameter
/// whose name holds `password` (`?password=***`). Everything from `://`
/// to the last `@` is taken for the user information, so a password with
/// a bare `@`, `/`, `?` or `#` in it is hidden whole (an `@` in the query
/// hides more than the password: better too much than too little).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, tail) = rest.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => (format!("{user}:***"), tail),
                None => (userinfo.to_string(), tail),
            }
        }
        None => (String::new(), rest),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.to_ascii_lowercase().contains("password") => format!("{name}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            format!("{path}?{}{fragment}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The passwords `url` holds, as written: the user information's, and the
/// values of query parameters whose name holds `password`.
fn passwords(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else { return Vec::new() };
    let mut found = Vec::new();
    let mut tail = rest;
    if let Some(at) = rest.rfind('@') {
        let (userinfo, after) = rest.split_at(at);
        if let Some((_, password)) = userinfo.split_once(':') {
            found.push(password.to_string());
        }
        tail = after;
    }
    if let Some((_, query)) = tail.split_once('?') {
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                if name.to_ascii_lowercase().contains("password") {
                    found.push(value.to_string());
                }
            }
        }
    }
    found
}

/// `text` with its `%XX` escapes decoded (as PostgreSQL reads a URL); an
/// escape that is not one, or bytes that are not UTF-8, are kept as written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

fn invalid(message: String) -> Error {
    Error::Invalid(Invalid(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_every_password_and_nothing_else() {
        let cases = [
            ("postgres://kim:s3cret@127.0.0.1:5432/ez", "postgres://kim:***@127.0.0.1:5432/ez"),
            ("postgresql://kim:s3cret@db/ez?sslmode=require", "postgresql://kim:***@db/ez?sslmode=require"),
            ("postgres://kim@db/ez", "postgres://kim@db/ez"),
            ("postgres://db/ez", "postgres://db/ez"),
            ("postgres://db/ez?user=kim&password=s3cret#x", "postgres://db/ez?user=kim&password=***#x"),
            (
                "postgres://kim:a%40b@db/ez?PassWord=x&sslpassword=y",
                "postgres://kim:***@db/ez?PassWord=***&sslpassword=***",
            ),
            // a bare @ / ? or # in the password is hidden whole
            ("postgres://kim:p@ss/w?rd#@db/ez", "postgres://kim:***@db/ez"),
            ("postgres://kim:@db/ez", "postgres://kim:***@db/ez"),
            ("/var/lib/ezdelivery.db", "/var/lib/ezdelivery.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
        for (url, secrets) in [
            ("postgres://kim:p@ss/w?rd#@db/ez", vec!["p@ss/w?rd#"]),
            ("postgres://kim:a%40b@db/ez?password=x", vec!["a%40b", "x"]),
            ("postgres://kim@db/ez", vec![]),
        ] {
            assert_eq!(passwords(url), secrets, "{url}");
        }
        assert_eq!(percent_decoded("a%40b%2"), "a@b%2");
        assert_eq!(percent_decoded("%ff"), "%ff", "not UTF-8: as written");
    }

    #[test]
    fn the_db_value_picks_the_adapter() {
        let pick = |text: &str| Database::from_arg(Some(Path::new(text))).unwrap();
        assert_eq!(pick("/tmp/ez.db"), Database::Sqlite("/tmp/ez.db".into()));
        assert_eq!(pick("postgres.db"), Database::Sqlite("postgres.db".into()));
        assert_eq!(pick("postgres://kim@db/ez"), Database::Postgres("postgres://kim@db/ez".into()));
        assert_eq!(pick("postgresql://db/ez"), Database::Postgres("postgresql://db/ez".into()));
        assert!(matches!(Database::from_arg(None), Ok(Database::Sqlite(_)) | Err(Error::Invalid(_))));
        assert_eq!(pick("postgres://kim:s3cret@db/ez").to_string(), "postgres://kim:***@db/ez");
        assert_eq!(pick("/tmp/ez.db").to_string(), "/tmp/ez.db");
        assert_eq!(pick("./mysql://x"), Database::Sqlite("./mysql://x".into()), "a path written as one");
        assert_eq!(pick("a=b.db"), Database::Sqlite("a=b.db".into()), "no key libpq knows");
        let Err(Error::Invalid(e)) = Database::from_arg(Some(Path::new("host=db dbname=ez password=KWpass"))) else {
            panic!("libpq's key=value form is refused")
        };
        assert!(e.0.contains("key=value") && !e.0.contains("KWpass"), "{e}");
        for url in ["postgress://kim:s3cret@db/ez", "mysql://u:p@h/db", "sqlite:///tmp/x.db"] {
            let Err(Error::Invalid(e)) = Database::from_arg(Some(Path::new(url))) else { panic!("{url} is refused") };
            assert!(!e.0.contains("s3cret") && !e.0.contains("u:p") && e.0.contains("://"), "{e}");
        }
    }

    #[test]
    fn an_unreachable_postgres_url_is_a_storage_error_that_shows_no_password() {
        // Nothing listens on port 1.
        let db = Database::Postgres("postgres://kim:s3cret@127.0.0.1:1/ez".into());
        let Err(error) = open(&db, &StorageConfig::default(), Access::Writes) else {
            panic!("nothing listens on port 1")
        };
        let expected = if cfg!(feature = "postgres") { "storage" } else { "invalid" };
        let kind = match &error {
            Error::Storage(s) if s.problem() == ezdelivery_core::StorageProblem::Unreachable => "storage",
            Error::Invalid(_) => "invalid",
            other => panic!("{other:?}"),
        };
        assert_eq!(kind, expected, "{error:?}");
        assert!(error.to_string().contains("PostgreSQL") && !error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn scrub_takes_the_url_and_its_password_out_of_any_error() {
        let url = "postgres://kim:a%40b@127.0.0.1/ez?password=qq";
        let db = Database::Postgres(url.into());
        let io = std::io::Error::other("auth failed for a@b");
        let cases = [
            (
                invalid(format!("cannot connect to {url}")),
                "cannot connect to postgres://kim:***@127.0.0.1/ez?password=***",
            ),
            (Error::Internal("password qq refused".into()), "password *** refused"),
            (Error::Storage(StorageError::caused_by("connect", io)), "storage failed: connect: auth failed for ***"),
        ];
        for (error, want) in cases {
            let kind = error.kind();
            let scrubbed = db.scrub(error);
            assert_eq!(scrubbed.to_string(), want);
            assert_eq!(scrubbed.kind(), kind, "the exit code is kept");
        }
        let money = Error::MoneyMoved {
            order: 3,
            what: ezdelivery_core::domain::Billing::Payment,
            source: Box::new(Error::Internal(format!("lost {url}"))),
        };
        let scrubbed = db.scrub(money);
        assert!(matches!(scrubbed, Error::MoneyMoved { order: 3, .. }), "{scrubbed:?}");
        assert!(!scrubbed.to_string().contains("a%40b") && !scrubbed.to_string().contains("qq"), "{scrubbed}");
        // nothing to hide: the error is untouched, and a SQLite path is never touched
        let plain = Error::not_found(ezdelivery_core::Record::Order, 7);
        assert_eq!(db.scrub(plain).to_string(), "order 7 does not exist");
        let sqlite = Database::Sqlite("/tmp/kim:a%40b".into());
        assert_eq!(sqlite.scrub(Error::Internal("kim:a%40b".into())).to_string(), "kim:a%40b");
    }
}
