//! `ezdelivery serve`: the HTTP API, run as the real binary on a temporary
//! database (SQLite, and PostgreSQL when the testkit has a server), with
//! payments and charges through the test gateway on 127.0.0.1, whose
//! ledger every test that moves money checks.
//!
//! Every wait is bounded and polls; nothing is timed. Unix only: the
//! server is stopped with SIGTERM.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use ezdelivery_http::tokens::sha256_hex;
use ezdelivery_testkit::cli_world::*;
use ezdelivery_testkit::gateway::{Gateway, Mode};
use serde_json::{json, Value};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");
/// How long a test waits for the server to do something.
const DEADLINE: Duration = Duration::from_secs(30);

/// The tokens of every test: (token, role, name).
const TOKENS: [(&str, &str, &str); 9] = [
    ("t-admin", "admin", "ops"),
    ("t-kim", "customer", "kim"),
    ("t-lee", "customer", "lee"),
    ("t-park", "owner", "park"),
    ("t-choi", "owner", "choi"),
    ("t-han", "rider", "han"),
    ("t-seo", "rider", "seo"),
    ("t-moon", "rider", "moon"),
    ("t-one", "rider", "1"),
];

/// Writes the tokens file of [`TOKENS`] (mode 600) into `w`.
fn tokens_file(w: &World) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let text: String = TOKENS
        .iter()
        .map(|(token, role, name)| {
            format!("[[token]]\nsha256 = \"{}\"\nrole = \"{role}\"\nname = \"{name}\"\n", sha256_hex(token))
        })
        .collect();
    let path = w.config("tokens.toml", &text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod the tokens file");
    path
}

/// One answer: status, headers we look at, body (JSON when it is JSON).
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    /// `WWW-Authenticate`.
    authenticate: Option<String>,
    replayed: bool,
    request_id: Option<String>,
    body: Value,
    text: String,
}

/// A running `ezdelivery serve`.
struct Api {
    child: Child,
    base: String,
    agent: ureq::Agent,
    /// Kept so the server's stdout stays open (its reader thread ends with it).
    _stdout: std::sync::Mutex<Receiver<String>>,
}

impl Api {
    /// Starts `serve --listen 127.0.0.1:0` on `w`'s database and waits for
    /// its `listening on` line.
    fn start(w: &World) -> Api {
        Api::start_logging(w, &["-q"], Stdio::inherit())
    }

    /// [`Api::start`] with `flags` before `serve` (`-vv`…) and stderr to `stderr`.
    fn start_logging(w: &World, flags: &[&str], stderr: impl Into<Stdio>) -> Api {
        let tokens = tokens_file(w);
        let serve = ["serve", "--listen", "127.0.0.1:0", "--tokens", tokens.to_str().expect("a UTF-8 path")];
        let mut command = w.command(&[flags, &serve].concat());
        command.stdout(Stdio::piped()).stderr(stderr);
        let mut child = command.spawn().expect("the ezdelivery binary starts");
        let lines = stdout_lines(&mut child);
        let line = lines.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("serve did not say where it listens")
        });
        let base = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line: {line}"));
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(DEADLINE)).build().into();
        Api { child, base: base.to_string(), agent, _stdout: std::sync::Mutex::new(lines) }
    }

    /// A bare TCP connection to the server, for what an HTTP client would
    /// not send (half a head) or would read (answers left unread); reads and
    /// writes give up after [`DEADLINE`].
    fn raw_connection(&self) -> std::net::TcpStream {
        let stream = std::net::TcpStream::connect(self.base.trim_start_matches("http://")).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("a read timeout");
        stream.set_write_timeout(Some(DEADLINE)).expect("a write timeout");
        stream
    }

    /// The status line of `request` (head and body, as sent) on a
    /// connection of its own that it closes.
    fn raw_status(&self, request: &[u8]) -> String {
        use std::io::{Read, Write};
        let mut stream = self.raw_connection();
        stream.write_all(request).expect("a request");
        let mut text = Vec::new();
        let _ = stream.read_to_end(&mut text);
        String::from_utf8_lossy(&text).lines().next().unwrap_or_default().to_string()
    }

    /// `method path` as `token` (none: no header), with `body` and `headers`.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let payload = body.map(Value::to_string).unwrap_or_default();
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        let request = request.body(payload).expect("a well-formed request");
        let mut response = self.agent.run(request).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after");
        let authenticate = header("www-authenticate");
        let replayed = header("idempotent-replayed").is_some();
        let request_id = header("x-request-id");
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status: response.status().as_u16(),
            content_type,
            retry_after,
            authenticate,
            replayed,
            request_id,
            body,
            text,
        }
    }

    fn get(&self, path: &str, token: &str) -> Answer {
        self.call("GET", path, Some(token), None, &[])
    }

    fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call("POST", path, Some(token), Some(&body), &[])
    }

    /// `POST path` that must answer `status`; returns the body.
    fn ok(&self, path: &str, token: &str, body: Value, status: u16) -> Value {
        let a = self.post(path, token, body);
        assert_eq!(a.status, status, "POST {path} as {token}: {}", a.text);
        a.body
    }

    /// Sends SIGTERM and waits for the exit code.
    fn stop(mut self) -> Option<i32> {
        terminate(&self.child);
        wait_bounded(&mut self.child, DEADLINE, "serve after SIGTERM").code()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    let status =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill -TERM failed");
}

/// Store 교촌치킨 of park with 후라이드 18,000, rider han; (store, menu).
fn shop(api: &Api) -> (i64, i64) {
    let store = api.ok("/stores", "t-park", json!({"name": "교촌치킨", "address": "서울"}), 201);
    assert_eq!(store["owner"], "park", "an owner registers their own store: {store}");
    let store = id(&store);
    let menu =
        id(&api.ok(&format!("/stores/{store}/menus"), "t-park", json!({"name": "후라이드", "price": 18000}), 201));
    api.ok("/riders", "t-admin", json!({"name": "han"}), 201);
    (store, menu)
}

fn new_order(store: i64, menu: i64, pay: bool) -> Value {
    json!({"store_id": store, "items": [{"menu": menu, "qty": 2}], "address": "역삼동", "pay": pay})
}

/// Polls `look` until it gives a value (bounded by [`DEADLINE`]).
fn wait_for<T>(mut look: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = look() {
            return found;
        }
        assert!(Instant::now() < until, "not within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One order through every step over HTTP, another cancelled; every view
/// is the CLI's; the ledger holds.
fn lifecycle(w: &World, gw: &Gateway) {
    let api = Api::start(w);
    let (store, menu) = shop(&api);
    let placed = api.ok("/orders", "t-kim", new_order(store, menu, true), 201);
    let order = order_id(&placed);
    assert_eq!((placed["status"].as_str(), placed["total"].as_i64()), (Some("paid"), Some(36_000)), "{placed}");
    let inbox = api.get(&format!("/stores/{store}/orders"), "t-park");
    assert_eq!(inbox.body["orders"][0]["order_id"], order, "{}", inbox.text);
    for (path, token, status) in [("cook/start", "t-park", "cooking"), ("cook/finish", "t-park", "cooked")] {
        let view = api.ok(&format!("/orders/{order}/{path}"), token, json!({}), 200);
        assert_eq!(view["status"], status, "{path}: {view}");
    }
    // A rider names themself by id too, as a JSON number; not another rider.
    let seo = id(&api.ok("/riders", "t-seo", json!({}), 201));
    let han = w.ok(&["rider", "list"])["riders"]
        .as_array()
        .and_then(|riders| riders.iter().find(|r| r["name"] == "han").map(id))
        .expect("han is a rider");
    let as_seo = api.post(&format!("/orders/{order}/delivery/start"), "t-han", json!({"rider": seo}));
    assert_eq!(as_seo.status, 403, "{}", as_seo.text);
    let view = api.ok(&format!("/orders/{order}/delivery/start"), "t-han", json!({"rider": han}), 200);
    assert_eq!((&view["status"], &view["delivery"]["rider"]), (&json!("delivering"), &json!("han")), "{view}");
    let view = api.ok(&format!("/orders/{order}/delivery/complete"), "t-han", json!({}), 200);
    assert_eq!(view["status"], "delivered", "{view}");
    let review = api.ok(&format!("/orders/{order}/review"), "t-kim", json!({"score": 5, "text": "맛있어요"}), 201);
    assert_eq!((review["order_id"].as_i64(), review["score"].as_i64()), (Some(order), Some(5)), "{review}");

    let second = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, true), 201));
    let cancelled = api.ok(&format!("/orders/{second}/cancel"), "t-kim", json!({"reason": "늦어요"}), 200);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    let mine = api.get("/customers/kim/orders", "t-kim");
    let ids: Vec<i64> = mine.body["orders"].as_array().expect("orders").iter().map(order_id).collect();
    assert_eq!(ids.len(), 2, "{}", mine.text);
    // On PostgreSQL the log is read behind every transaction still open on
    // the server (other tests' too): the last events show once those end.
    let types = wait_for(|| {
        let events = api.get(&format!("/events?order={order}"), "t-kim");
        let types: Vec<String> = events.body["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["type"].as_str().map(str::to_string))
            .collect();
        let done = types.iter().any(|t| t == "ReviewRegistered");
        done.then_some(types)
    });
    assert_eq!(types.first().map(String::as_str), Some("OrderPlaced"), "{types:?}");
    assert!(types.iter().any(|t| t == "DeliveryCompleted"), "{types:?}");

    // The same JSON as the CLI's `status --json`.
    let over_http = api.get(&format!("/orders/{order}"), "t-kim").body;
    assert_eq!(over_http, w.status(order), "GET /orders/{order} is `status {order} --json`");
    assert_eq!(api.stop(), Some(0), "serve exits 0 on SIGTERM");
    assert_ledger(w, gw, &[order, second]);
}

#[test]
fn an_order_goes_through_its_whole_lifecycle_over_http_on_sqlite() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    lifecycle(&w, &gw);
}

#[test]
fn an_order_goes_through_its_whole_lifecycle_over_http_on_postgres() {
    let Some(pg) = ezdelivery_testkit::postgres::server() else { return };
    let gw = Gateway::start(Mode::Up);
    let w = World::on_postgres(BIN, &gateways(gw.url()), pg, &pg.fresh_database());
    lifecycle(&w, &gw);
}

/// Every role against every endpoint, on its own and on another's
/// resources: allowed is anything but 401 and 403 (the state machine may
/// still refuse), refused is 403, and no token (or two) is 401 everywhere.
#[test]
fn each_role_reaches_its_own_resources_only() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    let other_store = id(&api.ok("/stores", "t-choi", json!({"name": "BBQ"}), 201));
    api.ok("/riders", "t-seo", json!({}), 201);
    // kim's order, accepted by park: its delivery is prepared with a rider.
    let order = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, true), 201));
    let view = api.ok(&format!("/orders/{order}/cook/start"), "t-park", json!({}), 200);
    let rider = view["delivery"]["rider"].as_str().expect("a rider was assigned").to_string();
    let (assigned, other_rider) = if rider == "han" { ("t-han", "t-seo") } else { ("t-seo", "t-han") };
    // kim's order not paid: the store does not see it yet.
    let unpaid = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, false), 201));
    let u = format!("/orders/{unpaid}");

    let all = ["t-admin", "t-kim", "t-lee", "t-park", "t-choi", "t-han", "t-seo", "t-moon"];
    let o = format!("/orders/{order}");
    // (method, path, body, who may)
    let matrix: Vec<(&str, String, Value, Vec<&str>)> = vec![
        ("GET", "/stores".into(), json!(null), all.to_vec()),
        ("GET", format!("/menus?store={store}"), json!(null), all.to_vec()),
        ("GET", format!("/stores/{store}/orders"), json!(null), vec!["t-admin", "t-park"]),
        ("GET", format!("/stores/{other_store}/orders"), json!(null), vec!["t-admin", "t-choi"]),
        ("POST", format!("/stores/{store}/menus"), json!({"name": "양념", "price": 19000}), vec!["t-admin", "t-park"]),
        ("POST", format!("/menus/{menu}/soldout"), json!(null), vec!["t-admin", "t-park"]),
        ("POST", format!("/menus/{menu}/available"), json!(null), vec!["t-admin", "t-park"]),
        ("POST", format!("/stores/{store}/close"), json!(null), vec!["t-admin", "t-park"]),
        ("POST", format!("/stores/{store}/open"), json!(null), vec!["t-admin", "t-park"]),
        ("POST", "/stores".into(), json!({"name": "new", "owner": "park"}), vec!["t-admin", "t-park"]),
        ("POST", "/riders".into(), json!({"name": "moon"}), vec!["t-admin", "t-moon"]),
        (
            "POST",
            "/orders".into(),
            json!({"store_id": store, "customer": "kim", "items": [{"menu": menu}]}),
            vec!["t-admin", "t-kim"],
        ),
        ("GET", "/customers/kim/orders".into(), json!(null), vec!["t-admin", "t-kim"]),
        ("GET", o.clone(), json!(null), vec!["t-admin", "t-kim", "t-park", assigned]),
        ("GET", format!("{o}/events"), json!(null), vec!["t-admin", "t-kim", "t-park", assigned]),
        ("GET", format!("/events?order={order}"), json!(null), vec!["t-admin", "t-kim", "t-park", assigned]),
        ("GET", "/events".into(), json!(null), vec!["t-admin"]),
        ("GET", "/metrics".into(), json!(null), vec!["t-admin"]),
        ("GET", u.clone(), json!(null), vec!["t-admin", "t-kim"]),
        ("GET", format!("{u}/events"), json!(null), vec!["t-admin", "t-kim"]),
        ("GET", format!("/events?order={unpaid}"), json!(null), vec!["t-admin", "t-kim"]),
        ("POST", format!("{u}/cook/start"), json!(null), vec!["t-admin"]),
        ("POST", format!("{u}/cancel"), json!({}), vec!["t-admin", "t-kim"]),
        ("POST", format!("{o}/payments"), json!({}), vec!["t-admin", "t-kim"]),
        ("POST", format!("{o}/cook/finish"), json!(null), vec!["t-admin", "t-park"]),
        ("POST", format!("{o}/delivery/complete"), json!(null), vec!["t-admin", assigned]),
        ("POST", format!("{o}/review"), json!({"score": 4}), vec!["t-admin", "t-kim"]),
        ("POST", format!("{o}/cook/reject"), json!({"reason": "x"}), vec!["t-admin", "t-park"]),
        ("POST", format!("{o}/cancel"), json!({}), vec!["t-admin", "t-kim", "t-park"]),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, allowed) in &matrix {
        let body = if body.is_null() { None } else { Some(body) };
        let anonymous = api.call(method, path, None, body, &[]);
        if anonymous.status != 401 || !anonymous.content_type.starts_with("application/problem+json") {
            wrong.push(format!("{method} {path} without a token: {} {}", anonymous.status, anonymous.text));
        }
        let forged = api.call(method, path, Some("not-a-token"), body, &[]);
        if forged.status != 401 {
            wrong.push(format!("{method} {path} with an unknown token: {}", forged.status));
        }
        // two credentials, even both valid: which one is meant is not guessed
        let doubled = api.call(method, path, Some("t-admin"), body, &[("Authorization", "Bearer t-kim")]);
        if doubled.status != 401 || !doubled.text.contains("two Authorization headers") {
            wrong.push(format!("{method} {path} with two tokens: {}", doubled.status));
        }
        for token in all {
            let a = api.call(method, path, Some(token), body, &[]);
            let may = allowed.contains(&token);
            let ok = if may { a.status != 401 && a.status != 403 } else { a.status == 403 };
            if !ok {
                wrong.push(format!("{method} {path} as {token} (allowed: {may}): {} {}", a.status, a.text));
            }
        }
    }
    // A rider other than the assigned one may not start this delivery.
    let a = api.post(&format!("{o}/delivery/start"), other_rider, json!({}));
    if a.status != 403 {
        wrong.push(format!("delivery/start as the other rider: {} {}", a.status, a.text));
    }
    // A missing order is 404 for anyone.
    for token in all {
        let a = api.get("/orders/999999", token);
        if a.status != 404 {
            wrong.push(format!("GET /orders/999999 as {token}: {}", a.status));
        }
    }
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
    let orders = w.order_ids();
    drop(api);
    assert_ledger(&w, &gw, &orders);
}

/// Eight copies of one paid order at once with one key: one order, one
/// approval at the gateway, eight identical answers; the key with another
/// body is 422; the key holds across a restart.
#[test]
fn eight_copies_of_one_request_place_one_order_and_charge_once() {
    let gw = Gateway::start(Mode::Up);
    gw.set_latency(20, 60, 3);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    let body = new_order(store, menu, true);
    let key = [("Idempotency-Key", "order-kim-1")];
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let calls: Vec<_> =
            (0..8).map(|_| s.spawn(|| api.call("POST", "/orders", Some("t-kim"), Some(&body), &key))).collect();
        calls.into_iter().map(|c| c.join().expect("a request thread")).collect()
    });
    let first = &answers[0];
    assert_eq!(first.status, 201, "{}", first.text);
    for a in &answers {
        assert_eq!((a.status, &a.body), (first.status, &first.body), "every copy gets the first answer");
    }
    assert!(answers.iter().filter(|a| a.replayed).count() >= 1, "copies are replays");
    let order = order_id(&first.body);
    assert_eq!(w.order_ids(), vec![order], "one order");
    assert_eq!(approvals(&gw, order).len(), 1, "one approval request at the gateway");

    let other = api.call("POST", "/orders", Some("t-kim"), Some(&new_order(store, menu, false)), &key);
    assert_eq!(other.status, 422, "{}", other.text);
    assert!(other.content_type.starts_with("application/problem+json"));
    // Another caller's key of the same name is theirs, not kim's.
    let admin = json!({"store_id": store, "customer": "lee", "items": [{"menu": menu}]});
    assert_eq!(api.call("POST", "/orders", Some("t-admin"), Some(&admin), &key).status, 201);
    // Keys that cannot be told apart are refused, and place nothing.
    for bad in [&[("Idempotency-Key", "order kim 2")][..], &[("Idempotency-Key", "a"), ("Idempotency-Key", "b")]] {
        let refused = api.call("POST", "/orders", Some("t-kim"), Some(&body), bad);
        assert_eq!((refused.status, &refused.body["kind"]), (400, &json!("invalid_input")), "{}", refused.text);
    }
    assert_eq!(w.order_ids().len(), 2, "the first order and admin's");
    assert_eq!(api.stop(), Some(0));

    let api = Api::start(&w);
    let again = api.call("POST", "/orders", Some("t-kim"), Some(&body), &key);
    assert_eq!((again.status, &again.body, again.replayed), (201, &first.body, true), "kept across a restart");
    let orders = w.order_ids();
    assert_eq!(orders.len(), 2);
    drop(api);
    assert_ledger(&w, &gw, &orders);
}

/// Two bodies are one request's only when their bytes are the same: a body
/// whose bytes are not UTF-8 is not taken for one that reads the same once
/// they are replaced (U+FFFD), but is another body (422).
#[test]
fn a_key_with_another_body_of_bytes_that_are_not_utf8_is_422() {
    let w = World::new(BIN, "");
    let api = Api::start(&w);
    let rider = |body: &[u8]| {
        let head = format!(
            "POST /riders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t-admin\r\nIdempotency-Key: utf-1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        api.raw_status(&[head.as_bytes(), body].concat())
    };
    assert_eq!(rider("{\"name\":\"x\u{fffd}\"}".as_bytes()), "HTTP/1.1 201 Created");
    assert_eq!(rider(b"{\"name\":\"x\xff\"}"), "HTTP/1.1 422 Unprocessable Entity");
    assert_eq!(rider("{\"name\":\"x\u{fffd}\"}".as_bytes()), "HTTP/1.1 201 Created", "the first body replayed");
}

/// The same eight copies sent to two servers on one PostgreSQL database:
/// the key is in the database, so still one order and one approval.
#[test]
fn one_key_holds_across_two_servers_on_postgres() {
    let Some(pg) = ezdelivery_testkit::postgres::server() else { return };
    let gw = Gateway::start(Mode::Up);
    gw.set_latency(20, 60, 5);
    let w = World::on_postgres(BIN, &gateways(gw.url()), pg, &pg.fresh_database());
    let (one, two) = (Api::start(&w), Api::start(&w));
    let (store, menu) = shop(&one);
    let body = new_order(store, menu, true);
    let key = [("Idempotency-Key", "two-servers")];
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let api = if i % 2 == 0 { &one } else { &two };
                let body = &body;
                s.spawn(move || api.call("POST", "/orders", Some("t-kim"), Some(body), &key))
            })
            .collect();
        calls.into_iter().map(|c| c.join().expect("a request thread")).collect()
    });
    assert_eq!(answers[0].status, 201, "{}", answers[0].text);
    assert!(answers.iter().all(|a| (a.status, &a.body) == (201, &answers[0].body)), "{answers:#?}");
    let order = order_id(&answers[0].body);
    assert_eq!(w.order_ids(), vec![order], "one order");
    assert_eq!(approvals(&gw, order).len(), 1, "one approval request at the gateway");
    drop((one, two));
    assert_ledger(&w, &gw, &[order]);
}

/// `-vv` logs each request with its id, but never a token, an
/// `Authorization` header, an idempotency key or a card number (not even
/// one sent as a JSON number, which the 400 does not repeat either), nor
/// the names and addresses in bodies (messages go to a file here, not to
/// the console on stderr).
#[test]
fn the_log_has_request_ids_and_no_secrets() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let messages = w.path("messages.jsonl");
    let notify = format!("[[notify]]\nkind = \"jsonl\"\npath = \"{}\"\n", messages.display());
    w.config("ezdelivery.toml", &format!("{}{notify}", gateways(gw.url()))); // the world's own config file
    let log = w.path("serve.log");
    let api = Api::start_logging(&w, &["-vv"], std::fs::File::create(&log).expect("the log file"));
    let (store, menu) = shop(&api);
    let card = "4111222233334444";
    let body = json!({"store_id": store, "items": [{"menu": menu}], "pay": true, "card": card, "address": "역삼동 1"});
    let placed = api.call("POST", "/orders", Some("t-kim"), Some(&body), &[("x-request-id", "trace-me-42")]);
    assert_eq!(placed.status, 201, "{}", placed.text);
    let as_number = json!({"store_id": store, "items": [{"menu": menu}], "pay": true, "card": 4111222233334444u64});
    let key = [("Idempotency-Key", "secret-key-77")];
    let refused = api.call("POST", "/orders", Some("t-kim"), Some(&as_number), &key);
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(!refused.text.contains("33334444"), "the card is not repeated back: {}", refused.text);
    assert_eq!(placed.body["payment"]["card"].as_str().map(|c| c.ends_with("4444") && !c.contains(card)), Some(true));
    // A path is logged as its route, never as sent: a customer's name is
    // in some, and a client may put one where an id goes. (Nor is the
    // caller of an idempotency key named, at -vv.)
    let paths = [
        ("GET", "/customers/kim/orders", 200),
        ("GET", "/customers/kim/order", 404),
        ("GET", "/orders/kim", 400),
        ("DELETE", "/orders/kim", 405),
        ("GET", "/stores/kim/orders", 400),
    ];
    for (method, path, status) in paths {
        assert_eq!(api.call(method, path, Some("t-kim"), None, &[]).status, status, "{method} {path}");
    }
    assert_eq!(api.stop(), Some(0));
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(text.contains("trace-me-42"), "the request id is in the log:\n{text}");
    for path in ["path=/customers/{name}/orders}", "path=unmatched}", "path=/orders/{id}}", "path=/stores/{id}/orders}"]
    {
        assert!(text.contains(path), "{path} is in the log:\n{text}");
    }
    assert!(!text.contains("kim"), "a customer's name is in the log:\n{text}");
    for secret in
        ["t-kim", "t-park", "t-admin", "Bearer", card, "33334444", "secret-key-77", "교촌치킨", "후라이드", "역삼동"]
    {
        assert!(!text.contains(secret), "{secret} is in the log:\n{text}");
    }
    assert_ledger(&w, &gw, &[order_id(&placed.body)]);
}

/// A storage failure's words (a file's path, a database's address) go to
/// the server's log, without `-v` too, and not to the caller, who is told
/// only that the log has them. The failure: every byte of the database
/// file overwritten while the server has it open.
#[test]
fn a_storage_failure_is_logged_and_not_told_to_the_caller() {
    let w = World::new(BIN, "");
    // Written by a command, which leaves it all in the file as it exits:
    // the server reads the file's pages, not copies it keeps.
    w.ok(&["store", "add", "--name", "교촌치킨"]);
    let log = w.path("serve.log");
    let api = Api::start_logging(&w, &[], std::fs::File::create(&log).expect("the log file"));
    assert_eq!(api.call("GET", "/healthz", None, None, &[]).status, 200);
    let size = std::fs::metadata(&w.db).expect("the database file").len();
    std::fs::write(&w.db, vec![0xff; usize::try_from(size).expect("a small file")]).expect("overwrite the database");
    let health = api.call("GET", "/healthz", None, None, &[]);
    let stores = api.get("/stores", "t-admin");
    for (answer, status) in [(&health, 503), (&stores, 500)] {
        assert_eq!(answer.status, status, "{}", answer.text);
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("log says why") && !detail.contains("malformed"), "{}", answer.text);
    }
    drop(api);
    let text = std::fs::read_to_string(&log).expect("the log");
    assert_eq!(text.matches("malformed").count(), 2, "each cause is in the log once:\n{text}");
    let id = stores.request_id.as_deref().expect("the answer's x-request-id");
    assert!(text.lines().any(|l| l.contains(id) && l.contains("malformed")), "with the request's id:\n{text}");
    assert!(!text.contains("request{"), "no request spans without -v:\n{text}");
}

/// Opens the SSE stream at `path` as `token` (after `last_id` when given):
/// its frames as (id, data) pairs, the sender dropped when the stream ends.
fn open_stream(api: &Api, path: &str, token: &str, last_id: Option<i64>) -> std::sync::mpsc::Receiver<(i64, Value)> {
    let url = format!("{}{path}", api.base);
    let mut request =
        api.agent.get(&url).header("Authorization", format!("Bearer {token}")).header("Accept", "text/event-stream");
    let last = last_id.map(|id| id.to_string());
    if let Some(last) = &last {
        request = request.header("Last-Event-ID", last);
    }
    let response = request.call().expect("the stream opens");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let reader = BufReader::new(response.into_body().into_reader());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut id, mut data) = (None, String::new());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse::<i64>().ok();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if line.is_empty() {
                if let Some(id) = id.take() {
                    let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    if tx.send((id, value)).is_err() {
                        break;
                    }
                }
                data.clear();
            }
        }
    });
    rx
}

/// Reads SSE frames from `path` as `token` (after `last_id` when given)
/// until `want` frames came or the deadline; returns (id, data) pairs.
fn read_stream(api: &Api, path: &str, token: &str, last_id: Option<i64>, want: usize) -> Vec<(i64, Value)> {
    let rx = open_stream(api, path, token, last_id);
    let until = Instant::now() + DEADLINE;
    let mut frames = Vec::new();
    while frames.len() < want {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(frame) => frames.push(frame),
            Err(_) => panic!("{path}: {} of {want} events came: {frames:?}", frames.len()),
        }
    }
    frames
}

/// A customer tracks an order live, drops the connection, and resumes with
/// `Last-Event-ID`: every event of the order comes exactly once, in order.
#[test]
fn live_tracking_delivers_every_event_once_across_a_reconnect() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    let order = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, true), 201));
    let path = format!("/orders/{order}/events");
    let before = api.get(&path, "t-kim").body["events"].as_array().expect("events").len();
    assert!(before >= 2, "placed and paid");
    let first = read_stream(&api, &path, "t-kim", None, before);
    // Gone; meanwhile the order moves on.
    for (step, token) in [
        ("cook/start", "t-park"),
        ("cook/finish", "t-park"),
        ("delivery/start", "t-han"),
        ("delivery/complete", "t-han"),
    ] {
        api.ok(&format!("/orders/{order}/{step}"), token, json!({}), 200);
    }
    let all = api.get(&path, "t-kim").body["events"].as_array().expect("events").clone();
    let last_seen = first.last().expect("events").0;
    let rest = read_stream(&api, &path, "t-kim", Some(last_seen), all.len() - first.len());
    let streamed: Vec<i64> = first.iter().chain(rest.iter()).map(|(id, _)| *id).collect();
    let logged: Vec<i64> = all.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(streamed, logged, "each event once, in commit order");
    let unique: BTreeSet<i64> = streamed.iter().copied().collect();
    assert_eq!(unique.len(), streamed.len(), "no event twice");
    let (_, last) = rest.last().expect("events");
    assert_eq!(last["specversion"], "1.0", "CloudEvents: {last}");
    assert_eq!(last["subject"], order.to_string());
    // The whole log, for admin, resumes the same way.
    let everything = read_stream(&api, "/events", "t-admin", Some(logged[0]), 2);
    assert!(everything.iter().all(|(id, _)| *id > logged[0]), "{everything:?}");
    drop(api);
    assert_ledger(&w, &gw, &[order]);
}

/// A paid order of kim at a new store of park, cooked while no rider was
/// registered: its delivery waits for one.
fn cooked_before_any_rider(api: &Api) -> i64 {
    let store = id(&api.ok("/stores", "t-park", json!({"name": "교촌치킨"}), 201));
    let menu =
        id(&api.ok(&format!("/stores/{store}/menus"), "t-park", json!({"name": "후라이드", "price": 18000}), 201));
    let order = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, true), 201));
    for path in ["cook/start", "cook/finish"] {
        api.ok(&format!("/orders/{order}/{path}"), "t-park", json!({}), 200);
    }
    order
}

/// A stream asks again whether its caller may see the order, and ends
/// once it may not: seo, a rider, may follow a delivery nobody has taken;
/// han takes it, and seo's stream ends without its later events (they
/// went on to seo, who was refused the order itself), and a reconnection
/// is refused.
#[test]
fn a_stream_ends_once_its_caller_may_no_longer_see_the_order() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let order = cooked_before_any_rider(&api);
    // No rider when cooking started: the delivery waits for one, any rider may see it.
    let han = id(&api.ok("/riders", "t-han", json!({}), 201));
    api.ok("/riders", "t-seo", json!({}), 201);
    let path = format!("/orders/{order}/events");
    let logged = api.get(&path, "t-seo").body["events"].as_array().expect("seo may read them").len();
    let seo = open_stream(&api, &path, "t-seo", None);
    for _ in 0..logged {
        seo.recv_timeout(DEADLINE).expect("the events so far");
    }
    api.ok(&format!("/orders/{order}/delivery/start"), "t-han", json!({"rider": han}), 200);
    api.ok(&format!("/orders/{order}/delivery/complete"), "t-han", json!({}), 200);
    assert_eq!(api.get(&format!("/orders/{order}"), "t-seo").status, 403, "han's delivery now");
    match seo.recv_timeout(DEADLINE) {
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
        other => panic!("seo's stream must end with nothing more, got {other:?}"),
    }
    assert_eq!(api.get(&path, "t-seo").status, 403, "and cannot be opened again");
    drop(api);
    assert_ledger(&w, &gw, &[order]);
}

/// A rider whose name is a number departs as themself, not as the rider
/// with that id, and names themself by id only with their own.
#[test]
fn a_rider_named_by_a_number_is_that_rider_not_the_one_with_that_id() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let order = cooked_before_any_rider(&api);
    // No rider yet, so the delivery waits for one; one not registered is
    // told how to become one.
    let path = format!("/orders/{order}/delivery/start");
    let unregistered = api.post(&path, "t-han", json!({}));
    assert_eq!(unregistered.status, 403, "{}", unregistered.text);
    assert!(unregistered.body["detail"].as_str().is_some_and(|d| d.contains("POST /riders")), "{}", unregistered.text);
    let han = id(&api.ok("/riders", "t-han", json!({}), 201));
    let one = id(&api.ok("/riders", "t-one", json!({}), 201));
    assert_eq!(han.to_string(), "1", "han's id is the other rider's name");
    for (body, what) in [(json!({"rider": han}), "han's id"), (json!({"rider": "han"}), "han's name")] {
        let refused = api.post(&path, "t-one", body);
        assert_eq!(refused.status, 403, "rider \"1\" giving {what}: {}", refused.text);
    }
    let below_one = api.post(&path, "t-one", json!({"rider": 0}));
    assert_eq!((below_one.status, &below_one.body["kind"]), (400, &json!("invalid_input")), "{}", below_one.text);
    let view = api.ok(&path, "t-one", json!({"rider": one}), 200);
    assert_eq!((&view["status"], &view["delivery"]["rider"]), (&json!("delivering"), &json!("1")), "{view}");
    drop(api);
    assert_ledger(&w, &gw, &[order]);
}

/// JSON tells a number from a string: in a body, a menu or rider named
/// "1" is picked by the string, the one with id 1 by the number (the CLI,
/// which has only text, tries an id first).
#[test]
fn in_a_body_a_string_is_a_name_and_a_number_an_id() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    assert_eq!(menu, 1, "후라이드 is menu 1");
    let named_one = id(&api.ok(&format!("/stores/{store}/menus"), "t-park", json!({"name": "1", "price": 777}), 201));
    let rider_one = id(&api.ok("/riders", "t-admin", json!({"name": "1"}), 201));
    assert_ne!(rider_one, 1, "han is rider 1");
    let mut orders = Vec::new();
    for (item, menu_id, rider, rider_name) in
        [(json!("1"), named_one, json!("1"), "1"), (json!(1), menu, json!(1), "han")]
    {
        let view = api.ok("/orders", "t-kim", json!({"store_id": store, "items": [{"menu": item}], "pay": true}), 201);
        assert_eq!(view["items"][0]["menu_id"], json!(menu_id), "menu {item}: {view}");
        let order = order_id(&view);
        orders.push(order);
        api.ok(&format!("/orders/{order}/cook/start"), "t-park", json!({}), 200);
        api.ok(&format!("/orders/{order}/cook/finish"), "t-park", json!({}), 200);
        let path = format!("/orders/{order}/delivery/start");
        if rider == json!(1) {
            let nobody = api.post(&path, "t-admin", json!({"rider": 99}));
            assert_eq!((nobody.status, &nobody.body["kind"]), (404, &json!("not_found")), "{}", nobody.text);
        }
        let view = api.ok(&path, "t-admin", json!({"rider": rider}), 200);
        assert_eq!(view["delivery"]["rider"], json!(rider_name), "rider {rider}: {view}");
    }
    drop(api);
    assert_ledger(&w, &gw, &orders);
}

/// Errors are problem+json with `kind` and SPEC's status; a payment
/// gateway that is down is 503 with Retry-After, the order kept, and its
/// replay is that answer, Retry-After too.
#[test]
fn errors_are_problem_json_with_the_kind_and_status_of_spec() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    let problem = |a: &Answer, status: u16, kind: &str| {
        assert_eq!(a.status, status, "{}", a.text);
        assert!(a.content_type.starts_with("application/problem+json"), "{}", a.content_type);
        assert_eq!(a.body["kind"], kind, "{}", a.text);
        assert_eq!(a.body["status"], status);
        assert!(a.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    };
    problem(&api.get("/orders/424242", "t-admin"), 404, "not_found");
    problem(&api.get("/orders/abc", "t-admin"), 400, "invalid_input");
    problem(&api.post("/orders", "t-kim", json!({"store_id": store})), 400, "invalid_input");
    problem(
        &api.post("/orders", "t-kim", json!({"store_id": store, "items": [{"menu": menu, "qty": 0}]})),
        400,
        "invalid_input",
    );
    problem(
        &api.post(&format!("/stores/{store}/menus"), "t-park", json!({"name": "x", "price": -1})),
        400,
        "invalid_input",
    );
    let huge = json!({"name": "x".repeat(200_000)});
    problem(&api.post("/riders", "t-admin", huge), 413, "invalid_input");
    problem(&api.call("GET", "/nowhere", Some("t-admin"), None, &[]), 404, "not_found");

    let unpaid = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, false), 201));
    problem(&api.post(&format!("/orders/{unpaid}/cook/start"), "t-admin", json!({})), 409, "invalid_state");
    problem(&api.post(&format!("/orders/{unpaid}/cook/start"), "t-park", json!({})), 403, "forbidden");

    gw.set_mode(Mode::Declining);
    let declined = api.post(&format!("/orders/{unpaid}/payments"), "t-kim", json!({"card": "4000000000000002"}));
    problem(&declined, 402, "declined");
    assert_eq!(declined.body["order_id"], unpaid);

    gw.set_mode(Mode::Failing(503));
    let key = [("Idempotency-Key", "kim-down-1")];
    let down = api.call("POST", "/orders", Some("t-kim"), Some(&new_order(store, menu, true)), &key);
    problem(&down, 503, "unavailable");
    assert_eq!(down.retry_after.as_deref(), Some("1"), "503 says when to come back");
    let again = api.call("POST", "/orders", Some("t-kim"), Some(&new_order(store, menu, true)), &key);
    problem(&again, 503, "unavailable");
    assert_eq!((again.replayed, again.retry_after.as_deref()), (true, Some("1")), "the first answer again");
    assert_eq!(again.body, down.body);
    let kept = down.body["order_id"].as_i64().expect("the kept order's id");
    assert_eq!(api.get(&format!("/orders/{kept}"), "t-kim").body["status"], "pending_payment");
    gw.set_mode(Mode::Up);
    drop(api);
    assert_ledger(&w, &gw, &[unpaid, kept]);
}

/// The server's own endpoints: /healthz and /openapi.json without a token,
/// /metrics for admin in Prometheus text.
#[test]
fn health_openapi_and_metrics() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let health = api.call("GET", "/healthz", None, None, &[]);
    assert_eq!((health.status, &health.body), (200, &json!({"status": "ok"})));
    let doc = api.call("GET", "/openapi.json", None, None, &[]);
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc.body["openapi"]);
    for path in ["/orders", "/orders/{id}", "/stores/{id}/menus", "/events", "/orders/{id}/events", "/healthz"] {
        assert!(doc.body["paths"][path].is_object(), "{path} is documented");
    }
    // the ranges the document states are the ones the engine checks
    use ezdelivery_core::domain::validate::{MAX_PRICE, MAX_QTY};
    let schemas = &doc.body["components"]["schemas"];
    for (schema, field, min, max) in [
        ("NewMenu", "price", 1, MAX_PRICE),
        ("NewStore", "delivery_charge", 0, MAX_PRICE),
        ("ItemBody", "qty", 1, i64::from(MAX_QTY)),
        ("ReviewBody", "score", 1, 5),
        ("ReviewJson", "score", 1, 5),
        ("ReviewView", "score", 1, 5),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(
            (property["minimum"].as_i64(), property["maximum"].as_i64()),
            (Some(min), Some(max)),
            "{schema}.{field}"
        );
    }
    let (store, menu) = shop(&api);
    let order = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, true), 201));
    let metrics = api.get("/metrics", "t-admin");
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("text/plain"), "{}", metrics.content_type);
    for line in [
        "ezdelivery_orders{status=\"paid\"} 1",
        "ezdelivery_breaker_state{name=\"payment\",state=\"closed\"} 1",
        "ezdelivery_outbox_depth{queue=\"payments\"} 0",
        "ezdelivery_outbox_depth{queue=\"other_gateways\"} 0",
        "ezdelivery_gateway_call_seconds_count{gateway=\"payment\",call=\"approve\",outcome=\"approved\"} 1",
    ] {
        assert!(metrics.text.lines().any(|l| l == line), "{line} in:\n{}", metrics.text);
    }
    assert!(metrics
        .text
        .contains("ezdelivery_http_request_seconds_count{method=\"POST\",route=\"/orders\",status=\"201\"} 1"));
    drop(api);
    assert_ledger(&w, &gw, &[order]);
}

/// A tokens file others than its owner may read (its group too) is refused (exit 2, nothing served), as
/// is a missing one.
#[test]
fn serve_refuses_a_tokens_file_others_may_read() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::without_config(BIN);
    let tokens = tokens_file(&w);
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let r = w.run(&["serve", "--listen", "127.0.0.1:0", "--tokens", tokens.to_str().expect("UTF-8")]);
    assert_eq!(r.code, Some(2), "{}", r.describe("serve"));
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    let r = w.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(r.code, Some(2), "{}", r.describe("serve"));
    assert!(r.stderr.contains("--tokens"), "{}", r.stderr);
}

/// SIGTERM while a paid order waits on a slow gateway: the request is
/// answered (201, paid once) before the server exits 0.
#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    gw.set_latency(700, 900, 1);
    let before = gw.count();
    let answer = std::thread::scope(|s| {
        let request = s.spawn(|| api.post("/orders", "t-kim", new_order(store, menu, true)));
        let until = Instant::now() + DEADLINE;
        while gw.count() == before {
            assert!(Instant::now() < until, "the payment never reached the gateway");
            std::thread::sleep(Duration::from_millis(5));
        }
        terminate(&api.child);
        request.join().expect("the request thread")
    });
    assert_eq!(answer.status, 201, "{}", answer.text);
    let mut api = api;
    let status = wait_bounded(&mut api.child, DEADLINE, "serve after SIGTERM");
    assert_eq!(status.code(), Some(0));
    gw.set_latency(0, 0, 1);
    drop(api);
    assert_ledger(&w, &gw, &[order_id(&answer.body)]);
}

/// SIGTERM after a keyed order was answered 503 by the request timeout
/// while its payment still waited on the gateway: the server finishes it
/// and keeps its answer before it exits, so after a restart the same key
/// gets the order (201, replayed), not a key stuck in flight.
#[test]
fn sigterm_keeps_the_answer_of_a_keyed_request_that_timed_out() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &format!("{}[serve]\ntimeout_ms = 200\n", gateways(gw.url())));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    gw.set_latency(700, 900, 1);
    let body = new_order(store, menu, true);
    let key = [("Idempotency-Key", "kim-slow-1")];
    let timed_out = api.call("POST", "/orders", Some("t-kim"), Some(&body), &key);
    assert_eq!((timed_out.status, timed_out.body["kind"].as_str()), (503, Some("unavailable")), "{}", timed_out.text);
    assert_eq!(api.stop(), Some(0));
    gw.set_latency(0, 0, 1);

    let api = Api::start(&w);
    let again = api.call("POST", "/orders", Some("t-kim"), Some(&body), &key);
    assert_eq!((again.status, again.replayed), (201, true), "{}", again.text);
    assert_eq!(again.body["status"], "paid", "{}", again.text);
    let order = order_id(&again.body);
    assert_eq!(w.order_ids(), vec![order], "one order");
    drop(api);
    assert_ledger(&w, &gw, &[order]);
}

/// `[serve] max_requests` is one limit for the whole server: with 1, a
/// request on another endpoint while an order waits on the gateway is 503
/// with Retry-After at once.
#[test]
fn the_request_limit_is_for_the_whole_server() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &format!("{}[serve]\nmax_requests = 1\n", gateways(gw.url())));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    gw.set_latency(700, 900, 2);
    let before = gw.count();
    let (placed, busy) = std::thread::scope(|s| {
        let request = s.spawn(|| api.post("/orders", "t-kim", new_order(store, menu, true)));
        wait_for(|| (gw.count() > before).then_some(()));
        let busy = api.get("/stores", "t-kim");
        (request.join().expect("the request thread"), busy)
    });
    gw.set_latency(0, 0, 2);
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!((busy.status, busy.body["kind"].as_str()), (503, Some("unavailable")), "{}", busy.text);
    assert_eq!(busy.retry_after.as_deref(), Some("1"));
    assert_eq!(api.get("/stores", "t-kim").status, 200, "free again");
    drop(api);
    assert_ledger(&w, &gw, &[order_id(&placed.body)]);
}

/// The smaller promises of the reference: 405 and unknown fields as
/// problems, empty optional bodies, the stream's and the list's bounds, the
/// request id echoed, the `--json` start line.
#[test]
fn the_smaller_promises_of_the_reference_hold() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    let order = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, false), 201));
    let problem = |a: &Answer, status: u16| {
        assert_eq!(a.status, status, "{}", a.text);
        assert!(a.content_type.starts_with("application/problem+json"), "{}", a.content_type);
    };
    problem(&api.call("DELETE", "/stores", Some("t-admin"), None, &[]), 405);
    problem(&api.post("/riders", "t-admin", json!({"name": "x", "nickname": "y"})), 400);
    problem(&api.get("/events?limit=0", "t-admin"), 400);
    problem(&api.get("/events?limit=10001", "t-admin"), 400);
    problem(&api.get("/events?after=-1", "t-admin"), 400);
    let stream = [("Accept", "text/event-stream"), ("Last-Event-ID", "soon")];
    problem(&api.call("GET", &format!("/orders/{order}/events"), Some("t-kim"), None, &stream), 400);
    let echoed = api.call("GET", "/stores", Some("t-kim"), None, &[("x-request-id", "mine-1")]);
    assert_eq!(echoed.request_id.as_deref(), Some("mine-1"));
    assert!(api.get("/stores", "t-kim").request_id.is_some_and(|id| !id.is_empty()), "one is made up");
    // An empty body where every field is optional.
    let cancelled = api.call("POST", &format!("/orders/{order}/cancel"), Some("t-kim"), None, &[]);
    assert_eq!((cancelled.status, cancelled.body["status"].as_str()), (200, Some("cancelled")), "{}", cancelled.text);
    assert_eq!(api.stop(), Some(0));

    let tokens = w.path("tokens.toml");
    let mut command =
        w.command(&["--json", "serve", "--listen", "127.0.0.1:0", "--tokens", tokens.to_str().expect("UTF-8")]);
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = command.spawn().expect("serve starts");
    let line = stdout_lines(&mut child).recv_timeout(DEADLINE).expect("the start line");
    let started: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(started["listening"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{started}");
    terminate(&child);
    assert_eq!(wait_bounded(&mut child, DEADLINE, "serve --json").code(), Some(0));
    assert_ledger(&w, &gw, &[order]);
}

/// What the CLI refuses as bad input before doing anything, the API
/// refuses the same way: ids below 1 (400, not 404), a card without
/// `pay`, a delivery charge below 0; and `delivery_charge` sets what
/// `store add --delivery-charge` sets. A 401 names its scheme.
#[test]
fn the_api_checks_input_as_the_cli_does() {
    let gw = Gateway::start(Mode::Up);
    let w = World::new(BIN, &gateways(gw.url()));
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    let invalid = |a: Answer| {
        assert_eq!((a.status, a.body["kind"].as_str()), (400, Some("invalid_input")), "{}", a.text);
        a
    };
    for path in ["/orders/0", "/orders/-1", "/stores/0/orders", "/menus?store=0", "/events?order=0"] {
        let a = invalid(api.get(path, "t-admin"));
        assert!(a.text.contains("1 or more"), "{path}: {}", a.text);
    }
    invalid(api.call("POST", "/orders/0/cancel", Some("t-admin"), None, &[]));
    invalid(api.post("/orders", "t-kim", json!({"store_id": 0, "items": [{"menu": menu}]})));
    let card_alone = json!({"store_id": store, "items": [{"menu": menu}], "card": "4111111111111111"});
    let a = invalid(api.post("/orders", "t-kim", card_alone));
    assert!(a.body["detail"].as_str().is_some_and(|d| d.contains("\"pay\": true")), "says what to send: {}", a.text);
    assert_eq!(w.order_ids(), Vec::<i64>::new(), "nothing was ordered");

    invalid(api.post("/stores", "t-park", json!({"name": "싼집", "delivery_charge": -1})));
    assert_eq!(api.get("/stores", "t-park").body["stores"].as_array().map(Vec::len), Some(1), "nothing registered");
    let free = api.ok("/stores", "t-park", json!({"name": "무료배달", "delivery_charge": 0}), 201);
    assert_eq!(free["delivery_charge"], 0, "{free}");
    let cli = w.run(&["--json", "store", "add", "--name", "둘째", "--owner", "park", "--delivery-charge", "0"]);
    assert_eq!(cli.code, Some(0), "{}", cli.describe("store add"));

    let anonymous = api.call("GET", "/stores", None, None, &[]);
    assert_eq!((anonymous.status, anonymous.authenticate.as_deref()), (401, Some("Bearer")), "{}", anonymous.text);
    drop(api);
    assert_ledger(&w, &gw, &[]);
}

/// SIGTERM with a live stream open and an upload stalled half-way: the
/// stream ends, and the server exits 0 without waiting for the upload's end
/// beyond the request timeout.
#[test]
fn sigterm_ends_streams_and_does_not_wait_for_a_stalled_upload() {
    use std::io::Write;
    let w = World::new(BIN, "[serve]\ntimeout_ms = 1000\n");
    let api = Api::start(&w);
    let (store, menu) = shop(&api);
    let order = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, true), 201));
    let frames = read_stream(&api, &format!("/orders/{order}/events"), "t-kim", None, 1);
    assert_eq!(frames.len(), 1);
    let address = api.base.trim_start_matches("http://").to_string();
    let mut stalled = std::net::TcpStream::connect(&address).expect("connect");
    write!(
        stalled,
        "POST /riders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t-admin\r\nContent-Length: 1000\r\n\r\n{{\"na"
    )
    .expect("a half request");
    assert_eq!(api.stop(), Some(0));
}

/// A client that never sends a whole request head (headers a byte at a
/// time, or a kept-alive connection left idle) is closed after
/// `idle_timeout_ms`, and past `max_connections` a new connection is answered
/// 503 problem+json with Retry-After: such clients, with no token, used
/// to hold their connections for ever and could use up the server's file
/// descriptors. A live stream is not cut by that deadline.
#[test]
fn stalled_connections_are_closed_and_one_over_the_limit_is_answered_503() {
    use std::io::{Read, Write};
    // The deadline leaves the three held connections below time enough to
    // be open still when the fourth comes, on a busy machine too.
    let w = World::new(BIN, "[serve]\nidle_timeout_ms = 2000\nmax_connections = 3\n");
    let api = Api::start(&w);
    let connect = || api.raw_connection();
    // Everything the server sends until it closes the connection.
    let rest = |mut stream: std::net::TcpStream| {
        let mut text = Vec::new();
        stream.read_to_end(&mut text).expect("the server closes the connection");
        String::from_utf8_lossy(&text).into_owned()
    };
    let (store, menu) = shop(&api);
    let order = order_id(&api.ok("/orders", "t-kim", new_order(store, menu, false), 201));

    let mut slow = connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-").expect("half a head");
    assert_eq!(rest(slow), "", "a head never finished: closed without an answer");
    let mut idle = connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("a request");
    let answered = rest(idle);
    assert!(answered.starts_with("HTTP/1.1 200"), "answered, then closed once idle: {answered}");

    let held: Vec<_> = (0..3).map(|_| connect()).collect();
    let mut over = connect();
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("a request");
    let refused = rest(over);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let lower = refused.to_ascii_lowercase();
    for header in ["content-type: application/problem+json", "retry-after: 1", "x-request-id: "] {
        assert!(lower.contains(header), "`{header}` in {refused}");
    }
    assert!(refused.contains("\"kind\":\"unavailable\""), "{refused}");
    drop(held);
    wait_for(|| (api.get("/healthz", "t-kim").status == 200).then_some(()));
    // Counted where an operator looks.
    let metrics = api.get("/metrics", "t-admin").text;
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ezdelivery_http_connections_refused_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the refused connections in /metrics: {metrics}"));
    assert!(refused >= 1, "{metrics}");
    assert!(metrics.contains("# TYPE ezdelivery_http_connections_open gauge"), "{metrics}");

    // A live stream outlives the deadline on a request's head.
    let frames = std::thread::scope(|s| {
        let stream = s.spawn(|| read_stream(&api, &format!("/orders/{order}/events"), "t-kim", None, 2));
        std::thread::sleep(Duration::from_millis(2500));
        api.ok(&format!("/orders/{order}/cancel"), "t-kim", json!({}), 200);
        stream.join().expect("the stream's thread")
    });
    assert_eq!(frames.len(), 2, "the order's event, then the one written later");
    assert_eq!(api.stop(), Some(0));
}

/// A client that sends requests and never reads the answers fills the
/// socket's buffers, and the server's write then waits on it: that used to
/// be for ever, holding the connection (here the only one allowed) and
/// any graceful shutdown. A write that waits `idle_timeout_ms` now closes
/// the connection.
#[test]
fn a_client_that_never_reads_its_answers_is_closed() {
    use std::io::{ErrorKind, Read, Write};
    let w = World::new(BIN, "[serve]\nidle_timeout_ms = 1000\nmax_connections = 1\n");
    let api = Api::start(&w);
    let connect = || api.raw_connection();
    let healthz = || api.raw_status(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(healthz(), "HTTP/1.1 200 OK");

    // Far more answers than loopback's buffers hold (the document is tens
    // of kilobytes); the server stops reading the requests once its writes
    // wait, so the client's own write may stop part way.
    let mut hog = connect();
    let requests = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2_000);
    let _ = hog.write_all(&requests);
    wait_for(|| (healthz() == "HTTP/1.1 200 OK").then_some(()));
    let mut drained = Vec::new();
    if let Err(e) = hog.read_to_end(&mut drained) {
        assert!(!matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "still open: {e}");
    }
    assert_eq!(api.stop(), Some(0));
}
