//! A tiny HTTP/1.1 server for the adapters' tests: bound to 127.0.0.1 on an
//! ephemeral port, it answers each connection with the next scripted reply,
//! records what it was sent, and stops by itself after its last reply or
//! at a deadline, so a test never hangs on it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a server waits for all its connections before it gives up.
const DEADLINE: Duration = Duration::from_secs(10);

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

impl Reply {
    /// Answers `status` with a JSON `body` (may be empty).
    pub(crate) fn json(status: u16, body: &str) -> Reply {
        Reply { status, body: body.to_string(), delay: Duration::ZERO }
    }

    /// Waits `delay` after reading the request, before answering.
    pub(crate) fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// `POST`
    pub(crate) method: String,
    /// The request target, `/payments`.
    pub(crate) path: String,
    /// The headers, names lowercased, in the order received.
    pub(crate) headers: Vec<(String, String)>,
    /// The body as received.
    pub(crate) body: Vec<u8>,
}

impl Recorded {
    /// The value of the header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }

    /// The value of the form field `name` in an `application/x-www-form-urlencoded` body.
    pub(crate) fn form_field(&self, name: &str) -> Option<String> {
        let body = std::str::from_utf8(&self.body).expect("a form body is ASCII");
        body.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| form_decode(k) == name)
            .map(|(_, v)| form_decode(v))
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

/// A running test server.
pub(crate) struct TestServer {
    url: String,
    handle: JoinHandle<Vec<Recorded>>,
}

impl TestServer {
    /// Starts a server that answers one connection per reply, in order.
    pub(crate) fn start(replies: Vec<Reply>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        listener.set_nonblocking(true).expect("non-blocking listener");
        let handle = std::thread::spawn(move || serve(listener, replies));
        TestServer { url, handle }
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Waits for the server to stop (after its last reply, or at the
    /// deadline) and returns the requests it received.
    pub(crate) fn finish(self) -> Vec<Recorded> {
        self.handle.join().expect("the test server thread panicked")
    }
}

/// A URL on 127.0.0.1 where nothing listens: a port bound and released.
pub(crate) fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    drop(listener);
    url
}

fn serve(listener: TcpListener, replies: Vec<Reply>) -> Vec<Recorded> {
    let deadline = Instant::now() + DEADLINE;
    let mut recorded = Vec::new();
    for reply in replies {
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break Some(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => break None,
            }
        };
        let Some(stream) = stream else { break };
        if let Some(request) = answer(stream, &reply) {
            recorded.push(request);
        }
    }
    recorded
}

/// Reads one request and answers it; `None` if the request was unreadable.
fn answer(stream: TcpStream, reply: &Reply) -> Option<Recorded> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    std::thread::sleep(reply.delay);
    let mut stream = stream;
    let response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        reply.status,
        reason(reply.status),
        reply.body.len(),
        reply.body
    );
    // The client may have given up already (the timeout tests): ignore write errors.
    let _ = stream.write_all(response.as_bytes()).and_then(|()| stream.flush());
    Some(Recorded { method, path, headers, body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        402 => "Payment Required",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}
