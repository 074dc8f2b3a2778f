//! The delivery charge a store pays its rider for one delivery.
//!
//! ```text
//! pending ──pay──► paid ──request refund──► refund_pending ──confirm──► refunded
//!    ├──void (delivery cancelled or moved before it was paid)──► voided
//!    └──give up──► needs_attention ◄──give up──── refund_pending
//!                      └──requeue──► pending / refund_pending
//! ```

use chrono::{DateTime, Utc};

use super::attempt::Attempt;
use super::billed::{Billed, BillingAction, BillingStatus, Happened, Parts};
use super::event::Event;
use super::ids::{ChargeId, OrderId, RiderId, Won};
use super::refusal::{Billing, Refusal, Standing};
pub use super::status::ChargeStatus;

impl BillingStatus for ChargeStatus {
    const WHAT: Billing = Billing::DeliveryCharge;

    /// The delivery charge's state machine: one line per allowed move.
    fn next(self, action: BillingAction) -> Option<ChargeStatus> {
        use BillingAction as A;
        use ChargeStatus as S;
        match (self, action) {
            (S::Pending, A::Take) => Some(S::Paid),
            (S::Pending, A::Void) => Some(S::Voided),
            // A call in flight when the delivery was cancelled came back paid.
            (S::Voided, A::Take) => Some(S::RefundPending),
            (S::Paid, A::RequestRefund) => Some(S::RefundPending),
            (S::RefundPending, A::ConfirmRefund) => Some(S::Refunded),
            (S::Pending | S::RefundPending, A::GiveUp) => Some(S::NeedsAttention),
            (S::NeedsAttention, A::Requeue) => Some(S::Pending),
            (S::NeedsAttention, A::RequeueRefund) => Some(S::RefundPending),
            // A definite answer that comes late is a fact all the same.
            (S::NeedsAttention, A::Take) => Some(S::Paid),
            (S::NeedsAttention, A::ConfirmRefund) => Some(S::Refunded),
            _ => None,
        }
    }

    fn standing(self) -> Standing {
        Standing::DeliveryCharge(self)
    }
}

/// One delivery charge: for one order, to one rider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Handed out by the storage, from 1; a new attempt (another rider) gets a new one.
    pub id: ChargeId,
    /// The order delivered.
    pub order_id: OrderId,
    /// The rider paid.
    pub rider_id: RiderId,
    /// The store's delivery charge for this delivery, in whole won.
    pub amount: Won,
    /// Its status; [`BillingStatus::next`] says where it may go.
    pub status: ChargeStatus,
    /// The gateway's id for the paid charge (needed to take it back).
    pub gateway_ref: Option<String>,
    /// The payment call (or, from `refund_pending` on, the refund call).
    pub attempt: Attempt,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Charge {
    /// A new pending charge of `amount` to `rider_id` for `order_id`, to be
    /// sent under `idempotency_key` (unique across databases).
    pub fn request(
        id: ChargeId,
        order_id: OrderId,
        rider_id: RiderId,
        amount: Won,
        idempotency_key: String,
        now: DateTime<Utc>,
    ) -> Charge {
        Charge {
            id,
            order_id,
            rider_id,
            amount,
            status: ChargeStatus::Pending,
            gateway_ref: None,
            attempt: Attempt::new(idempotency_key),
            created_at: now,
            updated_at: now,
        }
    }

    /// The gateway paid the rider under its id `gateway_ref`; if the
    /// delivery no longer wants it (`wanted` false: cancelled, or moved to
    /// another rider), it is taken straight back ([`Billed::take`]).
    pub fn pay(&self, gateway_ref: &str, wanted: bool, now: DateTime<Utc>) -> Result<(Charge, Vec<Event>), Refusal> {
        self.take(gateway_ref, wanted, now)
    }

    /// True while a gateway call for it is outstanding
    /// ([`ChargeStatus::AWAITING_GATEWAY`]).
    pub fn awaits_gateway(&self) -> bool {
        ChargeStatus::AWAITING_GATEWAY.contains(&self.status)
    }
}

impl Billed for Charge {
    type Status = ChargeStatus;

    fn parts(&mut self) -> Parts<'_, ChargeStatus> {
        (self.order_id, &mut self.status, &mut self.attempt, &mut self.gateway_ref, &mut self.updated_at)
    }

    fn event(&self, happened: Happened) -> Event {
        let (order_id, charge_id, amount) = (self.order_id, self.id, self.amount);
        match happened {
            Happened::Taken => Event::DeliveryChargePaid { order_id, charge_id, rider_id: self.rider_id, amount },
            Happened::NeedsAttention(reason) => {
                Event::DeliveryChargeNeedsAttention { order_id, charge_id, amount, reason }
            }
            Happened::Voided => Event::DeliveryChargeVoided { order_id, charge_id },
            Happened::RefundRequested => Event::DeliveryChargeRefundRequested { order_id, charge_id, amount },
            Happened::Refunded => Event::DeliveryChargeRefunded { order_id, charge_id, amount },
            Happened::Requeued => Event::DeliveryChargeRequeued { order_id, charge_id, status: self.status },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BillingAction as A;
    use ChargeStatus as S;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(0, 0).unwrap()
    }

    fn c_with_reference(c: Charge) -> Charge {
        Charge { gateway_ref: Some("gw".into()), ..c }
    }

    #[test]
    fn transition_table_is_exactly_the_allowed_moves() {
        let allowed = [
            (S::Pending, A::Take, S::Paid),
            (S::Pending, A::Void, S::Voided),
            (S::Voided, A::Take, S::RefundPending),
            (S::Paid, A::RequestRefund, S::RefundPending),
            (S::RefundPending, A::ConfirmRefund, S::Refunded),
            (S::Pending, A::GiveUp, S::NeedsAttention),
            (S::RefundPending, A::GiveUp, S::NeedsAttention),
            (S::NeedsAttention, A::Requeue, S::Pending),
            (S::NeedsAttention, A::RequeueRefund, S::RefundPending),
            (S::NeedsAttention, A::Take, S::Paid),
            (S::NeedsAttention, A::ConfirmRefund, S::Refunded),
        ];
        for &from in S::ALL {
            for action in BillingAction::ALL {
                let expected = allowed.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                assert_eq!(from.next(action), expected, "{from} + {action:?}");
                let c = Charge { status: from, ..Charge::request(1, 2, 3, 3000, "c1".into(), now()) };
                assert_eq!(c.to(action, now()).ok().map(|c| c.status), expected);
                // Holding the gateway's reference, the money was taken:
                // a late answer of its first call takes or declines nothing.
                let c = c_with_reference(c);
                let expected = expected.filter(|_| !matches!(action, A::Take | A::Decline));
                assert_eq!(c.to(action, now()).ok().map(|c| c.status), expected, "{from} + {action:?}, taken");
            }
        }
    }

    #[test]
    fn pay_and_take_back() {
        let c = Charge::request(4, 2, 3, 3000, "ezd-charge-4".into(), now());
        let (c, e) = c.pay("gw-c", true, now()).unwrap();
        assert_eq!(e, [Event::DeliveryChargePaid { order_id: 2, charge_id: 4, rider_id: 3, amount: 3000 }]);
        let (c, e) = c.withdraw(now()).unwrap();
        let requested = Event::DeliveryChargeRefundRequested { order_id: 2, charge_id: 4, amount: 3000 };
        assert_eq!((c.status, e), (S::RefundPending, Some(requested)));
        assert_eq!(c.attempt.idempotency_key, "ezd-charge-4-refund".into());
        let (c, e) = c.confirm_refund(now()).unwrap();
        assert_eq!(c.status, S::Refunded);
        assert_eq!(e, Event::DeliveryChargeRefunded { order_id: 2, charge_id: 4, amount: 3000 });
        assert_eq!(c.withdraw(now()).unwrap().1, None);
    }

    #[test]
    fn withdraw_voids_an_unpaid_charge() {
        let unreached = Charge::request(4, 2, 3, 3000, "c4".into(), now());
        let sent =
            Charge { attempt: Attempt { maybe_processed: true, ..unreached.attempt.clone() }, ..unreached.clone() };
        let (kept, e) = sent.withdraw(now()).unwrap();
        assert_eq!((kept.status, kept.attempt.next_at, e), (S::Pending, Some(now()), None), "may have been paid");
        let (c, e) = unreached.withdraw(now()).unwrap();
        assert_eq!(c.status, S::Voided);
        assert_eq!(e, Some(Event::DeliveryChargeVoided { order_id: 2, charge_id: 4 }));
        assert!(c.confirm_refund(now()).is_err());
        let (late, e) = c.pay("x", true, now()).unwrap();
        assert_eq!(late.status, S::RefundPending);
        let paid = Event::DeliveryChargePaid { order_id: 2, charge_id: 4, rider_id: 3, amount: 3000 };
        let requested = Event::DeliveryChargeRefundRequested { order_id: 2, charge_id: 4, amount: 3000 };
        assert_eq!(e, [paid.clone(), requested.clone()]);
        // Paid for a delivery that was cancelled or moved meanwhile: taken straight back.
        let (unwanted, e) = unreached.pay("x", false, now()).unwrap();
        assert_eq!((unwanted.status, &*unwanted.attempt.idempotency_key), (S::RefundPending, "c4-refund"));
        assert_eq!(e, [paid, requested]);
    }

    #[test]
    fn given_up_then_requeued_for_the_call_it_was_making() {
        let c = Charge::request(4, 2, 3, 3000, "c4".into(), now());
        let (stuck, e) =
            c.give_up(Attempt { last_error: Some("HTTP 502".into()), ..c.attempt.clone() }, now()).unwrap();
        assert_eq!(stuck.status, S::NeedsAttention);
        assert_eq!(
            e,
            Event::DeliveryChargeNeedsAttention { order_id: 2, charge_id: 4, amount: 3000, reason: "HTTP 502".into() }
        );
        let (again, e) = stuck.requeue(now()).unwrap();
        assert_eq!(again.status, S::Pending);
        assert_eq!(e, Event::DeliveryChargeRequeued { order_id: 2, charge_id: 4, status: S::Pending });
        let (paid, _) = c.pay("gw", true, now()).unwrap();
        let (taking_back, _) = paid.request_refund(now()).unwrap();
        let (stuck, _) = taking_back.give_up(taking_back.attempt.clone(), now()).unwrap();
        assert_eq!(stuck.requeue(now()).unwrap().0.status, S::RefundPending);
    }
}
