//! A payment attempt for an order, and its refund.
//!
//! ```text
//! pending ──approve──► approved ──request refund──► refund_pending ──confirm──► refunded
//!    │ └──decline──► declined
//!    └────void (order cancelled while queued)──► voided
//! ```
//! A payment that cannot reach the gateway stays `pending` and is queued.

use chrono::{DateTime, Utc};

use super::attempt::Attempt;
use super::{status_strings, Event, OrderId, PaymentId, Refusal, Won};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Sent or queued; no answer from the gateway yet.
    Pending,
    /// Approved: the order is established.
    Approved,
    /// Declined by the gateway; the customer may pay again.
    Declined,
    /// The order was cancelled or rejected; the refund is not confirmed yet.
    RefundPending,
    /// Refunded.
    Refunded,
    /// Never charged: the order was cancelled while the payment was queued.
    Voided,
}

status_strings!(PaymentStatus {
    Pending => "pending",
    Approved => "approved",
    Declined => "declined",
    RefundPending => "refund_pending",
    Refunded => "refunded",
    Voided => "voided",
});

/// What can happen to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentAction {
    /// The gateway approved.
    Approve,
    /// The gateway declined.
    Decline,
    /// The order was cancelled before the payment got through.
    Void,
    /// The order was cancelled or rejected after approval.
    RequestRefund,
    /// The gateway confirmed the refund.
    ConfirmRefund,
}

impl PaymentStatus {
    /// The payment's state machine: one line per allowed move.
    pub fn next(self, action: PaymentAction) -> Option<PaymentStatus> {
        use PaymentAction as A;
        use PaymentStatus as S;
        match (self, action) {
            (S::Pending, A::Approve) => Some(S::Approved),
            (S::Pending, A::Decline) => Some(S::Declined),
            (S::Pending, A::Void) => Some(S::Voided),
            // A call that was in flight when the order was cancelled came back
            // approved: the money moved, so it goes straight back.
            (S::Voided, A::Approve) => Some(S::RefundPending),
            (S::Approved, A::RequestRefund) => Some(S::RefundPending),
            (S::RefundPending, A::ConfirmRefund) => Some(S::Refunded),
            _ => None,
        }
    }
}

/// One payment attempt for an order. A declined payment stays on record and
/// a new attempt gets a new id and a new idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Its id.
    pub id: PaymentId,
    /// The order it pays.
    pub order_id: OrderId,
    /// The order's total.
    pub amount: Won,
    /// The card, masked but for its last four digits (never stored whole).
    pub card: Option<String>,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The gateway's id for the approved payment (needed to refund it).
    pub gateway_ref: Option<String>,
    /// The approval call (or, from `refund_pending` on, the refund call).
    pub attempt: Attempt,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// A new pending payment of `amount` for `order_id`, to be sent under
    /// `idempotency_key` (unique across databases: the gateway may serve many).
    pub fn request(
        id: PaymentId,
        order_id: OrderId,
        amount: Won,
        card: Option<String>,
        idempotency_key: String,
        now: DateTime<Utc>,
    ) -> Payment {
        Payment {
            id,
            order_id,
            amount,
            card,
            status: PaymentStatus::Pending,
            gateway_ref: None,
            attempt: Attempt::new(idempotency_key),
            created_at: now,
            updated_at: now,
        }
    }

    fn to(&self, action: PaymentAction, now: DateTime<Utc>) -> Result<Payment, Refusal> {
        match self.status.next(action) {
            Some(status) => Ok(Payment { status, updated_at: now, ..self.clone() }),
            None => Err(Refusal::Transition {
                what: "payment",
                order: self.order_id,
                status: self.status.as_str(),
                action: match action {
                    PaymentAction::Approve => "be approved",
                    PaymentAction::Decline => "be declined",
                    PaymentAction::Void => "be voided",
                    PaymentAction::RequestRefund => "be refunded",
                    PaymentAction::ConfirmRefund => "confirm a refund",
                },
            }),
        }
    }

    /// The gateway approved under its id `gateway_ref`.
    pub fn approve(&self, gateway_ref: &str, now: DateTime<Utc>) -> Result<(Payment, Event), Refusal> {
        let mut p = self.to(PaymentAction::Approve, now)?;
        p.gateway_ref = Some(gateway_ref.to_string());
        p.attempt = match p.status {
            PaymentStatus::RefundPending => p.attempt.refund(),
            _ => p.attempt.answered(),
        };
        let e = Event::PaymentApproved { order_id: p.order_id, payment_id: p.id, amount: p.amount };
        Ok((p, e))
    }

    /// The gateway declined, for `reason`.
    pub fn decline(&self, reason: &str, now: DateTime<Utc>) -> Result<(Payment, Event), Refusal> {
        let mut p = self.to(PaymentAction::Decline, now)?;
        p.attempt = p.attempt.answered();
        let e = Event::PaymentDeclined {
            order_id: p.order_id,
            payment_id: p.id,
            amount: p.amount,
            reason: reason.to_string(),
        };
        Ok((p, e))
    }

    /// Drops a payment that never got through because its order was cancelled.
    pub fn void(&self, now: DateTime<Utc>) -> Result<(Payment, Event), Refusal> {
        let mut p = self.to(PaymentAction::Void, now)?;
        p.attempt.next_at = None;
        let e = Event::PaymentVoided { order_id: p.order_id, payment_id: p.id };
        Ok((p, e))
    }

    /// The order was cancelled or rejected: the approved payment is to be refunded.
    pub fn request_refund(&self, now: DateTime<Utc>) -> Result<Payment, Refusal> {
        let mut p = self.to(PaymentAction::RequestRefund, now)?;
        p.attempt = p.attempt.refund();
        Ok(p)
    }

    /// Stops this payment from charging for a cancelled or rejected order:
    /// an approved one is to be refunded, a pending one that never reached
    /// the gateway is voided, a finished one is left alone. A pending one
    /// the gateway may have acted on stays pending, due now: `relay` asks
    /// again under the same key, and an approval is refunded at once.
    pub fn withdraw(&self, now: DateTime<Utc>) -> Result<(Payment, Option<Event>), Refusal> {
        match self.status {
            PaymentStatus::Pending if self.attempt.maybe_processed => {
                let due = Attempt { next_at: Some(now), ..self.attempt.clone() };
                Ok((Payment { attempt: due, updated_at: now, ..self.clone() }, None))
            }
            PaymentStatus::Pending => self.void(now).map(|(p, e)| (p, Some(e))),
            PaymentStatus::Approved => self.request_refund(now).map(|p| (p, None)),
            _ => Ok((self.clone(), None)),
        }
    }

    /// The gateway confirmed the refund.
    pub fn confirm_refund(&self, now: DateTime<Utc>) -> Result<(Payment, Event), Refusal> {
        let mut p = self.to(PaymentAction::ConfirmRefund, now)?;
        p.attempt = p.attempt.answered();
        let e = Event::PaymentRefunded { order_id: p.order_id, payment_id: p.id, amount: p.amount };
        Ok((p, e))
    }

    /// True while a gateway call for it is outstanding (approval or refund).
    pub fn awaits_gateway(&self) -> bool {
        matches!(self.status, PaymentStatus::Pending | PaymentStatus::RefundPending)
    }
}

/// Masks a card number but for its last four digits: `************0002`.
/// Spaces and dashes are dropped first; anything else but digits is invalid.
///
/// ```
/// use ezdelivery_core::domain::payment::mask_card;
/// assert_eq!(mask_card("4000-0000-0000-0002").unwrap(), "************0002");
/// assert!(mask_card("4000x").is_err());
/// ```
pub fn mask_card(card: &str) -> Result<String, super::validate::Invalid> {
    let digits: String = card.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if !(12..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(super::validate::Invalid("a card number has 12 to 19 digits (spaces and dashes allowed)".into()));
    }
    let keep = digits.len() - 4;
    Ok(format!("{}{}", "*".repeat(keep), &digits[keep..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentAction as A;
    use PaymentStatus as S;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn transition_table_is_exactly_the_allowed_moves() {
        let allowed = [
            (S::Pending, A::Approve, S::Approved),
            (S::Pending, A::Decline, S::Declined),
            (S::Pending, A::Void, S::Voided),
            (S::Voided, A::Approve, S::RefundPending),
            (S::Approved, A::RequestRefund, S::RefundPending),
            (S::RefundPending, A::ConfirmRefund, S::Refunded),
        ];
        for &from in S::ALL {
            for action in [A::Approve, A::Decline, A::Void, A::RequestRefund, A::ConfirmRefund] {
                let expected = allowed.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                assert_eq!(from.next(action), expected, "{from} + {action:?}");
                let p = Payment { status: from, ..Payment::request(1, 2, 100, None, "k1".into(), now()) };
                assert_eq!(p.to(action, now()).ok().map(|p| p.status), expected);
            }
        }
    }

    #[test]
    fn approve_then_refund_keeps_one_key_per_call() {
        let p = Payment::request(5, 2, 36_000, None, "ezd-pay-5".into(), now());
        assert_eq!(p.attempt.idempotency_key, "ezd-pay-5");
        let (p, e) = p.approve("gw-1", now()).unwrap();
        assert_eq!(e, Event::PaymentApproved { order_id: 2, payment_id: 5, amount: 36_000 });
        assert_eq!(p.gateway_ref.as_deref(), Some("gw-1"));
        assert!(!p.awaits_gateway());
        let p = p.request_refund(now()).unwrap();
        assert_eq!(p.status, S::RefundPending);
        assert_eq!(p.attempt.idempotency_key, "ezd-pay-5-refund");
        assert!(p.awaits_gateway());
        let (p, e) = p.confirm_refund(now()).unwrap();
        assert_eq!(p.status, S::Refunded);
        assert_eq!(e, Event::PaymentRefunded { order_id: 2, payment_id: 5, amount: 36_000 });
        assert!(p.confirm_refund(now()).is_err());
    }

    #[test]
    fn decline_and_void_are_final() {
        let p = Payment::request(1, 2, 100, None, "k1".into(), now());
        let (declined, e) = p.decline("card declined", now()).unwrap();
        assert!(matches!(e, Event::PaymentDeclined { .. }));
        assert!(declined.approve("x", now()).is_err());
        assert!(declined.request_refund(now()).is_err());
        let (voided, e) = p.void(now()).unwrap();
        assert_eq!(e, Event::PaymentVoided { order_id: 2, payment_id: 1 });
        assert!(voided.decline("x", now()).is_err());
        // A late approval of a voided payment goes straight to refund.
        let (late, e) = voided.approve("gw", now()).unwrap();
        assert_eq!(late.status, S::RefundPending);
        assert_eq!(late.attempt.idempotency_key, "k1-refund");
        assert!(matches!(e, Event::PaymentApproved { .. }));
    }

    #[test]
    fn withdraw_refunds_or_voids() {
        let p = Payment::request(1, 2, 100, None, "k1".into(), now());
        // Sent, no answer yet: the gateway may have charged, so it stays pending, due now.
        let (kept, e) = p.withdraw(now()).unwrap();
        assert_eq!((kept.status, kept.attempt.next_at, e), (S::Pending, Some(now()), None));
        // Refused without reaching the gateway: voided.
        let unreached = Payment { attempt: p.attempt.failed("refused", now(), false), ..p.clone() };
        assert_eq!(unreached.withdraw(now()).unwrap().0.status, S::Voided);
        let (approved, _) = p.approve("gw", now()).unwrap();
        let (w, e) = approved.withdraw(now()).unwrap();
        assert_eq!((w.status, e), (S::RefundPending, None));
        let (declined, _) = p.decline("no", now()).unwrap();
        assert_eq!(declined.withdraw(now()).unwrap(), (declined.clone(), None));
    }

    #[test]
    fn cards_are_masked() {
        assert_eq!(mask_card("4000000000000002").unwrap(), "************0002");
        assert_eq!(mask_card("4000 0000 0000 0002").unwrap(), "************0002");
        assert!(mask_card("12345").is_err());
        assert!(mask_card("").is_err());
    }
}
