//! Idempotency keys of requests: what a front end (an HTTP server) keeps in
//! the storage so that a request sent again with the same key is answered
//! with the first answer instead of being run twice, across restarts and
//! across the several processes that share one database.
//!
//! A key is claimed before the request's work runs ([`RequestClaim::New`]
//! goes to exactly one claimant, however many race), finished with the
//! response once it is known, or forgotten when the work failed before it
//! did anything (so the client may try again with the same key).

use chrono::{DateTime, Utc};

/// The response a finished request gave, kept to answer its repeats.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredResponse {
    /// The HTTP status code (`201`).
    pub status: u16,
    /// The body as sent (JSON text, for ezdelivery's server).
    pub body: String,
}

/// What claiming a request's key found ([`crate::ports::Repo::claim_request`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestClaim {
    /// The key was free and is now this caller's: run the request, then
    /// finish the key with its response (or forget it if nothing was done).
    New,
    /// Another request with this key was claimed at `since` and has not
    /// finished yet: it is running, or its process died before finishing
    /// (a caller may treat a claim much older than any request takes as
    /// abandoned). Nothing was changed.
    InFlight {
        /// When the key was claimed.
        since: DateTime<Utc>,
    },
    /// A request with this key and the same fingerprint finished with this
    /// response: answer with it again, without running anything.
    Done(StoredResponse),
    /// The key was claimed for another request (another fingerprint: method,
    /// path or body differ): a client error, never answered with the other
    /// request's response. Nothing was changed.
    Mismatch,
}

impl RequestClaim {
    /// What a stored key says to a new claim with `fingerprint`: the key
    /// was claimed with `claimed` at `since`, and finished with `response`
    /// if it has one. One judgement for every storage.
    pub(crate) fn of_stored(
        claimed: &str,
        since: DateTime<Utc>,
        response: Option<StoredResponse>,
        fingerprint: &str,
    ) -> RequestClaim {
        if claimed != fingerprint {
            return RequestClaim::Mismatch;
        }
        match response {
            Some(response) => RequestClaim::Done(response),
            None => RequestClaim::InFlight { since },
        }
    }
}
