//! `relay --watch`: the relay as a long-running worker, run as the real
//! binary on a SQLite database. It settles what falls due while it runs
//! (a payment queued while the gateway was down is paid once the gateway
//! is back), stops cleanly on SIGTERM and SIGINT with exit 0 and one
//! summary, and purges the messages delivered longer ago than the
//! retention.
//!
//! Every process and wait is bounded; the waits poll the database with a
//! deadline, never a timing assertion. Unix only: the worker is sent
//! SIGTERM and SIGINT with `kill`.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ezdelivery_testkit::cli_world::*;
use ezdelivery_testkit::gateway::{refused_url, Gateway, Mode};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");
/// How long a test waits for the worker to do something.
const DEADLINE: Duration = Duration::from_secs(30);

/// A `relay --watch` running in the background, its output read as it comes.
struct Worker {
    child: Child,
    /// Joined when the worker is stopped.
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    /// Each line of stderr as it comes.
    stderr_lines: Receiver<String>,
}

impl Worker {
    /// Starts `relay --watch --interval 50` with `args` before it (`--json`, `-q`…).
    fn start(w: &World, args: &[&str]) -> Worker {
        let mut command = w.command(&[args, &["relay", "--watch", "--interval", "50"]].concat());
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the ezdelivery binary starts");
        let read = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    pipe.read_to_string(&mut text).expect("the worker's output is UTF-8");
                }
                text
            })
        };
        let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let (tx, stderr_lines) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(pipe).lines() {
                let line = line.expect("the worker's stderr is UTF-8");
                text.push_str(&line);
                text.push('\n');
                let _ = tx.send(line);
            }
            text
        });
        Worker { child, stdout: Some(stdout), stderr: Some(stderr), stderr_lines }
    }

    /// Waits (bounded) for a line of stderr that holds `text`.
    fn wait_for_stderr(&self, text: &str) {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(e) => panic!("no line with `{text}` on the worker's stderr within {DEADLINE:?} ({e})"),
            }
        }
    }

    /// Sends `signal` (`TERM`, `INT`) and waits (bounded) for the worker to end.
    fn stop(mut self, signal: &str) -> Run {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -{signal} {pid}");
        let status = wait_bounded(&mut self.child, PROCESS_DEADLINE, "relay --watch");
        let joined =
            |reader: Option<JoinHandle<String>>| reader.map(|r| r.join().expect("a reader")).unwrap_or_default();
        let (stdout, stderr) = (joined(self.stdout.take()), joined(self.stderr.take()));
        Run { code: status.code(), stdout, stderr }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // a test that failed before stopping it leaves no process behind
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until `done` holds, polling; fails the test after [`DEADLINE`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < until, "{what} did not happen within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An order queued while the gateway is down, and one left unpaid; the
/// worker started; the gateway back; the worker settles the queued one.
/// Returns the world, the gateway, the worker and the two orders.
fn a_queued_payment_settled_by_the_worker(args: &[&str]) -> (World, Gateway, Worker, i64, i64) {
    let gw = Gateway::start(Mode::Failing(503));
    let w = World::new(BIN, &gateways(gw.url()));
    let shop = w.shop(&["lee"]);
    let (kim, _) = w.unavailable_order(shop, "kim");
    let (code, unpaid) = w.order(shop, "choi", false);
    assert_eq!(code, 0, "{unpaid}");
    let unpaid = order_id(&unpaid);
    let worker = Worker::start(&w, args);
    gw.set_mode(Mode::Up);
    wait_until("the worker pays the queued order", || paid(&w.status(kim)));
    // and delivers its messages (the customer's and the owner's)
    wait_until("the worker delivers every message", || {
        w.count("SELECT count(*) FROM message_deliveries WHERE state <> 'delivered'") == 0
    });
    (w, gw, worker, kim, unpaid)
}

#[test]
fn sigterm_stops_the_worker_with_exit_0_and_one_summary_that_counts_what_it_settled() {
    let (w, gw, worker, kim, unpaid) = a_queued_payment_settled_by_the_worker(&["--json"]);
    let run = worker.stop("TERM");
    assert_eq!(run.code, Some(0), "{}", run.describe("relay --watch"));
    let summary = one_object(&run.stdout, "stdout of `--json relay --watch`");
    assert_eq!(summary["payments_approved"], 1, "{summary}");
    assert_eq!(summary["payments_declined"], 0, "{summary}");
    assert!(summary["passes"].as_u64().is_some_and(|n| n >= 1), "{summary}");
    assert!(summary["messages_delivered"].as_u64().is_some_and(|n| n >= 2), "customer and owner: {summary}");
    for field in ["messages_purged", "waiting", "waiting_calls", "waiting_messages", "next_due", "revived"] {
        assert!(summary.get(field).is_some(), "the summary has `{field}`: {summary}");
    }
    assert_eq!(summary["waiting_calls"], 0, "{summary}");
    assert!(run.stderr.trim().is_empty(), "--json: nothing on stderr: {}", run.stderr);
    assert_eq!(approvals(&gw, kim).iter().filter(|e| e.status < 300).count(), 1, "approved once");
    assert_eq!(w.status(unpaid)["status"], "pending_payment");
    assert_ledger(&w, &gw, &[kim, unpaid]);
}

#[test]
fn sigint_stops_the_worker_the_same_way_with_a_line_per_pass_for_people() {
    let (w, gw, worker, kim, unpaid) = a_queued_payment_settled_by_the_worker(&[]);
    let run = worker.stop("INT");
    assert_eq!(run.code, Some(0), "{}", run.describe("relay --watch"));
    let lines: Vec<&str> = run.stdout.lines().collect();
    let pass = lines.iter().find(|l| l.contains("relay: 1 payments approved")).unwrap_or_else(|| {
        panic!("a line for the pass that paid order {kim}:\n{}", run.stdout);
    });
    assert!(pass.ends_with("0 dead") && pass.contains('T') && pass.contains("Z relay:"), "time, then counts: {pass}");
    let summary = lines.iter().position(|l| l.starts_with("relay --watch stopped after ")).expect("the summary");
    assert!(lines[summary + 1].starts_with("relay: 1 payments approved"), "the totals: {}", run.stdout);
    assert_eq!(lines.len(), summary + 3, "the summary ends the output: {}", run.stdout);
    assert!(!run.notifications().is_empty(), "the console channel talks on stderr: {}", run.stderr);
    assert_ledger(&w, &gw, &[kim, unpaid]);
}

#[test]
fn an_idle_worker_stops_at_once() {
    let w = World::new(BIN, "");
    w.shop(&[]);
    let worker = Worker::start(&w, &["--json", "-vv"]);
    // it runs (its signal handlers are in before its first pass)
    worker.wait_for_stderr("relay pass: nothing to do");
    let run = worker.stop("TERM");
    assert_eq!(run.code, Some(0), "{}", run.describe("relay --watch"));
    let summary = one_object(&run.stdout, "stdout of `--json relay --watch`");
    assert!(summary["passes"].as_u64().is_some_and(|n| n >= 1), "{summary}");
    for field in ["payments_approved", "still_queued", "messages_delivered", "messages_purged", "waiting"] {
        assert_eq!(summary[field], 0, "{field}: {summary}");
    }
}

#[test]
fn the_worker_purges_delivered_messages_older_than_the_retention() {
    let w = World::new(BIN, "[relay]\nretention_days = 0\n");
    let shop = w.shop(&[]);
    let delivered = w.paid_order(shop, "kim");
    // a message that a channel has not taken is never purged, however old
    let failing = w.config(
        "failing.toml",
        &format!(
            "[[notify]]\nkind = \"console\"\n[[notify]]\nkind = \"webhook\"\nname = \"ops\"\nurl = \"{}\"\n\
             timeout_ms = 200\n",
            refused_url()
        ),
    );
    let run = w.run_with(
        &failing,
        &["--json", "order", "--store", &shop.store.to_string(), "--customer", "lee", "--item", "콜라"],
    );
    assert_eq!(run.code, Some(0), "{}", run.describe("order"));
    let kept = order_id(&one_object(&run.stdout, "the order"));
    let messages = |order: i64| w.count(&format!("SELECT count(*) FROM messages WHERE order_id = {order}"));
    let before = messages(delivered);
    assert!(before > 0 && messages(kept) > 0);

    let worker = Worker::start(&w, &["--json"]);
    wait_until("the delivered messages are purged", || messages(delivered) == 0);
    let run = worker.stop("TERM");
    assert_eq!(run.code, Some(0), "{}", run.describe("relay --watch"));
    let summary = one_object(&run.stdout, "stdout of `--json relay --watch`");
    assert!(summary["messages_purged"].as_i64().is_some_and(|n| n >= before), "{summary}");
    assert!(messages(kept) > 0, "lee's messages wait for the `ops` channel: kept");
    assert_eq!(
        w.count("SELECT count(*) FROM message_deliveries WHERE message_key NOT IN (SELECT key FROM messages)"),
        0
    );
    // the order's own record is untouched
    assert_eq!(w.status(delivered)["status"], "paid");
}

#[test]
fn watch_flags_are_checked() {
    let w = World::new(BIN, "[relay]\ninterval_ms = 1\n");
    let message = w.fails(&["relay", "--watch"], 2, "invalid_input");
    assert!(message.contains("[relay] interval_ms must be 10 to"), "{message}");
    // The flag stands in for the file's value, which must still be in range.
    let message = w.fails(&["relay", "--watch", "--interval", "500"], 2, "invalid_input");
    assert!(message.contains("[relay] interval_ms must be 10 to"), "{message}");
    let good = World::new(BIN, "");
    let message = good.fails(&["relay", "--watch", "--interval", "5"], 2, "invalid_input");
    assert!(message.contains("--interval must be 10 to"), "{message}");
    let refused: [&[&str]; 5] = [
        &["relay", "--interval", "100"],
        &["relay", "--dead", "--interval", "100"],
        &["relay", "--attention", "--interval", "100"],
        &["relay", "--watch", "--dead"],
        &["relay", "--watch", "--attention"],
    ];
    for args in refused {
        let run = w.run(args);
        assert_eq!(run.code, Some(2), "{}", run.describe(&args.join(" ")));
    }
    let run = w.run(&["relay", "--watch", "--interval", "soon"]);
    assert_eq!(run.code, Some(2), "{}", run.describe("--interval soon"));
    assert!(run.stderr.contains("whole number of milliseconds"), "{}", run.stderr);
}
