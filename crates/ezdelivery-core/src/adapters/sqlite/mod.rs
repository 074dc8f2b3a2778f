//! SQLite storage (the default): one database file in WAL mode.
//!
//! - Writers run in `BEGIN IMMEDIATE` transactions and wait up to
//!   [`BUSY_TIMEOUT`] for another process's lock instead of failing with
//!   "database is locked".
//! - Readers run in deferred transactions: a consistent snapshot that WAL
//!   lets run beside a writer. The file is read through a memory map (up
//!   to 64 GiB, as far as the SQLite linked in allows: 2 GiB unless built
//!   with a larger `SQLITE_MAX_MMAP_SIZE`). So the file must be on a local
//!   file system (as WAL needs anyway), and a read error of the disk under
//!   the map stops the process (`SIGBUS`) instead of failing the command.
//! - The file is created readable and writable by its owner only.
//! - The schema is versioned (`PRAGMA user_version`) and migrated on open.
//! - An existing file is first looked at read-only (`preflight`): another
//!   program's database, one from a newer ezdelivery, or a file that is not
//!   a database is refused before a byte of it is written; so is a path
//!   that is not a plain file (a folder, `/dev/null`, a FIFO).
//! - A database that cannot be written (a read-only file, folder or file
//!   system) can still be read: [`SqliteStorage::open_read_only`], or
//!   [`SqliteStorage::open_for_reading`], which falls back to it. Writes
//!   through it are refused.
//!
//! Times are stored as fixed-width RFC 3339 UTC text with microseconds
//! (`2024-05-01T12:00:00.000000Z`), so comparing strings compares times;
//! anything finer than a microsecond is dropped, as PostgreSQL would.

mod cache;
mod checkpoint;
mod connection;
mod copy;
mod failure;
mod pending;
mod preflight;
mod repo;
mod schema;
mod transaction;
mod upgrade;

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::ports::{Repo, Storage};
use crate::{Error, Result, StorageError, StorageProblem};

use cache::RowCache;
use checkpoint::Checkpoints;
#[allow(deprecated)]
pub use connection::CHECKPOINT_PAGES;
use connection::STATEMENT_CACHE;
pub use connection::{checkpoint_pages, BUSY_TIMEOUT, CHECKPOINT_BYTES, MMAP_SIZE, PAGE_SIZE};
use failure::{problem_of, sqlite_failure};
pub use preflight::Contents;
use repo::SqliteRepo;
use transaction::Transaction;

/// How hard SQLite works to keep commits on disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every commit is on disk before it returns: an acknowledged payment
    /// survives a power loss (the default).
    #[default]
    Full,
    /// Faster; never loses data when the program crashes, but the last
    /// commits may be lost on power loss.
    Normal,
}

impl Synchronous {
    /// The name in the configuration file and in `PRAGMA synchronous`
    /// (`"full"`, `"normal"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

impl std::str::FromStr for Synchronous {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            other => Err(format!("unknown synchronous `{other}`: use \"full\" or \"normal\"")),
        }
    }
}

/// Storage in a SQLite database (see the module documentation).
#[derive(Debug)]
pub struct SqliteStorage {
    /// The connection and its cache, one transaction at a time: SQLite
    /// has one writer per file anyway, and a connection serves one thread.
    session: Mutex<Session>,
    /// Opened read-only: the file's path as shown in errors.
    read_only: Option<String>,
}

/// A connection with the rows it read or wrote lately.
#[derive(Debug)]
struct Session {
    conn: Connection,
    cache: RowCache,
    /// Checkpoints taken off this connection's thread, if asked for
    /// ([`SqliteStorage::checkpoint_in_background`]). Dropped after `conn`
    /// (stopping and joining the worker): whichever connection closes last
    /// runs SQLite's last checkpoint and removes the WAL, as always.
    checkpoints: Option<Checkpoints>,
}

impl Session {
    fn new(conn: Connection) -> Mutex<Session> {
        Mutex::new(Session { conn, cache: RowCache::default(), checkpoints: None })
    }
}

/// The size of `conn`'s pages: its file's, or, before the file's first
/// page is written, the size it will be created with.
fn page_size(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA page_size", [], |r| r.get(0))
}

/// The connection of a locked session ([`SqliteStorage::connection`]).
struct ConnectionGuard<'a>(std::sync::MutexGuard<'a, Session>);

impl std::ops::Deref for ConnectionGuard<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

/// Why [`SqliteStorage::open`] failed, and whether for want of access
/// (permissions; a read-only file, folder or file system), when reading
/// the file read-only may still work.
struct Failed {
    error: Error,
    access: bool,
}

/// What an error for want of access adds: what to look at.
const ACCESS_HINT: &str =
    "check that the file and its folder are writable (SQLite keeps -wal and -shm files beside the database)";

impl Failed {
    /// `what` failed with an I/O error: for want of access, or not.
    fn io(what: String, e: std::io::Error) -> Failed {
        use std::io::ErrorKind;
        let access = matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem);
        let full = if e.kind() == ErrorKind::StorageFull { StorageProblem::Full } else { StorageProblem::Other };
        Failed::new(what, e, access, full)
    }

    /// `what` failed in SQLite: for want of access, or not.
    fn sqlite(what: String, e: rusqlite::Error) -> Failed {
        let access = matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied)
        );
        let problem = problem_of(&e);
        Failed::new(what, e, access, problem)
    }

    /// `otherwise` is the problem when it is not one of access.
    fn new(
        what: String,
        e: impl std::error::Error + Send + Sync + 'static,
        access: bool,
        otherwise: StorageProblem,
    ) -> Failed {
        let (message, problem) = match access {
            true => (format!("{what}: {e}; {ACCESS_HINT}"), StorageProblem::Access),
            false => (format!("{what}: {e}"), otherwise),
        };
        Failed { error: Error::Storage(StorageError::caused_by(message, e).because(problem)), access }
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed { error, access: false }
    }
}

impl SqliteStorage {
    /// Opens the database at `path` with every commit on disk before it
    /// returns ([`Synchronous::Full`]): [`SqliteStorage::open_with`] says the
    /// rest. The file-backed twin of `MemoryStorage::new()`:
    ///
    /// ```no_run
    /// use ezdelivery_core::adapters::sqlite::SqliteStorage;
    /// use ezdelivery_core::{Engine, Error};
    ///
    /// fn main() -> Result<(), Error> {
    ///     let engine = Engine::builder(SqliteStorage::open("orders.db")?).build();
    ///     let store = engine.add_store("BBQ", Some("park"), None)?;
    ///     println!("store {} registered", store.id);
    ///     Ok(())
    /// }
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStorage> {
        SqliteStorage::open_with(path.as_ref(), Synchronous::Full)
    }

    /// Opens the database at `path`, creating it (and its parent folder) if
    /// missing, and brings its schema up to date.
    ///
    /// An existing file is looked at read-only first, and refused with
    /// [`Error::Invalid`], left byte for byte as it was, when it is not a
    /// SQLite database, holds tables that are not ezdelivery's, or was
    /// written by a newer ezdelivery; so is a path that is not a plain
    /// file (a folder, a device such as `/dev/null`, a FIFO), before anything
    /// is created beside it. Fails with [`Error::Storage`] when the file
    /// cannot be read, created or opened; when for want of access, the
    /// message says what to check.
    pub fn open_with(path: &Path, synchronous: Synchronous) -> Result<SqliteStorage> {
        SqliteStorage::open_writable(path, synchronous).map_err(|f| f.error)
    }

    /// For a caller that only reads: opens the database as
    /// [`SqliteStorage::open`] does, or, when that fails for want of access
    /// (a read-only file, folder or file system) and the file holds a
    /// database, read-only ([`SqliteStorage::open_read_only`]). Where there
    /// is nothing at `path` (nor perhaps its folder), or an empty file
    /// ([`SqliteStorage::holds_nothing_yet`]), nothing is created: it reads
    /// as an empty database, which is what would be created there.
    pub fn open_for_reading(path: &Path, synchronous: Synchronous) -> Result<SqliteStorage> {
        if SqliteStorage::holds_nothing_yet(path) {
            return SqliteStorage::open_in_memory();
        }
        match SqliteStorage::open_writable(path, synchronous) {
            Ok(storage) => Ok(storage),
            Err(Failed { error, access: true }) => match preflight::check(path, false) {
                Ok(Some(_)) => {
                    let storage = SqliteStorage::open_read_only(path)?;
                    tracing::info!(db = %path.display(), why = %error, "database opened read-only");
                    Ok(storage)
                }
                // Nothing to read: what stopped creating it is the news.
                _ => Err(error),
            },
            Err(failed) => Err(failed.error),
        }
    }

    /// Whether there is no database at `path` yet: no file there (nor
    /// perhaps its folder), or an empty file (as `touch` or `mktemp` leave
    /// one) with no write-ahead log beside it holding its first pages. The
    /// first command that writes creates the database there.
    ///
    /// ```
    /// use ezdelivery_core::adapters::sqlite::SqliteStorage;
    /// let dir = std::env::temp_dir().join(format!("ezd-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let file = dir.join("empty.db");
    /// std::fs::write(&file, b"").unwrap();
    /// assert!(SqliteStorage::holds_nothing_yet(&file));
    /// SqliteStorage::open(&file).unwrap();
    /// assert!(!SqliteStorage::holds_nothing_yet(&file));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn holds_nothing_yet(path: &Path) -> bool {
        let empty = |p: &Path| match std::fs::symlink_metadata(p) {
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            Ok(_) => std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() == 0),
        };
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        empty(path) && empty(Path::new(&wal))
    }

    /// Opens the existing database at `path` read-only: nothing is created,
    /// migrated or written (with no `-wal` or `-journal` file beside it, it
    /// is opened `immutable`, so a read-only folder will do). Every write
    /// through it fails with [`Error::Storage`].
    ///
    /// Refused as [`SqliteStorage::open`] refuses; fails with
    /// [`Error::Storage`] when there is no database at `path`, or one of an
    /// older schema (bringing it up to date would write).
    pub fn open_read_only(path: &Path) -> Result<SqliteStorage> {
        refuse_non_regular(path)?;
        let file = path.display().to_string();
        let contents = preflight::check(path, false)?.ok_or_else(|| {
            Error::storage(format!("{file} holds no database yet, and read-only it cannot be created"))
        })?;
        let latest = schema::latest();
        if contents.version < latest {
            return Err(Error::storage(format!(
                "{file} was written by an older ezdelivery (schema version {}; this one uses {latest}): bringing it \
                 up to date writes to it, which read-only it cannot; run any command with write access to it once",
                contents.version
            )));
        }
        let conn =
            preflight::open_read_only(path).map_err(|e| sqlite_failure(format!("cannot read {file}: {e}"), e))?;
        SqliteStorage::tune(&conn).map_err(|e| sqlite_failure(format!("cannot read {file}: {e}"), e))?;
        Ok(SqliteStorage { session: Session::new(conn), read_only: Some(file) })
    }

    /// Whether this storage was opened read-only (writes fail).
    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// For a program that writes for a long time (a server, a simulation)
    /// at [`Synchronous::Normal`]: the WAL's checkpoints run on a thread of
    /// their own instead of in the commit that fills the WAL, so units of
    /// work seldom wait while the WAL is copied into the database file and
    /// both are synced.
    ///
    /// SQLite otherwise runs each checkpoint (every [`CHECKPOINT_BYTES`]
    /// written) in the connection that committed last: that commit, and every unit
    /// of work queued behind it, waits for two syncs of the disk, about
    /// half a lifecycle's time at `Normal`. Here a worker thread with a
    /// connection of its own checkpoints without blocking commits, and this
    /// storage copies only what was committed meanwhile, so the WAL still
    /// starts over. When commits outrun the disk, as they do under a
    /// sustained load, a commit waits for the worker and checkpoints the
    /// rest itself once the WAL holds four steps (its `-wal` file about
    /// 160 MB, against 40 MB): one wait every four steps instead of every
    /// step. The thread is stopped and joined when the storage is
    /// dropped. Nothing changes for durability: a commit is as durable as
    /// before, and a checkpoint only moves committed pages.
    ///
    /// Measured at `Normal` (BENCHMARKS.md, "Checkpoints off the writer's
    /// thread"): 36–41 % less time for `simulate`. At
    /// [`Synchronous::Full`], where every commit waits for the disk anyway,
    /// `simulate` took the same time either way (within 2 %), so the CLI
    /// uses it only at `normal`, where it pays for its larger `-wal` file.
    ///
    /// A storage in memory or opened read-only is returned as it is: it
    /// writes no WAL. Fails with [`Error::Storage`] when the worker's
    /// connection cannot be opened or its thread started.
    ///
    /// ```no_run
    /// use std::path::Path;
    ///
    /// use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
    /// use ezdelivery_core::{Engine, Error};
    ///
    /// fn main() -> Result<(), Error> {
    ///     let storage =
    ///         SqliteStorage::open_with(Path::new("orders.db"), Synchronous::Normal)?.checkpoint_in_background()?;
    ///     let engine = Engine::builder(storage).build();
    ///     // ... many commands ...
    ///     drop(engine); // stops the checkpoint thread
    ///     Ok(())
    /// }
    /// ```
    pub fn checkpoint_in_background(mut self) -> Result<SqliteStorage> {
        let session = self.session.get_mut().unwrap_or_else(PoisonError::into_inner);
        let pages = checkpoint_pages(page_size(&session.conn)?);
        self.checkpoint_every(pages)
    }

    /// [`SqliteStorage::checkpoint_in_background`], a checkpoint every
    /// `pages` pages (tests use a small step).
    fn checkpoint_every(mut self, pages: u32) -> Result<SqliteStorage> {
        let session = self.session.get_mut().unwrap_or_else(PoisonError::into_inner);
        let file = session.conn.path().filter(|p| !p.is_empty()).map(str::to_owned);
        match file {
            Some(file) if self.read_only.is_none() && session.checkpoints.is_none() => {
                session.checkpoints = Some(Checkpoints::start(&session.conn, &file, pages)?);
            }
            _ => {}
        }
        Ok(self)
    }

    fn open_writable(path: &Path, synchronous: Synchronous) -> std::result::Result<SqliteStorage, Failed> {
        refuse_non_regular(path)?;
        preflight::check(path, false)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_folder(parent)
                .map_err(|e| Failed::io(format!("cannot create the folder {}", parent.display()), e))?;
        }
        create_private_file(path).map_err(|e| {
            let what = if path.exists() { "cannot open for writing" } else { "cannot create" };
            Failed::io(format!("{what} {}", path.display()), e)
        })?;
        let conn = connection::open_file(path, connection::read_write())
            .map_err(|e| Failed::sqlite(format!("cannot open {}", path.display()), e))?;
        // The first write, on its own to tell a file that cannot be written
        // from any other failure: WAL mode, which needs the file and its
        // folder writable (`setup` finds it set). The page size before it,
        // which only a new, empty file takes: a file with pages keeps its own.
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| conn.pragma_update(None, "page_size", PAGE_SIZE))
            .and_then(|()| conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get::<_, String>(0)))
            .map_err(|e| Failed::sqlite(format!("cannot write to {}", path.display()), e))?;
        SqliteStorage::setup(conn, synchronous).map_err(|e| match e {
            Error::Storage(m) => {
                let problem = m.problem();
                Error::Storage(StorageError::caused_by(format!("{}: {}", path.display(), &*m), m).because(problem))
                    .into()
            }
            other => other.into(),
        })
    }

    /// Looks at the database file at `path` without writing to it or
    /// creating anything: `None` when there is no file yet or it is empty
    /// (a new database), else its schema version and how many rows each of
    /// its tables holds.
    ///
    /// Fails as [`SqliteStorage::open`] does, with [`Error::Invalid`], for a
    /// file that `open` would refuse, and with [`Error::Storage`] when the
    /// file cannot be read.
    pub fn inspect(path: &Path) -> Result<Option<Contents>> {
        preflight::check(path, true)
    }

    /// A private database in memory with the same schema, gone when
    /// dropped (for tests and benchmarks).
    pub fn open_in_memory() -> Result<SqliteStorage> {
        SqliteStorage::setup(Connection::open_in_memory()?, Synchronous::Full)
    }

    /// The underlying connection, for benchmarks and diagnostics. Writing
    /// through it bypasses the adapter's transactions.
    /// It is held, locked, until the returned guard is dropped: no unit of
    /// work of this storage runs meanwhile.
    pub fn connection(&self) -> impl std::ops::Deref<Target = Connection> + '_ {
        ConnectionGuard(self.session.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn setup(conn: Connection, synchronous: Synchronous) -> Result<SqliteStorage> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Returns the mode now in force: `wal`, or `memory` in memory.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", synchronous.as_str())?;
        conn.pragma_update(None, "foreign_keys", true)?;
        SqliteStorage::tune(&conn)?;
        schema::migrate(&conn)?;
        Ok(SqliteStorage { session: Session::new(conn), read_only: None })
    }

    /// What every connection sets, read-only ones too: none of it writes.
    fn tune(conn: &Connection) -> rusqlite::Result<()> {
        // 32 MiB of page cache (SQLite's default is 2 MiB), taken only as
        // pages are read: a long-lived engine keeps the interior pages of a
        // million-order database in memory, so a lookup costs about what it
        // costs in a small one; a one-command process never fills it.
        conn.pragma_update(None, "cache_size", -32_768)?;
        // Checkpoint the WAL every 40 MB (CHECKPOINT_BYTES: 20,000 pages
        // of 2 KiB) instead of every 1,000 pages: a command rewrites the same
        // few pages (the ends of the log, the outbox and their indexes), and
        // a checkpoint writes each page once however often it changed and
        // syncs the file twice, so fewer, larger checkpoints write and sync
        // far less. Durability is unchanged: a commit is durable once its
        // WAL frames are synced. The `-wal` file of a busy database may so
        // reach about 40 MB (SQLite reuses it rather than shrinking it).
        let pages = checkpoint_pages(page_size(conn)?);
        let _pages: i64 = conn.query_row(&format!("PRAGMA wal_autocheckpoint = {pages}"), [], |r| r.get(0))?;
        // Read the file through a memory map instead of a `pread` and a
        // copy per page: a page outside the page cache above and not in the
        // WAL (a customer's views at a million orders lie on fifty of them)
        // is then read straight from the operating system's cache
        // (BENCHMARKS.md: "Reads through a memory map"). Writes still go
        // through the WAL: the map is read-only. SQLite maps at most
        // SQLITE_MAX_MMAP_SIZE of the file (2 GiB unless built with more:
        // this workspace's `.cargo/config.toml` raises it) and reads the rest
        // as before.
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Query planner stability: a statement keeps the plan it was
        // prepared with. Without it SQLite re-prepares a cached statement
        // every time a parameter it might plan on is bound again (`LIMIT ?`,
        // `seq > ?`), which cost a third of a command's time.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(())
    }

    fn run(&self, behavior: TransactionBehavior, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        // A panic in an earlier unit of work rolled its transaction back
        // (dropping it): the rows it wrote moved the connection's count of
        // changes, so `check` empties the cache, and the changes it left
        // pending were dropped with its repo, which emptied the cache: the
        // session is sound.
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let Session { conn, cache, checkpoints } = &mut *session;
        let tx = Transaction::begin(conn, behavior)?;
        if cache.check(&tx)? {
            // Another process committed: it may have been a newer
            // ezdelivery upgrading the file under this one, whose rows this
            // one would then write the old way (an older worker left paid
            // orders out of the store's inbox).
            schema::refuse_newer(&tx)?;
        }
        let before = tx.total_changes();
        let mut repo = SqliteRepo::new(&tx, cache);
        let mut result = work(&mut repo).and_then(|()| repo.flush());
        drop(repo);
        if matches!(behavior, TransactionBehavior::Deferred) && result.is_ok() && tx.total_changes() != before {
            // A read that wrote: SQLite let it (a deferred transaction
            // takes the write lock when it first writes); nothing of it is kept.
            result = Err(Error::Internal("a read unit of work tried to write; nothing of it was kept".into()));
        }
        cache.changes = tx.total_changes();
        match result {
            Ok(()) => {
                tx.commit().map_err(|e| {
                    cache.clear();
                    Error::from(e)
                })?;
                if let Some(checkpoints) = checkpoints {
                    checkpoints.after_commit(conn);
                }
                Ok(())
            }
            Err(e) => {
                cache.clear();
                // The work's error is what the caller needs: dropping `tx`
                // rolls it back.
                drop(tx);
                Err(e)
            }
        }
    }
}

impl Storage for SqliteStorage {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        if let Some(file) = &self.read_only {
            return Err(Error::Storage(
                StorageError::new(format!(
                    "{file} is open read-only (it, its folder or its file system cannot be written), and this \
                     command writes"
                ))
                .because(StorageProblem::ReadOnly),
            ));
        }
        self.run(TransactionBehavior::Immediate, work)
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        self.run(TransactionBehavior::Deferred, work)
    }
}

/// Refuses a `path` that is there but is not a plain file: SQLite would
/// open a folder or a device (`/dev/null`) and leave a `-journal` file
/// beside it.
fn refuse_non_regular(path: &Path) -> Result<()> {
    let Ok(metadata) = std::fs::metadata(path) else { return Ok(()) };
    if metadata.is_file() {
        return Ok(());
    }
    let kind = metadata.file_type();
    let what = if kind.is_dir() {
        "a folder"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if kind.is_char_device() || kind.is_block_device() {
                "a device"
            } else if kind.is_fifo() {
                "a named pipe (FIFO)"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "something other than a plain file"
            }
        }
        #[cfg(not(unix))]
        "something other than a plain file"
    };
    Err(Error::Invalid(crate::domain::validate::Invalid(format!(
        "{} is {what}, not a database file (a file that does not exist yet is created)",
        path.display()
    ))))
}

/// Creates `folder` and its missing parents (owner-only on unix).
fn create_folder(folder: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)
}

/// Creates the database file readable and writable by its owner only, before
/// SQLite opens it (SQLite would create it with the default mode). An
/// existing file is left as it is; SQLite gives its `-wal` and `-shm` files
/// the database file's mode.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

#[cfg(test)]
mod tests;
