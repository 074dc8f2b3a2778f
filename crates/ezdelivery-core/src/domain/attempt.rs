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
    /// The gateway may have acted on a try without our knowing the answer:
    /// a call is under way (or was, when its process died) or timed out.
    /// Such an attempt is never simply dropped; it is settled by asking
    /// again under the same key.
    pub maybe_processed: bool,
}

impl Attempt {
    /// A fresh attempt with the given key, about to be tried: until the
    /// gateway answers, it may have acted on it.
    pub fn new(idempotency_key: String) -> Attempt {
        Attempt { idempotency_key, tries: 0, next_at: None, last_error: None, maybe_processed: true }
    }

    /// The same attempt, about to be tried again.
    pub fn calling(&self) -> Attempt {
        Attempt { maybe_processed: true, ..self.clone() }
    }

    /// The same attempt, tried once more and failed with `error`; retry at
    /// `next_at`. `maybe_processed` says whether the gateway may have acted
    /// on any try so far (a timeout may have; a refused connection has not).
    pub fn failed(&self, error: &str, next_at: DateTime<Utc>, maybe_processed: bool) -> Attempt {
        Attempt {
            tries: self.tries + 1,
            next_at: Some(next_at),
            last_error: Some(error.to_string()),
            maybe_processed,
            ..self.clone()
        }
    }

    /// The same attempt, answered by the gateway: nothing more is due.
    pub fn answered(&self) -> Attempt {
        Attempt { tries: self.tries + 1, next_at: None, last_error: None, maybe_processed: false, ..self.clone() }
    }

    /// The attempt of the refund that undoes this one, under a key derived
    /// from this one's (so it is as unique).
    pub fn refund(&self) -> Attempt {
        Attempt::new(format!("{}-refund", self.idempotency_key))
    }
}
