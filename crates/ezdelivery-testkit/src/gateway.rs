//! A scriptable fake gateway for the fault and money tests: an HTTP/1.1
//! server bound to 127.0.0.1 on an ephemeral port that stands in for the
//! payment service, the delivery-charge service or a webhook receiver.
//!
//! It records every request (method, path, headers, body) with the status
//! it answered, and answers by a [`Mode`] that the test flips between
//! commands. Like a real gateway it is idempotent: the first time it acts
//! on an `Idempotency-Key` on an endpoint (a charge, a refund, a delivered
//! message: [`Exchange::fresh`]) is the only time; a repeat of the key gets
//! the same id and changes nothing.
//!
//! What it acted on is also kept in a [`Ledger`]: approvals, delivery
//! charges, and the refunds and take-backs of them, by order, so a test can
//! ask how much money really moved (`net_payments`, `net_charges`) whatever
//! the client was able to read of the answers. Some modes act and then make
//! the answer unreadable ([`Mode::ActThen`], [`Mode::ActThenDrop`],
//! [`Mode::ActThenUnreadable`], [`Mode::Slow`]): only a replay of the key in
//! [`Mode::Up`] tells the client what happened.
//!
//! It is a [`Server`] (the same engine as [`crate::server::ScriptedServer`])
//! with its own [`LIFETIME`] and [`MAX_CONNECTIONS`]; the engine's other
//! bounds (timeouts, sizes) are in [`crate::server`]. Dropping the gateway
//! stops it and joins every thread.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

pub use crate::server::{refused_url, Exchange};
use crate::server::{Limits, Reply, Responder, Server};

/// The gateway stops accepting after this long, whatever the test does.
pub const LIFETIME: Duration = Duration::from_secs(180);
/// ... or after this many connections.
pub const MAX_CONNECTIONS: usize = 5_000;
/// The size of a [`Body::Oversize`] answer: more than the 64 KiB a client reads.
pub const OVERSIZE: usize = 80 * 1024;

/// How the gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 2xx with `{"id": …}` derived from the Idempotency-Key.
    Up,
    /// This status for everything (503: down; 500: a broken webhook); does
    /// not act.
    Failing(u16),
    /// Acts like `Up`, but answers only after this long (longer than the
    /// client's timeout): the work is done, the answer comes too late.
    Slow(Duration),
    /// 402 with `{"message": …}`; does not act. A key it already acted
    /// on (in another mode) gets its 2xx again, as from an idempotent service.
    Declining,
    /// 503 (without acting) and 2xx in turn, request by request.
    Flapping,
    /// Acts, then answers this status (503, 500, …) with a JSON message.
    ActThen(u16),
    /// Acts, then closes the connection without any answer.
    ActThenDrop,
    /// Acts, then answers 200 with a body the client cannot use.
    ActThenUnreadable(Body),
    /// 302 to `{url}/elsewhere`; does not act.
    Redirect,
}

impl Mode {
    /// Whether a request for new work, answered in this mode, is acted on.
    pub fn acts(self) -> bool {
        !matches!(self, Mode::Failing(_) | Mode::Declining | Mode::Redirect)
    }
}

/// A 200 answer the client cannot read a result from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `<html>…</html>`, `Content-Type: text/html`.
    Html,
    /// Valid JSON with the id, but longer than [`OVERSIZE`] bytes.
    Oversize,
    /// `{}`: no id.
    NoId,
}

/// Every mode that acts and leaves the client unable to read the result
/// (bar `Slow`, whose delay the test picks).
pub const UNREADABLE_MODES: [Mode; 6] = [
    Mode::ActThen(503),
    Mode::ActThen(500),
    Mode::ActThenDrop,
    Mode::ActThenUnreadable(Body::Html),
    Mode::ActThenUnreadable(Body::Oversize),
    Mode::ActThenUnreadable(Body::NoId),
];

/// The message a declining gateway gives.
pub const DECLINE_MESSAGE: &str = "insufficient funds (test gateway)";

/// The id the gateway gives the work done under `key` at `path`: the same
/// key always gets the same id (and it is never the key itself).
pub fn id_for(path: &str, key: &str) -> String {
    let kind = if path.ends_with("/cancel") {
        "refund"
    } else if path.ends_with("/payments") {
        "pay"
    } else if path.ends_with("/deliveryCharges") {
        "dc"
    } else {
        "ack"
    };
    format!("{kind}-{key}")
}

// ───────────────────────────── the ledger ─────────────────────────────

/// What the gateway did with money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `POST /payments` acted on: the customer's card was charged.
    Approval,
    /// `POST /deliveryCharges` acted on: the rider was paid.
    Charge,
    /// `POST /payments/{id}/cancel` acted on: the payment went back.
    PaymentRefund,
    /// `POST /deliveryCharges/{id}/cancel` acted on: the rider's charge was taken back.
    ChargeRefund,
}

/// One thing the gateway did.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What it did.
    pub act: Act,
    /// The order it was for (a refund: the order of what it cancels).
    pub order: i64,
    /// The Idempotency-Key it was done under.
    pub key: String,
    /// The id the gateway gave it (what a refund must name).
    pub id: String,
    /// A refund or take-back: the id of the approval or charge it cancels.
    pub cancels: Option<String>,
    /// An approval: the (masked) card charged.
    pub card: Option<String>,
    /// A charge (or its take-back): the rider paid.
    pub rider: Option<String>,
    /// An approval or charge: how much.
    pub amount: Option<i64>,
}

/// Everything the gateway acted on, by order.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// In the order they were done.
    pub entries: Vec<Entry>,
    /// Refunds naming an id the gateway never gave (the idempotency key, a
    /// guess): answered 404 and not acted on.
    pub strays: Vec<Exchange>,
    /// The approvals and charges by the id the gateway gave them.
    by_id: HashMap<String, usize>,
}

impl Ledger {
    /// What was done for `order`.
    pub fn of(&self, order: i64) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.order == order).collect()
    }

    fn count(&self, order: i64, act: Act) -> i64 {
        self.entries.iter().filter(|e| e.order == order && e.act == act).count() as i64
    }

    /// The approvals acted on for `order`.
    pub fn approvals(&self, order: i64) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.order == order && e.act == Act::Approval).collect()
    }

    /// The delivery charges acted on for `order`.
    pub fn charges(&self, order: i64) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.order == order && e.act == Act::Charge).collect()
    }

    /// Approvals minus refunds: 1 for a paid order, 0 for one that is not
    /// (or no longer) charged.
    pub fn net_payments(&self, order: i64) -> i64 {
        self.count(order, Act::Approval) - self.count(order, Act::PaymentRefund)
    }

    /// Charges paid minus charges taken back.
    pub fn net_charges(&self, order: i64) -> i64 {
        self.count(order, Act::Charge) - self.count(order, Act::ChargeRefund)
    }

    /// Charges paid to `rider` minus those of them taken back.
    pub fn net_charges_to(&self, order: i64, rider: &str) -> i64 {
        self.entries
            .iter()
            .filter(|e| e.order == order && e.rider.as_deref() == Some(rider))
            .map(|e| match e.act {
                Act::Charge => 1,
                Act::ChargeRefund => -1,
                _ => 0,
            })
            .sum()
    }

    /// The cards of the approvals acted on for `order`, in order (`""` for
    /// an approval without a card).
    pub fn approved_cards(&self, order: i64) -> Vec<String> {
        self.approvals(order).iter().map(|e| e.card.clone().unwrap_or_default()).collect()
    }

    /// Every order the gateway did something for.
    pub fn orders(&self) -> std::collections::BTreeSet<i64> {
        self.entries.iter().map(|e| e.order).collect()
    }

    /// One line per entry of `order`.
    pub fn describe(&self, order: i64) -> String {
        let lines: Vec<String> = self.of(order).iter().map(|e| format!("  {e:?}")).collect();
        if lines.is_empty() {
            "  (nothing)".into()
        } else {
            lines.join("\n")
        }
    }

    /// Records that the gateway acted on `request`; returns the entry.
    fn record(&mut self, path: &str, key: &str, body: &Value) -> Option<Entry> {
        let id = id_for(path, key);
        let entry = if path.ends_with("/payments") || path.ends_with("/deliveryCharges") {
            let act = if path.ends_with("/payments") { Act::Approval } else { Act::Charge };
            Entry {
                act,
                order: body["orderId"].as_i64().unwrap_or(-1),
                key: key.to_string(),
                id,
                cancels: None,
                card: body["card"].as_str().map(String::from),
                rider: body["rider"].as_str().map(String::from),
                amount: body["amount"].as_i64(),
            }
        } else if path.ends_with("/cancel") {
            let cancels = cancelled_id(path)?;
            let of = self.entries[*self.by_id.get(&cancels)?].clone();
            let act = if of.act == Act::Approval { Act::PaymentRefund } else { Act::ChargeRefund };
            Entry {
                act,
                order: of.order,
                key: key.to_string(),
                id,
                cancels: Some(cancels),
                card: None,
                rider: of.rider,
                amount: of.amount,
            }
        } else {
            return None;
        };
        if matches!(entry.act, Act::Approval | Act::Charge) {
            self.by_id.insert(entry.id.clone(), self.entries.len());
        }
        self.entries.push(entry.clone());
        Some(entry)
    }

    /// The order of the approval or charge the gateway gave `id`.
    fn order_of_id(&self, id: &str) -> Option<i64> {
        self.by_id.get(id).map(|i| self.entries[*i].order)
    }

    /// Whether `path` cancels something this gateway never gave an id.
    fn is_stray(&self, path: &str) -> bool {
        let money = path.contains("/payments/") || path.contains("/deliveryCharges/");
        money && cancelled_id(path).is_some_and(|id| !self.by_id.contains_key(&id))
    }
}

/// For `…/{id}/cancel`, the `{id}`.
fn cancelled_id(path: &str) -> Option<String> {
    let rest = path.strip_suffix("/cancel")?;
    rest.rsplit('/').next().map(String::from)
}

// ───────────────────────────── the gateway ─────────────────────────────

/// What the gateway keeps besides the requests (which the server logs).
struct Fake {
    mode: Mode,
    /// `Up` answers after a delay in this range (ms), picked from `seed`.
    latency: Option<(u64, u64)>,
    seed: u64,
    /// (path, key) pairs already acted on.
    done: HashSet<(String, String)>,
    ledger: Ledger,
}

impl Responder for Fake {
    /// What the gateway does with `request` in its current mode: the
    /// answer (with how long it waits to give it), and whether it acted
    /// for the first time.
    fn respond(&mut self, request: &Exchange, served: u64, url: &str) -> (Reply, bool) {
        let key = request.key();
        let mode = match self.mode {
            Mode::Flapping if served % 2 == 1 => return (Reply::message(503, "flapping: down this time"), false),
            Mode::Flapping => Mode::Up,
            mode => mode,
        };
        match mode {
            Mode::Failing(status) => return (Reply::message(status, "the test gateway is down"), false),
            // a key it already acted on gets the answer it had (as any
            // idempotent service: a replay never turns an approval into a decline)
            Mode::Declining if self.done.contains(&(request.path.clone(), key.to_string())) => {
                let ok = serde_json::json!({ "id": id_for(&request.path, key) }).to_string();
                return (Reply::json(200, &ok), false);
            }
            Mode::Declining => return (Reply::message(402, DECLINE_MESSAGE), false),
            Mode::Redirect => {
                let reply =
                    Reply::json(302, r#"{"message": "moved (test gateway)"}"#).location(format!("{url}/elsewhere"));
                return (reply, false);
            }
            _ => {}
        }
        if self.ledger.is_stray(&request.path) {
            self.ledger.strays.push(Exchange { status: 404, fresh: false, ..request.clone() });
            return (Reply::message(404, "no such payment or charge (test gateway)"), false);
        }
        // The gateway acts (once per path and key), whatever it answers then.
        let fresh = self.done.insert((request.path.clone(), key.to_string()));
        if fresh {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            self.ledger.record(&request.path, key, &body);
        }
        let id = id_for(&request.path, key);
        let ok = serde_json::json!({ "id": id }).to_string();
        let reply = match mode {
            Mode::Up => {
                let delay = match self.latency {
                    Some((min, max)) => {
                        let r = mix(self.seed ^ served.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                        Duration::from_millis(min + r % (max - min + 1))
                    }
                    None => Duration::ZERO,
                };
                Reply::json(200, &ok).after(delay)
            }
            Mode::Slow(delay) => Reply::json(200, &ok).after(delay),
            Mode::ActThen(status) => Reply::message(status, "acted, then failed to answer (test gateway)"),
            Mode::ActThenDrop => Reply::dropped(),
            Mode::ActThenUnreadable(Body::Html) => {
                Reply::html(200, &format!("<html><body><h1>OK</h1><p>{id}</p></body></html>"))
            }
            Mode::ActThenUnreadable(Body::Oversize) => {
                Reply::json(200, &serde_json::json!({ "id": id, "padding": "x".repeat(OVERSIZE) }).to_string())
            }
            Mode::ActThenUnreadable(Body::NoId) => Reply::json(200, "{}"),
            Mode::Failing(_) | Mode::Declining | Mode::Redirect | Mode::Flapping => unreachable!("answered above"),
        };
        (reply, fresh)
    }
}

/// A running fake gateway.
pub struct Gateway {
    server: Server<Fake>,
}

impl Gateway {
    /// Starts a gateway answering by `mode`.
    pub fn start(mode: Mode) -> Gateway {
        let fake = Fake { mode, latency: None, seed: 0, done: HashSet::new(), ledger: Ledger::default() };
        Gateway { server: Server::start(fake, Limits { lifetime: LIFETIME, max_connections: MAX_CONNECTIONS }) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// Answers by `mode` from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.server.state().responder.mode = mode;
    }

    /// The mode it answers by.
    pub fn mode(&self) -> Mode {
        self.server.state().responder.mode
    }

    /// In `Up` (and `Flapping`'s 2xx turns), answers each request after a delay between `min_ms` and
    /// `max_ms`, picked deterministically from `seed` and the request count.
    pub fn set_latency(&self, min_ms: u64, max_ms: u64, seed: u64) {
        let fake = &mut self.server.state().responder;
        fake.latency = Some((min_ms, max_ms.max(min_ms)));
        fake.seed = seed;
    }

    /// Every request recorded so far, in the order they were read.
    pub fn log(&self) -> Vec<Exchange> {
        self.server.log()
    }

    /// How many requests were recorded so far.
    pub fn count(&self) -> usize {
        self.server.count()
    }

    /// The requests to paths ending with `suffix`.
    pub fn to(&self, suffix: &str) -> Vec<Exchange> {
        self.log().into_iter().filter(|e| e.path.ends_with(suffix)).collect()
    }

    /// The requests about `order`: its approvals and charges (by the body's
    /// `orderId`) and the refunds of what the gateway gave it.
    pub fn log_of(&self, order: i64) -> Vec<Exchange> {
        let state = self.server.state();
        state
            .log
            .iter()
            .filter(|e| match e.cancelled_id() {
                Some(id) => state.responder.ledger.order_of_id(id) == Some(order),
                None => e.order_id() == Some(order),
            })
            .cloned()
            .collect()
    }

    /// Requests that arrived while another one with the same path and
    /// Idempotency-Key was still being answered: two processes calling for
    /// one attempt at once (meaningful while answers come within the
    /// client's timeout and no client is killed).
    pub fn overlaps(&self) -> Vec<Exchange> {
        self.server.overlaps()
    }

    /// What the gateway acted on so far.
    pub fn ledger(&self) -> Ledger {
        self.server.state().responder.ledger.clone()
    }

    /// [`Ledger::net_payments`] now.
    pub fn net_payments(&self, order: i64) -> i64 {
        self.server.state().responder.ledger.net_payments(order)
    }

    /// [`Ledger::net_charges`] now.
    pub fn net_charges(&self, order: i64) -> i64 {
        self.server.state().responder.ledger.net_charges(order)
    }

    /// [`Ledger::approved_cards`] now.
    pub fn approved_cards(&self, order: i64) -> Vec<String> {
        self.server.state().responder.ledger.approved_cards(order)
    }
}

/// splitmix64's finaliser: a well-mixed number from `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
