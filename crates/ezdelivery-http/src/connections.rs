//! Accepting connections: at most `max_connections` at once, each served
//! by hyper's HTTP/1.1 with a deadline on every request's head, and all of
//! them finished gracefully at shutdown.
//!
//! `axum::serve` set no deadline on a request's head, so a client sending
//! its headers a byte at a time, or a kept-alive connection left idle,
//! held its file descriptor for ever, and enough of them (no token needed)
//! used up the process's descriptors: the server then answered no one.
//! Here a connection that has not sent a whole request head within
//! `idle_timeout_ms` (the first request's, or the next one on a kept-alive
//! connection) is closed, and past `max_connections` a new connection is
//! answered 503 and closed. A connection whose client takes nothing of an
//! answer for as long is closed too ([`WriteDeadline`]). That bounds what
//! the server holds; it does not stop one client from taking every
//! connection (a proxy with limits per client in front does).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::write_deadline::WriteDeadline;

/// Connections turned away at once, each while its 503 is answered: more
/// than that are closed without an answer.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a connection turned away may take to send its request's head.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the loop rests after an error accepting a connection other
/// than one about that connection (out of file descriptors, say).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// At most one warning this often that connections are turned away.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `router` on `listener`, at most `max_connections` at once, each
/// request's head due within `idle_timeout` and no write waiting longer
/// on its client, counted in `metrics`, until `shutdown` completes;
/// then it stops accepting, lets every connection finish its request in
/// flight, and returns once all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    idle_timeout: Duration,
    metrics: &Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let open = Arc::new(Semaphore::new(max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    // `stop` turning true asks every connection to finish; each holds a
    // clone of `alive`, so `closed()` on its sender waits for them all.
    let (stop, stopping) = watch::channel(false);
    let (alive, alive_rx) = watch::channel(());
    let mut warned: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if about_one_connection(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot accept connections");
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        if let Ok(permit) = Arc::clone(&open).try_acquire_owned() {
            let (router, mut stopping, alive) = (router.clone(), stopping.clone(), alive_rx.clone());
            let counted = metrics.connection_opened();
            tokio::spawn(async move {
                let service = TowerToHyperService::new(router);
                let stream = TokioIo::new(WriteDeadline::new(stream, idle_timeout));
                let connection = builder(idle_timeout).serve_connection(stream, service);
                tokio::pin!(connection);
                let finished = tokio::select! {
                    served = connection.as_mut() => Some(served),
                    _ = stopping.wait_for(|stop| *stop) => None,
                };
                let served = match finished {
                    Some(served) => served,
                    None => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended");
                }
                drop((permit, alive, counted));
            });
        } else {
            metrics.connection_refused();
            // An operator sees the limit reached, not every refusal.
            if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                warned = Some(tokio::time::Instant::now());
                tracing::warn!(max_connections, "at the limit of connections: new ones are answered 503");
            }
            if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            // else: dropped, closed at once.
        }
    }
    drop(listener);
    let _ = stop.send(true);
    drop(alive_rx);
    alive.closed().await;
    Ok(())
}

/// hyper's HTTP/1.1 connection settings: a request's head due within
/// `head_timeout`.
fn builder(head_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(head_timeout);
    builder
}

/// Answers a connection over the limit 503 (with `Retry-After`, as a
/// request over `max_requests` is), once its request's head is in, and
/// closes it. The head is read first so that the client, still sending,
/// is not cut off by a reset before it reads the answer; a client that
/// does not read the answer is not waited on longer than for its head.
async fn refuse(stream: TcpStream) {
    let answer = hyper::service::service_fn(|_: Request<Incoming>| async {
        let mut response =
            Problem::unavailable("the server is at its limit of connections: try again shortly").into_response();
        if let Ok(id) = uuid::Uuid::new_v4().to_string().parse() {
            response.headers_mut().insert(crate::server::REQUEST_ID, id);
        }
        Ok::<_, Infallible>(response)
    });
    let mut builder = builder(REFUSAL_TIMEOUT);
    builder.keep_alive(false);
    let _ = builder.serve_connection(TokioIo::new(WriteDeadline::new(stream, REFUSAL_TIMEOUT)), answer).await;
}

/// Whether an error accepting a connection is about that connection only
/// (it went away before it was accepted): the next one may be fine.
fn about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}
