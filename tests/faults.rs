//! Fault tests: the real `ezdelivery` binary against gateways that are
//! down, slow, declining or flapping, the circuit breaker, notifiers that
//! fail and recover, the process killed (SIGKILL) mid-command, and several
//! processes writing one database at once.
//!
//! The gateways are a scriptable HTTP server (`ezdelivery_testkit::gateway`) bound
//! to 127.0.0.1 on an ephemeral port; each test flips its mode between
//! commands. Every server, process and loop is bounded and stops by
//! itself; the sleeps here are waits (for a retry to fall due, a breaker to
//! cool down, a kill to land), never timing assertions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ezdelivery_testkit::cli_world::*;
use ezdelivery_testkit::gateway::{id_for, Exchange, Gateway, Mode, DECLINE_MESSAGE};
use serde_json::Value;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");

/// The fields of a notification (SPEC.md: webhook notifier).
const MESSAGE_FIELDS: [&str; 7] = ["id", "orderId", "event", "status", "recipient", "message", "at"];
/// Order statuses from placed to delivered.
const CHAIN: [&str; 6] = ["pending_payment", "paid", "cooking", "cooked", "delivering", "delivered"];

// ───────────────────────────── payments: down, slow, declining, flapping ─────────────────────────────

#[test]
fn a_payment_gateway_that_is_down_keeps_the_order_and_relay_pays_it_once() {
    let gw = Gateway::start(Mode::Failing(503));
    let w = World::new(BIN, &http("payment", gw.url(), 2_000));
    let shop = w.shop(&[]);

    let (kim, message) = w.unavailable_order(shop, "kim");
    assert!(
        message.contains("unavailable") && message.contains("relay"),
        "says what happened and what next: {message}"
    );
    let view = w.status(kim);
    assert_eq!(view["status"], "pending_payment", "{view}");
    assert_eq!(view["payment"]["status"], "pending", "{view}");
    assert_eq!(view["payment"]["amount"], ORDER_TOTAL, "{view}");
    // paying again while it is down retries the same attempt
    w.fails(&["pay", &kim.to_string()], 6, "unavailable");
    let (lee, _) = w.unavailable_order(shop, "lee");
    assert_eq!(w.ok(&["store", "orders", &shop.store.to_string()])["orders"], serde_json::json!([]), "not established");
    assert_eq!(gw.count(), 3);
    assert!(gw.log().iter().all(|e| e.status == 503 && e.method == "POST" && e.path == "/payments"));

    gw.set_mode(Mode::Up);
    w.relay_until("both orders paid", |w, _| paid(&w.status(kim)) && paid(&w.status(lee)));
    for (order, customer) in [(kim, "kim"), (lee, "lee")] {
        let calls = approvals(&gw, order);
        one_success(&calls, &format!("approval of order {order}"));
        for call in &calls {
            assert_eq!(call.header("content-type"), Some("application/json"));
            let body = call.json();
            assert_eq!(body["amount"], ORDER_TOTAL, "{body}");
            assert_eq!(body["method"], "card", "{body}");
        }
        assert_eq!(w.orders_of(customer).len(), 1, "one order each, kept once");
    }
    // nothing more to do: more relays send nothing
    let seen = gw.count();
    for _ in 0..2 {
        let report = w.relay();
        assert_eq!(report["payments_approved"], 0, "{report}");
        assert_eq!(report["still_queued"], 0, "{report}");
    }
    assert_eq!(gw.count(), seen, "no request after everything is settled");
}

#[test]
fn a_slow_gateway_times_out_as_unavailable_and_is_charged_once() {
    let gw = Gateway::start(Mode::Slow(Duration::from_millis(1_000)));
    let w = World::new(BIN, &http("payment", gw.url(), 200));
    let shop = w.shop(&[]);

    let (kim, message) = w.unavailable_order(shop, "kim");
    assert!(message.contains("200 ms"), "the timeout is the reason: {message}");
    let view = w.status(kim);
    assert_eq!(
        (view["status"].as_str(), view["payment"]["status"].as_str()),
        (Some("pending_payment"), Some("pending"))
    );

    // the slow gateway did take the payment; the retry under the same key
    // must be recognised as the same payment, not a second one
    gw.set_mode(Mode::Up);
    let view = w.relay_until_order(kim, "paid", paid);
    assert_eq!(view["payment"]["amount"], ORDER_TOTAL);
    let calls = approvals(&gw, kim);
    assert!(calls.len() >= 2, "timed out, then retried: {calls:#?}");
    one_key_acted_on_once(&calls, "approval after a timeout");
}

#[test]
fn a_declining_gateway_exits_5_keeps_the_order_and_a_new_attempt_pays() {
    let gw = Gateway::start(Mode::Declining);
    let w = World::new(BIN, &http("payment", gw.url(), 2_000));
    let shop = w.shop(&[]);

    let s = shop.store.to_string();
    let args = ["order", "--store", &s, "--customer", "kim", "--item", "후라이드:2", "--item", "콜라", "--pay"];
    let message = w.fails(&[&args[..], &["--card", "4111-1111-1111-1111"]].concat(), 5, "declined");
    assert!(message.contains(DECLINE_MESSAGE), "the gateway's message is the reason: {message}");
    let kim = order_id(&w.orders_of("kim")[0]);
    let view = w.status(kim);
    assert_eq!(
        (view["status"].as_str(), view["payment"]["status"].as_str()),
        (Some("pending_payment"), Some("declined"))
    );
    let declined = approvals(&gw, kim);
    assert_eq!(declined.len(), 1);
    assert_eq!(declined[0].json()["card"], "************1111", "only the last four digits leave");
    // a decline is the service working: the breaker stays closed
    let b = w.breaker("payment");
    assert_eq!((b["state"].as_str(), b["failures"].as_i64()), (Some("closed"), Some(0)), "{b}");

    gw.set_mode(Mode::Up);
    let view = w.ok(&["pay", &kim.to_string()]);
    assert!(paid(&view), "{view}");
    let calls = approvals(&gw, kim);
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[0].key(), calls[1].key(), "a new attempt after a decline has a new key");
    one_success(&calls[1..], "the second attempt");
}

#[test]
fn a_flapping_gateway_ends_up_paying_every_order_once_through_relay() {
    let gw = Gateway::start(Mode::Flapping);
    let w = World::new(BIN, &http("payment", gw.url(), 2_000));
    let shop = w.shop(&[]);

    let mut orders = Vec::new();
    let mut codes = Vec::new();
    for customer in ["c1", "c2", "c3", "c4"] {
        let (code, value) = w.order(shop, customer, true);
        assert!(code == 0 || code == 6, "paid or queued: {value}");
        codes.push(code);
        orders.push(order_id(&w.orders_of(customer)[0]));
    }
    assert!(codes.contains(&6) && codes.contains(&0), "the gateway flapped: {codes:?}");

    w.relay_until("every order paid", |w, _| orders.iter().all(|o| paid(&w.status(*o))));
    for order in &orders {
        one_success(&approvals(&gw, *order), &format!("approval of order {order}"));
    }
    assert!(gw.log().iter().any(|e| e.status == 503), "some requests failed");
    let seen = gw.count();
    w.relay();
    assert_eq!(gw.count(), seen, "nothing is retried once paid");
}

// ───────────────────────────── the circuit breaker ─────────────────────────────

#[test]
fn the_breaker_opens_after_the_threshold_fails_fast_and_resets() {
    let gw = Gateway::start(Mode::Failing(503));
    let w = World::new(BIN, &format!("{}{}", http("payment", gw.url(), 2_000), breaker(2, 600_000)));
    let shop = w.shop(&[]);

    let (kim, _) = w.unavailable_order(shop, "kim");
    w.fails(&["pay", &kim.to_string()], 6, "unavailable");
    assert_eq!(gw.count(), 2);
    let b = w.breaker("payment");
    assert_eq!(b["state"], "open", "two unavailable results open it: {b}");
    assert_eq!(b["failures"], 2, "{b}");
    assert!(b["retry_at"].is_string(), "says when it lets a call through: {b}");

    // the gateway is back, but the open breaker does not call it
    gw.set_mode(Mode::Up);
    let message = w.fails(&["pay", &kim.to_string()], 6, "unavailable");
    assert!(message.contains("circuit breaker"), "fails fast with a clear reason: {message}");
    let (lee, message) = w.unavailable_order(shop, "lee");
    assert!(message.contains("circuit breaker"), "{message}");
    assert_eq!(w.status(lee)["payment"]["status"], "pending", "the refused payment is queued");
    w.relay_until("a queued payment refused by the breaker", |_, report| {
        assert_eq!(report["payments_approved"], 0, "nothing goes through an open breaker: {report}");
        report["still_queued"].as_i64().unwrap() >= 1
    });
    assert_eq!(gw.count(), 2, "no request reached the gateway while the breaker was open");
    assert_eq!(w.breaker("payment")["state"], "open");

    let reset = w.ok(&["breaker", "reset", "payment"]);
    assert_eq!(reset["state"], "closed", "{reset}");
    assert_eq!(reset["failures"], 0, "{reset}");
    let view = w.ok(&["pay", &kim.to_string()]);
    assert!(paid(&view), "{view}");
    assert_eq!(gw.count(), 3, "the next call reached the gateway");
    w.relay_until_order(lee, "paid", paid);
    one_key_acted_on_once(&approvals(&gw, kim), "kim's approval");
    one_success(&approvals(&gw, lee), "lee's approval");
}

#[test]
fn an_open_breaker_lets_one_trial_through_after_open_ms() {
    const OPEN_MS: u64 = 1_500;
    let cool_down = Duration::from_millis(OPEN_MS + 300);
    let gw = Gateway::start(Mode::Failing(503));
    let w = World::new(BIN, &format!("{}{}", http("payment", gw.url(), 2_000), breaker(2, OPEN_MS)));
    let shop = w.shop(&[]);
    let (kim, _) = w.unavailable_order(shop, "kim");
    let pay = ["pay", &kim.to_string()];
    w.fails(&pay, 6, "unavailable");
    assert_eq!(w.breaker("payment")["state"], "open");
    let message = w.fails(&pay, 6, "unavailable");
    assert!(message.contains("circuit breaker"), "{message}");
    assert_eq!(gw.count(), 2, "refused without a call");

    // after open_ms one trial goes through; it fails, so the breaker opens again
    std::thread::sleep(cool_down);
    let message = w.fails(&pay, 6, "unavailable");
    assert!(!message.contains("circuit breaker"), "the trial reached the gateway: {message}");
    assert_eq!(gw.count(), 3, "the trial call");
    assert_eq!(w.breaker("payment")["state"], "open", "a failed trial opens it again");
    let message = w.fails(&pay, 6, "unavailable");
    assert!(message.contains("circuit breaker"), "{message}");
    assert_eq!(gw.count(), 3);

    // the next trial succeeds and closes it
    std::thread::sleep(cool_down);
    gw.set_mode(Mode::Up);
    let view = w.ok(&pay);
    assert!(paid(&view), "{view}");
    assert_eq!(gw.count(), 4);
    let b = w.breaker("payment");
    assert_eq!((b["state"].as_str(), b["failures"].as_i64()), (Some("closed"), Some(0)), "{b}");
    one_success(&approvals(&gw, kim), "approval through the breaker");
}

// ───────────────────────────── refunds ─────────────────────────────

#[test]
fn a_refund_waits_for_the_gateway_and_is_retried_under_one_key() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &http("payment", gw.url(), 2_000));
    let shop = w.shop(&[]);
    let kim = w.paid_order(shop, "kim");
    let approval = one_success(&approvals(&gw, kim), "the approval");

    gw.set_mode(Mode::Failing(503));
    let view = w.ok(&["cancel", &kim.to_string(), "--reason", "changed my mind"]);
    assert_eq!(view["status"], "cancelled", "the cancel itself does not wait for the gateway: {view}");
    assert_eq!(view["payment"]["status"], "refund_pending", "{view}");
    // still down: relay tries again and keeps it queued
    w.relay_until("a failed refund retry", |_, report| report["still_queued"].as_i64().unwrap() >= 1);
    assert_eq!(w.status(kim)["payment"]["status"], "refund_pending");

    gw.set_mode(Mode::Up);
    w.relay_until_order(kim, "refunded", |v| v["payment"]["status"] == "refunded");
    let refunds: Vec<Exchange> = gw.log().into_iter().filter(Exchange::is_cancel).collect();
    assert!(refunds.len() >= 3, "failed at the cancel, failed on retry, then succeeded: {refunds:#?}");
    one_success(&refunds, "the refund");
    let approved_id = id_for("/payments", &approval);
    for refund in &refunds {
        assert_eq!(refund.path, format!("/payments/{approved_id}/cancel"), "refunds the payment by the gateway's id");
        assert!(refund.json()["reason"].is_string(), "{}", refund.json());
    }
    let seen = gw.count();
    w.relay();
    assert_eq!(gw.count(), seen, "nothing is sent after the refund");
    assert_eq!(w.status(kim)["payment"]["status"], "refunded");
}

/// A payment whose answer never came (the gateway took it, the answer was
/// too late) and whose order is then cancelled: the money the gateway took
/// must go back. DESIGN.md: "every cancelled or rejected paid order is
/// refunded"; "no paid-for order is lost".
#[test]
fn a_payment_taken_after_the_timeout_is_given_back_when_the_order_is_cancelled() {
    let gw = Gateway::start(Mode::Slow(Duration::from_millis(1_000)));
    let w = World::new(BIN, &http("payment", gw.url(), 200));
    let shop = w.shop(&[]);
    let (kim, _) = w.unavailable_order(shop, "kim");
    let view = w.ok(&["cancel", &kim.to_string()]);
    assert_eq!(view["status"], "cancelled", "{view}");
    let taken = approvals(&gw, kim);
    assert_eq!(taken.iter().filter(|e| e.fresh).count(), 1, "the gateway took the money");

    gw.set_mode(Mode::Up);
    let key = taken[0].key().to_string();
    let refunded_at_gateway = |gw: &Gateway| {
        let path = format!("/payments/{}/cancel", id_for("/payments", &key));
        gw.log().iter().any(|e| e.path == path && e.fresh)
    };
    let until = Instant::now() + Duration::from_secs(8);
    while !refunded_at_gateway(&gw) && Instant::now() < until {
        w.relay();
        std::thread::sleep(Duration::from_millis(200));
    }
    let view = w.status(kim);
    assert!(
        refunded_at_gateway(&gw),
        "order {kim} is cancelled, the gateway approved its payment (key {key}), but no refund was ever sent; \
         the payment is {}; requests: {:#?}",
        view["payment"],
        gw.log()
    );
    assert_eq!(view["payment"]["status"], "refunded", "{view}");
}

// ───────────────────────────── delivery charges ─────────────────────────────

#[test]
fn a_charge_gateway_that_is_down_holds_the_departure_until_the_charge_is_paid() {
    let gw = Gateway::start(Mode::Failing(503));
    let w = World::new(BIN, &http("charge", gw.url(), 2_000));
    let shop = w.shop(&["lee"]);

    let first = w.paid_order(shop, "kim");
    let view = w.ok(&["cook", "start", &first.to_string()]);
    assert_eq!(view["status"], "cooking", "cooking starts whatever the charge service says: {view}");
    assert_eq!(view["delivery"]["charge"]["status"], "pending", "{view}");
    w.ok(&["cook", "finish", &first.to_string()]);
    let (code, error) = w.json(&["deliver", "start", &first.to_string()]);
    assert!(code == 6 || code == 4, "no departure without a paid charge: exit {code}: {error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("charge"), "the reason names the charge: {message}");
    let view = w.status(first);
    assert_eq!(view["status"], "cooked", "{view}");
    assert_eq!(view["delivery"]["status"], "preparing", "{view}");
    assert_eq!(view["delivery"]["charge"]["status"], "pending", "{view}");

    let second = w.paid_order(shop, "choi");
    assert_eq!(w.ok(&["cook", "start", &second.to_string()])["delivery"]["charge"]["status"], "pending");
    assert!(gw.log().iter().all(|e| e.status == 503));

    gw.set_mode(Mode::Up);
    let view = w.ok(&["deliver", "start", &first.to_string()]);
    assert_eq!(view["status"], "delivering", "{view}");
    assert_eq!(view["delivery"]["charge"]["status"], "paid", "{view}");
    // relay pays the other one; departing then needs no new call
    w.relay_until_order(second, "charge paid", |v| v["delivery"]["charge"]["status"] == "paid");
    w.ok(&["cook", "finish", &second.to_string()]);
    let seen = gw.count();
    assert_eq!(w.ok(&["deliver", "start", &second.to_string()])["status"], "delivering");
    assert_eq!(gw.count(), seen, "a paid charge is not paid again");

    for order in [first, second] {
        let calls = charges(&gw, order);
        one_success(&calls, &format!("charge of order {order}"));
        let body = calls[0].json();
        assert_eq!((body["rider"].as_str(), body["amount"].as_i64()), (Some("lee"), Some(3_000)), "{body}");
    }
}

/// A charge the gateway refuses (402, as it declines a card) is the
/// service answering: its breaker does not count it, so the next order's
/// charge is paid. The refused one is asked again under its own key.
#[test]
fn a_refused_charge_does_not_open_the_breaker_for_other_orders() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &format!("{}{}", http("charge", gw.url(), 2_000), breaker(2, 60_000)));
    let shop = w.shop(&["lee"]);
    let first = w.paid_order(shop, "kim");
    gw.set_mode(Mode::Declining);
    let view = w.ok(&["cook", "start", &first.to_string()]);
    assert_eq!(view["delivery"]["charge"]["status"], "pending", "{view}");
    w.relay_until("two more refusals", |_, _| charges(&gw, first).len() >= 3);
    let calls = charges(&gw, first);
    assert!(calls.iter().all(|c| c.status == 402), "{calls:#?}");
    let key = |c: &Exchange| c.header("idempotency-key").map(str::to_string);
    assert!(calls.iter().all(|c| key(c) == key(&calls[0])), "one key: {calls:#?}");
    let b = w.breaker("charge");
    assert_eq!((b["state"].as_str(), b["failures"].as_i64()), (Some("closed"), Some(0)), "{b}");

    gw.set_mode(Mode::Up);
    let second = w.paid_order(shop, "choi");
    let view = w.ok(&["cook", "start", &second.to_string()]);
    assert_eq!(view["delivery"]["charge"]["status"], "paid", "{view}");
    one_success(&charges(&gw, second), "the next order's charge");
    assert!(charges(&gw, first).iter().all(|c| c.status == 402), "the refused charge was never paid");
}

// ───────────────────────────── notifiers ─────────────────────────────

#[test]
fn a_failing_webhook_never_fails_a_command_and_each_message_is_delivered_once() {
    let hook = Gateway::start(Mode::Failing(500));
    let w = World::new(BIN, "");
    let log = w.path("messages.jsonl");
    let url = format!("{}/hooks/ezdelivery", hook.url());
    std::fs::write(
        &w.config,
        format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"{url}\"\ntimeout_ms = 2000\n{}{}",
            jsonl(&log),
            breaker(1_000, 1_000)
        ),
    )
    .unwrap();
    let shop = w.shop(&["lee"]);

    // every command succeeds while the webhook answers 500
    let kim = w.paid_order(shop, "kim");
    let choi = w.paid_order(shop, "choi");
    w.ok(&["cook", "start", &kim.to_string()]);
    w.ok(&["cancel", &choi.to_string()]);
    let report = w.relay();
    assert_eq!(report["messages_delivered"], 0, "{report}");
    assert!(hook.count() >= 1, "the webhook was tried");
    assert!(hook.log().iter().all(|e| e.status == 500));

    hook.set_mode(Mode::Up);
    w.relay_until("every webhook message delivered", |w, _| {
        w.count("SELECT count(*) FROM message_deliveries WHERE channel = 'webhook' AND state <> 'delivered'") == 0
    });
    let delivered = hook.count();
    for _ in 0..2 {
        assert_eq!(w.relay()["messages_delivered"], 0);
    }
    assert_eq!(hook.count(), delivered, "nothing is posted again after a 2xx");

    let mut successes: BTreeMap<String, usize> = BTreeMap::new();
    for post in hook.log() {
        assert_eq!((post.method.as_str(), post.path.as_str()), ("POST", "/hooks/ezdelivery"));
        assert_eq!(post.header("content-type"), Some("application/json"));
        let body = post.json();
        for field in MESSAGE_FIELDS {
            assert!(body.get(field).is_some(), "the body has `{field}`: {body}");
        }
        let id = body["id"].as_str().expect("id is a string").to_string();
        assert_eq!(post.key(), id, "the Idempotency-Key is the message id");
        assert!(body["orderId"].is_i64() && body["message"].is_string() && body["recipient"].is_string(), "{body}");
        assert!(body["at"].as_str().is_some_and(|at| at.contains('T') && at.ends_with('Z')), "{body}");
        *successes.entry(id).or_default() += usize::from(post.ok());
    }
    assert!(successes.values().all(|n| *n == 1), "every message delivered exactly once: {successes:?}");
    // the same messages as the jsonl channel, which never failed
    let text = std::fs::read_to_string(&log).expect("the jsonl file");
    let in_file: BTreeSet<String> =
        text.lines().map(|l| one_object(l, "a jsonl line")["id"].as_str().expect("an id").to_string()).collect();
    assert_eq!(successes.keys().cloned().collect::<BTreeSet<_>>(), in_file, "every message went to the webhook");
    assert_eq!(in_file.len() as i64, w.count("SELECT count(*) FROM messages"));
}

/// A webhook that takes a message and then does not answer (a hung server)
/// holds a command no longer than its relay budget: the command exits 0
/// with its messages left to relay, neither failed nor counted against the
/// channel's breaker. It used to wait out the webhook's whole timeout (60 s
/// here, the most the config allows), and got the late answer: the message
/// was then recorded as delivered. Relay sends it once the webhook
/// answers, under the same id.
#[test]
fn a_webhook_that_does_not_answer_holds_a_command_only_for_its_budget() {
    let hook = Gateway::start(Mode::Slow(Duration::from_secs(8)));
    let w = World::new(BIN, "");
    let url = format!("{}/hooks/ezdelivery", hook.url());
    std::fs::write(&w.config, format!("[[notify]]\nkind = \"webhook\"\nurl = \"{url}\"\ntimeout_ms = 60000\n"))
        .unwrap();
    let shop = w.shop(&[]);
    let s = shop.store.to_string();
    let view = w.ok(&["order", "--store", &s, "--customer", "kim", "--item", "후라이드", "--pay"]);
    assert_eq!(view["status"], "paid", "{view}");
    assert!(hook.count() >= 1, "the command called the webhook");
    let queued = w.count("SELECT count(*) FROM message_deliveries");
    assert!(queued >= 2, "the order's messages are queued: {queued}");
    assert_eq!(
        w.count("SELECT count(*) FROM message_deliveries WHERE state = 'pending' AND tries = 0"),
        queued,
        "left to relay as they were: not delivered, not failed"
    );
    assert_eq!(w.count("SELECT count(*) FROM breakers WHERE failures > 0"), 0, "the channel's breaker was not told");

    hook.set_mode(Mode::Up);
    w.relay_until("every webhook message delivered", |w, _| {
        w.count("SELECT count(*) FROM message_deliveries WHERE state <> 'delivered'") == 0
    });
    let ids = w.texts("SELECT id FROM messages");
    let posted: BTreeSet<String> = hook.log().iter().map(|post| post.key().to_string()).collect();
    assert_eq!(posted, ids, "every message went to the webhook, under its id");
}

/// A command killed while its webhook call is in flight: the webhook has
/// the message, the command never recorded it. The command had claimed its
/// messages for two minutes; once the claim lapses, `relay` sends that one
/// again under the same id (README: "A message can arrive more than
/// once"), and every message ends recorded as delivered: none is lost.
#[test]
fn a_message_sent_by_a_killed_command_is_sent_again_under_the_same_id() {
    let hook = Gateway::start(Mode::Up);
    // Slow enough to kill the command while it waits for the answer.
    hook.set_latency(3_000, 3_000, 1);
    let w = World::new(BIN, "");
    let url = format!("{}/hooks/ezdelivery", hook.url());
    std::fs::write(&w.config, format!("[[notify]]\nkind = \"webhook\"\nurl = \"{url}\"\ntimeout_ms = 20000\n"))
        .unwrap();
    let shop = w.shop(&[]);
    let s = shop.store.to_string();
    let mut child = w
        .command(&["--json", "order", "--store", &s, "--customer", "kim", "--item", "후라이드", "--pay"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let until = Instant::now() + Duration::from_secs(30);
    while hook.count() == 0 {
        assert!(Instant::now() < until, "the command never called the webhook");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SIGKILL on unix: the answer is never read, the delivery never recorded.
    child.kill().expect("kill the command");
    child.wait().expect("reap the command");
    let first = hook.log()[0].key().to_string();
    assert_eq!(
        w.count("SELECT count(*) FROM message_deliveries WHERE state = 'delivered'"),
        0,
        "the killed command recorded nothing as delivered"
    );

    // The claim lapses (as two minutes would); the webhook answers at once.
    w.sql().execute("UPDATE message_deliveries SET next_at = '2000-01-01T00:00:00.000000Z'", []).unwrap();
    hook.set_latency(0, 0, 1);
    w.relay();
    assert_eq!(w.count("SELECT count(*) FROM message_deliveries WHERE state <> 'delivered'"), 0, "all delivered");
    let mut posts: BTreeMap<String, usize> = BTreeMap::new();
    for post in hook.log() {
        *posts.entry(post.key().to_string()).or_default() += 1;
    }
    for (id, n) in &posts {
        let want = if *id == first { 2 } else { 1 };
        assert_eq!(*n, want, "posts of message {id} (the one in flight at the kill: {first})");
    }
    let ids = w.texts("SELECT id FROM messages");
    assert_eq!(posts.keys().cloned().collect::<BTreeSet<_>>(), ids, "every message went to the webhook");
}

/// A line the file cannot take whole (the disk full; here a file-size
/// limit) is taken back: the file keeps one object per line, and `relay`
/// appends the message whole later. It was left cut short, and the retry
/// was glued to it, one line no reader could parse.
#[test]
fn a_jsonl_line_cut_short_is_taken_back_and_relayed_whole() {
    let w = World::new(BIN, "");
    let log = w.path("messages.jsonl");
    // Retries due at once, so that the `relay` below retries the message cut short.
    std::fs::write(&w.config, format!("{}[retry]\nbase_ms = 0\nmax_ms = 0\n", jsonl(&log))).unwrap();
    let shop = w.shop(&[]);
    // What one block of `ulimit -f` is in this machine's `sh`.
    let probe = w.path("probe");
    std::process::Command::new("sh")
        .args(["-c", &file_limit(1), "head", "-c", "4096", "/dev/zero"])
        .stdout(std::fs::File::create(&probe).unwrap())
        .status()
        .expect("sh runs");
    let block = std::fs::metadata(&probe).unwrap().len();
    assert!(block == 512 || block == 1024, "a block of {block} bytes");
    // The file ends 10 bytes short of the limit; the database and its WAL
    // stay far below it.
    let blocks = 2 * 1024 * 1024 / block;
    let padding = format!("{{\"padding\":\"{}\"}}\n", "x".repeat((blocks * block) as usize - 10 - 15));
    std::fs::write(&log, &padding).unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), blocks * block - 10);

    let store = shop.store.to_string();
    let args = ["--json", "order", "--store", &store, "--customer", "kim", "--item", "후라이드", "--pay"];
    let (code, out) = json_outcome(&finish(w.shell(&file_limit(blocks), &args), "order --pay"), "order --pay");
    assert_eq!(code, 0, "the order stands; its messages wait for relay: {out}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), padding, "the line cut short was taken back");

    w.ok(&["relay"]);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text.lines().skip(1).map(|l| one_object(l, "a jsonl line")).collect();
    assert_eq!(lines.len() as i64, w.count("SELECT count(*) FROM messages"), "each message whole: {text}");
}

#[test]
fn a_jsonl_channel_writes_one_object_per_line_to_a_private_file() {
    let w = World::new(BIN, "");
    let log = w.path("new/folder/messages.jsonl");
    std::fs::write(&w.config, jsonl(&log)).unwrap();
    let shop = w.shop(&["lee"]);
    let kim = w.paid_order(shop, "kim");
    w.ok(&["cook", "start", &kim.to_string()]);
    w.ok(&["cancel", &kim.to_string()]);

    let text = std::fs::read_to_string(&log).expect("the jsonl file");
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text.lines().map(|l| one_object(l, "a jsonl line")).collect();
    assert!(lines.len() >= 5, "placed, paid, owner, cooking, cancelled…: {text}");
    let mut ids = BTreeSet::new();
    for line in &lines {
        let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, MESSAGE_FIELDS, "{line}");
        assert_eq!(line["orderId"], kim, "{line}");
        assert!(ids.insert(line["id"].as_str().unwrap().to_string()), "each message once: {line}");
    }
    assert_eq!(lines.len() as i64, w.count("SELECT count(*) FROM messages"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "messages name customers: the file is the owner's only");
    }
}

// ───────────────────────────── idempotency keys ─────────────────────────────

/// Two databases (say, one deleted and started over) paying through the
/// same gateway: their attempts are different payments, so their keys must
/// differ, or the gateway answers the second with the first's approval and
/// the second order is "paid" without any money moving.
#[test]
fn idempotency_keys_do_not_repeat_across_databases() {
    let gw = Gateway::start(Mode::Up);
    let config = http("payment", gw.url(), 2_000);
    let (first, second) = (World::new(BIN, &config), World::new(BIN, &config));
    let a = first.paid_order(first.shop(&[]), "kim");
    let b = second.paid_order(second.shop(&[]), "lee");
    assert_eq!(a, b, "both databases start at order 1");
    let calls = gw.to("/payments");
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[0].key(), calls[1].key(), "two payments, one Idempotency-Key: {calls:#?}");
    assert!(calls.iter().all(|c| c.fresh), "the gateway charged both");
}

// ───────────────────────────── killed mid-command ─────────────────────────────

/// Is `to` where an order that was `from` may be later?
fn progressed(from: &str, to: &str) -> bool {
    let rank = |s: &str| CHAIN.iter().position(|c| *c == s);
    match (rank(from), rank(to)) {
        (Some(f), Some(t)) => t >= f,
        (Some(f), None) => matches!(to, "cancelled" | "rejected") && f < 4,
        (None, _) => from == to,
    }
}

/// Records a broken invariant (the crash test lists them all at the end).
macro_rules! check {
    ($problems:expr, $cond:expr, $($what:tt)+) => {
        if !$cond {
            $problems.push(format!($($what)+));
        }
    };
}

/// The invariants of every order view (read through `status --customer`);
/// what breaks them goes to `problems`. `settled` says `relay` has run with
/// the gateways up: before that, a cancelled order's payment or charge whose
/// call was interrupted may still be `pending`, waiting to be asked again
/// under its key (and given back if the gateway did act on it).
fn check_views(views: &[Value], context: &str, settled: bool, problems: &mut Vec<String>) {
    for v in views {
        let status = v["status"].as_str().expect("a status");
        let items = v["items"].as_array().expect("items");
        check!(problems, !items.is_empty(), "{context}: an order has items: {v}");
        let sum: i64 = items.iter().map(|i| i["unit_price"].as_i64().unwrap() * i["qty"].as_i64().unwrap()).sum();
        check!(problems, v["total"] == sum, "{context}: the total is the sum of the items: {v}");
        let payment = v["payment"]["status"].as_str();
        if !v["payment"].is_null() {
            check!(problems, v["payment"]["amount"] == sum, "{context}: the amount paid is the total: {v}");
        }
        let charge = v["delivery"]["charge"]["status"].as_str();
        match status {
            "pending_payment" => check!(
                problems,
                matches!(payment, None | Some("pending" | "declined")),
                "{context}: a pending_payment order has no approved payment: {v}"
            ),
            "paid" | "cooking" | "cooked" | "delivering" | "delivered" => {
                check!(problems, payment == Some("approved"), "{context}: established only when paid: {v}")
            }
            "cancelled" | "rejected" => {
                check!(
                    problems,
                    payment != Some("approved") && (!settled || payment != Some("pending")),
                    "{context}: a cancelled order's payment is refund_pending, refunded or never charged: {v}"
                );
                check!(
                    problems,
                    charge != Some("paid") && (!settled || charge != Some("pending")),
                    "{context}: a cancelled order's charge is withdrawn: {v}"
                );
            }
            other => problems.push(format!("{context}: unknown status {other}: {v}")),
        }
        if matches!(status, "delivering" | "delivered") {
            check!(problems, charge == Some("paid"), "{context}: no departure without a paid charge: {v}");
            check!(problems, v["delivery"]["status"] == status, "{context}: {v}");
            check!(problems, v["kitchen"]["status"] == "cooked", "{context}: no departure without cooked food: {v}");
        }
    }
}

/// A stream of commands against a gateway that answers in 20-80 ms, most
/// of them killed with SIGKILL after a short delay drawn from the seed (so
/// kills land before, during and after gateway calls and transactions).
/// Then: the file is sound, the views keep their invariants, `relay` drains
/// every queue, the gateway acted at most once per order and key and gave
/// back what it took for cancelled orders, and no acknowledged command was
/// lost. `EZDELIVERY_FAULTS_SEED=N` picks another stream.
#[test]
fn killing_the_binary_mid_command_loses_nothing_and_relay_finishes_every_attempt() {
    const COMMANDS: usize = 80;
    const CUSTOMERS: [&str; 3] = ["c0", "c1", "c2"];
    let seed = std::env::var("EZDELIVERY_FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1_u64);
    let mut rng = Rng(seed);
    let gw = Gateway::start(Mode::Up);
    gw.set_latency(20, 80, seed);
    let w = World::new(BIN, "");
    std::fs::write(
        &w.config,
        format!(
            "{}{}{}[retry]\nbase_ms = 50\nmax_ms = 500\nlease_ms = 4500\n",
            http("payment", gw.url(), 2_000),
            http("charge", gw.url(), 2_000),
            jsonl(&w.path("messages.jsonl"))
        ),
    )
    .unwrap();
    let shop = w.shop(&["lee", "kang"]);
    let s = shop.store.to_string();

    // (order, status it was acknowledged with, command)
    let mut acked: Vec<(i64, String, String)> = Vec::new();
    let (mut placed, mut killed, mut finished) = (0_u64, 0, 0);
    for _ in 0..COMMANDS {
        let target = (1 + rng.below(placed.max(1))).to_string();
        let customer = CUSTOMERS[rng.below(3) as usize];
        let chicken = format!("후라이드:{}", 1 + rng.below(3));
        let args: Vec<&str> = match rng.below(100) {
            _ if placed == 0 => vec![],
            0..=29 => vec![],
            30..=39 => vec!["pay", &target],
            40..=54 => vec!["cook", "start", &target],
            55..=62 => vec!["cook", "finish", &target],
            63..=71 => vec!["deliver", "start", &target],
            72..=84 => vec!["cancel", &target],
            _ => vec!["relay"],
        };
        let args = if args.is_empty() {
            placed += 1;
            vec!["order", "--store", &s, "--customer", customer, "--item", &chicken, "--item", "콜라", "--pay"]
        } else {
            args
        };
        let what = args.join(" ");
        // a quarter run to the end; the others are killed early (while the
        // process starts or holds its first transaction) or later (around
        // the 20-80 ms gateway call and the transaction after it)
        let kill_after = match rng.below(4) {
            0 => None,
            1 => Some(Duration::from_millis(rng.below(15))),
            _ => Some(Duration::from_millis(10 + rng.below(90))),
        };
        let mut command = w.command(&[&["--json"], &args[..]].concat());
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        if let Some(delay) = kill_after {
            std::thread::sleep(delay);
            if child.try_wait().expect("try_wait").is_none() {
                // SIGKILL on unix: no destructor, no rollback, no flush
                let _ = child.kill();
            }
        }
        let status = wait_bounded(&mut child, PROCESS_DEADLINE, &what);
        let run = collect(&mut child, status);
        let Some(code) = run.code else {
            killed += 1;
            continue;
        };
        finished += 1;
        assert!(
            matches!(code, 0 | 3 | 4 | 5 | 6),
            "seed {seed}: a command after crashes fails only as the contract says: {}",
            run.describe(&what)
        );
        if code == 0 && args[0] != "relay" {
            let view = one_object(&run.stdout, &what);
            acked.push((order_id(&view), view["status"].as_str().unwrap().to_string(), what));
        }
    }
    eprintln!("seed {seed}: {killed} commands killed, {finished} finished");
    assert!(killed >= 10 && finished >= 10, "kills landed: {killed} killed, {finished} finished");

    // the file is sound
    {
        let db = w.sql();
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok", "seed {seed}: integrity_check");
        let broken = db.prepare("PRAGMA foreign_key_check").unwrap().query_map([], |_| Ok(())).unwrap().count();
        assert_eq!(broken, 0, "seed {seed}: foreign keys hold");
    }
    let views = |w: &World| CUSTOMERS.iter().flat_map(|c| w.orders_of(c)).collect::<Vec<_>>();
    let mut problems = Vec::new();
    check_views(&views(&w), "after the crashes", false, &mut problems);

    // the gateway is up and fast: relay finishes every started attempt
    gw.set_latency(0, 0, seed);
    let queued = "SELECT (SELECT count(*) FROM payments WHERE status IN ('pending', 'refund_pending')) + \
                  (SELECT count(*) FROM charges WHERE status IN ('pending', 'refund_pending'))";
    w.relay_until("nothing queued", |w, _| w.count(queued) == 0);
    let after = views(&w);
    check_views(&after, "after relay", true, &mut problems);
    let by_id: HashMap<i64, &Value> = after.iter().map(|v| (order_id(v), v)).collect();
    let orders = w.count("SELECT count(*) FROM orders");
    check!(problems, by_id.len() as i64 == orders, "{orders} orders but {} views", by_id.len());

    // nothing acknowledged was lost
    for (order, status, what) in &acked {
        match by_id.get(order) {
            None => problems.push(format!("order {order} from `{what}` is lost")),
            Some(now) => {
                let current = now["status"].as_str().unwrap();
                check!(problems, progressed(status, current), "`{what}` said {status}, now {current}: {now}");
            }
        }
    }

    // the gateway acted at most once per order and key, only on what the
    // database knows, and whatever it took for a cancelled order went back
    let log = gw.log();
    let fresh_keys = |path: &str| {
        let mut by_order: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for e in log.iter().filter(|e| e.path == path && e.fresh) {
            by_order.entry(e.order_id().expect("orderId")).or_default().insert(e.key().to_string());
        }
        by_order
    };
    let refunded = |kind: &str, key: &str, problems: &mut Vec<String>| {
        let path = format!("/{kind}/{}/cancel", id_for(&format!("/{kind}"), key));
        let refunds: Vec<&Exchange> = log.iter().filter(|e| e.path == path).collect();
        let keys: BTreeSet<&str> = refunds.iter().map(|e| e.key()).collect();
        check!(problems, keys.len() <= 1, "{kind} {key} was refunded under several keys: {keys:?}");
        refunds.iter().any(|e| e.fresh)
    };
    let db = w.sql();
    let db_status = |table: &str, order: i64| -> String {
        let query = format!("SELECT status FROM {table} WHERE order_id = ?1 ORDER BY id DESC LIMIT 1");
        db.query_row(&query, [order], |r| r.get(0)).unwrap_or_else(|_| "none".into())
    };
    let payments = fresh_keys("/payments");
    for (order, keys) in &payments {
        check!(problems, keys.len() == 1, "order {order} was charged under several keys: {keys:?}");
        let Some(view) = by_id.get(order) else {
            problems.push(format!("the gateway charged order {order}, which the database does not have"));
            continue;
        };
        let status = view["status"].as_str().unwrap();
        if matches!(status, "cancelled" | "rejected") {
            let back = keys.iter().all(|key| refunded("payments", key, &mut problems));
            check!(
                problems,
                back && view["payment"]["status"] == "refunded",
                "order {order} is {status}, the gateway charged it ({keys:?}), and it was {}refunded at the \
                 gateway; its payment in the view: {}, in the database: {}",
                if back { "" } else { "NOT " },
                view["payment"],
                db_status("payments", *order)
            );
        } else {
            check!(problems, CHAIN[1..].contains(&status), "the gateway charged order {order}, yet it is {status}");
        }
    }
    let charged = fresh_keys("/deliveryCharges");
    for view in &after {
        let order = order_id(view);
        let status = view["status"].as_str().unwrap();
        if CHAIN[1..].contains(&status) {
            check!(problems, payments.contains_key(&order), "order {order} is {status}, never charged: {view}");
        }
        if view["payment"]["status"] == "refunded" {
            check!(problems, payments.contains_key(&order), "refunded what was never charged: {view}");
        }
        if view["delivery"]["charge"]["status"] == "paid" {
            check!(problems, charged.contains_key(&order), "a paid charge the gateway never saw: {view}");
        }
    }
    for (order, keys) in &charged {
        let Some(view) = by_id.get(order) else {
            problems.push(format!("the gateway paid a charge for order {order}, which the database does not have"));
            continue;
        };
        let live: Vec<&String> = keys.iter().filter(|k| !refunded("deliveryCharges", k, &mut problems)).collect();
        let paid_here = view["delivery"]["charge"]["status"] == "paid";
        check!(
            problems,
            live.len() == usize::from(paid_here),
            "order {order} is {}: the gateway paid its rider under {keys:?}, {} of them never taken back; \
             the charge in the database: {}",
            view["status"],
            live.len(),
            db_status("charges", *order)
        );
    }
    for refund in log.iter().filter(|e| e.is_cancel() && e.fresh) {
        let id = refund.cancelled_id().unwrap();
        check!(
            problems,
            log.iter().any(|e| e.fresh && !e.is_cancel() && id_for(&e.path, e.key()) == id),
            "a refund of something never charged: {refund:?}"
        );
    }

    // the read model is the log's
    let before = views(&w);
    w.ok(&["projection", "rebuild"]);
    check!(problems, views(&w) == before, "a rebuild changed the views");
    let text = std::fs::read_to_string(w.path("messages.jsonl")).unwrap_or_default();
    for line in text.lines() {
        check!(problems, serde_json::from_str::<Value>(line).is_ok(), "a jsonl line is not JSON: {line}");
    }
    assert!(
        problems.is_empty(),
        "seed {seed} (EZDELIVERY_FAULTS_SEED={seed} reruns it): {} broken invariants after {killed} kills:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ───────────────────────────── several processes at once ─────────────────────────────

#[test]
fn eight_processes_ordering_at_once_all_succeed_with_unique_ids() {
    const PROCESSES: usize = 8;
    const ORDERS: usize = 15;
    let w = World::new(BIN, "");
    let shop = w.shop(&[]);
    let s = shop.store.to_string();
    let start = std::sync::Barrier::new(PROCESSES);
    let results: Vec<Vec<(Run, String)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PROCESSES)
            .map(|p| {
                let (w, s, start) = (&w, &s, &start);
                scope.spawn(move || {
                    let customer = format!("c{p}");
                    start.wait();
                    (0..ORDERS)
                        .map(|n| {
                            let cola = format!("콜라:{}", 1 + n % 3);
                            let args = [
                                "--json",
                                "order",
                                "--store",
                                s,
                                "--customer",
                                &customer,
                                "--item",
                                "후라이드",
                                "--item",
                                &cola,
                                "--pay",
                            ];
                            (w.run(&args), customer.clone())
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a client thread")).collect()
    });

    let mut ids = BTreeSet::new();
    for (run, customer) in results.iter().flatten() {
        assert_eq!(run.code, Some(0), "{}", run.describe(&format!("order for {customer}")));
        assert!(!run.stderr.contains("locked"), "{}", run.stderr);
        let view = one_object(&run.stdout, "order --json");
        assert!(paid(&view), "{view}");
        assert_eq!(view["customer"], customer.as_str());
        assert!(ids.insert(order_id(&view)), "order id {} handed out twice", order_id(&view));
    }
    assert_eq!(ids.len(), PROCESSES * ORDERS);

    let snapshot = |w: &World| (0..PROCESSES).map(|p| w.orders_of(&format!("c{p}"))).collect::<Vec<_>>();
    let before = snapshot(&w);
    for orders in &before {
        assert_eq!(orders.len(), ORDERS);
        assert!(orders.iter().all(paid), "every order is paid");
    }
    let events = w.ok(&["events"])["events"].as_array().expect("{\"events\":[…]}").clone();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "strictly increasing seq");
    let event_ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(event_ids.len(), events.len(), "unique event ids");
    for kind in ["OrderPlaced", "PaymentApproved"] {
        assert_eq!(events.iter().filter(|e| e["type"] == kind).count(), PROCESSES * ORDERS, "{kind}");
    }
    w.ok(&["projection", "rebuild"]);
    assert_eq!(snapshot(&w), before, "a rebuild changes no view");
}
