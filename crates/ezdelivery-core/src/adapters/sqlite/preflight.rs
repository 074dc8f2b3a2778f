//! A read-only look at an existing file before anything is written to it.
//!
//! [`SqliteStorage::open`](super::SqliteStorage::open) sets PRAGMAs (WAL
//! mode among them) and migrates: both write. So before it does, a file that
//! already holds something is opened read-only and refused, with the file
//! left byte for byte as it was, when it is
//!
//! - not a SQLite database at all;
//! - a SQLite database with tables that ezdelivery's schema, at the file's
//!   version, does not have (another program's database);
//! - written by a newer ezdelivery (`PRAGMA user_version` above
//!   [`schema::latest`]).
//!
//! When no `-wal` or `-journal` file sits beside it (nobody has it open, no
//! interrupted write), the file is opened `immutable`: no lock is taken and
//! no file is created. Otherwise it is opened read-only the ordinary way,
//! which reads what the `-wal` file holds.
//!
//! "Our tables" are not written down twice: they are the tables that the
//! migrations create, found by running them once per process into a
//! database in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::connection::BUSY_TIMEOUT;
use super::schema;
use crate::domain::validate::Invalid;
use crate::{Error, Result};

/// The first 16 bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How many foreign table names a message lists before "and N more".
const LISTED: usize = 5;

/// What a read-only look at an ezdelivery database file found (see
/// [`SqliteStorage::inspect`](super::SqliteStorage::inspect)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contents {
    /// The schema version the file was written with (`PRAGMA
    /// user_version`); 0 for a SQLite file that ezdelivery never migrated.
    pub version: i64,
    /// How many rows each of ezdelivery's tables in the file holds, by table
    /// name (`orders`, `stores`, …); a table the file does not have yet is
    /// missing.
    pub rows: BTreeMap<String, u64>,
}

impl Contents {
    /// How many rows `table` holds (0 when the file does not have it).
    pub fn rows_in(&self, table: &str) -> u64 {
        self.rows.get(table).copied().unwrap_or(0)
    }

    /// How many rows all of ezdelivery's tables hold together.
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }

    /// Whether no table holds a row: nothing would be lost or mixed in.
    pub fn is_empty(&self) -> bool {
        self.total_rows() == 0
    }
}

/// Looks at the file at `path` without writing to it: `None` when there is
/// no file there yet, or an empty one (a new database), or something that
/// is not a plain file (left for the ordinary open to report). With
/// `count`, counts the rows of each of our tables too.
///
/// Fails with [`Error::Invalid`] for a file to refuse (see the module
/// documentation), and with [`Error::Storage`] when the file cannot be read.
pub(super) fn check(path: &Path, count: bool) -> Result<Option<Contents>> {
    let cannot_read = |e: std::io::Error| Error::storage_caused(format!("cannot read {}: {e}", path.display()), e);
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // A name too long, or one a part of which is a file: the path given is wrong.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::InvalidFilename | std::io::ErrorKind::NotADirectory) => {
            return Err(Error::Invalid(crate::domain::validate::Invalid(format!(
                "{} cannot be a database file: {e}",
                path.display()
            ))))
        }
        Err(e) => return Err(cannot_read(e)),
    };
    if !metadata.is_file() || metadata.len() == 0 {
        return Ok(None);
    }
    let mut header = Vec::with_capacity(MAGIC.len());
    std::fs::File::open(path).and_then(|f| f.take(MAGIC.len() as u64).read_to_end(&mut header)).map_err(cannot_read)?;
    if header != MAGIC {
        return Err(not_a_database(path));
    }
    let conn = open_read_only(path).map_err(|e| read_error(path, e))?;
    let found = look(&conn, count).map_err(|e| read_error(path, e))?;
    drop(conn);
    judge(path, found)
}

/// What [`look`] read from the file.
struct Found {
    version: i64,
    /// Every table but SQLite's own (`sqlite_…`).
    tables: BTreeSet<String>,
    /// The rows of each table, when counted.
    rows: BTreeMap<String, u64>,
}

/// Decides on what was found: the contents of an ezdelivery database, or the
/// refusal of any other.
fn judge(path: &Path, found: Found) -> Result<Option<Contents>> {
    // The common case, an ezdelivery database of a version this build
    // knows, is settled by reading the migrations' SQL (microseconds); any
    // other by running them (about a millisecond, once per process).
    if fits(&found, tables_by_reading()) || fits(&found, our_tables()?) {
        return Ok(Some(Contents { version: found.version, rows: found.rows }));
    }
    let ours = our_tables()?;
    let ever: BTreeSet<&String> = ours.iter().flatten().collect();
    let latest = schema::latest();
    let file = path.display();
    if found.version > latest && (found.tables.is_empty() || found.tables.iter().any(|t| ever.contains(t))) {
        return Err(invalid(format!(
            "{file} was written by a newer ezdelivery (schema version {}; this one knows up to {latest}): \
             upgrade ezdelivery to use it",
            found.version
        )));
    }
    let known = usize::try_from(found.version).ok().and_then(|v| ours.get(v));
    let foreign: Vec<&String> = found.tables.iter().filter(|t| !known.is_some_and(|k| k.contains(*t))).collect();
    if !foreign.is_empty() {
        return Err(invalid(format!(
            "{file} is not an ezdelivery database (it has {}); ezdelivery leaves it untouched",
            tables_named(&foreign)
        )));
    }
    // What is left fits no version: one below 0, with no table.
    Err(invalid(format!("{file} has an unknown schema version {}; ezdelivery leaves it untouched", found.version)))
}

/// Whether every table found is one that the schema at the found version has.
fn fits(found: &Found, ours: &[BTreeSet<String>]) -> bool {
    let known = usize::try_from(found.version).ok().and_then(|v| ours.get(v));
    known.is_some_and(|k| found.tables.iter().all(|t| k.contains(t)))
}

/// "table foo" or "tables foo, bar and 3 more".
fn tables_named(tables: &[&String]) -> String {
    let listed: Vec<&str> = tables.iter().take(LISTED).map(|t| t.as_str()).collect();
    let more = tables.len().saturating_sub(LISTED);
    let list = if more > 0 { format!("{} and {more} more", listed.join(", ")) } else { listed.join(", ") };
    format!("{} {list}", if tables.len() == 1 { "table" } else { "tables" })
}

fn invalid(message: String) -> Error {
    Error::Invalid(Invalid(message))
}

fn not_a_database(path: &Path) -> Error {
    invalid(format!(
        "{} is not an ezdelivery database (it is not a SQLite database at all); ezdelivery leaves it untouched",
        path.display()
    ))
}

/// An error while reading: SQLite's "not a database" (a damaged or
/// encrypted file with a SQLite header) is the file's fault; anything else
/// is the storage's.
fn read_error(path: &Path, e: rusqlite::Error) -> Error {
    if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        return not_a_database(path);
    }
    super::failure::sqlite_failure(format!("cannot read {}: {e}", path.display()), e)
}

/// Opens `path` read-only: `immutable` (no lock, no file created) when no
/// `-wal` or `-journal` file is beside it, else the ordinary way.
pub(super) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let beside = |suffix: &str| {
        let mut name = OsString::from(path.as_os_str());
        name.push(suffix);
        // An unknown answer counts as "there": the ordinary way is the safe one.
        PathBuf::from(name).try_exists().unwrap_or(true)
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match immutable_uri(path) {
        Some(uri) if !beside("-wal") && !beside("-journal") => Connection::open_with_flags(uri, flags)?,
        _ => super::connection::open_file(path, flags - OpenFlags::SQLITE_OPEN_URI)?,
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// `file:/abs/path?immutable=1`, every byte but the unreserved ones
/// percent-encoded; `None` when the path has no absolute form.
fn immutable_uri(path: &Path) -> Option<String> {
    let absolute = std::path::absolute(path).ok()?;
    let bytes = absolute.as_os_str().as_encoded_bytes();
    let mut uri = String::from("file:");
    if cfg!(windows) {
        // `file:/C:/folder/file.db`.
        uri.push('/');
    }
    for &b in bytes {
        match b {
            b'\\' if cfg!(windows) => uri.push('/'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => uri.push(char::from(b)),
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    Some(uri)
}

/// Reads the schema version, the tables and, with `count`, their rows.
fn look(conn: &Connection, count: bool) -> rusqlite::Result<Found> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables = table_names(conn)?;
    let mut rows = BTreeMap::new();
    if count {
        for table in &tables {
            let sql = format!("SELECT COUNT(*) FROM \"{}\"", table.replace('"', "\"\""));
            let n: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
            rows.insert(table.clone(), u64::try_from(n).unwrap_or(0));
        }
    }
    Ok(Found { version, tables, rows })
}

/// The tables of `conn`'s database but SQLite's own.
fn table_names(conn: &Connection) -> rusqlite::Result<BTreeSet<String>> {
    let mut statement =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")?;
    let names = statement.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

/// For each schema version `v` (index `v`), every table that the first `v`
/// migrations create, including any that a later one of them drops or
/// renames: a database at version `v` may hold those and no other.
pub(super) fn our_tables() -> Result<&'static [BTreeSet<String>]> {
    static OURS: OnceLock<std::result::Result<Vec<BTreeSet<String>>, String>> = OnceLock::new();
    let ours = OURS.get_or_init(|| {
        let derive = || -> rusqlite::Result<Vec<BTreeSet<String>>> {
            let conn = Connection::open_in_memory()?;
            let mut seen = BTreeSet::new();
            let mut by_version = vec![seen.clone()];
            for script in schema::MIGRATIONS {
                // Statement by statement: a table a script creates and
                // then renames or drops (version 7's rebuilt log) counts.
                use rusqlite::fallible_iterator::FallibleIterator as _;
                let mut batch = rusqlite::Batch::new(&conn, script);
                while let Some(mut statement) = batch.next()? {
                    statement.execute([])?;
                    seen.extend(table_names(&conn)?);
                }
                by_version.push(seen.clone());
            }
            Ok(by_version)
        };
        derive().map_err(|e| format!("cannot list the schema's tables: {e}"))
    });
    ours.as_deref().map_err(|e| Error::Internal(e.clone()))
}

/// [`our_tables`] by reading the migrations' SQL rather than running it:
/// the names after `CREATE [TEMP] TABLE [IF NOT EXISTS]` and after `ALTER
/// TABLE … RENAME TO`. A table it misses only costs the slower way; a test
/// checks that both ways agree.
pub(super) fn tables_by_reading() -> &'static [BTreeSet<String>] {
    static READ: OnceLock<Vec<BTreeSet<String>>> = OnceLock::new();
    READ.get_or_init(|| {
        let mut seen = BTreeSet::new();
        let mut by_version = vec![seen.clone()];
        for script in schema::MIGRATIONS {
            seen.extend(created_tables(script));
            by_version.push(seen.clone());
        }
        by_version
    })
}

/// The tables that `script` creates or renames to, read from its words.
pub(super) fn created_tables(script: &str) -> Vec<String> {
    let code: String = script.lines().map(|l| l.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
    let words: Vec<&str> =
        code.split(|c: char| c.is_whitespace() || "(),;".contains(c)).filter(|w| !w.is_empty()).collect();
    let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let name = |i: usize| {
        words.get(i).map(|w| {
            let w = w.strip_prefix("main.").unwrap_or(w);
            w.trim_matches(|c| matches!(c, '"' | '`' | '[' | ']')).to_string()
        })
    };
    let mut tables = Vec::new();
    for i in 0..words.len() {
        if is(i, "create") {
            let mut j = i + 1;
            if is(j, "temp") || is(j, "temporary") {
                j += 1;
            }
            if !is(j, "table") {
                continue;
            }
            j += 1;
            if is(j, "if") && is(j + 1, "not") && is(j + 2, "exists") {
                j += 3;
            }
            tables.extend(name(j));
        } else if is(i, "alter") && is(i + 1, "table") && is(i + 3, "rename") && is(i + 4, "to") {
            tables.extend(name(i + 5));
        }
    }
    tables
}
