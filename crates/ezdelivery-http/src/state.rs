//! What every request handler shares.

use std::sync::Arc;

use tokio::sync::watch;

use crate::blocking::Blocking;
use crate::idempotency::AtWork;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::tokens::Tokens;

/// The engine, the tokens, the metrics and the settings of one server,
/// cloned into each request (every field is a cheap handle).
#[derive(Clone)]
pub struct AppState {
    /// The engine, called on blocking threads.
    pub engine: Blocking,
    /// Who may call.
    pub tokens: Arc<Tokens>,
    /// What `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// Limits and intervals.
    pub settings: Arc<Settings>,
    /// The OpenAPI document, made once at start.
    pub openapi: Arc<String>,
    /// Turns `true` when the server is asked to stop: live event streams end.
    pub stopping: watch::Receiver<bool>,
    /// The keyed requests still at work, which a stopping server waits for.
    pub at_work: AtWork,
}
