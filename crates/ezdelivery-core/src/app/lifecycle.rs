//! Order commands: from placing an order to its review.
//!
//! Each command checks everything it can before writing, so a refused
//! command writes nothing. Gateway calls (payment, delivery charge,
//! refunds) are made by the saga (`saga.rs`) between transactions.

use crate::app::catalogue::{existing_store, find_menu, find_rider};
use crate::app::command::Command;
use crate::app::engine::{Engine, NewOrder, Work};
use crate::app::saga::{claim, Claimed, Claiming, DueCalls, Leg, Settled};
use crate::domain::kitchen::KitchenAction;
use crate::domain::order::OrderAction;
use crate::domain::payment::mask_card;
use crate::domain::view::OrderView;
use crate::domain::{
    push_int, Billed, Billing, Charge, ChargeStatus, Delivery, KitchenTicket, Order, OrderId, OrderStatus, Payment,
    PaymentStatus, Refusal, Review, RiderId, Won,
};
use crate::ports::storage::Table;
use crate::{Error, Kept, Result};

impl Engine {
    /// Places an order (`ezdelivery order`); with [`NewOrder::pay_now`],
    /// pays it at once with its card (masked before it is stored or sent).
    ///
    /// Not paid now, the order stays `pending_payment`. Paid now, a
    /// declined card is [`Error::Declined`] and a gateway that cannot be
    /// reached or read [`Error::Unavailable`]; either way the order is kept,
    /// and the error names it ([`Error::order`]).
    pub fn place_order(&self, new: NewOrder<'_>) -> Result<OrderView> {
        let NewOrder { store, customer, items, address, pay } = new;
        let address = address.unwrap_or_default();
        // Ids and counts only: names, addresses and cards are personal and
        // stay out of the log (README, "The security model").
        let _span = tracing::info_span!("place_order", store, items = items.len(), pay = pay.is_some()).entered();
        let card = pay.and_then(|p| p.card).map(mask_card).transpose()?;
        self.command(|command| {
            let (order, payment) = command.write(|w| {
                let store = existing_store(w.repo, store)?;
                let mut picks = Vec::with_capacity(items.len());
                for item in items {
                    picks.push((find_menu(w.repo, store.id, &item.menu)?, item.qty));
                }
                let (order, event) =
                    Order::place(w.repo.next_id(Table::Order)?, &store, &picks, customer, address, w.now)?;
                w.repo.insert_order(&order)?;
                w.emit(event)?;
                if pay.is_none() {
                    return Ok((order.id, None));
                }
                let payment = new_payment(w, &order, card.clone())?;
                Ok((order.id, Some(claim_new(w, &payment)?)))
            })?;
            if let Some(payment) = payment {
                settle_payment(command, order, payment)?;
            }
            command.view(order)
        })
    }

    /// Pays a `pending_payment` order (`ezdelivery pay`). A payment still
    /// waiting for the gateway is retried under its own idempotency key
    /// rather than started anew, so the customer is never charged twice: a
    /// payment the gateway may have acted on is never replaced by another
    /// card ([`Refusal::PaymentInDoubt`]); only one that certainly never
    /// reached the gateway gives way to a new one with another `card`.
    ///
    /// `Ok` is the order as it stands once the payment is settled, which
    /// is `paid` unless someone else moved it meanwhile: cancelled while
    /// the gateway approved (the approval is then refunded), for one. Look
    /// at its `status`, not only at `Ok`. The same holds for
    /// [`Engine::place_order`] with [`NewOrder::pay_now`].
    pub fn pay(&self, order: OrderId, card: Option<&str>) -> Result<OrderView> {
        let _span = tracing::info_span!("pay", order).entered();
        let card = card.map(mask_card).transpose()?;
        self.command(|command| {
            let claimed = command.write(|w| {
                let found = existing_order(w, order)?;
                found.allows(OrderAction::Pay)?;
                let payment = match w.repo.latest_payment(order)? {
                    Some(p) if p.status == PaymentStatus::NeedsAttention => {
                        return Err(Refusal::NeedsAttention { order, what: Billing::Payment }.into())
                    }
                    Some(p) if p.status == PaymentStatus::Pending => {
                        let same_card = card.is_none() || card == p.card;
                        if p.attempt.in_doubt() && !same_card {
                            return Err(Refusal::PaymentInDoubt { order, card: p.card_tail() }.into());
                        }
                        if same_card {
                            p
                        } else {
                            // Queued, never reached the gateway, and another card
                            // is given now: that attempt is dropped for a new one.
                            let (voided, event) = Billed::void(&p, w.now)?;
                            w.repo.save_payment(&voided)?;
                            w.emit(event)?;
                            new_payment(w, &found, card.clone())?
                        }
                    }
                    _ => new_payment(w, &found, card.clone())?,
                };
                claim_new(w, &payment)
            })?;
            settle_payment(command, order, claimed)?;
            command.view(order)
        })
    }

    /// The owner accepts the order and starts cooking (`ezdelivery cook start`).
    /// A delivery is prepared with the least busy rider, whose delivery
    /// charge is then paid; with no rider registered the delivery waits.
    pub fn start_cooking(&self, order: OrderId) -> Result<OrderView> {
        let _span = tracing::info_span!("start_cooking", order).entered();
        self.command(|command| {
            let charge = command.write(|w| {
                let found = existing_order(w, order)?;
                let store_id = found.store_id;
                let cooking = found.into_transition(OrderAction::StartCooking, w.now)?;
                let ticket = existing_ticket(w, order)?;
                let (ticket, event) = ticket.handle(KitchenAction::Start, "", w.now)?;
                let amount = existing_store(w.repo, store_id)?.delivery_charge;
                let rider = w.repo.least_busy_rider()?;
                let charge = match &rider {
                    Some(r) => Some(new_charge(w, order, r.id, amount)?),
                    None => None,
                };
                let charge_id = charge.as_ref().map(|c| c.id);
                let (delivery, prepared) = Delivery::prepare(order, rider.as_ref(), charge_id, amount, w.now);
                w.repo.update_order(&cooking)?;
                w.repo.save_ticket(&ticket)?;
                w.repo.save_delivery(&delivery)?;
                w.emit_opt(event)?;
                w.emit(prepared)?;
                charge.map(|c| claim_new(w, &c)).transpose()
            })?;
            if let Some(charge) = charge {
                // Cooking has started whatever the charge service says: an
                // unpaid charge is retried by `relay` and by `deliver start`.
                // So is one whose answer could not be recorded (the database
                // gone meanwhile): failing the command said cooking had not
                // started. Only money taken and not recorded is told.
                match command.settle(charge) {
                    Ok(Settled::Done) => command.settle_order(order)?,
                    Ok(_) => {}
                    Err(e @ Error::MoneyMoved { .. }) => return Err(e),
                    Err(e) => tracing::warn!(order, error = %e, "the rider's charge stays queued for relay"),
                }
            }
            command.view(order)
        })
    }

    /// The food is cooked (`ezdelivery cook finish`).
    pub fn finish_cooking(&self, order: OrderId) -> Result<OrderView> {
        let _span = tracing::info_span!("finish_cooking", order).entered();
        self.order_command(order, |w| {
            let cooked = existing_order(w, order)?.into_transition(OrderAction::FinishCooking, w.now)?;
            let (ticket, event) = existing_ticket(w, order)?.handle(KitchenAction::Finish, "", w.now)?;
            w.repo.update_order(&cooked)?;
            w.repo.save_ticket(&ticket)?;
            w.emit_opt(event)
        })
    }

    /// The owner rejects a paid order; the payment is refunded (`ezdelivery cook reject`).
    pub fn reject(&self, order: OrderId, reason: &str) -> Result<OrderView> {
        let _span = tracing::info_span!("reject", order).entered();
        let reason = crate::domain::validate::text("reason", reason)?;
        self.command(|command| {
            let due = command.write(|w| {
                let rejected = existing_order(w, order)?.into_transition(OrderAction::Reject, w.now)?;
                let (ticket, event) = existing_ticket(w, order)?.handle(KitchenAction::Reject, &reason, w.now)?;
                w.repo.update_order(&rejected)?;
                w.repo.save_ticket(&ticket)?;
                w.emit_opt(event)?;
                withdraw_payment(w, order)?;
                DueCalls::of(w.repo, order, w.now)
            })?;
            command.settle_after(order, due);
            command.view(order)
        })
    }

    /// The rider departs (`ezdelivery deliver start`): only with the food
    /// cooked and the rider's delivery charge paid. Naming another rider
    /// moves the delivery and its charge to that rider (the first rider's
    /// charge is taken back). An unpaid charge is paid (or retried) first.
    pub fn start_delivery(&self, order: OrderId, rider: Option<&str>) -> Result<OrderView> {
        let _span = tracing::info_span!("start_delivery", order, named = rider.is_some()).entered();
        // a name no rider can have is invalid input, whatever the order's state
        let rider = rider.map(|r| crate::domain::validate::name("rider", r)).transpose()?;
        let rider = rider.as_deref();
        self.command(|command| {
            let (pending, due) = command.write(|w| {
                let found = existing_order(w, order)?;
                if found.status == OrderStatus::Cooking {
                    let kitchen = existing_ticket(w, order)?.status;
                    return Err(Refusal::FoodNotCooked { order, kitchen }.into());
                }
                found.allows(OrderAction::Depart)?;
                let mut delivery = existing_delivery(w, order)?;
                let named = rider.map(|r| find_rider(w.repo, r)).transpose()?;
                let mut charges = w.repo.charges(order)?;
                if let Some(current) = delivery.rider_id.and_then(|r| live_charge(&charges, r)) {
                    // Nothing moves while another process pays the current rider.
                    let held = current.attempt.claim.as_ref().filter(|_| !current.attempt.claimable(w.now));
                    if let Some(held) = held.filter(|_| named.as_ref().is_some_and(|r| Some(r.id) != delivery.rider_id))
                    {
                        return Err(busy(order, Billing::DeliveryCharge, held.until));
                    }
                }
                if let Some(r) = named.filter(|r| delivery.rider_id != Some(r.id)) {
                    let charge = new_charge(w, order, r.id, delivery.charge)?;
                    let (moved, event) = delivery.assign(&r, charge.id, w.now)?;
                    for old in &charges {
                        let (old, voided) = old.withdraw(w.now)?;
                        w.repo.save_charge(&old)?;
                        w.emit_opt(voided)?;
                    }
                    w.repo.save_charge(&charge)?;
                    w.repo.save_delivery(&moved)?;
                    w.emit(event)?;
                    delivery = moved;
                    charges = w.repo.charges(order)?;
                }
                let Some(rider_id) = delivery.rider_id else {
                    return Err(Refusal::NoRider { order }.into());
                };
                let pending = match live_charge(&charges, rider_id) {
                    Some(c) if c.status == ChargeStatus::Paid => depart(w, &found, &delivery, c).map(|()| None),
                    Some(c) if c.status == ChargeStatus::NeedsAttention => {
                        Err(Refusal::NeedsAttention { order, what: Billing::DeliveryCharge }.into())
                    }
                    Some(c) => match claim(w, c, false)? {
                        Claiming::Claimed(claimed) => Ok(Some(claimed)),
                        Claiming::Busy(until) => Err(busy(order, Billing::DeliveryCharge, until)),
                        Claiming::Elsewhere(gateway) => Err(elsewhere::<Charge>(w, order, &gateway)),
                        Claiming::Nothing => Err(Refusal::ChargeNotPaid { order, charge: Some(c.status) }.into()),
                    },
                    None => {
                        let charge = new_charge(w, order, rider_id, delivery.charge)?;
                        claim_new(w, &charge).map(Some)
                    }
                }?;
                Ok((pending, DueCalls::of(w.repo, order, w.now)?))
            })?;
            // Take back the first rider's charge if the delivery moved.
            let called = command.settle_due(order, due)?;
            if let Some(mut charge) = pending {
                if called {
                    // Calls were due: those made may have moved the breaker since the claim read it.
                    charge.read_breaker_again(command)?;
                }
                match command.settle(charge)? {
                    Settled::Unavailable { reason, breaker_open } => {
                        let kept = Kept::Charge;
                        return Err(Error::Unavailable { order, kept, reason, breaker_open });
                    }
                    Settled::Attention(reason) => {
                        let kept = Kept::Charge;
                        return Err(Error::Unavailable { order, kept, reason, breaker_open: false });
                    }
                    _ => {}
                }
                command.write(|w| {
                    let found = existing_order(w, order)?;
                    let delivery = existing_delivery(w, order)?;
                    let charge =
                        w.repo.charges(order)?.into_iter().rev().find(|c| Some(c.rider_id) == delivery.rider_id);
                    match charge {
                        Some(c) if c.status == ChargeStatus::Paid => depart(w, &found, &delivery, &c),
                        other => Err(Refusal::ChargeNotPaid { order, charge: other.map(|c| c.status) }.into()),
                    }
                })?;
            }
            command.view(order)
        })
    }

    /// The rider handed the food over (`ezdelivery deliver complete`).
    pub fn complete_delivery(&self, order: OrderId) -> Result<OrderView> {
        let _span = tracing::info_span!("complete_delivery", order).entered();
        self.order_command(order, |w| {
            let delivered = existing_order(w, order)?.into_transition(OrderAction::Complete, w.now)?;
            let (delivery, event) = existing_delivery(w, order)?.complete(w.now)?;
            w.repo.update_order(&delivered)?;
            w.repo.save_delivery(&delivery)?;
            w.emit(event)
        })
    }

    /// Cancels an order before departure (`ezdelivery cancel`): refunds the
    /// payment, cancels the kitchen ticket and the delivery, and takes back
    /// a paid delivery charge. After departure it is refused.
    pub fn cancel(&self, order: OrderId, reason: &str) -> Result<OrderView> {
        let _span = tracing::info_span!("cancel", order).entered();
        self.command(|command| {
            let due = command.write(|w| {
                let (cancelled, event) = existing_order(w, order)?.cancel(reason, w.now)?;
                w.repo.update_order(&cancelled)?;
                w.emit(event)?;
                withdraw_payment(w, order)?;
                if let Some(ticket) = w.repo.ticket(order)? {
                    let (ticket, event) = ticket.handle(KitchenAction::Cancel, reason, w.now)?;
                    w.repo.save_ticket(&ticket)?;
                    w.emit_opt(event)?;
                }
                if let Some(delivery) = w.repo.delivery(order)? {
                    let (delivery, event) = delivery.cancel(w.now)?;
                    w.repo.save_delivery(&delivery)?;
                    w.emit(event)?;
                }
                for charge in w.repo.charges(order)? {
                    let (charge, event) = charge.withdraw(w.now)?;
                    w.repo.save_charge(&charge)?;
                    w.emit_opt(event)?;
                }
                DueCalls::of(w.repo, order, w.now)
            })?;
            command.settle_after(order, due);
            command.view(order)
        })
    }

    /// Reviews a delivered order, once (`ezdelivery review`); the store's
    /// review count and average follow.
    pub fn review(&self, order: OrderId, score: u8, text: &str) -> Result<Review> {
        let _span = tracing::info_span!("review", order, score).entered();
        self.write_command(|w| {
            let found = existing_order(w, order)?;
            let (reviewed, review, event) = Review::write(&found, score, text, w.now)?;
            w.repo.update_order(&reviewed)?;
            w.repo.save_review(&review)?;
            w.repo.add_store_review(found.store_id, review.score)?;
            w.emit(event)?;
            Ok(review)
        })
    }
}

/// Settles a payment a command just claimed: `Declined` and
/// `Unavailable` become the errors of the same names (the order is kept
/// either way); an approval nobody wants any more is refunded at once.
fn settle_payment(command: &mut Command<'_>, order: OrderId, payment: Claimed<Payment>) -> Result<()> {
    match command.settle(payment)? {
        Settled::Declined(reason) => Err(Error::Declined { order, reason }),
        Settled::Unavailable { reason, breaker_open } => {
            Err(Error::Unavailable { order, kept: Kept::Payment, reason, breaker_open })
        }
        Settled::Attention(reason) => {
            Err(Error::Unavailable { order, kept: Kept::PaymentNeedsAttention, reason, breaker_open: false })
        }
        Settled::Established => Ok(()),
        Settled::Done | Settled::Nothing => command.settle_order(order),
    }
}

/// Order `id`, locked for the rest of the unit of work.
fn existing_order(w: &mut Work<'_>, id: OrderId) -> Result<Order> {
    w.lock_order(id)?;
    w.repo.order(id)?.ok_or_else(|| Error::not_found(crate::Record::Order, id))
}

fn existing_ticket(w: &mut Work<'_>, order: OrderId) -> Result<KitchenTicket> {
    w.repo.ticket(order)?.ok_or_else(|| Error::Internal(format!("order {order} is paid but has no kitchen ticket")))
}

fn existing_delivery(w: &mut Work<'_>, order: OrderId) -> Result<Delivery> {
    w.repo.delivery(order)?.ok_or_else(|| Error::Internal(format!("order {order} is cooked but has no delivery")))
}

/// Claims a payment or charge this unit of work wrote or read; only this
/// unit of work's actor may be calling for it (a live claim of another is
/// refused, so no command waits on another's gateway call).
fn claim_new<L: Leg>(w: &mut Work<'_>, leg: &L) -> Result<Claimed<L>> {
    match claim(w, leg, false)? {
        Claiming::Claimed(claimed) => Ok(claimed),
        Claiming::Busy(until) => Err(busy(leg.order_id(), L::WHAT, until)),
        Claiming::Elsewhere(gateway) => Err(elsewhere::<L>(w, leg.order_id(), &gateway)),
        Claiming::Nothing => {
            Err(Error::Internal(format!("the {} of order {} needs no gateway call", L::WHAT, leg.order_id())))
        }
    }
}

/// The `L` of `order` went to `gateway`, not to this engine's.
fn elsewhere<L: Leg>(w: &Work<'_>, order: OrderId, gateway: &str) -> Error {
    let ours = L::gateway(w.gateways).to_string();
    Refusal::OtherGateway { order, what: L::WHAT, gateway: gateway.to_string(), ours }.into()
}

/// Another process is calling the gateway for `what` of `order`, its claim
/// lasting until `until`.
fn busy(order: OrderId, what: Billing, until: chrono::DateTime<chrono::Utc>) -> Error {
    Refusal::GatewayBusy { order, what, until }.into()
}

/// A new pending payment of `order` (not yet saved: [`claim_new`], which
/// every caller runs next in the same unit of work, saves it claimed).
fn new_payment(w: &mut Work<'_>, order: &Order, card: Option<String>) -> Result<Payment> {
    let id = w.repo.next_id(Table::Payment)?;
    Ok(Payment::request(id, order.id, order.total, card, idempotency_key("pay", id, w.nonces.next()), w.now))
}

/// Rider `rider`'s charge among an order's `charges`: the latest that is
/// paid or may still be paid.
fn live_charge(charges: &[Charge], rider: RiderId) -> Option<&Charge> {
    charges.iter().rev().find(|c| {
        c.rider_id == rider
            && matches!(c.status, ChargeStatus::Pending | ChargeStatus::Paid | ChargeStatus::NeedsAttention)
    })
}

/// A new pending delivery charge (not yet saved).
fn new_charge(w: &mut Work<'_>, order: OrderId, rider: RiderId, amount: Won) -> Result<Charge> {
    let id = w.repo.next_id(Table::Charge)?;
    Ok(Charge::request(id, order, rider, amount, idempotency_key("charge", id, w.nonces.next()), w.now))
}

/// An idempotency key unique across databases, since one gateway may serve
/// several: the record's id (for people reading gateway logs) and a random
/// part, `nonce` as 16 hexadecimal digits.
fn idempotency_key(kind: &str, id: i64, nonce: u64) -> String {
    // Written piece by piece (`format!` cost more than the rest of
    // choosing the key): "ezd-", the kind, "-", at most 20 characters of
    // id, "-", 16 digits.
    let mut key = String::with_capacity(42 + kind.len());
    key.push_str("ezd-");
    key.push_str(kind);
    key.push('-');
    push_int(&mut key, id);
    key.push('-');
    for shift in (0..16).rev() {
        key.push(char::from(b"0123456789abcdef"[((nonce >> (shift * 4)) & 0xf) as usize]));
    }
    key
}

/// The payment of a cancelled or rejected order: refund it if approved,
/// void it if it never got through.
fn withdraw_payment(w: &mut Work<'_>, order: OrderId) -> Result<()> {
    if let Some(payment) = w.repo.latest_payment(order)? {
        let (payment, event) = payment.withdraw(w.now)?;
        w.repo.save_payment(&payment)?;
        w.emit_opt(event)?;
    }
    Ok(())
}

/// The departure itself, once every condition is checked by the domain.
fn depart(w: &mut Work<'_>, order: &Order, delivery: &Delivery, charge: &Charge) -> Result<()> {
    let rider = match delivery.rider_id {
        Some(id) => w.repo.rider(id)?,
        None => None,
    };
    let kitchen = existing_ticket(w, order.id)?.status;
    let (departed, event) = delivery.depart(rider.as_ref(), kitchen, Some(charge), w.now)?;
    let delivering = order.transition(OrderAction::Depart, w.now)?;
    w.repo.update_order(&delivering)?;
    w.repo.save_delivery(&departed)?;
    w.emit(event)
}

#[cfg(test)]
mod tests {
    use super::idempotency_key;

    #[test]
    fn an_idempotency_key_is_kind_id_and_sixteen_hex_digits() {
        for (kind, id, nonce) in
            [("pay", 1, 0), ("charge", 42, 0xdead_beef), ("pay", i64::MAX, u64::MAX), ("pay", -1, 1 << 60)]
        {
            assert_eq!(idempotency_key(kind, id, nonce), format!("ezd-{kind}-{id}-{nonce:016x}"));
        }
        assert_eq!(idempotency_key("pay", 7, 0xab), "ezd-pay-7-00000000000000ab");
    }
}
