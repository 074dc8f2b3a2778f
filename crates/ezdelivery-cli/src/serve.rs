//! `serve`: the HTTP API (crate `ezdelivery-http`) on the `--db` database,
//! until SIGTERM or SIGINT.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::{Error, Result};
use ezdelivery_http::metrics::Metrics;
use ezdelivery_http::tokens::Tokens;

use crate::config::Config;
use crate::storage::Database;
use crate::{output_error, print_line};

/// Starts serving on `listen`, says where (`json`: as one object), and
/// returns when a signal stopped it and the requests in flight finished.
pub fn run(config: &Config, db: &Database, listen: &str, tokens: Option<&Path>, json: bool, quiet: bool) -> Result<()> {
    let invalid = |message: String| Error::Invalid(Invalid(message));
    let tokens = tokens.ok_or_else(|| {
        invalid(
            "serve needs a tokens file: pass --tokens FILE (or set EZDELIVERY_TOKENS); README, \"Serving HTTP\", \
             shows one"
                .into(),
        )
    })?;
    let tokens = Tokens::load(tokens).map_err(|e| invalid(e.to_string()))?;
    let settings = config.serve.settings(&config.storage)?;
    let metrics = Metrics::new();
    let engine = Arc::new(config.serving_engine(db, quiet || json, &metrics)?);
    let listener = TcpListener::bind(listen)
        .map_err(|e| invalid(format!("cannot listen on {listen}: {e}; pass --listen another ADDR")))?;
    let address = listener.local_addr().map_err(|e| Error::Internal(format!("cannot read the address: {e}")))?;
    tracing::info!(%address, db = %db, "serving");
    let line = if json {
        serde_json::json!({ "listening": address.to_string() }).to_string()
    } else {
        format!("listening on http://{address}")
    };
    // Said once the signals are caught: a script that stops the server
    // as soon as it reads this line gets a clean stop (exit 0).
    let mut said = Ok(());
    ezdelivery_http::run(listener, engine, tokens, metrics, settings, || said = print_line(&line))
        .map_err(|e| Error::Internal(format!("the server failed: {e}")))?;
    said.map_err(output_error)
}
