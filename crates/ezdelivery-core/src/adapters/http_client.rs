//! The HTTP plumbing shared by the http gateways and the webhook and
//! KakaoTalk notifiers: one blocking `ureq` agent per adapter with a single
//! timeout covering the whole exchange (connect, send, read), redirects off,
//! 4xx/5xx answered as replies rather than errors, and response bodies read
//! with a size cap.
//!
//! Proxies: like curl, the agent honours `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`
//! and `NO_PROXY` from the environment.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use ureq::http::{HeaderValue, StatusCode, Uri};
use ureq::Agent;

use crate::domain::validate::Invalid;
use crate::error::{Error, Result};

/// The default timeout of a call, as in the original system.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(610);

/// At most this much of a response body is read; a longer one is treated as
/// no body at all (the status still counts).
pub(crate) const BODY_CAP: u64 = 64 * 1024;

/// At most this many characters of a server's message end up in a reason.
const MAX_REASON_CHARS: usize = 200;

/// A blocking HTTP client for one configured URL.
#[derive(Clone)]
pub(crate) struct HttpClient {
    agent: Agent,
    url: String,
    timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").field("url", &self.url).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Whether a URL is a base that paths are appended to, or used as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlUse {
    /// `{url}/payments`: no query or fragment, a trailing `/` is dropped.
    Base,
    /// Posted to as given (a webhook).
    Exact,
}

impl HttpClient {
    /// A client for `url`; `what` names the setting in errors (`payment url`).
    /// The URL must be `http://…` (or `https://…` when built with the `tls`
    /// feature) with a host, and the timeout at least 1 ms.
    pub(crate) fn new(what: &str, url: &str, url_use: UrlUse, timeout: Duration) -> Result<HttpClient> {
        let url = check_url(what, url, url_use)?;
        if timeout.is_zero() {
            return Err(invalid(format!("{what}: the timeout must be at least 1 ms")));
        }
        let config = Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("ezdelivery/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(HttpClient { agent: config.into(), url, timeout })
    }

    /// This client with each call bounded by `limit` too, when that is
    /// shorter than its own timeout (at least 1 ms): a call made within a
    /// command's relay budget. Otherwise this client itself, not a copy
    /// (`relay` passes no bound, on every call).
    pub(crate) fn at_most(&self, limit: Duration) -> Cow<'_, HttpClient> {
        if limit >= self.timeout {
            return Cow::Borrowed(self);
        }
        Cow::Owned(HttpClient { timeout: limit.max(Duration::from_millis(1)), ..self.clone() })
    }

    /// The service the URL names, for records that must be settled by the
    /// same service ([`crate::ports::PaymentGateway::name`]): scheme, host
    /// and port in lower case, a default port left out, and the path, but
    /// no user or password (they would end up in the database) and no
    /// trailing `/`. Two spellings of one URL give one name.
    pub(crate) fn service_name(&self) -> String {
        let Ok(uri) = self.url.parse::<Uri>() else { return self.url.clone() };
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = uri.port_u16().filter(|p| *p != default_port).map(|p| format!(":{p}")).unwrap_or_default();
        format!("{scheme}://{host}{port}{}", uri.path().trim_end_matches('/'))
    }

    /// Posts `body` as JSON to `{url}{path}` with an `Idempotency-Key` header.
    pub(crate) fn post_json<T: Serialize>(
        &self,
        path: &str,
        idempotency_key: &str,
        body: &T,
    ) -> Result<Reply, SendError> {
        let body =
            serde_json::to_vec(body).map_err(|e| SendError::unsent(format!("cannot encode the request: {e}")))?;
        let key = HeaderValue::from_str(idempotency_key)
            .map_err(|_| SendError::unsent("the idempotency key is not a valid header value".into()))?;
        self.post(path, vec![("idempotency-key", key)], "application/json", body)
    }

    /// Posts `fields` form-urlencoded to `{url}{path}` with an
    /// `Authorization: Bearer …` header.
    pub(crate) fn post_form(&self, path: &str, token: &Secret, fields: &[(&str, &str)]) -> Result<Reply, SendError> {
        let body = fields.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect::<Vec<_>>();
        let auth = token.bearer().map_err(SendError::unsent)?;
        self.post(path, vec![("authorization", auth)], "application/x-www-form-urlencoded", body.join("&").into_bytes())
    }

    fn post(
        &self,
        path: &str,
        headers: Vec<(&'static str, HeaderValue)>,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Result<Reply, SendError> {
        let mut request = self.agent.post(format!("{}{path}", self.url)).header("content-type", content_type);
        if self.timeout < self.agent.config().timeouts().global.unwrap_or(Duration::MAX) {
            request = request.config().timeout_global(Some(self.timeout)).build();
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut response = request.send(body).map_err(|e| self.describe(e))?;
        let status = response.status();
        // A body that is too long, cut short or not UTF-8 counts as no body:
        // the status is the answer, the body only adds detail.
        let body = response.body_mut().with_config().limit(BODY_CAP).read_to_string().unwrap_or_default();
        Ok(Reply { status, body })
    }

    fn describe(&self, error: ureq::Error) -> SendError {
        use std::io::ErrorKind;
        match error {
            // The request may have arrived: the answer is unknown.
            ureq::Error::Timeout(_) => {
                SendError::maybe_sent(format!("no answer within {} ms", self.timeout.as_millis()))
            }
            ureq::Error::Io(e) if e.kind() == ErrorKind::ConnectionRefused => {
                SendError::unsent(format!("cannot reach the server: {e}"))
            }
            ureq::Error::Io(e) => SendError::maybe_sent(format!("the connection failed: {e}")),
            ureq::Error::ConnectionFailed => SendError::unsent("cannot reach the server: connection failed".into()),
            ureq::Error::HostNotFound => SendError::unsent("cannot reach the server: host not found".into()),
            other => SendError::maybe_sent(other.to_string()),
        }
    }
}

/// Why a request got no answer, and whether it may have arrived anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendError {
    /// What happened, for people.
    pub reason: String,
    /// False when the request certainly never reached the server.
    pub maybe_sent: bool,
}

impl SendError {
    fn unsent(reason: String) -> SendError {
        SendError { reason, maybe_sent: false }
    }

    fn maybe_sent(reason: String) -> SendError {
        SendError { reason, maybe_sent: true }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// A server's answer: its status and (at most [`BODY_CAP`] of) its body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: StatusCode,
    body: String,
}

impl Reply {
    /// The status code.
    pub(crate) fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// A 2xx answer.
    pub(crate) fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// `HTTP 402 Payment Required`
    pub(crate) fn status_line(&self) -> String {
        match self.status.canonical_reason() {
            Some(reason) => format!("HTTP {} {reason}", self.status.as_u16()),
            None => format!("HTTP {}", self.status.as_u16()),
        }
    }

    /// The string (or number) `field` of a JSON object body, if not empty.
    pub(crate) fn json_field(&self, field: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        let text = match value.get(field)? {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }

    /// The server's own words: the JSON `message` (or `msg`, as KakaoTalk
    /// says it), cleaned of control characters and shortened.
    pub(crate) fn message(&self) -> Option<String> {
        self.json_field("message").or_else(|| self.json_field("msg")).map(|m| clean(&m))
    }

    /// `HTTP 503 Service Unavailable: the server's message`
    pub(crate) fn describe(&self) -> String {
        match self.message() {
            Some(message) => format!("{}: {message}", self.status_line()),
            None => self.status_line(),
        }
    }

    /// `Ok` for a 2xx answer, else the description: a notifier's verdict.
    pub(crate) fn delivered(self) -> Result<(), String> {
        if self.is_success() {
            Ok(())
        } else {
            Err(self.describe())
        }
    }
}

/// A secret (a token) that never shows in `Debug` output or error messages.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    /// Wraps `token`; it must be non-empty and fit in a header.
    pub(crate) fn new(what: &str, token: String) -> Result<Secret> {
        let secret = Secret(token);
        if secret.0.trim().is_empty() {
            return Err(invalid(format!("{what} is empty")));
        }
        secret.bearer().map_err(|_| invalid(format!("{what} has characters that cannot go in an HTTP header")))?;
        Ok(secret)
    }

    /// `Bearer TOKEN`, marked sensitive so that `http` never prints it.
    fn bearer(&self) -> Result<HeaderValue, String> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0))
            .map_err(|_| "the token is not a valid header value".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `text` with any occurrence of the secret blanked out (belt and braces:
    /// nothing is known to echo it, but error texts come from other crates).
    pub(crate) fn scrub(&self, text: String) -> String {
        if text.contains(&self.0) {
            text.replace(&self.0, "[redacted]")
        } else {
            text
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `text` as one URL path segment: everything but the unreserved characters
/// percent-encoded, so a gateway's reference cannot change the path.
pub(crate) fn path_segment(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// `text` as a form field name or value (`application/x-www-form-urlencoded`):
/// the same, with a space as `+`.
fn form_encode(text: &str) -> String {
    text.split(' ').map(path_segment).collect::<Vec<_>>().join("+")
}

/// Control characters become spaces and a long text is cut, so a server's
/// message is safe to show in a terminal and to store.
fn clean(text: &str) -> String {
    let mut out: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_REASON_CHARS).collect::<String>();
    if text.chars().count() > MAX_REASON_CHARS {
        out.push('…');
    }
    out
}

fn invalid(message: String) -> Error {
    Error::Invalid(Invalid(message))
}

fn check_url(what: &str, url: &str, url_use: UrlUse) -> Result<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let https = lower.starts_with("https://");
    if !https && !lower.starts_with("http://") {
        return Err(invalid(format!("{what} = \"{url}\": it must start with http:// or https://")));
    }
    if https && !cfg!(feature = "tls") {
        return Err(invalid(format!(
            "{what} = \"{url}\": https:// needs ezdelivery built with the `tls` feature; use http:// or rebuild"
        )));
    }
    let uri: Uri = url.parse().map_err(|e| invalid(format!("{what} = \"{url}\" is not a valid URL: {e}")))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(format!("{what} = \"{url}\" has no host")));
    }
    if let Some(port) = uri.authority().and_then(|a| explicit_port(a.as_str())) {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(invalid(format!(
                "{what} = \"{url}\": the port must be a number from 1 to 65535, got `{port}`"
            )));
        }
    }
    match url_use {
        UrlUse::Exact => Ok(url.to_string()),
        UrlUse::Base if url.contains(['?', '#']) => {
            Err(invalid(format!("{what} = \"{url}\": a base URL cannot have a query or a fragment")))
        }
        UrlUse::Base => Ok(url.trim_end_matches('/').to_string()),
    }
}

/// The port written in an authority (`user@host:port`, `[::1]:port`), if
/// one is: the URL parser takes any digits there and leaves a port above
/// 65535 to fail at the first call.
fn explicit_port(authority: &str) -> Option<&str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let after_host = host_port.rsplit_once(']').map_or(host_port, |(_, rest)| rest);
    after_host.rsplit_once(':').map(|(_, port)| port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_named_by_its_url_without_its_credentials() {
        let name = |url: &str| HttpClient::new("url", url, UrlUse::Base, DEFAULT_TIMEOUT).unwrap().service_name();
        assert_eq!(name("http://127.0.0.1:8083"), "http://127.0.0.1:8083");
        assert_eq!(name("HTTP://Pay.Example:8083/api/"), "http://pay.example:8083/api");
        assert_eq!(name("http://pay.example:80/api"), "http://pay.example/api");
        assert_eq!(name("http://user:secret@pay.example/"), "http://pay.example");
        assert_ne!(name("http://127.0.0.1:8083"), name("http://127.0.0.1:8084"));
    }
    use ezdelivery_testkit::server::{Reply as Scripted, ScriptedServer};

    #[test]
    fn urls_are_checked() {
        let t = DEFAULT_TIMEOUT;
        for bad in [
            "",
            "127.0.0.1:8083",
            "ftp://x",
            "http://",
            "http:///payments",
            "http://a b",
            "http://127.0.0.1:70000",
            "http://127.0.0.1:65536/api",
            "http://127.0.0.1:0",
            "http://[::1]:99999",
            "http://u@h:123456",
        ] {
            let e = HttpClient::new("[payment] url", bad, UrlUse::Base, t).unwrap_err();
            assert!(e.to_string().contains("[payment] url"), "{bad}: {e}");
        }
        assert!(HttpClient::new("u", "http://h/x?y=1", UrlUse::Base, t).is_err());
        assert!(HttpClient::new("u", "http://h/x?y=1", UrlUse::Exact, t).is_ok());
        assert_eq!(HttpClient::new("u", "HTTP://h:1/api/", UrlUse::Base, t).unwrap().url, "HTTP://h:1/api");
        for good in ["http://h:65535", "http://[::1]:8080/x", "http://[::1]/x", "http://u:pw@h:80"] {
            assert!(HttpClient::new("u", good, UrlUse::Base, t).is_ok(), "{good}");
        }
        let e = HttpClient::new("[payment] url", "http://127.0.0.1:70000", UrlUse::Base, t).unwrap_err();
        assert!(e.to_string().contains("port must be a number from 1 to 65535, got `70000`"), "{e}");
        assert!(HttpClient::new("u", "http://h", UrlUse::Base, Duration::ZERO).is_err());
        let https = HttpClient::new("u", "https://h", UrlUse::Base, t);
        assert_eq!(https.is_ok(), cfg!(feature = "tls"));
    }

    #[test]
    fn encodes_path_segments_and_forms() {
        assert_eq!(path_segment("pay-1_a.b~"), "pay-1_a.b~");
        assert_eq!(path_segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
        assert_eq!(path_segment("한"), "%ED%95%9C");
        assert_eq!(form_encode("a b&c=d"), "a+b%26c%3Dd");
    }

    #[test]
    fn messages_are_cleaned_and_capped() {
        assert_eq!(clean("a\nb\u{1b}[31m"), "a b [31m");
        let long = "x".repeat(500);
        assert_eq!(clean(&long).chars().count(), MAX_REASON_CHARS + 1);
    }

    #[test]
    fn a_body_over_the_cap_counts_as_none_but_the_status_stands() {
        let big = format!("{{\"id\": \"x\", \"pad\": \"{}\"}}", "p".repeat(BODY_CAP as usize));
        let server = ScriptedServer::start(vec![Scripted::json(200, &big)]);
        let client = HttpClient::new("u", server.url(), UrlUse::Base, Duration::from_secs(5)).unwrap();
        let reply = client.post_json("/x", "k", &serde_json::json!({})).unwrap();
        assert!(reply.is_success());
        assert_eq!(reply.json_field("id"), None);
        server.finish();
    }

    #[test]
    fn redirects_are_not_followed() {
        let server = ScriptedServer::start(vec![Scripted::json(302, "")]);
        let client = HttpClient::new("u", server.url(), UrlUse::Base, Duration::from_secs(5)).unwrap();
        let reply = client.post_json("/x", "k", &serde_json::json!({})).unwrap();
        assert_eq!(reply.status(), 302);
        assert_eq!(reply.describe(), "HTTP 302 Found");
        assert_eq!(server.finish().len(), 1);
    }

    #[test]
    fn the_secret_stays_secret() {
        let secret = Secret::new("token", "s3cr3t".into()).unwrap();
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", secret.bearer().unwrap()), "Sensitive");
        assert_eq!(secret.scrub("bad s3cr3t here".into()), "bad [redacted] here");
        assert!(Secret::new("token", " ".into()).is_err());
        let e = Secret::new("token", "a\nb".into()).unwrap_err().to_string();
        assert!(!e.contains("a\nb"), "{e}");
    }
}
