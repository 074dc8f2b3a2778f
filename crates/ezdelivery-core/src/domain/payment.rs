//! A payment attempt for an order, and its refund.
//!
//! ```text
//! pending ──approve──► approved ──request refund──► refund_pending ──confirm──► refunded
//!    │ └──decline──► declined                            │
//!    ├────void (order cancelled, never reached)──► voided │
//!    └──give up──► needs_attention ◄──give up─────────────┘
//!                      └──requeue──► pending / refund_pending
//! ```
//! A payment that cannot reach the gateway stays `pending` and is queued.
//! One whose gateway answers stay unreadable ends in `needs_attention`: the
//! gateway may hold the money, and a person must look (`relay --attention`).

use chrono::{DateTime, Utc};

use super::attempt::Attempt;
use super::billed::{Billed, BillingAction, BillingStatus, Happened, Parts};
use super::event::Event;
use super::ids::{OrderId, PaymentId, Won};
use super::refusal::{Billing, Refusal, Standing};
pub use super::status::PaymentStatus;

impl BillingStatus for PaymentStatus {
    const WHAT: Billing = Billing::Payment;

    /// The payment's state machine: one line per allowed move.
    fn next(self, action: BillingAction) -> Option<PaymentStatus> {
        use BillingAction as A;
        use PaymentStatus as S;
        match (self, action) {
            (S::Pending, A::Take) => Some(S::Approved),
            (S::Pending, A::Decline) => Some(S::Declined),
            (S::Pending, A::Void) => Some(S::Voided),
            // A call that was in flight when the order was cancelled came back
            // approved: the money moved, so it goes straight back.
            (S::Voided, A::Take) => Some(S::RefundPending),
            (S::Approved, A::RequestRefund) => Some(S::RefundPending),
            (S::RefundPending, A::ConfirmRefund) => Some(S::Refunded),
            (S::Pending | S::RefundPending, A::GiveUp) => Some(S::NeedsAttention),
            (S::NeedsAttention, A::Requeue) => Some(S::Pending),
            (S::NeedsAttention, A::RequeueRefund) => Some(S::RefundPending),
            // A definite answer that comes late is a fact all the same.
            (S::NeedsAttention, A::Take) => Some(S::Approved),
            (S::NeedsAttention, A::Decline) => Some(S::Declined),
            (S::NeedsAttention, A::ConfirmRefund) => Some(S::Refunded),
            _ => None,
        }
    }

    fn standing(self) -> Standing {
        Standing::Payment(self)
    }
}

/// One payment attempt for an order. A declined payment stays on record and
/// a new attempt gets a new id and a new idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Handed out by the storage, from 1; each try to pay with another card gets a new one.
    pub id: PaymentId,
    /// The order it pays.
    pub order_id: OrderId,
    /// The order's total.
    pub amount: Won,
    /// The card, masked but for its last four digits (never stored whole).
    pub card: Option<String>,
    /// Its status; [`BillingStatus::next`] says where it may go.
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

    /// The gateway approved under its id `gateway_ref`; if the order no
    /// longer waits for it (`wanted` false), it goes straight back
    /// ([`Billed::take`]).
    pub fn approve(
        &self,
        gateway_ref: &str,
        wanted: bool,
        now: DateTime<Utc>,
    ) -> Result<(Payment, Vec<Event>), Refusal> {
        self.take(gateway_ref, wanted, now)
    }

    /// The gateway declined, for `reason`.
    pub fn decline(&self, reason: &str, now: DateTime<Utc>) -> Result<(Payment, Event), Refusal> {
        let mut p = self.to(BillingAction::Decline, now)?;
        p.attempt = p.attempt.answered();
        let e = Event::PaymentDeclined {
            order_id: p.order_id,
            payment_id: p.id,
            amount: p.amount,
            reason: reason.to_string(),
            card: p.card.clone(),
        };
        Ok((p, e))
    }

    /// True while a gateway call for it is outstanding
    /// ([`PaymentStatus::AWAITING_GATEWAY`]).
    pub fn awaits_gateway(&self) -> bool {
        PaymentStatus::AWAITING_GATEWAY.contains(&self.status)
    }

    /// The card's last four digits, for messages (`1111`), or `no card`.
    pub fn card_tail(&self) -> String {
        card_tail(self.card.as_deref())
    }
}

impl Billed for Payment {
    type Status = PaymentStatus;

    fn event(&self, happened: Happened) -> Event {
        let (order_id, payment_id, amount, card) = (self.order_id, self.id, self.amount, self.card.clone());
        match happened {
            Happened::Taken => Event::PaymentApproved { order_id, payment_id, amount, card },
            Happened::Voided => Event::PaymentVoided { order_id, payment_id },
            Happened::RefundRequested => Event::PaymentRefundRequested { order_id, payment_id, amount },
            Happened::Refunded => Event::PaymentRefunded { order_id, payment_id, amount },
            Happened::Requeued => Event::PaymentRequeued { order_id, payment_id, status: self.status },
            Happened::NeedsAttention(reason) => {
                Event::PaymentNeedsAttention { order_id, payment_id, amount, reason, card }
            }
        }
    }

    fn parts(&mut self) -> Parts<'_, PaymentStatus> {
        (self.order_id, &mut self.status, &mut self.attempt, &mut self.gateway_ref, &mut self.updated_at)
    }
}

/// The last four digits of a masked card (`************1111` → `…1111`),
/// or `none`.
pub fn card_tail(card: Option<&str>) -> String {
    match card {
        Some(card) => {
            let tail: Vec<char> = card.chars().rev().take(4).collect();
            format!("…{}", tail.into_iter().rev().collect::<String>())
        }
        None => "none".to_string(),
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
    use BillingAction as A;
    use PaymentStatus as S;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn p_with_reference(p: Payment) -> Payment {
        Payment { gateway_ref: Some("gw".into()), ..p }
    }

    #[test]
    fn transition_table_is_exactly_the_allowed_moves() {
        let allowed = [
            (S::Pending, A::Take, S::Approved),
            (S::Pending, A::Decline, S::Declined),
            (S::Pending, A::Void, S::Voided),
            (S::Voided, A::Take, S::RefundPending),
            (S::Approved, A::RequestRefund, S::RefundPending),
            (S::RefundPending, A::ConfirmRefund, S::Refunded),
            (S::Pending, A::GiveUp, S::NeedsAttention),
            (S::RefundPending, A::GiveUp, S::NeedsAttention),
            (S::NeedsAttention, A::Requeue, S::Pending),
            (S::NeedsAttention, A::RequeueRefund, S::RefundPending),
            (S::NeedsAttention, A::Take, S::Approved),
            (S::NeedsAttention, A::Decline, S::Declined),
            (S::NeedsAttention, A::ConfirmRefund, S::Refunded),
        ];
        for &from in S::ALL {
            for action in BillingAction::ALL {
                let expected = allowed.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                assert_eq!(from.next(action), expected, "{from} + {action:?}");
                let p = Payment { status: from, ..Payment::request(1, 2, 100, None, "k1".into(), now()) };
                assert_eq!(p.to(action, now()).ok().map(|p| p.status), expected);
                // Holding the gateway's reference, the money was taken:
                // a late answer of its first call takes or declines nothing.
                let p = p_with_reference(p);
                let expected = expected.filter(|_| !matches!(action, A::Take | A::Decline));
                assert_eq!(p.to(action, now()).ok().map(|p| p.status), expected, "{from} + {action:?}, taken");
            }
        }
    }

    #[test]
    fn approve_then_refund_keeps_one_key_per_call() {
        let p = Payment::request(5, 2, 36_000, None, "ezd-pay-5".into(), now());
        assert_eq!(p.attempt.idempotency_key, "ezd-pay-5".into());
        let (p, e) = p.approve("gw-1", true, now()).unwrap();
        assert_eq!(e, [Event::PaymentApproved { order_id: 2, payment_id: 5, amount: 36_000, card: None }]);
        assert_eq!(p.gateway_ref.as_deref(), Some("gw-1"));
        assert!(!p.awaits_gateway());
        let (p, e) = p.request_refund(now()).unwrap();
        assert_eq!(p.status, S::RefundPending);
        assert_eq!(e, Event::PaymentRefundRequested { order_id: 2, payment_id: 5, amount: 36_000 });
        assert_eq!(p.attempt.idempotency_key, "ezd-pay-5-refund".into());
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
        assert!(declined.approve("x", true, now()).is_err());
        assert!(declined.request_refund(now()).is_err());
        let (voided, e) = p.void(now()).unwrap();
        assert_eq!(e, Event::PaymentVoided { order_id: 2, payment_id: 1 });
        assert!(voided.decline("x", now()).is_err());
        // A late approval of a voided payment goes straight to refund.
        let (late, e) = voided.approve("gw", true, now()).unwrap();
        assert_eq!(late.status, S::RefundPending);
        assert_eq!(late.attempt.idempotency_key, "k1-refund".into());
        let approved = Event::PaymentApproved { order_id: 2, payment_id: 1, amount: 100, card: None };
        assert_eq!(e, [approved.clone(), Event::PaymentRefundRequested { order_id: 2, payment_id: 1, amount: 100 }]);
        // An approval for an order that no longer waits for it goes straight back too.
        let (unwanted, e) = p.approve("gw", false, now()).unwrap();
        assert_eq!((unwanted.status, &*unwanted.attempt.idempotency_key), (S::RefundPending, "k1-refund"));
        assert_eq!(e, [approved, Event::PaymentRefundRequested { order_id: 2, payment_id: 1, amount: 100 }]);
    }

    #[test]
    fn withdraw_refunds_or_voids() {
        let p = Payment::request(1, 2, 100, None, "k1".into(), now());
        let later = now() + chrono::TimeDelta::seconds(60);
        // A call under way: the gateway may charge, so it stays pending and the claim stands.
        let calling = Payment { attempt: p.attempt.claim("c".into(), later, &"sandbox".into()), ..p.clone() };
        let (kept, e) = calling.withdraw(now()).unwrap();
        assert_eq!((kept.status, kept.attempt.next_at, e), (S::Pending, Some(later), None));
        // Sent, no readable answer: stays pending, its key replayed now.
        let doubt = Payment { attempt: Attempt { maybe_processed: true, ..p.attempt.clone() }, ..p.clone() };
        let (kept, e) = doubt.withdraw(now()).unwrap();
        assert_eq!((kept.status, kept.attempt.next_at, e), (S::Pending, Some(now()), None));
        // Never reached the gateway: voided.
        assert_eq!(p.withdraw(now()).unwrap().0.status, S::Voided);
        let (approved, _) = p.approve("gw", true, now()).unwrap();
        let (w, e) = approved.withdraw(now()).unwrap();
        let requested = Event::PaymentRefundRequested { order_id: 2, payment_id: 1, amount: 100 };
        assert_eq!((w.status, e), (S::RefundPending, Some(requested)));
        let (declined, _) = p.decline("no", now()).unwrap();
        assert_eq!(declined.withdraw(now()).unwrap(), (declined.clone(), None));
    }

    #[test]
    fn a_retry_backing_off_is_due_now_once_its_gateway_is_back() {
        let p = Payment::request(1, 2, 100, None, "k1".into(), now());
        let later = now() + chrono::TimeDelta::seconds(60);
        let backing_off =
            Payment { attempt: Attempt { next_at: Some(later), tries: 2, ..p.attempt.clone() }, ..p.clone() };
        let due = backing_off.due_now(now()).expect("moved to now");
        assert_eq!((due.status, due.attempt.next_at, due.attempt.tries), (S::Pending, Some(now()), 2));
        assert_eq!(&*due.attempt.idempotency_key, "k1", "under the same key");
        // Already due, never tried, or a call under way: nothing to change.
        assert_eq!(p.due_now(now()), None);
        assert_eq!(
            Payment { attempt: Attempt { next_at: Some(now()), ..p.attempt.clone() }, ..p.clone() }.due_now(now()),
            None
        );
        let calling = Payment { attempt: p.attempt.claim("c".into(), later, &"sandbox".into()), ..p.clone() };
        assert_eq!(calling.due_now(now()), None);
    }

    #[test]
    fn given_up_then_requeued_for_the_call_it_was_making() {
        let p = Payment::request(1, 2, 100, Some("************1111".into()), "k1".into(), now());
        let tried = Attempt { last_error: Some("HTTP 200 with no id".into()), unsettled: 3, ..p.attempt.clone() };
        let (stuck, e) = p.give_up(tried, now()).unwrap();
        assert_eq!(stuck.status, S::NeedsAttention);
        assert_eq!(
            e,
            Event::PaymentNeedsAttention {
                order_id: 2,
                payment_id: 1,
                amount: 100,
                reason: "HTTP 200 with no id".into(),
                card: Some("************1111".into())
            }
        );
        let (again, e) = stuck.requeue(now()).unwrap();
        assert_eq!((again.status, again.attempt.unsettled), (S::Pending, 0));
        assert_eq!(e, Event::PaymentRequeued { order_id: 2, payment_id: 1, status: S::Pending });
        let (approved, _) = p.approve("gw", true, now()).unwrap();
        let (refunding, _) = approved.request_refund(now()).unwrap();
        let (stuck, _) = refunding.give_up(refunding.attempt.clone(), now()).unwrap();
        assert_eq!(stuck.requeue(now()).unwrap().0.status, S::RefundPending);
        assert_eq!(p.card_tail(), "…1111");
        assert_eq!(card_tail(None), "none");
    }

    #[test]
    fn cards_are_masked() {
        assert_eq!(mask_card("4000000000000002").unwrap(), "************0002");
        assert_eq!(mask_card("4000 0000 0000 0002").unwrap(), "************0002");
        assert!(mask_card("12345").is_err());
        assert!(mask_card("").is_err());
    }
}
