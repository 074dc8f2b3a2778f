//! PostgreSQL storage (cargo feature `postgres`): many processes and
//! threads writing one database at once.
//!
//! ```no_run
//! use ezdelivery_core::adapters::postgres::PostgresStorage;
//! use ezdelivery_core::{Engine, Error};
//!
//! fn main() -> Result<(), Error> {
//!     let engine = Engine::builder(PostgresStorage::open("postgres://ezd@db.internal/ezdelivery")?).build();
//!     let store = engine.add_store("BBQ", Some("park"), None)?;
//!     println!("store {} registered", store.id);
//!     Ok(())
//! }
//! ```
//!
//! # What it guarantees
//!
//! - **Units of work.** [`Storage::write`] runs its unit of work in one
//!   `READ COMMITTED` transaction from a pool of connections
//!   ([`DEFAULT_POOL_SIZE`]); everything it wrote commits, or nothing. What
//!   several writers must not interleave, they serialise with locks taken
//!   inside the unit of work, not with the isolation level: an order's lock
//!   (`Repo::lock_order`, a transaction-level advisory lock keyed by the
//!   order's id, so commands on one order queue and different orders never
//!   wait for each other), row locks (`FOR UPDATE … SKIP LOCKED` where the
//!   relay claims messages), unique constraints (a rider's or menu's name
//!   taken by another writer first is [`crate::Error::Invalid`], and the
//!   unit of work writes nothing), in-place counters (a store's reviews).
//! - **Retries.** When PostgreSQL aborts a unit of work for a conflict
//!   with another (`40001` serialization_failure, `40P01`
//!   deadlock_detected), at any statement or at `COMMIT`, the transaction
//!   is rolled back and the whole unit of work runs again, up to
//!   [`MAX_TRIES`] times, after a jittered exponential back-off (a few
//!   milliseconds, doubling, at most [`MAX_BACKOFF`]). The unit of work
//!   is a `FnMut` for that reason (see `Engine::write`). Any other failure
//!   is returned at once; so is a unit of work that returned `Ok` although
//!   one of its statements failed (PostgreSQL would silently roll back such
//!   a transaction at `COMMIT`).
//! - **Reads.** [`Storage::read`] runs in `REPEATABLE READ, READ ONLY`: one
//!   consistent snapshot for the whole read, and writing fails.
//!
//! # The event log's order
//!
//! Sequence numbers (`events.seq`, an identity column) are handed out when
//! an event is appended, but transactions commit in another order, so a
//! reader that went by numbers could read number 8 while number 7 is
//! still uncommitted, and miss 7 forever. Each event therefore records its
//! transaction id (`tx xid8`, `pg_current_xact_id()`), and the log's order
//! is `(tx, seq)`: by transaction, then by number. A read-only reader
//! (`Repo::events` in [`Storage::read`]) sees an event only once `tx` is
//! below its snapshot's `xmin` (`pg_snapshot_xmin(pg_current_snapshot())`):
//! every transaction that might still append an event before it in that
//! order has ended. So a reader that asks again after the last event it got
//! never misses one, and never gets one twice. `after` names an event by
//! number; the position is that event's `(tx, seq)` (a number that names
//! no visible event counts as the last visible one numbered below it).
//!
//! The price: an event shows to readers only once every transaction older
//! than its own has ended, on the whole server (`xmin` counts every
//! database's transactions), so a long transaction anywhere (an idle
//! session left `idle in transaction`, a long report) delays the log's
//! readers, never the writers, until it ends. Nothing is lost meanwhile.
//!
//! Inside a write transaction `events` reads without that horizon: the
//! projector's rebuild first takes `LOCK TABLE events IN SHARE MODE`
//! (`Repo::clear_views`), which waits for the transactions appending events
//! to end and keeps new ones out until the rebuild commits, so every event
//! there is committed and the log is whole.
//!
//! An order's events are in number order within the log, as the port
//! promises, because they are appended under the order's lock; and, in
//! `(tx, seq)` order too, because `lock_order` checks it: a unit of work
//! that already had a transaction id when it got an order's lock (it wrote
//! something first), while a transaction with a later id appended events
//! of that order meanwhile, would sort its events before those it follows.
//! It is aborted as a serialization failure and run again (its next
//! transaction id is later), which in practice never happens: the engine
//! takes an order's lock before writing the order's rows.
//!
//! # Waking the relay: LISTEN/NOTIFY
//!
//! [`Storage::wait_for_work`] listens on channel [`WORK_CHANNEL`] on a
//! connection of its own (opened on first use, kept, opened again if it
//! breaks) and returns when a notification arrives or the timeout is up. A
//! unit of work sends one notification, just before it commits, when it
//! stored work for the relay that nobody holds: a payment or delivery
//! charge waiting for the gateway (`pending`, `refund_pending`) with no
//! claim on its call, or a message queued for a channel and not claimed in
//! the same unit of work (not saved again with a later `next_at`). A
//! `NOTIFY` takes a server-wide lock at commit, so it is sent at most once
//! per unit of work and never for work that is claimed already. The
//! relay polls anyway: a notification is a hint, and a lost one (say, sent
//! before the first wait started listening) costs one timeout.
//!
//! # Connections
//!
//! [`PostgresStorage::open`] takes a libpq-style URL (`postgres://` or
//! `postgresql://user:password@host:port/database?options`, or key=value
//! pairs); a missing password is taken from `PGPASSWORD`. There is no TLS
//! (`sslmode=prefer`, the default, connects in plain text; `require` fails):
//! run it on a private network or a unix socket (`host=/run/postgresql`).
//! Errors name the server as `user@host:port/database`, never with the
//! password ([`redact`]).
//!
//! Connections are pooled and opened as units of work need them. A unit
//! of work waits up to [`POOL_TIMEOUT`] for one while all are busy, but
//! only [`DOWN_WAIT`] once the last try to connect failed and the pool
//! holds none: while the server is down, or refuses the login, each waits
//! about two seconds and fails (a long-running `serve` answers within them
//! rather than holding every request for half a minute). The pool tries
//! again at most [`RECONNECT_PAUSE`] apart, so a server back up is found
//! by the next unit of work.

mod copy;
mod failure;
mod repo;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel, NoTls, Statement};
use r2d2_postgres::PostgresConnectionManager;

use crate::ports::{Repo, Storage};
use crate::{Error, Result};

use failure::{describe, retryable, storage_error, Failure};
use repo::PgRepo;

/// How many connections a storage keeps open at most, by default.
pub const DEFAULT_POOL_SIZE: u32 = 8;
/// How many times a unit of work runs at most when PostgreSQL keeps
/// aborting it for conflicts (serialization failures, deadlocks).
pub const MAX_TRIES: u32 = 12;
/// The longest pause between two tries of a unit of work.
pub const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// The notification channel the relay listens on ([`Storage::wait_for_work`]).
pub const WORK_CHANNEL: &str = "ezdelivery_work";
/// How long connecting may take, unless the URL says (`connect_timeout`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a unit of work waits for a free connection of the pool.
pub const POOL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause of the pool between two tries to open a connection
/// while the server refuses (it doubles from 200 ms up to this).
pub const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// How long a unit of work waits for a connection once the last try to
/// open one failed: long enough for the pool's next try.
pub const DOWN_WAIT: Duration = Duration::from_secs(2);
/// How often a unit of work waiting for a connection looks whether the
/// server has gone down meanwhile.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// Whether a unit of work that has waited `waited` for a connection waits
/// on: up to [`POOL_TIMEOUT`] while the pool is only busy, [`DOWN_WAIT`]
/// while the server is down: the last try to connect failed and the pool
/// holds no connection. (One the server refuses beyond its own limit, with
/// the pool's connections busy, is only a busy pool: those come back.)
fn keep_waiting(waited: Duration, server_failed: bool, connections: u32) -> bool {
    waited < if server_failed && connections == 0 { DOWN_WAIT } else { POOL_TIMEOUT }
}

/// Storage in a PostgreSQL database (see the module documentation).
pub struct PostgresStorage {
    pool: r2d2::Pool<Manager>,
    /// The pool's last try to connect.
    last_connect: Arc<LastConnect>,
    /// For the listening connection.
    config: postgres::Config,
    /// The connection that listens on [`WORK_CHANNEL`], once opened.
    listener: Mutex<Option<Client>>,
    /// The server as errors name it (`user@host:port/db`, no password).
    shown: String,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage").field("server", &self.shown).finish_non_exhaustive()
    }
}

/// A pooled connection with the statements it prepared, by SQL text.
struct Session {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// The pool's connection manager: r2d2_postgres's, plus a statement cache
/// per connection; it connects with [`connect_within`].
struct Manager {
    manager: PostgresConnectionManager<NoTls>,
    config: postgres::Config,
    /// Shared with the storage, which the pool does not let see its manager.
    failed: Arc<LastConnect>,
}

/// Why the pool's last try to connect failed; `None` once one succeeds.
#[derive(Default)]
struct LastConnect(Mutex<Option<String>>);

impl LastConnect {
    fn failed(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, failed: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = failed;
    }
}

/// Connects as `config` says, giving up after twice its connect timeout.
/// That timeout bounds opening the socket only: a server that accepts the
/// connection and never answers (stopped, hung) would hold the caller for
/// ever in the login that follows. The connect runs on a thread of its
/// own (the `postgres` client blocks on a runtime of its own); one that
/// succeeds after the caller gave up is closed as it ends.
fn connect_within(config: &postgres::Config) -> std::result::Result<Client, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Connects under way in this process, those given up on included (their
    // threads wait until the server answers or closes): bounded, so that a
    // long-running process retrying a hung server does not pile them up.
    static CONNECTING: AtomicUsize = AtomicUsize::new(0);
    const MOST: usize = 128; // twice the largest pool the CLI allows
    if CONNECTING.fetch_add(1, Ordering::SeqCst) >= MOST {
        CONNECTING.fetch_sub(1, Ordering::SeqCst);
        return Err(format!("{MOST} earlier connections are still waiting for the server to answer"));
    }
    let within = config.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT) * 2;
    let (sent, answer) = std::sync::mpsc::channel();
    let config = config.clone();
    let started = std::thread::Builder::new().name("postgres-connect".into()).spawn(move || {
        let _ = sent.send(config.connect(NoTls).map_err(|e| describe(&e)));
        CONNECTING.fetch_sub(1, Ordering::SeqCst);
    });
    if let Err(e) = started {
        CONNECTING.fetch_sub(1, Ordering::SeqCst);
        return Err(format!("cannot start a thread to connect: {e}"));
    }
    answer.recv_timeout(within).unwrap_or_else(|_| {
        Err(format!("the server took the connection but did not answer within {} s", within.as_secs()))
    })
}

/// A connection failure as the pool reports it: the error and its causes.
#[derive(Debug)]
struct ConnectError(String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

impl r2d2::ManageConnection for Manager {
    type Connection = Session;
    type Error = ConnectError;

    fn connect(&self) -> std::result::Result<Session, ConnectError> {
        let client = connect_within(&self.config);
        self.failed.set(client.as_ref().err().cloned());
        Ok(Session { client: client.map_err(ConnectError)?, statements: HashMap::new() })
    }

    fn is_valid(&self, session: &mut Session) -> std::result::Result<(), ConnectError> {
        self.manager.is_valid(&mut session.client).map_err(|e| ConnectError(describe(&e)))
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        self.manager.has_broken(&mut session.client)
    }
}

/// `url` with any password in it replaced by `***`: the `user:password@`
/// of a URL, and a `password=` option (in a URL's query or a key=value
/// string).
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let end = out[start..].find(['/', '?', '#']).map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@') {
            if let Some(colon) = out[start..start + at].find(':') {
                out.replace_range(start + colon + 1..start + at, "***");
            }
        }
    }
    let mut from = 0;
    while let Some(found) = out[from..].to_ascii_lowercase().find("password=") {
        let value = from + found + "password=".len();
        let end = out[value..].find(['&', ' ', '#']).map_or(out.len(), |i| value + i);
        out.replace_range(value..end, "***");
        from = value + 3;
    }
    out
}

/// The server `config` names, as errors show it: `user@host:port/db`.
fn shown(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config.get_ports().get(i).or_else(|| config.get_ports().first()).copied().unwrap_or(5432);
            match host {
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() { "localhost:5432".to_string() } else { hosts.join(",") };
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("{user}{hosts}/{db}")
}

impl PostgresStorage {
    /// Connects to the database at `url` with a pool of at most
    /// [`DEFAULT_POOL_SIZE`] connections: see [`PostgresStorage::open_with`].
    pub fn open(url: &str) -> Result<PostgresStorage> {
        PostgresStorage::open_with(url, DEFAULT_POOL_SIZE)
    }

    /// Connects to the database at `url` (a libpq-style URL or key=value
    /// string; a missing password is taken from `PGPASSWORD`), brings its
    /// schema up to date, and keeps a pool of at most `pool_size`
    /// connections (at least 1), opened as units of work need them.
    ///
    /// Fails with [`Error::Invalid`] for a `url` that cannot be read, and
    /// with [`Error::Storage`] when the server cannot be reached or refuses
    /// the connection (the message names the server and says what to
    /// check), when the schema cannot be migrated, or when the database was
    /// written by a newer ezdelivery. No message holds the password.
    pub fn open_with(url: &str, pool_size: u32) -> Result<PostgresStorage> {
        let (config, shown) = PostgresStorage::config(url)?;
        let mut client = PostgresStorage::connect(&config, &shown)?;
        schema::migrate(&mut client).map_err(|e| match e {
            Error::Storage(m) => Error::storage(format!("PostgreSQL at {shown}: {}", &*m)),
            Error::Invalid(m) => {
                Error::Invalid(crate::domain::validate::Invalid(format!("PostgreSQL at {shown}: {m}")))
            }
            other => other,
        })?;
        drop(client);
        let last_connect = Arc::new(LastConnect::default());
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(0))
            // r2d2 pauses up to half of this between tries to connect;
            // units of work wait as `session` says.
            .connection_timeout(RECONNECT_PAUSE * 2)
            .build_unchecked(Manager {
                manager: PostgresConnectionManager::new(config.clone(), NoTls),
                config: config.clone(),
                failed: last_connect.clone(),
            });
        Ok(PostgresStorage { pool, last_connect, config, listener: Mutex::new(None), shown })
    }

    /// The connection settings `url` gives (a missing password taken from
    /// `PGPASSWORD`, a connect timeout of [`CONNECT_TIMEOUT`] unless it
    /// says), and the server as errors name it.
    fn config(url: &str) -> Result<(postgres::Config, String)> {
        // An `@` in a password must be written `%40`: written as it is, the
        // parser takes what follows the first `@` for the host, and that
        // part of the password would be shown in every error naming it.
        let authority = url.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
        if authority.matches('@').count() > 1 {
            return Err(Error::Invalid(crate::domain::validate::Invalid(
                "the PostgreSQL URL's user or password holds an `@`: write it as %40 \
                 (postgres://user:pa%40ss@host/database), or give the password in PGPASSWORD"
                    .into(),
            )));
        }
        // libpq lets `?port=` stand for the port of a host written without
        // one; the `postgres` crate then gives that host two ports and
        // fails at connect time with "invalid number of ports".
        let query = url.split_once('?').map_or("", |(_, query)| query);
        if !authority.rsplit('@').next().unwrap_or("").is_empty()
            && query.split('&').any(|pair| pair.split('=').next() == Some("port"))
        {
            return Err(Error::Invalid(crate::domain::validate::Invalid(format!(
                "{}: give the port with the host (postgres://user@host:5433/database), not as ?port=",
                redact(url)
            ))));
        }
        let mut config = postgres::Config::from_str(url).map_err(|e| {
            Error::Invalid(crate::domain::validate::Invalid(format!(
                "{} is not a PostgreSQL URL ({}): use postgres://user@host:port/database",
                redact(url),
                describe(&e)
            )))
        })?;
        // libpq would try a local socket; the `postgres` crate connects to
        // nothing and says "both host and hostaddr are missing".
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(Error::Invalid(crate::domain::validate::Invalid(format!(
                "{} names no server: give its host (postgres://user@localhost/database, or host=/run/postgresql \
                 for a local socket)",
                redact(url)
            ))));
        }
        // Without a TLS connector the `postgres` crate answers `require`
        // with "server does not support TLS", blaming a server that may.
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(Error::Invalid(crate::domain::validate::Invalid(format!(
                "{}: sslmode=require asks for TLS, and ezdelivery speaks to PostgreSQL without it: reach the \
                 server over a trusted network, a tunnel or a unix socket, and drop sslmode=require",
                redact(url)
            ))));
        }
        if config.get_password().is_none() {
            if let Some(password) = std::env::var_os("PGPASSWORD") {
                config.password(password.as_encoded_bytes());
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let shown = shown(&config);
        Ok((config, shown))
    }

    /// One connection with `config`; a failure says what to check.
    fn connect(config: &postgres::Config, shown: &str) -> Result<Client> {
        connect_within(config).map_err(|e| {
            unreachable(format!(
                "cannot connect to PostgreSQL at {shown}: {e}; check that the server is running and accepts TCP \
                 connections there, and the user, password (in the URL or PGPASSWORD) and database name"
            ))
        })
    }

    /// The server as errors name it: `user@host:port/database`, with no
    /// password.
    pub fn server(&self) -> &str {
        &self.shown
    }

    /// The schema version of the database (the number of migrations
    /// applied).
    pub fn schema_version(&self) -> Result<i64> {
        let mut session = self.session()?;
        schema::version(&mut session.client)
    }

    /// A connection of the pool, waited for as [`keep_waiting`] says.
    fn session(&self) -> Result<r2d2::PooledConnection<Manager>> {
        let started = std::time::Instant::now();
        loop {
            let e = match self.pool.get_timeout(WAIT_SLICE) {
                Ok(session) => return Ok(session),
                Err(e) => e,
            };
            let failed = self.last_connect.failed();
            if !keep_waiting(started.elapsed(), failed.is_some(), self.pool.state().connections) {
                let why = failed.unwrap_or_else(|| e.to_string());
                return Err(unreachable(format!(
                    "no connection to PostgreSQL at {}: {why}; check that the server is running",
                    self.shown
                )));
            }
        }
    }

    /// Runs one try of a write: `Ok(Ok)` committed, `Ok(Err)` failed for
    /// good, `Err(e)` failed for a conflict (to run again).
    fn try_write(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> std::result::Result<Result<()>, Error> {
        let mut session = match self.session() {
            Ok(session) => session,
            Err(e) => return Ok(Err(e)),
        };
        let Session { client, statements } = &mut *session;
        let mut tx = match client.transaction() {
            Ok(tx) => tx,
            Err(e) => return Ok(Err(storage_error(e))),
        };
        let mut repo = PgRepo::new(&mut tx, statements, true);
        let result = work(&mut repo);
        let (failure, notify) = repo.finish();
        let result = match (result, failure) {
            // PostgreSQL rolls back, silently, a transaction in which a
            // statement failed: the unit of work must fail too.
            (Ok(()), Some(failure)) => Err(failure),
            (Ok(()), None) => Ok(()),
            (Err(e), Some(failure)) if failure.retry => Err(Failure { error: e, retry: true }),
            (Err(e), _) => Err(Failure { error: e, retry: false }),
        };
        match result {
            Ok(()) => {
                if notify {
                    if let Err(e) = tx.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL]) {
                        let retry = retryable(e.code());
                        return if retry { Err(storage_error(e)) } else { Ok(Err(storage_error(e))) };
                    }
                }
                match tx.commit() {
                    Ok(()) => Ok(Ok(())),
                    Err(e) if retryable(e.code()) => Err(storage_error(e)),
                    Err(e) => Ok(Err(storage_error(e))),
                }
            }
            Err(Failure { error, retry }) => {
                // The work's error is what the caller needs; should the
                // rollback fail too, dropping `tx` tries once more.
                let _ = tx.rollback();
                if retry {
                    Err(error)
                } else {
                    Ok(Err(error))
                }
            }
        }
    }

    /// Runs `work` in a read-only snapshot.
    fn run_read(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        let mut session = self.session()?;
        let Session { client, statements } = &mut *session;
        let mut tx = snapshot(client).map_err(storage_error)?;
        let mut repo = PgRepo::new(&mut tx, statements, false);
        let result = work(&mut repo);
        let (failure, _) = repo.finish();
        match (result, failure) {
            (Ok(()), None) => tx.commit().map_err(storage_error),
            (Ok(()), Some(failure)) => {
                let _ = tx.rollback();
                Err(failure.error)
            }
            (Err(e), _) => {
                let _ = tx.rollback();
                Err(e)
            }
        }
    }

    /// Waits on the listening connection (opened if need be).
    fn listen(&self, timeout: Duration) -> Result<()> {
        let mut listener = self.listener.lock().unwrap_or_else(PoisonError::into_inner);
        if listener.as_ref().is_none_or(Client::is_closed) {
            let mut client = connect_within(&self.config).map_err(|e| {
                Error::storage(format!("cannot connect to PostgreSQL at {} to listen: {e}", self.shown))
            })?;
            client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")).map_err(storage_error)?;
            *listener = Some(client);
        }
        let Some(client) = listener.as_mut() else { return Ok(()) };
        let drained = {
            let mut notifications = client.notifications();
            let woken = notifications.timeout_iter(timeout).next();
            // Several notifications may have come at once: one wake-up for all.
            woken.and_then(|_| notifications.iter().count())
        };
        let broken = drained.is_err() || client.is_closed();
        if broken {
            *listener = None;
        }
        drained.map(drop).map_err(storage_error)?;
        Ok(())
    }
}

/// How long to wait before try `tries + 1`: 2 ms doubling per try, at most
/// [`MAX_BACKOFF`], times a random factor in [0.5, 1.5).
fn backoff(tries: u32) -> Duration {
    let base = Duration::from_millis(2).saturating_mul(1 << tries.min(16)).min(MAX_BACKOFF);
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let factor = 0.5 + (random % 1_000) as f64 / 1_000.0;
    base.mul_f64(factor)
}

impl Storage for PostgresStorage {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.try_write(work) {
                Ok(done) => return done,
                Err(conflict) if tries >= MAX_TRIES => {
                    tracing::warn!(tries, error = %conflict, "unit of work given up after conflicts");
                    return Err(conflict);
                }
                Err(conflict) => {
                    tracing::debug!(tries, error = %conflict, "unit of work aborted by a conflict, run again");
                    std::thread::sleep(backoff(tries));
                }
            }
        }
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        self.run_read(work)
    }

    /// Listens on [`WORK_CHANNEL`] for up to `timeout` (see the module
    /// documentation). When the server cannot be reached it waits out the
    /// timeout anyway, so a relay does not spin, and tries again next time.
    fn wait_for_work(&self, timeout: Duration) -> Result<()> {
        let started = std::time::Instant::now();
        if let Err(e) = self.listen(timeout) {
            tracing::warn!(error = %e, "cannot listen for work; waiting out the timeout");
            std::thread::sleep(timeout.saturating_sub(started.elapsed()));
        }
        Ok(())
    }
}

/// The server cannot be reached (or refused us): a storage failure a caller
/// can act on by pointing at another server or starting this one.
fn unreachable(message: String) -> Error {
    Error::Storage(crate::StorageError::new(message).because(crate::StorageProblem::Unreachable))
}

/// A read-only transaction on one snapshot of the database (REPEATABLE
/// READ): what every read and every export runs in.
pub(crate) fn snapshot(client: &mut Client) -> std::result::Result<postgres::Transaction<'_>, postgres::Error> {
    client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()
}
