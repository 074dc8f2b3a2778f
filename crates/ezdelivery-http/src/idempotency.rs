//! `Idempotency-Key` on every `POST`: the first request with a key does the
//! work and its answer is kept in the database (so it holds across restarts
//! and across servers on one PostgreSQL database); the same key with the
//! same request gets that answer again, even when the copies arrive at
//! once; the same key with another request is 422.
//!
//! Keys belong to the caller (`customer:kim`'s key is not `owner:park`'s).
//! Every answer is kept, a 500 too: a command of several transactions may
//! have committed its first (an order, a payment claim) before it failed,
//! so doing it again under the same key could order and pay twice. A kept
//! answer is final for its key; a new attempt takes a new key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ezdelivery_core::{RequestClaim, StoredResponse};
use tokio::sync::watch;

use crate::auth::caller_of;
use crate::body::too_large;
use crate::problem::{with_problem_headers, Problem};
use crate::state::AppState;
use crate::tokens::sha256_hex;

/// The header.
const HEADER: &str = "idempotency-key";

/// How often a request waits on a copy of itself still at work.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// The middleware: passes everything but a `POST` with a key straight on.
pub(crate) async fn idempotent(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let mut keys = request.headers().get_all(HEADER).iter();
    let key = match (keys.next().map(|v| v.as_bytes()), keys.next()) {
        (None, _) => return next.run(request).await,
        (Some(key), None) if valid_key(key) => String::from_utf8_lossy(key).into_owned(),
        (Some(_), None) => {
            return Problem::invalid("Idempotency-Key must be 1 to 255 visible ASCII characters").into_response()
        }
        (Some(_), Some(_)) => return Problem::invalid("send one Idempotency-Key, not several").into_response(),
    };
    // Claiming, working and keeping the answer run to their end in a task
    // of their own, even when this request is dropped (a client gone, the
    // timeout): a key is never left claimed by a request that stopped
    // half-way. The task is counted until it ends, so that a stopping
    // server waits for it rather than cancel it with its runtime.
    let working = state.at_work.begin();
    let task = tokio::spawn(async move {
        let _working = working;
        claim_work_keep(state, key, request, next).await
    });
    task.await.unwrap_or_else(|e| Problem::failed(format!("the request failed: {e}")).into_response())
}

async fn claim_work_keep(state: AppState, key: String, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // Who sent it decides whose key it is; without a caller, the handler says 401.
    let caller = match caller_of(&parts, &state) {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    let Ok(bytes) = to_bytes(body, state.settings.body_limit).await else {
        return too_large().into_response();
    };
    let scope = caller.scope();
    let fingerprint = {
        let mut request = format!("{} {}\n", parts.method, parts.uri.path()).into_bytes();
        request.extend_from_slice(&bytes);
        sha256_hex(&request) // the bytes as sent: two bodies are one only when they are the same
    };
    // A copy waits for the first's answer for half the request timeout,
    // so it can still say so (409) before the timeout answers for it.
    let patience = state.settings.request_timeout / 2;
    let started = Instant::now();
    loop {
        let (s, k, f) = (scope.clone(), key.clone(), fingerprint.clone());
        match state.engine.run(move |e| Ok(e.claim_request(&s, &k, &f)?)).await {
            Ok(RequestClaim::New) => break,
            Ok(RequestClaim::Done(stored)) => return replay(stored),
            Ok(RequestClaim::Mismatch) => {
                return Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input",
                    "this Idempotency-Key was used with another request: use a new key for a new request",
                )
                .into_response()
            }
            // A stopping server waits for the first to keep its answer,
            // not for its copies to give up.
            Ok(RequestClaim::InFlight { since }) if started.elapsed() >= patience || *state.stopping.borrow() => {
                return Problem::new(
                    StatusCode::CONFLICT,
                    "invalid_state",
                    format!(
                        "a request with this Idempotency-Key has been at work since {since}: send it again later \
                         to get its answer"
                    ),
                )
                .into_response();
            }
            Ok(RequestClaim::InFlight { .. }) => tokio::time::sleep(WAIT_STEP).await,
            Err(problem) => return problem.into_response(),
        }
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let stored = StoredResponse { status: parts.status.as_u16(), body: String::from_utf8_lossy(&body).into_owned() };
    if let Err(problem) = state.engine.run(move |e| Ok(e.finish_request(&scope, &key, &stored)?)).await {
        tracing::error!(error = %problem.logged(), "the answer to an idempotent request could not be kept");
    }
    Response::from_parts(parts, Body::from(body))
}

/// Whether `key` is 1 to 255 visible ASCII characters (no spaces: a key
/// with a space in it is most often two joined by mistake).
fn valid_key(key: &[u8]) -> bool {
    (1..=255).contains(&key.len()) && key.iter().all(u8::is_ascii_graphic)
}

/// The kept answer, as it was first sent: a 503 (a payment queued) with
/// its `Retry-After` too. It is final for its key: sending the same key
/// again only replays it; the order it names tells the rest.
fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.body).into_response();
    if status.is_client_error() || status.is_server_error() {
        with_problem_headers(&mut response);
    } else {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The keyed requests still at work, counted so that a stopping server can
/// wait for them ([`AtWork::finished`]) before its runtime goes: a task cut
/// off between its command and keeping the answer would leave its key in
/// flight, and the client could not get the answer to a command that was
/// done. [`crate::run`] waits; a caller of [`crate::serve`] on a runtime of
/// its own waits the same way once `serve` returns.
#[derive(Clone, Debug)]
pub struct AtWork(Arc<watch::Sender<usize>>);

impl Default for AtWork {
    fn default() -> AtWork {
        AtWork(Arc::new(watch::Sender::new(0)))
    }
}

impl AtWork {
    /// Counts one keyed request until the guard is dropped.
    fn begin(&self) -> Working {
        self.0.send_modify(|n| *n += 1);
        Working(self.clone())
    }

    /// Returns once no keyed request is at work.
    pub async fn finished(&self) {
        let _ = self.0.subscribe().wait_for(|n| *n == 0).await;
    }
}

/// One keyed request at work: counted until its task ends (or is cancelled).
struct Working(AtWork);

impl Drop for Working {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_1_to_255_visible_ascii_characters() {
        assert!(valid_key(b"order-kim-1"));
        assert!(valid_key(&[b'~'; 255]));
        for bad in [&b""[..], &[b'k'; 256], b"two keys", b"tab\tkey", "키".as_bytes(), b"\x7f"] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }
}
