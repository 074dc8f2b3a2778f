//! The server's limits, with the defaults the README documents.

use std::time::Duration;

/// How the server runs (`[serve]` in the config file).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The largest request body accepted, in bytes (413 above).
    pub body_limit: usize,
    /// How long a request may take before it is answered 503; the command
    /// it started still runs to its end.
    pub request_timeout: Duration,
    /// Requests handled at once; more are answered 503 at once.
    pub max_requests: usize,
    /// Connections open at once, idle kept-alive ones and live event
    /// streams included; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long a connection may go without sending a whole request head
    /// (a new one, or a kept-alive one between requests), or without
    /// taking any of an answer or a live stream, before it is closed: longer than the idle timeout of the load balancers that
    /// keep connections to it (60 s for many), or they reuse closed ones.
    pub idle_timeout: Duration,
    /// Engine calls at once (the storage pool's size).
    pub engine_calls: usize,
    /// How often a live event stream looks for new events.
    pub poll: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            max_requests: 256,
            // Below the usual limit of 1,024 open files, with room for
            // the database, the listener and the refusals.
            max_connections: 512,
            idle_timeout: Duration::from_secs(75),
            engine_calls: 8,
            poll: Duration::from_millis(250),
        }
    }
}
