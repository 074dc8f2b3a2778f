//! The JSON contract: the shapes the CLI's `--json` prints (and an HTTP API
//! returns), one type each, written by serde as they are declared (keys in
//! field order, the order the CLI prints them in). The order view is
//! [`OrderView`] itself; what else an answer holds is here: a store, a
//! menu, a rider, a review, an event (as the log's JSON line and as a
//! CloudEvent), and the lists `{"stores":[…]}`, `{"menus":[…]}`,
//! `{"riders":[…]}`, `{"orders":[…]}` and `{"events":[…]}`.
//!
//! Each is made from the record it shows (`StoreJson::from(&store)`), and
//! with the `openapi` feature implements `utoipa::ToSchema`, so an OpenAPI
//! document is generated from the same types that write the JSON: a field
//! that serde always writes is required (an `Option` one nullable), one it
//! may leave out is not.
//!
//! ```
//! use ezdelivery_core::adapters::memory::MemoryStorage;
//! use ezdelivery_core::json::StoreJson;
//! use ezdelivery_core::Engine;
//!
//! let engine = Engine::builder(MemoryStorage::new()).build();
//! let store = engine.add_store("BBQ", Some("park"), None).unwrap();
//! let json = serde_json::to_string(&StoreJson::from(&store)).unwrap();
//! assert_eq!(
//!     json,
//!     r#"{"id":1,"name":"BBQ","owner":"park","address":"","open":true,"delivery_charge":3000,"review_count":0,"average_score":null}"#
//! );
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::view::OrderView;
use crate::domain::{EventType, Menu, MenuId, OrderId, Review, Rider, RiderId, Store, StoreId, Won};
use crate::ports::storage::StoredEvent;

/// A store: `store add`, `store open`, `store close`, and each of `store
/// list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoreJson {
    /// Handed out by the storage, from 1.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: StoreId,
    /// Its name as customers see it.
    pub name: String,
    /// The owner, who receives a message for every new paid order.
    pub owner: String,
    /// Where it is (empty when none was given).
    pub address: String,
    /// Whether it takes orders now.
    pub open: bool,
    /// What each delivery pays the rider, in whole won.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub delivery_charge: Won,
    /// How many reviews it has received.
    pub review_count: i64,
    /// The average review score, `null` before the first review.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub average_score: Option<f64>,
}

impl From<&Store> for StoreJson {
    fn from(s: &Store) -> StoreJson {
        StoreJson {
            id: s.id,
            name: String::from(s.name.as_str()),
            owner: String::from(s.owner.as_str()),
            address: String::from(s.address.as_str()),
            open: s.open,
            delivery_charge: s.delivery_charge,
            review_count: s.review_count,
            average_score: s.average_score(),
        }
    }
}

/// A menu: `menu add`, `menu sold-out`, `menu available`, and each of `menu
/// list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MenuJson {
    /// The menu's id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: MenuId,
    /// The store it belongs to.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub store_id: StoreId,
    /// Its name.
    pub name: String,
    /// Its price, in whole won.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub price: Won,
    /// Whether it can be ordered (`false`: sold out).
    pub available: bool,
}

impl From<&Menu> for MenuJson {
    fn from(m: &Menu) -> MenuJson {
        MenuJson {
            id: m.id,
            store_id: m.store_id,
            name: String::from(m.name.as_str()),
            price: m.price,
            available: m.available,
        }
    }
}

/// A rider: `rider add`, and each of `rider list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiderJson {
    /// The rider's id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: RiderId,
    /// The rider's name.
    pub name: String,
}

impl From<&Rider> for RiderJson {
    fn from(r: &Rider) -> RiderJson {
        RiderJson { id: r.id, name: String::from(r.name.as_str()) }
    }
}

/// A review just written: `review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewJson {
    /// The order reviewed.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub order_id: OrderId,
    /// Its store.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub store_id: StoreId,
    /// Who wrote it.
    pub customer: String,
    /// The score, from 1 (worst) to 5 (best).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub score: u8,
    /// What the customer wrote (may be empty).
    pub text: String,
    /// When it was written (UTC).
    pub at: DateTime<Utc>,
}

impl From<&Review> for ReviewJson {
    fn from(r: &Review) -> ReviewJson {
        ReviewJson {
            order_id: r.order_id,
            store_id: r.store_id,
            customer: r.customer.clone(),
            score: r.score,
            text: r.text.clone(),
            at: r.created_at,
        }
    }
}

/// The schema of an event's `data`: a JSON object, whatever its fields.
#[cfg(feature = "openapi")]
fn data_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(true)))
        .description(Some("The event's fields, as its type has them."))
        .build()
}

/// One event of the log, as `events --format json` writes it (one line per
/// event when it streams): `{"seq","id","type","order_id","at","data"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventJson {
    /// Its sequence number in the log (strictly increasing, from 1).
    pub seq: i64,
    /// Its unique id (a UUID), for consumers that deduplicate.
    pub id: String,
    /// Its type's name (`"OrderPlaced"`).
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The order it belongs to, `null` for a catalogue event.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Option<i64>))]
    pub order_id: Option<OrderId>,
    /// When it happened (the engine's clock, UTC).
    pub at: DateTime<Utc>,
    /// Its fields: a JSON object, as its type has them.
    #[cfg_attr(feature = "openapi", schema(schema_with = data_schema))]
    pub data: serde_json::Value,
}

impl From<&StoredEvent> for EventJson {
    fn from(e: &StoredEvent) -> EventJson {
        EventJson {
            seq: e.seq,
            id: e.id.clone(),
            kind: e.event.kind(),
            order_id: e.event.order_id(),
            at: e.at,
            data: e.event.data(),
        }
    }
}

/// One event as a CloudEvent 1.0 in structured JSON mode, as `events
/// --format cloudevents` writes it: `type` is `ezdelivery.<aggregate>.<what
/// happened>`, `subject` the order id, only for an order's event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudEvent {
    /// The CloudEvents version: `"1.0"`.
    pub specversion: String,
    /// The event's unique id (a UUID).
    pub id: String,
    /// Where it comes from: `"/ezdelivery"`.
    pub source: String,
    /// `ezdelivery.` and the event's CloudEvents type (`ezdelivery.order.placed`).
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened (UTC).
    pub time: DateTime<Utc>,
    /// `"application/json"`.
    pub datacontenttype: String,
    /// The event's fields: a JSON object, as its type has them.
    #[cfg_attr(feature = "openapi", schema(schema_with = data_schema))]
    pub data: serde_json::Value,
    /// The order the event belongs to, as text; left out for a catalogue event.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub subject: Option<String>,
}

impl From<&StoredEvent> for CloudEvent {
    fn from(e: &StoredEvent) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".to_string(),
            id: e.id.clone(),
            source: "/ezdelivery".to_string(),
            kind: format!("ezdelivery.{}", e.event.cloud_type()),
            time: e.at,
            datacontenttype: "application/json".to_string(),
            data: e.event.data(),
            subject: e.event.order_id().map(|order| order.to_string()),
        }
    }
}

/// `store list`: `{"stores":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoreList {
    /// Every store, by id.
    pub stores: Vec<StoreJson>,
}

impl From<&[Store]> for StoreList {
    fn from(stores: &[Store]) -> StoreList {
        StoreList { stores: stores.iter().map(StoreJson::from).collect() }
    }
}

/// `menu list`: `{"menus":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MenuList {
    /// The menus listed.
    pub menus: Vec<MenuJson>,
}

impl From<&[Menu]> for MenuList {
    fn from(menus: &[Menu]) -> MenuList {
        MenuList { menus: menus.iter().map(MenuJson::from).collect() }
    }
}

/// `rider list`: `{"riders":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiderList {
    /// Every rider, by id.
    pub riders: Vec<RiderJson>,
}

impl From<&[Rider]> for RiderList {
    fn from(riders: &[Rider]) -> RiderList {
        RiderList { riders: riders.iter().map(RiderJson::from).collect() }
    }
}

/// Several orders (`status --customer`, `store orders`): `{"orders":[…]}`,
/// each the order view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderList {
    /// The orders' views.
    pub orders: Vec<OrderView>,
}

impl From<&[OrderView]> for OrderList {
    fn from(orders: &[OrderView]) -> OrderList {
        OrderList { orders: orders.to_vec() }
    }
}

/// `events --format json`, printed at once: `{"events":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventList {
    /// The events, in log order.
    pub events: Vec<EventJson>,
}

impl From<&[StoredEvent]> for EventList {
    fn from(events: &[StoredEvent]) -> EventList {
        EventList { events: events.iter().map(EventJson::from).collect() }
    }
}

/// `events --format cloudevents`, printed at once: `{"events":[…]}`, each a
/// CloudEvent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudEventList {
    /// The events, in log order.
    pub events: Vec<CloudEvent>,
}

impl From<&[StoredEvent]> for CloudEventList {
    fn from(events: &[StoredEvent]) -> CloudEventList {
        CloudEventList { events: events.iter().map(CloudEvent::from).collect() }
    }
}

/// The generated schemas against what serde writes: real records from an
/// engine, each validated (JSON Schema 2020-12, OpenAPI 3.1's dialect)
/// against its schema made strict (no property the schema does not name).
#[cfg(all(test, feature = "openapi"))]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{json, Value};
    use utoipa::openapi::ComponentsBuilder;
    use utoipa::{PartialSchema, ToSchema};

    use super::*;
    use crate::adapters::memory::MemoryStorage;
    use crate::domain::{ChargeStatus, DeliveryStatus, KitchenStatus, OrderStatus, PaymentStatus};
    use crate::{Engine, ItemPick, NewOrder};

    /// Every schema of the contract, as `components.schemas` of an OpenAPI
    /// document would hold them (each type's and the ones it refers to).
    fn components() -> Value {
        fn add<T: ToSchema>(builder: ComponentsBuilder) -> ComponentsBuilder {
            let mut nested = Vec::new();
            T::schemas(&mut nested);
            builder.schema_from::<T>().schemas_from_iter(nested)
        }
        let mut b = ComponentsBuilder::new();
        b = add::<StoreJson>(b);
        b = add::<MenuJson>(b);
        b = add::<RiderJson>(b);
        b = add::<ReviewJson>(b);
        b = add::<EventJson>(b);
        b = add::<CloudEvent>(b);
        b = add::<StoreList>(b);
        b = add::<MenuList>(b);
        b = add::<RiderList>(b);
        b = add::<OrderList>(b);
        b = add::<EventList>(b);
        b = add::<CloudEventList>(b);
        b = add::<OrderView>(b);
        serde_json::to_value(b.build()).unwrap()["schemas"].clone()
    }

    /// `schema` with `additionalProperties: false` on every object schema
    /// that names its properties: a key serde writes that the schema does not
    /// name fails validation.
    fn strict(schema: &mut Value) {
        match schema {
            Value::Object(map) => {
                if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                map.values_mut().for_each(strict);
            }
            Value::Array(items) => items.iter_mut().for_each(strict),
            _ => {}
        }
    }

    /// The errors of `instance` against the component `name`.
    fn errors(components: &Value, name: &str, instance: &Value) -> Vec<String> {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{name}"),
            "components": { "schemas": components },
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the schema of {name} does not compile: {e}"));
        validator.iter_errors(instance).map(|e| format!("{name}: {e} at {}", e.instance_path())).collect()
    }

    /// What one engine wrote: a delivered and reviewed order, a cancelled
    /// one with a reason, one placed and not paid, and the catalogue.
    struct World {
        delivered: OrderView,
        cancelled: OrderView,
        unpaid: OrderView,
        review: Review,
        stores: Vec<Store>,
        menus: Vec<Menu>,
        riders: Vec<Rider>,
        events: Vec<StoredEvent>,
    }

    fn world() -> World {
        let engine = Engine::builder(MemoryStorage::new()).build();
        let store = engine.add_store("BBQ", Some("park"), Some("Gangnam 1")).unwrap();
        engine.add_store("Kyochon", None, None).unwrap();
        engine.add_menu(store.id, "후라이드", 18_000).unwrap();
        engine.add_rider("lee").unwrap();
        let items = [ItemPick::new("후라이드", 2)];
        let order = NewOrder::new(store.id, "kim", &items).deliver_to("Seoul 2").pay_now(Some("4111111111111111"));
        let id = engine.place_order(order).unwrap().order_id;
        engine.start_cooking(id).unwrap();
        engine.finish_cooking(id).unwrap();
        engine.start_delivery(id, None).unwrap();
        engine.complete_delivery(id).unwrap();
        let review = engine.review(id, 5, "맛있어요").unwrap();
        let delivered = engine.status(id).unwrap();
        let cancelled = engine.place_order(NewOrder::new(store.id, "choi", &items).pay_now(None)).unwrap().order_id;
        engine.start_cooking(cancelled).unwrap();
        let cancelled = engine.cancel(cancelled, "changed my mind").unwrap();
        let unpaid = engine.place_order(NewOrder::new(store.id, "han", &items)).unwrap();
        World {
            delivered,
            cancelled,
            unpaid,
            review,
            stores: engine.stores().unwrap(),
            menus: engine.menus(None).unwrap(),
            riders: engine.riders().unwrap(),
            events: engine.events(0, None, 1000).unwrap(),
        }
    }

    /// Each shape as serde writes it, under the name of its schema.
    fn instances(w: &World) -> Vec<(&'static str, Value)> {
        let v = |x: &dyn erased::Json| x.value();
        let mut out: Vec<(&'static str, Value)> = vec![
            ("OrderView", v(&w.delivered)),
            ("OrderView", v(&w.cancelled)),
            ("OrderView", v(&w.unpaid)),
            ("ReviewJson", v(&ReviewJson::from(&w.review))),
            ("StoreList", v(&StoreList::from(w.stores.as_slice()))),
            ("MenuList", v(&MenuList::from(w.menus.as_slice()))),
            ("RiderList", v(&RiderList::from(w.riders.as_slice()))),
            ("OrderList", v(&OrderList::from([w.delivered.clone(), w.cancelled.clone(), w.unpaid.clone()].as_slice()))),
            ("EventList", v(&EventList::from(w.events.as_slice()))),
            ("CloudEventList", v(&CloudEventList::from(w.events.as_slice()))),
        ];
        out.extend(w.stores.iter().map(|s| ("StoreJson", v(&StoreJson::from(s)))));
        out.extend(w.menus.iter().map(|m| ("MenuJson", v(&MenuJson::from(m)))));
        out.extend(w.riders.iter().map(|r| ("RiderJson", v(&RiderJson::from(r)))));
        out.extend(w.events.iter().map(|e| ("EventJson", v(&EventJson::from(e)))));
        out.extend(w.events.iter().map(|e| ("CloudEvent", v(&CloudEvent::from(e)))));
        out
    }

    /// `serde_json::to_value` behind a trait object, so the list above can
    /// mix types.
    mod erased {
        pub trait Json {
            fn value(&self) -> serde_json::Value;
        }
        impl<T: serde::Serialize> Json for T {
            fn value(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap()
            }
        }
    }

    #[test]
    fn what_serde_writes_is_valid_against_the_generated_schemas() {
        let w = world();
        // The world has every part of a view, and both kinds of event.
        let d = &w.delivered;
        assert!(d.payment.as_ref().is_some_and(|p| p.card.is_some()), "{d:?}");
        assert!(d.kitchen.is_some() && d.review.is_some() && d.timeline.len() > 5, "{d:?}");
        assert!(d.delivery.as_ref().is_some_and(|d| d.rider.is_some() && d.charge.is_some()), "{d:?}");
        assert!(w.cancelled.reason.is_some() && w.unpaid.payment.is_none());
        assert!(w.stores.iter().any(|s| s.average_score().is_some()) && w.stores.iter().any(|s| s.review_count == 0));
        assert!(
            w.events.iter().any(|e| e.event.order_id().is_none())
                && w.events.iter().any(|e| e.event.order_id().is_some())
        );

        let mut components = components();
        strict(&mut components);
        let wrong: Vec<String> =
            instances(&w).iter().flat_map(|(name, value)| errors(&components, name, value)).collect();
        assert!(wrong.is_empty(), "serde writes what the schemas do not allow:\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_strict_schemas_refuse_what_serde_does_not_write() {
        let w = world();
        let mut components = components();
        strict(&mut components);
        let view = serde_json::to_value(&w.delivered).unwrap();
        let with = |change: &dyn Fn(&mut Value)| {
            let mut v = view.clone();
            change(&mut v);
            errors(&components, "OrderView", &v)
        };
        assert!(with(&|_| {}).is_empty());
        assert!(!with(&|v| v["extra"] = json!(1)).is_empty(), "a key the schema does not name");
        assert!(!with(&|v| v["payment"]["extra"] = json!(1)).is_empty(), "a nested key the schema does not name");
        assert!(!with(&|v| drop(v.as_object_mut().unwrap().remove("reason"))).is_empty(), "a null key left out");
        assert!(!with(&|v| v["status"] = json!("PAID")).is_empty(), "a status serde does not write");
        assert!(!with(&|v| v["timeline"][0]["type"] = json!("order_placed")).is_empty(), "an unknown event type");
        assert!(!with(&|v| v["placed_at"] = json!("yesterday")).is_empty(), "a time that is no date-time");
        assert!(with(&|v| v["review"] = json!(null)).is_empty(), "an absent review is null");
        let event = serde_json::to_value(EventJson::from(&w.events[0])).unwrap();
        let mut not_object = event.clone();
        not_object["data"] = json!([1]);
        assert!(!errors(&components, "EventJson", &not_object).is_empty(), "data is an object");
        let mut more = event;
        more["data"]["anything"] = json!({ "at": "all" });
        assert!(errors(&components, "EventJson", &more).is_empty(), "data takes any field");
    }

    /// Every field serde always writes is required, and every one it may
    /// leave out (`skip_serializing_if`) is not: the required keys of each
    /// schema are the keys of a full instance, but for those.
    #[test]
    fn required_is_what_serde_always_writes() {
        let w = world();
        let components = components();
        let d = &w.delivered;
        let delivery = d.delivery.clone().unwrap();
        let full: Vec<(&str, Value, &[&str])> = vec![
            ("OrderView", serde_json::to_value(d).unwrap(), &[]),
            ("PaymentView", serde_json::to_value(d.payment.clone().unwrap()).unwrap(), &[]),
            ("KitchenView", serde_json::to_value(d.kitchen.clone().unwrap()).unwrap(), &[]),
            ("DeliveryView", serde_json::to_value(&delivery).unwrap(), &[]),
            ("ChargeView", serde_json::to_value(delivery.charge.unwrap()).unwrap(), &[]),
            ("ReviewView", serde_json::to_value(d.review.clone().unwrap()).unwrap(), &[]),
            ("TimelineEntry", serde_json::to_value(&d.timeline[0]).unwrap(), &[]),
            ("OrderItem", serde_json::to_value(&d.items[0]).unwrap(), &[]),
            ("StoreJson", serde_json::to_value(StoreJson::from(&w.stores[0])).unwrap(), &[]),
            ("MenuJson", serde_json::to_value(MenuJson::from(&w.menus[0])).unwrap(), &[]),
            ("RiderJson", serde_json::to_value(RiderJson::from(&w.riders[0])).unwrap(), &[]),
            ("ReviewJson", serde_json::to_value(ReviewJson::from(&w.review)).unwrap(), &[]),
            ("EventJson", serde_json::to_value(EventJson::from(&w.events[0])).unwrap(), &[]),
            ("CloudEvent", serde_json::to_value(CloudEvent::from(w.events.last().unwrap())).unwrap(), &["subject"]),
            ("StoreList", json!({ "stores": [] }), &[]),
            ("MenuList", json!({ "menus": [] }), &[]),
            ("RiderList", json!({ "riders": [] }), &[]),
            ("OrderList", json!({ "orders": [] }), &[]),
            ("EventList", json!({ "events": [] }), &[]),
            ("CloudEventList", json!({ "events": [] }), &[]),
        ];
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        let set = |names: &[String]| names.iter().cloned().collect::<BTreeSet<_>>();
        for (name, value, optional) in &full {
            let schema = &components[*name];
            let properties: Vec<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
            assert_eq!(properties, keys(value), "{name}: the schema's properties, in serde's order");
            let required: Vec<String> = schema["required"]
                .as_array()
                .map_or(vec![], |r| r.iter().map(|k| k.as_str().unwrap().into()).collect());
            let expected: Vec<String> = keys(value).into_iter().filter(|k| !optional.contains(&k.as_str())).collect();
            assert_eq!(set(&required), set(&expected), "{name}: required");
        }
        // Every object schema of the contract was looked at.
        let named: BTreeSet<&str> = full.iter().map(|(name, ..)| *name).collect();
        for (name, schema) in components.as_object().unwrap() {
            assert!(
                named.contains(name.as_str()) || schema.get("enum").is_some(),
                "{name} is neither checked above nor a string enum"
            );
        }
    }

    /// A status or event type's schema is a string whose `enum` is every
    /// name serde writes, in `ALL`'s order.
    #[test]
    fn name_enums_list_every_name() {
        fn names<T: PartialSchema + ToSchema>(all: &[&str]) {
            let schema = serde_json::to_value(T::schema()).unwrap();
            assert_eq!(schema["type"], "string", "{}", T::name());
            assert_eq!(schema["enum"], json!(all), "{}", T::name());
        }
        names::<OrderStatus>(&OrderStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        names::<PaymentStatus>(&PaymentStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        names::<KitchenStatus>(&KitchenStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        names::<DeliveryStatus>(&DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        names::<ChargeStatus>(&ChargeStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        names::<EventType>(&EventType::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        assert!(EventType::ALL.iter().all(|t| serde_json::to_value(t).unwrap() == json!(t.as_str())));
        assert!(OrderStatus::ALL.iter().all(|s| serde_json::to_value(s).unwrap() == json!(s.as_str())));
        let components = components();
        for name in ["OrderStatus", "PaymentStatus", "KitchenStatus", "DeliveryStatus", "ChargeStatus", "EventType"] {
            assert!(components.get(name).is_some(), "{name} is a component the others refer to");
        }
    }
}
