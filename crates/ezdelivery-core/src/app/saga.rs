//! The saga's gateway legs: each call to a payment or delivery-charge
//! gateway happens between two transactions. The attempt (with its
//! idempotency key) was committed before the call, marked as "maybe
//! processed"; the outcome is recorded after it. A crash in between leaves
//! the attempt `pending` and marked, and `relay` retries it under the same
//! key, so the gateway acts on it once; a cancel never drops it unasked.

use std::time::Instant;

use crate::app::breakers::{self, Guarded, CHARGE, PAYMENT};
use crate::app::engine::Engine;
use crate::app::retry::RetryPolicy;
use crate::domain::attempt::Attempt;
use crate::domain::order::OrderAction;
use crate::domain::{
    Charge, ChargeStatus, DeliveryStatus, Event, KitchenTicket, OrderId, OrderStatus, Payment, PaymentStatus,
};
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

/// Whether the attempt given to a settle function was created for this very
/// call (`Fresh`: no earlier try can have reached the gateway) or was
/// loaded to be retried (`Retry`: it carries its own history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Try {
    /// Created in the transaction just committed.
    Fresh,
    /// Loaded from the storage: a queued or interrupted attempt.
    Retry,
}

impl Try {
    /// Whether an earlier try of `attempt` may have been acted on.
    fn earlier_doubt(self, attempt: &Attempt) -> bool {
        self == Try::Retry && attempt.maybe_processed
    }
}

/// The attempt after a failed try: due again by `retry`'s back-off, and
/// still "maybe processed" unless this try certainly did not reach the
/// gateway and no earlier one may have.
fn failed_try(
    attempt: &Attempt,
    outcome: &GatewayOutcome,
    reason: &str,
    earlier_doubt: bool,
    retry: RetryPolicy,
    now: chrono::DateTime<chrono::Utc>,
) -> Attempt {
    let this_try = !matches!(outcome, GatewayOutcome::NotReached { .. });
    attempt.failed(reason, retry.next_at(attempt.tries + 1, now), earlier_doubt || this_try)
}

/// The reason of an outcome that did not do the work.
fn reason_of(outcome: &GatewayOutcome) -> Option<&str> {
    match outcome {
        GatewayOutcome::Approved { .. } => None,
        GatewayOutcome::Declined { reason }
        | GatewayOutcome::Unavailable { reason }
        | GatewayOutcome::NotReached { reason } => Some(reason),
    }
}

impl Engine {
    /// Calls the payment gateway for a pending payment and records the answer.
    /// `Declined` and `Unavailable` become the errors of the same names
    /// (the order is kept either way).
    pub(crate) fn settle_payment(&mut self, payment: Payment, attempt: Try) -> Result<()> {
        let order = payment.order_id;
        let earlier_doubt = attempt.earlier_doubt(&payment.attempt);
        if !payment.attempt.maybe_processed {
            // From here until the answer is recorded the gateway may act on it.
            self.write(|w| {
                match w.repo.latest_payment(order)?.filter(|p| p.id == payment.id && p.status == PaymentStatus::Pending)
                {
                    Some(p) => w.repo.save_payment(&Payment { attempt: p.attempt.calling(), ..p }),
                    None => Ok(()),
                }
            })?;
        }
        let request = PaymentRequest {
            idempotency_key: payment.attempt.idempotency_key.clone(),
            order_id: order,
            amount: payment.amount,
            card: payment.card.clone(),
        };
        let call = self.guarded(PAYMENT, |e| timed(PAYMENT, "approve", order, || e.payment.approve(&request)))?;
        skipped(PAYMENT, "approve", order, &call);
        let (outcome, retry, settings) = (call.outcome, self.retry, self.breaker_settings);
        let settled = self.write(|w| {
            breakers::record(w.repo, PAYMENT, call.reached, &settings, w.now)?;
            let Some(current) = w.repo.latest_payment(order)?.filter(|p| p.id == payment.id) else {
                return Ok(Settled::Nothing);
            };
            match &outcome {
                GatewayOutcome::Approved { gateway_ref } => {
                    if !matches!(current.status, PaymentStatus::Pending | PaymentStatus::Voided) {
                        return Ok(Settled::Nothing);
                    }
                    let (mut paid, event) = current.approve(gateway_ref, w.now)?;
                    let found = w.repo.order(order)?.ok_or_else(|| Error::not_found("order", order))?;
                    let mut established = false;
                    if paid.status == PaymentStatus::Approved {
                        if found.status == OrderStatus::PendingPayment {
                            w.repo.update_order(&found.transition(OrderAction::Pay, w.now)?)?;
                            w.repo.save_ticket(&KitchenTicket::receive(order, found.store_id, w.now))?;
                            established = true;
                        } else {
                            // Paid after a cancel (an answer that was in doubt): give it back.
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
                    let (declined, event) = current.decline(reason, w.now)?;
                    w.repo.save_payment(&declined)?;
                    w.emit(event)?;
                    Ok(Settled::Declined(reason.clone()))
                }
                failed => {
                    let reason = reason_of(failed).unwrap_or_default().to_string();
                    if current.status != PaymentStatus::Pending {
                        return Ok(Settled::Nothing);
                    }
                    let first = current.attempt.last_error.is_none();
                    let attempt = failed_try(&current.attempt, failed, &reason, earlier_doubt, retry, w.now);
                    let queued = Payment { attempt, updated_at: w.now, ..current };
                    w.repo.save_payment(&queued)?;
                    let order_cancelled = w.repo.order(order)?.is_some_and(|o| o.status != OrderStatus::PendingPayment);
                    if order_cancelled && !queued.attempt.maybe_processed {
                        // Asked again for a cancelled order, and now certain it
                        // never went through: nothing to reconcile any more.
                        let (voided, event) = queued.void(w.now)?;
                        w.repo.save_payment(&voided)?;
                        w.emit(event)?;
                    } else if first {
                        w.emit(Event::PaymentQueued {
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
    /// A charge paid for a delivery that was cancelled or moved meanwhile is
    /// taken back at once.
    pub(crate) fn settle_charge(&mut self, charge: Charge, attempt: Try) -> Result<Settled> {
        let order = charge.order_id;
        let earlier_doubt = attempt.earlier_doubt(&charge.attempt);
        if !charge.attempt.maybe_processed {
            self.write(|w| {
                let current = w.repo.charges(order)?.into_iter().find(|c| c.id == charge.id);
                match current.filter(|c| c.status == ChargeStatus::Pending) {
                    Some(c) => w.repo.save_charge(&Charge { attempt: c.attempt.calling(), ..c }),
                    None => Ok(()),
                }
            })?;
        }
        let rider = self.read(|repo| repo.rider(charge.rider_id))?.map(|r| r.name).unwrap_or_default();
        let request = ChargeRequest {
            idempotency_key: charge.attempt.idempotency_key.clone(),
            order_id: order,
            rider_id: charge.rider_id,
            rider,
            amount: charge.amount,
        };
        let call = self.guarded(CHARGE, |e| timed(CHARGE, "pay", order, || e.charge.pay(&request)))?;
        skipped(CHARGE, "pay", order, &call);
        let (outcome, retry, settings) = (call.outcome, self.retry, self.breaker_settings);
        let settled = self.write(|w| {
            breakers::record(w.repo, CHARGE, call.reached, &settings, w.now)?;
            let Some(current) = w.repo.charges(order)?.into_iter().find(|c| c.id == charge.id) else {
                return Ok(Settled::Nothing);
            };
            let wanted = w
                .repo
                .delivery(order)?
                .is_some_and(|d| d.status != DeliveryStatus::Cancelled && d.rider_id == Some(current.rider_id));
            match &outcome {
                GatewayOutcome::Approved { gateway_ref } => {
                    if !matches!(current.status, ChargeStatus::Pending | ChargeStatus::Voided) {
                        return Ok(Settled::Nothing);
                    }
                    let (mut paid, event) = current.pay(gateway_ref, w.now)?;
                    if paid.status == ChargeStatus::Paid && !wanted {
                        // Paid for a delivery that was cancelled or moved: take it back.
                        paid = paid.request_refund(w.now)?;
                    }
                    w.repo.save_charge(&paid)?;
                    w.emit(event)?;
                    // Paid after it was voided: it is to be taken back.
                    Ok(if paid.status == ChargeStatus::Paid { Settled::Established } else { Settled::Done })
                }
                failed => {
                    let reason = reason_of(failed).unwrap_or_default().to_string();
                    if current.status != ChargeStatus::Pending {
                        return Ok(Settled::Nothing);
                    }
                    let attempt = failed_try(&current.attempt, failed, &reason, earlier_doubt, retry, w.now);
                    let queued = Charge { attempt, updated_at: w.now, ..current };
                    w.repo.save_charge(&queued)?;
                    if !wanted && !queued.attempt.maybe_processed {
                        let (voided, event) = queued.void(w.now)?;
                        w.repo.save_charge(&voided)?;
                        w.emit(event)?;
                    }
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
        let (order, id) = (payment.order_id, payment.id);
        let request = refund_request(&payment.attempt, order, payment.gateway_ref.as_deref(), payment.amount);
        let call = self.guarded(PAYMENT, |e| timed(PAYMENT, "refund", order, || e.payment.refund(&request)))?;
        skipped(PAYMENT, "refund", order, &call);
        let (outcome, retry, settings) = (call.outcome, self.retry, self.breaker_settings);
        self.write(|w| {
            breakers::record(w.repo, PAYMENT, call.reached, &settings, w.now)?;
            let current = w.repo.latest_payment(order)?.filter(|p| p.id == id);
            let Some(current) = current.filter(|p| p.status == PaymentStatus::RefundPending) else {
                return Ok(Settled::Nothing);
            };
            match reason_of(&outcome) {
                None => {
                    let (refunded, event) = current.confirm_refund(w.now)?;
                    w.repo.save_payment(&refunded)?;
                    w.emit(event)?;
                    Ok(Settled::Done)
                }
                Some(reason) => {
                    let attempt = failed_try(&current.attempt, &outcome, reason, true, retry, w.now);
                    w.repo.save_payment(&Payment { attempt, updated_at: w.now, ..current })?;
                    Ok(Settled::Unavailable(reason.to_string()))
                }
            }
        })
    }

    /// Takes back one `refund_pending` delivery charge, or queues it.
    pub(crate) fn refund_charge(&mut self, charge: Charge) -> Result<Settled> {
        let (order, id) = (charge.order_id, charge.id);
        let request = refund_request(&charge.attempt, order, charge.gateway_ref.as_deref(), charge.amount);
        let call = self.guarded(CHARGE, |e| timed(CHARGE, "refund", order, || e.charge.refund(&request)))?;
        skipped(CHARGE, "refund", order, &call);
        let (outcome, retry, settings) = (call.outcome, self.retry, self.breaker_settings);
        self.write(|w| {
            breakers::record(w.repo, CHARGE, call.reached, &settings, w.now)?;
            let current = w.repo.charges(order)?.into_iter().find(|c| c.id == id);
            let Some(current) = current.filter(|c| c.status == ChargeStatus::RefundPending) else {
                return Ok(Settled::Nothing);
            };
            match reason_of(&outcome) {
                None => {
                    let (refunded, event) = current.confirm_refund(w.now)?;
                    w.repo.save_charge(&refunded)?;
                    w.emit(event)?;
                    Ok(Settled::Done)
                }
                Some(reason) => {
                    let attempt = failed_try(&current.attempt, &outcome, reason, true, retry, w.now);
                    w.repo.save_charge(&Charge { attempt, updated_at: w.now, ..current })?;
                    Ok(Settled::Unavailable(reason.to_string()))
                }
            }
        })
    }
}

fn refund_request(attempt: &Attempt, order_id: OrderId, gateway_ref: Option<&str>, amount: i64) -> RefundRequest {
    RefundRequest {
        idempotency_key: attempt.idempotency_key.clone(),
        order_id,
        gateway_ref: gateway_ref.unwrap_or_default().to_string(),
        amount,
        reason: format!("order {order_id} was cancelled or rejected"),
    }
}

/// Makes one gateway call and logs it with its duration and outcome
/// (`-v` on the command line shows these lines).
fn timed(gateway: &str, call: &str, order: OrderId, make: impl FnOnce() -> GatewayOutcome) -> GatewayOutcome {
    let started = Instant::now();
    let outcome = make();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (result, reason) = match &outcome {
        GatewayOutcome::Approved { .. } => ("approved", ""),
        GatewayOutcome::Declined { reason } => ("declined", reason.as_str()),
        GatewayOutcome::Unavailable { reason } => ("unavailable", reason.as_str()),
        GatewayOutcome::NotReached { reason } => ("not reached", reason.as_str()),
    };
    let elapsed_ms = format_args!("{elapsed_ms:.3}");
    if reason.is_empty() {
        tracing::info!(gateway = %gateway, call = %call, order, result = %result, elapsed_ms, "gateway call");
    } else {
        tracing::info!(gateway = %gateway, call = %call, order, result = %result, reason = %reason, elapsed_ms, "gateway call");
    }
    outcome
}

/// Logs a call the gateway's circuit breaker refused without making it.
fn skipped(gateway: &str, call: &str, order: OrderId, guarded: &Guarded) {
    if guarded.reached.is_none() {
        tracing::info!(gateway = %gateway, call = %call, order, "gateway call skipped: its circuit breaker is open");
    }
}
