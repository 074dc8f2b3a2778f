//! The router with its production behaviour (limits, timeouts, request
//! ids, metrics, shutdown), and the loop that serves it.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use ezdelivery_core::Engine;
use tokio::sync::watch;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;

use crate::blocking::Blocking;
use crate::idempotency::{idempotent, AtWork};
use crate::metrics::Metrics;
use crate::problem::{Cause, Problem};
use crate::settings::Settings;
use crate::state::AppState;
use crate::tokens::Tokens;

/// The request id header: taken from the client when it sends one, made
/// up otherwise, echoed in the answer and in every `-v` log line.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// This API's OpenAPI 3.1 document, as served at `/openapi.json`.
pub fn openapi() -> OpenApi {
    crate::openapi::document(crate::routes::all().split_for_parts().1)
}

/// The whole API over `engine`. `stopping` turning `true` ends live event
/// streams, so a graceful shutdown does not wait for them. `at_work`
/// counts the requests with an `Idempotency-Key` still at work, which may
/// outlive their connection: wait for [`AtWork::finished`] after [`serve`]
/// returns and before the runtime is dropped.
pub fn router(
    engine: Arc<Engine>,
    tokens: Tokens,
    metrics: Arc<Metrics>,
    settings: Settings,
    stopping: watch::Receiver<bool>,
    at_work: AtWork,
) -> Router {
    let (routes, api) = crate::routes::all().split_for_parts();
    let openapi = crate::openapi::document(api).to_json().unwrap_or_default();
    let state = AppState {
        engine: Blocking::new(engine, settings.engine_calls),
        tokens: Arc::new(tokens),
        metrics,
        settings: Arc::new(settings.clone()),
        openapi: Arc::new(openapi),
        stopping,
        at_work,
    };
    routes
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint: /openapi.json lists them")
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_input", "this endpoint does not take this method")
        })
        .layer(middleware::from_fn_with_state(state.clone(), idempotent))
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(middleware::from_fn(log_failure))
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(span)
                        .on_response(|response: &Response, took: std::time::Duration, _: &tracing::Span| {
                            tracing::info!(
                                status = response.status().as_u16(),
                                ms = took.as_millis() as u64,
                                "answered"
                            );
                        })
                        // A failure with a cause is logged by `log_failure`,
                        // with it; a 503 for a gateway that is down is an
                        // answer (the order kept), logged as one above.
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    Problem::unavailable("the server is at its limit of requests: try again shortly")
                }))
                .load_shed()
                // One limit for the whole server: axum gives each route its
                // own copy of a layer, so a plain concurrency limit would
                // be one per route.
                .layer(GlobalConcurrencyLimitLayer::new(settings.max_requests)),
        )
        .with_state(state)
}

/// The log span of one request: its id, method and route (never its
/// headers, query or body, which may hold a token or a card number).
fn span(request: &Request) -> tracing::Span {
    let id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", id = %id, method = %request.method(), path = %logged_path(request))
}

/// Logs the cause of a request that failed (a [`Cause`] its problem left
/// on the response), with the request's id and route: at error level, so
/// that `serve` writes it without `-v` too, and once (a replay of its
/// answer under an idempotency key carries no cause).
async fn log_failure(request: Request, next: Next) -> Response {
    // Kept as they are (a shared header value, a shared route), not copied
    // into strings: every request passes here, few fail.
    let id = request.extensions().get::<RequestId>().cloned();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    if let Some(Cause(cause)) = response.extensions().get::<Cause>() {
        let id = id.as_ref().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
        let path = route_shown(route.as_ref());
        tracing::error!(request = %id, path = %path, status = response.status().as_u16(), error = %cause, "request failed");
    }
    response
}

/// The path a request's log line and its metrics show: the template of
/// the route that took it (`/orders/{id}`, `/customers/{name}/orders`),
/// or `unmatched`.
/// Never the path as sent: a customer's name is in some paths, and any
/// segment may hold what a client mistyped there (a name where an id
/// goes, a card number), even where the request is then refused. The
/// order a command is about is in its own log line, by id.
fn logged_path(request: &Request) -> &str {
    route_shown(request.extensions().get::<MatchedPath>())
}

/// [`logged_path`] of a request's route, kept apart from the request.
fn route_shown(route: Option<&MatchedPath>) -> &str {
    route.map_or("unmatched", MatchedPath::as_str)
}

/// Answers 503 when a request takes longer than the limit, its body's
/// upload included. The command it started still runs to its end (and its
/// idempotency key keeps the answer). A live event stream is timed only
/// until its headers: the events flow after the answer.
async fn time_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.settings.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::unavailable("the request took too long; it may still complete: look before trying again")
            .into_response(),
    }
}

/// Reads the whole request body before anything answers. A request
/// refused before its body was read (401, 403) would otherwise leave the
/// body unread on a kept-alive connection, which the server then closes
/// under a client that may be reusing it or still sending. A body over the
/// limit is read to its end and dropped, then answered 413 on a connection
/// that stays usable; one over [`DRAIN_LIMIT`] is cut off and the
/// connection closed.
async fn read_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use futures_util::StreamExt;
    let (parts, body) = request.into_parts();
    let limit = state.settings.body_limit;
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            return Problem::invalid("the request body could not be read to its end").into_response();
        };
        total = total.saturating_add(chunk.len());
        if total <= limit {
            kept.extend_from_slice(&chunk);
        } else if total > DRAIN_LIMIT.max(limit) {
            let mut response = crate::body::too_large().into_response();
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            return response;
        }
    }
    if total > limit {
        return crate::body::too_large().into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(kept))).await
}

/// How much of a body over the limit is read and dropped so that the
/// connection stays usable; past it, the connection is closed.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// Counts every answer in the metrics, by route template.
async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Only the methods the API has make series of their own: a client
    // cannot grow the metrics without bound.
    let method = match *request.method() {
        Method::GET | Method::POST | Method::HEAD | Method::PUT | Method::DELETE | Method::PATCH | Method::OPTIONS => {
            request.method().as_str()
        }
        _ => "other",
    }
    .to_string();
    let route = logged_path(&request).to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.request(&method, &route, response.status().as_u16(), started.elapsed());
    response
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish. At most `settings.max_connections` are open
/// at once (more are answered 503 and closed), and a connection that has
/// not sent a whole request head within `settings.idle_timeout` (an idle
/// kept-alive one too), or whose client has taken nothing of an answer for
/// as long, is closed. Requests with an `Idempotency-Key`
/// whose client went away may still be at work when it returns: see
/// [`router`].
///
/// `metrics` (the router's, for `GET /metrics` to show them) counts the
/// connections open and those turned away.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &Settings,
    metrics: &Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (limit, idle) = (settings.max_connections, settings.idle_timeout);
    crate::connections::serve(listener, router, limit, idle, metrics, shutdown).await
}

/// Runs the server on its own runtime until SIGTERM or SIGINT (Ctrl-C):
/// then live streams end, requests in flight finish (for at most the
/// request timeout), keyed requests whose client went away finish and keep
/// their answers, and it returns. `ready` is called once the signals
/// are caught and requests are accepted (say, to print where).
pub fn run(
    listener: TcpListener,
    engine: Arc<Engine>,
    tokens: Tokens,
    metrics: Arc<Metrics>,
    settings: Settings,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The engine is dropped here, after the runtime: the PostgreSQL
    // client closes its connections by blocking, which a runtime's
    // worker thread must not do.
    let engine_outlives_runtime = Arc::clone(&engine);
    let grace = settings.request_timeout;
    let served = runtime.block_on(async move {
        let signals = Signals::catch()?;
        let (stop, stopping) = watch::channel(false);
        let mut stopped = stopping.clone();
        let at_work = AtWork::default();
        let limits = settings.clone();
        let router = router(engine, tokens, Arc::clone(&metrics), settings, stopping, at_work.clone());
        let signal = async move {
            signals.recv().await;
            tracing::info!("stopping: finishing the requests in flight");
            let _ = stop.send(true);
        };
        let server = serve(listener, router, &limits, &metrics, signal);
        ready();
        // A client that never finishes (a stalled upload, a phone gone
        // off the network) must not keep the server from stopping.
        let served = tokio::select! {
            served = server => served,
            _ = async {
                let _ = stopped.wait_for(|stopping| *stopping).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("stopped with requests still open after {grace:?}");
                Ok(())
            }
        };
        // A keyed request answered 503 by the timeout, or whose client went
        // away, still runs in a task of its own: dropping the runtime would
        // cancel it between its command and keeping its answer. No bound of
        // its own: what it waits on is its engine calls, which dropping the
        // runtime waits for anyway (blocking threads are not cancelled), and
        // keeping the answer; a copy waiting on it gives up at once.
        at_work.finished().await;
        served
    });
    drop(runtime);
    drop(engine_outlives_runtime);
    served
}

/// SIGTERM and SIGINT, caught from the moment this is made.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn catch() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals { term: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.interrupt.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
