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
use super::refusal::Standing;
use super::{status_strings, ChargeId, Event, OrderId, Refusal, RiderId, Won};

/// Where a delivery charge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeStatus {
    /// Not paid yet (sent, queued, or waiting for a retry).
    Pending,
    /// Paid to the rider: the delivery may depart.
    Paid,
    /// Being taken back from the rider.
    RefundPending,
    /// Taken back.
    Refunded,
    /// Never paid: dropped because the delivery was cancelled or moved.
    Voided,
    /// The gateway may have moved money that the engine cannot settle by
    /// itself (its answers stayed unreadable): a person must look.
    NeedsAttention,
}

status_strings!(ChargeStatus {
    Pending => "pending",
    Paid => "paid",
    RefundPending => "refund_pending",
    Refunded => "refunded",
    Voided => "voided",
    NeedsAttention => "needs_attention",
});

/// What can happen to a delivery charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeAction {
    /// The gateway paid it.
    Pay,
    /// Dropped before it was paid.
    Void,
    /// To be taken back after it was paid.
    RequestRefund,
    /// The gateway confirmed it was taken back.
    ConfirmRefund,
    /// Its gateway's answers stayed unreadable too many times.
    GiveUp,
    /// A person put it back in the queue, to pay it.
    Requeue,
    /// A person put it back in the queue, to take it back.
    RequeueRefund,
}

impl ChargeStatus {
    /// The delivery charge's state machine: one line per allowed move.
    pub fn next(self, action: ChargeAction) -> Option<ChargeStatus> {
        use ChargeAction as A;
        use ChargeStatus as S;
        match (self, action) {
            (S::Pending, A::Pay) => Some(S::Paid),
            (S::Pending, A::Void) => Some(S::Voided),
            // A call in flight when the delivery was cancelled came back paid.
            (S::Voided, A::Pay) => Some(S::RefundPending),
            (S::Paid, A::RequestRefund) => Some(S::RefundPending),
            (S::RefundPending, A::ConfirmRefund) => Some(S::Refunded),
            (S::Pending | S::RefundPending, A::GiveUp) => Some(S::NeedsAttention),
            (S::NeedsAttention, A::Requeue) => Some(S::Pending),
            (S::NeedsAttention, A::RequeueRefund) => Some(S::RefundPending),
            // A definite answer that comes late is a fact all the same.
            (S::NeedsAttention, A::Pay) => Some(S::Paid),
            (S::NeedsAttention, A::ConfirmRefund) => Some(S::Refunded),
            _ => None,
        }
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
    /// Its status; [`ChargeStatus::next`] says where it may go.
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

    fn to(&self, action: ChargeAction, now: DateTime<Utc>) -> Result<Charge, Refusal> {
        match self.status.next(action) {
            Some(status) => Ok(Charge { status, updated_at: now, ..self.clone() }),
            None => Err(Refusal::Transition {
                order: self.order_id,
                standing: Standing::DeliveryCharge(self.status),
                action: match action {
                    ChargeAction::Pay => "be paid",
                    ChargeAction::Void => "be voided",
                    ChargeAction::RequestRefund => "be taken back",
                    ChargeAction::ConfirmRefund => "confirm it was taken back",
                    ChargeAction::GiveUp => "be given up on",
                    ChargeAction::Requeue | ChargeAction::RequeueRefund => "be queued again",
                },
            }),
        }
    }

    /// The gateway paid the rider under its id `gateway_ref`.
    pub fn pay(&self, gateway_ref: &str, now: DateTime<Utc>) -> Result<(Charge, Event), Refusal> {
        let mut c = self.to(ChargeAction::Pay, now)?;
        c.gateway_ref = Some(gateway_ref.to_string());
        c.attempt = match c.status {
            ChargeStatus::RefundPending => c.attempt.refund(),
            _ => c.attempt.answered(),
        };
        let e =
            Event::DeliveryChargePaid { order_id: c.order_id, charge_id: c.id, rider_id: c.rider_id, amount: c.amount };
        Ok((c, e))
    }

    /// Drops a charge that was never paid.
    pub fn void(&self, now: DateTime<Utc>) -> Result<(Charge, Event), Refusal> {
        let mut c = self.to(ChargeAction::Void, now)?;
        c.attempt.next_at = None;
        let e = Event::DeliveryChargeVoided { order_id: c.order_id, charge_id: c.id };
        Ok((c, e))
    }

    /// The paid charge is to be taken back.
    pub fn request_refund(&self, now: DateTime<Utc>) -> Result<Charge, Refusal> {
        let mut c = self.to(ChargeAction::RequestRefund, now)?;
        c.attempt = c.attempt.refund();
        Ok(c)
    }

    /// The gateway confirmed the charge was taken back.
    pub fn confirm_refund(&self, now: DateTime<Utc>) -> Result<(Charge, Event), Refusal> {
        let mut c = self.to(ChargeAction::ConfirmRefund, now)?;
        c.attempt = c.attempt.answered();
        let e = Event::DeliveryChargeRefunded { order_id: c.order_id, charge_id: c.id, amount: c.amount };
        Ok((c, e))
    }

    /// Stops this charge from ever reaching the rider: a paid one is to be
    /// taken back, an unpaid one that never reached the gateway is voided, a
    /// finished one is left alone. A pending one the gateway may have acted
    /// on stays pending, due now unless a call is under way: its key is
    /// replayed, and what was paid is taken back.
    pub fn withdraw(&self, now: DateTime<Utc>) -> Result<(Charge, Option<Event>), Refusal> {
        match self.status {
            ChargeStatus::Pending if self.attempt.in_doubt() => {
                Ok((Charge { attempt: self.attempt.replay_now(now), updated_at: now, ..self.clone() }, None))
            }
            ChargeStatus::Pending => self.void(now).map(|(c, e)| (c, Some(e))),
            ChargeStatus::Paid => self.request_refund(now).map(|c| (c, None)),
            ChargeStatus::RefundPending
            | ChargeStatus::Refunded
            | ChargeStatus::Voided
            | ChargeStatus::NeedsAttention => Ok((self.clone(), None)),
        }
    }

    /// Its gateway's answers stayed unreadable: parked for a person, with
    /// `attempt` as the last try left it.
    pub fn give_up(&self, attempt: Attempt, now: DateTime<Utc>) -> Result<(Charge, Event), Refusal> {
        let mut c = self.to(ChargeAction::GiveUp, now)?;
        let reason = attempt.last_error.clone().unwrap_or_default();
        c.attempt = attempt;
        let e = Event::DeliveryChargeNeedsAttention { order_id: c.order_id, charge_id: c.id, amount: c.amount, reason };
        Ok((c, e))
    }

    /// A person put it back in the queue: the call it was making is due
    /// now under the same key.
    pub fn requeue(&self, now: DateTime<Utc>) -> Result<(Charge, Event), Refusal> {
        let action = if self.gateway_ref.is_some() { ChargeAction::RequeueRefund } else { ChargeAction::Requeue };
        let mut c = self.to(action, now)?;
        c.attempt = c.attempt.requeued(now);
        let e = Event::DeliveryChargeRequeued { order_id: c.order_id, charge_id: c.id, status: c.status };
        Ok((c, e))
    }

    /// True while a gateway call for it is outstanding (payment or refund).
    pub fn awaits_gateway(&self) -> bool {
        matches!(self.status, ChargeStatus::Pending | ChargeStatus::RefundPending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChargeAction as A;
    use ChargeStatus as S;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(0, 0).unwrap()
    }

    #[test]
    fn transition_table_is_exactly_the_allowed_moves() {
        let allowed = [
            (S::Pending, A::Pay, S::Paid),
            (S::Pending, A::Void, S::Voided),
            (S::Voided, A::Pay, S::RefundPending),
            (S::Paid, A::RequestRefund, S::RefundPending),
            (S::RefundPending, A::ConfirmRefund, S::Refunded),
            (S::Pending, A::GiveUp, S::NeedsAttention),
            (S::RefundPending, A::GiveUp, S::NeedsAttention),
            (S::NeedsAttention, A::Requeue, S::Pending),
            (S::NeedsAttention, A::RequeueRefund, S::RefundPending),
            (S::NeedsAttention, A::Pay, S::Paid),
            (S::NeedsAttention, A::ConfirmRefund, S::Refunded),
        ];
        let actions = [A::Pay, A::Void, A::RequestRefund, A::ConfirmRefund, A::GiveUp, A::Requeue, A::RequeueRefund];
        for &from in S::ALL {
            for action in actions {
                let expected = allowed.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                assert_eq!(from.next(action), expected, "{from} + {action:?}");
                let c = Charge { status: from, ..Charge::request(1, 2, 3, 3000, "c1".into(), now()) };
                assert_eq!(c.to(action, now()).ok().map(|c| c.status), expected);
            }
        }
    }

    #[test]
    fn pay_and_take_back() {
        let c = Charge::request(4, 2, 3, 3000, "ezd-charge-4".into(), now());
        let (c, e) = c.pay("gw-c", now()).unwrap();
        assert_eq!(e, Event::DeliveryChargePaid { order_id: 2, charge_id: 4, rider_id: 3, amount: 3000 });
        let (c, e) = c.withdraw(now()).unwrap();
        assert_eq!((c.status, e), (S::RefundPending, None));
        assert_eq!(c.attempt.idempotency_key, "ezd-charge-4-refund");
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
        let (late, _) = c.pay("x", now()).unwrap();
        assert_eq!(late.status, S::RefundPending);
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
        let (paid, _) = c.pay("gw", now()).unwrap();
        let taking_back = paid.request_refund(now()).unwrap();
        let (stuck, _) = taking_back.give_up(taking_back.attempt.clone(), now()).unwrap();
        assert_eq!(stuck.requeue(now()).unwrap().0.status, S::RefundPending);
    }
}
