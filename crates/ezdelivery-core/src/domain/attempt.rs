//! One call to an outside gateway (a payment's approval, a delivery charge,
//! the refund of either), possibly retried: the one state machine that says
//! when a call may be made and what its answer means.
//!
//! ```text
//!            claim (a transaction takes it: token + lease)
//!   idle ─────────────────────────────────────────────► claimed ──► the call
//!    ▲                                                     │
//!    │  not reached: due again, as doubtful as before      │
//!    ├──────────────────────────────────────────────────────┤
//!    │  unknown: due again under the same key, in doubt    │
//!    ├──────────────────────────────────────────────────────┤
//!    │                done / declined: settled ◄───────────┤
//!    │                too many unknowns: needs attention ◄──┘
//! ```
//!
//! A call is made only under a claim that a transaction has just written,
//! while the record is still in the state that needs the call; the answer is
//! recorded only while that claim still holds (`holds`), except a definite
//! answer, which is a fact whoever learns it. A claim whose lease ran out
//! (its holder died or stalled) may be taken over; the call it made may have
//! reached the gateway, so the attempt stays in doubt, and only replaying
//! the same idempotency key settles it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A transaction's hold on an attempt while its gateway call is under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Random; the holder's proof when it records the answer. Shared: a
    /// payment or charge is copied on every load and save.
    pub token: Arc<str>,
    /// When the lease runs out and another actor may take the attempt over.
    pub until: DateTime<Utc>,
}

/// What a gateway answered, as far as the engine can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Done, under the gateway's reference.
    Done {
        /// The gateway's id, needed to refund.
        gateway_ref: String,
    },
    /// Refused for good (a declined card).
    Declined {
        /// Why, in the gateway's words.
        reason: String,
    },
    /// The gateway may have acted, but said nothing readable.
    Unknown {
        /// What went wrong with the call (a timeout, an HTTP status, an
        /// unreadable body), for people.
        reason: String,
    },
    /// Certainly not acted on: the call never reached the gateway.
    NotReached {
        /// Why the call never left (the connection was refused, the
        /// service is switched off), for people.
        reason: String,
    },
}

/// What an answer means for the attempt that was claimed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The gateway did it, under this reference; the attempt is settled.
    Done(String),
    /// The gateway refused for good; the attempt is settled.
    Declined(String),
    /// Nothing is settled: try again at the attempt's `next_at`, under the
    /// same key.
    Retry(Attempt),
    /// Too many answers left the outcome unknown: a person must look.
    NeedsAttention(Attempt),
}

/// One call to a gateway, possibly retried: the idempotency key stays the
/// same across retries so the gateway acts on it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Sent as the `Idempotency-Key` header; never changes for this call
    /// (so shared by every copy of the record).
    pub idempotency_key: Arc<str>,
    /// How many times it was tried: calls to the gateway, and tries an
    /// open circuit breaker refused without calling.
    pub tries: u32,
    /// When a retry is due (or a claim's lease ends); `None`: due now.
    pub next_at: Option<DateTime<Utc>>,
    /// What went wrong the last time, for `relay` and humans.
    pub last_error: Option<String>,
    /// A finished try may have reached the gateway without our learning
    /// the result. Such an attempt is never dropped: only its own key may
    /// be sent again, until an answer settles it.
    pub maybe_processed: bool,
    /// Tries in a row whose answer left the outcome unknown.
    pub unsettled: u32,
    /// The hold of the actor calling the gateway for it, if any.
    pub claim: Option<Claim>,
    /// The gateway it goes to, by name (`PaymentGateway::name`): the one
    /// its last claim was for. `None`: never claimed (or claimed by a
    /// version that did not record it). Once that gateway may know of it,
    /// only that gateway may be called for it ([`Attempt::goes_to`]).
    pub gateway: Option<Arc<str>>,
}

impl Attempt {
    /// A fresh attempt under `idempotency_key`, never tried.
    pub fn new(idempotency_key: String) -> Attempt {
        Attempt {
            idempotency_key: idempotency_key.into(),
            tries: 0,
            next_at: None,
            last_error: None,
            maybe_processed: false,
            unsettled: 0,
            claim: None,
            gateway: None,
        }
    }

    /// Whether gateway `gateway` may be called for it. `taking`: the call
    /// takes money (approves a payment, pays a rider) rather than giving
    /// back what was taken.
    ///
    /// Once a gateway may know of the call, only that gateway may be
    /// called: only it can answer a replayed key with what it did, and
    /// another would act on the key afresh and take the money a second
    /// time. Giving back always goes to the gateway that holds the money.
    /// A take that certainly never reached its gateway (a connection
    /// refused, say: not [`Attempt::in_doubt`]) may go to another, which
    /// becomes its gateway; so may one with no gateway recorded.
    pub fn goes_to(&self, gateway: &str, taking: bool) -> bool {
        self.gateway.as_deref().is_none_or(|g| g == gateway) || (taking && !self.in_doubt())
    }

    /// Whether the gateway may have acted on it: a finished try may have
    /// reached it, or a call is (or was, if its holder died) under way.
    pub fn in_doubt(&self) -> bool {
        self.maybe_processed || self.claim.is_some()
    }

    /// Whether nobody holds a live claim on it at `now`.
    pub fn claimable(&self, now: DateTime<Utc>) -> bool {
        self.claim.as_ref().is_none_or(|c| c.until <= now)
    }

    /// Whether a retry is due at `now` (back-off over, no live claim).
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.claimable(now) && self.next_at.is_none_or(|at| at <= now)
    }

    /// The attempt held by `token` until `until`, about to be called
    /// through `gateway` (which it [`Attempt::goes_to`]), its gateway from
    /// now on. A claim taken over from a holder whose lease ran out leaves
    /// the attempt in doubt: that holder's call may have reached the
    /// gateway.
    pub fn claim(&self, token: Arc<str>, until: DateTime<Utc>, gateway: &Arc<str>) -> Attempt {
        Attempt {
            maybe_processed: self.in_doubt(),
            claim: Some(Claim { token, until }),
            next_at: Some(until),
            gateway: Some(Arc::clone(gateway)),
            ..self.clone()
        }
    }

    /// Whether the claim `token` still holds it.
    pub fn holds(&self, token: &str) -> bool {
        self.claim.as_ref().is_some_and(|c| *c.token == *token)
    }

    /// The one place that decides what an answer means. `retry_at` is when
    /// to try again if nothing is settled; after `attention_after` unknown
    /// answers in a row, the attempt needs a person.
    pub fn judge(&self, answer: &Answer, retry_at: DateTime<Utc>, attention_after: u32) -> Verdict {
        let tried = Attempt { tries: self.tries.saturating_add(1), claim: None, ..self.clone() };
        match answer {
            Answer::Done { gateway_ref } => Verdict::Done(gateway_ref.clone()),
            Answer::Declined { reason } => Verdict::Declined(reason.clone()),
            // Never reached: as doubtful as before this try, no more.
            Answer::NotReached { reason } => Verdict::Retry(Attempt {
                next_at: Some(retry_at),
                last_error: Some(reason.clone()),
                maybe_processed: self.maybe_processed,
                ..tried
            }),
            Answer::Unknown { reason } => {
                let unsettled = self.unsettled.saturating_add(1);
                let doubtful = Attempt {
                    last_error: Some(reason.clone()),
                    maybe_processed: true,
                    unsettled,
                    next_at: Some(retry_at),
                    ..tried
                };
                if unsettled >= attention_after.max(1) {
                    Verdict::NeedsAttention(Attempt { next_at: None, ..doubtful })
                } else {
                    Verdict::Retry(doubtful)
                }
            }
        }
    }

    /// The same attempt, to be replayed at once (its order was cancelled),
    /// unless a call is under way: that one's answer is awaited.
    pub fn replay_now(&self, now: DateTime<Utc>) -> Attempt {
        let next_at = if self.claimable(now) { Some(now) } else { self.next_at };
        Attempt { next_at, ..self.clone() }
    }

    /// The same attempt, settled by a definite answer: nothing more is due.
    pub fn answered(&self) -> Attempt {
        Attempt {
            tries: self.tries.saturating_add(1),
            next_at: None,
            last_error: None,
            maybe_processed: false,
            unsettled: 0,
            claim: None,
            ..self.clone()
        }
    }

    /// The same attempt, due again now with a fresh count of unknown
    /// answers (after a person looked at it). Still in doubt: only its own
    /// key may be sent.
    pub fn requeued(&self, now: DateTime<Utc>) -> Attempt {
        Attempt { next_at: Some(now), unsettled: 0, claim: None, ..self.clone() }
    }

    /// The attempt of the refund that undoes this one, under a key derived
    /// from this one's (so it is as unique), to the same gateway: the one
    /// that holds the money.
    pub fn refund(&self) -> Attempt {
        Attempt { gateway: self.gateway.clone(), ..Attempt::new(format!("{}-refund", self.idempotency_key)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn done() -> Answer {
        Answer::Done { gateway_ref: "gw-1".into() }
    }

    fn unknown() -> Answer {
        Answer::Unknown { reason: "HTTP 503".into() }
    }

    fn gw(name: &str) -> Arc<str> {
        name.into()
    }

    fn unreached() -> Answer {
        Answer::NotReached { reason: "connection refused".into() }
    }

    #[test]
    fn a_claim_holds_until_its_lease_ends_and_can_then_be_taken_over() {
        let a = Attempt::new("k".into());
        assert!(!a.in_doubt() && a.claimable(t(0)) && a.due(t(0)));
        let held = a.claim("one".into(), t(60), &gw("pay"));
        assert!(held.holds("one") && !held.holds("two"));
        assert!(held.in_doubt(), "a call is under way");
        assert!(!held.claimable(t(59)) && !held.due(t(59)));
        assert!(held.claimable(t(60)) && held.due(t(60)));
        // The first holder died: its call may have reached the gateway.
        let taken = held.claim("two".into(), t(120), &gw("pay"));
        assert!(taken.holds("two") && !taken.holds("one") && taken.maybe_processed);
    }

    #[test]
    fn every_answer_has_one_meaning() {
        let held = Attempt::new("k".into()).claim("c".into(), t(60), &gw("pay"));
        assert_eq!(held.judge(&done(), t(1), 3), Verdict::Done("gw-1".into()));
        let declined = Answer::Declined { reason: "no".into() };
        assert_eq!(held.judge(&declined, t(1), 3), Verdict::Declined("no".into()));

        let Verdict::Retry(never) = held.judge(&unreached(), t(1), 3) else { panic!("retry") };
        assert!(!never.in_doubt(), "a call that never connected proves nothing happened");
        assert_eq!((never.tries, never.unsettled, never.next_at), (1, 0, Some(t(1))));

        let Verdict::Retry(doubt) = held.judge(&unknown(), t(1), 3) else { panic!("retry") };
        assert!(doubt.in_doubt() && doubt.claim.is_none());
        assert_eq!((doubt.tries, doubt.unsettled), (1, 1));
        // Doubt is never lost to a later unreached try.
        let Verdict::Retry(still) = doubt.claim("d".into(), t(60), &gw("pay")).judge(&unreached(), t(2), 3) else {
            panic!()
        };
        assert!(still.in_doubt() && still.unsettled == 1);
    }

    #[test]
    fn unknown_answers_in_a_row_end_in_needs_attention() {
        let mut a = Attempt::new("k".into());
        for round in 1..=3 {
            match a.claim("c".into(), t(60), &gw("pay")).judge(&unknown(), t(1), 3) {
                Verdict::Retry(next) if round < 3 => a = next,
                Verdict::NeedsAttention(next) if round == 3 => {
                    assert_eq!((next.unsettled, next.next_at, next.claim.clone()), (3, None, None));
                    let again = next.requeued(t(5));
                    assert_eq!((again.unsettled, again.next_at), (0, Some(t(5))));
                    assert!(again.in_doubt(), "still only its own key may be sent");
                    return;
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
        panic!("never needed attention");
    }

    #[test]
    fn a_definite_answer_settles_and_a_refund_gets_its_own_key() {
        let a = Attempt::new("k".into()).claim("c".into(), t(60), &gw("pay")).answered();
        assert!(!a.in_doubt() && a.next_at.is_none() && a.tries == 1);
        let r = a.refund();
        assert_eq!(r.idempotency_key, "k-refund".into());
        assert!(!r.in_doubt() && r.tries == 0);
    }

    #[test]
    fn a_call_stays_with_the_gateway_that_may_know_it_and_a_refund_with_the_one_that_holds_the_money() {
        let (take, give_back) = (true, false);
        let a = Attempt::new("k".into());
        assert!(a.goes_to("pay", take) && a.goes_to("other", take), "never claimed: any gateway");
        let held = a.claim("c".into(), t(60), &gw("pay"));
        assert_eq!(held.gateway.as_deref(), Some("pay"));
        assert!(held.goes_to("pay", take) && !held.goes_to("other", take), "a call under way");

        // Never reached: the next claim may go to another gateway, which becomes its own.
        let Verdict::Retry(never) = held.judge(&unreached(), t(1), 3) else { panic!("retry") };
        assert!(never.goes_to("other", take));
        let moved = never.claim("d".into(), t(120), &gw("other"));
        assert_eq!(moved.gateway.as_deref(), Some("other"));

        // May have reached it: that gateway only, for as long as it is in doubt.
        let Verdict::Retry(doubt) = moved.judge(&unknown(), t(2), 3) else { panic!("retry") };
        assert!(doubt.goes_to("other", take) && !doubt.goes_to("pay", take));
        let Verdict::Retry(still) = doubt.claim("e".into(), t(180), &gw("other")).judge(&unreached(), t(3), 3) else {
            panic!("retry")
        };
        assert!(!still.goes_to("pay", take), "doubt is not lost to a later unreached try");

        // Given back: to the gateway that took it, whatever the refund's own tries did.
        let refund = still.answered().refund();
        assert_eq!(refund.gateway.as_deref(), Some("other"), "the money goes back the way it came");
        assert!(!refund.in_doubt() && refund.goes_to("other", give_back) && !refund.goes_to("pay", give_back));
        let Verdict::Retry(refund_unreached) =
            refund.claim("f".into(), t(240), &gw("other")).judge(&unreached(), t(4), 3)
        else {
            panic!("retry")
        };
        assert!(!refund_unreached.goes_to("pay", give_back));
    }
}
