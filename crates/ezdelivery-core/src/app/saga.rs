//! The saga's gateway legs: every call to a payment or delivery-charge
//! gateway, for a payment, a charge, or the refund of either, goes
//! claim → call → fence.
//!
//! 1. **Claim.** A transaction finds the payment or charge still in the
//!    state that needs the call, nobody else holding it, and writes a claim
//!    (a random token and a lease) on its attempt. Commands claim in the
//!    same transaction that checks their preconditions, so a refused
//!    command never calls a gateway; `relay` claims item by item, from a
//!    fresh read, never from a copy read earlier.
//! 2. **Call**, outside any transaction, under the attempt's idempotency key.
//! 3. **Fence.** A second transaction records the answer. A definite answer
//!    (done, declined) is a fact, recorded whoever holds the claim now: an
//!    approval nobody wants any more is refunded, never dropped. Any other
//!    answer is recorded only while the claim still holds.
//!
//! What an answer means is decided in one place, `Attempt::judge`; the
//! two kinds of record, [`Payment`] and [`Charge`], differ only in what a
//! settled call does to their order (the [`Leg`] implementations below).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::app::breakers;
use crate::app::command::Command;
use crate::app::engine::{Engine, GatewayNames, Work};
use crate::domain::attempt::{Answer, Attempt, Verdict};
use crate::domain::order::OrderAction;
use crate::domain::{
    Billed, Billing, Charge, ChargeStatus, DeliveryStatus, Event, KitchenTicket, Order, OrderId, OrderStatus, Payment,
    PaymentStatus, Won,
};
use crate::domain::{BillingAction, BillingStatus, Breaker, BreakerName};
use crate::ports::storage::Repo;
use crate::ports::{ChargeRequest, GatewayOutcome, PaymentRequest, RefundRequest};
use crate::{Error, Kept, Result};

/// What recording a gateway's answer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    /// The gateway did it (a refund, or money taken that goes back).
    Done,
    /// The gateway approved a payment that established its order, or paid
    /// a charge as asked: nothing of the order waits for a refund.
    Established,
    /// The gateway declined (payments only).
    Declined(String),
    /// Not settled: queued for a retry under the same key. `breaker_open`:
    /// the gateway's circuit breaker refused the call.
    Unavailable { reason: String, breaker_open: bool },
    /// Not settled after too many unreadable answers: a person must look.
    Attention(String),
    /// Somebody else settled it meanwhile; nothing to record.
    Nothing,
}

/// Which call a payment or charge waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Take the money: approve the payment, pay the rider.
    Take,
    /// Give it back: refund the payment, take the charge back.
    GiveBack,
}

/// One gateway request, ready to send.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    Approve(PaymentRequest),
    Pay(ChargeRequest),
    RefundPayment(RefundRequest),
    RefundCharge(RefundRequest),
}

/// A payment or charge claimed for one call, with the request to send.
#[derive(Debug, Clone)]
pub(crate) struct Claimed<L> {
    leg: L,
    call: Call,
    token: Arc<str>,
    request: Request,
    /// Its gateway's circuit breaker as the claim's unit of work read it
    /// (`None`: never used), so that asking the breaker before the call
    /// takes no transaction of its own.
    breaker: Option<Breaker>,
}

impl<L: Leg> Claimed<L> {
    /// Reads its gateway's breaker again: for a claim held while other
    /// calls to that gateway were made, which may have opened or closed it.
    pub(crate) fn read_breaker_again(&mut self, command: &Command<'_>) -> Result<()> {
        self.breaker = command.read(|repo| repo.breaker(&L::BREAKER))?;
        Ok(())
    }
}

/// What trying to claim a record came to.
#[derive(Debug, Clone)]
pub(crate) enum Claiming<L> {
    /// Claimed: make the call.
    Claimed(Claimed<L>),
    /// Another actor's call is under way until then.
    Busy(DateTime<Utc>),
    /// It went to another gateway, named here, than this engine's.
    Elsewhere(Arc<str>),
    /// It needs no call (settled, or waiting for a person).
    Nothing,
}

/// A payment or a delivery charge: a record whose money moves through a
/// gateway. What a settled call does to the order differs; the rest of the
/// claim → call → fence cycle is shared.
pub(crate) trait Leg: Clone + Sized {
    /// The circuit breaker of its gateway.
    const BREAKER: BreakerName;
    /// What it is, for messages.
    const WHAT: Billing;
    /// Whether its gateway may decline taking the money (payments only;
    /// elsewhere a "no" proves nothing and the call stays in doubt).
    const DECLINABLE: bool;
    /// The name of its gateway among an engine's.
    fn gateway(names: &GatewayNames) -> &Arc<str>;
    fn id(&self) -> i64;
    fn order_id(&self) -> OrderId;
    fn amount(&self) -> Won;
    /// The gateway's reference, once it took the money.
    fn gateway_ref(&self) -> Option<String>;
    fn attempt(&self) -> &Attempt;
    fn with_attempt(&self, attempt: Attempt, now: DateTime<Utc>) -> Self;
    /// Whether a gateway's answer that takes or declines is news to it.
    fn awaits(&self, action: BillingAction) -> bool;
    /// The call it waits for, if any.
    fn call(&self) -> Option<Call>;
    /// Reads it again, by id.
    fn load(repo: &mut dyn Repo, order: OrderId, id: i64) -> Result<Option<Self>>;
    fn save(&self, repo: &mut dyn Repo) -> Result<()>;
    /// The request for `call`.
    fn request(&self, repo: &mut dyn Repo, call: Call) -> Result<Request>;
    /// Whether its order still wants the money taken (a call that certainly
    /// never reached the gateway is dropped otherwise).
    fn wanted(&self, repo: &mut dyn Repo) -> Result<bool>;
    /// The gateway took the money under `gateway_ref`.
    fn taken(&self, w: &mut Work<'_>, gateway_ref: &str) -> Result<Settled>;
    /// The gateway refused to take it, for good (only if `DECLINABLE`).
    fn declined(&self, _w: &mut Work<'_>, _reason: &str) -> Result<Settled> {
        Ok(Settled::Nothing)
    }
    /// The gateway gave the money back.
    fn given_back(&self, w: &mut Work<'_>) -> Result<Settled>;
    /// Dropped: it certainly never reached the gateway, and nobody wants it.
    fn void(&self, w: &mut Work<'_>) -> Result<()>;
    /// Parked for a person, with `attempt` as the last try left it.
    fn give_up(&self, w: &mut Work<'_>, attempt: Attempt) -> Result<()>;
    /// Its first try that settled nothing.
    fn first_unsettled(&self, _w: &mut Work<'_>, _reason: &str) -> Result<()> {
        Ok(())
    }
}

/// What a [`Payment`] and a [`Charge`] do alike as legs: their fields and
/// statuses have the same names, and their domain moves the same
/// signatures, so one text serves both.
macro_rules! shared_leg {
    ($record:ident, $status:ident) => {
        fn id(&self) -> i64 {
            self.id
        }

        fn order_id(&self) -> OrderId {
            self.order_id
        }

        fn amount(&self) -> Won {
            self.amount
        }

        fn gateway_ref(&self) -> Option<String> {
            self.gateway_ref.clone()
        }

        fn attempt(&self) -> &Attempt {
            &self.attempt
        }

        fn with_attempt(&self, attempt: Attempt, now: DateTime<Utc>) -> $record {
            $record { attempt, updated_at: now, ..self.clone() }
        }

        // Its table allows `action` and it holds no reference yet
        // (`Billed::to`'s rule: one in `needs_attention` over its refund
        // took the money already).
        fn awaits(&self, action: BillingAction) -> bool {
            self.gateway_ref.is_none() && self.status.next(action).is_some()
        }

        fn call(&self) -> Option<Call> {
            match self.status {
                $status::Pending => Some(Call::Take),
                $status::RefundPending => Some(Call::GiveBack),
                _ => None,
            }
        }

        fn given_back(&self, w: &mut Work<'_>) -> Result<Settled> {
            if !matches!(self.status, $status::RefundPending | $status::NeedsAttention) {
                return Ok(Settled::Nothing);
            }
            let (refunded, event) = self.confirm_refund(w.now)?;
            refunded.save(w.repo)?;
            w.emit(event)?;
            Ok(Settled::Done)
        }

        fn void(&self, w: &mut Work<'_>) -> Result<()> {
            let (voided, event) = Billed::void(self, w.now)?;
            voided.save(w.repo)?;
            w.emit(event)
        }

        fn give_up(&self, w: &mut Work<'_>, attempt: Attempt) -> Result<()> {
            let (stuck, event) = Billed::give_up(self, attempt, w.now)?;
            stuck.save(w.repo)?;
            w.emit(event)
        }
    };
}

impl Leg for Payment {
    const BREAKER: BreakerName = BreakerName::Payment;
    const WHAT: Billing = Billing::Payment;
    const DECLINABLE: bool = true;

    shared_leg!(Payment, PaymentStatus);

    fn gateway(names: &GatewayNames) -> &Arc<str> {
        &names.payment
    }

    fn load(repo: &mut dyn Repo, _order: OrderId, id: i64) -> Result<Option<Payment>> {
        repo.payment(id)
    }

    fn save(&self, repo: &mut dyn Repo) -> Result<()> {
        repo.save_payment(self)
    }

    fn request(&self, _repo: &mut dyn Repo, call: Call) -> Result<Request> {
        Ok(match call {
            Call::Take => Request::Approve(PaymentRequest {
                idempotency_key: self.attempt.idempotency_key.clone(),
                order_id: self.order_id,
                amount: self.amount,
                card: self.card.clone(),
            }),
            Call::GiveBack => {
                Request::RefundPayment(refund_request(self.order_id, &self.attempt, &self.gateway_ref, self.amount))
            }
        })
    }

    fn wanted(&self, repo: &mut dyn Repo) -> Result<bool> {
        Ok(wants_payment(repo.order(self.order_id)?.as_ref()))
    }

    fn taken(&self, w: &mut Work<'_>, gateway_ref: &str) -> Result<Settled> {
        if !self.awaits(BillingAction::Take) {
            return Ok(Settled::Nothing);
        }
        // Cancelled meanwhile, or paid by another attempt: the domain gives it back.
        let order = w.repo.order(self.order_id)?;
        let (paid, events) = self.approve(gateway_ref, wants_payment(order.as_ref()), w.now)?;
        let established = paid.status == PaymentStatus::Approved;
        if established {
            let order = order.ok_or_else(|| Error::not_found(crate::Record::Order, self.order_id))?;
            let (id, store_id) = (order.id, order.store_id);
            w.repo.update_order(&order.into_transition(OrderAction::Pay, w.now)?)?;
            w.repo.save_ticket(&KitchenTicket::receive(id, store_id, w.now))?;
        }
        paid.save(w.repo)?;
        events.into_iter().try_for_each(|event| w.emit(event))?;
        Ok(if established { Settled::Established } else { Settled::Done })
    }

    fn declined(&self, w: &mut Work<'_>, reason: &str) -> Result<Settled> {
        if !self.awaits(BillingAction::Decline) {
            return Ok(Settled::Nothing);
        }
        let (declined, event) = self.decline(reason, w.now)?;
        declined.save(w.repo)?;
        w.emit(event)?;
        Ok(Settled::Declined(reason.to_string()))
    }

    fn first_unsettled(&self, w: &mut Work<'_>, reason: &str) -> Result<()> {
        if self.status != PaymentStatus::Pending {
            return Ok(());
        }
        w.emit(Event::PaymentQueued {
            order_id: self.order_id,
            payment_id: self.id,
            amount: self.amount,
            reason: reason.to_string(),
            card: self.card.clone(),
        })
    }
}

/// Whether `order` still waits for its payment: only an order still
/// pending payment takes one (a cancelled or already paid one gives it back).
fn wants_payment(order: Option<&Order>) -> bool {
    order.is_some_and(|o| o.status == OrderStatus::PendingPayment)
}

impl Leg for Charge {
    const BREAKER: BreakerName = BreakerName::Charge;
    const WHAT: Billing = Billing::DeliveryCharge;
    const DECLINABLE: bool = false;

    shared_leg!(Charge, ChargeStatus);

    fn gateway(names: &GatewayNames) -> &Arc<str> {
        &names.charge
    }

    fn load(repo: &mut dyn Repo, order: OrderId, id: i64) -> Result<Option<Charge>> {
        Ok(repo.charges(order)?.into_iter().find(|c| c.id == id))
    }

    fn save(&self, repo: &mut dyn Repo) -> Result<()> {
        repo.save_charge(self)
    }

    fn request(&self, repo: &mut dyn Repo, call: Call) -> Result<Request> {
        Ok(match call {
            Call::Take => Request::Pay(ChargeRequest {
                idempotency_key: self.attempt.idempotency_key.clone(),
                order_id: self.order_id,
                rider_id: self.rider_id,
                rider: repo.rider(self.rider_id)?.map(|r| String::from(r.name.as_str())).unwrap_or_default(),
                amount: self.amount,
            }),
            Call::GiveBack => {
                Request::RefundCharge(refund_request(self.order_id, &self.attempt, &self.gateway_ref, self.amount))
            }
        })
    }

    /// Wanted while it is the delivery's charge: the delivery goes on, with
    /// this rider, and no newer charge was made for it. A delivery moved
    /// to another rider and back gets a new charge for the rider's return
    /// while the first may still be in doubt; kept as paid too, that first
    /// one paid the rider twice. Every charge of an order is made under
    /// its lock, so the newest has the largest id.
    fn wanted(&self, repo: &mut dyn Repo) -> Result<bool> {
        let delivery = repo.delivery(self.order_id)?;
        let rider =
            delivery.is_some_and(|d| d.status != DeliveryStatus::Cancelled && d.rider_id == Some(self.rider_id));
        Ok(rider && repo.charges(self.order_id)?.iter().all(|c| c.id <= self.id))
    }

    fn taken(&self, w: &mut Work<'_>, gateway_ref: &str) -> Result<Settled> {
        if !self.awaits(BillingAction::Take) {
            return Ok(Settled::Nothing);
        }
        // Paid for a delivery that was cancelled or moved: the domain takes it back.
        let (paid, events) = self.pay(gateway_ref, self.wanted(w.repo)?, w.now)?;
        paid.save(w.repo)?;
        events.into_iter().try_for_each(|event| w.emit(event))?;
        Ok(if paid.status == ChargeStatus::Paid { Settled::Established } else { Settled::Done })
    }
}

/// Claims `leg` for the call it waits for, inside unit of work `w`, if no
/// other actor holds it and it goes to this engine's gateway. `only_due`:
/// only if its back-off is over too (the relay); a command asked by a
/// person retries at once.
pub(crate) fn claim<L: Leg>(w: &mut Work<'_>, leg: &L, only_due: bool) -> Result<Claiming<L>> {
    let Some(call) = leg.call() else { return Ok(Claiming::Nothing) };
    let attempt = leg.attempt();
    let gateway = L::gateway(w.gateways);
    if !attempt.goes_to(gateway, call == Call::Take) {
        return Ok(Claiming::Elsewhere(attempt.gateway.clone().unwrap_or_default()));
    }
    if !attempt.claimable(w.now) {
        let until = attempt.claim.as_ref().map_or(w.now, |c| c.until);
        return Ok(Claiming::Busy(until));
    }
    if only_due && !attempt.due(w.now) {
        return Ok(Claiming::Busy(attempt.next_at.unwrap_or(w.now)));
    }
    let token = w.nonces.token();
    let claimed = leg.with_attempt(attempt.claim(Arc::clone(&token), w.lease_until(), gateway), w.now);
    claimed.save(w.repo)?;
    let request = claimed.request(w.repo, call)?;
    let breaker = w.repo.breaker(&L::BREAKER)?;
    Ok(Claiming::Claimed(Claimed { leg: claimed, call, token, request, breaker }))
}

/// [`claim`] for a record read again by id in the same unit of work:
/// what `relay` and the follow-up of a command claim.
pub(crate) fn claim_by_id<L: Leg>(w: &mut Work<'_>, order: OrderId, id: i64, only_due: bool) -> Result<Claiming<L>> {
    w.lock_order(order)?;
    match L::load(w.repo, order, id)? {
        Some(leg) => claim(w, &leg, only_due),
        None => Ok(Claiming::Nothing),
    }
}

/// The gateway calls an order's payment and charges wait for that are due:
/// each as (record id, call).
#[derive(Debug, Default)]
pub(crate) struct DueCalls {
    payment: Option<(i64, Call)>,
    charges: Vec<(i64, Call)>,
}

impl DueCalls {
    /// Those of order `order` due at `now`, as `repo` has them.
    pub(crate) fn of(repo: &mut dyn Repo, order: OrderId, now: DateTime<Utc>) -> Result<DueCalls> {
        let due = |call: Option<Call>, a: &Attempt| call.filter(|_| a.due(now));
        let payment = repo.latest_payment(order)?.and_then(|p| due(p.call(), &p.attempt).map(|c| (p.id, c)));
        let charges = repo.charges(order)?.into_iter().filter_map(|c| due(c.call(), &c.attempt).map(|k| (c.id, k)));
        Ok(DueCalls { payment, charges: charges.collect() })
    }
}

impl Command<'_> {
    /// Calls the gateway for a claimed payment or charge and records the
    /// answer (see the module documentation). When the gateway took money
    /// and recording that fails, the error is [`Error::MoneyMoved`]: the
    /// claim lapses, and `relay` replays the key and records it.
    pub(crate) fn settle<L: Leg>(&mut self, claimed: Claimed<L>) -> Result<Settled> {
        let Claimed { leg, call, token, request, breaker } = claimed;
        let (order, id) = (leg.order_id(), leg.id());
        let what = request.describe();
        let engine = self.engine;
        let send = || timed(L::BREAKER.as_str(), what, order, || engine.send(&request));
        let guarded = engine.guarded(&L::BREAKER, breaker, send)?;
        if guarded.reached.is_none() {
            tracing::info!(gateway = %L::BREAKER, call = %what, order, "gateway call skipped: its circuit breaker is open");
        }
        let breaker_open = guarded.reached.is_none();
        let answer = match Answer::from(guarded.outcome) {
            // A taking without the reference its refund needs could never
            // be given back: as an answer that cannot be read, it is asked
            // again under its key, and goes to a person if it stays so.
            Answer::Done { gateway_ref } if call == Call::Take && gateway_ref.trim().is_empty() => {
                Answer::Unknown { reason: "the gateway approved without a reference (needed to refund it)".into() }
            }
            answer => answer,
        };
        let (retry, settings) = (engine.settings.retry, engine.settings.breakers);
        let recorded = self.write(|w| {
            // The order first: every unit of work takes its order's lock
            // before any row it shares with others (the breaker's).
            w.lock_order(order)?;
            breakers::record(w.repo, &L::BREAKER, guarded.reached, &settings, w.now)?;
            let Some(current) = L::load(w.repo, order, id)? else { return Ok(Settled::Nothing) };
            match (call, &answer) {
                // Facts, whoever holds the claim now.
                (Call::Take, Answer::Done { gateway_ref }) => current.taken(w, gateway_ref),
                (Call::Take, Answer::Declined { reason }) if L::DECLINABLE => current.declined(w, reason),
                (Call::GiveBack, Answer::Done { .. }) => current.given_back(w),
                // Anything else only counts for the holder of the claim.
                _ if !current.attempt().holds(&token) => Ok(Settled::Nothing),
                _ => {
                    let retry_at = retry.next_at(current.attempt().tries.saturating_add(1), w.now);
                    let first = current.attempt().last_error.is_none();
                    let unsettled = match &answer {
                        // A refund or a charge cannot be declined: such a "no" settles nothing.
                        Answer::Declined { reason } => Answer::Unknown { reason: reason.clone() },
                        other => other.clone(),
                    };
                    match current.attempt().judge(&unsettled, retry_at, retry.attention_after) {
                        Verdict::NeedsAttention(attempt) => {
                            let reason = attempt.last_error.clone().unwrap_or_default();
                            current.give_up(w, attempt)?;
                            Ok(Settled::Attention(reason))
                        }
                        Verdict::Retry(attempt) => {
                            let reason = attempt.last_error.clone().unwrap_or_default();
                            let queued = current.with_attempt(attempt, w.now);
                            queued.save(w.repo)?;
                            if call == Call::Take && !queued.attempt().in_doubt() && !queued.wanted(w.repo)? {
                                // Certain it never went through, and no longer wanted.
                                queued.void(w)?;
                            } else if call == Call::Take && first {
                                queued.first_unsettled(w, &reason)?;
                            }
                            Ok(Settled::Unavailable { reason, breaker_open })
                        }
                        // A definite answer was handled above.
                        Verdict::Done(_) | Verdict::Declined(_) => Ok(Settled::Nothing),
                    }
                }
            }
        });
        match recorded {
            Err(source) if call == Call::Take && matches!(answer, Answer::Done { .. }) => {
                Err(Error::MoneyMoved { order, what: L::WHAT, source: Box::new(source) })
            }
            // Any other answer to a taking that could not be recorded (the
            // database gone meanwhile): what the caller must hear is what
            // the gateway said, for the order it names. An exit 1 there read
            // "nothing written" for an order that was kept, whose payment
            // relay then took: a customer ordering again paid twice.
            Err(source @ Error::Storage(_)) if call == Call::Take => match answer {
                Answer::Declined { reason } if L::DECLINABLE => Err(Error::Declined { order, reason }),
                Answer::Declined { reason } | Answer::Unknown { reason } | Answer::NotReached { reason } => {
                    let kept = if L::WHAT == Billing::Payment { Kept::Payment } else { Kept::Charge };
                    let reason = format!("{reason}; the answer could not be recorded ({source})");
                    Err(Error::Unavailable { order, kept, reason, breaker_open })
                }
                Answer::Done { .. } => Err(source),
            },
            other => other,
        }
    }

    /// Claims `leg` (read again by id) and settles it, if it needs a call
    /// that is due and nobody else is making.
    pub(crate) fn settle_by_id<L: Leg>(&mut self, order: OrderId, id: i64, only_due: bool) -> Result<Settled> {
        match self.write(|w| claim_by_id::<L>(w, order, id, only_due))? {
            Claiming::Claimed(claimed) => self.settle(claimed),
            Claiming::Busy(_) | Claiming::Elsewhere(_) | Claiming::Nothing => Ok(Settled::Nothing),
        }
    }

    /// Makes every gateway call the order's payment and charges wait for
    /// that is due now (refunds, and payments in doubt of a cancelled
    /// order, whose key is replayed). What the gateways cannot do now stays
    /// queued for `relay`; that is not an error of the command.
    pub(crate) fn settle_order(&mut self, order: OrderId) -> Result<()> {
        let now = self.engine.now();
        let due = self.read(|repo| DueCalls::of(repo, order, now))?;
        self.settle_due(order, due).map(|_| ())
    }

    /// [`Command::settle_order`] with the calls found due by the unit of
    /// work that just committed ([`DueCalls::of`] at its end): no
    /// transaction at all when none are. Whether any were due (and so may
    /// have been called: one found busy or settled meanwhile is not).
    pub(crate) fn settle_due(&mut self, order: OrderId, due: DueCalls) -> Result<bool> {
        let any = due.payment.is_some() || !due.charges.is_empty();
        if let Some((id, call)) = due.payment {
            self.settle_leg::<Payment>(order, id, call)?;
        }
        for (id, call) in due.charges {
            self.settle_leg::<Charge>(order, id, call)?;
        }
        Ok(any)
    }

    /// [`Command::settle_due`] for the calls that follow a change already
    /// committed (a cancel's or a rejection's refunds and charges taken
    /// back): whatever happens to them now, they stay queued for `relay`,
    /// so an error recording one (the disk full) is not the command's. The
    /// change stands; failing the command said it had not happened, and its
    /// retry was refused as already done.
    pub(crate) fn settle_after(&mut self, order: OrderId, due: DueCalls) {
        if let Err(e) = self.settle_due(order, due) {
            tracing::warn!(order, error = %e, "calls after the change stay queued for relay");
        }
    }

    /// Claims and settles one due call of a payment or charge (`call`, as
    /// last read). Money taken for an order that no longer wants it (the
    /// take came back `Done`, not `Established`) goes back at once: the
    /// second result is that refund's.
    pub(crate) fn settle_leg<L: Leg>(
        &mut self,
        order: OrderId,
        id: i64,
        call: Call,
    ) -> Result<(Settled, Option<Settled>)> {
        let settled = self.settle_by_id::<L>(order, id, true)?;
        let back = if call == Call::Take && settled == Settled::Done {
            Some(self.settle_by_id::<L>(order, id, true)?)
        } else {
            None
        };
        Ok((settled, back))
    }
}

impl Engine {
    /// Sends one request to its gateway.
    fn send(&self, request: &Request) -> GatewayOutcome {
        let call = || match request {
            Request::Approve(r) => self.gateways.payment.approve(r),
            Request::RefundPayment(r) => self.gateways.payment.refund(r),
            Request::Pay(r) => self.gateways.charge.pay(r),
            Request::RefundCharge(r) => self.gateways.charge.refund(r),
        };
        // A gateway that panics may have acted first: an answer that
        // cannot be read, asked again under the same key.
        super::caught(call)
            .unwrap_or_else(|said| GatewayOutcome::Unavailable { reason: format!("the gateway panicked: {said}") })
    }
}

impl Request {
    /// The call's name in logs.
    fn describe(&self) -> &'static str {
        match self {
            Request::Approve(_) => "approve",
            Request::Pay(_) => "pay",
            Request::RefundPayment(_) | Request::RefundCharge(_) => "refund",
        }
    }
}

fn refund_request(order_id: OrderId, attempt: &Attempt, gateway_ref: &Option<String>, amount: i64) -> RefundRequest {
    RefundRequest {
        idempotency_key: attempt.idempotency_key.clone(),
        order_id,
        gateway_ref: gateway_ref.clone().unwrap_or_default(),
        amount,
        reason: format!("order {order_id} was cancelled or rejected"),
    }
}

/// Makes one gateway call and logs it with its duration and outcome
/// (`-v` on the command line shows these lines). The clock is read only
/// when the line is written: two readings per call were 1 % of an
/// in-memory lifecycle's time.
fn timed(gateway: &str, call: &str, order: OrderId, make: impl FnOnce() -> GatewayOutcome) -> GatewayOutcome {
    // Asked as an event, as the line below is: a filter on events alone
    // would otherwise hear no and lose the line.
    if !tracing::event_enabled!(tracing::Level::INFO) {
        return make();
    }
    let started = Instant::now();
    let outcome = make();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (result, reason) = match &outcome {
        GatewayOutcome::Approved { .. } => ("approved", ""),
        GatewayOutcome::Declined { reason } => ("declined", reason.as_str()),
        GatewayOutcome::Unavailable { reason } => ("unknown", reason.as_str()),
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
