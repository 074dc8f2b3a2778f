//! A scriptable fake gateway for the fault tests: an HTTP/1.1 server bound
//! to 127.0.0.1 on an ephemeral port that stands in for the payment service,
//! the delivery-charge service or a webhook receiver.
//!
//! It records every request (method, path, headers, body) with the status
//! it answered, and answers by a [`Mode`] that the test flips between
//! commands. Like a real gateway it is idempotent: the first 2xx for an
//! `Idempotency-Key` on an endpoint is where the gateway acts (a charge, a
//! refund, a delivered message: [`Exchange::fresh`]); a repeat of the key
//! gets the same answer, with the same id, and changes nothing.
//!
//! Bounded: one thread per connection, at most [`MAX_CONNECTIONS`]
//! connections, sockets with read and write timeouts, and the acceptor
//! stops by itself after [`LIFETIME`] or when the server is dropped (which
//! joins every thread).

#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The server stops accepting after this long, whatever the test does.
const LIFETIME: Duration = Duration::from_secs(120);
/// ... or after this many connections.
const MAX_CONNECTIONS: usize = 5_000;
/// How long a connection may take to send its request.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request body read.
const MAX_BODY: usize = 64 * 1024;

/// How the gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 2xx with `{"id": …}` derived from the Idempotency-Key.
    Up,
    /// This status for everything (503: down; 500: a broken webhook).
    Failing(u16),
    /// Acts like `Up`, but answers only after this long (longer than the
    /// client's timeout): the work is done, the answer comes too late.
    Slow(Duration),
    /// 402 with `{"message": …}`.
    Declining,
    /// 503 and 2xx in turn, request by request.
    Flapping,
}

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
    /// The status answered (also when the client had gone away).
    pub status: u16,
    /// The first 2xx for this endpoint and key: the gateway acted on it.
    pub fresh: bool,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} key={:?} -> {}{} {}",
            self.method,
            self.path,
            self.key(),
            self.status,
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
/// key always gets the same id.
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
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
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
            state: Mutex::new(State { mode, latency: None, seed: 0, log: Vec::new(), done: HashSet::new(), served: 0 }),
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
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

    /// In `Up`, answers each request after a delay between `min_ms` and
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

/// Reads one request, records it with the answer the mode gives, waits
/// if the mode says so, and answers (the client may have gone: ignored).
fn serve(stream: TcpStream, shared: &Shared) {
    // A request cut short (the client was killed while sending) is not
    // recorded: the gateway never saw it.
    let Some(request) = read_request(&stream) else { return };
    let key = request.headers.iter().find(|(n, _)| n == "idempotency-key").map(|(_, v)| v.clone()).unwrap_or_default();
    let (status, body, delay) = {
        let mut state = shared.state();
        state.served += 1;
        let up = |state: &mut State| {
            let fresh = state.done.insert((request.path.clone(), key.clone()));
            (200, serde_json::json!({ "id": id_for(&request.path, &key) }).to_string(), fresh)
        };
        let (status, body, fresh, delay) = match state.mode {
            Mode::Up => {
                let delay = match state.latency {
                    Some((min, max)) => {
                        let r = mix(state.seed ^ state.served.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                        Duration::from_millis(min + r % (max - min + 1))
                    }
                    None => Duration::ZERO,
                };
                let (status, body, fresh) = up(&mut state);
                (status, body, fresh, delay)
            }
            Mode::Slow(delay) => {
                let (status, body, fresh) = up(&mut state);
                (status, body, fresh, delay)
            }
            Mode::Failing(status) => {
                (status, r#"{"message": "the test gateway is down"}"#.to_string(), false, Duration::ZERO)
            }
            Mode::Declining => {
                (402, serde_json::json!({ "message": DECLINE_MESSAGE }).to_string(), false, Duration::ZERO)
            }
            Mode::Flapping if state.served % 2 == 1 => {
                (503, r#"{"message": "flapping: down this time"}"#.to_string(), false, Duration::ZERO)
            }
            Mode::Flapping => {
                let (status, body, fresh) = up(&mut state);
                (status, body, fresh, Duration::ZERO)
            }
        };
        state.log.push(Exchange {
            method: request.method,
            path: request.path,
            headers: request.headers,
            body: request.body,
            status,
            fresh,
        });
        (status, body, delay)
    };
    std::thread::sleep(delay);
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes()).and_then(|()| stream.flush());
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
        402 => "Payment Required",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    }
}
