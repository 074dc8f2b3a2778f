//! What a first-time user trips over, through the real `ezdelivery`
//! binary: https URLs and the KakaoTalk default in the default build, the
//! store owner and the rider told of a cancellation, the reason and the
//! address in `status`, databases that cannot be written (read commands
//! still work) and paths that are not database files at all.

use std::path::Path;
use std::process::Command;

use ezdelivery_testkit::cli_world::*;
use serde_json::{json, Value};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");

// ───────────────────────────── TLS in the default build ─────────────────────────────

#[test]
fn an_https_gateway_url_is_accepted_by_the_default_build() {
    let config =
        format!("{}{}", http("payment", "https://127.0.0.1:9", 500), http("charge", "https://pay.example", 500));
    let w = World::new(BIN, &config);
    let stores = w.ok(&["store", "list"]);
    assert_eq!(stores["stores"], serde_json::json!([]), "{stores}");
}

#[test]
fn a_kakao_channel_needs_no_base_url() {
    let w = World::new(BIN, "[[notify]]\nkind = \"kakao\"\nname = \"kakao-me\"\n");
    let mut c = w.command(&["--json", "store", "list"]);
    c.env("EZDELIVERY_KAKAO_TOKEN", "token-for-the-test");
    let r = finish(c, "store list");
    let (code, out) = json_outcome(&r, "store list");
    assert_eq!(code, 0, "{}", r.describe("store list"));
    assert_eq!(out["stores"], serde_json::json!([]));
    // Without the token it is still an input error, naming the variable.
    let message = w.fails(&["store", "list"], 2, "invalid_input");
    assert!(message.contains("EZDELIVERY_KAKAO_TOKEN"), "{message}");
}

// ───────────────────────────── a cancellation tells everyone on it ─────────────────────────────

#[test]
fn a_cancelled_order_tells_the_owner_and_the_rider_and_shows_why() {
    let w = World::new(BIN, "");
    let log = w.path("messages.jsonl");
    std::fs::write(&w.config, jsonl(&log)).expect("config");
    let shop = w.shop(&["lee"]);
    let s = shop.store.to_string();
    let address = "서울 강남구 테헤란로 1";
    let placed = w.ok(&[
        "order",
        "--store",
        &s,
        "--customer",
        "kim",
        "--item",
        "후라이드:2",
        "--item",
        "콜라",
        "--address",
        address,
        "--pay",
    ]);
    let order = order_id(&placed).to_string();
    w.ok(&["cook", "start", &order]);
    let view = w.ok(&["cancel", &order, "--reason", "changed my mind"]);
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["reason"], "changed my mind", "{view}");
    assert_eq!(w.status(order_id(&placed))["reason"], "changed my mind");

    let text = std::fs::read_to_string(&log).expect("the messages");
    let cancelled: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .filter(|m| m["event"] == "OrderCancelled")
        .collect();
    let to: Vec<&str> = cancelled.iter().map(|m| m["recipient"].as_str().unwrap_or_default()).collect();
    assert_eq!(to, ["kim", "park", "lee"], "{text}");
    let owner = cancelled[1]["message"].as_str().unwrap_or_default();
    assert!(owner.contains(&format!("#{order}")) && owner.contains("changed my mind"), "{owner}");
    let rider = cancelled[2]["message"].as_str().unwrap_or_default();
    assert!(rider.contains(&format!("#{order}")) && rider.contains("배달"), "{rider}");
    assert!(cancelled[2]["id"].as_str().unwrap_or_default().ends_with(":rider"), "{}", cancelled[2]);

    let human = w.run(&["status", &order]);
    assert_eq!(human.code, Some(0), "{}", human.describe("status"));
    assert!(human.stdout.contains("reason    changed my mind\n"), "{}", human.stdout);
    assert!(human.stdout.contains(&format!("address   {address}\n")), "{}", human.stdout);

    // An order not yet paid: only the customer hears, no reason given.
    let (_, unpaid) = w.order(shop, "choi", false);
    let unpaid_id = order_id(&unpaid);
    let unpaid = unpaid_id.to_string();
    let view = w.ok(&["cancel", &unpaid]);
    assert_eq!(view["reason"], Value::Null, "{view}");
    let text = std::fs::read_to_string(&log).expect("the messages");
    let told: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .filter(|m| m["event"] == "OrderCancelled" && m["orderId"] == unpaid_id)
        .collect();
    assert_eq!(told.len(), 1, "{text}");
    assert_eq!(told[0]["recipient"], "choi");
    let human = w.run(&["status", &unpaid]);
    assert!(human.stdout.contains("address   -\n") && !human.stdout.contains("reason "), "{}", human.stdout);
}

/// A message that fails `[retry] message_tries` times is parked as dead,
/// listed by `relay --dead` (for people, with what to run next), and
/// delivered once after `relay --retry-dead` when its channel works again.
#[test]
fn a_dead_message_is_listed_and_delivered_once_after_retry_dead() {
    let w = World::new(BIN, "");
    let blocker = w.path("not-a-folder");
    std::fs::write(&blocker, b"").expect("a plain file");
    let file = blocker.join("messages.jsonl");
    let config = format!("{}[retry]\nmessage_tries = 1\nbase_ms = 1\nmax_ms = 1\n", jsonl(&file));
    std::fs::write(&w.config, config).expect("the config");
    let shop = w.shop(&[]);
    let order = w.paid_order(shop, "kim");
    let dead = |w: &World| w.ok(&["relay", "--dead"])["dead"].as_array().cloned().unwrap_or_default();
    w.relay_until("every message is parked as dead", |w, report| {
        report["waiting_messages"] == 0 && !dead(w).is_empty()
    });
    let listed = dead(&w);
    for entry in &listed {
        assert_eq!(
            (&entry["channel"], &entry["order_id"], &entry["tries"]),
            (&json!("jsonl"), &json!(order), &json!(1))
        );
        assert!(entry["last_error"].as_str().is_some_and(|e| e.contains("cannot append")), "{entry}");
    }
    let human = w.run(&["relay", "--dead"]);
    assert!(human.stdout.contains("relay --retry-dead"), "{}", human.describe("relay --dead"));

    std::fs::remove_file(&blocker).expect("the channel works again");
    assert_eq!(w.ok(&["relay", "--retry-dead"])["revived"], listed.len());
    w.relay_until("the revived messages are delivered", |w, report| {
        report["waiting_messages"] == 0 && dead(w).is_empty()
    });
    let lines = std::fs::read_to_string(&file).expect("the messages' file");
    let mut ids: Vec<&str> = lines.lines().map(|l| l.split('"').nth(3).unwrap_or_default()).collect();
    assert_eq!(ids.len(), listed.len(), "each once: {lines}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), listed.len(), "each once: {lines}");
}

// ───────────────────────────── databases that cannot be written ─────────────────────────────

/// Every read command, with what its `--json` output must hold.
fn read_everything(w: &World, store: &str, order: &str) {
    assert_eq!(w.ok(&["store", "list"])["stores"][0]["name"], "교촌치킨");
    assert_eq!(w.ok(&["menu", "list", "--store", store])["menus"].as_array().map(Vec::len), Some(2));
    assert_eq!(w.ok(&["rider", "list"])["riders"][0]["name"], "lee");
    assert_eq!(w.ok(&["store", "orders", store])["orders"][0]["order_id"].to_string(), order);
    assert_eq!(w.ok(&["status", order])["status"], "paid");
    assert_eq!(w.ok(&["status", "--customer", "kim"])["orders"].as_array().map(Vec::len), Some(1));
    assert!(w.ok(&["events"])["events"].as_array().is_some_and(|e| !e.is_empty()));
    assert!(w.ok(&["breaker"]).is_object());
    assert!(w.ok(&["breaker", "status"]).is_object());
    assert_eq!(w.ok(&["relay", "--dead"])["dead"], serde_json::json!([]));
    assert_eq!(w.ok(&["relay", "--attention"])["attention"], serde_json::json!([]));
}

#[cfg(unix)]
#[test]
fn read_commands_work_on_a_database_that_cannot_be_written() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(BIN, "");
    let shop = w.shop(&["lee"]);
    let order = w.paid_order(shop, "kim").to_string();
    let store = shop.store.to_string();
    let folder = w.db.parent().expect("the database's folder").to_path_buf();
    let chmod =
        |path: &Path, mode| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    chmod(&w.db, 0o444);
    chmod(&folder, 0o555);
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .expect("listed")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into())
            .collect();
        names.sort();
        names
    };
    let before = (listing(), std::fs::read(&w.db).expect("the database"));
    // Root writes whatever the modes say: then nothing needs read-only.
    let root = std::fs::write(folder.join("probe"), b"").is_ok();
    let _ = std::fs::remove_file(folder.join("probe"));

    read_everything(&w, &store, &order);
    if root {
        eprintln!("note: running as root, which may write a read-only file and folder: read commands ran read-write");
    } else {
        assert_eq!(
            (listing(), std::fs::read(&w.db).expect("the database")),
            before,
            "nothing written, nothing created"
        );
        // A command that writes says what is wrong and what to do.
        let (code, error) = w.json(&["rider", "add", "--name", "park"]);
        assert_eq!(code, 1, "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("writable") && message.contains("--db"), "{message}");
    }
    chmod(&folder, 0o755);
    chmod(&w.db, 0o644);
}

// ───────────────────────────── not a database file ─────────────────────────────

#[cfg(unix)]
#[test]
fn dev_null_a_folder_or_a_fifo_is_refused_with_exit_2_and_nothing_beside_it() {
    let w = World::new(BIN, "");
    let null = Path::new("/dev/null");
    if !Path::new("/dev/null-journal").exists() {
        for args in [&["store", "list"][..], &["store", "add", "--name", "x"][..]] {
            let (code, error) = w.json_on(null, args);
            assert_eq!(code, 2, "{error}");
            assert_eq!(error["error"]["kind"], "invalid_input");
            let message = error["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("/dev/null is a device, not a database file"), "{message}");
        }
        for leftover in ["/dev/null-journal", "/dev/null-wal", "/dev/null-shm"] {
            assert!(!Path::new(leftover).exists(), "{leftover} was left behind");
        }
    } else {
        eprintln!("note: /dev/null-journal is there already (left by something else): /dev/null not tried");
    }

    let folder = w.path("a-folder");
    std::fs::create_dir(&folder).expect("created");
    let (code, error) = w.json_on(&folder, &["status", "1"]);
    assert_eq!(code, 2, "{error}");
    assert!(error["error"]["message"].as_str().unwrap_or_default().contains("is a folder"), "{error}");
    assert!(!w.path("a-folder-journal").exists());

    let fifo = w.path("pipe");
    if Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        let (code, error) = w.json_on(&fifo, &["store", "list"]);
        assert_eq!(code, 2, "{error}");
        assert!(error["error"]["message"].as_str().unwrap_or_default().contains("named pipe"), "{error}");
        assert!(!w.path("pipe-journal").exists());
    } else {
        eprintln!("note: no mkfifo here: the FIFO case is not tried");
    }
}

#[test]
fn the_storage_hint_fits_the_cause() {
    let w = World::new(BIN, "");
    // Not a database: the file's fault, not the folder's.
    let other = w.path("notes.db");
    std::fs::write(&other, "shopping list\n").expect("written");
    let (code, error) = w.json_on(&other, &["store", "list"]);
    assert_eq!(code, 2, "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("is not an ezdelivery database") && !message.contains("writable"), "{message}");

    // A database cut short: damaged, and what to do about it.
    let cut = w.path("cut.db");
    for i in 0..30 {
        let (code, out) = w.json_on(&cut, &["store", "add", "--name", &format!("store {i}")]);
        assert_eq!(code, 0, "{out}");
    }
    let size = std::fs::metadata(&cut).expect("the file").len();
    std::fs::OpenOptions::new().write(true).open(&cut).and_then(|f| f.set_len(size / 2)).expect("cut short");
    let (code, error) = w.json_on(&cut, &["store", "list"]);
    assert_eq!(code, 1, "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("damaged") && message.contains("backup"), "{message}");

    // A path through a file: a --db to fix (as a folder is), nothing about permissions.
    let under_a_file = other.join("sub").join("ezdelivery.db");
    let (code, error) = w.json_on(&under_a_file, &["store", "list"]);
    assert_eq!(code, 2, "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Not a directory") && !message.contains("writable"), "{message}");

    // A place nobody may create a file in (sysfs refuses even root): check the access.
    let sys = Path::new("/sys/ezdelivery-edges-test.db");
    let denied = std::fs::File::create(sys).err().is_some_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    if denied {
        // (a command that writes: one that only reads finds nothing there and creates nothing)
        let (code, error) = w.json_on(sys, &["store", "add", "--name", "BBQ"]);
        assert_eq!(code, 1, "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("check that the file and its folder are writable"), "{message}");
    } else {
        eprintln!("note: /sys does not refuse a new file here: the permission case is not tried");
    }
}

// ───────────────────────────── output that cannot be written ─────────────────────────────

/// `/dev/full`, opened for writing: every write fails as on a full disk.
fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full (Linux)")
}

/// An error's exit code is what a script reads, even when its message
/// cannot be written (standard error on a full disk): not a panic's 101.
#[test]
fn exit_codes_hold_when_standard_error_cannot_be_written() {
    let w = World::new(BIN, "");
    let cases: [(&[&str], i32); 5] = [
        (&["pay", "99"], 3),
        (&["--json", "pay", "99"], 3),
        (&["store", "add", "--name", ""], 2),
        (&["--no-such-flag"], 2),
        (&["--json", "store", "frobnicate"], 2),
    ];
    for (args, code) in cases {
        let status =
            w.command(args).stdout(std::process::Stdio::null()).stderr(dev_full()).status().expect("the binary runs");
        assert_eq!(status.code(), Some(code), "{args:?}");
    }
    assert!(w.order_ids().is_empty());
}

/// A command that wrote, and then could not print its result (a full
/// disk), exits 1 saying that its change is saved: a script that ran it
/// again would make a second store or a second order.
#[test]
fn a_write_whose_result_cannot_be_printed_says_its_change_is_saved() {
    let w = World::new(BIN, "");
    let into_full = |args: &[&str]| {
        let output =
            w.command(args).stdout(dev_full()).stderr(std::process::Stdio::piped()).output().expect("the binary runs");
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = into_full(&["store", "add", "--name", "교촌치킨"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("the change is saved") && stderr.contains("again would do it again"), "{stderr}");
    assert_eq!(w.count("SELECT count(*) FROM stores"), 1, "the store was added");
    w.ok(&["menu", "add", "--store", "1", "--name", "후라이드", "--price", "18000"]);
    let (code, stderr) = into_full(&["--json", "order", "--store", "1", "--customer", "kim", "--item", "후라이드"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("the change to order 1 is saved"), "{stderr}");
    assert_eq!(w.order_ids(), vec![1]);
    // a read, or a command that only prints, has nothing saved to speak of
    for args in [&["status", "1"][..], &["completions", "bash"], &["man"]] {
        let (code, stderr) = into_full(args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("could not be written") && !stderr.contains("saved"), "{args:?}: {stderr}");
    }
}

/// `-q` silences results, but not the text `completions` and `man` are
/// for: `-q completions bash > FILE` must not write an empty script.
#[test]
fn quiet_does_not_empty_completions_or_the_man_page() {
    let w = World::without_config(BIN);
    for args in [&["-q", "completions", "bash"][..], &["-q", "man"]] {
        let r = w.run_bare(args);
        assert_eq!(r.code, Some(0), "{}", r.describe("quiet"));
        assert!(r.stdout.len() > 1000, "{args:?} printed {} bytes", r.stdout.len());
    }
}

/// A command that only reads, given an empty file (as `touch` or `mktemp`
/// leave one), reads an empty database and leaves the file empty, as it
/// does for a file that is not there; the first write creates the database.
#[test]
fn a_read_of_an_empty_file_leaves_it_empty() {
    let w = World::without_config(BIN);
    let file = w.path("empty.db");
    std::fs::write(&file, b"").expect("an empty file");
    let db = file.display().to_string();
    for (args, code) in [(&["status", "5"][..], 3), (&["store", "list"], 0), (&["events"], 0)] {
        let r = w.run_bare(&[&["--db", &db][..], args].concat());
        assert_eq!(r.code, Some(code), "{}", r.describe("a read of an empty file"));
        let len = std::fs::metadata(&file).expect("the file").len();
        assert_eq!(len, 0, "{args:?} wrote to the empty file");
    }
    let r = w.run_bare(&["--db", &db, "store", "add", "--name", "BBQ"]);
    assert_eq!(r.code, Some(0), "{}", r.describe("the first write"));
    let r = w.run_bare(&["--db", &db, "--json", "store", "list"]);
    assert!(r.stdout.contains("BBQ"), "{}", r.describe("a read after it"));
}

/// The demo into a pipe closed early ends quietly (exit 0), as any
/// command does, and into a full disk with exit 1: not in a panic.
#[test]
fn the_demo_ends_cleanly_when_its_output_cannot_be_written() {
    let w = World::without_config(BIN);
    let full = w
        .bare()
        .args(["--db"])
        .arg(w.path("full.db"))
        .arg("demo")
        .stdout(dev_full())
        .stderr(std::process::Stdio::null())
        .status();
    assert_eq!(full.expect("the binary runs").code(), Some(1));
    let mut closed = w.bare();
    closed.args(["--db"]).arg(w.path("closed.db")).arg("demo");
    closed.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    let mut child = closed.spawn().expect("the binary runs");
    drop(child.stdout.take()); // the reader is gone before the first line
    assert_eq!(child.wait().expect("it ends").code(), Some(0));
}

/// A URL of another scheme (`postgress://`, `mysql://`) is refused with
/// exit 2, without its password, and leaves nothing behind: it used to
/// become folders named after its parts.
#[test]
fn a_misspelled_database_url_is_refused_not_taken_for_a_path() {
    let w = World::without_config(BIN);
    for url in ["postgress://kim:s3cretpw@db.internal/ez", "mysql://u:pw@h/db"] {
        let mut c = w.bare();
        c.current_dir(w.path("")).args(["--db", url, "-v", "store", "add", "--name", "X"]);
        let r = finish(c, "store add");
        assert_eq!(r.code, Some(2), "{}", r.describe(url));
        assert!(
            r.stderr.contains("://") && !r.stderr.contains("s3cretpw") && !r.stderr.contains("u:pw"),
            "{}",
            r.stderr
        );
        let mut c = w.bare();
        c.current_dir(w.path("")).args(["db", "copy", "--to", url]);
        assert_eq!(finish(c, "db copy").code, Some(2), "a copy's target is read the same way");
    }
    let left: Vec<_> =
        std::fs::read_dir(w.path("")).expect("the world's folder").flatten().map(|e| e.file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().contains(':')), "nothing named after the URL: {left:?}");
}

/// A payment whose result goes into a pipe its reader closed exits 7
/// (`money_moved`, naming the order): the caller never learnt which order
/// took the money. A read into the same closed pipe exits 0, as `| head`
/// expects.
#[test]
fn a_payment_into_a_closed_pipe_exits_7_and_a_read_exits_0() {
    let w = World::new(BIN, "");
    w.ok(&["store", "add", "--name", "교촌치킨"]);
    w.ok(&["menu", "add", "--store", "1", "--name", "후라이드", "--price", "18000"]);
    let order = w.ok(&["order", "--store", "1", "--customer", "kim", "--item", "후라이드"]);
    let into_closed_pipe = |args: &[&str]| {
        let mut c = w.command(args);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("the binary runs");
        drop(child.stdout.take());
        child.wait_with_output().expect("it ends")
    };
    let paid = into_closed_pipe(&["pay", "1"]);
    let stderr = String::from_utf8_lossy(&paid.stderr);
    assert_eq!(paid.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("order 1") && stderr.contains("do not pay again"), "{stderr}");
    assert_eq!(w.ok(&["status", "1"])["status"], "paid", "{order}");
    assert_eq!(into_closed_pipe(&["status", "1"]).status.code(), Some(0));
}

/// `--json --version` is one JSON object, as `--json` promises.
#[test]
fn the_version_as_json_is_one_object() {
    let r = World::without_config(BIN).run_bare(&["--json", "--version"]);
    assert_eq!(r.code, Some(0), "{}", r.describe("--version"));
    let version: Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{}: {e}", r.stdout));
    assert_eq!(version["name"], "ezdelivery");
    assert_eq!(version["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
}

/// `--json --help` too, of the program and of a command: the help's text
/// in `help`, as it is printed without `--json` (where it is not JSON).
#[test]
fn the_help_as_json_is_one_object() {
    let w = World::without_config(BIN);
    for args in [&["--json", "--help"][..], &["--json", "store", "add", "--help"], &["store", "--json", "-h"]] {
        let r = w.run_bare(args);
        assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""), "{}", r.describe("--json --help"));
        let help: Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{}: {e}", r.stdout));
        let text = help["help"].as_str().unwrap_or_else(|| panic!("no help text: {help}"));
        assert!(text.contains("Usage: ezdelivery"), "{text}");
        let plain = w.run_bare(&args.iter().copied().filter(|a| *a != "--json").collect::<Vec<_>>());
        assert_eq!(plain.code, Some(0));
        assert!(serde_json::from_str::<Value>(plain.stdout.trim()).is_err(), "without --json, text");
        assert_eq!(plain.stdout.trim(), text.trim(), "the same text");
    }
}

/// What `args` print on a terminal `columns` wide (`None`: a pty nobody
/// sized, which says 0 columns, as `script` makes one), uncoloured; `None`
/// where there is no util-linux `script` to make the terminal.
fn on_a_terminal(w: &World, columns: Option<u16>, args: &str) -> Option<String> {
    // util-linux's `script` (BSD's takes other options)
    let works = Command::new("script").args(["-qec", "true", "/dev/null"]).output();
    if !works.is_ok_and(|o| o.status.success()) {
        eprintln!("note: no util-linux `script` here: the pty case is not tried");
        return None;
    }
    let size = columns.map(|c| format!("stty cols {c}; ")).unwrap_or_default();
    let line = format!("{size}'{BIN}' --db '{}' {args}", w.db.display());
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args}: {text}");
    Some(text)
}

/// A database with one store, one menu and one paid order of kim's.
fn one_paid_order() -> World {
    let w = World::new(BIN, "");
    w.ok(&["store", "add", "--name", "교촌치킨", "--delivery-charge", "3000"]);
    w.ok(&["menu", "add", "--store", "1", "--name", "후라이드", "--price", "18000"]);
    w.ok(&["order", "--store", "1", "--customer", "kim", "--item", "후라이드", "--pay"]);
    w
}

/// On a terminal that says it is 0 columns wide (a pty nobody sized, as
/// `script` makes one), a table is printed unwrapped: it used to collapse
/// every column to one character. Skipped where there is no `script`.
#[test]
fn a_terminal_of_unknown_width_gets_whole_tables() {
    let w = one_paid_order();
    let Some(text) = on_a_terminal(&w, None, "status --customer kim") else { return };
    for whole in ["customer", "approved", "received", "updated (UTC)", "18,000원"] {
        assert!(text.contains(whole), "`{whole}` is whole:\n{text}");
    }
}

/// On a terminal too narrow for a table, names wrap but ids, statuses and
/// amounts stay whole, headers break only between words, and the borders
/// of every line still line up with Korean names (two cells a character):
/// amounts used to break (`3,00` / `0원`) and a column shrunk to one cell
/// could not hold a Korean character. Skipped where there is no `script`.
#[test]
fn a_narrow_terminal_wraps_names_only_and_keeps_the_borders_in_line() {
    let w = one_paid_order();
    w.ok(&["store", "add", "--name", "아주아주긴이름의치킨집입니다", "--owner", "a long owner name"]);
    for columns in [30, 50, 60] {
        for (args, whole) in [
            ("store list", &["3,000원", "delivery", "charge", "교촌치킨"][..]),
            ("status --customer kim", &["18,000원", "approved", "paid", "customer"]),
        ] {
            let Some(text) = on_a_terminal(&w, Some(columns), args) else { return };
            for value in whole {
                assert!(text.contains(value), "{args} at {columns} columns: `{value}` is whole:\n{text}");
            }
            // Every line of the table is as wide, in cells, as its top border.
            let table: Vec<&str> = text.lines().filter(|l| l.starts_with(['┌', '│', '╞', '├', '└'])).collect();
            assert!(table.len() >= 5, "{args} at {columns} columns is a table:\n{text}");
            let cells =
                |line: &str| line.chars().map(|c| if ('가'..='힣').contains(&c) { 2 } else { 1 }).sum::<usize>();
            let top = cells(table[0]);
            for line in &table {
                assert_eq!(cells(line), top, "{args} at {columns} columns, `{line}`:\n{text}");
            }
        }
    }
    // The long name wraps, in pieces of whole characters.
    let Some(text) = on_a_terminal(&w, Some(50), "store list") else { return };
    assert!(!text.contains("아주아주긴이름의치킨집입니다"), "the long name wraps:\n{text}");
    assert!(text.contains("아주아주"), "{text}");
}

/// `[relay]` and `[serve]` values out of their ranges are exit 2 for every
/// command (one that writes, one that copies), not only for `relay --watch`
/// and `serve`, which use them; and nothing is written.
#[test]
fn relay_and_serve_values_out_of_range_are_refused_by_every_command() {
    for (section, bad) in [
        ("relay", "interval_ms = 5"),
        ("relay", "retention_days = 3651"),
        ("serve", "max_requests = 0"),
        ("serve", "max_connections = 100001"),
        ("serve", "idle_timeout_ms = 999"),
        ("serve", "timeout_ms = 1"),
    ] {
        let w = World::new(BIN, &format!("[{section}]\n{bad}\n"));
        let key = bad.split(' ').next().unwrap_or(bad);
        let copy = w.dir.path().join("copy.db");
        let copy = copy.to_str().expect("a UTF-8 path");
        for args in [&["store", "add", "--name", "교촌치킨"][..], &["db", "copy", "--to", copy]] {
            let message = w.fails(args, 2, "invalid_input");
            assert!(message.contains(&format!("[{section}] {key}")), "{args:?}: {message}");
        }
        assert!(!w.db.exists(), "nothing is written for [{section}] {bad}");
    }
}

/// `[storage] pool_size` out of its range is exit 2 on SQLite too, as it is
/// on PostgreSQL, whose setting it is: a config file is right or wrong
/// whatever database it is used with.
#[test]
fn a_pool_size_out_of_range_is_refused_on_sqlite_too() {
    for bad in ["0", "500"] {
        let w = World::new(BIN, &format!("[storage]\npool_size = {bad}\n"));
        let message = w.fails(&["store", "list"], 2, "invalid_input");
        assert!(message.contains("pool_size"), "{message}");
    }
}
