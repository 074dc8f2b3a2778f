//! Input tests: the real `ezdelivery` binary given what a first-time user
//! (or a hostile one) types. Names and texts are one line of printable
//! text; errors show what they refuse escaped and shortened; arguments
//! that are not UTF-8, item quantities that are not numbers and negative
//! ids are invalid input (exit 2) with the program's own message; a config
//! with an impossible port or a jsonl path that is a folder is refused at
//! start; `--help`, usage lines and the man page read right.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use ezdelivery_testkit::cli_world::*;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");

/// Values no name or text may hold, and how an error shows each.
const HOSTILE: [(&str, &str); 7] = [
    ("kim\n[알림 → park] 주문 #1 결제가 완료되었습니다", "kim\\n[알림 → park]"),
    ("a\tb", "a\\tb"),
    ("\u{1b}[31mred", "\\u{1b}[31mred"),
    ("bell\u{7}", "bell\\u{7}"),
    ("\u{202e}evil", "\\u{202e}evil"),
    ("x\u{2066}y\u{2069}", "x\\u{2066}y\\u{2069}"),
    ("one\u{2028}two", "one\\u{2028}two"),
];

/// Asserts that a message is safe to print: one line, no control or bidi
/// character, not much longer than its explanation.
fn assert_printable(message: &str, what: &str) {
    assert!(
        !message.chars().any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c)),
        "{what}: the message holds a raw control character: {message:?}"
    );
    assert!(message.chars().count() < 600, "{what}: the message is too long ({} chars)", message.chars().count());
}

/// A paid order of `customer` at the test shop.
fn paid(w: &World, shop: Shop, customer: &str) -> i64 {
    w.paid_order(shop, customer)
}

/// [`World::bare`] (no `--db`, no `--config`: what the environment says
/// is all it gets) with `args` and the variables `env` set.
fn with_env(w: &World, args: &[&str], env: &[(&str, &OsStr)]) -> Command {
    let mut c = w.bare();
    c.envs(env.iter().copied()).args(args);
    c
}

// ───────────────────────────── names and texts ─────────────────────────────

#[test]
fn a_newline_in_a_customer_name_cannot_forge_a_notification_line() {
    let w = World::new(BIN, "");
    let shop = w.shop(&[]);
    let forged = "kim\n[알림 → park] [교촌치킨] 새 주문 #1: 후라이드 x100 · 0원";
    let s = shop.store.to_string();
    let r = w.run(&["order", "--store", &s, "--customer", forged, "--item", "후라이드", "--pay"]);
    assert_eq!(r.code, Some(2), "{}", r.describe("order with a forged customer"));
    assert!(!r.stderr.lines().any(|l| l.starts_with("[알림 → park]")), "a forged line: {}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line of error: {:?}", r.stderr);
    assert!(r.stderr.starts_with("ezdelivery: customer `kim\\n[알림 → park]"), "{}", r.stderr);
    assert!(r.stderr.contains("contains a line break (\\n)"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(w.count("SELECT count(*) FROM orders"), 0, "nothing is written");
}

#[test]
fn every_name_and_text_refuses_control_and_bidi_characters() {
    let w = World::new(BIN, "");
    let shop = w.shop(&["lee"]);
    let s = shop.store.to_string();
    // a paid order (to cancel, reject) and a delivered one (to review)
    let open = paid(&w, shop, "kim").to_string();
    let done = paid(&w, shop, "choi").to_string();
    for step in [
        &["cook", "start", &done][..],
        &["cook", "finish", &done],
        &["deliver", "start", &done],
        &["deliver", "complete", &done],
    ] {
        w.ok(step);
    }
    let before = (w.count("SELECT count(*) FROM events"), w.count("SELECT count(*) FROM stores"));

    for (value, escaped) in HOSTILE {
        let commands: Vec<Vec<&str>> = vec![
            vec!["store", "add", "--name", value],
            vec!["store", "add", "--name", "BBQ", "--owner", value],
            vec!["store", "add", "--name", "BBQ", "--address", value],
            vec!["menu", "add", "--store", &s, "--name", value, "--price", "1000"],
            vec!["rider", "add", "--name", value],
            vec!["order", "--store", &s, "--customer", value, "--item", "후라이드"],
            vec!["order", "--store", &s, "--customer", "kim", "--item", "후라이드", "--address", value],
            vec!["order", "--store", &s, "--customer", "kim", "--item", value],
            vec!["cancel", &open, "--reason", value],
            vec!["cook", "reject", &open, "--reason", value],
            vec!["review", &done, "--score", "5", "--text", value],
            vec!["status", "--customer", value],
            vec!["deliver", "start", &open, "--rider", value],
        ];
        for args in commands {
            let what = format!("{args:?}");
            let message = w.fails(&args, 2, "invalid_input");
            assert_printable(&message, &what);
            assert!(message.contains(escaped), "{what}: the value is shown escaped ({escaped}): {message}");
            // and for people, on one line
            let r = w.run(&args);
            assert_eq!(r.code, Some(2), "{}", r.describe(&what));
            assert_eq!(r.stderr.trim_end().lines().count(), 1, "{what}: {:?}", r.stderr);
            assert_printable(&r.stderr, &what);
        }
    }
    let after = (w.count("SELECT count(*) FROM events"), w.count("SELECT count(*) FROM stores"));
    assert_eq!(before, after, "nothing refused was written");
    assert_eq!(w.status(open.parse().unwrap())["status"], "paid", "the order was neither cancelled nor rejected");
}

#[test]
fn names_of_only_invisible_characters_are_refused_and_spaces_are_trimmed() {
    let w = World::new(BIN, "");
    for blank in ["\u{200b}", "\u{200b}\u{200d}\u{2060}", " \u{feff} ", "\u{00ad}", "\u{3000}\u{200c}"] {
        let message = w.fails(&["rider", "add", "--name", blank], 2, "invalid_input");
        assert!(
            message.contains("only invisible characters") || message.contains("must not be empty"),
            "{blank:?}: {message}"
        );
        assert_printable(&message, blank);
        assert!(!message.contains('\u{200b}') && !message.contains('\u{feff}'), "escaped: {message}");
    }
    assert!(w.fails(&["store", "add", "--name", "   "], 2, "invalid_input").contains("must not be empty"));
    // visible text around invisible characters is a name; spaces around it go
    let rider = w.ok(&["rider", "add", "--name", "  lee  "]);
    assert_eq!(rider["name"], "lee");
    assert_eq!(w.ok(&["rider", "add", "--name", "k\u{200d}im"])["name"], "k\u{200d}im");
    assert_eq!(w.count("SELECT count(*) FROM riders"), 2);
}

#[test]
fn errors_show_long_and_escape_laden_values_escaped_and_cut() {
    let w = World::new(BIN, "");
    let shop = w.shop(&[]);
    let s = shop.store.to_string();
    let long = format!("\u{1b}]0;owned\u{7}{}", "가".repeat(900));

    // refused by the program: escaped, cut to 40 characters and `…`
    let message = w.fails(&["store", "add", "--name", "x", "--owner", &long], 2, "invalid_input");
    assert_printable(&message, "owner");
    assert!(message.contains("`\\u{1b}]0;owned\\u{7}가가"), "{message}");
    assert!(message.contains("…`"), "{message}");

    // not found: the name asked for (as long as a name may be), escaped and cut
    let menu = format!("짜장{}", "면".repeat(600));
    let message = w.fails(&["order", "--store", &s, "--customer", "kim", "--item", &menu], 3, "not_found");
    assert!(message.contains(&format!("`짜장{}…` of store", "면".repeat(38))), "{message}");
    assert_printable(&message, "menu");
    let message = w.fails(&["breaker", "reset", "\u{1b}[2Jwipe"], 3, "not_found");
    assert!(message.contains("\\u{1b}[2Jwipe"), "{message}");
    assert_printable(&message, "breaker");

    // refused by the parser: clap's repetition of the value is escaped too
    let huge = format!("\u{1b}[31m{}", "9".repeat(10_000));
    for json in [true, false] {
        let mut args = vec!["pay", huge.as_str()];
        if json {
            args.insert(0, "--json");
        }
        let r = w.run(&args);
        assert_eq!(r.code, Some(2), "{}", r.describe("pay ESC…"));
        assert!(r.stderr.contains("\\u{1b}[31m999"), "{}", r.stderr);
        assert!(r.stderr.contains('…'), "{}", r.stderr);
        assert_printable(&r.stderr, "pay ESC…");
    }
    let r = w.run(&["store", "open", "1\n2"]);
    assert_eq!(r.code, Some(2), "{}", r.describe("store open 1\\n2"));
    assert!(r.stderr.contains("'1\\n2'"), "{}", r.stderr);
}

#[test]
fn review_text_is_one_line_too() {
    let w = World::new(BIN, "");
    let shop = w.shop(&["lee"]);
    let order = paid(&w, shop, "kim").to_string();
    for step in ["cook start", "cook finish", "deliver start", "deliver complete"] {
        let mut args: Vec<&str> = step.split(' ').collect();
        args.push(&order);
        w.ok(&args);
    }
    let message = w.fails(&["review", &order, "--score", "5", "--text", "맛있어요\n별 다섯"], 2, "invalid_input");
    assert!(message.starts_with("review text `맛있어요\\n별 다섯` contains a line break"), "{message}");
    let review = w.ok(&["review", &order, "--score", "5", "--text", "  맛있어요, 별 다섯  "]);
    assert_eq!(review["text"], "맛있어요, 별 다섯");
}

// ───────────────────────────── arguments that are not UTF-8 ─────────────────────────────

#[test]
fn an_argument_that_is_not_utf8_is_exit_2_not_a_panic() {
    let w = World::new(BIN, "");
    let bad = OsStr::from_bytes(b"kim\xff\xfe");
    for json in [false, true] {
        for place in ["name", "command", "id"] {
            let mut c = w.command(if json { &["--json"] } else { &[] });
            match place {
                "name" => c.args(["store", "add", "--name"]).arg(bad),
                "command" => c.arg(bad),
                _ => c.arg("pay").arg(bad),
            };
            let r = finish(c, place);
            assert_eq!(r.code, Some(2), "{}", r.describe(&format!("{place} not UTF-8 (json {json})")));
            assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
            if json {
                let (code, error) = json_outcome(&r, place);
                assert_eq!(code, 2);
                assert_eq!(error["error"]["kind"], "invalid_input", "{error}");
                let message = error["error"]["message"].as_str().unwrap();
                assert!(message.contains("is not valid UTF-8") && message.contains("kim\\xff\\xfe"), "{message}");
            } else {
                assert!(r.stderr.starts_with("error: argument "), "{}", r.stderr);
                assert!(r.stderr.contains("(`kim\\xff\\xfe`) is not valid UTF-8"), "{}", r.stderr);
            }
        }
    }
    assert!(!w.db.exists() || w.count("SELECT count(*) FROM stores") == 0, "nothing is written");
}

// ───────────────────────────── item quantities and negative numbers ─────────────────────────────

#[test]
fn an_item_quantity_that_is_not_a_number_is_invalid_input_not_a_missing_menu() {
    let w = World::new(BIN, "");
    let shop = w.shop(&[]);
    let s = shop.store.to_string();
    let order =
        |item: &str| w.fails(&["order", "--store", &s, "--customer", "kim", "--item", item], 2, "invalid_input");

    let message = order("후라이드:abc");
    assert!(
        message.contains("the quantity after the last `:` must be a whole number from 1 to 999, got `abc`"),
        "{message}"
    );
    assert!(message.contains("by its id"), "how to pick a menu whose name holds `:`: {message}");
    assert!(order("후라이드:").contains("got ``"));
    assert!(order("후라이드:1.5").contains("got `1.5`"));
    for empty in [":", ":2", "  :3", " "] {
        let message = order(empty);
        assert!(message.contains("names no menu") || message.contains("must not be empty"), "{empty:?}: {message}");
    }
    for (qty, shown) in [("후라이드:0", "got 0"), ("후라이드:-1", "got -1"), ("후라이드:1000", "got 1000")]
    {
        let message = order(qty);
        assert!(message.contains("quantity must be between 1 and 999") && message.contains(shown), "{qty}: {message}");
    }
    assert_eq!(w.count("SELECT count(*) FROM orders"), 0);

    // a menu whose name holds `:` is picked with its quantity, or by its id
    let set = w.ok(&["menu", "add", "--store", &s, "--name", "Set: A", "--price", "5000"]);
    let view = w.ok(&["order", "--store", &s, "--customer", "kim", "--item", "Set: A:2", "--item", "후라이드:1"]);
    assert_eq!(view["total"], 2 * 5_000 + 18_000, "{view}");
    let id = set["id"].as_i64().unwrap().to_string();
    let view = w.ok(&["order", "--store", &s, "--customer", "kim", "--item", &id]);
    assert_eq!(view["total"], 5_000, "{view}");
}

#[test]
fn negative_numbers_get_the_programs_own_message() {
    let w = World::new(BIN, "");
    let shop = w.shop(&[]);
    let s = shop.store.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["pay", "-1"], "order id must be 1 or more, got -1"),
        (vec!["cook", "start", "0"], "order id must be 1 or more, got 0"),
        (vec!["cancel", "-7", "--reason", "x"], "order id must be 1 or more, got -7"),
        (vec!["status", "-3"], "order id must be 1 or more, got -3"),
        (vec!["events", "--order", "-2"], "order id must be 1 or more, got -2"),
        (vec!["review", "3", "--score", "-1"], "score must be between 1 and 5, got -1"),
        (vec!["review", "3", "--score", "9"], "score must be between 1 and 5, got 9"),
        (vec!["menu", "add", "--store", &s, "--name", "x", "--price", "-5"], "price must be at least 1"),
        (vec!["menu", "add", "--store", "-1", "--name", "x", "--price", "5"], "store id must be 1 or more, got -1"),
        (vec!["menu", "soldout", "-4"], "menu id must be 1 or more, got -4"),
        (
            vec!["order", "--store", "-1", "--customer", "kim", "--item", "후라이드"],
            "store id must be 1 or more, got -1",
        ),
        (vec!["store", "open", "-1"], "store id must be 1 or more, got -1"),
        (vec!["store", "add", "--name", "x", "--delivery-charge", "-5"], "got -5"),
        (vec!["events", "--after", "-1"], "--after must be 0 or more, got -1"),
        (vec!["pay", "abc"], "order id must be a whole number from 1"),
        // amounts as people write them, not as a script must
        (vec!["menu", "add", "--store", &s, "--name", "x", "--price", "1,000"], "write whole won in digits"),
        (vec!["menu", "add", "--store", &s, "--name", "x", "--price", "1.5"], "write whole won in digits"),
        (vec!["menu", "add", "--store", &s, "--name", "x", "--price", "+100"], "write whole won in digits"),
        (vec!["menu", "add", "--store", &s, "--name", "x", "--price", "１００"], "write whole won in digits"),
        (vec!["menu", "add", "--store", &s, "--name", "x", "--price", "99999999999999999999"], "at most 100,000,000원"),
        (vec!["events", "--after", "99999999999999999999"], "out of range for a sequence number"),
        (vec!["store", "add", "--name", "x", "--delivery-charge", "3천"], "write whole won in digits"),
        (vec!["events", "--after", "1e3"], "write an event's number in digits"),
    ];
    for (args, expected) in cases {
        let message = w.fails(&args, 2, "invalid_input");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!message.contains("unexpected argument"), "{args:?}: {message}");
    }
    let sim = World::new(BIN, "");
    let message = sim.fails(&["simulate", "--orders", "-5"], 2, "invalid_input");
    assert!(message.contains("must be 1 or more, got -5"), "{message}");
    let message = sim.fails(&["simulate", "--orders", "5", "--cancel-rate", "-0.5"], 2, "invalid_input");
    assert!(message.contains("between 0 and 1, got -0.5"), "{message}");
    // refused before the database is created, as a bad argument is
    for bad in [&["--cancel-rate", "1.5"][..], &["--payment-unavailable-rate", "NaN"], &["--stores", "10001"]] {
        let db = sim.path("never/sim.db");
        let r = sim.run_on(&db, &[&["simulate", "--orders", "5"][..], bad].concat());
        assert_eq!(r.code, Some(2), "{}", r.describe("simulate with a bad value"));
        assert!(!db.exists() && !sim.path("never").exists(), "{bad:?} created the database");
    }
}

// ───────────────────────────── the config file ─────────────────────────────

#[test]
fn a_port_above_65535_is_refused_at_start() {
    for (config, setting) in [
        (http("payment", "http://127.0.0.1:70000", 500), "[payment]"),
        (http("charge", "http://127.0.0.1:65536/api", 500), "[charge]"),
        ("[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:99999/hook\"\n".to_string(), "webhook url"),
    ] {
        let w = World::new(BIN, &config);
        let message = w.fails(&["store", "list"], 2, "invalid_input");
        assert!(message.contains(setting), "{config}: {message}");
        assert!(message.contains("the port must be a number from 1 to 65535"), "{config}: {message}");
    }
    let w = World::new(BIN, &http("payment", "http://127.0.0.1:65535", 500));
    w.ok(&["store", "list"]);
}

#[test]
fn a_jsonl_path_that_is_a_folder_is_refused_at_start() {
    let w = World::new(BIN, "");
    let folder = w.path("logs");
    std::fs::create_dir_all(&folder).unwrap();
    for path in [folder.display().to_string(), format!("{}/new/", w.dir.path().display())] {
        std::fs::write(&w.config, format!("[[notify]]\nkind = \"jsonl\"\npath = {path:?}\n")).unwrap();
        let message = w.fails(&["store", "add", "--name", "BBQ"], 2, "invalid_input");
        assert!(message.contains("is a folder: give the path of a file in it"), "{path}: {message}");
        assert!(message.contains("messages.jsonl"), "{message}");
    }
    assert!(!w.db.exists() || w.count("SELECT count(*) FROM stores") == 0, "nothing is written");
    std::fs::write(&w.config, jsonl(&folder.join("messages.jsonl"))).unwrap();
    w.ok(&["store", "add", "--name", "BBQ"]);
}

/// A jsonl `path` that is a pipe no one reads does not hold a command
/// (opening it for writing used to wait for a reader, for ever): the
/// order is placed and its message waits for `relay`.
#[cfg(unix)]
#[test]
fn a_jsonl_pipe_without_a_reader_does_not_hold_an_order() {
    let w = World::new(BIN, "");
    let fifo = w.path("pipe");
    if !std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        eprintln!("no mkfifo here: skipped");
        return;
    }
    let shop = w.shop(&[]);
    std::fs::write(&w.config, jsonl(&fifo)).unwrap();
    let s = shop.store.to_string();
    let mut order = w.command(&["-q", "order", "--store", &s, "--customer", "kim", "--item", "후라이드", "--pay"]);
    let mut child = order.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let status = wait_bounded(&mut child, std::time::Duration::from_secs(60), "order with a jsonl pipe");
    assert_eq!(status.code(), Some(0));
    assert_eq!(w.order_ids().len(), 1, "the order is placed");
    let report = w.relay();
    assert!(report["waiting_messages"].as_u64().is_some_and(|n| n > 0), "its messages wait: {report}");
}

// ───────────────────────────── help, usage, man page ─────────────────────────────

#[test]
fn help_puts_global_options_under_their_own_heading_and_shows_no_empty_defaults() {
    let w = World::new(BIN, "");
    for command in [&["cancel"][..], &["review"], &["order"], &["cook", "reject"], &["store", "add"], &["status"]] {
        let mut args = command.to_vec();
        args.push("--help");
        let r = w.run_bare(&args);
        assert_eq!(r.code, Some(0), "{}", r.describe(&args.join(" ")));
        let help = &r.stdout;
        let (own, global) = help.split_once("Global options:").unwrap_or_else(|| panic!("{args:?}: {help}"));
        for flag in ["--db <PATH|URL>", "--config <PATH>", "--json", "--quiet", "--verbose"] {
            assert!(global.contains(flag), "{args:?}: {flag} under Global options: {help}");
            assert!(!own.contains(flag), "{args:?}: {flag} only under Global options: {help}");
        }
        assert!(!help.contains("[default: \"\"]") && !help.contains("[default: ]"), "{args:?}: {help}");
        assert!(global.contains("EZDELIVERY_DB"), "{args:?}: --db names its variable: {help}");
    }
    let events = w.run_bare(&["events", "--help"]).stdout;
    assert!(events.contains("[default: 0]"), "a meaningful default stays: {events}");
    let status = w.run_bare(&["status", "--help"]).stdout;
    assert!(status.contains("Usage: ezdelivery status [OPTIONS] <ORDER|--customer <NAME>>"), "{status}");
}

#[test]
fn status_with_neither_an_order_nor_a_customer_says_what_to_give() {
    let w = World::new(BIN, "");
    let r = w.run(&["status"]);
    assert_eq!(r.code, Some(2), "{}", r.describe("status"));
    assert!(r.stderr.contains("give an ORDER id or --customer NAME"), "{}", r.stderr);
    assert!(r.stderr.contains("ezdelivery status --customer kim"), "{}", r.stderr);
    assert!(!w.db.exists(), "a usage error opens no database");
    let message = w.fails(&["status"], 2, "invalid_input");
    assert!(message.starts_with("give an ORDER id or --customer NAME"), "{message}");
    let message = w.fails(&["status", "1", "--customer", "kim"], 2, "invalid_input");
    assert!(message.contains("cannot be used with"), "{message}");
}

#[test]
fn reading_a_database_that_does_not_exist_creates_nothing() {
    let w = World::new(BIN, "");
    let db = w.path("typo").join("nothing.db");
    let reads: [&[&str]; 6] = [
        &["store", "list"],
        &["rider", "list"],
        &["events"],
        &["breaker"],
        &["relay", "--dead"],
        &["relay", "--attention"],
    ];
    for args in reads {
        let r = w.run_on(&db, args);
        assert_eq!(r.code, Some(0), "an empty database to read: {}", r.describe(&args.join(" ")));
    }
    let (code, out) = w.json_on(&db, &["store", "list"]);
    assert_eq!((code, &out["stores"]), (0, &serde_json::json!([])), "{out}");
    let (code, out) = w.json_on(&db, &["status", "5"]);
    assert_eq!((code, out["error"]["kind"].as_str()), (3, Some("not_found")), "{out}");
    assert!(!w.path("typo").exists(), "no folder and no file are created by a read");
    // the first write creates it, with its folder
    let (code, out) = w.json_on(&db, &["store", "add", "--name", "BBQ"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = w.json_on(&db, &["store", "list"]);
    assert_eq!((code, out["stores"].as_array().map(Vec::len)), (0, Some(1)), "{out}");
}

/// `--db` names a file, whatever it looks like: SQLite read a name such as
/// `file:x.db?mode=memory` as a URI, kept that database in memory, and
/// every write the command acknowledged (a verified `db copy` too) was gone
/// when it ended.
#[test]
fn a_database_named_like_a_sqlite_uri_is_a_file_of_that_name() {
    let w = World::new(BIN, "");
    // Relative names, as typed: an absolute path is never read as a URI.
    let json_in_folder = |db: &str, args: &[&str]| {
        let mut c = w.bare();
        c.current_dir(w.path("")).args(["--json", "--db", db]).args(args);
        json_outcome(&finish(c, &args.join(" ")), &args.join(" "))
    };
    for name in ["file:u.db?mode=memory", "file::memory:", "file:v.db"] {
        let (code, out) = json_in_folder(name, &["store", "add", "--name", "BBQ"]);
        assert_eq!(code, 0, "{name}: {out}");
        let (code, out) = json_in_folder(name, &["store", "list"]);
        assert_eq!((code, out["stores"].as_array().map(Vec::len)), (0, Some(1)), "{name}: kept: {out}");
        let size = std::fs::metadata(w.path(name)).map(|m| m.len()).unwrap_or_default();
        assert!(size > 0, "{name}: the file of that very name holds it");
    }
    assert!(!w.path("v.db").exists() && !w.path("u.db").exists(), "nothing under the URI's name");
    let copy = "file:backup.db?mode=memory";
    let (code, out) = json_in_folder("file:v.db", &["db", "copy", "--to", copy]);
    assert_eq!(code, 0, "db copy: {out}");
    let (code, out) = json_in_folder(copy, &["store", "list"]);
    assert_eq!((code, out["stores"].as_array().map(Vec::len)), (0, Some(1)), "the copy is on disk: {out}");
}

/// A `--db` no file can have (a name too long, a path through a file) is
/// the user's to fix: exit 2, as for a folder, not a storage failure.
#[test]
fn a_database_path_no_file_can_have_is_invalid_input() {
    let w = World::new(BIN, "");
    std::fs::write(w.path("plain"), "").unwrap();
    for db in [w.path(&format!("{}.db", "a".repeat(300))), w.path("plain").join("x.db")] {
        for args in [&["store", "list"][..], &["store", "add", "--name", "BBQ"]] {
            let (code, out) = w.json_on(&db, args);
            assert_eq!((code, out["error"]["kind"].as_str()), (2, Some("invalid_input")), "{args:?}: {out}");
        }
    }
    assert_eq!(std::fs::read(w.path("plain")).unwrap(), b"", "nothing written");
}

#[test]
fn a_command_without_its_subcommand_is_a_usage_error() {
    let w = World::new(BIN, "");
    for args in [&[][..], &["store"], &["cook"], &["db"]] {
        let r = w.run_bare(args);
        assert_eq!(r.code, Some(2), "{}", r.describe(&format!("ezdelivery {}", args.join(" "))));
        assert!(r.stdout.is_empty(), "the help goes to stderr: {}", r.stdout);
        assert!(r.stderr.contains("Usage: ezdelivery"), "the help says what to give: {}", r.stderr);
    }
    let message = w.fails(&["store"], 2, "invalid_input");
    assert!(message.contains("usage: ezdelivery store") && message.contains("--help"), "{message}");
    assert!(!w.db.exists(), "a usage error opens no database");
}

#[test]
fn usage_lines_do_not_show_db_as_typed_when_it_comes_from_the_environment() {
    let w = World::new(BIN, "");
    let db = w.path("env.db");
    let config = w.config.as_os_str();
    for args in [&["status"][..], &["cook", "start"], &["order", "--store", "1"]] {
        let r =
            finish(with_env(&w, args, &[("EZDELIVERY_DB", db.as_os_str()), ("EZDELIVERY_CONFIG", config)]), "usage");
        assert_eq!(r.code, Some(2), "{}", r.describe(&args.join(" ")));
        let usage = r.stderr.lines().find(|l| l.starts_with("Usage: ")).unwrap_or_else(|| panic!("{}", r.stderr));
        assert!(!usage.contains("--db") && !usage.contains("--config"), "{args:?}: {usage}");
    }
    // the variables still pick the database and the config
    let r =
        finish(with_env(&w, &["--json", "store", "add", "--name", "BBQ"], &[("EZDELIVERY_DB", db.as_os_str())]), "add");
    assert_eq!(r.code, Some(0), "{}", r.describe("store add"));
    assert!(db.exists(), "EZDELIVERY_DB names the database");
    std::fs::write(&w.config, http("payment", "http://127.0.0.1:70000", 500)).unwrap();
    let r = finish(
        with_env(&w, &["store", "list"], &[("EZDELIVERY_DB", db.as_os_str()), ("EZDELIVERY_CONFIG", config)]),
        "list",
    );
    assert_eq!(r.code, Some(2), "EZDELIVERY_CONFIG names the config: {}", r.describe("store list"));
    // set but empty: as if unset (the data folder)
    let empty = [("EZDELIVERY_DB", OsStr::new("")), ("EZDELIVERY_CONFIG", OsStr::new(""))];
    let r = finish(with_env(&w, &["store", "add", "--name", "BBQ"], &empty), "empty");
    assert_eq!(r.code, Some(0), "{}", r.describe("store add with empty variables"));
    assert!(w.path("data").join("ezdelivery").join("ezdelivery.db").exists());
    // EZDELIVERY_TOKENS too: empty is as if unset, and serve says what it needs
    let tokens = [("EZDELIVERY_TOKENS", OsStr::new(""))];
    let r = finish(with_env(&w, &["--db", db.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"], &tokens), "serve");
    assert_eq!(r.code, Some(2), "{}", r.describe("serve with an empty EZDELIVERY_TOKENS"));
    assert!(r.stderr.contains("serve needs a tokens file"), "{}", r.stderr);
}

#[test]
fn the_man_page_synopsis_shows_the_value_of_each_option() {
    let w = World::new(BIN, "");
    let r = w.run_bare(&["man"]);
    assert_eq!(r.code, Some(0), "{}", r.describe("man"));
    let synopsis = r.stdout.split(".SH SYNOPSIS").nth(1).and_then(|s| s.split(".SH ").next()).expect("a SYNOPSIS");
    for option in ["\\fB\\-\\-db\\fR \\fIPATH|URL\\fR", "\\fB\\-\\-config\\fR \\fIPATH\\fR", "\\fB\\-\\-json\\fR"] {
        assert!(synopsis.contains(option), "{option} in {synopsis}");
    }
    assert!(synopsis.contains("\\fICOMMAND\\fR"), "{synopsis}");
    assert!(!synopsis.contains("\\fB\\-\\-db\\fR]"), "--db without its value: {synopsis}");
}
