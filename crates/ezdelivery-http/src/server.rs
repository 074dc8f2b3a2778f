//! The router with its production behaviour (limits, timeouts, request
//! ids, metrics, shutdown), and the loop that serves it.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use ezdelivery_core::Engine;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;

use crate::blocking::Blocking;
use crate::idempotency::idempotent;
use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::settings::Settings;
use crate::state::AppState;
use crate::tokens::Tokens;

/// The request id header: taken from the client when it sends one, made
/// up otherwise, echoed in the answer and in every `-v` log line.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// This API's OpenAPI 3.1 document, as served at `/openapi.json`.
pub fn openapi() -> OpenApi {
    crate::openapi::document(crate::routes::all().split_for_parts().1)
}

/// The whole API over `engine`. `stopping` turning `true` ends live event
/// streams, so a graceful shutdown does not wait for them.
pub fn router(
    engine: Arc<Engine>,
    tokens: Tokens,
    metrics: Arc<Metrics>,
    settings: Settings,
    stopping: watch::Receiver<bool>,
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
    };
    routes
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint: /openapi.json lists them")
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_input", "this endpoint does not take this method")
        })
        .layer(middleware::from_fn_with_state(state.clone(), idempotent))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(span).on_response(
                    |response: &Response, took: std::time::Duration, _: &tracing::Span| {
                        tracing::info!(status = response.status().as_u16(), ms = took.as_millis() as u64, "answered");
                    },
                ))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    Problem::unavailable("the server is at its limit of requests: try again shortly")
                }))
                .load_shed()
                .concurrency_limit(settings.max_requests),
        )
        .with_state(state)
}

/// The log span of one request: its id, method and path (never its
/// headers, query or body, which may hold a token or a card number).
fn span(request: &Request) -> tracing::Span {
    let id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path())
}

/// Answers 503 when a request takes longer than the limit. The command it
/// started still runs to its end (and its idempotency key keeps the
/// answer). Live event streams are not timed.
async fn time_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let streaming = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if streaming {
        return next.run(request).await;
    }
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
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.request(&method, &route, response.status().as_u16(), started.elapsed());
    response
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// Runs the server on its own runtime until SIGTERM or SIGINT (Ctrl-C):
/// then live streams end, requests in flight finish, and it returns.
pub fn run(
    listener: TcpListener,
    engine: Arc<Engine>,
    tokens: Tokens,
    metrics: Arc<Metrics>,
    settings: Settings,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The engine is dropped here, after the runtime: the PostgreSQL
    // client closes its connections by blocking, which a runtime's
    // worker thread must not do.
    let engine_outlives_runtime = Arc::clone(&engine);
    let served = runtime.block_on(async move {
        let (stop, stopping) = watch::channel(false);
        let router = router(engine, tokens, metrics, settings, stopping);
        let signal = async move {
            stop_signal().await;
            tracing::info!("stopping: finishing the requests in flight");
            let _ = stop.send(true);
        };
        serve(listener, router, signal).await
    });
    drop(runtime);
    drop(engine_outlives_runtime);
    served
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
