//! One HTTP/1.1 server for every test that needs something to answer
//! ezdelivery's HTTP clients: bound to 127.0.0.1 on an ephemeral port, it
//! reads each request, records it as an [`Exchange`], asks its
//! [`Responder`] for a [`Reply`], waits the reply's delay and writes it.
//!
//! It has two front doors:
//!
//! - [`ScriptedServer`]: answers the connections with a list of replies, in
//!   order, and stops by itself after the last one; [`ScriptedServer::finish`]
//!   hands back what it received. The adapters' unit tests in ezdelivery-core
//!   use it.
//! - [`crate::gateway::Gateway`]: a fake payment, delivery-charge or webhook
//!   service that answers by a mode, idempotently, and keeps a ledger; the
//!   CLI's fault and money tests use it.
//!
//! Bounded: one thread per connection, at most [`Limits::max_connections`]
//! connections, sockets with read and write timeouts ([`IO_TIMEOUT`]), at
//! most [`MAX_HEADERS`] header lines and [`MAX_BODY`] bytes of body; the
//! acceptor stops by itself after [`Limits::lifetime`], and when the server
//! is dropped (or finished) every thread is joined.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a connection may take to send its request, and to take the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request body read; a larger request is not answered.
pub const MAX_BODY: usize = 64 * 1024;
/// The most header lines read; a request with more is not answered.
pub const MAX_HEADERS: usize = 100;
/// How long a [`ScriptedServer`] waits for all its connections.
pub const SCRIPT_DEADLINE: Duration = Duration::from_secs(10);

/// When a server stops accepting, whatever the test does.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// After this long.
    pub lifetime: Duration,
    /// After this many connections.
    pub max_connections: usize,
}

// ───────────────────────────── requests and replies ─────────────────────────────

/// One request and what the server made of it.
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
    /// the connection was closed without an answer ([`Reply::dropped`]).
    pub status: u16,
    /// The first time a gateway acted on this endpoint and key (in `Up`,
    /// `Slow` and `Flapping`: the first 2xx); always false for a
    /// [`ScriptedServer`].
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

    /// The body as JSON; panics when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }

    /// The body as JSON, `Null` when it is not JSON.
    fn json_or_null(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body's `orderId`.
    pub fn order_id(&self) -> Option<i64> {
        self.json_or_null()["orderId"].as_i64()
    }

    /// The body's `card` (`None` when it is null or missing).
    pub fn card(&self) -> Option<String> {
        self.json_or_null()["card"].as_str().map(String::from)
    }

    /// The value of the form field `name` in an
    /// `application/x-www-form-urlencoded` body.
    pub fn form_field(&self, name: &str) -> Option<String> {
        let body = std::str::from_utf8(&self.body).expect("a form body is ASCII");
        body.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| form_decode(k) == name)
            .map(|(_, v)| form_decode(v))
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

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("a percent escape");
                out.push(u8::from_str_radix(hex, 16).expect("a hex escape"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("the decoded form field is UTF-8")
}

/// One answer: a status, a content type, maybe a `Location`, a body, and
/// how long to wait before sending it; or no answer at all.
#[derive(Debug, Clone)]
pub struct Reply {
    /// 0: the connection is closed without an answer.
    status: u16,
    content_type: &'static str,
    location: Option<String>,
    body: String,
    delay: Duration,
}

impl Reply {
    /// `status` with a JSON `body` (may be empty, or not JSON at all: it
    /// goes out as it is, labelled `application/json`).
    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            location: None,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with `{"message": message}`.
    pub fn message(status: u16, message: &str) -> Reply {
        Reply::json(status, &serde_json::json!({ "message": message }).to_string())
    }

    /// `status` with an HTML `body`, `Content-Type: text/html`.
    pub fn html(status: u16, body: &str) -> Reply {
        Reply { content_type: "text/html", ..Reply::json(status, body) }
    }

    /// No answer: the connection is closed once the request is read.
    pub fn dropped() -> Reply {
        Reply::json(0, "")
    }

    /// This reply with a `Location: url` header (a redirect).
    pub fn location(mut self, url: String) -> Reply {
        self.location = Some(url);
        self
    }

    /// Waits `delay` after reading the request, before answering.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// The status it answers (0: none).
    pub fn status(&self) -> u16 {
        self.status
    }
}

/// Decides what a server answers.
pub trait Responder: Send + 'static {
    /// The reply to `request` (the `served`-th request read, from 1, by the
    /// server at `url`), and whether the server acted on it for the first
    /// time ([`Exchange::fresh`]). Called with the server's state locked:
    /// one request at a time.
    fn respond(&mut self, request: &Exchange, served: u64, url: &str) -> (Reply, bool);
}

/// A URL on 127.0.0.1 where nothing listens (a port bound and released):
/// a connection to it is refused, so a call there certainly never reached
/// any server.
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("the local address");
    drop(listener);
    format!("http://{address}")
}

// ───────────────────────────── the engine ─────────────────────────────

/// What a server keeps, behind one lock.
pub(crate) struct State<R> {
    /// Whoever decides the answers (and what it keeps).
    pub(crate) responder: R,
    /// Every request recorded so far, in the order they were read.
    pub(crate) log: Vec<Exchange>,
    /// Requests that arrived while another with the same path and key was
    /// still being answered.
    pub(crate) overlaps: Vec<Exchange>,
    /// Requests read so far.
    served: u64,
    /// (path, key) pairs being answered right now, and how many times.
    in_flight: HashMap<(String, String), usize>,
}

struct Shared<R> {
    state: Mutex<State<R>>,
    stop: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
    url: String,
}

impl<R> Shared<R> {
    fn state(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running server answering by `R`.
pub struct Server<R: Responder> {
    shared: Arc<Shared<R>>,
    acceptor: Option<JoinHandle<()>>,
}

impl<R: Responder> Server<R> {
    /// Starts a server on 127.0.0.1 answering by `responder` within `limits`.
    pub fn start(responder: R, limits: Limits) -> Server<R> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("the local address"));
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                responder,
                log: Vec::new(),
                overlaps: Vec::new(),
                served: 0,
                in_flight: HashMap::new(),
            }),
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
            url,
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept(&listener, &shared, limits))
        };
        Server { shared, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Every request recorded so far, in the order they were read.
    pub fn log(&self) -> Vec<Exchange> {
        self.shared.state().log.clone()
    }

    /// How many requests were recorded so far.
    pub fn count(&self) -> usize {
        self.shared.state().log.len()
    }

    /// Requests that arrived while another one with the same path and
    /// Idempotency-Key was still being answered.
    pub fn overlaps(&self) -> Vec<Exchange> {
        self.shared.state().overlaps.clone()
    }

    /// The state, locked.
    pub(crate) fn state(&self) -> MutexGuard<'_, State<R>> {
        self.shared.state()
    }

    /// Waits for the acceptor to stop by itself (its lifetime or its
    /// connections are used up) and for every connection to be answered;
    /// returns the requests recorded.
    pub fn finish(mut self) -> Vec<Exchange> {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().expect("the test server's acceptor panicked");
        }
        self.join_workers();
        self.log()
    }

    fn join_workers(&self) {
        let workers = std::mem::take(&mut *self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for worker in workers {
            let _ = worker.join();
        }
    }
}

impl<R: Responder> Drop for Server<R> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.join_workers();
    }
}

fn accept<R: Responder>(listener: &TcpListener, shared: &Arc<Shared<R>>, limits: Limits) {
    let deadline = Instant::now() + limits.lifetime;
    let mut connections = 0;
    while !shared.stop.load(Ordering::SeqCst) && Instant::now() < deadline && connections < limits.max_connections {
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

/// Reads one request (status 0, not fresh), or `None` when it is cut
/// short, too large or not HTTP.
fn read_request(stream: &TcpStream) -> Option<Exchange> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    for _ in 0..MAX_HEADERS {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            let length = match headers.iter().find(|(n, _)| n == "content-length") {
                Some((_, v)) => v.parse().ok()?,
                None => 0,
            };
            if length > MAX_BODY {
                return None;
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok()?;
            return Some(Exchange { method, path, headers, body, status: 0, fresh: false });
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    None
}

/// Reads one request, records it with the reply the responder gives, waits
/// the reply's delay and answers (the client may have gone: ignored).
fn serve<R: Responder>(stream: TcpStream, shared: &Shared<R>) {
    // A request cut short (the client was killed while sending) is not
    // recorded: the server never saw it.
    let Some(mut exchange) = read_request(&stream) else { return };
    let pair = (exchange.path.clone(), exchange.key().to_string());
    let reply = {
        let mut state = shared.state();
        state.served += 1;
        let overlapping = {
            let n = state.in_flight.entry(pair.clone()).or_default();
            *n += 1;
            *n > 1
        };
        let served = state.served;
        let (reply, fresh) = state.responder.respond(&exchange, served, &shared.url);
        exchange.status = reply.status;
        exchange.fresh = fresh;
        if overlapping && !pair.1.is_empty() {
            state.overlaps.push(exchange.clone());
        }
        state.log.push(exchange);
        reply
    };
    std::thread::sleep(reply.delay);
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
    write_reply(stream, reply);
}

/// Writes `reply` (or closes the connection without one).
fn write_reply(mut stream: TcpStream, reply: Reply) {
    if reply.status == 0 {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    let Reply { status, content_type, location, body, .. } = reply;
    let location = location.map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    // The client may have given up already (the timeout tests): ignored.
    let _ = stream.write_all(response.as_bytes()).and_then(|()| stream.flush());
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        401 => "Unauthorized",
        402 => "Payment Required",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    }
}

// ───────────────────────────── the scripted front door ─────────────────────────────

/// Answers the `n`-th request with the `n`-th reply.
struct Script(VecDeque<Reply>);

impl Responder for Script {
    fn respond(&mut self, _request: &Exchange, _served: u64, _url: &str) -> (Reply, bool) {
        (self.0.pop_front().unwrap_or_else(Reply::dropped), false)
    }
}

/// A server that answers one connection per reply, in order, and stops by
/// itself after its last reply or at [`SCRIPT_DEADLINE`], so a test never
/// hangs on it.
pub struct ScriptedServer {
    server: Server<Script>,
}

impl ScriptedServer {
    /// Starts a server that answers one connection per reply, in order.
    pub fn start(replies: Vec<Reply>) -> ScriptedServer {
        let limits = Limits { lifetime: SCRIPT_DEADLINE, max_connections: replies.len() };
        ScriptedServer { server: Server::start(Script(replies.into()), limits) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// Waits for the server to stop (after its last reply, or at the
    /// deadline) and returns the requests it received.
    pub fn finish(self) -> Vec<Exchange> {
        self.server.finish()
    }
}
