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
            max_connections: 1024,
            engine_calls: 8,
            poll: Duration::from_millis(250),
        }
    }
}
