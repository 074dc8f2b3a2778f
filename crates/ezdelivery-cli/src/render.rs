//! How results look: SPEC.md's JSON shapes for `--json`, and tables and
//! text for people.

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use ezdelivery_core::app::breakers::BreakerStatus;
use ezdelivery_core::app::messages::won;
use ezdelivery_core::app::storage::StoredEvent;
use ezdelivery_core::domain::{Menu, Rider, Store};
use ezdelivery_core::OrderView;
use serde_json::{json, Value};

/// What a command prints: one JSON object for `--json`, text for people.
pub struct Output {
    /// The `--json` object.
    pub json: Value,
    /// The text for people.
    pub human: String,
}

impl Output {
    /// An output from both forms.
    pub fn new(json: Value, human: impl Into<String>) -> Output {
        Output { json, human: human.into() }
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_header(header);
    t
}

fn right(text: impl ToString) -> Cell {
    Cell::new(text.to_string()).set_alignment(CellAlignment::Right)
}

/// A store as JSON (SPEC: the created record with its `id`).
pub fn store_json(s: &Store) -> Value {
    json!({
        "id": s.id, "name": s.name, "owner": s.owner, "address": s.address, "open": s.open,
        "delivery_charge": s.delivery_charge, "review_count": s.review_count, "average_score": s.average_score(),
    })
}

/// One store for people.
pub fn store_text(verb: &str, s: &Store) -> String {
    let state = if s.open { "open" } else { "closed" };
    format!(
        "store {} {verb}: {} (owner {}, {state}, delivery charge {}원)",
        s.id,
        s.name,
        s.owner,
        won(s.delivery_charge)
    )
}

/// `store list`
pub fn stores(stores: &[Store]) -> Output {
    let mut t = table(&["id", "name", "owner", "open", "reviews", "avg score", "delivery charge"]);
    for s in stores {
        let avg = s.average_score().map_or("-".to_string(), |a| format!("{a:.1}"));
        t.add_row(vec![
            right(s.id),
            Cell::new(&s.name),
            Cell::new(&s.owner),
            Cell::new(if s.open { "open" } else { "closed" }),
            right(s.review_count),
            right(avg),
            right(format!("{}원", won(s.delivery_charge))),
        ]);
    }
    Output::new(json!({ "stores": stores.iter().map(store_json).collect::<Vec<_>>() }), t.to_string())
}

/// One menu for people.
pub fn menu_text(verb: &str, m: &Menu) -> String {
    let state = if m.available { "available" } else { "sold out" };
    format!("menu {} {verb}: {} {}원 in store {} ({state})", m.id, m.name, won(m.price), m.store_id)
}

/// A menu as JSON.
pub fn menu_json(m: &Menu) -> Value {
    json!({ "id": m.id, "store_id": m.store_id, "name": m.name, "price": m.price, "available": m.available })
}

/// `menu list`
pub fn menus(menus: &[Menu]) -> Output {
    let mut t = table(&["id", "store", "name", "price", "available"]);
    for m in menus {
        t.add_row(vec![
            right(m.id),
            right(m.store_id),
            Cell::new(&m.name),
            right(format!("{}원", won(m.price))),
            Cell::new(if m.available { "yes" } else { "sold out" }),
        ]);
    }
    Output::new(json!({ "menus": menus.iter().map(menu_json).collect::<Vec<_>>() }), t.to_string())
}

/// A rider as JSON.
pub fn rider_json(r: &Rider) -> Value {
    json!({ "id": r.id, "name": r.name })
}

/// `rider list`
pub fn riders(riders: &[Rider]) -> Output {
    let mut t = table(&["id", "name"]);
    for r in riders {
        t.add_row(vec![right(r.id), Cell::new(&r.name)]);
    }
    Output::new(json!({ "riders": riders.iter().map(rider_json).collect::<Vec<_>>() }), t.to_string())
}

/// An order view as JSON: exactly the view's serde form (SPEC's shape).
pub fn view_json(view: &OrderView) -> Value {
    serde_json::to_value(view).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// The mypage view of one order for people: summary, items, and timeline.
pub fn view_text(v: &OrderView) -> String {
    let mut out =
        format!("order {} · {} (store {}) · {} · {}\n", v.order_id, v.store, v.store_id, v.customer, v.status);
    let mut items = table(&["menu", "name", "unit price", "qty", "amount"]);
    for i in &v.items {
        items.add_row(vec![
            right(i.menu_id),
            Cell::new(&i.name),
            right(format!("{}원", won(i.unit_price))),
            right(i.qty),
            right(format!("{}원", won(i.unit_price * i64::from(i.qty)))),
        ]);
    }
    out.push_str(&items.to_string());
    out.push_str(&format!("\ntotal     {}원\n", won(v.total)));
    let payment = v.payment.as_ref().map_or("-".into(), |p| format!("{} ({}원)", p.status, won(p.amount)));
    out.push_str(&format!("payment   {payment}\n"));
    out.push_str(&format!("kitchen   {}\n", v.kitchen.as_ref().map_or("-".into(), |k| k.status.to_string())));
    let delivery = v.delivery.as_ref().map_or("-".into(), |d| {
        let rider = d.rider.as_deref().unwrap_or("no rider yet");
        let charge =
            d.charge.as_ref().map_or("no charge yet".into(), |c| format!("charge {} ({}원)", c.status, won(c.amount)));
        format!("{} · rider {rider} · {charge}", d.status)
    });
    out.push_str(&format!("delivery  {delivery}\n"));
    if let Some(r) = &v.review {
        out.push_str(&format!("review    {}/5 {}\n", r.score, r.text));
    }
    out.push_str("timeline\n");
    for t in &v.timeline {
        out.push_str(&format!("  {:>5}  {}  {}\n", t.seq, t.at.format("%Y-%m-%d %H:%M:%S"), t.kind));
    }
    out
}

/// Several orders (`status --customer`, `store orders`) as one table.
pub fn views(key: &str, views: &[OrderView]) -> Output {
    let mut t = table(&["order", "store", "customer", "status", "total", "payment", "kitchen", "delivery", "updated"]);
    for v in views {
        t.add_row(vec![
            right(v.order_id),
            Cell::new(&v.store),
            Cell::new(&v.customer),
            Cell::new(v.status),
            right(format!("{}원", won(v.total))),
            Cell::new(v.payment.as_ref().map_or("-".into(), |p| p.status.to_string())),
            Cell::new(v.kitchen.as_ref().map_or("-".into(), |k| k.status.to_string())),
            Cell::new(v.delivery.as_ref().map_or("-".into(), |d| d.status.to_string())),
            Cell::new(v.updated_at.format("%Y-%m-%d %H:%M:%S").to_string()),
        ]);
    }
    let human = if views.is_empty() { "no orders".to_string() } else { t.to_string() };
    Output::new(json!({ key: views.iter().map(view_json).collect::<Vec<_>>() }), human)
}

/// One event as its JSON line: `{"seq","id","type","order_id","at","data"}`.
pub fn event_json(e: &StoredEvent) -> Value {
    json!({
        "seq": e.seq, "id": e.id, "type": e.event.type_name(), "order_id": e.event.order_id(),
        "at": e.at, "data": e.event.data(),
    })
}

/// Events as a table for people.
pub fn events_table(events: &[StoredEvent]) -> String {
    let mut t = table(&["seq", "at", "type", "order", "data"]);
    for e in events {
        t.add_row(vec![
            right(e.seq),
            Cell::new(e.at.format("%Y-%m-%d %H:%M:%S").to_string()),
            Cell::new(e.event.type_name()),
            right(e.event.order_id().map_or("-".into(), |o| o.to_string())),
            Cell::new(e.event.data().to_string()),
        ]);
    }
    t.to_string()
}

/// One event as CloudEvents 1.0 JSON (structured mode): `type` is
/// `ezdelivery.<aggregate>.<what happened>`, `subject` the order id.
pub fn cloud_event(e: &StoredEvent) -> Value {
    let mut ce = json!({
        "specversion": "1.0",
        "id": e.id,
        "source": "/ezdelivery",
        "type": format!("ezdelivery.{}", e.event.cloud_type()),
        "time": e.at,
        "datacontenttype": "application/json",
        "data": e.event.data(),
    });
    if let Some(order) = e.event.order_id() {
        ce["subject"] = json!(order.to_string());
    }
    ce
}

/// `breaker status`
pub fn breakers(breakers: &[BreakerStatus]) -> Output {
    let mut t = table(&["name", "state", "failures", "opened at", "retries at"]);
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
    for b in breakers {
        t.add_row(vec![
            Cell::new(&b.name),
            Cell::new(&b.state),
            right(b.failures),
            Cell::new(time(b.opened_at)),
            Cell::new(time(b.retry_at)),
        ]);
    }
    Output::new(json!({ "breakers": breakers }), t.to_string())
}
