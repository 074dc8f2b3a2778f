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
//! Bounded: one thread per connection, at most [`MAX_CONNECTIONS`]
//! connections, sockets with read and write timeouts, and the acceptor
//! stops by itself after [`LIFETIME`] or when the server is dropped (which
//! joins every thread).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The server stops accepting after this long, whatever the test does.
const LIFETIME: Duration = Duration::from_secs(180);
/// ... or after this many connections.
const MAX_CONNECTIONS: usize = 5_000;
/// How long a connection may take to send its request.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request body read.
const MAX_BODY: usize = 64 * 1024;
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

/// One request and what the gateway made of it.
#[derive(Clone)]
pub struct Exchange {
    /// `POST`
    pub method: String,
    /// The request target, `/payments`.
    pub path: String,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub body: Vec<u8>,
    /// The status answered (also when the client had gone away); 0 when
    /// the connection was closed without an answer ([`Mode::ActThenDrop`]).
    pub status: u16,
    /// The first time the gateway acted on this endpoint and key (in `Up`,
    /// `Slow` and `Flapping`: the first 2xx).
    pub fresh: bool,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = if self.status == 0 { "dropped".to_string() } else { self.status.to_string() };
        write!(
            f,
            "{} {} key={:?} -> {status}{} {}",
            self.method,
            self.path,
            self.key(),
            if self.fresh { " (acted on)" } else { "" },
            String::from_utf8_lossy(&self.body)
        )
    }
}

impl Exchange {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The Idempotency-Key header (empty when there is none).
    pub fn key(&self) -> &str {
        self.header("idempotency-key").unwrap_or("")
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body's `orderId`.
    pub fn order_id(&self) -> Option<i64> {
        self.json()["orderId"].as_i64()
    }

    /// The body's `card` (`None` when it is null or missing).
    pub fn card(&self) -> Option<String> {
        self.json()["card"].as_str().map(String::from)
    }

    /// Answered 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A refund: `POST …/{id}/cancel`.
    pub fn is_cancel(&self) -> bool {
        self.path.ends_with("/cancel")
    }

    /// For a refund, the `{id}` it cancels.
    pub fn cancelled_id(&self) -> Option<&str> {
        let rest = self.path.strip_suffix("/cancel")?;
        rest.rsplit('/').next()
    }
}

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

/// A URL where nothing listens: a connection to it is refused, so a call
/// there certainly never reached any gateway.
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("the local address");
    drop(listener);
    format!("http://{address}")
}

// ───────────────────────────── the server ─────────────────────────────

struct State {
    mode: Mode,
    /// `Up` answers after a delay in this range (ms), picked from `seed`.
    latency: Option<(u64, u64)>,
    seed: u64,
    log: Vec<Exchange>,
    /// (path, key) pairs already acted on.
    done: HashSet<(String, String)>,
    /// Requests answered so far (also drives `Flapping`).
    served: u64,
    ledger: Ledger,
    /// (path, key) pairs being answered right now, and how many times.
    in_flight: HashMap<(String, String), usize>,
    /// Requests that arrived while another with the same path and key was
    /// still being answered.
    overlaps: Vec<Exchange>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
    url: String,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running fake gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    url: String,
    acceptor: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Starts a gateway answering by `mode`.
    pub fn start(mode: Mode) -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("the local address"));
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mode,
                latency: None,
                seed: 0,
                log: Vec::new(),
                done: HashSet::new(),
                served: 0,
                ledger: Ledger::default(),
                in_flight: HashMap::new(),
                overlaps: Vec::new(),
            }),
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
            url: url.clone(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept(&listener, &shared))
        };
        Gateway { shared, url, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers by `mode` from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.state().mode = mode;
    }

    /// The mode it answers by.
    pub fn mode(&self) -> Mode {
        self.shared.state().mode
    }

    /// In `Up` (and `Flapping`'s 2xx turns), answers each request after a delay between `min_ms` and
    /// `max_ms`, picked deterministically from `seed` and the request count.
    pub fn set_latency(&self, min_ms: u64, max_ms: u64, seed: u64) {
        let mut state = self.shared.state();
        state.latency = Some((min_ms, max_ms.max(min_ms)));
        state.seed = seed;
    }

    /// Every request recorded so far, in the order they were read.
    pub fn log(&self) -> Vec<Exchange> {
        self.shared.state().log.clone()
    }

    /// How many requests were recorded so far.
    pub fn count(&self) -> usize {
        self.shared.state().log.len()
    }

    /// The requests to paths ending with `suffix`.
    pub fn to(&self, suffix: &str) -> Vec<Exchange> {
        self.log().into_iter().filter(|e| e.path.ends_with(suffix)).collect()
    }

    /// The requests about `order`: its approvals and charges (by the body's
    /// `orderId`) and the refunds of what the gateway gave it.
    pub fn log_of(&self, order: i64) -> Vec<Exchange> {
        let state = self.shared.state();
        state
            .log
            .iter()
            .filter(|e| match e.cancelled_id() {
                Some(id) => state.ledger.order_of_id(id) == Some(order),
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
        self.shared.state().overlaps.clone()
    }

    /// What the gateway acted on so far.
    pub fn ledger(&self) -> Ledger {
        self.shared.state().ledger.clone()
    }

    /// [`Ledger::net_payments`] now.
    pub fn net_payments(&self, order: i64) -> i64 {
        self.shared.state().ledger.net_payments(order)
    }

    /// [`Ledger::net_charges`] now.
    pub fn net_charges(&self, order: i64) -> i64 {
        self.shared.state().ledger.net_charges(order)
    }

    /// [`Ledger::approved_cards`] now.
    pub fn approved_cards(&self, order: i64) -> Vec<String> {
        self.shared.state().ledger.approved_cards(order)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = std::mem::take(&mut *self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    let deadline = Instant::now() + LIFETIME;
    let mut connections = 0;
    while !shared.stop.load(Ordering::SeqCst) && Instant::now() < deadline && connections < MAX_CONNECTIONS {
        match listener.accept() {
            Ok((stream, _)) => {
                connections += 1;
                let worker = {
                    let shared = Arc::clone(shared);
                    std::thread::spawn(move || serve(stream, &shared))
                };
                let mut workers = shared.workers.lock().unwrap_or_else(|p| p.into_inner());
                workers.retain(|w| !w.is_finished());
                workers.push(worker);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A request as read off the wire.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v): &(String, String)| v.parse().ok())?;
            if length > MAX_BODY {
                return None;
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok()?;
            return Some(Request { method, path, headers, body });
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    None
}

/// What goes back on the wire.
enum Answer {
    /// A status, its content type, an extra header, a body.
    Reply { status: u16, content_type: &'static str, location: Option<String>, body: String },
    /// Nothing: the connection is closed.
    Drop,
}

impl Answer {
    fn json(status: u16, body: String) -> Answer {
        Answer::Reply { status, content_type: "application/json", location: None, body }
    }

    fn message(status: u16, message: &str) -> Answer {
        Answer::json(status, serde_json::json!({ "message": message }).to_string())
    }

    fn status(&self) -> u16 {
        match self {
            Answer::Reply { status, .. } => *status,
            Answer::Drop => 0,
        }
    }
}

/// What the gateway does with `request` in its current mode: the answer,
/// whether it acted for the first time, and how long it waits to answer.
fn decide(state: &mut State, request: &Request, key: &str, url: &str) -> (Answer, bool, Duration) {
    let mode = match state.mode {
        Mode::Flapping if state.served % 2 == 1 => {
            return (Answer::message(503, "flapping: down this time"), false, Duration::ZERO)
        }
        Mode::Flapping => Mode::Up,
        mode => mode,
    };
    match mode {
        Mode::Failing(status) => return (Answer::message(status, "the test gateway is down"), false, Duration::ZERO),
        // a key it already acted on gets the answer it had (as any
        // idempotent service: a replay never turns an approval into a decline)
        Mode::Declining if state.done.contains(&(request.path.clone(), key.to_string())) => {
            let ok = serde_json::json!({ "id": id_for(&request.path, key) }).to_string();
            return (Answer::json(200, ok), false, Duration::ZERO);
        }
        Mode::Declining => return (Answer::message(402, DECLINE_MESSAGE), false, Duration::ZERO),
        Mode::Redirect => {
            let answer = Answer::Reply {
                status: 302,
                content_type: "application/json",
                location: Some(format!("{url}/elsewhere")),
                body: r#"{"message": "moved (test gateway)"}"#.into(),
            };
            return (answer, false, Duration::ZERO);
        }
        _ => {}
    }
    if state.ledger.is_stray(&request.path) {
        return (Answer::message(404, "no such payment or charge (test gateway)"), false, Duration::ZERO);
    }
    // The gateway acts (once per path and key), whatever it answers then.
    let fresh = state.done.insert((request.path.clone(), key.to_string()));
    if fresh {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        state.ledger.record(&request.path, key, &body);
    }
    let id = id_for(&request.path, key);
    let ok = serde_json::json!({ "id": id }).to_string();
    let answer = match mode {
        Mode::Up => {
            let delay = match state.latency {
                Some((min, max)) => {
                    let r = mix(state.seed ^ state.served.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    Duration::from_millis(min + r % (max - min + 1))
                }
                None => Duration::ZERO,
            };
            return (Answer::json(200, ok), fresh, delay);
        }
        Mode::Slow(delay) => return (Answer::json(200, ok), fresh, delay),
        Mode::ActThen(status) => Answer::message(status, "acted, then failed to answer (test gateway)"),
        Mode::ActThenDrop => Answer::Drop,
        Mode::ActThenUnreadable(Body::Html) => Answer::Reply {
            status: 200,
            content_type: "text/html",
            location: None,
            body: format!("<html><body><h1>OK</h1><p>{id}</p></body></html>"),
        },
        Mode::ActThenUnreadable(Body::Oversize) => {
            Answer::json(200, serde_json::json!({ "id": id, "padding": "x".repeat(OVERSIZE) }).to_string())
        }
        Mode::ActThenUnreadable(Body::NoId) => Answer::json(200, "{}".into()),
        Mode::Failing(_) | Mode::Declining | Mode::Redirect | Mode::Flapping => unreachable!("answered above"),
    };
    (answer, fresh, Duration::ZERO)
}

/// Reads one request, records it with the answer the mode gives, waits
/// if the mode says so, and answers (the client may have gone: ignored).
fn serve(stream: TcpStream, shared: &Shared) {
    // A request cut short (the client was killed while sending) is not
    // recorded: the gateway never saw it.
    let Some(request) = read_request(&stream) else { return };
    let key = request.headers.iter().find(|(n, _)| n == "idempotency-key").map(|(_, v)| v.clone()).unwrap_or_default();
    let pair = (request.path.clone(), key.clone());
    let (answer, delay) = {
        let mut state = shared.state();
        state.served += 1;
        let overlapping = {
            let n = state.in_flight.entry(pair.clone()).or_default();
            *n += 1;
            *n > 1
        };
        let (answer, fresh, delay) = decide(&mut state, &request, &key, &shared.url);
        let exchange = Exchange {
            method: request.method,
            path: request.path,
            headers: request.headers,
            body: request.body,
            status: answer.status(),
            fresh,
        };
        if exchange.status == 404 && state.ledger.is_stray(&exchange.path) {
            state.ledger.strays.push(exchange.clone());
        }
        if overlapping && !key.is_empty() {
            state.overlaps.push(exchange.clone());
        }
        state.log.push(exchange);
        (answer, delay)
    };
    std::thread::sleep(delay);
    // done with it before the client can know it: a request the client
    // sends after this answer never counts as an overlap
    {
        let mut state = shared.state();
        if let Some(n) = state.in_flight.get_mut(&pair) {
            *n -= 1;
            if *n == 0 {
                state.in_flight.remove(&pair);
            }
        }
    }
    write_answer(stream, answer);
}

/// Writes `answer` (or closes the connection without one).
fn write_answer(stream: TcpStream, answer: Answer) {
    let mut stream = stream;
    match answer {
        Answer::Drop => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Answer::Reply { status, content_type, location, body } => {
            let location = location.map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
            let response = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                reason(status),
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).and_then(|()| stream.flush());
        }
    }
}

/// splitmix64's finaliser: a well-mixed number from `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        402 => "Payment Required",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    }
}
