//! What a first-time user meets, run through the real `ezdelivery` binary:
//! `relay` says what waits and when, and delivers the messages of the
//! payments it approves in the same run; `--json` keeps standard error to
//! the one error object; the demo prints what the commands print, every
//! `$ ezdelivery …` line runs as shown, and `EZDELIVERY_DB` is not the
//! demo's; one rule for `events --json`; the wording of refusals, lists,
//! Korean particles, amounts and times.
//!
//! Every test gets its own temporary folder (database, data folder, home),
//! and `EZDELIVERY_DB` / `EZDELIVERY_CONFIG` are removed unless a test sets them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use ezdelivery_testkit::cli_world::*;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");

const DECLINE_CARD: &str = "4000000000000002";

/// A world with no config of its own (an empty file: the defaults) and
/// tables 200 columns wide.
fn world() -> World {
    World::new(BIN, "").env("COLUMNS", "200")
}

/// Store 1 교촌치킨 (owner park) with 후라이드 18,000 and 콜라 2,000.
fn shop(w: &World) {
    assert_eq!(w.shop(&[]).store, 1);
}

/// `[payment.sandbox] unavailable = true`, with retries spaced `retry_ms` apart.
fn outage(retry_ms: u64) -> String {
    format!("[payment.sandbox]\nunavailable = true\n\n[retry]\nbase_ms = {retry_ms}\nmax_ms = {retry_ms}\n")
}

fn time(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("a time is a string: {v}"));
    assert!(text.ends_with('Z') && !text.contains('.'), "RFC 3339 in UTC to the second: {text}");
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("`{text}` is not RFC 3339: {e}")).with_timezone(&Utc)
}

// ───────────────────────────── relay ─────────────────────────────

#[test]
fn relay_approves_a_queued_payment_and_delivers_its_messages_in_the_same_run() {
    for json in [true, false] {
        let w = world();
        shop(&w);
        let config = w.config("outage.toml", &outage(1));
        let r = w.run_with(&config, &["order", "--store", "1", "--customer", "kim", "--item", "후라이드", "--pay"]);
        assert_eq!(r.code, Some(6), "the payment service is down: exit 6\n{}", r.stderr);
        assert_eq!(w.ok(&["status", "1"])["status"], "pending_payment");
        // the service is back; the breaker (if open) is closed by hand
        w.ok(&["breaker", "reset", "payment"]);
        std::thread::sleep(Duration::from_millis(20));
        if json {
            let r = w.run(&["--json", "relay"]);
            assert_eq!(r.code, Some(0), "{}", r.stderr);
            assert!(r.stderr.is_empty(), "--json: nothing but the result: {}", r.stderr);
            let report = one_object(&r.stdout, "relay --json");
            assert_eq!(report["payments_approved"], 1, "{report}");
            assert!(report["messages_delivered"].as_u64() >= Some(2), "paid: kim and park, this run: {report}");
            assert_eq!(report["messages_failed"], 0, "{report}");
            assert_eq!(report["waiting"], 0, "{report}");
            assert_eq!(report["next_due"], Value::Null, "{report}");
        } else {
            let r = w.run(&["relay"]);
            assert_eq!(r.code, Some(0), "{}", r.stderr);
            assert!(r.stdout.starts_with("relay: 1 payments approved, "), "{}", r.stdout);
            assert!(r.stdout.contains("; 2 messages delivered, 0 to retry, 0 dead"), "{}", r.stdout);
            assert!(r.stdout.trim_end().ends_with("\nnothing waits"), "{}", r.stdout);
            let lines = r.notifications();
            assert!(lines.iter().any(|l| l.starts_with("[알림 → kim]") && l.contains("결제가 완료")), "{}", r.stderr);
            assert!(lines.iter().any(|l| l.starts_with("[알림 → park]") && l.contains("새 주문 #1")), "{}", r.stderr);
        }
        assert_eq!(w.ok(&["status", "1"])["status"], "paid");
        let again = w.ok(&["relay"]);
        assert_eq!((again["payments_approved"].as_u64(), again["messages_delivered"].as_u64()), (Some(0), Some(0)));
    }
}

#[test]
fn relay_says_what_waits_for_its_back_off_and_when_the_next_is_due() {
    let w = world();
    shop(&w);
    // retries ten minutes apart (jitter: 5 to 15), and a webhook nobody listens on
    let config = w.config(
        "outage.toml",
        &format!(
            "{}\n[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/hook\"\ntimeout_ms = 500\n",
            outage(600_000)
        ),
    );
    let started = Utc::now();
    let r = w.run_with(&config, &["order", "--store", "1", "--customer", "kim", "--item", "후라이드", "--pay"]);
    assert_eq!(r.code, Some(6), "{}", r.stderr);

    let r = w.run_with(&config, &["--json", "relay"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let report = one_object(&r.stdout, "relay --json");
    // (a message the command did not get to try is due now: it fails, and waits too)
    for key in ["payments_approved", "still_queued", "messages_delivered", "revived", "requeued"] {
        assert_eq!(report[key], 0, "{key}: nothing was due yet: {report}");
    }
    assert_eq!(report["waiting_calls"], 1, "the payment waits for its back-off: {report}");
    assert_eq!(report["waiting_messages"], 2, "placed and queued, for the webhook: {report}");
    assert_eq!(report["waiting"], 3, "{report}");
    let due = time(&report["next_due"]);
    assert!(due >= started + chrono::Duration::seconds(299), "{due} vs {started}");
    assert!(due <= Utc::now() + chrono::Duration::seconds(901), "{due}");

    let r = w.run_with(&config, &["relay"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let summary: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(summary.len(), 2, "{}", r.stdout);
    assert!(summary[0].contains("0 payments approved") && !summary[0].contains("still queued"), "{}", r.stdout);
    assert_eq!(
        summary[1],
        format!(
            "waiting: 1 gateway call (payments and refunds 1, delivery charges 0), 2 messages; the next is due at {} \
             (`ezdelivery relay` then)",
            report["next_due"].as_str().unwrap_or_default()
        )
    );
}

// ───────────────────────────── --json and stderr ─────────────────────────────

#[test]
fn with_json_stderr_carries_only_the_error_object() {
    let w = world();
    shop(&w);
    // a declined card: the command queues messages (placed, declined) and fails
    let r = w.run(&[
        "--json",
        "order",
        "--store",
        "1",
        "--customer",
        "kim",
        "--item",
        "후라이드",
        "--pay",
        "--card",
        DECLINE_CARD,
    ]);
    assert_eq!(r.code, Some(5), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "a failure prints nothing on stdout: {}", r.stdout);
    assert_eq!(r.stderr.lines().count(), 1, "stderr is exactly one line: {}", r.stderr);
    let error = one_object(&r.stderr, "stderr");
    assert_eq!(error["error"]["kind"], "declined", "{error}");
    assert_eq!(error["error"]["order_id"], 1, "{error}");

    // a success: stdout one object, stderr empty
    let r = w.run(&["--json", "pay", "1"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(one_object(&r.stdout, "stdout")["status"], "paid");
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    // the messages count as delivered (as with -q): relay has nothing to send
    let r = w.run(&["relay"]);
    assert!(r.notifications().is_empty(), "{}", r.stderr);
    assert!(r.stdout.contains("; 0 messages delivered") && r.stdout.contains("nothing waits"), "{}", r.stdout);
    // without --json the same kind of command tells the customer on stderr
    let r = w.run(&["order", "--store", "1", "--customer", "lee", "--item", "콜라", "--pay", "--card", DECLINE_CARD]);
    assert_eq!(r.code, Some(5));
    assert_eq!(r.notifications().len(), 2, "{}", r.stderr);
    assert!(r.stderr.lines().last().is_some_and(|l| l.starts_with("ezdelivery: ")), "{}", r.stderr);
}

// ───────────────────────────── demo ─────────────────────────────

/// `text` with the digits of every `HH:MM:SS` and `YYYY-MM-DD` replaced by
/// `#`, so runs a second apart compare equal.
fn without_times(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let digit = |i: usize| chars.get(i).is_some_and(|c| c.is_ascii_digit());
    let at = |i: usize, c: char| chars.get(i) == Some(&c);
    for i in 0..chars.len() {
        let time = digit(i) && digit(i + 1) && at(i + 2, ':') && digit(i + 3) && digit(i + 4) && at(i + 5, ':');
        let time = time && digit(i + 6) && digit(i + 7);
        let date = (0..4).all(|k| digit(i + k)) && at(i + 4, '-') && digit(i + 5) && digit(i + 6) && at(i + 7, '-');
        let date = date && digit(i + 8) && digit(i + 9);
        let len = if time {
            8
        } else if date {
            10
        } else {
            0
        };
        for slot in out.iter_mut().skip(i).take(len) {
            if slot.is_ascii_digit() {
                *slot = '#';
            }
        }
    }
    out.into_iter().collect()
}

/// The demo's steps: each `$ ezdelivery …` line and the lines shown under it.
fn demo_steps(stdout: &str) -> Vec<(String, String)> {
    let mut steps: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        if let Some(command) = line.strip_prefix("   $ ezdelivery ") {
            steps.push((command.to_string(), String::new()));
        } else if line.starts_with("── ") || line.starts_with("Done.") || line.is_empty() {
            // a step's heading or the end: not a command's output
            if let Some(step) = steps.last_mut() {
                step.1.push('\u{0}');
            }
        } else if let Some(step) = steps.last_mut().filter(|s| !s.1.contains('\u{0}')) {
            step.1.push_str(line.strip_prefix("   ").unwrap_or(line));
            step.1.push('\n');
        }
    }
    steps.into_iter().map(|(c, out)| (c, out.replace('\u{0}', ""))).collect()
}

#[test]
fn demo_prints_what_each_command_prints_and_every_line_runs_as_shown() {
    let w = world();
    let r = w.run(&["demo"]);
    assert_eq!(r.code, Some(0), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    for debug in ["Some(", "None", "\"paid\""] {
        assert!(!r.stdout.contains(debug), "no Rust Debug output (`{debug}`): {}", r.stdout);
    }
    let steps = demo_steps(&r.stdout);
    assert!(steps.len() >= 20, "{steps:#?}");
    for command in ["store add", "menu add", "rider add", "order", "pay", "cook start", "deliver start", "cancel"] {
        assert!(steps.iter().any(|(c, _)| c.starts_with(command)), "the demo shows `{command}`: {}", r.stdout);
    }

    // the same lines, run one by one through a shell on a new database,
    // print what the demo showed under each (a failure: its error line)
    let replay = world();
    std::fs::create_dir_all(replay.db.parent().unwrap()).unwrap();
    for (command, shown) in &steps {
        assert!(!shown.trim().is_empty(), "the demo shows what `{command}` prints");
        let mut sh = replay.clean(Command::new("/bin/sh"));
        sh.env("EZDELIVERY_DB", &replay.db).env("PATH", Path::new(BIN).parent().expect("the binary's folder"));
        sh.args(["-c", &format!("exec ezdelivery {command}")]);
        let run = finish(sh, &format!("sh -c 'exec ezdelivery {command}'"));
        let printed = if run.code == Some(0) {
            run.stdout.clone()
        } else {
            run.stderr.lines().filter(|l| !l.starts_with("[알림 → ")).map(|l| format!("{l}\n")).collect()
        };
        assert_eq!(
            without_times(printed.trim_end()),
            without_times(shown.trim_end()),
            "`ezdelivery {command}` (exit {:?}) prints what the demo showed",
            run.code
        );
    }
}

#[test]
fn demo_ignores_ezdelivery_db_and_refuses_an_existing_db_given_with_the_flag() {
    let w = world();
    shop(&w);
    let before = std::fs::read(&w.db).expect("the database exists");

    // EZDELIVERY_DB names a database in use: the demo runs on its own
    let mut c = w.bare();
    c.env("EZDELIVERY_DB", &w.db).arg("demo");
    let r = finish(c, "demo with EZDELIVERY_DB");
    assert_eq!(r.code, Some(0), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let demo_db = w.path("data").join("ezdelivery").join("ezdelivery-demo.db");
    assert!(demo_db.is_file(), "the demo's own database");
    assert!(r.stdout.lines().next().is_some_and(|l| l.ends_with(&*demo_db.to_string_lossy())), "{}", r.stdout);
    assert_eq!(std::fs::read(&w.db).expect("still there"), before, "EZDELIVERY_DB's database is untouched");
    assert_eq!(w.ok(&["store", "list"])["stores"].as_array().map(Vec::len), Some(1));

    // --db given on the command line names an existing database: refused
    let r = w.run(&["demo"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("needs a fresh database"), "{}", r.stderr);
    assert_eq!(std::fs::read(&w.db).expect("still there"), before);

    // --db naming a new file: the demo runs there, EZDELIVERY_DB or not
    let fresh = w.path("fresh.db");
    let mut c = w.bare();
    c.env("EZDELIVERY_DB", &w.db).arg("--db").arg(&fresh).args(["--json", "demo"]);
    let r = finish(c, "--db FRESH --json demo");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(one_object(&r.stdout, "demo --json")["db"], fresh.to_string_lossy().as_ref());
    assert!(r.stderr.is_empty(), "--json: {}", r.stderr);
}

// ───────────────────────────── events ─────────────────────────────

/// Spawns `events --follow …` and returns its first `n` lines.
fn follow_lines(w: &World, args: &[&str], n: usize) -> Vec<String> {
    let mut c = w.command(&[&["events", "--follow"], args].concat());
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().expect("events --follow starts");
    let rx = stdout_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while lines.len() < n {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(lines.len(), n, "`events --follow {}` printed {lines:?}", args.join(" "));
    lines
}

#[test]
fn events_follow_on_a_new_database_sees_the_first_writes() {
    let w = world();
    assert!(!w.db.exists());
    let mut c = w.command(&["events", "--follow", "--format", "json"]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().expect("events --follow starts");
    let rx = stdout_lines(&mut child);
    // the follower creates the database it waits on (a plain read would not)
    let deadline = Instant::now() + Duration::from_secs(30);
    while !w.db.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    w.ok(&["store", "add", "--name", "BBQ"]);
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the follower printed the first event");
    assert!(line.contains("StoreRegistered"), "{line}");
}

#[test]
fn events_with_json_follow_one_rule() {
    let w = world();
    shop(&w);
    w.ok(&["order", "--store", "1", "--customer", "kim", "--item", "후라이드", "--pay"]);
    let count = w.ok(&["events"])["events"].as_array().map(Vec::len).expect("{\"events\":[…]}");
    assert!(count >= 5);

    // --json: one object {"events":[…]}, its items in --format json (the default) or cloudevents
    for format in [None, Some("json"), Some("cloudevents")] {
        let args: Vec<&str> = format.map_or(vec!["events"], |f| vec!["events", "--format", f]);
        let all = w.ok(&args);
        let items = all["events"].as_array().unwrap_or_else(|| panic!("{format:?}: {all}"));
        assert_eq!(items.len(), count, "{format:?}");
        for e in items {
            if format == Some("cloudevents") {
                assert_eq!(e["specversion"], "1.0", "{e}");
                assert!(e["type"].as_str().is_some_and(|t| t.starts_with("ezdelivery.")), "{e}");
            } else {
                assert!(e["seq"].is_i64() && e.get("specversion").is_none(), "{e}");
            }
        }
    }
    // --format table is for people: with --json an input error, exit 2
    let r = w.run(&["--json", "events", "--format", "table"]);
    assert_eq!(r.code, Some(2), "{}", r.stdout);
    assert!(r.stdout.is_empty());
    assert_eq!(one_object(&r.stderr, "stderr")["error"]["kind"], "invalid_input");
    let r = w.run(&["--json", "events", "--follow", "--format", "table"]);
    assert_eq!(r.code, Some(2), "{}", r.stdout);

    // --follow: a stream, one object per line, in the chosen format
    for (args, cloud) in [(&["--json"][..], false), (&["--json", "--format", "cloudevents"][..], true)] {
        for line in follow_lines(&w, args, count) {
            let e = one_object(&line, "a followed event");
            assert_eq!(e.get("specversion").is_some(), cloud, "{args:?}: {e}");
            assert!(e.get("events").is_none(), "{e}");
        }
    }
}

// ───────────────────────────── wording ─────────────────────────────

#[test]
fn wording_a_first_time_user_meets() {
    let w = world();
    // empty lists: one line each, the same way
    let empty: [(&[&str], &str); 7] = [
        (&["store", "list"], "no stores"),
        (&["menu", "list"], "no menus"),
        (&["rider", "list"], "no riders"),
        (&["status", "--customer", "nobody"], "no orders"),
        (&["relay", "--dead"], "no dead messages"),
        (&["relay", "--attention"], "no payments or charges need attention"),
        (&["events", "--format", "table"], "no events"),
    ];
    for (args, line) in empty {
        let r = w.run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout.trim_end(), line, "{args:?}");
    }
    shop(&w);
    assert_eq!(w.run(&["store", "orders", "1"]).stdout.trim_end(), "no orders");
    assert_eq!(w.run(&["menu", "list", "--store", "1"]).stdout.lines().count(), 6, "a table once there are menus");

    // menu soldout / available say so
    let r = w.run(&["menu", "soldout", "2"]);
    assert_eq!(r.stdout.trim_end(), "menu 2 is sold out: 콜라 2,000원 in store 1");
    let r = w.run(&["menu", "available", "2"]);
    assert_eq!(r.stdout.trim_end(), "menu 2 is available again: 콜라 2,000원 in store 1");

    // the price limit in won, as everything else writes amounts
    let r = w.run(&["menu", "add", "--store", "1", "--name", "금", "--price", "100000001"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("price 100,000,001원 is above the limit of 100,000,000원"), "{}", r.stderr);

    // Korean particles chosen by the number's reading: 1 일 → 이, 2 이 → 가
    let r = w.run(&["order", "--store", "1", "--customer", "kim", "--item", "후라이드"]);
    assert!(r.notifications().iter().any(|l| l.contains("주문 #1이 접수되었습니다")), "{}", r.stderr);
    let r = w.run(&["order", "--store", "1", "--customer", "kim", "--item", "콜라"]);
    assert!(r.notifications().iter().any(|l| l.contains("주문 #2가 접수되었습니다")), "{}", r.stderr);
    let r = w.run(&["cancel", "2"]);
    assert!(r.notifications().iter().any(|l| l.contains("주문 #2가 취소되었습니다")), "{}", r.stderr);
    assert!(!r.stderr.contains("(가)") && !r.stderr.contains("(는)"), "{}", r.stderr);

    // the updated column: date and seconds, and UTC in the header
    let r = w.run(&["status", "--customer", "kim"]);
    let header = r.stdout.lines().nth(1).expect("a header");
    assert!(header.contains("updated (UTC)"), "{}", r.stdout);
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let row = r.stdout.lines().find(|l| l.contains("cancelled")).expect("order 2's row");
    let cell = row.rsplit('┆').next().expect("the last cell").trim().trim_end_matches('│').trim();
    assert_eq!(without_times(cell), "####-##-## ##:##:##", "{row}");
    assert!(cell.starts_with(&today[..4]), "{row}");

    // cancel after delivery: it was delivered, not "on its way"
    w.ok(&["rider", "add", "--name", "lee"]);
    w.ok(&["pay", "1"]);
    for step in [&["cook", "start"][..], &["cook", "finish"], &["deliver", "start"]] {
        w.ok(&[step, &["1"]].concat());
    }
    let r = w.run(&["cancel", "1"]);
    assert_eq!(r.code, Some(4));
    assert!(r.stderr.contains("order 1 is already on its way (delivering)"), "{}", r.stderr);
    w.ok(&["deliver", "complete", "1"]);
    let r = w.run(&["cancel", "1"]);
    assert_eq!(r.code, Some(4));
    assert_eq!(r.stderr.trim_end(), "ezdelivery: order 1 was already delivered; it can no longer be cancelled");
}
