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
//!
//! Each breaker has a [`BreakerName`]: one per gateway, and one per notifier
//! channel, whose [`ChannelName`] can never be a gateway's, so that a
//! channel never shares a gateway's breaker.

use chrono::{DateTime, Utc};

use super::strings::status_strings;
use super::validate::{self, Invalid};

/// The name of a notifier channel (`console`, `audit`): a one-line name
/// ([`validate::name`]) that is not a gateway breaker's (`payment`,
/// `charge`), so that the channel's circuit breaker is its own.
///
/// ```
/// use ezdelivery_core::domain::breaker::ChannelName;
/// assert_eq!(ChannelName::new(" audit ").unwrap().as_str(), "audit");
/// assert!(ChannelName::new("payment").is_err());
/// assert!(ChannelName::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(String);

impl ChannelName {
    /// `value` as a channel name, or why it cannot be one.
    pub fn new(value: &str) -> Result<ChannelName, Invalid> {
        ChannelName::parse("channel name", value)
    }

    /// `value` as a channel name; `what` names it in the error (a config
    /// key, such as `[[notify]] kind = "console": name`).
    pub fn parse(what: &str, value: &str) -> Result<ChannelName, Invalid> {
        let name = validate::name(what, value)?;
        match BreakerName::gateway(&name) {
            Some(gateway) => Err(Invalid(format!(
                "{what} \"{name}\" is the name of the {gateway} gateway's circuit breaker: give the channel another \
                 name"
            ))),
            None => Ok(ChannelName(name)),
        }
    }

    /// A channel name the core itself gives (an adapter's default name).
    pub(crate) fn known(name: &'static str) -> ChannelName {
        debug_assert!(ChannelName::new(name).is_ok(), "{name} is not a channel name");
        ChannelName(name.to_string())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ChannelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ChannelName {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelName::new(s)
    }
}

/// Which circuit breaker: a gateway's, or a notifier channel's. Stored,
/// shown and typed as `payment`, `charge` or the channel's name; a channel
/// can never be named like a gateway ([`ChannelName`]), so the names never
/// collide.
///
/// ```
/// use ezdelivery_core::domain::breaker::{BreakerName, ChannelName};
/// assert_eq!("payment".parse::<BreakerName>(), Ok(BreakerName::Payment));
/// let console = BreakerName::Channel(ChannelName::new("console").unwrap());
/// assert_eq!("console".parse::<BreakerName>(), Ok(console.clone()));
/// assert_eq!(console.to_string(), "console");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BreakerName {
    /// The payment gateway's: `payment`.
    Payment,
    /// The delivery-charge gateway's: `charge`.
    Charge,
    /// A notifier channel's: its name.
    Channel(ChannelName),
}

impl BreakerName {
    /// The gateways' breakers, in the order `breaker status` lists them.
    pub const GATEWAYS: [BreakerName; 2] = [BreakerName::Payment, BreakerName::Charge];

    /// The name as stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            BreakerName::Payment => "payment",
            BreakerName::Charge => "charge",
            BreakerName::Channel(channel) => channel.as_str(),
        }
    }

    /// The gateway breaker named `name`, if it is one.
    fn gateway(name: &str) -> Option<BreakerName> {
        BreakerName::GATEWAYS.into_iter().find(|g| g.as_str() == name)
    }
}

impl std::fmt::Display for BreakerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored or typed name: a gateway's, else a channel's.
impl std::str::FromStr for BreakerName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match BreakerName::gateway(s) {
            Some(gateway) => Ok(gateway),
            None => ChannelName::new(s).map(BreakerName::Channel).map_err(|e| e.0),
        }
    }
}

impl serde::Serialize for BreakerName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

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
    /// A gateway's or a notifier channel's.
    pub name: BreakerName,
    /// Closed (calls go through), open (refused) or half open (one trial).
    pub state: BreakerState,
    /// Consecutive failures so far.
    pub failures: u32,
    /// When it opened (open), or when its trial started (half-open).
    pub opened_at: Option<DateTime<Utc>>,
    /// When its state or failure count last changed (the engine's clock,
    /// UTC).
    pub updated_at: DateTime<Utc>,
}

impl Breaker {
    /// A closed breaker with no failures: what a breaker never seen before is.
    pub fn closed(name: BreakerName, now: DateTime<Utc>) -> Breaker {
        Breaker { name, state: BreakerState::Closed, failures: 0, opened_at: None, updated_at: now }
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
            return Breaker::closed(self.name.clone(), now);
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

    fn channel(name: &str) -> BreakerName {
        BreakerName::Channel(ChannelName::new(name).unwrap())
    }

    #[test]
    fn a_channel_is_never_named_like_a_gateway() {
        for gateway in ["payment", "charge"] {
            let refused = ChannelName::parse("[[notify]] name", gateway).unwrap_err().0;
            assert!(refused.contains(&format!("the {gateway} gateway's circuit breaker")), "{refused}");
            assert_eq!(gateway.parse::<BreakerName>().unwrap().as_str(), gateway);
        }
        assert_eq!("payment".parse(), Ok(BreakerName::Payment));
        assert_eq!("charge".parse(), Ok(BreakerName::Charge));
        assert_eq!("Payment".parse(), Ok(channel("Payment")));
        assert_eq!(channel("audit").to_string(), "audit");
        assert!("".parse::<BreakerName>().is_err());
        assert!("a\nb".parse::<BreakerName>().is_err());
        assert_eq!(serde_json::to_value(BreakerName::Charge).unwrap(), "charge");
        assert_eq!(serde_json::to_value(channel("ops")).unwrap(), "ops");
    }

    const S: BreakerSettings = BreakerSettings { failure_threshold: 3, open_ms: 1_000 };

    #[test]
    fn closed_lets_calls_through_and_opens_after_the_threshold() {
        let b = Breaker::closed(BreakerName::Payment, at(0));
        assert_eq!(b.permit(&S, at(0)).1, Permit::Call);
        let b = b.record(false, &S, at(1)).record(false, &S, at(2));
        assert_eq!((b.state, b.failures), (BreakerState::Closed, 2));
        let b = b.record(false, &S, at(3));
        assert_eq!((b.state, b.opened_at), (BreakerState::Open, Some(at(3))));
        assert_eq!(b.reopens_at(&S), Some(at(1_003)));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::closed(BreakerName::Payment, at(0)).record(false, &S, at(1)).record(false, &S, at(2));
        let b = b.record(true, &S, at(3));
        assert_eq!((b.state, b.failures), (BreakerState::Closed, 0));
        assert_eq!(b.record(false, &S, at(4)).state, BreakerState::Closed);
    }

    #[test]
    fn open_refuses_until_open_ms_then_lets_one_trial_through() {
        let open = Breaker {
            state: BreakerState::Open,
            failures: 3,
            opened_at: Some(at(0)),
            ..Breaker::closed(channel("c"), at(0))
        };
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
            ..Breaker::closed(channel("c"), at(0))
        };
        assert_eq!(half.record(true, &S, at(5)).state, BreakerState::Closed);
        let reopened = half.record(false, &S, at(5));
        assert_eq!((reopened.state, reopened.opened_at), (BreakerState::Open, Some(at(5))));
    }

    #[test]
    fn a_huge_open_ms_saturates_instead_of_overflowing() {
        let huge = BreakerSettings { failure_threshold: 1, open_ms: u64::MAX };
        let b = Breaker::closed(BreakerName::Payment, at(0)).record(false, &huge, at(0));
        assert_eq!(b.reopens_at(&huge), Some(crate::domain::time::latest()));
        assert!(matches!(b.permit(&huge, at(1)).1, Permit::Refuse { .. }));
    }

    #[test]
    fn failures_while_open_keep_it_open_from_the_same_time() {
        let open = Breaker {
            state: BreakerState::Open,
            failures: 3,
            opened_at: Some(at(0)),
            ..Breaker::closed(channel("c"), at(0))
        };
        let still = open.record(false, &S, at(10));
        assert_eq!((still.state, still.opened_at, still.failures), (BreakerState::Open, Some(at(0)), 4));
    }
}
