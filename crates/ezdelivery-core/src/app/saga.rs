//! The saga's gateway legs: each call to a payment or delivery-charge
//! gateway happens between two transactions. The attempt (with its
//! idempotency key) was committed before the call; the outcome is recorded
//! after it. A crash in between leaves the attempt `pending`, and `relay`
//! retries it under the same key, so the gateway acts on it once.

use crate::app::breakers::{self, CHARGE, PAYMENT};
use crate::app::engine::{Engine, Work};
use crate::domain::order::OrderAction;
use crate::domain::{Charge, ChargeStatus, KitchenTicket, OrderId, OrderStatus, Payment, PaymentStatus};
use crate::ports::{ChargeRequest, GatewayOutcome, PaymentRequest, RefundRequest};
use crate::{Error, Result};

/// What recording a gateway's answer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    /// The gateway did it.
    Done,
    /// The gateway approved a payment that established its order, or paid
    /// a charge as asked: nothing of the order waits for a refund.
    Established,
    /// The gateway declined (payments only).
    Declined(String),
    /// The gateway was not reached; the call is queued for retry.
    Unavailable(String),
    /// Somebody else settled it meanwhile; nothing to record.
    Nothing,
}

impl Engine {
    /// Calls the payment gateway for a pending payment and records the answer.
    /// `Declined` and `Unavailable` become the errors of the same names
    /// (the order is kept either way).
    pub(crate) fn settle_payment(&mut self, payment: Payment) -> Result<()> {
        let order = payment.order_id;
        let request = PaymentRequest {
            idempotency_key: payment.attempt.idempotency_key.clone(),
            order_id: order,
            amount: payment.amount,
            card: payment.card.clone(),
        };
        let call = self.guarded(PAYMENT, |e| e.payment.approve(&request))?;
        let (outcome, retry, settings) = (call.outcome, self.retry, self.breaker_settings);
        let settled = self.write(|w| {
            breakers::record(w.repo, PAYMENT, call.reached, &settings, w.now)?;
            let Some(current) = w.repo.latest_payment(order)?.filter(|p| p.id == payment.id) else {
                return Ok(Settled::Nothing);
            };
            match outcome {
                GatewayOutcome::Approved { gateway_ref } => {
                    if !matches!(current.status, PaymentStatus::Pending | PaymentStatus::Voided) {
                        return Ok(Settled::Nothing);
                    }
                    let (mut paid, event) = current.approve(&gateway_ref, w.now)?;
                    let found = w.repo.order(order)?.ok_or_else(|| Error::not_found("order", order))?;
                    let mut established = false;
                    if paid.status == PaymentStatus::Approved {
                        if found.status == OrderStatus::PendingPayment {
                            w.repo.update_order(&found.transition(OrderAction::Pay, w.now)?)?;
                            w.repo.save_ticket(&KitchenTicket::receive(order, found.store_id, w.now))?;
                            established = true;
                        } else {
                            // Paid twice or paid after a cancel: give it back.
                            paid = paid.request_refund(w.now)?;
                        }
                    }
                    w.repo.save_payment(&paid)?;
                    w.emit(event)?;
                    // A pending_payment order just paid has no charge yet and
                    // this approved payment is its latest: nothing to give back.
                    Ok(if established { Settled::Established } else { Settled::Done })
                }
                GatewayOutcome::Declined { reason } if current.status == PaymentStatus::Pending => {
                    let (declined, event) = current.decline(&reason, w.now)?;
                    w.repo.save_payment(&declined)?;
                    w.emit(event)?;
                    Ok(Settled::Declined(reason))
                }
                GatewayOutcome::Declined { reason } | GatewayOutcome::Unavailable { reason } => {
                    if current.status != PaymentStatus::Pending {
                        return Ok(Settled::Nothing);
                    }
                    let first = current.attempt.last_error.is_none();
                    let queued = queue_payment(&current, &reason, w, retry)?;
                    if first {
                        w.emit(crate::domain::Event::PaymentQueued {
                            order_id: order,
                            payment_id: queued.id,
                            amount: queued.amount,
                            reason: reason.clone(),
                        })?;
                    }
                    Ok(Settled::Unavailable(reason))
                }
            }
        })?;
        match settled {
            Settled::Declined(reason) => Err(Error::Declined { order, reason }),
            Settled::Unavailable(reason) => Err(Error::Unavailable(format!(
                "the payment service is unavailable ({reason}); order {order} is kept as pending_payment and \
                 will be paid when the service is back: `ezdelivery relay` retries it with the same \
                 idempotency key, so it is charged once"
            ))),
            Settled::Established => Ok(()),
            Settled::Done | Settled::Nothing => self.settle_refunds(order),
        }
    }

    /// Calls the charge gateway for a pending charge and records the answer.
    pub(crate) fn settle_charge(&mut self, charge: Charge) -> Result<Settled> {
        let order = charge.order_id;
        let rider = self.read(|repo| repo.rider(charge.rider_id))?.map(|r| r.name).unwrap_or_default();
        let request = ChargeRequest {
            idempotency_key: charge.attempt.idempotency_key.clone(),
            order_id: order,
            rider_id: charge.rider_id,
            rider,
            amount: charge.amount,
        };
        let call = self.guarded(CHARGE, |e| e.charge.pay(&request))?;
        let (outcome, retry, settings) = (call.outcome, self.retry, self.breaker_settings);
        let settled = self.write(|w| {
            breakers::record(w.repo, CHARGE, call.reached, &settings, w.now)?;
            let Some(current) = w.repo.charges(order)?.into_iter().find(|c| c.id == charge.id) else {
                return Ok(Settled::Nothing);
            };
            match outcome {
                GatewayOutcome::Approved { gateway_ref } => {
                    if !matches!(current.status, ChargeStatus::Pending | ChargeStatus::Voided) {
                        return Ok(Settled::Nothing);
                    }
                    let (paid, event) = current.pay(&gateway_ref, w.now)?;
                    w.repo.save_charge(&paid)?;
                    w.emit(event)?;
                    // Paid after it was voided: it is to be taken back.
                    Ok(if paid.status == ChargeStatus::Paid { Settled::Established } else { Settled::Done })
                }
                GatewayOutcome::Declined { reason } | GatewayOutcome::Unavailable { reason } => {
                    if current.status != ChargeStatus::Pending {
                        return Ok(Settled::Nothing);
                    }
                    let next = retry.next_at(current.attempt.tries + 1, w.now);
                    let queued =
                        Charge { attempt: current.attempt.failed(&reason, next), updated_at: w.now, ..current };
                    w.repo.save_charge(&queued)?;
                    Ok(Settled::Unavailable(reason))
                }
            }
        })?;
        if settled == Settled::Done {
            self.settle_refunds(order)?;
        }
        Ok(settled)
    }

    /// Asks the gateways to refund the order's payment and take back its
    /// charges that wait for it (`refund_pending`). What the gateways cannot
    /// do now stays queued for `relay`; that is not an error of the command.
    pub(crate) fn settle_refunds(&mut self, order: OrderId) -> Result<()> {
        let (payment, charges) = self.read(|repo| {
            let payment = repo.latest_payment(order)?.filter(|p| p.status == PaymentStatus::RefundPending);
            let charges: Vec<Charge> =
                repo.charges(order)?.into_iter().filter(|c| c.status == ChargeStatus::RefundPending).collect();
            Ok((payment, charges))
        })?;
        if let Some(payment) = payment {
            self.refund_payment(payment)?;
        }
        for charge in charges {
            self.refund_charge(charge)?;
        }
        Ok(())
    }

    /// Refunds one `refund_pending` payment, or queues the refund.
    pub(crate) fn refund_payment(&mut self, payment: Payment) -> Result<Settled> {
        let request = refund_request(
            &payment.attempt.idempotency_key,
            payment.order_id,
            payment.gateway_ref.as_deref(),
            payment.amount,
        );
        let call = self.guarded(PAYMENT, |e| e.payment.refund(&request))?;
        let (outcome, retry, settings) = (call.outcome, self.retry, self.breaker_settings);
        self.write(|w| {
            breakers::record(w.repo, PAYMENT, call.reached, &settings, w.now)?;
            let Some(current) = w.repo.latest_payment(payment.order_id)?.filter(|p| p.id == payment.id) else {
                return Ok(Settled::Nothing);
            };
            if current.status != PaymentStatus::RefundPending {
                return Ok(Settled::Nothing);
            }
            match outcome {
                GatewayOutcome::Approved { .. } => {
                    let (refunded, event) = current.confirm_refund(w.now)?;
                    w.repo.save_payment(&refunded)?;
                    w.emit(event)?;
                    Ok(Settled::Done)
                }
                GatewayOutcome::Declined { reason } | GatewayOutcome::Unavailable { reason } => {
                    queue_payment(&current, &reason, w, retry)?;
                    Ok(Settled::Unavailable(reason))
                }
            }
        })
    }

    /// Takes back one `refund_pending` delivery charge, or queues it.
    pub(crate) fn refund_charge(&mut self, charge: Charge) -> Result<Settled> {
        let request = refund_request(
            &charge.attempt.idempotency_key,
            charge.order_id,
            charge.gateway_ref.as_deref(),
            charge.amount,
        );
        let call = self.guarded(CHARGE, |e| e.charge.refund(&request))?;
        let (outcome, retry, settings) = (call.outcome, self.retry, self.breaker_settings);
        self.write(|w| {
            breakers::record(w.repo, CHARGE, call.reached, &settings, w.now)?;
            let Some(current) = w.repo.charges(charge.order_id)?.into_iter().find(|c| c.id == charge.id) else {
                return Ok(Settled::Nothing);
            };
            if current.status != ChargeStatus::RefundPending {
                return Ok(Settled::Nothing);
            }
            match outcome {
                GatewayOutcome::Approved { .. } => {
                    let (refunded, event) = current.confirm_refund(w.now)?;
                    w.repo.save_charge(&refunded)?;
                    w.emit(event)?;
                    Ok(Settled::Done)
                }
                GatewayOutcome::Declined { reason } | GatewayOutcome::Unavailable { reason } => {
                    let next = retry.next_at(current.attempt.tries + 1, w.now);
                    let queued =
                        Charge { attempt: current.attempt.failed(&reason, next), updated_at: w.now, ..current };
                    w.repo.save_charge(&queued)?;
                    Ok(Settled::Unavailable(reason))
                }
            }
        })
    }
}

/// Records a failed try of a payment's current call and when to retry it.
fn queue_payment(
    current: &Payment,
    reason: &str,
    w: &mut Work<'_>,
    retry: crate::app::retry::RetryPolicy,
) -> Result<Payment> {
    let next = retry.next_at(current.attempt.tries + 1, w.now);
    let queued = Payment { attempt: current.attempt.failed(reason, next), updated_at: w.now, ..current.clone() };
    w.repo.save_payment(&queued)?;
    Ok(queued)
}

fn refund_request(key: &str, order_id: OrderId, gateway_ref: Option<&str>, amount: i64) -> RefundRequest {
    RefundRequest {
        idempotency_key: key.to_string(),
        order_id,
        gateway_ref: gateway_ref.unwrap_or_default().to_string(),
        amount,
        reason: format!("order {order_id} was cancelled or rejected"),
    }
}
