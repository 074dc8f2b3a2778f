//! Running the real `ezdelivery` binary in a temporary [`World`], as every
//! CLI test does: a database (and usually a config file) of its own, a data
//! folder and home in the same temporary folder, a clean environment,
//! bounded processes, strict `--json` helpers, the test shop, relaying
//! until a condition holds, and what the fake gateway ([`crate::gateway`])
//! saw and did with money ([`assert_ledger`]).
//!
//! The binary's path is a constructor argument: a test passes
//! `env!("CARGO_BIN_EXE_ezdelivery")`, which only exists in the CLI
//! crate's own tests.
//!
//! Every process is bounded by [`PROCESS_DEADLINE`] and every relay loop by
//! [`RELAY_DEADLINE`]; the sleeps are waits, never timing assertions.

use std::collections::BTreeSet;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::gateway::{mix, Exchange, Gateway};
use crate::postgres::PgServer;

/// The prefix of the console notifier's lines on stderr.
pub const NOTIFICATION: &str = "[알림 → ";
/// No process of these tests may take longer than this.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(60);
/// How long `relay_until` keeps relaying (retries fall due after a
/// back-off of 0.5 to 1.5 s, doubling with each failed try).
pub const RELAY_DEADLINE: Duration = Duration::from_secs(25);
/// What every order of these tests costs: 후라이드 ×2 and 콜라.
pub const ORDER_TOTAL: i64 = 2 * 18_000 + 2_000;

// ───────────────────────────── running the binary ─────────────────────────────

/// What one run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// The notification lines (`[알림 → …]`) on stderr.
    pub fn notifications(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with(NOTIFICATION)).collect()
    }

    /// The lines of stderr that are not notifications.
    pub fn stderr_without_notifications(&self) -> String {
        self.stderr.lines().filter(|l| !l.starts_with(NOTIFICATION)).collect::<Vec<_>>().join("\n")
    }

    /// The exit code and the output, for a failure message about `what`.
    pub fn describe(&self, what: &str) -> String {
        format!("`{what}` exited {:?}\nstdout: {}\nstderr: {}", self.code, self.stdout, self.stderr)
    }
}

/// Waits for `child` at most `deadline`; a child still running then is
/// killed and the test fails.
pub fn wait_bounded(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// Collects what an exited child printed (what is left in its pipes: for
/// a child that prints a lot, read them while it runs, as [`finish`] does).
pub fn collect(child: &mut Child, status: ExitStatus) -> Run {
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).expect("stdout is UTF-8");
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).expect("stderr is UTF-8");
    }
    Run { code: status.code(), stdout, stderr }
}

/// The lines `child` prints on its piped stdout, as they come: a thread of
/// their own reads them until the pipe closes or the receiver is dropped.
pub fn stdout_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs `command` to the end (bounded by [`PROCESS_DEADLINE`]), reading
/// its stdout and stderr while it runs, so no output is too long for it.
pub fn finish(mut command: Command, what: &str) -> Run {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the ezdelivery binary starts");
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut bytes).expect("read the child's output");
            }
            bytes
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = wait_bounded(&mut child, PROCESS_DEADLINE, what);
    let text = |reader: std::thread::JoinHandle<Vec<u8>>, name: &str| {
        let bytes = reader.join().expect("the reader thread");
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("{name} of `{what}` is not UTF-8: {e}"))
    };
    Run { code: status.code(), stdout: text(stdout, "stdout"), stderr: text(stderr, "stderr") }
}

/// Parses `text` as exactly one JSON object.
pub fn one_object(text: &str, what: &str) -> Value {
    let value: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{what} is not exactly one JSON object ({e}):\n{text}"));
    assert!(value.is_object(), "{what} is JSON but not an object: {value}");
    value
}

/// What a `--json` run printed: the exit code and the one JSON object
/// (stdout on success; otherwise stderr, which holds nothing but that
/// object and notification lines). A run ended by a signal fails the test.
pub fn json_outcome(r: &Run, what: &str) -> (i32, Value) {
    let code = r.code.unwrap_or_else(|| panic!("{}", r.describe(what)));
    if code == 0 {
        (0, one_object(&r.stdout, &format!("stdout of `{what}`")))
    } else {
        (code, one_object(&r.stderr_without_notifications(), &format!("stderr of `{what}`")))
    }
}

/// What a failed `--json` run must print, checked: exit `code`, nothing on
/// stdout, and on stderr (besides notifications) exactly
/// `{"error": {"kind": kind, "message": …}}` with a message that is not
/// empty; returns the message.
pub fn assert_fails(r: &Run, what: &str, code: i32, kind: &str) -> String {
    assert_eq!(r.code, Some(code), "exit code of {}", r.describe(what));
    assert!(r.stdout.trim().is_empty(), "`{what}` failed but printed on stdout: {}", r.stdout);
    let err = one_object(&r.stderr_without_notifications(), &format!("stderr of `{what}`"));
    let keys: Vec<&String> = err.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    assert_eq!(keys, ["error"], "`{what}`: the error object is {{\"error\":…}}: {err}");
    for field in ["kind", "message"] {
        assert!(err["error"].get(field).is_some(), "`{what}`: the error lacks `{field}`: {err}");
    }
    assert_eq!(err["error"]["kind"], kind, "error kind of `{what}`: {err}");
    let message = err["error"]["message"].as_str().expect("the message is a string").to_string();
    assert!(!message.trim().is_empty(), "`{what}`: the error message is empty");
    message
}

/// The `order_id` of an order's view.
pub fn order_id(view: &Value) -> i64 {
    view["order_id"].as_i64().unwrap_or_else(|| panic!("no order_id in {view}"))
}

/// The integer `id` of a JSON object.
pub fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no integer id in {v}"))
}

/// `[section]` for an http gateway at `url`.
pub fn http(section: &str, url: &str, timeout_ms: u64) -> String {
    format!("[{section}]\nadapter = \"http\"\nurl = \"{url}\"\ntimeout_ms = {timeout_ms}\n")
}

/// `[breaker]`
pub fn breaker(failure_threshold: u32, open_ms: u64) -> String {
    format!("[breaker]\nfailure_threshold = {failure_threshold}\nopen_ms = {open_ms}\n")
}

/// The [`World::shell`] script that runs the binary with files limited to
/// `blocks` (`ulimit -f`: 512 bytes each in POSIX `sh`; SIGXFSZ ignored,
/// so a write past the limit fails with EFBIG, which SQLite reports as a
/// disk-full or I/O error).
pub fn file_limit(blocks: u64) -> String {
    format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\"")
}

/// A `[[notify]]` jsonl channel writing to `path`.
pub fn jsonl(path: &Path) -> String {
    format!("[[notify]]\nkind = \"jsonl\"\npath = {:?}\n", path.display().to_string())
}

/// A config whose payments and charges go through the gateway at `url`,
/// with short retries and a breaker that does not open in a test.
pub fn gateways(url: &str) -> String {
    format!(
        "{}{}[retry]\nbase_ms = 50\nmax_ms = 200\nlease_ms = 5000\n{}",
        http("payment", url, 2_000),
        http("charge", url, 2_000),
        breaker(1_000_000, 100)
    )
}

/// One temporary world: a database that does not exist yet (a SQLite
/// file, or an empty PostgreSQL database: [`World::on_postgres`]), usually
/// a config file, and a data folder and home inside the same temporary
/// directory; and the binary that runs in it.
pub struct World {
    /// The temporary folder everything of this world is in (removed when dropped).
    pub dir: TempDir,
    /// `state/ezdelivery.db`, given to every [`World::command`] as `--db`;
    /// for a world on PostgreSQL, the database's `postgres://` URL (a
    /// `PathBuf` keeps it as written).
    pub db: PathBuf,
    /// `ezdelivery.toml`, given to every [`World::command`] as `--config`;
    /// a world made by [`World::without_config`] gives none, and this path
    /// holds no file unless a test writes one (and passes it itself).
    pub config: PathBuf,
    /// Whether commands get `--config` ([`World::new`]) or not.
    own_config: bool,
    /// The `ezdelivery` binary.
    bin: PathBuf,
    /// Variables set for every process of this world ([`World::env`]).
    vars: Vec<(String, String)>,
    /// The PostgreSQL database `db` names, when it does: what
    /// [`World::count`], [`World::order_ids`] and [`World::dump`] ask
    /// through `psql` instead of opening a SQLite file.
    postgres: Option<(&'static PgServer, String)>,
}

/// The ids of the test shop ([`World::shop`]).
#[derive(Debug, Clone, Copy)]
pub struct Shop {
    /// 교촌치킨, owner park.
    pub store: i64,
    /// 후라이드, 18,000.
    pub chicken: i64,
    /// 콜라, 2,000.
    pub cola: i64,
}

impl World {
    /// A world for the binary `bin` (`env!("CARGO_BIN_EXE_ezdelivery")`)
    /// whose config file holds `config`.
    pub fn new(bin: impl Into<PathBuf>, config: &str) -> World {
        let world = World::without_config(bin);
        std::fs::write(&world.config, config).expect("write the config file");
        World { own_config: true, ..world }
    }

    /// A world for the binary `bin` with no config file: commands get
    /// `--db` only, and the program's defaults.
    pub fn without_config(bin: impl Into<PathBuf>) -> World {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = dir.path().join("state").join("ezdelivery.db");
        let config = dir.path().join("ezdelivery.toml");
        World { dir, db, config, own_config: false, bin: bin.into(), vars: Vec::new(), postgres: None }
    }

    /// A world for the binary `bin` whose commands run on the PostgreSQL
    /// database `url` (`--db URL`, say a [`PgServer::fresh_database`] of
    /// `pg`) with a config file holding `config`. Everything else is as
    /// in [`World::new`]; the helpers that read the database directly
    /// ([`World::count`], [`World::order_ids`], [`World::queued`],
    /// [`World::dump`], hence [`assert_ledger`]) ask it through `psql`.
    pub fn on_postgres(bin: impl Into<PathBuf>, config: &str, pg: &'static PgServer, url: &str) -> World {
        let world = World::new(bin, config);
        World { db: PathBuf::from(url), postgres: Some((pg, url.to_string())), ..world }
    }

    /// The PostgreSQL URL this world runs on; `None` on SQLite.
    pub fn postgres_url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(_, url)| url.as_str())
    }

    /// Runs `sql` with `psql` on this world's PostgreSQL database (see
    /// [`PgServer::psql`]).
    ///
    /// # Panics
    ///
    /// On a SQLite world, or when `psql` fails.
    pub fn psql(&self, sql: &str) -> String {
        let (pg, url) = self.postgres.as_ref().expect("World::psql: this world is on SQLite");
        pg.psql(url, sql)
    }

    /// The binary this world runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Where the binary puts its database without `--db` or `EZDELIVERY_DB`
    /// (the data folder of this world's environment).
    pub fn default_db(&self) -> PathBuf {
        let data = if cfg!(target_os = "macos") {
            self.dir.path().join("home").join("Library").join("Application Support")
        } else {
            self.dir.path().join("data")
        };
        data.join("ezdelivery").join("ezdelivery.db")
    }

    /// This world with `name=value` set for every process it starts (say
    /// `COLUMNS=200`, so tables are not wrapped).
    pub fn env(mut self, name: &str, value: &str) -> World {
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    /// Writes `text` to the file `name` of this world (another config
    /// file, say) and returns its path.
    pub fn config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write the config file");
        path
    }

    /// The file `name` in this world's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary on this world's database and config (if it has one),
    /// with a clean environment (no proxy: every request goes straight to
    /// 127.0.0.1).
    pub fn command(&self, args: &[&str]) -> Command {
        self.prepare(Command::new(&self.bin), args)
    }

    /// As [`World::command`], but the binary is started by
    /// `sh -c SCRIPT BIN --db … --config … ARGS`: the script ends with
    /// `exec "$0" "$@"` after whatever it sets up (a file-size limit, a
    /// redirection).
    pub fn shell(&self, script: &str, args: &[&str]) -> Command {
        let mut sh = Command::new("sh");
        sh.arg("-c").arg(script).arg(&self.bin);
        self.prepare(sh, args)
    }

    /// The binary with this world's clean environment, and neither `--db`
    /// nor `--config`: what the environment says is all it gets.
    pub fn bare(&self) -> Command {
        self.clean(Command::new(&self.bin))
    }

    /// Runs [`World::bare`] with `args`.
    pub fn run_bare(&self, args: &[&str]) -> Run {
        let mut c = self.bare();
        c.args(args);
        finish(c, &args.join(" "))
    }

    /// Runs the binary on the database `db` with `args`, and no config file.
    pub fn run_on(&self, db: &Path, args: &[&str]) -> Run {
        let mut c = self.bare();
        c.arg("--db").arg(db).args(args);
        finish(c, &args.join(" "))
    }

    /// As [`World::json`], on the database `db` with no config file.
    pub fn json_on(&self, db: &Path, args: &[&str]) -> (i32, Value) {
        let r = self.run_on(db, &[&["--json"], args].concat());
        json_outcome(&r, &args.join(" "))
    }

    /// As [`World::command`], but with the config file `config` instead of
    /// this world's own.
    pub fn command_with(&self, config: &Path, args: &[&str]) -> Command {
        let mut c = self.bare();
        c.arg("--db").arg(&self.db).arg("--config").arg(config).args(args);
        c
    }

    /// Runs `args` with the config file `config` instead of this world's own.
    pub fn run_with(&self, config: &Path, args: &[&str]) -> Run {
        finish(self.command_with(config, args), &args.join(" "))
    }

    fn prepare(&self, c: Command, args: &[&str]) -> Command {
        let mut c = self.clean(c);
        c.arg("--db").arg(&self.db);
        if self.own_config {
            c.arg("--config").arg(&self.config);
        }
        c.args(args);
        c
    }

    /// `c` with this world's clean environment (no proxy: every request
    /// goes straight to 127.0.0.1; stdin empty), and no arguments added.
    pub fn clean(&self, mut c: Command) -> Command {
        for var in [
            "EZDELIVERY_DB",
            "EZDELIVERY_CONFIG",
            "EZDELIVERY_KAKAO_TOKEN",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            c.env_remove(var);
        }
        c.env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("HOME", self.dir.path().join("home"))
            .env("NO_COLOR", "1")
            .envs(self.vars.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null());
        c
    }

    /// Runs [`World::command`] with `args` to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        finish(self.command(args), &args.join(" "))
    }

    /// Runs `args` with `--json`: the exit code and the one JSON object
    /// printed (stdout on success, the error object on stderr otherwise).
    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let r = self.run(&[&["--json"], args].concat());
        json_outcome(&r, &args.join(" "))
    }

    /// Runs `args` with `--json`, asserts success, returns the object printed.
    pub fn ok(&self, args: &[&str]) -> Value {
        let (code, value) = self.json(args);
        assert_eq!(code, 0, "`{}` failed: {value}", args.join(" "));
        value
    }

    /// Runs `args` with `--json` and checks the failure ([`assert_fails`]:
    /// exit `code`, error `kind`, nothing on stdout, one error object on
    /// stderr); returns the error message.
    pub fn fails(&self, args: &[&str], code: i32, kind: &str) -> String {
        let r = self.run(&[&["--json"], args].concat());
        assert_fails(&r, &args.join(" "), code, kind)
    }

    /// `store add`; returns the id.
    pub fn add_store(&self, name: &str, owner: &str) -> i64 {
        id(&self.ok(&["store", "add", "--name", name, "--owner", owner]))
    }

    /// `menu add`; returns the id.
    pub fn add_menu(&self, store: i64, name: &str, price: i64) -> i64 {
        id(&self.ok(&["menu", "add", "--store", &store.to_string(), "--name", name, "--price", &price.to_string()]))
    }

    /// `rider add`; returns the id.
    pub fn add_rider(&self, name: &str) -> i64 {
        id(&self.ok(&["rider", "add", "--name", name]))
    }

    /// Store 교촌치킨 (owner park) with 후라이드 18,000 and 콜라 2,000, and
    /// riders `riders`.
    pub fn shop(&self, riders: &[&str]) -> Shop {
        let store = self.add_store("교촌치킨", "park");
        let chicken = self.add_menu(store, "후라이드", 18_000);
        let cola = self.add_menu(store, "콜라", 2_000);
        for rider in riders {
            self.add_rider(rider);
        }
        Shop { store, chicken, cola }
    }

    /// `order --store … --customer … --item 후라이드:2 --item 콜라 [--pay]`.
    pub fn order(&self, shop: Shop, customer: &str, pay: bool) -> (i32, Value) {
        let s = shop.store.to_string();
        let mut args = vec!["order", "--store", &s, "--customer", customer, "--item", "후라이드:2", "--item", "콜라"];
        if pay {
            args.push("--pay");
        }
        self.json(&args)
    }

    /// Places and pays an order that must go through; returns its id.
    pub fn paid_order(&self, shop: Shop, customer: &str) -> i64 {
        let (code, view) = self.order(shop, customer, true);
        assert_eq!(code, 0, "order --pay: {view}");
        assert_eq!(view["status"], "paid", "{view}");
        order_id(&view)
    }

    /// Places and pays an order the gateway cannot take: exit 6; returns
    /// the id of the order kept.
    pub fn unavailable_order(&self, shop: Shop, customer: &str) -> (i64, String) {
        let (code, error) = self.order(shop, customer, true);
        assert_eq!(code, 6, "order --pay with the gateway unavailable: {error}");
        assert_eq!(error["error"]["kind"], "unavailable", "{error}");
        let message = error["error"]["message"].as_str().unwrap().to_string();
        let kept = self.orders_of(customer).last().map(order_id).expect("the order is kept");
        (kept, message)
    }

    /// `cmd… ORDER` with `--json`, asserting success; returns the view.
    pub fn on(&self, cmd: &[&str], order: i64) -> Value {
        let o = order.to_string();
        self.ok(&[cmd, &[o.as_str()]].concat())
    }

    /// Moves a paid order to `cooking`, `cooked`, `delivering` or `delivered`.
    pub fn advance(&self, order: i64, to: &str) -> Value {
        let steps: &[&[&str]] =
            &[&["cook", "start"], &["cook", "finish"], &["deliver", "start"], &["deliver", "complete"]];
        let n = ["cooking", "cooked", "delivering", "delivered"].iter().position(|s| *s == to).expect("a status");
        let mut view = Value::Null;
        for step in &steps[..=n] {
            view = self.on(step, order);
        }
        assert_eq!(view["status"], to);
        view
    }

    /// The order's view (`status ORDER`).
    pub fn status(&self, order: i64) -> Value {
        self.on(&["status"], order)
    }

    /// The views of `customer`'s orders (`status --customer`).
    pub fn orders_of(&self, customer: &str) -> Vec<Value> {
        let v = self.ok(&["status", "--customer", customer]);
        v["orders"].as_array().unwrap_or_else(|| panic!("{{\"orders\":[…]}} expected: {v}")).clone()
    }

    /// Every event, through `--json events`.
    ///
    /// On PostgreSQL, every event committed when it is called: a reader
    /// sees an event only once every transaction older than the event's
    /// has ended on the whole server (the adapter's documented horizon), so
    /// right after a command, while other tests' transactions run on the
    /// same server, `events` may not show its events yet. This asks again
    /// (bounded by [`RELAY_DEADLINE`]) until the log holds as many events
    /// as the table had committed before the first read.
    pub fn events(&self) -> Vec<Value> {
        let committed = self.postgres.is_some().then(|| self.count("SELECT count(*) FROM events"));
        let until = Instant::now() + RELAY_DEADLINE;
        loop {
            let all = self.ok(&["events"]);
            let events = all["events"]
                .as_array()
                .unwrap_or_else(|| panic!("`--json events` prints {{\"events\":[…]}}: {all}"))
                .clone();
            match committed {
                Some(n) if (events.len() as i64) < n => {
                    assert!(
                        Instant::now() < until,
                        "`events` shows {} events, {n} were committed, still after {RELAY_DEADLINE:?}",
                        events.len()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => return events,
            }
        }
    }

    /// One `relay` pass; its report.
    pub fn relay(&self) -> Value {
        self.ok(&["relay"])
    }

    /// Relays until `done` (given this world and the last report) holds,
    /// waiting between passes for queued retries to fall due; bounded by
    /// [`RELAY_DEADLINE`].
    pub fn relay_until(&self, what: &str, mut done: impl FnMut(&World, &Value) -> bool) -> Value {
        let until = Instant::now() + RELAY_DEADLINE;
        loop {
            let report = self.relay();
            if done(self, &report) {
                return report;
            }
            assert!(Instant::now() < until, "relay did not get {what} within {RELAY_DEADLINE:?}; last: {report}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Relays until the order's view satisfies `done`.
    pub fn relay_until_order(&self, order: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.relay_until(&format!("order {order} {what}"), |w, _| done(&w.status(order)));
        self.status(order)
    }

    /// Breaker `name` as `breaker status --json` shows it.
    pub fn breaker(&self, name: &str) -> Value {
        let all = self.ok(&["breaker", "status"]);
        all["breakers"]
            .as_array()
            .expect("{\"breakers\":[…]}")
            .iter()
            .find(|b| b["name"] == name)
            .unwrap_or_else(|| panic!("no breaker {name} in {all}"))
            .clone()
    }

    /// Opens the database directly (for what only it can tell).
    ///
    /// # Panics
    ///
    /// On a world on PostgreSQL ([`World::psql`] is its way in).
    pub fn sql(&self) -> rusqlite::Connection {
        assert!(self.postgres.is_none(), "World::sql opens a SQLite file; this world is on PostgreSQL: World::psql");
        rusqlite::Connection::open(&self.db).expect("open the database")
    }

    /// The number `query` (a `SELECT count(*) …`) gives.
    pub fn count(&self, query: &str) -> i64 {
        if self.postgres.is_some() {
            let out = self.psql(query);
            return out.trim().parse().unwrap_or_else(|_| panic!("`{query}` gave {out:?}, not a number"));
        }
        self.sql().query_row(query, [], |row| row.get(0)).expect(query)
    }

    /// Every order of the database, by id.
    pub fn order_ids(&self) -> Vec<i64> {
        if self.postgres.is_some() {
            let out = self.psql("SELECT id FROM orders ORDER BY id");
            return out.lines().map(|l| l.trim().parse().expect("an order id")).collect();
        }
        let db = self.sql();
        let mut query = db.prepare("SELECT id FROM orders ORDER BY id").expect("SELECT id FROM orders");
        let ids = query.query_map([], |row| row.get(0)).expect("the order ids");
        ids.map(|id| id.expect("an order id")).collect()
    }

    /// The first column of the rows `query` selects, as text (one value
    /// each; an id, say), on SQLite or PostgreSQL alike.
    pub fn texts(&self, query: &str) -> BTreeSet<String> {
        if self.postgres.is_some() {
            return self.psql(query).lines().map(String::from).collect();
        }
        let db = self.sql();
        let mut statement = db.prepare(query).expect(query);
        let rows = statement.query_map([], |row| row.get(0)).expect(query);
        rows.map(|text| text.expect(query)).collect()
    }

    /// Payments and delivery charges still waiting for a gateway call
    /// (`pending` or `refund_pending`; not those in `needs_attention`).
    pub fn queued(&self) -> i64 {
        self.count(QUEUED)
    }

    /// Relays until a pass did nothing and nothing is queued any more,
    /// waiting [`QUIET_PAUSE`] between passes for back-offs and claims to
    /// lapse; bounded by [`QUIET_DEADLINE`]. Returns the last report.
    pub fn relay_until_quiet(&self, gw: &Gateway) -> Value {
        let start = Instant::now();
        loop {
            let report = self.relay();
            let busy = RELAY_WORK.iter().any(|field| report[*field].as_i64().unwrap_or(0) > 0);
            if !busy && self.queued() == 0 {
                return report;
            }
            // a refund of an id the gateway never gave is refused for ever:
            // no use waiting the whole deadline for it
            let hopeless = !gw.ledger().strays.is_empty() && start.elapsed() >= STRAY_PATIENCE;
            if start.elapsed() >= QUIET_DEADLINE || hopeless {
                panic!(
                    "relay is not quiet after {QUIET_DEADLINE:?}; last report: {report}\nqueued payments:\n{}\n\
                     queued charges:\n{}\nrefunds naming an id the gateway never gave: {:#?}\n\
                     the gateway is {:?}; its last requests:\n{:#?}",
                    self.dump("SELECT * FROM payments WHERE status IN ('pending', 'refund_pending')"),
                    self.dump("SELECT * FROM charges WHERE status IN ('pending', 'refund_pending')"),
                    gw.ledger().strays,
                    gw.mode(),
                    gw.log().iter().rev().take(12).collect::<Vec<_>>()
                );
            }
            std::thread::sleep(QUIET_PAUSE);
        }
    }

    /// The rows `query` selects, one line each, for failure messages.
    pub fn dump(&self, query: &str) -> String {
        if let Some((pg, url)) = &self.postgres {
            return match pg.try_psql(url, &format!("SELECT row_to_json(r) FROM ({query}) r")) {
                Ok(out) if out.trim().is_empty() => "  (none)".into(),
                Ok(out) => out.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
                Err(e) => format!("  (cannot run {query}: {e})"),
            };
        }
        let db = self.sql();
        let Ok(mut statement) = db.prepare(query) else { return format!("  (cannot run {query})") };
        let names: Vec<String> = statement.column_names().iter().map(|n| n.to_string()).collect();
        let rows = statement.query_map([], |row| {
            let cells: Vec<String> = (0..names.len())
                .map(|i| {
                    let value = match row.get_ref(i) {
                        Ok(rusqlite::types::ValueRef::Null) => "null".to_string(),
                        Ok(rusqlite::types::ValueRef::Integer(n)) => n.to_string(),
                        Ok(rusqlite::types::ValueRef::Real(x)) => x.to_string(),
                        Ok(rusqlite::types::ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
                        Ok(rusqlite::types::ValueRef::Blob(b)) => format!("<{} bytes>", b.len()),
                        Err(e) => format!("<{e}>"),
                    };
                    format!("{}={value}", names[i])
                })
                .collect();
            Ok(format!("  {}", cells.join(" ")))
        });
        match rows {
            Ok(rows) => {
                let lines: Vec<String> = rows.map(|r| r.unwrap_or_else(|e| format!("  <{e}>"))).collect();
                if lines.is_empty() {
                    "  (none)".into()
                } else {
                    lines.join("\n")
                }
            }
            Err(e) => format!("  (cannot run {query}: {e})"),
        }
    }
}

// ───────────────────────────── the ledger assertion ─────────────────────────────

/// How long [`World::relay_until_quiet`] keeps relaying (a claim left by a
/// killed process lapses after the test config's `lease_ms`, a few seconds).
pub const QUIET_DEADLINE: Duration = Duration::from_secs(40);
/// How long [`World::relay_until_quiet`] goes on once a refund named an id
/// the gateway never gave.
pub const STRAY_PATIENCE: Duration = Duration::from_secs(5);
/// The wait between two relay passes (more than the tests' `max_ms` back-off).
pub const QUIET_PAUSE: Duration = Duration::from_millis(220);
/// The fields of a relay report that count work done or still to do.
pub const RELAY_WORK: [&str; 6] =
    ["payments_approved", "payments_declined", "refunds_confirmed", "charges_paid", "charges_refunded", "still_queued"];
/// Payments and charges waiting for a gateway call.
const QUEUED: &str = "SELECT (SELECT count(*) FROM payments WHERE status IN ('pending', 'refund_pending')) + \
                      (SELECT count(*) FROM charges WHERE status IN ('pending', 'refund_pending'))";

/// Order statuses in which the order has been paid for.
pub const ESTABLISHED: [&str; 5] = ["paid", "cooking", "cooked", "delivering", "delivered"];

/// The money assertion: once `relay` is quiet, what the gateway really did
/// matches what each of `orders` says (`status ORDER`):
///
/// - payments (approvals − refunds) are 1 for a paid, cooking, cooked,
///   delivering or delivered order, and 0 for a cancelled, rejected or
///   pending_payment one;
/// - delivery charges (paid − taken back) are 1 for a delivering or
///   delivered order, 1 exactly when the charge is `paid` for a cooking or
///   cooked one, and 0 otherwise;
/// - no refund names an id the gateway never gave (the idempotency key);
/// - the gateway moved money for no order outside `orders`.
///
/// An order with a payment (or charge) in `needs_attention`, in its view or
/// in `relay --attention`, is not asserted (for that part) but returned:
/// the tests that expect it say so.
/// Failures print the ledger and the gateway's requests of the order.
pub fn assert_ledger(w: &World, gw: &Gateway, orders: &[i64]) -> Vec<i64> {
    w.relay_until_quiet(gw);
    let ledger = gw.ledger();
    let mut problems = Vec::new();
    let mut attention = Vec::new();
    // What `relay --attention` lists, by kind: a view shows only its order's
    // current payment and charge, not the charge of a rider the delivery
    // moved away from.
    let listed = w.ok(&["relay", "--attention"]);
    let listed = |kind: &str| -> BTreeSet<i64> {
        let items = listed["attention"].as_array().into_iter().flatten();
        items.filter(|a| a["kind"] == kind).filter_map(|a| a["order_id"].as_i64()).collect()
    };
    let (payments_listed, charges_listed) = (listed("payment"), listed("charge"));
    for &order in orders {
        let view = w.status(order);
        let status = view["status"].as_str().unwrap_or("?").to_string();
        let payment_attention = view["payment"]["status"] == "needs_attention" || payments_listed.contains(&order);
        let charge = &view["delivery"]["charge"];
        let charge_attention = charge["status"] == "needs_attention" || charges_listed.contains(&order);
        if payment_attention || charge_attention {
            attention.push(order);
        }
        let payments = match status.as_str() {
            s if ESTABLISHED.contains(&s) => 1,
            "cancelled" | "rejected" | "pending_payment" => 0,
            other => {
                problems.push(format!("order {order}: unknown status {other}: {view}"));
                continue;
            }
        };
        let charges = match status.as_str() {
            "delivering" | "delivered" => 1,
            "cooking" | "cooked" => i64::from(charge["status"] == "paid"),
            _ => 0,
        };
        let explain = |what: &str, got: i64, want: i64| {
            format!(
                "order {order} is {status} but the gateway's net {what} is {got}, not {want}\n\
                 payment: {}\ncharge: {}\nledger:\n{}\nrequests about it:\n{:#?}",
                view["payment"],
                charge,
                ledger.describe(order),
                gw.log_of(order)
            )
        };
        let net = ledger.net_payments(order);
        if !payment_attention && net != payments {
            problems.push(explain("payments (approvals - refunds)", net, payments));
        }
        let net = ledger.net_charges(order);
        if !charge_attention && net != charges {
            problems.push(explain("delivery charges (paid - taken back)", net, charges));
        }
    }
    if !ledger.strays.is_empty() {
        problems.push(format!(
            "refunds named ids the gateway never gave (a refund must name the approval's id, never the \
             idempotency key): {:#?}",
            ledger.strays
        ));
    }
    let known: BTreeSet<i64> = orders.iter().copied().collect();
    for order in ledger.orders().difference(&known) {
        problems.push(format!("the gateway moved money for order {order}, not asserted:\n{}", ledger.describe(*order)));
    }
    assert!(problems.is_empty(), "the ledger does not hold ({} problems):\n{}", problems.len(), problems.join("\n\n"));
    attention
}

/// Whether an order's view says it is paid and its payment approved.
pub fn paid(view: &Value) -> bool {
    view["status"] == "paid" && view["payment"]["status"] == "approved"
}

// ───────────────────────────── what the gateway saw ─────────────────────────────

/// The approval requests (`POST /payments`) for `order`.
pub fn approvals(gw: &Gateway, order: i64) -> Vec<Exchange> {
    gw.log().into_iter().filter(|e| e.path == "/payments" && e.order_id() == Some(order)).collect()
}

/// The charge requests (`POST /deliveryCharges`) for `order`.
pub fn charges(gw: &Gateway, order: i64) -> Vec<Exchange> {
    gw.log().into_iter().filter(|e| e.path == "/deliveryCharges" && e.order_id() == Some(order)).collect()
}

/// Every request of `calls` carried one and the same, non-empty
/// Idempotency-Key, and the gateway acted on it exactly once; returns the key.
pub fn one_key_acted_on_once(calls: &[Exchange], what: &str) -> String {
    assert!(!calls.is_empty(), "{what}: the gateway saw no request");
    let keys: BTreeSet<&str> = calls.iter().map(Exchange::key).collect();
    assert_eq!(keys.len(), 1, "{what}: every retry carries the same Idempotency-Key: {keys:?}");
    let key = keys.into_iter().next().unwrap().to_string();
    assert!(!key.is_empty(), "{what}: an Idempotency-Key header is sent");
    let fresh = calls.iter().filter(|e| e.fresh).count();
    assert_eq!(fresh, 1, "{what}: the gateway acted exactly once: {calls:#?}");
    key
}

/// As [`one_key_acted_on_once`], and no request was answered 2xx but the
/// one acted on (no retry after a success).
pub fn one_success(calls: &[Exchange], what: &str) -> String {
    let key = one_key_acted_on_once(calls, what);
    let successes = calls.iter().filter(|e| e.ok()).count();
    assert_eq!(successes, 1, "{what}: exactly one successful request: {calls:#?}");
    key
}

// ───────────────────────────── seeded randomness ─────────────────────────────

/// A small deterministic generator (splitmix64), seeded by its field.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// The next number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
