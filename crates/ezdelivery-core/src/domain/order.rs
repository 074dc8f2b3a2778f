//! The order: what a customer picked from one store, and where it stands.
//!
//! ```text
//!                  pay            start cooking        finish          depart           complete
//! pending_payment ─────► paid ──────────────► cooking ───────► cooked ───────► delivering ─────────► delivered
//!       │                 │ │                    │                │
//!       │ cancel          │ └─ reject ─► rejected│ cancel         │ cancel
//!       └─────────────────┴──────────────────────┴────────────────┴──────────► cancelled
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::catalogue::{Menu, Store};
use super::event::{Event, Placed};
use smol_str::SmolStr;

use super::ids::{OrderId, StoreId, Won};
pub use super::item::OrderItem;
use super::refusal::{DomainError, Refusal, Standing};
pub use super::status::OrderStatus;
use super::validate::{self, Invalid};

/// What can be asked of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    /// The payment was approved.
    Pay,
    /// The owner starts cooking.
    StartCooking,
    /// The food is cooked.
    FinishCooking,
    /// The owner rejects the order.
    Reject,
    /// The rider departs.
    Depart,
    /// The rider hands the food over.
    Complete,
    /// The customer cancels.
    Cancel,
}

impl OrderAction {
    fn verb(self) -> &'static str {
        match self {
            OrderAction::Pay => "be paid",
            OrderAction::StartCooking => "start cooking",
            OrderAction::FinishCooking => "finish cooking",
            OrderAction::Reject => "be rejected",
            OrderAction::Depart => "depart",
            OrderAction::Complete => "be delivered",
            OrderAction::Cancel => "be cancelled",
        }
    }
}

impl OrderStatus {
    /// The order's state machine: the status after `action`, or `None` where
    /// the move is not allowed. One line per allowed move.
    pub fn next(self, action: OrderAction) -> Option<OrderStatus> {
        use OrderAction as A;
        use OrderStatus as S;
        match (self, action) {
            (S::PendingPayment, A::Pay) => Some(S::Paid),
            (S::Paid, A::StartCooking) => Some(S::Cooking),
            (S::Paid, A::Reject) => Some(S::Rejected),
            (S::Cooking, A::FinishCooking) => Some(S::Cooked),
            (S::Cooked, A::Depart) => Some(S::Delivering),
            (S::Delivering, A::Complete) => Some(S::Delivered),
            (S::PendingPayment | S::Paid | S::Cooking | S::Cooked, A::Cancel) => Some(S::Cancelled),
            _ => None,
        }
    }

    /// The statuses the store owner's inbox shows: paid, and not yet
    /// finished or stopped. Storage adapters query by this list.
    pub const IN_STORE_INBOX: [OrderStatus; 4] =
        [OrderStatus::Paid, OrderStatus::Cooking, OrderStatus::Cooked, OrderStatus::Delivering];

    /// The statuses of an established order: paid for, whatever came next
    /// (short of a cancel or a rejection).
    pub const ESTABLISHED: [OrderStatus; 5] =
        [OrderStatus::Paid, OrderStatus::Cooking, OrderStatus::Cooked, OrderStatus::Delivering, OrderStatus::Delivered];

    /// True once the order is paid and not yet finished or stopped
    /// ([`OrderStatus::IN_STORE_INBOX`]).
    pub fn in_store_inbox(self) -> bool {
        OrderStatus::IN_STORE_INBOX.contains(&self)
    }

    /// True once the order is paid for and not cancelled or rejected
    /// ([`OrderStatus::ESTABLISHED`]).
    pub fn is_established(self) -> bool {
        OrderStatus::ESTABLISHED.contains(&self)
    }

    /// True when nothing more can happen to the order.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::Rejected)
    }
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Handed out by the storage, from 1: what the commands print and take.
    pub id: OrderId,
    /// The store it was placed with.
    pub store_id: StoreId,
    /// Who ordered: the name the customer's messages go to.
    pub customer: SmolStr,
    /// Where to deliver (empty when none was given).
    pub address: SmolStr,
    /// What was ordered, one line per menu, at its price when ordered.
    /// Shared, never changed, with the order's event and view (see
    /// [`OrderView`](crate::domain::view::OrderView)).
    pub items: Arc<[OrderItem]>,
    /// The sum of `unit_price * qty` over the items.
    pub total: Won,
    /// Its status; [`OrderStatus::next`] says where it may go.
    pub status: OrderStatus,
    /// Whether the customer has reviewed it.
    pub reviewed: bool,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// Places an order of `picks` (menu, quantity) with `store`.
    ///
    /// Refused when the store is closed or a menu is sold out; invalid when
    /// there is no item, a quantity is out of range, or a menu belongs to
    /// another store.
    pub fn place(
        id: OrderId,
        store: &Store,
        picks: &[(Menu, u32)],
        customer: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> Result<(Order, Event), DomainError> {
        let customer = validate::name("customer", customer)?;
        let address = validate::text("address", address)?;
        if picks.is_empty() {
            return Err(Invalid("an order needs at least one item (MENU[:QTY])".into()).into());
        }
        if picks.len() > validate::MAX_ITEMS {
            return Err(Invalid(format!("an order has at most {} items", validate::MAX_ITEMS)).into());
        }
        let mut items: Vec<OrderItem> = Vec::with_capacity(picks.len());
        for (menu, qty) in picks {
            let qty = validate::qty(*qty)?;
            if menu.store_id != store.id {
                return Err(Invalid(format!(
                    "menu {} ({}) belongs to store {}, not store {}",
                    menu.id, menu.name, menu.store_id, store.id
                ))
                .into());
            }
            if !menu.available {
                return Err(Refusal::MenuSoldOut { menu: menu.id, name: String::from(menu.name.as_str()) }.into());
            }
            // Prices are checked when a menu is added, but a shared database
            // may be written by others: one out of range made the total wrap
            // round (-2원, approved as such) in a build without overflow
            // checks. In range, the largest total fits many times over.
            validate::price(menu.price)
                .map_err(|e| Invalid(format!("menu {} ({}) cannot be ordered: its stored {e}", menu.id, menu.name)))?;
            // The same menu picked twice is one line with the quantities added.
            match items.iter_mut().find(|i| i.menu_id == menu.id) {
                Some(line) => line.qty = validate::qty(line.qty + qty)?,
                None => {
                    items.push(OrderItem { menu_id: menu.id, name: menu.name.clone(), unit_price: menu.price, qty })
                }
            }
        }
        if !store.open {
            return Err(Refusal::StoreClosed { store: store.id }.into());
        }
        let total = items.iter().map(|i| i.unit_price * Won::from(i.qty)).sum();
        let order = Order {
            id,
            store_id: store.id,
            customer: customer.into(),
            address: address.into(),
            items: items.into(),
            total,
            status: OrderStatus::PendingPayment,
            reviewed: false,
            created_at: now,
            updated_at: now,
        };
        let event = Event::OrderPlaced(Box::new(Placed {
            order_id: id,
            store_id: store.id,
            store: store.name.clone(),
            customer: order.customer.clone(),
            address: order.address.clone(),
            items: order.items.clone(),
            total,
        }));
        Ok((order, event))
    }

    /// The order after `action`, or the refusal that explains why not.
    pub fn transition(&self, action: OrderAction, now: DateTime<Utc>) -> Result<Order, Refusal> {
        match self.status.next(action) {
            Some(status) => Ok(Order { status, updated_at: now, ..self.clone() }),
            None => Err(self.refusal(action)),
        }
    }

    /// [`Order::transition`] of an order the caller no longer needs: the
    /// same result, without a copy of the order (its texts and items are
    /// shared either way; this spares their reference counts).
    pub fn into_transition(self, action: OrderAction, now: DateTime<Utc>) -> Result<Order, Refusal> {
        match self.status.next(action) {
            Some(status) => Ok(Order { status, updated_at: now, ..self }),
            None => Err(self.refusal(action)),
        }
    }

    /// Whether `action` may happen to the order now: `Ok` when
    /// [`Order::transition`] would give an order, its refusal otherwise.
    pub fn allows(&self, action: OrderAction) -> Result<(), Refusal> {
        match self.status.next(action) {
            Some(_) => Ok(()),
            None => Err(self.refusal(action)),
        }
    }

    /// Cancels the order; the event says why.
    pub fn cancel(&self, reason: &str, now: DateTime<Utc>) -> Result<(Order, Event), DomainError> {
        let reason = validate::text("reason", reason)?;
        let order = self.transition(OrderAction::Cancel, now)?;
        Ok((order, Event::OrderCancelled { order_id: self.id, reason }))
    }

    /// Records that the customer reviewed the delivered order.
    pub fn review(&self) -> Result<Order, Refusal> {
        if self.status != OrderStatus::Delivered {
            return Err(Refusal::Transition {
                order: self.id,
                standing: Standing::Order(self.status),
                action: "be reviewed: only a delivered order can be",
            });
        }
        if self.reviewed {
            return Err(Refusal::AlreadyReviewed { order: self.id });
        }
        Ok(Order { reviewed: true, ..self.clone() })
    }

    fn refusal(&self, action: OrderAction) -> Refusal {
        use OrderStatus as S;
        let (order, status) = (self.id, self.status);
        match (self.status, action) {
            (S::Delivering | S::Delivered, OrderAction::Cancel) => Refusal::AlreadyDeparted { order, status },
            (
                S::PendingPayment,
                OrderAction::StartCooking
                | OrderAction::Reject
                | OrderAction::FinishCooking
                | OrderAction::Depart
                | OrderAction::Complete,
            ) => Refusal::NotPaid { order, status },
            (S::Paid | S::Cooking | S::Cooked | S::Delivering | S::Delivered, OrderAction::Pay) => {
                Refusal::Transition { order, standing: Standing::Order(status), action: "be paid again" }
            }
            _ => Refusal::Transition { order, standing: Standing::Order(status), action: action.verb() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MenuId;
    use OrderAction as A;
    use OrderStatus as S;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn store(open: bool) -> Store {
        let (s, _) = Store::register(1, "BBQ", None, None).unwrap();
        s.set_open(open).0
    }

    fn menu(id: MenuId, price: Won) -> Menu {
        Menu::add(id, 1, &format!("m{id}"), price).unwrap().0
    }

    fn order_in(status: S) -> Order {
        let (o, _) = Order::place(7, &store(true), &[(menu(1, 1000), 1)], "kim", "", now()).unwrap();
        Order { status, ..o }
    }

    /// Every (status, action) pair: exactly the listed ones are allowed.
    #[test]
    fn transition_table_is_exactly_the_allowed_moves() {
        let allowed = [
            (S::PendingPayment, A::Pay, S::Paid),
            (S::Paid, A::StartCooking, S::Cooking),
            (S::Paid, A::Reject, S::Rejected),
            (S::Cooking, A::FinishCooking, S::Cooked),
            (S::Cooked, A::Depart, S::Delivering),
            (S::Delivering, A::Complete, S::Delivered),
            (S::PendingPayment, A::Cancel, S::Cancelled),
            (S::Paid, A::Cancel, S::Cancelled),
            (S::Cooking, A::Cancel, S::Cancelled),
            (S::Cooked, A::Cancel, S::Cancelled),
        ];
        let actions = [A::Pay, A::StartCooking, A::FinishCooking, A::Reject, A::Depart, A::Complete, A::Cancel];
        for &from in S::ALL {
            for &action in &actions {
                let expected = allowed.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                assert_eq!(from.next(action), expected, "{from} + {action:?}");
                let result = order_in(from).transition(action, now());
                match expected {
                    Some(to) => assert_eq!(result.unwrap().status, to),
                    None => assert!(result.is_err(), "{from} + {action:?} must be refused"),
                }
            }
        }
    }

    #[test]
    fn refusals_explain_themselves() {
        let e = order_in(S::Delivering).transition(A::Cancel, now()).unwrap_err();
        assert_eq!(e.to_string(), "order 7 is already on its way (delivering); it can no longer be cancelled");
        let e = order_in(S::PendingPayment).transition(A::StartCooking, now()).unwrap_err();
        assert!(matches!(e, Refusal::NotPaid { order: 7, .. }));
        let e = order_in(S::Rejected).transition(A::Cancel, now()).unwrap_err();
        assert!(matches!(e, Refusal::Transition { standing: Standing::Order(OrderStatus::Rejected), .. }));
    }

    #[test]
    fn place_sums_items_and_merges_repeats() {
        let picks = [(menu(1, 18_000), 2), (menu(2, 2_000), 1), (menu(1, 18_000), 1)];
        let (o, e) = Order::place(1, &store(true), &picks, "kim", "seoul", now()).unwrap();
        assert_eq!(o.total, 56_000);
        assert_eq!(o.items.len(), 2);
        assert_eq!(o.items[0].qty, 3);
        assert_eq!(o.status, S::PendingPayment);
        assert!(matches!(&e, Event::OrderPlaced(p) if p.total == 56_000));
    }

    #[test]
    fn place_refuses_closed_store_and_sold_out_menu() {
        let picks = [(menu(1, 1000), 1)];
        let err = Order::place(1, &store(false), &picks, "kim", "", now()).unwrap_err();
        assert_eq!(err, DomainError::Refused(Refusal::StoreClosed { store: 1 }));
        let sold = menu(2, 1000).set_available(false).0;
        let err = Order::place(1, &store(true), &[(sold, 1)], "kim", "", now()).unwrap_err();
        assert!(matches!(err, DomainError::Refused(Refusal::MenuSoldOut { menu: 2, .. })));
    }

    #[test]
    fn place_rejects_bad_input() {
        let s = store(true);
        for picks in [vec![], vec![(menu(1, 1000), 0)], vec![(menu(1, 1000), validate::MAX_QTY + 1)]] {
            assert!(matches!(Order::place(1, &s, &picks, "kim", "", now()), Err(DomainError::Invalid(_))));
        }
        let other = Menu { store_id: 2, ..menu(1, 1000) };
        assert!(matches!(Order::place(1, &s, &[(other, 1)], "kim", "", now()), Err(DomainError::Invalid(_))));
        assert!(matches!(Order::place(1, &s, &[(menu(1, 1), 1)], " ", "", now()), Err(DomainError::Invalid(_))));
    }

    /// A price another program stored out of range is refused, not summed:
    /// `i64::MAX` × 2 wrapped round to a total of -2원.
    #[test]
    fn place_refuses_a_stored_price_out_of_range() {
        let s = store(true);
        for price in [Won::MAX, validate::MAX_PRICE + 1, 0, -5] {
            let stored = Menu { price, ..menu(1, 1000) };
            let err = Order::place(1, &s, &[(stored, 2)], "kim", "", now()).unwrap_err();
            assert!(matches!(&err, DomainError::Invalid(m) if m.0.contains("menu 1 (m1) cannot be ordered")), "{err}");
        }
        let most = [(menu(1, validate::MAX_PRICE), validate::MAX_QTY)];
        let (o, _) = Order::place(1, &s, &most, "kim", "", now()).unwrap();
        assert_eq!(o.total, validate::MAX_PRICE * Won::from(validate::MAX_QTY));
    }

    #[test]
    fn review_only_once_after_delivery() {
        assert!(order_in(S::Cooked).review().is_err());
        let reviewed = order_in(S::Delivered).review().unwrap();
        assert!(reviewed.reviewed);
        assert_eq!(reviewed.review().unwrap_err(), Refusal::AlreadyReviewed { order: 7 });
    }

    #[test]
    fn statuses_round_trip_as_strings() {
        for &s in S::ALL {
            assert_eq!(s.as_str().parse::<S>().unwrap(), s);
        }
        assert!("paid ".parse::<S>().is_err());
    }
}
