//! A real PostgreSQL server for the tests: one per test process, started
//! lazily by the first test that asks ([`server`]) and shared by all the
//! tests of that process; each test takes a database of its own
//! ([`PgServer::fresh_database`]), so tests stay isolated.
//!
//! ```no_run
//! use ezdelivery_testkit::postgres;
//!
//! let Some(pg) = postgres::server() else { return }; // skipped, said so on stderr
//! let url = pg.fresh_database(); // postgres://postgres@127.0.0.1:PORT/ezd_…
//! assert_eq!(pg.psql(&url, "SELECT 1"), "1");
//! ```
//!
//! Where the server comes from, in order:
//!
//! 1. `EZDELIVERY_TEST_PG=postgres://user@host:port/db`: an existing server
//!    whose user may `CREATE DATABASE`; nothing is started. Its databases
//!    are left behind (named `ezd_<pid>_<millis>_<n>`, so they are easy to
//!    find and drop).
//! 2. Otherwise a throwaway server from the machine's `initdb` and
//!    `postgres` (found on `PATH`): `initdb` into a temporary folder
//!    (trust authentication, user `postgres`, no fsync), then `postgres`
//!    listening on 127.0.0.1 only, on a free port, with its unix socket in
//!    that folder. Run as root, both run as the `postgres` user (the server
//!    refuses root) and the folder is handed to that user.
//! 3. Neither: [`server`] prints one `SKIPPED: PostgreSQL tests (…)` line
//!    on stderr (past the test harness's output capture) and returns
//!    `None`, so the test returns early; with `EZDELIVERY_REQUIRE_PG=1`
//!    (CI sets it) it panics instead, saying why.
//!
//! # Cleanup
//!
//! The server lives in a `static`, which is never dropped, so it cannot be
//! stopped from Rust. Instead, as soon as its temporary folder exists (so
//! before `initdb`), a watchdog is started for it: a small `sh` script in
//! a process group of its own (so a Ctrl-C to the tests does not kill it
//! first) that checks `kill -0 <test pid>` every 0.5 s. Once the test
//! process is gone, for whatever reason (exit, panic, SIGKILL), the
//! watchdog stops the server whose pid is in the data folder's
//! `postmaster.pid` with SIGQUIT (PostgreSQL's immediate shutdown: the
//! data is thrown away, so nothing needs a checkpoint), waits for it (then
//! SIGKILL after 10 s), and removes the whole temporary folder. So about a
//! second after a test binary exits no `postgres` of it is left, and no
//! folder. The server itself is in a process group of its own too, for the
//! same reason.
//!
//! Everything is bounded: `initdb` and `psql` have deadlines, the server
//! must answer `pg_isready` within [`READY_DEADLINE`], and a start that
//! fails (a port taken in between) is retried on another port.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An existing server to use instead of starting one: a `postgres://` URL
/// whose user may `CREATE DATABASE`.
pub const ENV_URL: &str = "EZDELIVERY_TEST_PG";
/// Set to `1`: no server is a failure (a panic), not a skip.
pub const ENV_REQUIRE: &str = "EZDELIVERY_REQUIRE_PG";
/// How long a started server has to answer `pg_isready`.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long `initdb` may take.
pub const INITDB_DEADLINE: Duration = Duration::from_secs(120);
/// How long one `psql` call may take.
pub const PSQL_DEADLINE: Duration = Duration::from_secs(60);
/// How long (tenths of a second) the server has to stop after SIGQUIT
/// once the test process is gone, before SIGKILL.
const STOP_GRACE_TENTHS: u32 = 100;
/// How many ports a start is tried on.
const START_ATTEMPTS: usize = 4;

/// The watchdog: `$1` the test's pid, `$2` the temporary folder (the data
/// folder is `$2/data`), `$3` how many tenths of a second the server gets
/// to stop after SIGQUIT before SIGKILL. Once the test process is gone it
/// stops the server whose pid is in `postmaster.pid` (if any) and removes
/// the folder. `alive` does not count a zombie (a pid whose parent died
/// may be left unreaped by a container's pid 1).
const WATCHDOG: &str = r#"
test_pid=$1; base=$2; grace=$3
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
while alive "$test_pid"; do sleep 0.5; done
pm=$(head -n 1 "$base/data/postmaster.pid" 2>/dev/null)
if [ -n "$pm" ] && kill -QUIT "$pm" 2>/dev/null; then
  i=0
  while alive "$pm" && [ "$i" -lt "$grace" ]; do sleep 0.1; i=$((i+1)); done
  alive "$pm" && kill -KILL "$pm" 2>/dev/null
fi
rm -rf "$base"
"#;

/// A PostgreSQL server the tests may create databases on.
#[derive(Debug)]
pub struct PgServer {
    /// The maintenance database's URL.
    url: String,
    /// The started server's folder (removed by the watchdog); `None` for
    /// an [`ENV_URL`] server.
    folder: Option<PathBuf>,
    /// The `psql` to run.
    psql: PathBuf,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// The test process's server, started on first use (or [`ENV_URL`]'s);
/// `None` when there is none, after one `SKIPPED: PostgreSQL tests (…)`
/// line on stderr: the caller returns early.
///
/// # Panics
///
/// With `EZDELIVERY_REQUIRE_PG=1` and no server, saying why.
pub fn server() -> Option<&'static PgServer> {
    let found = SERVER.get_or_init(|| {
        // One line, whatever the tools printed.
        let found = find().map_err(|why| why.split_whitespace().collect::<Vec<_>>().join(" "));
        if let Err(why) = &found {
            if !required() {
                // Straight to the stderr handle: `eprintln!` would be
                // captured by the test harness and never shown.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: PostgreSQL tests ({why}): set {ENV_URL}=postgres://… or put initdb/postgres on PATH, \
                     {ENV_REQUIRE}=1 makes this a failure"
                );
            }
        }
        found
    });
    match found {
        Ok(server) => Some(server),
        Err(why) if required() => panic!(
            "{ENV_REQUIRE}=1 but there is no PostgreSQL server for the tests: {why}. Install PostgreSQL's server \
             binaries (Debian: apt-get install postgresql-15, and put /usr/lib/postgresql/15/bin on PATH) or set \
             {ENV_URL}=postgres://user@host:port/db"
        ),
        Err(_) => None,
    }
}

/// Runs `f` with the server, or skips it (`None`, see [`server`]):
/// `let Some(rows) = postgres::skip_or(|pg| …) else { return };`.
pub fn skip_or<T>(f: impl FnOnce(&'static PgServer) -> T) -> Option<T> {
    server().map(f)
}

fn required() -> bool {
    std::env::var(ENV_REQUIRE).is_ok_and(|v| v.trim() == "1")
}

impl PgServer {
    /// The maintenance database's URL (`…/postgres` for a started server,
    /// [`ENV_URL`] as given otherwise). Tests should not write into it:
    /// take a [`PgServer::fresh_database`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The started server's temporary folder (data in `data/`, log in
    /// `server.log`, socket in `socket/`); `None` for an [`ENV_URL`] server.
    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// Creates a new, empty database with a name of its own
    /// (`ezd_<pid>_<millis>_<n>`) and returns its `postgres://` URL.
    ///
    /// # Panics
    ///
    /// When the server refuses (the message says what it answered).
    pub fn fresh_database(&self) -> String {
        let name =
            format!("ezd_{}_{}_{}", std::process::id(), started_millis(), DATABASES.fetch_add(1, Ordering::Relaxed));
        self.psql(&self.url, &format!("CREATE DATABASE \"{name}\""));
        with_database(&self.url, &name)
    }

    /// Creates a new database as a copy of the database `template` (a name
    /// on this server, say the last part of a [`PgServer::fresh_database`]
    /// URL, which nobody may be connected to: PostgreSQL waits a few
    /// seconds for its sessions to end, then refuses) and returns its
    /// `postgres://` URL. Copying a migrated database is faster than
    /// migrating an empty one. The copy is a file copy (`STRATEGY
    /// FILE_COPY`, PostgreSQL 15 and later; measured about three times as
    /// fast as the default `WAL_LOG` for these small databases on a server
    /// without fsync), or the server's default on an older server.
    ///
    /// # Panics
    ///
    /// When the server refuses (the message says what it answered).
    pub fn database_from(&self, template: &str) -> String {
        let name =
            format!("ezd_{}_{}_{}", std::process::id(), started_millis(), DATABASES.fetch_add(1, Ordering::Relaxed));
        let create = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
        if let Err(why) = self.try_psql(&self.url, &format!("{create} STRATEGY FILE_COPY")) {
            if !why.contains("strategy") {
                panic!("psql on {} failed: {why}\nSQL: {create} STRATEGY FILE_COPY", redacted(&self.url));
            }
            self.psql(&self.url, &create);
        }
        with_database(&self.url, &name)
    }

    /// Drops the database `db_url` names, ending its sessions first
    /// (`WITH (FORCE)`); nothing if it does not exist.
    ///
    /// # Panics
    ///
    /// When the server refuses (the message says what it answered).
    pub fn drop_database(&self, db_url: &str) {
        let name = database_of(db_url);
        self.psql(&self.url, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    }

    /// Runs `sql` with `psql` on `db_url` and returns what it printed,
    /// unaligned, rows only, columns separated by `|`, without the final
    /// newline: `SELECT 1` gives `"1"`. `sql` goes as one `-c` string (one
    /// implicit transaction for several statements).
    ///
    /// # Panics
    ///
    /// When `psql` fails or takes longer than [`PSQL_DEADLINE`], with its
    /// error.
    pub fn psql(&self, db_url: &str, sql: &str) -> String {
        match self.try_psql(db_url, sql) {
            Ok(out) => out,
            Err(why) => panic!("psql on {db_url} failed: {why}\nSQL: {sql}"),
        }
    }

    /// [`PgServer::psql`], with the failure as an error.
    pub fn try_psql(&self, db_url: &str, sql: &str) -> Result<String, String> {
        psql(&self.psql, db_url, sql)
    }
}

fn started_millis() -> u128 {
    static STARTED: OnceLock<u128> = OnceLock::new();
    *STARTED.get_or_init(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0))
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..].find(['/', '?']).map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => match url[authority_start..authority_start + at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..authority_start + colon], &url[authority_start + at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The database `url` names (its path, without the query).
pub fn database_of(url: &str) -> &str {
    let head = url.split_once('?').map_or(url, |(head, _)| head);
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    head[authority_start..].split_once('/').map_or("", |(_, db)| db)
}

/// `url` with its database (the path) replaced by `db`; the query stays.
fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let authority_end = head[authority_start..].find('/').map_or(head.len(), |i| authority_start + i);
    let mut out = format!("{}/{db}", &head[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

// ───────────────────────────── finding or starting one ─────────────────────────────

fn find() -> Result<PgServer, String> {
    if let Ok(url) = std::env::var(ENV_URL) {
        let psql = tool("psql", None).ok_or_else(|| format!("{ENV_URL} is set but there is no psql on PATH"))?;
        return match self::psql(&psql, &url, "SELECT 1") {
            Ok(_) => Ok(PgServer { url, folder: None, psql }),
            Err(why) => Err(format!("{ENV_URL}={} does not answer: {why}", redacted(&url))),
        };
    }
    let initdb = tool("initdb", None).ok_or_else(|| format!("no initdb on PATH and {ENV_URL} unset"))?;
    // The server's own folder (through a symlink such as /usr/local/bin/initdb).
    let bin = std::fs::canonicalize(&initdb).ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let need = |name: &str| tool(name, bin.as_deref()).ok_or_else(|| format!("no {name} next to {}", initdb.display()));
    let tools = Tools {
        initdb: initdb.clone(),
        postgres: need("postgres")?,
        pg_isready: need("pg_isready")?,
        psql: need("psql")?,
    };
    start(&tools)
}

struct Tools {
    initdb: PathBuf,
    postgres: PathBuf,
    pg_isready: PathBuf,
    psql: PathBuf,
}

/// `name` on `PATH`, else in `beside`.
fn tool(name: &str, beside: Option<&Path>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(beside.map(Path::to_path_buf))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file() && candidate.metadata().is_ok_and(|m| m.mode() & 0o111 != 0))
}

/// Who runs the server: `None` for "us", or the `postgres` user's uid and
/// gid when we are root.
fn server_user(folder: &Path) -> Result<Option<(u32, u32)>, String> {
    // The folder was just made by us, so its owner is our uid.
    let uid = std::fs::metadata(folder).map_err(|e| format!("cannot read {}: {e}", folder.display()))?.uid();
    if uid != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32, String> {
        let out = run(Command::new("id").args([flag, "postgres"]), Duration::from_secs(10))?;
        out.trim().parse().map_err(|_| format!("`id {flag} postgres` answered {out:?}"))
    };
    let uid = id("-u").map_err(|e| format!("running as root and no `postgres` user to run the server as: {e}"))?;
    Ok(Some((uid, id("-g")?)))
}

/// A command run as the server's user.
fn as_server_user(user: Option<(u32, u32)>, program: &Path) -> Command {
    match user {
        Some(_) => {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn start(tools: &Tools) -> Result<PgServer, String> {
    let folder = tempfile::Builder::new()
        .prefix("ezdelivery-pg-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary folder: {e}"))?
        .keep();
    let started = start_in(tools, &folder);
    if started.is_err() {
        let _ = std::fs::remove_dir_all(&folder);
    }
    started
}

fn start_in(tools: &Tools, folder: &Path) -> Result<PgServer, String> {
    watch(folder, STOP_GRACE_TENTHS)?;
    let user = server_user(folder)?;
    let data = folder.join("data");
    let socket = folder.join("socket");
    std::fs::create_dir(&socket).map_err(|e| format!("cannot make {}: {e}", socket.display()))?;
    if let Some((uid, gid)) = user {
        for dir in [folder, &socket] {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to the postgres user: {e}", dir.display()))?;
        }
    }
    let mut initdb = as_server_user(user, &tools.initdb);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"])
        .current_dir(folder);
    run(&mut initdb, INITDB_DEADLINE).map_err(|e| format!("initdb failed: {e}"))?;

    let log_path = folder.join("server.log");
    let mut last = String::new();
    for _ in 0..START_ATTEMPTS {
        let port = free_port()?;
        match launch(tools, user, folder, &data, &socket, &log_path, port) {
            Ok(()) => {
                let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                return Ok(PgServer { url, folder: Some(folder.to_path_buf()), psql: tools.psql.clone() });
            }
            Err(why) => last = why,
        }
    }
    Err(format!("the server did not start ({START_ATTEMPTS} ports tried): {last}"))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("no local address: {e}"))
}

/// Starts the watchdog of `folder` (see the module's docs): from now on
/// the folder, and the server in it, go when the test process does.
fn watch(folder: &Path, grace_tenths: u32) -> Result<(), String> {
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("ezdelivery-pg-watchdog")
        .arg(std::process::id().to_string())
        .arg(folder)
        .arg(grace_tenths.to_string())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C to the tests leaves it to clean up.
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot run sh for the watchdog: {e}"))
}

/// Starts the server on `port` and waits until it answers.
fn launch(
    tools: &Tools,
    user: Option<(u32, u32)>,
    folder: &Path,
    data: &Path,
    socket: &Path,
    log_path: &Path,
    port: u16,
) -> Result<(), String> {
    let log = std::fs::File::create(log_path).map_err(|e| format!("cannot make {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| format!("cannot share the log: {e}"))?;
    let mut server = as_server_user(user, &tools.postgres);
    server
        .arg("-D")
        .arg(data)
        .arg("-p")
        .arg(port.to_string())
        .args(["-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", socket.display()))
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .args(["-c", "max_connections=200"])
        .current_dir(folder)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Like the watchdog: a Ctrl-C to the tests is the watchdog's to handle.
        .process_group(0);
    let mut child = server.spawn().map_err(|e| format!("cannot run postgres: {e}"))?;
    let until = Instant::now() + READY_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("postgres exited ({status}) on port {port}: {}", log_tail(log_path)));
        }
        let ready = Command::new(&tools.pg_isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if ready.is_ok_and(|s| s.success()) {
            return Ok(());
        }
        if Instant::now() >= until {
            // Stop this one (it holds the data folder) before another try:
            // SIGQUIT to the postmaster itself (as root, `child` is runuser).
            if let Ok(pid) = std::fs::read_to_string(data.join("postmaster.pid")) {
                if let Some(pid) = pid.lines().next() {
                    let _ = Command::new("kill").args(["-QUIT", pid.trim()]).status();
                }
            }
            let stop = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < stop {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "postgres did not answer on port {port} within {READY_DEADLINE:?}: {}",
                log_tail(log_path)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" / ")
}

// ───────────────────────────── running programs ─────────────────────────────

fn psql(psql: &Path, db_url: &str, sql: &str) -> Result<String, String> {
    let mut c = Command::new(psql);
    c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db_url, "-c", sql]);
    if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
        c.env("PGCONNECT_TIMEOUT", "10");
    }
    let out = run(&mut c, PSQL_DEADLINE)?;
    Ok(out.strip_suffix('\n').unwrap_or(&out).to_string())
}

/// Runs `command` to the end within `deadline`, reading its output while it
/// runs; its stdout, or an error with its stderr.
fn run(command: &mut Command, deadline: Duration) -> Result<String, String> {
    let what = format!("{:?}", command.get_program());
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let until = Instant::now() + deadline;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {deadline:?}"));
            }
            Err(e) => return Err(format!("cannot wait for {what}: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        Err(format!("{what} exited {status}: {}", stderr.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gets_another_database_and_keeps_its_query() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgresql://u:p@h/db?sslmode=disable", "x"), "postgresql://u:p@h/x?sslmode=disable");
        assert_eq!(redacted("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
        assert_eq!(database_of("postgres://u@h:5/ezd_1?sslmode=disable"), "ezd_1");
        assert_eq!(database_of("postgres://u@h:5/x"), "x");
    }

    /// The watchdog alone, with a stand-in server (a `sleep` whose pid is
    /// written where postgres writes its own, started here with SIGQUIT
    /// ignored, so it takes the SIGKILL after a short grace) and a
    /// stand-in test process (`sleep`, killed with SIGKILL): once that is
    /// gone, the server is stopped and the folder removed. Needs no
    /// PostgreSQL.
    #[test]
    fn the_watchdog_stops_the_server_and_removes_its_folder_once_the_test_process_is_gone() {
        let folder = tempfile::tempdir().expect("a temporary folder").keep();
        std::fs::create_dir(folder.join("data")).expect("a data folder");
        let mut test_process = Command::new("sleep").arg("60").spawn().expect("sleep runs");
        let mut stand_in = Command::new("sh")
            .args(["-c", r#"trap '' QUIT; echo $$ > "$1/data/postmaster.pid"; exec sleep 60"#, "server"])
            .arg(&folder)
            .spawn()
            .expect("sh runs");
        let pid = stand_in.id().to_string();
        let until = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(folder.join("data/postmaster.pid")).unwrap_or_default().trim() != pid {
            assert!(Instant::now() < until, "the stand-in server never wrote its pid");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Test process and watchdog as the watchdog sees them: the watched
        // pid is the stand-in test process's, not ours.
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(test_process.id().to_string())
            .arg(&folder)
            .arg("3")
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("sh runs");
        std::thread::sleep(Duration::from_millis(1200));
        assert!(matches!(watchdog.try_wait(), Ok(None)), "the watchdog stays while the test process lives");
        assert!(matches!(stand_in.try_wait(), Ok(None)) && folder.exists());

        test_process.kill().expect("kill the stand-in test process");
        test_process.wait().expect("reap it");
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let server_gone = matches!(stand_in.try_wait(), Ok(Some(_)));
            let watchdog_gone = matches!(watchdog.try_wait(), Ok(Some(_)));
            if server_gone && watchdog_gone && !folder.exists() {
                break;
            }
            if Instant::now() >= until {
                let _ = watchdog.kill();
                let _ = stand_in.kill();
                let _ = std::fs::remove_dir_all(&folder);
                panic!(
                    "10 s after the test process died: server gone {server_gone}, watchdog gone {watchdog_gone}, \
                     folder there {}",
                    folder.exists()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn two_fresh_databases_each_answer_and_are_different() {
        let Some(pg) = server() else { return };
        let a = pg.fresh_database();
        let b = pg.fresh_database();
        assert_ne!(a, b);
        assert!(a.starts_with("postgres"), "{a}");
        for url in [&a, &b] {
            assert_eq!(pg.psql(url, "SELECT 1"), "1");
        }
        // Isolated: a table made in one is not in the other.
        pg.psql(&a, "CREATE TABLE t (x int); INSERT INTO t VALUES (7)");
        assert_eq!(pg.psql(&a, "SELECT x FROM t"), "7");
        assert!(pg.try_psql(&b, "SELECT x FROM t").is_err());
        assert_eq!(pg.psql(pg.url(), "SELECT current_database()"), pg.url().rsplit('/').next().unwrap_or_default());
    }

    #[test]
    fn the_server_listens_on_127_0_0_1_only() {
        let Some(pg) = server() else { return };
        if pg.folder().is_none() {
            return; // an EZDELIVERY_TEST_PG server is not ours to judge
        }
        let got = pg.psql(pg.url(), "SHOW listen_addresses");
        assert_eq!(got, "127.0.0.1");
        assert_eq!(skip_or(|pg| pg.url().to_string()).as_deref(), Some(pg.url()));
    }
}
