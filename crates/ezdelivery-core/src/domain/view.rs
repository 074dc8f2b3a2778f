//! The mypage read model: one view per order, built only from events by
//! [`OrderView::apply`], a pure function, so a rebuild from the log gives
//! the same views.
//!
//! The fold repeats no rule of the domain: each event says what became of
//! the record it names (a refund requested is its own event,
//! [`Event::PaymentRefundRequested`], not something the view infers from a
//! cancellation), and the view copies it. Logs written before those events
//! existed are brought up to date once, when the database is opened
//! (`adapters::sqlite::upgrade`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{Event, EventType, Placed};
use smol_str::SmolStr;

use super::ids::{ChargeId, OrderId, PaymentId, StoreId, Won};
use super::item::OrderItem;
use super::order::OrderAction;
use super::status::{ChargeStatus, DeliveryStatus, KitchenStatus, OrderStatus, PaymentStatus};

/// The times of a view: the text chrono's own `Serialize` writes (RFC 3339,
/// `Z`, the shortest of 0, 3, 6 or 9 fraction digits) and anything its
/// `Deserialize` reads. A view has a time per event and is encoded on every
/// write and decoded on every read, so both go through chrono's RFC 3339
/// functions instead of its serde impls: a timeline entry is written in
/// 109 ns against 185 ns and read in 120 ns against 212 ns
/// (`cargo bench --bench primitives -- time/view_entry`, BENCHMARKS.md).
mod stored_time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        match DateTime::parse_from_rfc3339(&text) {
            Ok(t) => Ok(t.with_timezone(&Utc)),
            // What chrono's `Deserialize` also takes (`2024-05-01 09:00:00Z`, …).
            Err(_) => text.parse::<DateTime<Utc>>().map_err(serde::de::Error::custom),
        }
    }
}

/// The mypage view of one order: its JSON form is the order view of `--json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    /// The order this view is of (one view per order).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub order_id: OrderId,
    /// The store it was placed with.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub store_id: StoreId,
    /// The store's name when ordered.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub store: SmolStr,
    /// Who ordered: the name the customer's messages go to.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub customer: SmolStr,
    /// Where to deliver (empty when none was given).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: SmolStr,
    /// Where the order stands.
    pub status: OrderStatus,
    /// What was ordered, each line at its price when ordered.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<OrderItem>))]
    pub items: Arc<[OrderItem]>,
    /// What the customer pays, in whole won: the sum of `unit_price *
    /// qty` over the items.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub total: Won,
    /// The current payment attempt, once there is one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub payment: Option<PaymentView>,
    /// The kitchen ticket, once the order is paid.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub kitchen: Option<KitchenView>,
    /// The delivery, once cooking started.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub delivery: Option<DeliveryView>,
    /// The customer's review, once written.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub review: Option<ReviewView>,
    /// Why the order was cancelled or rejected, when a reason was given.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<String>,
    /// When the order was placed.
    #[serde(with = "stored_time")]
    pub placed_at: DateTime<Utc>,
    /// When anything last happened to it.
    #[serde(with = "stored_time")]
    pub updated_at: DateTime<Utc>,
    /// Every event of the order, in order.
    pub timeline: Vec<TimelineEntry>,
}

/// The payment part of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentView {
    /// The latest payment attempt's id (a declined try and the one after
    /// it are two attempts).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: PaymentId,
    /// The payment's status, as its events left it.
    pub status: PaymentStatus,
    /// The order's total, in whole won.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub amount: Won,
    /// The card charged (or tried), masked but for its last four digits;
    /// `None` when none was given.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub card: Option<String>,
}

/// The kitchen part of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KitchenView {
    /// Where the ticket stands.
    pub status: KitchenStatus,
}

/// The delivery part of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    /// Where the delivery stands.
    pub status: DeliveryStatus,
    /// The rider's name, once assigned.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Option<String>))]
    pub rider: Option<SmolStr>,
    /// The rider's current delivery charge, once there is a rider.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub charge: Option<ChargeView>,
}

/// The delivery-charge part of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChargeView {
    /// The current rider's delivery charge's id (a new rider gets a new
    /// charge).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: ChargeId,
    /// The charge's status, as its events left it.
    pub status: ChargeStatus,
    /// The delivery charge, in whole won.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub amount: Won,
}

/// The review part of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewView {
    /// The score, from 1 (worst) to 5 (best).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub score: u8,
    /// What the customer wrote (may be empty).
    pub text: String,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    /// The event's sequence number in the log (strictly increasing, from 1).
    pub seq: i64,
    /// The event's type, written as its name (`"OrderPlaced"`).
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the event happened (the engine's clock, UTC).
    #[serde(with = "stored_time")]
    pub at: DateTime<Utc>,
}

impl OrderView {
    /// The view an `OrderPlaced` event starts; `None` for any other event.
    pub fn start(seq: i64, at: DateTime<Utc>, event: &Event) -> Option<OrderView> {
        let Event::OrderPlaced(placed) = event else {
            return None;
        };
        let Placed { order_id, store_id, store, customer, address, items, total } = &**placed;
        Some(OrderView {
            order_id: *order_id,
            store_id: *store_id,
            store: store.clone(),
            customer: customer.clone(),
            address: address.clone(),
            status: OrderStatus::PendingPayment,
            items: items.clone(),
            total: *total,
            payment: None,
            kitchen: None,
            delivery: None,
            review: None,
            reason: None,
            placed_at: at,
            updated_at: at,
            timeline: vec![TimelineEntry { seq, kind: event.kind(), at }],
        })
    }

    /// The sequence number of the last event applied.
    pub fn last_seq(&self) -> i64 {
        self.timeline.last().map_or(0, |t| t.seq)
    }

    /// Applies one event of this order. Idempotent: an event at or before
    /// the last one applied changes nothing. Returns whether it applied.
    pub fn apply(&mut self, seq: i64, at: DateTime<Utc>, event: &Event) -> bool {
        if seq <= self.last_seq() || event.order_id() != Some(self.order_id) {
            return false;
        }
        self.timeline.push(TimelineEntry { seq, kind: event.kind(), at });
        self.updated_at = at;
        match event {
            Event::OrderPlaced { .. } => {}
            Event::PaymentApproved { payment_id, amount, card, .. } => {
                self.set_payment(*payment_id, PaymentStatus::Approved, *amount, card);
                // Whether an approval establishes the order is the order's
                // own table's to say: a late one (the order was cancelled or
                // paid meanwhile) does not, and its refund follows as its
                // own event.
                if let Some(paid) = self.status.next(OrderAction::Pay) {
                    self.status = paid;
                    self.kitchen = Some(KitchenView { status: KitchenStatus::Received });
                }
            }
            Event::PaymentDeclined { payment_id, amount, card, .. } => {
                self.set_payment(*payment_id, PaymentStatus::Declined, *amount, card)
            }
            Event::PaymentQueued { payment_id, amount, card, .. } => {
                self.set_payment(*payment_id, PaymentStatus::Pending, *amount, card)
            }
            Event::PaymentVoided { payment_id, .. } => self.payment_moved(*payment_id, PaymentStatus::Voided),
            Event::PaymentRefundRequested { payment_id, .. } => {
                self.payment_moved(*payment_id, PaymentStatus::RefundPending)
            }
            Event::PaymentRefunded { payment_id, .. } => self.payment_moved(*payment_id, PaymentStatus::Refunded),
            // The first news of a payment may be that it needs attention.
            Event::PaymentNeedsAttention { payment_id, amount, card, .. } => {
                self.set_payment(*payment_id, PaymentStatus::NeedsAttention, *amount, card)
            }
            Event::PaymentRequeued { payment_id, status, .. } => self.payment_moved(*payment_id, *status),
            Event::OrderRejected { reason, .. } => {
                self.set_reason(reason);
                self.status = OrderStatus::Rejected;
                self.set_kitchen(KitchenStatus::Rejected);
            }
            Event::CookingStarted { .. } => {
                self.status = OrderStatus::Cooking;
                self.set_kitchen(KitchenStatus::Cooking);
            }
            Event::FoodCooked { .. } => {
                self.status = OrderStatus::Cooked;
                self.set_kitchen(KitchenStatus::Cooked);
            }
            Event::DeliveryPrepared { rider, charge_id, charge, .. } => {
                self.delivery = Some(DeliveryView {
                    status: DeliveryStatus::Preparing,
                    rider: rider.clone(),
                    charge: charge_id.map(|id| ChargeView { id, status: ChargeStatus::Pending, amount: *charge }),
                });
            }
            Event::DeliveryRiderAssigned { rider, charge_id, charge, .. } => {
                if let Some(d) = &mut self.delivery {
                    d.rider = Some(rider.clone());
                    d.charge = Some(ChargeView { id: *charge_id, status: ChargeStatus::Pending, amount: *charge });
                }
            }
            Event::DeliveryChargePaid { charge_id, .. } => self.charge_moved(*charge_id, ChargeStatus::Paid),
            Event::DeliveryStarted { rider, .. } => {
                self.status = OrderStatus::Delivering;
                if let Some(d) = &mut self.delivery {
                    d.status = DeliveryStatus::Delivering;
                    d.rider = Some(rider.clone());
                }
            }
            Event::DeliveryCompleted { .. } => {
                self.status = OrderStatus::Delivered;
                if let Some(d) = &mut self.delivery {
                    d.status = DeliveryStatus::Delivered;
                }
            }
            Event::OrderCancelled { reason, .. } => {
                self.set_reason(reason);
                self.status = OrderStatus::Cancelled;
                self.set_kitchen(KitchenStatus::Cancelled);
            }
            Event::DeliveryCancelled { .. } => {
                if let Some(d) = &mut self.delivery {
                    d.status = DeliveryStatus::Cancelled;
                }
            }
            Event::DeliveryChargeRefundRequested { charge_id, .. } => {
                self.charge_moved(*charge_id, ChargeStatus::RefundPending)
            }
            Event::DeliveryChargeRefunded { charge_id, .. } => self.charge_moved(*charge_id, ChargeStatus::Refunded),
            Event::DeliveryChargeVoided { charge_id, .. } => self.charge_moved(*charge_id, ChargeStatus::Voided),
            Event::DeliveryChargeNeedsAttention { charge_id, .. } => {
                self.charge_moved(*charge_id, ChargeStatus::NeedsAttention)
            }
            Event::DeliveryChargeRequeued { charge_id, status, .. } => self.charge_moved(*charge_id, *status),
            Event::ReviewRegistered { score, text, .. } => {
                self.review = Some(ReviewView { score: *score, text: text.clone() })
            }
            Event::StoreRegistered { .. }
            | Event::StoreOpened { .. }
            | Event::StoreClosed { .. }
            | Event::MenuAdded { .. }
            | Event::MenuSoldOut { .. }
            | Event::MenuAvailable { .. }
            | Event::RiderRegistered { .. } => {}
        }
        true
    }

    /// Keeps a cancellation's or rejection's reason; an empty one is none.
    fn set_reason(&mut self, reason: &str) {
        self.reason = (!reason.trim().is_empty()).then(|| reason.to_string());
    }

    fn set_payment(&mut self, id: PaymentId, status: PaymentStatus, amount: Won, card: &Option<String>) {
        self.payment = Some(PaymentView { id, status, amount, card: card.clone() });
    }

    fn payment_moved(&mut self, id: PaymentId, status: PaymentStatus) {
        if let Some(p) = self.payment.as_mut().filter(|p| p.id == id) {
            p.status = status;
        }
    }

    fn set_kitchen(&mut self, status: KitchenStatus) {
        if let Some(k) = &mut self.kitchen {
            k.status = status;
        }
    }

    fn charge_moved(&mut self, id: ChargeId, status: ChargeStatus) {
        if let Some(c) = self.delivery.as_mut().and_then(|d| d.charge.as_mut()).filter(|c| c.id == id) {
            c.status = status;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_read_back_as_written() {
        let times = [
            DateTime::from_timestamp(1_714_521_600, 0).unwrap(),
            DateTime::from_timestamp(1_714_521_600, 120_000_000).unwrap(),
            DateTime::from_timestamp(1_714_521_600, 123_456_000).unwrap(),
            DateTime::from_timestamp(1_714_521_600, 123_456_789).unwrap(),
            DateTime::from_timestamp(0, 1_000).unwrap(),
        ];
        for t in times {
            let entry = TimelineEntry { seq: 1, kind: EventType::OrderPlaced, at: t };
            let json = serde_json::to_string(&entry).unwrap();
            let chrono = serde_json::to_string(&t).unwrap();
            assert!(json.contains(&format!("\"at\":{chrono}")), "{json} is written as chrono writes {chrono}");
            assert_eq!(serde_json::from_str::<TimelineEntry>(&json).unwrap(), entry, "{json}");
            let text = &json[json.find("\"at\":\"").unwrap() + 6..json.len() - 2];
            assert_eq!(DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()), Ok(t), "{json}");
        }
        let offset = r#"{"seq":1,"type":"OrderPlaced","at":"2024-05-01T09:00:00+09:00"}"#;
        assert_eq!(serde_json::from_str::<TimelineEntry>(offset).unwrap().at, times[0]);
        assert!(serde_json::from_str::<TimelineEntry>(r#"{"seq":1,"type":"FoodCooked","at":"2024-02-30T00:00:00Z"}"#)
            .is_err());
        let spaced = r#"{"seq":1,"type":"FoodCooked","at":"2024-05-01 00:00:00Z"}"#;
        assert_eq!(serde_json::from_str::<TimelineEntry>(spaced).unwrap().at, times[0], "what chrono's serde reads");
        let far = DateTime::from_timestamp(300_000_000_000, 5).unwrap();
        let entry = TimelineEntry { seq: 1, kind: EventType::FoodCooked, at: far };
        assert_eq!(serde_json::from_str::<TimelineEntry>(&serde_json::to_string(&entry).unwrap()).unwrap(), entry);
        assert!(serde_json::from_str::<TimelineEntry>(r#"{"seq":1,"type":"FoodCooked","at":"soon"}"#).is_err());
        // The type is written as the event's name, and only a name reads.
        let entry = TimelineEntry { seq: 2, kind: EventType::PaymentRefundRequested, at: times[0] };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(json, r#"{"seq":2,"type":"PaymentRefundRequested","at":"2024-05-01T00:00:00Z"}"#);
        assert!(serde_json::from_str::<TimelineEntry>(r#"{"seq":1,"type":"x","at":"2024-05-01T00:00:00Z"}"#).is_err());
    }

    fn placed(order_id: OrderId) -> OrderView {
        let placed = Event::OrderPlaced(Box::new(Placed {
            order_id,
            store_id: 1,
            store: "BBQ".into(),
            customer: "kim".into(),
            address: "서울 강남구 1".into(),
            items: Vec::new().into(),
            total: 0,
        }));
        OrderView::start(1, DateTime::from_timestamp(0, 0).unwrap(), &placed).unwrap()
    }

    #[test]
    fn the_reason_of_a_cancellation_or_rejection_is_kept() {
        let at = DateTime::from_timestamp(60, 0).unwrap();
        let mut cancelled = placed(7);
        assert_eq!(cancelled.reason, None);
        assert!(cancelled.apply(2, at, &Event::OrderCancelled { order_id: 7, reason: "changed my mind".into() }));
        assert_eq!(cancelled.reason.as_deref(), Some("changed my mind"));
        let json = serde_json::to_value(&cancelled).unwrap();
        assert_eq!(json["reason"], "changed my mind");

        let mut rejected = placed(8);
        rejected.apply(2, at, &Event::OrderRejected { order_id: 8, reason: "out of rice".into() });
        assert_eq!(rejected.reason.as_deref(), Some("out of rice"));
        let mut silent = placed(9);
        silent.apply(2, at, &Event::OrderCancelled { order_id: 9, reason: " ".into() });
        assert_eq!(silent.reason, None);

        // A view stored before the field existed reads as having none.
        let mut old = serde_json::to_value(&cancelled).unwrap();
        old.as_object_mut().unwrap().remove("reason");
        let read: OrderView = serde_json::from_value(old).unwrap();
        assert_eq!(read, OrderView { reason: None, ..cancelled });
    }

    #[test]
    fn the_view_copies_what_events_say_and_infers_nothing() {
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let mut v = placed(1);
        v.apply(2, at, &Event::PaymentApproved { order_id: 1, payment_id: 1, amount: 100, card: None });
        assert_eq!(
            (v.status, v.payment.as_ref().map(|p| p.status)),
            (OrderStatus::Paid, Some(PaymentStatus::Approved))
        );
        // A cancellation says nothing of the payment: its own event does.
        v.apply(3, at, &Event::OrderCancelled { order_id: 1, reason: String::new() });
        assert_eq!(v.payment.as_ref().map(|p| p.status), Some(PaymentStatus::Approved));
        v.apply(4, at, &Event::PaymentRefundRequested { order_id: 1, payment_id: 1, amount: 100 });
        assert_eq!(v.payment.as_ref().map(|p| p.status), Some(PaymentStatus::RefundPending));
        // A late approval does not establish a cancelled order.
        v.apply(5, at, &Event::PaymentApproved { order_id: 1, payment_id: 2, amount: 100, card: None });
        assert_eq!((v.status, v.payment.as_ref().map(|p| p.id)), (OrderStatus::Cancelled, Some(2)));
        let kinds: Vec<_> = v.timeline.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["OrderPlaced", "PaymentApproved", "OrderCancelled", "PaymentRefundRequested", "PaymentApproved"]
        );
    }
}
