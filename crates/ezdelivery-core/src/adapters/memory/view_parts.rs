//! A stored view brought up to date in place, when what is saved is the
//! same view with events applied (what every command saves).
//!
//! A save used to copy the whole view in and keep the old one for a
//! rollback: each copy and each drop of a view counts four shared texts up
//! or down (atomic operations that wait for the CPU's pending stores: with
//! the views' copies, 17 % of an in-memory lifecycle in `perf`) and copies
//! its timeline. The parts an event can change are few, and the timeline
//! only grows; so the stored view takes just those parts, and the journal
//! keeps the parts it gave up and how long its timeline was.

use std::mem::replace;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::view::{DeliveryView, KitchenView, OrderView, PaymentView, ReviewView};
use crate::domain::OrderStatus;

/// What [`update`] changed in a stored view, as it was before: `None` for
/// a part it left alone.
pub(super) struct ViewParts {
    status: OrderStatus,
    payment: Option<Option<PaymentView>>,
    kitchen: Option<Option<KitchenView>>,
    delivery: Option<Option<DeliveryView>>,
    review: Option<Option<ReviewView>>,
    reason: Option<Option<String>>,
    updated_at: DateTime<Utc>,
    /// How many entries the timeline had.
    timeline: usize,
}

/// Makes `stored` equal to `new` by changing only the parts events change,
/// if `new` is `stored` with events applied: the same order, the same
/// texts and items, and a timeline that goes on from `stored`'s. What it
/// changed, for [`restore`]; `None` (and `stored` untouched) otherwise.
pub(super) fn update(stored: &mut OrderView, new: &OrderView) -> Option<ViewParts> {
    // Every field named, so that a new one cannot be forgotten here.
    let OrderView {
        order_id,
        store_id,
        store,
        customer,
        address,
        status,
        items,
        total,
        payment,
        kitchen,
        delivery,
        review,
        reason,
        placed_at,
        updated_at,
        timeline,
    } = new;
    let same = stored.order_id == *order_id
        && stored.store_id == *store_id
        && stored.total == *total
        && stored.placed_at == *placed_at
        && stored.store == *store
        && stored.customer == *customer
        && stored.address == *address
        && (Arc::ptr_eq(&stored.items, items) || stored.items == *items)
        && timeline.starts_with(&stored.timeline);
    if !same {
        return None;
    }
    let parts = ViewParts {
        status: replace(&mut stored.status, *status),
        payment: changed(&mut stored.payment, payment),
        kitchen: changed(&mut stored.kitchen, kitchen),
        delivery: changed(&mut stored.delivery, delivery),
        review: changed(&mut stored.review, review),
        reason: changed(&mut stored.reason, reason),
        updated_at: replace(&mut stored.updated_at, *updated_at),
        timeline: stored.timeline.len(),
    };
    stored.timeline.extend_from_slice(timeline.get(parts.timeline..).unwrap_or_default());
    Some(parts)
}

/// Puts back what [`update`] changed.
pub(super) fn restore(stored: &mut OrderView, old: ViewParts) {
    let ViewParts { status, payment, kitchen, delivery, review, reason, updated_at, timeline } = old;
    stored.status = status;
    put_back(&mut stored.payment, payment);
    put_back(&mut stored.kitchen, kitchen);
    put_back(&mut stored.delivery, delivery);
    put_back(&mut stored.review, review);
    put_back(&mut stored.reason, reason);
    stored.updated_at = updated_at;
    stored.timeline.truncate(timeline);
}

/// Sets `slot` to `new` if it differs; the value it had, if so.
fn changed<T: Clone + PartialEq>(slot: &mut T, new: &T) -> Option<T> {
    (*slot != *new).then(|| replace(slot, new.clone()))
}

/// Puts `old` back into `slot`, if [`changed`] took it.
fn put_back<T>(slot: &mut T, old: Option<T>) {
    if let Some(old) = old {
        *slot = old;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Event, OrderItem};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_714_521_600 + secs, 0).expect("a time")
    }

    fn placed() -> OrderView {
        let event = Event::OrderPlaced(Box::new(crate::domain::Placed {
            order_id: 7,
            store_id: 1,
            store: "BBQ".into(),
            customer: "kim".into(),
            address: "서울".into(),
            items: vec![OrderItem { menu_id: 1, name: "후라이드".into(), unit_price: 18_000, qty: 2 }].into(),
            total: 36_000,
        }));
        OrderView::start(1, at(0), &event).expect("a view")
    }

    /// The view after each event of a lifecycle, from the order placed on.
    fn lifecycle() -> Vec<OrderView> {
        let events = [
            Event::PaymentApproved { order_id: 7, payment_id: 1, amount: 36_000, card: Some("****1234".into()) },
            Event::CookingStarted { order_id: 7 },
            Event::DeliveryPrepared {
                order_id: 7,
                rider_id: Some(2),
                rider: Some("lee".into()),
                charge_id: Some(1),
                charge: 3_000,
            },
            Event::DeliveryChargePaid { order_id: 7, charge_id: 1, rider_id: 2, amount: 3_000 },
            Event::FoodCooked { order_id: 7 },
            Event::DeliveryStarted { order_id: 7, rider_id: 2, rider: "lee".into() },
            Event::DeliveryCompleted { order_id: 7 },
            Event::ReviewRegistered { order_id: 7, store_id: 1, score: 5, text: "맛있어요".into() },
        ];
        let mut views = vec![placed()];
        for (n, event) in events.iter().enumerate() {
            let mut next = views[n].clone();
            next.apply(n as i64 + 2, at(n as i64 + 1), event);
            views.push(next);
        }
        views
    }

    #[test]
    fn each_step_of_a_lifecycle_is_updated_in_place_and_restored() {
        let views = lifecycle();
        for (before, after) in views.iter().zip(&views[1..]) {
            assert_ne!(before, after, "every event changes the view");
            let mut stored = before.clone();
            let parts = update(&mut stored, after).expect("the same view, events applied");
            assert_eq!(&stored, after);
            restore(&mut stored, parts);
            assert_eq!(&stored, before);
        }
        // Several events at once (a command's unit of work applies one or two).
        let (first, last) = (&views[0], &views[views.len() - 1]);
        let mut stored = first.clone();
        let parts = update(&mut stored, last).expect("the same view, events applied");
        assert_eq!(&stored, last);
        restore(&mut stored, parts);
        assert_eq!(&stored, first);
    }

    #[test]
    fn another_view_is_not_an_update() {
        let views = lifecycle();
        let (before, after) = (&views[1], &views[2]);
        let other_customer = OrderView { customer: "park".into(), ..after.clone() };
        let other_items = OrderView { items: Vec::new().into(), ..after.clone() };
        let other_order = OrderView { order_id: 8, ..after.clone() };
        let older = views[0].clone();
        let rewritten = OrderView { timeline: after.timeline[1..].to_vec(), ..after.clone() };
        for new in [other_customer, other_items, other_order, older, rewritten] {
            let mut stored = before.clone();
            assert!(update(&mut stored, &new).is_none(), "{new:?}");
            assert_eq!(&stored, before, "untouched");
        }
        // Equal texts in other blocks are the same texts.
        let copied = OrderView { customer: String::from(&*after.customer).into(), ..after.clone() };
        let mut stored = before.clone();
        assert!(update(&mut stored, &copied).is_some());
        assert_eq!(stored, copied);
    }
}
