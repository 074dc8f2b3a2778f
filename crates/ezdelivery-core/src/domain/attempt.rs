//! The bookkeeping of a call to an outside gateway that may have to be retried.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One call to a gateway, possibly retried: the idempotency key stays the
/// same across retries so the gateway acts on it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Sent as the `Idempotency-Key` header; never changes for this call.
    pub idempotency_key: String,
    /// How many times the gateway was called for it.
    pub tries: u32,
    /// When a queued retry is due, if one is queued.
    pub next_at: Option<DateTime<Utc>>,
    /// What went wrong the last time, for `relay` and humans.
    pub last_error: Option<String>,
}

impl Attempt {
    /// A fresh attempt with the given key, not yet tried.
    pub fn new(idempotency_key: String) -> Attempt {
        Attempt { idempotency_key, tries: 0, next_at: None, last_error: None }
    }

    /// The same attempt, tried once more and failed with `error`; retry at `next_at`.
    pub fn failed(&self, error: &str, next_at: DateTime<Utc>) -> Attempt {
        Attempt { tries: self.tries + 1, next_at: Some(next_at), last_error: Some(error.to_string()), ..self.clone() }
    }

    /// The same attempt, answered by the gateway: nothing more is due.
    pub fn answered(&self) -> Attempt {
        Attempt { tries: self.tries + 1, next_at: None, last_error: None, ..self.clone() }
    }
}
