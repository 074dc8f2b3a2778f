//! The invariants every database must keep, checked over the storage
//! (`Engine::check_invariants`, run at the end of `simulate`):
//!
//! - no order is `delivering` or `delivered` without a cooked kitchen
//!   ticket and a paid delivery charge for its rider;
//! - no order is established (`paid` … `delivered`) without an approved
//!   payment;
//! - every cancelled or rejected order whose payment was approved has it
//!   refunded or `refund_pending`;
//! - an order's total is the sum of its items, and an approved payment is
//!   for that total;
//! - no payment is approved twice, and an order keeps at most one approved
//!   payment (a second one is given back); a payment the log refunds is
//!   not recorded as approved;
//! - a rider is paid once per delivery: an order has at most one paid
//!   delivery charge, none once cancelled or rejected (it is taken back),
//!   and a charge's amount is the one the event that made it set;
//! - the mypage read model equals a rebuild from the event log (recomputed
//!   in memory, compared view by view).

use std::collections::{HashMap, HashSet};

use crate::app::engine::Engine;
use crate::domain::view::OrderView;
use crate::domain::{
    ChargeId, ChargeStatus, Event, KitchenStatus, OrderId, OrderStatus, PaymentId, PaymentStatus, Won,
};
use crate::ports::storage::{Repo, Table};
use crate::Result;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The order it concerns, if one.
    pub order: Option<OrderId>,
    /// Which invariant (a short stable name).
    pub rule: &'static str,
    /// What was found.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.order {
            Some(order) => write!(f, "order {order}: {} ({})", self.detail, self.rule),
            None => write!(f, "{} ({})", self.detail, self.rule),
        }
    }
}

/// How many events the check reads at a time.
const BATCH: usize = 10_000;

/// What the event log says about one order.
#[derive(Default)]
struct Logged {
    /// The view rebuilt from the log.
    view: Option<OrderView>,
    /// Payments approved, in order (a payment twice is a violation).
    approved: Vec<PaymentId>,
    /// Payments refunded.
    refunded: HashSet<PaymentId>,
    /// Delivery charges prepared, with the amount each was for.
    charges: Vec<(ChargeId, Won)>,
}

impl Engine {
    /// Checks every invariant over the whole storage, in one consistent
    /// read, and returns what is broken (empty: all hold).
    pub fn check_invariants(&self) -> Result<Vec<Violation>> {
        self.read(check)
    }
}

/// The check itself, over one snapshot.
pub fn check(repo: &mut dyn Repo) -> Result<Vec<Violation>> {
    let mut violations = Vec::new();
    let mut logged = replay(repo)?;
    let last = repo.next_id(Table::Order)? - 1;
    for id in 1..=last {
        let Some(order) = repo.order(id)? else { continue };
        let mut broken =
            |rule: &'static str, detail: String| violations.push(Violation { order: Some(id), rule, detail });
        let log = logged.remove(&id).unwrap_or_default();

        let sum: i64 = order.items.iter().map(|i| i.unit_price * i64::from(i.qty)).sum();
        if sum != order.total {
            broken("total", format!("total {} is not the sum of its items {sum}", order.total));
        }
        let payment = repo.latest_payment(id)?;
        if let Some(p) = &payment {
            let charged =
                matches!(p.status, PaymentStatus::Approved | PaymentStatus::RefundPending | PaymentStatus::Refunded);
            if charged && p.amount != order.total {
                broken("amount", format!("payment {} is for {}, the order's total is {}", p.id, p.amount, order.total));
            }
        }
        let established = order.status.is_established();
        if established && payment.as_ref().map(|p| p.status) != Some(PaymentStatus::Approved) {
            let status = payment.as_ref().map_or("none", |p| p.status.as_str());
            broken("paid", format!("{} with payment {status}", order.status.as_str()));
        }
        let charges = repo.charges(id)?;
        let withdrawn = matches!(order.status, OrderStatus::Cancelled | OrderStatus::Rejected);
        let paid_charges: Vec<_> = charges.iter().filter(|c| c.status == ChargeStatus::Paid).collect();
        if paid_charges.len() > 1 {
            broken("charged_once", format!("{} delivery charges are paid", paid_charges.len()));
        }
        if let (true, Some(c)) = (withdrawn, paid_charges.first()) {
            broken(
                "charge_taken_back",
                format!("{} but delivery charge {} is paid, not taken back", order.status, c.id),
            );
        }
        for (charge, amount) in &log.charges {
            if let Some(c) = charges.iter().find(|c| c.id == *charge).filter(|c| c.amount != *amount) {
                broken(
                    "charge_amount",
                    format!("delivery charge {} is for {}, its event says {amount}", c.id, c.amount),
                );
            }
        }
        if matches!(order.status, OrderStatus::Delivering | OrderStatus::Delivered) {
            let kitchen = repo.ticket(id)?.map(|t| t.status);
            let delivery = repo.delivery(id)?;
            let rider = delivery.as_ref().and_then(|d| d.rider_id);
            let paid = paid_charges.iter().any(|c| Some(c.rider_id) == rider);
            if kitchen != Some(KitchenStatus::Cooked) || !paid {
                let kitchen = kitchen.map_or("none", |k| k.as_str());
                broken(
                    "departure",
                    format!("{} with kitchen {kitchen} and no paid charge for its rider", order.status),
                );
            }
        }
        // Every approved payment is the order's one kept payment, or given back.
        let mut seen = HashSet::new();
        let mut kept = 0;
        for p in &log.approved {
            if !seen.insert(*p) {
                broken("approved_once", format!("payment {p} was approved twice"));
            }
        }
        for p in seen {
            let latest = payment.as_ref().filter(|l| l.id == p);
            if log.refunded.contains(&p) && latest.is_some_and(|l| l.status == PaymentStatus::Approved) {
                broken("refunded", format!("the log refunds payment {p} but its record says approved"));
            }
            let given_back = log.refunded.contains(&p)
                || latest.is_some_and(|l| matches!(l.status, PaymentStatus::RefundPending | PaymentStatus::Refunded));
            if !given_back {
                kept += 1;
            }
        }
        if withdrawn && kept > 0 {
            broken(
                "refunded",
                format!("{} but an approved payment is neither refunded nor refund_pending", order.status),
            );
        }
        if kept > 1 {
            broken("approved_once", format!("{kept} approved payments are kept"));
        }

        match (repo.view(id)?, log.view) {
            (Some(stored), Some(rebuilt)) if stored != rebuilt => broken(
                "read_model",
                format!("the view differs from a rebuild from the log: {}", first_difference(&stored, &rebuilt)),
            ),
            (Some(_), None) => broken("read_model", "a view exists but the log has no OrderPlaced".into()),
            (None, Some(_)) => broken("read_model", "the log has the order but there is no view".into()),
            _ => {}
        }
    }
    let mut orphans: Vec<OrderId> = logged.into_iter().filter(|(_, l)| l.view.is_some()).map(|(id, _)| id).collect();
    orphans.sort_unstable();
    for id in orphans {
        violations.push(Violation {
            order: Some(id),
            rule: "read_model",
            detail: "events of an order that is not stored".into(),
        });
    }
    Ok(violations)
}

/// Replays the whole log: each order's view, and its payments approved and refunded.
fn replay(repo: &mut dyn Repo) -> Result<HashMap<OrderId, Logged>> {
    let mut logged: HashMap<OrderId, Logged> = HashMap::new();
    let mut after = 0;
    loop {
        let batch = repo.replay(after, BATCH)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for stored in &batch {
            let Some(order) = stored.event.order_id() else { continue };
            let entry = logged.entry(order).or_default();
            match &mut entry.view {
                Some(view) => {
                    view.apply(stored.seq, stored.at, &stored.event);
                }
                None => entry.view = OrderView::start(stored.seq, stored.at, &stored.event),
            }
            match &stored.event {
                Event::PaymentApproved { payment_id, .. } => entry.approved.push(*payment_id),
                Event::PaymentRefunded { payment_id, .. } => {
                    entry.refunded.insert(*payment_id);
                }
                Event::DeliveryPrepared { charge_id: Some(charge), charge: amount, .. }
                | Event::DeliveryRiderAssigned { charge_id: charge, charge: amount, .. } => {
                    entry.charges.push((*charge, *amount));
                }
                _ => {}
            }
        }
        if batch.len() < BATCH {
            break;
        }
    }
    Ok(logged)
}

/// The first field in which two views differ, for the message.
fn first_difference(stored: &OrderView, rebuilt: &OrderView) -> String {
    let (a, b) = (serde_json::to_value(stored).unwrap_or_default(), serde_json::to_value(rebuilt).unwrap_or_default());
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (key, value) in a {
            if b.get(key) != Some(value) {
                return format!("`{key}` is {value} but a rebuild gives {}", b.get(key).cloned().unwrap_or_default());
            }
        }
    }
    "they differ".into()
}
