//! The ports: small traits the application talks to, each with more than one
//! adapter (`crate::adapters`). Storage is a port too.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::domain::attempt::Answer;
use crate::domain::{ChannelName, OrderId, RiderId, Won};

pub mod copy;
pub mod outbox;
pub mod requests;
pub mod storage;

pub use outbox::Message;
pub use requests::{RequestClaim, StoredResponse};
pub use storage::{Repo, Storage, StoredEvent, Table};

/// What a [`Message`] is about: an event's type (the domain's).
pub use crate::domain::EventType;

/// Where the time comes from (the domain never reads a clock). It should
/// not go back (see the crate documentation, "Clocks"), and must read a
/// year from 1 to 9000: a unit of work refuses any other, writing nothing.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// The system's time. A system clock set before 1970 reads as it is,
    /// and one past what chrono holds as its latest time (chrono's
    /// `Utc::now` panics on both); a unit of work then refuses it.
    fn now(&self) -> DateTime<Utc> {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            // Without the cache while the thread's locals are torn down.
            Ok(since) => LAST_DAY
                .try_with(|last| after_epoch(since, last))
                .unwrap_or_else(|_| after_epoch(since, &Cell::new(None)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            Err(before) => before_epoch(before.duration()),
        }
    }
}

thread_local! {
    /// The day of the last reading on this thread (days since 1970) and
    /// its date: the calendar arithmetic that makes a date of a day
    /// number was most of a reading, and every unit of work reads the
    /// clock (with it, 1 % of an in-memory lifecycle's instructions).
    static LAST_DAY: Cell<Option<(u64, NaiveDate)>> = const { Cell::new(None) };
}

/// The time `since` after 1970-01-01T00:00:00Z, its date taken from
/// `last` when it is of the same day (and kept there for the next);
/// `None` past the dates chrono can hold.
fn after_epoch(since: Duration, last: &Cell<Option<(u64, NaiveDate)>>) -> Option<DateTime<Utc>> {
    const DAY: u64 = 86_400;
    const CE_TO_EPOCH_DAYS: i64 = 719_163;
    let (day, second) = (since.as_secs() / DAY, since.as_secs() % DAY);
    let date = match last.get() {
        Some((cached, date)) if cached == day => date,
        _ => {
            let days = i64::try_from(day).ok()?.checked_add(CE_TO_EPOCH_DAYS)?;
            let date = NaiveDate::from_num_days_from_ce_opt(i32::try_from(days).ok()?)?;
            last.set(Some((day, date)));
            date
        }
    };
    let time = NaiveTime::from_num_seconds_from_midnight_opt(u32::try_from(second).ok()?, since.subsec_nanos())?;
    Some(date.and_time(time).and_utc())
}

/// The time `before` before 1970-01-01T00:00:00Z; chrono's earliest when
/// it cannot hold it.
fn before_epoch(before: Duration) -> DateTime<Utc> {
    // chrono counts whole seconds down and the nanoseconds after them up.
    let (secs, nanos) = match before.subsec_nanos() {
        0 => (i64::try_from(before.as_secs()).ok(), 0),
        n => (i64::try_from(before.as_secs()).ok().and_then(|s| s.checked_add(1)), 1_000_000_000 - n),
    };
    secs.and_then(i64::checked_neg).and_then(|s| DateTime::from_timestamp(s, nanos)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What a gateway answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayOutcome {
    /// Done; the gateway's id for the payment or charge.
    Approved {
        /// The gateway's reference, needed to refund later: a blank one,
        /// answering a charge, is taken as [`GatewayOutcome::Unavailable`]
        /// (the engine could never give that money back).
        gateway_ref: String,
    },
    /// Refused for good: a declined card; a delivery charge or a refund the
    /// gateway refuses. The service answered, so its breaker counts it as
    /// up. Only a payment's refusal settles it; a charge or a refund cannot
    /// be dropped, so the engine asks again under its key, and after
    /// `[retry] attention_after` such answers it needs a person.
    Declined {
        /// Why, in the gateway's words.
        reason: String,
    },
    /// No readable answer, and the work may have been done: a timeout, a
    /// connection dropped after the request was sent, any status but a 2xx
    /// or a decline (503 included), a 2xx whose body cannot be read. The
    /// same key is replayed until the answer can be read; an attempt like
    /// this is never dropped, and after too many such answers it needs a
    /// person (`needs_attention`).
    Unavailable {
        /// What went wrong (a timeout, an HTTP status, an unreadable
        /// body), for people and the event log.
        reason: String,
    },
    /// Certainly not acted on: the request never left (the connection was
    /// never established, or the service is switched off). Tried again
    /// later; a cancelled order may drop it.
    NotReached {
        /// Why the request never left (the connection was refused, the
        /// service is switched off), for people and the event log.
        reason: String,
    },
}

impl GatewayOutcome {
    /// True when the service answered (approved or declined): it is up.
    pub fn reached(&self) -> bool {
        matches!(self, GatewayOutcome::Approved { .. } | GatewayOutcome::Declined { .. })
    }

    /// The answer as the domain judges it ([`Answer`]).
    pub fn answer(&self) -> Answer {
        self.clone().into()
    }
}

/// The answer as the domain judges it, taking the outcome's texts.
impl From<GatewayOutcome> for Answer {
    fn from(outcome: GatewayOutcome) -> Answer {
        match outcome {
            GatewayOutcome::Approved { gateway_ref } => Answer::Done { gateway_ref },
            GatewayOutcome::Declined { reason } => Answer::Declined { reason },
            GatewayOutcome::Unavailable { reason } => Answer::Unknown { reason },
            GatewayOutcome::NotReached { reason } => Answer::NotReached { reason },
        }
    }
}

/// A request to charge a customer for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Stays the same when this attempt is retried.
    pub idempotency_key: Arc<str>,
    /// The order this payment is for.
    pub order_id: OrderId,
    /// The order's total, in whole won: the gateway charges exactly this.
    pub amount: Won,
    /// The card, masked but for the last four digits, if one was given.
    pub card: Option<String>,
}

/// A request to pay (or take back) a rider's delivery charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Stays the same when this attempt is retried.
    pub idempotency_key: Arc<str>,
    /// The order whose delivery the charge is for.
    pub order_id: OrderId,
    /// The rider to pay (or take the charge back from).
    pub rider_id: RiderId,
    /// That rider's name, unique among riders, for the gateway's records.
    pub rider: String,
    /// The delivery charge, in whole won.
    pub amount: Won,
}

/// A request to undo an approved payment or a paid charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// Stays the same when this refund is retried.
    pub idempotency_key: Arc<str>,
    /// The order the payment or charge was for.
    pub order_id: OrderId,
    /// The gateway's id of what is undone.
    pub gateway_ref: String,
    /// What is given back, in whole won: all that was taken.
    pub amount: Won,
    /// Why it is undone (the order was cancelled or rejected, the rider
    /// replaced), for the gateway's records.
    pub reason: String,
}

/// The payment service: approves customers' payments and refunds them.
pub trait PaymentGateway: Send + Sync {
    /// Which service this is: recorded with each payment the first time a
    /// call is made for it, and after that the payment is approved,
    /// replayed and refunded only by a gateway of the same name (another
    /// would not know its idempotency key or its reference, and could
    /// charge the customer a second time). Gateways that reach the same
    /// service share a name; two that reach different services never do.
    /// The sandbox is `sandbox`, an HTTP gateway its base URL.
    fn name(&self) -> &str;
    /// Charges the customer. Retrying with the same key must not charge
    /// twice. A panic is taken as [`GatewayOutcome::Unavailable`]: the
    /// engine asks again under the same key.
    fn approve(&self, request: &PaymentRequest) -> GatewayOutcome;
    /// Refunds an approved payment (`Declined` is not a valid answer here and
    /// is treated like `Unavailable`).
    fn refund(&self, request: &RefundRequest) -> GatewayOutcome;
}

/// A boxed gateway is a gateway (so adapters picked at run time plug in).
impl<G: PaymentGateway + ?Sized> PaymentGateway for Box<G> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn approve(&self, request: &PaymentRequest) -> GatewayOutcome {
        (**self).approve(request)
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        (**self).refund(request)
    }
}

/// The delivery-charge service: pays riders and takes charges back.
pub trait ChargeGateway: Send + Sync {
    /// Which service this is, recorded with each delivery charge as
    /// [`PaymentGateway::name`] is with each payment, for the same reason.
    fn name(&self) -> &str;
    /// Pays the rider. Retrying with the same key must not pay twice. A
    /// panic is taken as [`GatewayOutcome::Unavailable`], as for payments.
    fn pay(&self, request: &ChargeRequest) -> GatewayOutcome;
    /// Takes a paid charge back.
    fn refund(&self, request: &RefundRequest) -> GatewayOutcome;
}

/// A boxed gateway is a gateway.
impl<G: ChargeGateway + ?Sized> ChargeGateway for Box<G> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn pay(&self, request: &ChargeRequest) -> GatewayOutcome {
        (**self).pay(request)
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        (**self).refund(request)
    }
}

/// A channel that delivers messages (console, JSON lines, webhook, KakaoTalk).
pub trait Notifier: Send + Sync {
    /// The channel's name, unique among the configured notifiers; delivery
    /// state is kept per message and channel, and the channel has its own
    /// circuit breaker ([`crate::domain::BreakerName::Channel`]).
    fn channel(&self) -> &ChannelName;
    /// Delivers one message; `Err` means "not delivered, try again later".
    fn send(&self, message: &Message) -> Result<(), String>;
    /// [`Notifier::send`], giving up after `within` at the latest: what is
    /// left of a command's relay budget, which a channel that does not
    /// answer must not stretch (its message is then left to `relay`);
    /// `Duration::MAX` when nothing bounds the call (`relay`). The engine
    /// calls this one. The default ignores `within`; a notifier whose calls
    /// can take long (over a network) should honour it.
    fn send_within(&self, message: &Message, within: std::time::Duration) -> Result<(), String> {
        let _ = within;
        self.send(message)
    }
    /// The longest text, in characters, the channel takes (`None`: no
    /// limit, the default). The engine fits each message to it before
    /// [`Notifier::send`] ([`crate::domain::fit::fit`]): a big order's message
    /// is shortened, never refused by the channel over and over.
    fn max_chars(&self) -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What chrono makes of the same reading, with no cache.
    fn chrono_at(since: Duration) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(i64::try_from(since.as_secs()).ok()?, since.subsec_nanos())
    }

    #[test]
    fn a_reading_is_the_time_chrono_makes_of_it_across_days_whatever_was_read_before() {
        let last = Cell::new(None);
        // Midnight, the last nanosecond of a day and the next day's first,
        // a day read again after another, and a leap day.
        let day = 86_400;
        let readings = [
            (1_714_521_600, 0),
            (1_714_521_600 + day - 1, 999_999_999),
            (1_714_521_600 + day, 0),
            (1_714_521_600, 123_456_789),
            (1_709_164_800 + 3_600, 1),
            (0, 0),
            (253_402_300_799, 999_999_000),
        ];
        for (secs, nanos) in readings {
            let since = Duration::new(secs, nanos);
            assert_eq!(after_epoch(since, &last), chrono_at(since), "{secs}.{nanos}");
            assert_eq!(last.get().map(|(d, _)| d), Some(secs / day), "the day read is kept for the next");
            assert_eq!(after_epoch(since, &last), chrono_at(since), "{secs}.{nanos} again, from the kept day");
        }
    }

    #[test]
    fn a_reading_past_what_chrono_holds_is_none() {
        let last = Cell::new(None);
        assert_eq!(after_epoch(Duration::new(u64::MAX, 0), &last), None);
        assert_eq!(after_epoch(Duration::new(1 << 43, 0), &last), None, "past the year 262,143");
        assert_eq!(last.get(), None, "nothing kept of a reading that was not made");
    }

    #[test]
    fn a_clock_before_1970_reads_as_it_is() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).ok();
        assert_eq!(Some(before_epoch(Duration::new(1, 500_000_000))), at("1969-12-31T23:59:58.5Z"));
        assert_eq!(Some(before_epoch(Duration::new(86_400, 0))), at("1969-12-31T00:00:00Z"));
        assert_eq!(Some(before_epoch(Duration::ZERO)), at("1970-01-01T00:00:00Z"));
        assert_eq!(before_epoch(Duration::new(u64::MAX, 1)), DateTime::<Utc>::MIN_UTC);
    }

    #[test]
    fn the_system_clock_reads_what_chrono_reads() {
        let before = Utc::now();
        let now = SystemClock.now();
        let again = SystemClock.now();
        assert!(before <= now && now <= again && again <= Utc::now(), "{before}, then {now} and {again}");
    }
}
