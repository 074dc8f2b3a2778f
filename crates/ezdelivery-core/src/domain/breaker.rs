//! The circuit breaker around one gateway or notifier channel.
//!
//! ```text
//!          failure_threshold consecutive failures            open_ms passed
//! closed ───────────────────────────────────────► open ─────────────────────► half_open (one trial call)
//!   ▲                                              ▲                              │ │
//!   │                      success                 └─────────── failure ──────────┘ │
//!   └───────────────────────────────────────────────────────────────────────────────┘
//! ```
//! Only "unavailable" answers (connection errors, timeouts, 5xx) are
//! failures; a declined card is the service working. The state lives in the
//! database so that it holds across CLI processes.

use chrono::{DateTime, Utc};

use super::status_strings;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused at once, without reaching the service.
    Open,
    /// One trial call is let through; its result closes or reopens the breaker.
    HalfOpen,
}

status_strings!(BreakerState {
    Closed => "closed",
    Open => "open",
    HalfOpen => "half_open",
});

/// When a breaker opens and how long it stays open: also the config
/// file's `[breaker]` section, every key optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it refuses calls before letting a trial through, in milliseconds.
    pub open_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings { failure_threshold: 5, open_ms: 30_000 }
    }
}

impl BreakerSettings {
    /// When a breaker opened at `at` lets a trial through. Saturates
    /// instead of overflowing, however large `open_ms` is.
    fn reopen_after(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        super::time::after_ms(at, self.open_ms)
    }
}

/// What the breaker says about a call about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Make the call.
    Call,
    /// Make the call: it is the half-open trial.
    Trial,
    /// Do not call; the breaker is open until then.
    Refuse {
        /// When a trial will be let through.
        until: DateTime<Utc>,
    },
}

/// One breaker's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    /// `payment`, `charge`, or a notifier channel's name.
    pub name: String,
    /// Closed (calls go through), open (refused) or half open (one trial).
    pub state: BreakerState,
    /// Consecutive failures so far.
    pub failures: u32,
    /// When it opened (open), or when its trial started (half-open).
    pub opened_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Breaker {
    /// A closed breaker with no failures: what a breaker never seen before is.
    pub fn closed(name: &str, now: DateTime<Utc>) -> Breaker {
        Breaker { name: name.to_string(), state: BreakerState::Closed, failures: 0, opened_at: None, updated_at: now }
    }

    /// Whether a call may be made now, and the breaker after asking (an
    /// open breaker whose time is up becomes half-open for one trial; a
    /// trial that never reported back within `open_ms` is replaced).
    pub fn permit(&self, settings: &BreakerSettings, now: DateTime<Utc>) -> (Breaker, Permit) {
        match self.state {
            BreakerState::Closed => (self.clone(), Permit::Call),
            BreakerState::Open | BreakerState::HalfOpen => {
                let until = settings.reopen_after(self.opened_at.unwrap_or(now));
                if now < until {
                    return (self.clone(), Permit::Refuse { until });
                }
                let trial =
                    Breaker { state: BreakerState::HalfOpen, opened_at: Some(now), updated_at: now, ..self.clone() };
                (trial, Permit::Trial)
            }
        }
    }

    /// The breaker after a call that reached the service (`ok`) or did not.
    pub fn record(&self, ok: bool, settings: &BreakerSettings, now: DateTime<Utc>) -> Breaker {
        if ok {
            return Breaker::closed(&self.name, now);
        }
        let failures = self.failures.saturating_add(1);
        let opens = self.state != BreakerState::Closed || failures >= settings.failure_threshold;
        match (self.state, opens) {
            (BreakerState::Open, _) => Breaker { failures, updated_at: now, ..self.clone() },
            (_, true) => {
                Breaker { state: BreakerState::Open, failures, opened_at: Some(now), updated_at: now, ..self.clone() }
            }
            (_, false) => Breaker { failures, updated_at: now, ..self.clone() },
        }
    }

    /// When an open breaker lets its next trial through.
    pub fn reopens_at(&self, settings: &BreakerSettings) -> Option<DateTime<Utc>> {
        match self.state {
            BreakerState::Closed => None,
            _ => self.opened_at.map(|at| settings.reopen_after(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    const S: BreakerSettings = BreakerSettings { failure_threshold: 3, open_ms: 1_000 };

    #[test]
    fn closed_lets_calls_through_and_opens_after_the_threshold() {
        let b = Breaker::closed("payment", at(0));
        assert_eq!(b.permit(&S, at(0)).1, Permit::Call);
        let b = b.record(false, &S, at(1)).record(false, &S, at(2));
        assert_eq!((b.state, b.failures), (BreakerState::Closed, 2));
        let b = b.record(false, &S, at(3));
        assert_eq!((b.state, b.opened_at), (BreakerState::Open, Some(at(3))));
        assert_eq!(b.reopens_at(&S), Some(at(1_003)));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::closed("payment", at(0)).record(false, &S, at(1)).record(false, &S, at(2));
        let b = b.record(true, &S, at(3));
        assert_eq!((b.state, b.failures), (BreakerState::Closed, 0));
        assert_eq!(b.record(false, &S, at(4)).state, BreakerState::Closed);
    }

    #[test]
    fn open_refuses_until_open_ms_then_lets_one_trial_through() {
        let open =
            Breaker { state: BreakerState::Open, failures: 3, opened_at: Some(at(0)), ..Breaker::closed("c", at(0)) };
        assert_eq!(open.permit(&S, at(999)).1, Permit::Refuse { until: at(1_000) });
        let (trial, permit) = open.permit(&S, at(1_000));
        assert_eq!((trial.state, permit), (BreakerState::HalfOpen, Permit::Trial));
        // While the trial is out, others are refused.
        assert!(matches!(trial.permit(&S, at(1_500)).1, Permit::Refuse { .. }));
        // A trial that never reported back is replaced after open_ms.
        assert_eq!(trial.permit(&S, at(2_000)).1, Permit::Trial);
    }

    #[test]
    fn the_trial_closes_or_reopens() {
        let half = Breaker {
            state: BreakerState::HalfOpen,
            failures: 3,
            opened_at: Some(at(0)),
            ..Breaker::closed("c", at(0))
        };
        assert_eq!(half.record(true, &S, at(5)).state, BreakerState::Closed);
        let reopened = half.record(false, &S, at(5));
        assert_eq!((reopened.state, reopened.opened_at), (BreakerState::Open, Some(at(5))));
    }

    #[test]
    fn a_huge_open_ms_saturates_instead_of_overflowing() {
        let huge = BreakerSettings { failure_threshold: 1, open_ms: u64::MAX };
        let b = Breaker::closed("p", at(0)).record(false, &huge, at(0));
        assert_eq!(b.reopens_at(&huge), Some(DateTime::<Utc>::MAX_UTC));
        assert!(matches!(b.permit(&huge, at(1)).1, Permit::Refuse { .. }));
    }

    #[test]
    fn failures_while_open_keep_it_open_from_the_same_time() {
        let open =
            Breaker { state: BreakerState::Open, failures: 3, opened_at: Some(at(0)), ..Breaker::closed("c", at(0)) };
        let still = open.record(false, &S, at(10));
        assert_eq!((still.state, still.opened_at, still.failures), (BreakerState::Open, Some(at(0)), 4));
    }
}
