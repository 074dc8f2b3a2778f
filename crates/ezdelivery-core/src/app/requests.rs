//! Idempotency keys of requests, for a front end that takes requests over
//! the network (an HTTP server): claim a key before running a request,
//! finish it with the response, forget it when the request did nothing.
//! Each is a small write unit of work of its own, never part of the
//! command it guards: the claim must commit before the command runs, so
//! that a repeat sent meanwhile (by this process or another sharing the
//! database) finds it.
//!
//! ```
//! use ezdelivery_core::adapters::memory::MemoryStorage;
//! use ezdelivery_core::{Engine, RequestClaim, StoredResponse};
//!
//! let engine = Engine::builder(MemoryStorage::new()).build();
//! let fingerprint = "sha256 of POST /stores {\"name\":\"BBQ\"}";
//! assert_eq!(engine.claim_request("owner:park", "k-1", fingerprint).unwrap(), RequestClaim::New);
//! let store = engine.add_store("BBQ", Some("park"), None).unwrap();
//! let response = StoredResponse { status: 201, body: format!("{{\"id\":{}}}", store.id) };
//! engine.finish_request("owner:park", "k-1", &response).unwrap();
//! // The same request again: the first response, and nothing run twice.
//! assert_eq!(engine.claim_request("owner:park", "k-1", fingerprint).unwrap(), RequestClaim::Done(response));
//! // Another request under the same key: refused.
//! assert_eq!(engine.claim_request("owner:park", "k-1", "another").unwrap(), RequestClaim::Mismatch);
//! ```

use std::time::Duration;

use chrono::TimeDelta;

use crate::app::engine::Engine;
use crate::domain::validate::Invalid;
use crate::ports::requests::{RequestClaim, StoredResponse};
use crate::{Error, Result};

/// The longest scope, key or fingerprint, in characters: keys are short
/// tokens (a UUID is 36), and a bound keeps a client from storing
/// megabytes under a "key".
pub const MAX_REQUEST_KEY: usize = 255;

/// How long a key is kept at the least, whatever the retention asked: a
/// request may still be at work on it (one whose client went away runs to
/// its end, and none runs anywhere near a day). With a retention of 0 a
/// key in flight was purged, and a copy of the request placed and charged
/// a second order.
pub const MIN_REQUEST_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

impl Engine {
    /// Claims the idempotency key `key` of sender `scope` (`customer:kim`)
    /// for a request whose method, path and body hash to `fingerprint`, in
    /// a unit of work of its own (see [`RequestClaim`] for the answers).
    /// Of any number of claims of one key at once, in any number of
    /// processes sharing the storage, exactly one gets
    /// [`RequestClaim::New`]; it must then [`Engine::finish_request`] or
    /// [`Engine::forget_request`] the key.
    ///
    /// Fails with [`Error::Invalid`] for an empty `scope`, `key` or
    /// `fingerprint`, or one longer than [`MAX_REQUEST_KEY`] characters.
    pub fn claim_request(&self, scope: &str, key: &str, fingerprint: &str) -> Result<RequestClaim> {
        let _span = tracing::debug_span!("claim_request").entered();
        check(scope, key)?;
        bounded("a request fingerprint", fingerprint)?;
        let claim = self.write(|w| w.repo.claim_request(scope, key, fingerprint, w.now))?.value;
        // Neither the key (like a token, it lets whoever holds it replay the
        // answer) nor the scope (it names the caller, `customer:kim`, and
        // the log names records by id only).
        tracing::debug!(claim = ?claim, "request key claimed");
        Ok(claim)
    }

    /// Stores `response` as the answer of the request that claimed `key`
    /// of `scope`: every later claim with the same fingerprint gets it
    /// ([`RequestClaim::Done`]). Fails with [`Error::Invalid`] when no
    /// request holds the key (never claimed, forgotten, or purged after
    /// the retention), and then nothing is stored.
    pub fn finish_request(&self, scope: &str, key: &str, response: &StoredResponse) -> Result<()> {
        let _span = tracing::debug_span!("finish_request").entered();
        check(scope, key)?;
        if self.write(|w| w.repo.finish_request(scope, key, response))?.value {
            return Ok(());
        }
        Err(Error::Invalid(Invalid(format!(
            "no request holds the idempotency key `{}` of {}: it was never claimed, or was forgotten or purged",
            crate::domain::validate::shown(key),
            crate::domain::validate::shown(scope)
        ))))
    }

    /// Deletes the key `key` of `scope`, so that the same key can be
    /// claimed anew: for a request whose work failed before it did
    /// anything (a storage error), which the client may send again. A key
    /// that is not there is left so (no error: forgetting twice is
    /// harmless).
    pub fn forget_request(&self, scope: &str, key: &str) -> Result<()> {
        let _span = tracing::debug_span!("forget_request").entered();
        check(scope, key)?;
        self.write(|w| w.repo.forget_request(scope, key))?;
        Ok(())
    }

    /// Deletes the keys claimed more than `retention` ago, and at least
    /// [`MIN_REQUEST_RETENTION`] ago, finished or not, in one unit of work;
    /// returns how many. A repeat of such a request is new again. `relay
    /// --watch` purges them with the delivered messages, with the same
    /// retention.
    pub fn purge_requests(&self, retention: Duration) -> Result<usize> {
        let _span = tracing::debug_span!("purge_requests").entered();
        let back = TimeDelta::from_std(retention.max(MIN_REQUEST_RETENTION)).unwrap_or(TimeDelta::MAX);
        let purged = self.write(|w| match w.now.checked_sub_signed(back) {
            Some(before) => w.repo.purge_requests(before),
            // A retention longer than the calendar: nothing is that old.
            None => Ok(0),
        })?;
        Ok(purged.value)
    }
}

/// Refuses a scope or key that is empty or too long.
fn check(scope: &str, key: &str) -> Result<()> {
    bounded("a request scope", scope)?;
    bounded("an idempotency key", key)
}

/// Refuses `value` when empty or longer than [`MAX_REQUEST_KEY`] characters.
fn bounded(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::Invalid(Invalid(format!("{what} must not be empty"))));
    }
    if value.chars().count() > MAX_REQUEST_KEY {
        return Err(Error::Invalid(Invalid(format!("{what} is longer than {MAX_REQUEST_KEY} characters"))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStorage;

    #[test]
    fn empty_or_overlong_keys_are_invalid_input_and_store_nothing() {
        let engine = Engine::builder(MemoryStorage::new()).build();
        let long = "k".repeat(MAX_REQUEST_KEY + 1);
        for (scope, key, fingerprint) in [
            ("", "k", "f"),
            ("s", "", "f"),
            ("s", "k", ""),
            ("s", long.as_str(), "f"),
            ("s", "k", long.as_str()),
            (long.as_str(), "k", "f"),
        ] {
            let e = engine.claim_request(scope, key, fingerprint).expect_err("refused");
            assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        }
        let fine = "k".repeat(MAX_REQUEST_KEY);
        assert_eq!(engine.claim_request("s", &fine, "f").expect("claimed"), RequestClaim::New);
    }

    #[test]
    fn finishing_a_key_nobody_holds_is_invalid_and_forgetting_one_is_harmless() {
        let engine = Engine::builder(MemoryStorage::new()).build();
        let response = StoredResponse { status: 200, body: "{}".into() };
        let e = engine.finish_request("s", "k", &response).expect_err("no such key");
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        engine.forget_request("s", "k").expect("nothing to forget is fine");
        assert_eq!(engine.claim_request("s", "k", "f").expect("claimed"), RequestClaim::New, "nothing was stored");
    }

    #[test]
    fn a_key_claimed_finished_forgotten_and_purged_through_the_engine() {
        let later = Later::default();
        let engine = Engine::builder(MemoryStorage::new()).clock(later.clone()).build();
        assert_eq!(engine.claim_request("customer:kim", "k", "f").unwrap(), RequestClaim::New);
        let since = match engine.claim_request("customer:kim", "k", "f").unwrap() {
            RequestClaim::InFlight { since } => since,
            other => panic!("in flight, not {other:?}"),
        };
        assert!(since <= engine.now());
        let response = StoredResponse { status: 201, body: "{\"order_id\":1}".into() };
        engine.finish_request("customer:kim", "k", &response).unwrap();
        assert_eq!(engine.claim_request("customer:kim", "k", "f").unwrap(), RequestClaim::Done(response));
        assert_eq!(engine.claim_request("customer:lee", "k", "f").unwrap(), RequestClaim::New, "another scope");
        assert_eq!(engine.purge_requests(Duration::from_secs(3_600)).unwrap(), 0, "nothing that old");
        assert_eq!(engine.purge_requests(Duration::MAX).unwrap(), 0, "a retention beyond the calendar");
        engine.forget_request("customer:kim", "k").unwrap();
        assert_eq!(engine.claim_request("customer:kim", "k", "g").unwrap(), RequestClaim::New, "forgotten");
        assert_eq!(engine.purge_requests(Duration::ZERO).unwrap(), 0, "in flight: kept a day whatever is asked");
        *later.0.lock().unwrap() = MIN_REQUEST_RETENTION + Duration::from_secs(1);
        assert_eq!(engine.purge_requests(Duration::from_secs(2 * 86_400)).unwrap(), 0, "the longer retention");
        assert_eq!(engine.purge_requests(Duration::ZERO).unwrap(), 2, "kim's and lee's");
        assert_eq!(engine.claim_request("customer:kim", "k", "f").unwrap(), RequestClaim::New, "purged");
    }

    /// The system's time, as much later as the test says.
    #[derive(Clone, Default)]
    struct Later(std::sync::Arc<std::sync::Mutex<Duration>>);
    impl crate::ports::Clock for Later {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            chrono::Utc::now() + *self.0.lock().unwrap()
        }
    }
}
