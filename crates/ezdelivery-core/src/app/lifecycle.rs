//! Order commands: from placing an order to its review.
//!
//! Each command checks everything it can before writing, so a refused
//! command writes nothing. Gateway calls (payment, delivery charge,
//! refunds) are made by the saga (`saga.rs`) between transactions.

use crate::app::catalogue::{existing_store, find_menu, find_rider};
use crate::app::engine::{Engine, ItemPick, Work};
use crate::app::saga::{Settled, Try};
use crate::app::storage::Table;
use crate::app::view::OrderView;
use crate::domain::kitchen::KitchenAction;
use crate::domain::order::OrderAction;
use crate::domain::payment::mask_card;
use crate::domain::{
    Charge, ChargeStatus, Delivery, KitchenTicket, Order, OrderId, OrderStatus, Payment, PaymentStatus, Refusal,
    Review, RiderId, StoreId, Won,
};
use crate::{Error, Result};

impl Engine {
    /// Places an order (`ezdelivery order`); with `pay`, pays it at once
    /// with `card` (masked before it is stored or sent).
    ///
    /// Without `pay` the order stays `pending_payment`. With `pay`, a
    /// declined card is [`Error::Declined`] and an unreachable gateway
    /// [`Error::Unavailable`]; in both cases the order is kept.
    pub fn place_order(
        &mut self,
        store: StoreId,
        customer: &str,
        items: &[ItemPick],
        address: &str,
        pay: bool,
        card: Option<&str>,
    ) -> Result<OrderView> {
        let _span = tracing::info_span!("place_order", store, customer = %customer, items = items.len(), pay).entered();
        let card = card.map(mask_card).transpose()?;
        let (order, payment) = self.write(|w| {
            let store = existing_store(w.repo, store)?;
            let mut picks = Vec::with_capacity(items.len());
            for item in items {
                picks.push((find_menu(w.repo, store.id, &item.menu)?, item.qty));
            }
            let (order, event) = Order::place(w.repo.next_id(Table::Order)?, &store, &picks, customer, address, w.now)?;
            w.repo.insert_order(&order)?;
            w.emit(event)?;
            let payment = if pay { Some(new_payment(w, &order, card.clone())?) } else { None };
            Ok((order.id, payment))
        })?;
        if let Some(payment) = payment {
            let paid = self.settle_payment(payment, Try::Fresh);
            self.failed_command(paid)?;
        }
        self.after_command(order)
    }

    /// Pays a `pending_payment` order (`ezdelivery pay`). A payment still
    /// waiting for the gateway is retried under its own idempotency key
    /// rather than started anew, so the customer is never charged twice;
    /// only a queued payment that certainly never reached the gateway gives
    /// way to a new one with another `card`.
    pub fn pay(&mut self, order: OrderId, card: Option<&str>) -> Result<OrderView> {
        let _span = tracing::info_span!("pay", order).entered();
        let card = card.map(mask_card).transpose()?;
        let payment = self.write(|w| {
            let found = existing_order(w, order)?;
            found.transition(OrderAction::Pay, w.now)?;
            match w.repo.latest_payment(order)? {
                // The gateway may have acted on it: only its own key may be sent again.
                Some(p) if p.status == PaymentStatus::Pending && p.attempt.maybe_processed => Ok((p, Try::Retry)),
                Some(p) if p.status == PaymentStatus::Pending && (card.is_none() || card == p.card) => {
                    Ok((p, Try::Retry))
                }
                Some(p) if p.status == PaymentStatus::Pending => {
                    // Queued, never reached the gateway, and another card is
                    // given now: that attempt is dropped for a new one.
                    let (voided, event) = p.void(w.now)?;
                    w.repo.save_payment(&voided)?;
                    w.emit(event)?;
                    Ok((new_payment(w, &found, card.clone())?, Try::Fresh))
                }
                _ => Ok((new_payment(w, &found, card.clone())?, Try::Fresh)),
            }
        })?;
        let paid = self.settle_payment(payment.0, payment.1);
        self.failed_command(paid)?;
        self.after_command(order)
    }

    /// The owner accepts the order and starts cooking (`ezdelivery cook start`).
    /// A delivery is prepared with the least busy rider, whose delivery
    /// charge is then paid; with no rider registered the delivery waits.
    pub fn start_cooking(&mut self, order: OrderId) -> Result<OrderView> {
        let _span = tracing::info_span!("start_cooking", order).entered();
        let charge = self.write(|w| {
            let found = existing_order(w, order)?;
            let cooking = found.transition(OrderAction::StartCooking, w.now)?;
            let ticket = existing_ticket(w, order)?;
            let (ticket, event) = ticket.handle(KitchenAction::Start, "", w.now)?;
            let amount = existing_store(w.repo, found.store_id)?.delivery_charge;
            let rider = w.repo.least_busy_rider()?;
            let charge = match &rider {
                Some(r) => Some(new_charge(w, order, r.id, amount)?),
                None => None,
            };
            let (delivery, prepared) =
                Delivery::prepare(order, rider.as_ref(), charge.as_ref().map(|c| c.id), amount, w.now);
            w.repo.update_order(&cooking)?;
            w.repo.save_ticket(&ticket)?;
            w.repo.save_delivery(&delivery)?;
            if let Some(c) = &charge {
                w.repo.save_charge(c)?;
            }
            w.emit_opt(event)?;
            w.emit(prepared)?;
            Ok(charge)
        })?;
        if let Some(charge) = charge {
            // Cooking has started whatever the charge service says: an
            // unpaid charge is retried by `relay` and by `deliver start`.
            self.settle_charge(charge, Try::Fresh)?;
        }
        self.after_command(order)
    }

    /// The food is cooked (`ezdelivery cook finish`).
    pub fn finish_cooking(&mut self, order: OrderId) -> Result<OrderView> {
        let _span = tracing::info_span!("finish_cooking", order).entered();
        self.write(|w| {
            let cooked = existing_order(w, order)?.transition(OrderAction::FinishCooking, w.now)?;
            let (ticket, event) = existing_ticket(w, order)?.handle(KitchenAction::Finish, "", w.now)?;
            w.repo.update_order(&cooked)?;
            w.repo.save_ticket(&ticket)?;
            w.emit_opt(event)
        })?;
        self.after_command(order)
    }

    /// The owner rejects a paid order; the payment is refunded (`ezdelivery cook reject`).
    pub fn reject(&mut self, order: OrderId, reason: &str) -> Result<OrderView> {
        let _span = tracing::info_span!("reject", order).entered();
        let reason = crate::domain::validate::text("reason", reason)?;
        self.write(|w| {
            let rejected = existing_order(w, order)?.transition(OrderAction::Reject, w.now)?;
            let (ticket, event) = existing_ticket(w, order)?.handle(KitchenAction::Reject, &reason, w.now)?;
            w.repo.update_order(&rejected)?;
            w.repo.save_ticket(&ticket)?;
            w.emit_opt(event)?;
            withdraw_payment(w, order)
        })?;
        self.settle_refunds(order)?;
        self.after_command(order)
    }

    /// The rider departs (`ezdelivery deliver start`): only with the food
    /// cooked and the rider's delivery charge paid. Naming another rider
    /// moves the delivery and its charge to that rider (the first rider's
    /// charge is taken back). An unpaid charge is paid (or retried) first.
    pub fn start_delivery(&mut self, order: OrderId, rider: Option<&str>) -> Result<OrderView> {
        let _span = tracing::info_span!("start_delivery", order, rider = ?rider).entered();
        let pending =
            self.write(|w| {
                let found = existing_order(w, order)?;
                if found.status == OrderStatus::Cooking {
                    let kitchen = existing_ticket(w, order)?.status.as_str();
                    return Err(Refusal::FoodNotCooked { order, kitchen }.into());
                }
                found.transition(OrderAction::Depart, w.now)?;
                let mut delivery = existing_delivery(w, order)?;
                let named = rider.map(|r| find_rider(w.repo, r)).transpose()?;
                let charges = w.repo.charges(order)?;
                match named {
                    Some(r) if delivery.rider_id != Some(r.id) => {
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
                    }
                    _ => {}
                }
                let Some(rider_id) = delivery.rider_id else {
                    return Err(Refusal::NoRider { order }.into());
                };
                let live =
                    w.repo.charges(order)?.into_iter().rev().find(|c| {
                        c.rider_id == rider_id && matches!(c.status, ChargeStatus::Pending | ChargeStatus::Paid)
                    });
                match live {
                    Some(c) if c.status == ChargeStatus::Paid => depart(w, &found, &delivery, &c).map(|()| None),
                    // Created just now (the delivery moved), or queued earlier.
                    Some(c) if c.created_at == w.now => Ok(Some((c, Try::Fresh))),
                    Some(c) => Ok(Some((c, Try::Retry))),
                    None => {
                        let charge = new_charge(w, order, rider_id, delivery.charge)?;
                        w.repo.save_charge(&charge)?;
                        Ok(Some((charge, Try::Fresh)))
                    }
                }
            })?;
        // Take back the first rider's charge if the delivery moved.
        self.settle_refunds(order)?;
        if let Some((charge, attempt)) = pending {
            if let Settled::Unavailable(reason) = self.settle_charge(charge, attempt)? {
                return self.failed_command(Err(Error::Unavailable(format!(
                    "the delivery-charge service is unavailable ({reason}); order {order} stays cooked and departs \
                     once the rider's charge is paid: `ezdelivery relay` retries it, or run \
                     `ezdelivery deliver start {order}` again later"
                ))));
            }
            self.write(|w| {
                let found = existing_order(w, order)?;
                let delivery = existing_delivery(w, order)?;
                let charge = w.repo.charges(order)?.into_iter().rev().find(|c| Some(c.rider_id) == delivery.rider_id);
                match charge {
                    Some(c) if c.status == ChargeStatus::Paid => depart(w, &found, &delivery, &c),
                    other => {
                        Err(Refusal::ChargeNotPaid { order, charge: other.map_or("none", |c| c.status.as_str()) }
                            .into())
                    }
                }
            })?;
        }
        self.after_command(order)
    }

    /// The rider handed the food over (`ezdelivery deliver complete`).
    pub fn complete_delivery(&mut self, order: OrderId) -> Result<OrderView> {
        let _span = tracing::info_span!("complete_delivery", order).entered();
        self.write(|w| {
            let delivered = existing_order(w, order)?.transition(OrderAction::Complete, w.now)?;
            let (delivery, event) = existing_delivery(w, order)?.complete(w.now)?;
            w.repo.update_order(&delivered)?;
            w.repo.save_delivery(&delivery)?;
            w.emit(event)
        })?;
        self.after_command(order)
    }

    /// Cancels an order before departure (`ezdelivery cancel`): refunds the
    /// payment, cancels the kitchen ticket and the delivery, and takes back
    /// a paid delivery charge. After departure it is refused.
    pub fn cancel(&mut self, order: OrderId, reason: &str) -> Result<OrderView> {
        let _span = tracing::info_span!("cancel", order).entered();
        self.write(|w| {
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
            Ok(())
        })?;
        self.settle_refunds(order)?;
        self.after_command(order)
    }

    /// Reviews a delivered order, once (`ezdelivery review`); the store's
    /// review count and average follow.
    pub fn review(&mut self, order: OrderId, score: u8, text: &str) -> Result<Review> {
        let _span = tracing::info_span!("review", order, score).entered();
        let review = self.write(|w| {
            let found = existing_order(w, order)?;
            let (reviewed, review, event) = Review::write(&found, score, text, w.now)?;
            let store = existing_store(w.repo, found.store_id)?.add_review(review.score);
            w.repo.update_order(&reviewed)?;
            w.repo.save_review(&review)?;
            w.repo.save_store(&store)?;
            w.emit(event)?;
            Ok(review)
        })?;
        self.recent_view = None;
        self.deliver_messages_quietly();
        Ok(review)
    }

    /// Delivers the messages a command queued before it failed (a declined
    /// payment is news too), then returns its result.
    fn failed_command<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.recent_view = None;
            self.deliver_messages_quietly();
        }
        result
    }

    /// Delivers the messages the command queued, then returns the order's view.
    fn after_command(&mut self, order: OrderId) -> Result<OrderView> {
        self.deliver_messages_quietly();
        self.committed_view(order)
    }
}

fn existing_order(w: &mut Work<'_>, id: OrderId) -> Result<Order> {
    w.repo.order(id)?.ok_or_else(|| Error::not_found("order", id))
}

fn existing_ticket(w: &mut Work<'_>, order: OrderId) -> Result<KitchenTicket> {
    w.repo.ticket(order)?.ok_or_else(|| Error::Internal(format!("order {order} is paid but has no kitchen ticket")))
}

fn existing_delivery(w: &mut Work<'_>, order: OrderId) -> Result<Delivery> {
    w.repo.delivery(order)?.ok_or_else(|| Error::Internal(format!("order {order} is cooked but has no delivery")))
}

fn new_payment(w: &mut Work<'_>, order: &Order, card: Option<String>) -> Result<Payment> {
    let id = w.repo.next_id(Table::Payment)?;
    let payment = Payment::request(id, order.id, order.total, card, idempotency_key("pay", id), w.now);
    w.repo.save_payment(&payment)?;
    Ok(payment)
}

/// A new pending delivery charge (not yet saved).
fn new_charge(w: &mut Work<'_>, order: OrderId, rider: RiderId, amount: Won) -> Result<Charge> {
    let id = w.repo.next_id(Table::Charge)?;
    Ok(Charge::request(id, order, rider, amount, idempotency_key("charge", id), w.now))
}

/// An idempotency key unique across databases, since one gateway may serve
/// several: the record's id (for people reading gateway logs) and a random part.
fn idempotency_key(kind: &str, id: i64) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("ezd-{kind}-{id}-{}", &random[..16])
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
