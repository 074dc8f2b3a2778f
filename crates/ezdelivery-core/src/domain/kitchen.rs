//! The kitchen ticket: the store's side of a paid order.
//!
//! ```text
//! received ──start──► cooking ──finish──► cooked
//!    │ └──reject──► rejected      │            │
//!    └────────── cancel ──────────┴────────────┴──► cancelled
//! ```

use chrono::{DateTime, Utc};

use super::event::Event;
use super::ids::{OrderId, StoreId};
use super::refusal::{Refusal, Standing};
pub use super::status::KitchenStatus;

/// What can happen to a kitchen ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KitchenAction {
    /// The owner accepts and starts cooking.
    Start,
    /// The food is cooked.
    Finish,
    /// The owner rejects the order.
    Reject,
    /// The customer cancels.
    Cancel,
}

impl KitchenStatus {
    /// The kitchen ticket's state machine: one line per allowed move.
    pub fn next(self, action: KitchenAction) -> Option<KitchenStatus> {
        use KitchenAction as A;
        use KitchenStatus as S;
        match (self, action) {
            (S::Received, A::Start) => Some(S::Cooking),
            (S::Cooking, A::Finish) => Some(S::Cooked),
            (S::Received, A::Reject) => Some(S::Rejected),
            (S::Received | S::Cooking | S::Cooked, A::Cancel) => Some(S::Cancelled),
            _ => None,
        }
    }
}

/// The ticket a paid order becomes in the store's kitchen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitchenTicket {
    /// The order (one ticket per order).
    pub order_id: OrderId,
    /// The store cooking it.
    pub store_id: StoreId,
    /// Its status; [`KitchenStatus::next`] says where it may go.
    pub status: KitchenStatus,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl KitchenTicket {
    /// A paid order arrives in the store's inbox.
    pub fn receive(order_id: OrderId, store_id: StoreId, now: DateTime<Utc>) -> KitchenTicket {
        KitchenTicket { order_id, store_id, status: KitchenStatus::Received, updated_at: now }
    }

    /// The ticket after `action` and the event it produced, if any (a cancel
    /// produces none of its own: `OrderCancelled` says it).
    pub fn handle(
        &self,
        action: KitchenAction,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(KitchenTicket, Option<Event>), Refusal> {
        let Some(status) = self.status.next(action) else {
            return Err(Refusal::Transition {
                order: self.order_id,
                standing: Standing::KitchenTicket(self.status),
                action: match action {
                    KitchenAction::Start => "start cooking",
                    KitchenAction::Finish => "finish cooking (cooking has not started)",
                    KitchenAction::Reject => "be rejected once cooking has started",
                    KitchenAction::Cancel => "be cancelled",
                },
            });
        };
        let order_id = self.order_id;
        let event = match action {
            KitchenAction::Start => Some(Event::CookingStarted { order_id }),
            KitchenAction::Finish => Some(Event::FoodCooked { order_id }),
            KitchenAction::Reject => Some(Event::OrderRejected { order_id, reason: reason.to_string() }),
            KitchenAction::Cancel => None,
        };
        Ok((KitchenTicket { status, updated_at: now, ..self.clone() }, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KitchenAction as A;
    use KitchenStatus as S;

    #[test]
    fn transition_table_is_exactly_the_allowed_moves() {
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let allowed = [
            (S::Received, A::Start, S::Cooking),
            (S::Cooking, A::Finish, S::Cooked),
            (S::Received, A::Reject, S::Rejected),
            (S::Received, A::Cancel, S::Cancelled),
            (S::Cooking, A::Cancel, S::Cancelled),
            (S::Cooked, A::Cancel, S::Cancelled),
        ];
        for &from in S::ALL {
            for action in [A::Start, A::Finish, A::Reject, A::Cancel] {
                let expected = allowed.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                assert_eq!(from.next(action), expected, "{from} + {action:?}");
                let t = KitchenTicket { status: from, ..KitchenTicket::receive(3, 1, now) };
                assert_eq!(t.handle(action, "", now).ok().map(|(t, _)| t.status), expected);
            }
        }
    }

    #[test]
    fn events_name_the_move() {
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let t = KitchenTicket::receive(3, 1, now);
        let (t2, e) = t.handle(A::Start, "", now).unwrap();
        assert_eq!(e, Some(Event::CookingStarted { order_id: 3 }));
        assert_eq!(t2.handle(A::Finish, "", now).unwrap().1, Some(Event::FoodCooked { order_id: 3 }));
        let (_, e) = t.handle(A::Reject, "no rice", now).unwrap();
        assert_eq!(e, Some(Event::OrderRejected { order_id: 3, reason: "no rice".into() }));
        assert_eq!(t.handle(A::Cancel, "", now).unwrap().1, None);
    }
}
