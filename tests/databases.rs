//! Which files the real `ezdelivery` binary agrees to write to.
//!
//! - Another program's SQLite database, one written by a newer ezdelivery,
//!   or a file that is not a database at all is refused with exit 2
//!   (`invalid_input`) and a message that says what was found and what to
//!   do, and left byte for byte as it was: journal mode included, and no
//!   `-wal`, `-shm` or `-journal` file left beside it.
//! - `simulate` runs only on a new, empty database and leaves any other
//!   untouched, the default database included.
//!
//! Every test gets its own temporary folder: the databases, the data folder
//! (`XDG_DATA_HOME`) and `HOME` all point inside it, and `EZDELIVERY_DB` /
//! `EZDELIVERY_CONFIG` are removed, so nothing touches the real home.

use std::path::{Path, PathBuf};

use ezdelivery_testkit::cli_world::{one_object, Run, World};
use ezdelivery_testkit::files::folder;
use rusqlite::Connection;
use serde_json::Value;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");

/// A world with no config file and a folder `dbs` for the databases.
fn world() -> World {
    let world = World::without_config(BIN);
    std::fs::create_dir(world.path("dbs")).expect("a folder for the databases");
    world
}

/// A file in the databases' folder (not created).
fn db(world: &World, name: &str) -> PathBuf {
    world.path("dbs").join(name)
}

/// The one JSON error object of a `--json` run's stderr.
fn json_error(run: &Run) -> Value {
    let value = one_object(&run.stderr, "stderr");
    assert!(value["error"].is_object(), "{value}");
    value["error"].clone()
}

/// Runs commands that would write on `db` (human and `--json`) and checks
/// each is refused with exit 2, a message holding every piece of `says`,
/// and not a byte of the folder changed.
fn assert_refused_untouched(world: &World, db: &Path, says: &[&str]) {
    let dir = db.parent().expect("a folder");
    let before = folder(dir);
    let path = db.display().to_string();
    let human = world.run_on(db, &["store", "list"]);
    assert_eq!(human.code, Some(2), "{human:?}");
    assert!(human.stdout.is_empty(), "{human:?}");
    assert!(human.stderr.starts_with("ezdelivery: "), "{human:?}");
    for piece in says.iter().chain([&path.as_str(), &"--db"]) {
        assert!(human.stderr.contains(piece), "says `{piece}`: {}", human.stderr);
    }
    let json = world.run_on(db, &["--json", "store", "add", "--name", "x"]);
    assert_eq!(json.code, Some(2), "{json:?}");
    assert!(json.stdout.is_empty(), "{json:?}");
    let error = json_error(&json);
    assert_eq!(error["kind"], "invalid_input", "{error}");
    let message = error["message"].as_str().expect("a message");
    for piece in says {
        assert!(message.contains(piece), "says `{piece}`: {message}");
    }
    let order = world.run_on(db, &["order", "--store", "1", "--customer", "kim", "--item", "1"]);
    assert_eq!(order.code, Some(2), "{order:?}");
    let simulate = world.run_on(db, &["simulate", "--orders", "5"]);
    assert_eq!(simulate.code, Some(2), "{simulate:?}");
    assert_eq!(folder(dir), before, "not a byte changed and no file left beside {path}");
}

/// Another program's database with tables `foo` and `bar`.
fn foreign_database(path: &Path, journal_mode: &str, user_version: i64) {
    let conn = Connection::open(path).expect("opened");
    let mode: String =
        conn.query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |r| r.get(0)).expect("journal mode");
    assert_eq!(mode, journal_mode);
    conn.execute_batch("CREATE TABLE foo (x); CREATE TABLE bar (y); INSERT INTO foo VALUES ('keep me');")
        .expect("created");
    conn.pragma_update(None, "user_version", user_version).expect("set");
}

fn journal_mode(path: &Path) -> String {
    let conn = Connection::open(path).expect("opened");
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("journal mode")
}

/// A database of ours with one store, made by the binary.
fn one_store(world: &World, db: &Path) {
    let r = world.run_on(db, &["--quiet", "store", "add", "--name", "교촌치킨"]);
    assert_eq!(r.code, Some(0), "{r:?}");
}

// ─────────────────────── databases that are not ours ───────────────────────

#[test]
fn a_foreign_rollback_journal_database_is_refused_untouched() {
    let world = world();
    let db = db(&world, "app.db");
    foreign_database(&db, "delete", 0);
    assert_refused_untouched(&world, &db, &["is not an ezdelivery database", "tables bar, foo"]);
    assert_eq!(journal_mode(&db), "delete", "it did not become a WAL database");
}

#[test]
fn a_foreign_wal_database_is_refused_untouched() {
    let world = world();
    let db = db(&world, "app.db");
    foreign_database(&db, "wal", 0);
    assert_refused_untouched(&world, &db, &["is not an ezdelivery database", "tables bar, foo"]);
    assert_eq!(journal_mode(&db), "wal");
}

#[test]
fn a_foreign_database_with_a_high_user_version_is_refused_as_foreign() {
    let world = world();
    let db = db(&world, "app.db");
    foreign_database(&db, "delete", 999);
    assert_refused_untouched(&world, &db, &["is not an ezdelivery database", "tables bar, foo"]);
}

#[test]
fn a_database_from_a_newer_ezdelivery_is_refused_untouched() {
    for mode in ["delete", "wal"] {
        let world = world();
        let db = db(&world, "ezdelivery.db");
        one_store(&world, &db);
        {
            let conn = Connection::open(&db).expect("opened");
            conn.pragma_update(None, "user_version", 999).expect("set");
            let _mode: String =
                conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0)).expect("journal mode");
        }
        assert_refused_untouched(
            &world,
            &db,
            &["was written by a newer ezdelivery", "schema version 999", "upgrade ezdelivery"],
        );
        assert_eq!(journal_mode(&db), mode, "the journal mode it had");
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let world = world();
    let db = db(&world, "notes.txt");
    std::fs::write(&db, "shopping: rice, kimchi, 2 chickens\n".repeat(20)).expect("written");
    assert_refused_untouched(&world, &db, &["is not an ezdelivery database", "not a SQLite database"]);
}

#[test]
fn an_empty_file_becomes_a_new_database() {
    let world = world();
    let db = db(&world, "empty.db");
    std::fs::write(&db, b"").expect("written");
    one_store(&world, &db);
    let r = world.run_on(&db, &["--json", "store", "list"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("교촌치킨"), "{r:?}");
}

// ─────────────────────── simulate only on a new database ───────────────────────

#[test]
fn simulate_refuses_a_database_with_one_store_untouched() {
    let world = world();
    let db = db(&world, "real.db");
    one_store(&world, &db);
    let before = folder(db.parent().expect("a folder"));
    let human = world.run_on(&db, &["simulate", "--orders", "20"]);
    assert_eq!(human.code, Some(2), "{human:?}");
    for piece in ["simulate runs only on a new, empty database", "holds 1 store", "--db", "does not exist yet"] {
        assert!(human.stderr.contains(piece), "says `{piece}`: {}", human.stderr);
    }
    let json = world.run_on(&db, &["--json", "simulate", "--orders", "20"]);
    assert_eq!(json.code, Some(2), "{json:?}");
    assert_eq!(json_error(&json)["kind"], "invalid_input");
    assert_eq!(folder(db.parent().expect("a folder")), before, "not a byte changed");
    let stores = world.run_on(&db, &["--json", "store", "list"]);
    assert_eq!(stores.code, Some(0), "{stores:?}");
    assert!(stores.stdout.contains("교촌치킨"), "the real store is still there: {stores:?}");
}

#[test]
fn simulate_refuses_the_default_database_when_it_holds_data() {
    let world = world();
    let r = world.run_bare(&["--quiet", "store", "add", "--name", "교촌치킨"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let db = world.default_db();
    assert!(db.exists(), "the default database is {}", db.display());
    let before = folder(db.parent().expect("a folder"));
    let r = world.run_bare(&["simulate", "--orders", "20"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("the default database"), "{}", r.stderr);
    assert!(r.stderr.contains("--db /tmp/sim.db"), "{}", r.stderr);
    assert_eq!(folder(db.parent().expect("a folder")), before, "not a byte changed");
}

#[test]
fn simulate_runs_on_a_new_file_and_on_an_empty_one() {
    let world = world();
    let new = db(&world, "new").join("sim.db");
    let empty = db(&world, "empty.db");
    std::fs::write(&empty, b"").expect("written");
    for db in [&new, &empty] {
        let r = world.run_on(db, &["--json", "simulate", "--orders", "20", "--seed", "3"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        let report: Value = serde_json::from_str(r.stdout.trim()).expect("one JSON report");
        assert_eq!(report["orders"], 20, "{report}");
        assert_eq!(report["invariants"]["hold"], true, "{report}");
    }
    // Now that it holds the simulation's orders, a second run is refused.
    let again = world.run_on(&new, &["simulate", "--orders", "20"]);
    assert_eq!(again.code, Some(2), "{again:?}");
    assert!(again.stderr.contains("holds 20 orders"), "{}", again.stderr);
}

#[test]
fn simulate_at_normal_checkpoints_in_the_background_and_leaves_no_wal() {
    // At `synchronous = "normal"` simulate's WAL is checkpointed by a
    // thread of its own: 300 lifecycles write some 20,000 pages, past the
    // 10,000 at which it is woken.
    let world = world();
    let config = world.config("normal.toml", "[storage]\nsynchronous = \"normal\"\n");
    let sim = db(&world, "sim.db");
    let config = config.to_str().expect("a UTF-8 path");
    let r = world.run_on(&sim, &["-vv", "--config", config, "--json", "simulate", "--orders", "300", "--seed", "5"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("checkpointed on a thread of its own"), "{}", r.stderr);
    let report: Value = serde_json::from_str(r.stdout.trim()).expect("one JSON report");
    assert_eq!(report["orders"], 300, "{report}");
    assert_eq!(report["invariants"]["hold"], true, "{report}");
    // The thread was joined, and the last connection to close copied the
    // rest and removed the WAL, as a command's always does.
    let wal = PathBuf::from(format!("{}-wal", sim.display()));
    assert!(!wal.exists(), "{} is left behind", wal.display());
    let status = world.run_on(&sim, &["--json", "status", "300"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    // At the default `full`, and in a command that exits, SQLite's own.
    let full = db(&world, "full.db");
    let r = world.run_on(&full, &["-vv", "--json", "simulate", "--orders", "5"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("checkpointed on a thread of its own"), "{}", r.stderr);
    let r = world.run_on(&sim, &["-vv", "--config", config, "--json", "store", "list"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("checkpointed on a thread of its own"), "{}", r.stderr);
}

#[test]
fn simulate_runs_on_a_database_that_holds_no_row() {
    let world = world();
    let db = db(&world, "fresh.db");
    // `relay` writes (so it creates the database) but finds nothing to do.
    let r = world.run_on(&db, &["relay"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(db.exists(), "relay created the database");
    let r = world.run_on(&db, &["--quiet", "simulate", "--orders", "5"]);
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn simulate_refuses_zero_orders() {
    let world = world();
    let db = db(&world, "sim.db");
    let human = world.run_on(&db, &["simulate", "--orders", "0"]);
    assert_eq!(human.code, Some(2), "{human:?}");
    let json = world.run_on(&db, &["--json", "simulate", "--orders", "0"]);
    assert_eq!(json.code, Some(2), "{json:?}");
    assert_eq!(json_error(&json)["kind"], "invalid_input");
    assert!(!db.exists(), "nothing was created");
}

#[test]
fn simulate_help_shows_db_on_a_new_file_in_every_example() {
    let world = world();
    let r = world.run_bare(&["simulate", "--help"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let examples: Vec<&str> = r.stdout.lines().map(str::trim).filter(|l| l.starts_with("ezdelivery ")).collect();
    assert!(examples.len() >= 2, "{}", r.stdout);
    for example in examples {
        assert!(example.starts_with("ezdelivery --db /tmp/"), "{example}");
        assert!(example.contains(" simulate --orders "), "{example}");
    }
    assert!(r.stdout.contains("does not exist yet"), "{}", r.stdout);
}
