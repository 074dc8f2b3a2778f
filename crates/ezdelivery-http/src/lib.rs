//! # ezdelivery-http
//!
//! The HTTP API of ezdelivery (`ezdelivery serve`): the CLI's commands and
//! JSON shapes over HTTP, for customers' apps, store owners' tablets and
//! riders' phones. axum on tokio in front of the synchronous engine, which
//! runs only on blocking threads, at most as many calls at once as the
//! storage has connections.
//!
//! - [`tokens`]: who may call (bearer tokens kept as SHA-256) and as what role;
//! - [`router`] and [`run`]: the API with its limits, request ids, metrics
//!   and graceful shutdown;
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers;
//! - [`metrics::Metered`]: gateways whose calls `/metrics` counts.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ezdelivery_core::{adapters::memory::MemoryStorage, Engine};
//! use ezdelivery_http::{metrics::Metrics, tokens::Tokens, Settings};
//!
//! let engine = Arc::new(Engine::builder(MemoryStorage::new()).build());
//! let tokens = Tokens::load(std::path::Path::new("tokens.toml")).unwrap();
//! let listener = std::net::TcpListener::bind("127.0.0.1:8080").unwrap();
//! ezdelivery_http::run(listener, engine, tokens, Metrics::new(), Settings::default(), || println!("ready")).unwrap();
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod blocking;
mod body;
mod connections;
mod idempotency;
pub mod metrics;
mod openapi;
mod problem;
mod routes;
mod server;
mod settings;
mod sse;
mod state;
pub mod tokens;
mod write_deadline;

pub use idempotency::AtWork;
pub use problem::Problem;
pub use server::{openapi, router, run, serve};
pub use settings::Settings;
