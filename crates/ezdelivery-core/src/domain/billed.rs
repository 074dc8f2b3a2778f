//! What a [`Payment`](super::Payment) and a delivery [`Charge`](super::Charge)
//! have in common: money taken through a gateway under one [`Attempt`], and
//! maybe given back under another. Their moves are the same; only their
//! transition tables, their words and their events differ. So each record
//! keeps its own `next` table ([`BillingStatus::next`]) and its own events
//! ([`Billed::event`]), and every move is written once, here, over them.

use chrono::{DateTime, Utc};

use super::attempt::Attempt;
use super::event::Event;
use super::ids::OrderId;
use super::refusal::Refusal;
use super::refusal::{Billing, Standing};

/// What can happen to a payment or a delivery charge. Each record's `next`
/// table says which of these moves it allows from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingAction {
    /// The gateway took the money: a payment approved, a charge paid to the rider.
    Take,
    /// The gateway declined to take it (a card refused; payments only).
    Decline,
    /// Dropped before it was taken (the order was cancelled, the delivery
    /// moved, another card replaced it).
    Void,
    /// To be given back after it was taken.
    RequestRefund,
    /// The gateway confirmed it was given back.
    ConfirmRefund,
    /// Its gateway's answers stayed unreadable too many times.
    GiveUp,
    /// A person put it back in the queue, to take it.
    Requeue,
    /// A person put it back in the queue, to give it back.
    RequeueRefund,
}

impl BillingAction {
    /// Every action, for the exhaustive tests of the tables.
    pub const ALL: [BillingAction; 8] = [
        BillingAction::Take,
        BillingAction::Decline,
        BillingAction::Void,
        BillingAction::RequestRefund,
        BillingAction::ConfirmRefund,
        BillingAction::GiveUp,
        BillingAction::Requeue,
        BillingAction::RequeueRefund,
    ];

    /// What a refusal says `what` cannot do (`… it cannot be approved`):
    /// a payment is approved and refunded, a rider's charge paid and taken back.
    fn verb(self, what: Billing) -> &'static str {
        use BillingAction as A;
        match (self, what) {
            (A::Take, Billing::Payment) => "be approved",
            (A::Take, Billing::DeliveryCharge) => "be paid",
            (A::Decline, _) => "be declined",
            (A::Void, _) => "be voided",
            (A::RequestRefund, Billing::Payment) => "be refunded",
            (A::RequestRefund, Billing::DeliveryCharge) => "be taken back",
            (A::ConfirmRefund, Billing::Payment) => "confirm a refund",
            (A::ConfirmRefund, Billing::DeliveryCharge) => "confirm it was taken back",
            (A::GiveUp, _) => "be given up on",
            (A::Requeue | A::RequeueRefund, _) => "be queued again",
        }
    }
}

/// The status of a payment or a delivery charge: its state machine.
pub trait BillingStatus: Copy + Eq + std::fmt::Debug {
    /// Which kind of record it is the status of, for refusals.
    const WHAT: Billing;

    /// The state machine: the status after `action`, or `None` where the
    /// move is not allowed. One line per allowed move.
    fn next(self, action: BillingAction) -> Option<Self>;

    /// Where a record in this status stands, for refusals.
    fn standing(self) -> Standing;
}

/// What happened to a payment or a charge: the record turns it into its own event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    /// The gateway took the money.
    Taken,
    /// Dropped, never taken.
    Voided,
    /// The money taken is to be given back.
    RefundRequested,
    /// The gateway gave it back.
    Refunded,
    /// Parked for a person, for this reason.
    NeedsAttention(String),
    /// Put back in the queue by a person.
    Requeued,
}

/// The parts of a record every move reads or writes: its order (read only),
/// status, attempt, gateway reference and time of its last change.
pub type Parts<'a, S> = (OrderId, &'a mut S, &'a mut Attempt, &'a mut Option<String>, &'a mut DateTime<Utc>);

/// A payment or a delivery charge. A record says where its parts are and
/// what its events are; the moves, written once, are the provided methods.
pub trait Billed: Clone {
    /// Its status, whose table is its state machine.
    type Status: BillingStatus;

    /// Its parts, to read and change them (see [`Parts`]).
    fn parts(&mut self) -> Parts<'_, Self::Status>;

    /// Its event for what `happened` to it, as it stands afterwards.
    fn event(&self, happened: Happened) -> Event;

    /// The record after `action` at `now`, or the refusal that says where
    /// it stands and what it cannot do.
    ///
    /// The money is taken once: a record that holds the gateway's reference
    /// refuses to be taken or declined whatever its status. A record in
    /// `needs_attention` over its refund did take it; a late answer to its
    /// first call (whose key was replayed and recorded meanwhile) is no news,
    /// and taking it again sent a second refund under a new key.
    fn to(&self, action: BillingAction, now: DateTime<Utc>) -> Result<Self, Refusal> {
        let mut moved = self.clone();
        let (order, status, _, reference, updated_at) = moved.parts();
        let taken_already = matches!(action, BillingAction::Take | BillingAction::Decline) && reference.is_some();
        let Some(next) = status.next(action).filter(|_| !taken_already) else {
            let (standing, action) = (status.standing(), action.verb(Self::Status::WHAT));
            return Err(Refusal::Transition { order, standing, action });
        };
        *status = next;
        *updated_at = now;
        Ok(moved)
    }

    /// The gateway took the money under its id `gateway_ref`. If its order
    /// no longer wants it (`wanted` false: cancelled, paid by another
    /// attempt, the delivery moved), or it was voided before the answer
    /// came, the money goes straight back: the refund is requested in the
    /// same move, and its event follows the taking's.
    fn take(&self, gateway_ref: &str, wanted: bool, now: DateTime<Utc>) -> Result<(Self, Vec<Event>), Refusal> {
        let mut taken = self.to(BillingAction::Take, now)?;
        let (_, status, attempt, reference, _) = taken.parts();
        *reference = Some(gateway_ref.to_string());
        // Taken from `voided`, the table already sent it to `refund_pending`.
        let kept = status.next(BillingAction::RequestRefund).is_some();
        *attempt = if kept { attempt.answered() } else { attempt.refund() };
        let mut events = vec![taken.event(Happened::Taken)];
        if !kept {
            events.push(taken.event(Happened::RefundRequested));
        } else if !wanted {
            let (refunding, event) = taken.request_refund(now)?;
            taken = refunding;
            events.push(event);
        }
        Ok((taken, events))
    }

    /// Drops a record whose money was never taken.
    fn void(&self, now: DateTime<Utc>) -> Result<(Self, Event), Refusal> {
        step(self, BillingAction::Void, now, Happened::Voided, |a| Attempt { next_at: None, ..a.clone() })
    }

    /// The money taken is to be given back, under a new key.
    fn request_refund(&self, now: DateTime<Utc>) -> Result<(Self, Event), Refusal> {
        step(self, BillingAction::RequestRefund, now, Happened::RefundRequested, Attempt::refund)
    }

    /// The gateway confirmed the money was given back.
    fn confirm_refund(&self, now: DateTime<Utc>) -> Result<(Self, Event), Refusal> {
        step(self, BillingAction::ConfirmRefund, now, Happened::Refunded, Attempt::answered)
    }

    /// Stops this record from moving money for an order that no longer
    /// wants it: money taken is to be given back, a call that never reached
    /// the gateway is voided, a finished record is left alone. A pending
    /// one the gateway may have acted on stays pending, due now unless a
    /// call is under way: its key is replayed, and what it took goes back.
    fn withdraw(&self, now: DateTime<Utc>) -> Result<(Self, Option<Event>), Refusal> {
        let mut kept = self.clone();
        let (_, &mut status, attempt, _, updated_at) = kept.parts();
        if status.next(BillingAction::Void).is_some() && attempt.in_doubt() {
            *attempt = attempt.replay_now(now);
            *updated_at = now;
            Ok((kept, None))
        } else if status.next(BillingAction::Void).is_some() {
            self.void(now).map(|(voided, e)| (voided, Some(e)))
        } else if status.next(BillingAction::RequestRefund).is_some() {
            self.request_refund(now).map(|(refunding, e)| (refunding, Some(e)))
        } else {
            Ok((self.clone(), None))
        }
    }

    /// Its gateway is back (a person reset its breaker): a retry waiting
    /// out its back-off is due now, under the same key. `None` when nothing
    /// changes: it is due already, or a call is under way (left to finish).
    fn due_now(&self, now: DateTime<Utc>) -> Option<Self> {
        let mut due = self.clone();
        let (_, _, attempt, _, _) = due.parts();
        if attempt.due(now) || !attempt.claimable(now) {
            return None;
        }
        *attempt = attempt.replay_now(now);
        Some(due)
    }

    /// Its gateway's answers stayed unreadable `attempt.unsettled` times:
    /// it is parked for a person, with `attempt` as the last try left it.
    fn give_up(&self, attempt: Attempt, now: DateTime<Utc>) -> Result<(Self, Event), Refusal> {
        let reason = attempt.last_error.clone().unwrap_or_default();
        step(self, BillingAction::GiveUp, now, Happened::NeedsAttention(reason), |_| attempt)
    }

    /// A person put it back in the queue: the call it was making (the
    /// taking, or the refund once the gateway gave a reference) is due now
    /// under the same key.
    fn requeue(&self, now: DateTime<Utc>) -> Result<(Self, Event), Refusal> {
        let refund = self.clone().parts().3.is_some();
        let action = if refund { BillingAction::RequeueRefund } else { BillingAction::Requeue };
        step(self, action, now, Happened::Requeued, |a| a.requeued(now))
    }
}

/// `action` on `record` at `now`, its attempt replaced by what `attempt`
/// makes of it, and the event of what `happened`.
fn step<B: Billed>(
    record: &B,
    action: BillingAction,
    now: DateTime<Utc>,
    happened: Happened,
    attempt: impl FnOnce(&Attempt) -> Attempt,
) -> Result<(B, Event), Refusal> {
    let mut moved = record.to(action, now)?;
    let (_, _, current, _, _) = moved.parts();
    *current = attempt(current);
    let event = moved.event(happened);
    Ok((moved, event))
}
