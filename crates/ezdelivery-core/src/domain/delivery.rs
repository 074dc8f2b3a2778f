//! The delivery of one order by a rider.
//!
//! ```text
//! preparing ──depart (food cooked, charge paid)──► delivering ──complete──► delivered
//!     └──cancel──► cancelled
//! ```

use chrono::{DateTime, Utc};

use super::catalogue::Rider;
use super::charge::Charge;
use super::event::Event;
use super::ids::{ChargeId, OrderId, RiderId, Won};
use super::refusal::{Refusal, Standing};
pub use super::status::DeliveryStatus;
use super::status::{ChargeStatus, KitchenStatus};

/// What can happen to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryAction {
    /// A rider is named.
    Assign,
    /// The rider departs.
    Depart,
    /// The rider hands the food over.
    Complete,
    /// The order is cancelled.
    Cancel,
}

impl DeliveryStatus {
    /// The statuses in which a delivery keeps its rider busy: the least
    /// busy rider gets the next one. Storage adapters count by this list.
    pub const KEEPS_RIDER_BUSY: [DeliveryStatus; 2] = [DeliveryStatus::Preparing, DeliveryStatus::Delivering];

    /// True while the delivery keeps its rider busy ([`DeliveryStatus::KEEPS_RIDER_BUSY`]).
    pub fn keeps_rider_busy(self) -> bool {
        DeliveryStatus::KEEPS_RIDER_BUSY.contains(&self)
    }

    /// The delivery's state machine: one line per allowed move. Departure
    /// has two more conditions, checked by [`Delivery::depart`].
    pub fn next(self, action: DeliveryAction) -> Option<DeliveryStatus> {
        use DeliveryAction as A;
        use DeliveryStatus as S;
        match (self, action) {
            (S::Preparing, A::Assign) => Some(S::Preparing),
            (S::Preparing, A::Depart) => Some(S::Delivering),
            (S::Delivering, A::Complete) => Some(S::Delivered),
            (S::Preparing, A::Cancel) => Some(S::Cancelled),
            _ => None,
        }
    }
}

/// The delivery of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The order (one delivery per order).
    pub order_id: OrderId,
    /// The rider, once one is assigned.
    pub rider_id: Option<RiderId>,
    /// The delivery charge the rider is to be paid.
    pub charge: Won,
    /// Its status; [`DeliveryStatus::next`] says where it may go.
    pub status: DeliveryStatus,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Delivery {
    /// The rider it keeps busy: its rider, while its status does
    /// ([`DeliveryStatus::keeps_rider_busy`]). The least busy rider is
    /// counted by this, so every storage keeps it one way.
    pub fn busy_rider(&self) -> Option<RiderId> {
        self.rider_id.filter(|_| self.status.keeps_rider_busy())
    }

    /// Prepares the delivery of an order whose cooking started, with `rider`
    /// if one could be assigned.
    pub fn prepare(
        order_id: OrderId,
        rider: Option<&Rider>,
        charge_id: Option<ChargeId>,
        charge: Won,
        now: DateTime<Utc>,
    ) -> (Delivery, Event) {
        let d = Delivery {
            order_id,
            rider_id: rider.map(|r| r.id),
            charge,
            status: DeliveryStatus::Preparing,
            updated_at: now,
        };
        let e = Event::DeliveryPrepared {
            order_id,
            rider_id: d.rider_id,
            rider: rider.map(|r| r.name.clone()),
            charge_id,
            charge,
        };
        (d, e)
    }

    fn to(&self, action: DeliveryAction, now: DateTime<Utc>) -> Result<Delivery, Refusal> {
        match self.status.next(action) {
            Some(status) => Ok(Delivery { status, updated_at: now, ..self.clone() }),
            None => Err(Refusal::Transition {
                order: self.order_id,
                standing: Standing::Delivery(self.status),
                action: match action {
                    DeliveryAction::Assign => "get another rider",
                    DeliveryAction::Depart => "depart",
                    DeliveryAction::Complete => "be completed before it departs",
                    DeliveryAction::Cancel => "be cancelled",
                },
            }),
        }
    }

    /// Names `rider` for the delivery (a first rider, or another one), to be
    /// paid by the new charge `charge_id`.
    pub fn assign(&self, rider: &Rider, charge_id: ChargeId, now: DateTime<Utc>) -> Result<(Delivery, Event), Refusal> {
        let mut d = self.to(DeliveryAction::Assign, now)?;
        d.rider_id = Some(rider.id);
        let e = Event::DeliveryRiderAssigned {
            order_id: d.order_id,
            rider_id: rider.id,
            rider: rider.name.clone(),
            charge_id,
            charge: d.charge,
        };
        Ok((d, e))
    }

    /// The rider departs: only with the food cooked and the rider's charge paid.
    pub fn depart(
        &self,
        rider: Option<&Rider>,
        kitchen: KitchenStatus,
        charge: Option<&Charge>,
        now: DateTime<Utc>,
    ) -> Result<(Delivery, Event), Refusal> {
        let d = self.to(DeliveryAction::Depart, now)?;
        let order = self.order_id;
        let rider = match rider {
            Some(r) if Some(r.id) == self.rider_id => r,
            _ => return Err(Refusal::NoRider { order }),
        };
        if kitchen != KitchenStatus::Cooked {
            return Err(Refusal::FoodNotCooked { order, kitchen });
        }
        match charge {
            Some(c) if c.status == ChargeStatus::Paid && c.rider_id == rider.id => {}
            Some(c) if c.rider_id == rider.id => return Err(Refusal::ChargeNotPaid { order, charge: Some(c.status) }),
            _ => return Err(Refusal::ChargeNotPaid { order, charge: None }),
        }
        let e = Event::DeliveryStarted { order_id: order, rider_id: rider.id, rider: rider.name.clone() };
        Ok((d, e))
    }

    /// The rider handed the food over.
    pub fn complete(&self, now: DateTime<Utc>) -> Result<(Delivery, Event), Refusal> {
        let d = self.to(DeliveryAction::Complete, now)?;
        Ok((d, Event::DeliveryCompleted { order_id: self.order_id }))
    }

    /// The order was cancelled before departure.
    pub fn cancel(&self, now: DateTime<Utc>) -> Result<(Delivery, Event), Refusal> {
        let d = self.to(DeliveryAction::Cancel, now)?;
        Ok((d, Event::DeliveryCancelled { order_id: self.order_id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryAction as A;
    use DeliveryStatus as S;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(0, 0).unwrap()
    }

    fn lee() -> Rider {
        Rider { id: 3, name: "lee".into() }
    }

    fn paid_charge(rider: RiderId) -> Charge {
        Charge::request(1, 9, rider, 3000, "c1".into(), now()).pay("c", true, now()).unwrap().0
    }

    #[test]
    fn transition_table_is_exactly_the_allowed_moves() {
        let allowed = [
            (S::Preparing, A::Assign, S::Preparing),
            (S::Preparing, A::Depart, S::Delivering),
            (S::Delivering, A::Complete, S::Delivered),
            (S::Preparing, A::Cancel, S::Cancelled),
        ];
        for &from in S::ALL {
            for action in [A::Assign, A::Depart, A::Complete, A::Cancel] {
                let expected = allowed.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                assert_eq!(from.next(action), expected, "{from} + {action:?}");
                let d = Delivery { status: from, ..Delivery::prepare(9, Some(&lee()), Some(1), 3000, now()).0 };
                assert_eq!(d.to(action, now()).ok().map(|d| d.status), expected);
            }
        }
    }

    #[test]
    fn departs_only_with_cooked_food_and_paid_charge_to_this_rider() {
        let (d, e) = Delivery::prepare(9, Some(&lee()), Some(1), 3000, now());
        assert!(matches!(e, Event::DeliveryPrepared { rider_id: Some(3), charge: 3000, .. }));
        let paid = paid_charge(3);
        let pending = Charge::request(1, 9, 3, 3000, "c1".into(), now());
        let r = Some(&lee());
        assert!(matches!(d.depart(r, KitchenStatus::Cooking, Some(&paid), now()), Err(Refusal::FoodNotCooked { .. })));
        assert!(matches!(
            d.depart(r, KitchenStatus::Cooked, Some(&pending), now()),
            Err(Refusal::ChargeNotPaid { charge: Some(ChargeStatus::Pending), .. })
        ));
        assert!(matches!(d.depart(r, KitchenStatus::Cooked, None, now()), Err(Refusal::ChargeNotPaid { .. })));
        let other = paid_charge(4);
        assert!(matches!(d.depart(r, KitchenStatus::Cooked, Some(&other), now()), Err(Refusal::ChargeNotPaid { .. })));
        let (d2, e) = d.depart(r, KitchenStatus::Cooked, Some(&paid), now()).unwrap();
        assert_eq!(d2.status, S::Delivering);
        assert_eq!(e, Event::DeliveryStarted { order_id: 9, rider_id: 3, rider: "lee".into() });
        let (d3, e) = d2.complete(now()).unwrap();
        assert_eq!((d3.status, e), (S::Delivered, Event::DeliveryCompleted { order_id: 9 }));
    }

    #[test]
    fn without_a_rider_it_waits_until_one_is_named() {
        let (d, e) = Delivery::prepare(9, None, None, 3000, now());
        assert!(matches!(e, Event::DeliveryPrepared { rider_id: None, rider: None, .. }));
        let paid = paid_charge(3);
        assert!(matches!(
            d.depart(None, KitchenStatus::Cooked, Some(&paid), now()),
            Err(Refusal::NoRider { order: 9 })
        ));
        let (d, e) = d.assign(&lee(), 1, now()).unwrap();
        assert_eq!(d.rider_id, Some(3));
        assert!(matches!(e, Event::DeliveryRiderAssigned { rider_id: 3, .. }));
        assert!(d.depart(Some(&lee()), KitchenStatus::Cooked, Some(&paid), now()).is_ok());
    }

    #[test]
    fn cancel_only_before_departure() {
        let (d, _) = Delivery::prepare(9, Some(&lee()), Some(1), 3000, now());
        assert_eq!(d.cancel(now()).unwrap().1, Event::DeliveryCancelled { order_id: 9 });
        let (gone, _) = d.depart(Some(&lee()), KitchenStatus::Cooked, Some(&paid_charge(3)), now()).unwrap();
        assert!(gone.cancel(now()).is_err());
        assert!(gone.assign(&lee(), 1, now()).is_err());
    }
}
