//! How results look: the JSON shapes of docs/reference.md for `--json`, and tables and
//! text for people.

use comfy_table::{presets, Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};
use ezdelivery_core::app::breakers::BreakerStatus;
use ezdelivery_core::app::copy::CopyReport;
use ezdelivery_core::app::messages::won;
use ezdelivery_core::app::projector::Progress;
use ezdelivery_core::app::relay::{Attention, RelayReport};
use ezdelivery_core::app::simulate::SimReport;
use ezdelivery_core::app::watch::WatchReport;
use ezdelivery_core::domain::{ChargeStatus, EventType, Menu, PaymentStatus, Review, Rider, Store};
use ezdelivery_core::json::{
    CloudEvent, CloudEventList, EventJson, EventList, MenuJson, MenuList, OrderList, ReviewJson, RiderJson, RiderList,
    StoreJson, StoreList,
};
use ezdelivery_core::ports::outbox::QueuedMessage;
use ezdelivery_core::ports::storage::{QueueStatus, StoredEvent};
use ezdelivery_core::ports::{Clock, SystemClock};
use ezdelivery_core::OrderView;
use serde::Serialize;
use serde_json::{json, Value};

use crate::args::EventFormat;
use crate::style::{self, Tone};

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

/// A table of `rows` under `header`, fitted to a narrow terminal: the
/// columns of free text (names, addresses, errors) that `text` lists wrap,
/// every other column's values (ids, statuses, amounts, times) stay whole,
/// and a header wraps only between its words.
fn table(header: &[&str], text: &[usize], rows: impl IntoIterator<Item = Vec<Cell>>) -> Table {
    let mut t = Table::new();
    // Fitted to the terminal when its width is known; a terminal that says
    // 0 columns (a pty nobody sized, as `script` makes) is not one column wide.
    let fit = if terminal_width().is_some() { ContentArrangement::Dynamic } else { ContentArrangement::Disabled };
    t.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(fit);
    for row in rows {
        t.add_row(row);
    }
    // the values' widths, before the header counts in them
    let values = t.column_max_content_widths();
    t.set_header(header);
    for (i, column) in t.column_iter_mut().enumerate() {
        let value = values.get(i).copied().unwrap_or(0);
        // A column of text gets a few characters (two cells each, for
        // Korean) but is not padded wider than its text: a column of one
        // cell cannot hold a wide character and broke the borders.
        let value = if text.contains(&i) { value.min(MIN_TEXT_CELLS) } else { value };
        // Headers are ours, in ASCII: a character is a cell.
        let word = header.get(i).and_then(|h| h.split(' ').map(str::len).max()).unwrap_or(0);
        let least = value.max(u16::try_from(word).unwrap_or(u16::MAX));
        column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(least + column.padding_width())));
    }
    t
}

/// The fewest cells a wrapped column of text is given on a narrow terminal.
const MIN_TEXT_CELLS: u16 = 8;

/// The terminal's width in columns, when standard output is one that knows it.
fn terminal_width() -> Option<usize> {
    Table::new().width().map(usize::from).filter(|&w| w > 0)
}

/// A list for people: its table, or one line `no {what}` when it is empty,
/// the same for every list.
pub fn or_none<T>(t: &Table, items: &[T], what: &str) -> String {
    if items.is_empty() {
        format!("no {what}")
    } else {
        t.to_string()
    }
}

fn right(text: impl ToString) -> Cell {
    Cell::new(text.to_string()).set_alignment(CellAlignment::Right)
}

/// A shape of the JSON contract (`ezdelivery_core::json`) as a JSON value:
/// the one definition of what `--json` prints.
fn to_json(shape: impl Serialize) -> Value {
    serde_json::to_value(shape).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// One store just registered, opened or closed: `verb` says which.
pub fn store(verb: &str, s: &Store) -> Output {
    Output::new(to_json(StoreJson::from(s)), store_text(verb, s))
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
    let rows = stores.iter().map(|s| {
        let avg = s.average_score().map_or("-".to_string(), |a| format!("{a:.1}"));
        vec![
            right(s.id),
            Cell::new(&s.name),
            Cell::new(&s.owner),
            if s.open { style::cell("open", Tone::Good) } else { style::cell("closed", Tone::Dim) },
            right(s.review_count),
            right(avg),
            right(format!("{}원", won(s.delivery_charge))),
        ]
    });
    let t = table(&["id", "name", "owner", "open", "reviews", "avg score", "delivery charge"], &[1, 2], rows);
    Output::new(to_json(StoreList::from(stores)), or_none(&t, stores, "stores"))
}

/// One menu for people: `menu 2 added: 후라이드 18,000원 in store 1
/// (available)`, `menu 2 is sold out: …`, `menu 2 is available again: …`
/// (the state in parentheses only when `verb` does not say it).
pub fn menu_text(verb: &str, m: &Menu) -> String {
    let state = if m.available { "available" } else { "sold out" };
    let text = format!("menu {} {verb}: {} {}원 in store {}", m.id, m.name, won(m.price), m.store_id);
    if verb.contains(state) {
        text
    } else {
        format!("{text} ({state})")
    }
}

/// One menu just added, sold out or available again: `verb` says which.
pub fn menu(verb: &str, m: &Menu) -> Output {
    Output::new(to_json(MenuJson::from(m)), menu_text(verb, m))
}

/// `menu list`
pub fn menus(menus: &[Menu]) -> Output {
    let rows = menus.iter().map(|m| {
        vec![
            right(m.id),
            right(m.store_id),
            Cell::new(&m.name),
            right(format!("{}원", won(m.price))),
            if m.available { Cell::new("yes") } else { style::cell("sold out", Tone::Bad) },
        ]
    });
    let t = table(&["id", "store", "name", "price", "available"], &[2], rows);
    Output::new(to_json(MenuList::from(menus)), or_none(&t, menus, "menus"))
}

/// `rider add`
pub fn rider_added(r: &Rider) -> Output {
    Output::new(to_json(RiderJson::from(r)), format!("rider {} registered: {}", r.id, r.name))
}

/// `rider list`
pub fn riders(riders: &[Rider]) -> Output {
    let t = table(&["id", "name"], &[1], riders.iter().map(|r| vec![right(r.id), Cell::new(&r.name)]));
    Output::new(to_json(RiderList::from(riders)), or_none(&t, riders, "riders"))
}

/// One order, as every command that changes or shows one prints it.
pub fn view(v: &OrderView) -> Output {
    Output::new(view_json(v), view_text(v))
}

/// An order view as JSON: exactly the view's serde form.
pub fn view_json(view: &OrderView) -> Value {
    to_json(view)
}

/// The mypage view of one order for people: the order's progress as a
/// timeline, its items, where payment, kitchen and delivery stand, and
/// every event. Times are UTC.
pub fn view_text(v: &OrderView) -> String {
    let mut out = format!(
        "{} · {} (store {}) · {} · {}\n",
        style::paint(&format!("order {}", v.order_id), Tone::Strong),
        v.store,
        v.store_id,
        v.customer,
        style::status(v.status.as_str())
    );
    out.push_str(&progress(v));
    // One line each: a line break in the text becomes a space.
    let one_line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(reason) = &v.reason {
        out.push_str(&format!("reason    {}\n", one_line(reason)));
    }
    let address = one_line(&v.address);
    out.push_str(&format!("address   {}\n", if address.is_empty() { "-" } else { &address }));
    let rows = v.items.iter().map(|i| {
        vec![
            right(i.menu_id),
            Cell::new(&i.name),
            right(format!("{}원", won(i.unit_price))),
            right(i.qty),
            right(format!("{}원", won(i.unit_price * i64::from(i.qty)))),
        ]
    });
    let items = table(&["menu", "name", "unit price", "qty", "amount"], &[1], rows);
    out.push_str(&items.to_string());
    out.push_str(&format!("\ntotal     {}원\n", won(v.total)));
    let payment = v.payment.as_ref().map_or("-".into(), |p| {
        let card = p.card.as_deref().map(|c| format!(", card {c}")).unwrap_or_default();
        format!("{} ({}원{card})", style::status(p.status.as_str()), won(p.amount))
    });
    out.push_str(&format!("payment   {payment}\n"));
    let kitchen = v.kitchen.as_ref().map_or("-".into(), |k| style::status(k.status.as_str()));
    out.push_str(&format!("kitchen   {kitchen}\n"));
    let delivery = v.delivery.as_ref().map_or("-".into(), |d| {
        let rider = d.rider.as_deref().map_or("no rider yet".into(), |r| format!("rider {r}"));
        let charge = d.charge.as_ref().map_or("no charge yet".into(), |c| {
            format!("charge {} ({}원)", style::status(c.status.as_str()), won(c.amount))
        });
        format!("{} · {rider} · {charge}", style::status(d.status.as_str()))
    });
    out.push_str(&format!("delivery  {delivery}\n"));
    if let Some(r) = &v.review {
        out.push_str(&format!("review    {}/5 {}\n", r.score, r.text));
    }
    out.push_str(&format!("events    {}\n", style::paint("(UTC)", Tone::Dim)));
    for t in &v.timeline {
        out.push_str(&format!("  {:>5}  {}  {}\n", t.seq, t.at.format("%Y-%m-%d %H:%M:%S"), t.kind));
    }
    out
}

/// The steps of an order that goes well, each with the event that reaches it.
const STEPS: [(&str, EventType); 6] = [
    ("placed", EventType::OrderPlaced),
    ("paid", EventType::PaymentApproved),
    ("cooking", EventType::CookingStarted),
    ("cooked", EventType::FoodCooked),
    ("delivering", EventType::DeliveryStarted),
    ("delivered", EventType::DeliveryCompleted),
];

/// The progress line: `placed 12:00:01 → paid 12:00:02 → cooking · → …`,
/// steps not reached yet as `·` (dim on a terminal). A cancelled or
/// rejected order ends in `✗ cancelled 12:03:00`, followed by what became
/// of the money. Wrapped at the arrows to the terminal's width.
pub fn progress(v: &OrderView) -> String {
    let stop = v.timeline.iter().find(|t| matches!(t.kind, EventType::OrderCancelled | EventType::OrderRejected));
    let before_stop = |seq: i64| stop.is_none_or(|s| seq < s.seq);
    let placed_day = v.placed_at.date_naive();
    let time = |at: chrono::DateTime<chrono::Utc>| {
        if at.date_naive() == placed_day {
            at.format("%H:%M:%S").to_string()
        } else {
            at.format("%m-%d %H:%M:%S").to_string()
        }
    };
    // (plain text for measuring, painted text for showing)
    let mut parts: Vec<(String, String)> = Vec::new();
    let reached: Vec<Option<&ezdelivery_core::domain::view::TimelineEntry>> =
        STEPS.iter().map(|(_, kind)| v.timeline.iter().find(|t| t.kind == *kind && before_stop(t.seq))).collect();
    let last_reached = reached.iter().rposition(Option::is_some);
    for (i, ((name, _), entry)) in STEPS.iter().zip(&reached).enumerate() {
        match entry {
            Some(t) => {
                let plain = format!("{name} {}", time(t.at));
                let tone = if Some(i) == last_reached && stop.is_none() { Tone::Strong } else { Tone::Good };
                parts.push((plain.clone(), style::paint(&plain, tone)));
            }
            // A stopped order shows no steps it will never reach.
            None if stop.is_some() => {}
            None => {
                let plain = format!("{name} ·");
                parts.push((plain.clone(), style::paint(&plain, Tone::Dim)));
            }
        }
    }
    let mut ending = None;
    if let Some(s) = stop {
        let what = if s.kind == EventType::OrderCancelled { "cancelled" } else { "rejected" };
        let plain = format!("✗ {what} {}", time(s.at));
        ending = Some((plain.clone(), style::paint(&plain, Tone::Bad)));
    }
    let label = "progress  ";
    let width = terminal_width();
    let mut out = String::from(label);
    let mut column = label.chars().count();
    for (i, (plain, painted)) in parts.iter().enumerate() {
        let joint = if i == 0 { "" } else { " → " };
        let need = joint.chars().count() + plain.chars().count();
        if i > 0 && width.is_some_and(|w| column + need > w) {
            out.push('\n');
            out.push_str(&" ".repeat(label.len()));
            out.push_str("→ ");
            column = label.len() + 2;
        } else {
            out.push_str(joint);
            column += joint.chars().count();
        }
        out.push_str(painted);
        column += plain.chars().count();
    }
    if let Some((plain, painted)) = ending {
        if width.is_some_and(|w| column + 1 + plain.chars().count() > w) {
            out.push('\n');
            out.push_str(&" ".repeat(label.len()));
        } else {
            out.push(' ');
        }
        out.push_str(&painted);
        out.push('\n');
        out.push_str(&" ".repeat(label.len()));
        out.push_str(&money_after_stop(v));
    }
    out.push('\n');
    out
}

/// What became of the money of a cancelled or rejected order.
fn money_after_stop(v: &OrderView) -> String {
    let payment = match &v.payment {
        None => "nothing was paid".to_string(),
        Some(p) => match p.status {
            PaymentStatus::Refunded => format!("the payment of {}원 was refunded", won(p.amount)),
            PaymentStatus::RefundPending => {
                format!("the refund of {}원 is queued; `ezdelivery relay` retries it", won(p.amount))
            }
            PaymentStatus::Voided => "the queued payment was dropped; nothing was charged".to_string(),
            PaymentStatus::Declined => "the payment was declined; nothing was charged".to_string(),
            PaymentStatus::Pending => format!(
                "the payment of {}원 may have reached the gateway; `ezdelivery relay` asks again and refunds it if it went through",
                won(p.amount)
            ),
            PaymentStatus::NeedsAttention => {
                format!("the payment of {}원 needs attention: `ezdelivery relay --attention`", won(p.amount))
            }
            // Refunded or queued for a refund as the order stopped: not left approved.
            PaymentStatus::Approved => format!("payment {}", p.status),
        },
    };
    let charge = v.delivery.as_ref().and_then(|d| d.charge.as_ref()).map(|c| match c.status {
        ChargeStatus::Refunded => format!("; the rider's charge of {}원 was taken back", won(c.amount)),
        ChargeStatus::RefundPending => format!("; taking back the rider's charge of {}원 is queued", won(c.amount)),
        ChargeStatus::Pending | ChargeStatus::Paid | ChargeStatus::Voided | ChargeStatus::NeedsAttention => {
            String::new()
        }
    });
    format!("{payment}{}", charge.unwrap_or_default())
}

/// `review`
pub fn review(r: &Review) -> Output {
    Output::new(to_json(ReviewJson::from(r)), format!("order {} reviewed: {}/5 {}", r.order_id, r.score, r.text))
}

/// `relay`: what this run did (and how many dead messages were revived,
/// how many payments and charges needing attention queued again), and
/// what still waits.
pub fn relay(r: &RelayReport, waiting: &QueueStatus, revived: usize, requeued: usize) -> Output {
    let json = relay_json(serde_json::to_value(r).unwrap_or_default(), waiting, revived, requeued);
    Output::new(json, relay_text(r, waiting, revived, requeued))
}

/// `relay --watch`, once stopped: how many passes it ran, what they did
/// all together (the counts of `relay`), how many delivered messages it
/// purged, and what still waits.
pub fn relay_watch(w: &WatchReport, waiting: &QueueStatus, revived: usize, requeued: usize) -> Output {
    let json = relay_json(serde_json::to_value(w).unwrap_or_default(), waiting, revived, requeued);
    let passes = if w.passes == 1 { "1 pass".to_string() } else { format!("{} passes", w.passes) };
    let human = format!(
        "relay --watch stopped after {passes}; {} delivered messages purged\n{}",
        w.messages_purged,
        relay_text(&w.totals, waiting, revived, requeued)
    );
    Output::new(json, human)
}

/// One line of `relay --watch` for a pass that made a gateway call or
/// sent a message: when (UTC, to the second), and the pass's counts.
pub fn relay_pass(r: &RelayReport, at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{} {}", at.format("%Y-%m-%dT%H:%M:%SZ"), relay_counts(r))
}

/// `relay`'s JSON counts with the revived and requeued, and what still waits.
fn relay_json(mut json: Value, waiting: &QueueStatus, revived: usize, requeued: usize) -> Value {
    json["revived"] = json!(revived);
    json["requeued"] = json!(requeued);
    json["waiting"] = json!(waiting.calls() + waiting.messages);
    json["waiting_calls"] = json!(waiting.calls());
    json["waiting_messages"] = json!(waiting.messages);
    json["waiting_other_gateways"] = json!(waiting.elsewhere);
    json["next_due"] = json!(waiting.next_due.map(utc_text));
    json
}

/// `relay --dead`: the messages no channel took, and why.
pub fn dead_messages(dead: &[QueuedMessage]) -> Output {
    let list: Vec<_> = dead
        .iter()
        .map(|q| {
            json!({ "id": q.message.id, "channel": q.delivery.channel, "order_id": q.message.order_id,
                    "recipient": q.message.recipient, "tries": q.delivery.tries,
                    "last_error": q.delivery.last_error, "text": q.message.text })
        })
        .collect();
    let human = if dead.is_empty() {
        "no dead messages".to_string()
    } else {
        dead.iter()
            .map(|q| {
                format!(
                    "{} [{}] order {} → {}: {} (after {} tries: {})",
                    q.message.id,
                    q.delivery.channel,
                    q.message.order_id,
                    q.message.recipient,
                    q.message.text,
                    q.delivery.tries,
                    q.delivery.last_error.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n(`ezdelivery relay --retry-dead` queues them again, once their channel works)"
    };
    Output::new(json!({ "dead": list }), human)
}

/// `relay`'s summary: what this run did, then what still waits and when
/// the next of it is due.
pub fn relay_text(r: &RelayReport, waiting: &QueueStatus, revived: usize, requeued: usize) -> String {
    let mut text = relay_counts(r);
    if revived > 0 {
        text.push_str(&format!(" ({revived} dead messages revived)"));
    }
    if requeued > 0 {
        text.push_str(&format!(" ({requeued} needing attention queued again)"));
    }
    text.push('\n');
    text.push_str(&waiting_text(waiting));
    text
}

/// `relay: 1 payments approved, … 0 dead`: what a relay did, on one line.
fn relay_counts(r: &RelayReport) -> String {
    let mut text = format!(
        "relay: {} payments approved, {} declined, {} refunds, {} charges paid, {} taken back, {} to retry",
        r.payments_approved,
        r.payments_declined,
        r.refunds_confirmed,
        r.charges_paid,
        r.charges_refunded,
        r.still_queued
    );
    if r.needs_attention > 0 {
        text.push_str(&format!(", {} need attention (`ezdelivery relay --attention`)", r.needs_attention));
    }
    text.push_str(&format!(
        "; {} messages delivered, {} to retry, {} dead",
        r.messages_delivered, r.messages_failed, r.messages_dead
    ));
    if r.messages_skipped > 0 {
        text.push_str(&format!(
            ", {} not tried (their channel failed earlier in the run, or its breaker is open)",
            r.messages_skipped
        ));
    }
    text
}

/// `waiting: 1 gateway call (payments and refunds 1, delivery charges 0),
/// 2 messages; the next is due at 2026-11-24T17:36:00Z (…)`, or
/// `nothing waits`; and the calls that wait for another gateway, if any.
pub fn waiting_text(w: &QueueStatus) -> String {
    let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let here = waiting_here(w, count);
    if w.elsewhere == 0 {
        return here;
    }
    let here = if w.calls() + w.messages == 0 { "nothing waits for this config's gateways".into() } else { here };
    format!(
        "{here}; {} for another gateway than this config's: a relay with the config that reaches it settles {}",
        count(w.elsewhere, "gateway call waits", "gateway calls wait"),
        if w.elsewhere == 1 { "it" } else { "them" }
    )
}

/// [`waiting_text`] of what waits for this config's gateways and channels.
fn waiting_here(w: &QueueStatus, count: impl Fn(usize, &str, &str) -> String) -> String {
    let Some(due) = w.next_due.filter(|_| w.calls() + w.messages > 0) else {
        return "nothing waits".into();
    };
    let when = if due <= SystemClock.now() {
        "the next is due now".to_string()
    } else {
        format!("the next is due at {} (`ezdelivery relay` then)", utc_text(due))
    };
    format!(
        "waiting: {} (payments and refunds {}, delivery charges {}), {}; {when}",
        count(w.calls(), "gateway call", "gateway calls"),
        w.payments,
        w.charges,
        count(w.messages, "message", "messages"),
    )
}

/// A time as RFC 3339 in UTC to the second (`2026-11-24T17:36:00Z`),
/// rounded up: a time something is due is never shown before it.
pub fn utc_text(t: chrono::DateTime<chrono::Utc>) -> String {
    let up = if t.timestamp_subsec_nanos() > 0 { t.checked_add_signed(chrono::TimeDelta::seconds(1)) } else { None };
    up.unwrap_or(t).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `relay --attention`: the payments and charges that need a person.
pub fn attention(items: &[Attention]) -> Output {
    let json = json!({ "attention": items });
    if items.is_empty() {
        return Output::new(json, "no payments or charges need attention");
    }
    let rows = items.iter().map(|a| {
        vec![
            Cell::new(a.kind),
            right(a.order_id),
            right(a.id),
            right(format!("{}원", won(a.amount))),
            Cell::new(a.card.iter().chain(&a.rider).flatten().next().map_or("-", String::as_str)),
            Cell::new(a.gateway.as_deref().unwrap_or("-")),
            Cell::new(&a.idempotency_key),
            right(a.tries),
            Cell::new(a.last_error.as_deref().unwrap_or("-")),
        ]
    });
    let header = ["kind", "order", "id", "amount", "card / rider", "gateway", "idempotency key", "tries", "last error"];
    let t = table(&header, &[4, 5, 6, 8], rows);
    let next = "(`ezdelivery relay --retry-attention` tries them again under their own keys once the gateway \
                answers; or look each key up at the gateway and settle it there)";
    Output::new(json, format!("{t}\n{next}"))
}

/// Several orders (`status --customer`, `store orders`) as one table, and
/// as `{"orders":[…]}`. On a terminal too narrow for every column, the
/// kitchen and the time of the last change are left out (`status ORDER` has
/// them).
pub fn views(views: &[OrderView]) -> Output {
    const HEADER: [&str; 9] =
        ["order", "store", "customer", "status", "total", "payment", "kitchen", "delivery", "updated (UTC)"];
    let rows: Vec<[Cell; 9]> = views
        .iter()
        .map(|v| {
            [
                right(v.order_id),
                Cell::new(&v.store),
                Cell::new(&v.customer),
                style::status_cell(v.status.as_str()),
                right(format!("{}원", won(v.total))),
                style::status_cell(v.payment.as_ref().map_or("-", |p| p.status.as_str())),
                style::status_cell(v.kitchen.as_ref().map_or("-", |k| k.status.as_str())),
                style::status_cell(v.delivery.as_ref().map_or("-", |d| d.status.as_str())),
                Cell::new(v.updated_at.format("%Y-%m-%d %H:%M:%S").to_string()),
            ]
        })
        .collect();
    let build = |columns: &[usize]| {
        let header: Vec<&str> = columns.iter().map(|&i| HEADER[i]).collect();
        // the store's and the customer's names wrap
        let text: Vec<usize> = (0..columns.len()).filter(|&c| [1, 2].contains(&columns[c])).collect();
        table(&header, &text, rows.iter().map(|row| columns.iter().map(|&i| row[i].clone()).collect()))
    };
    let mut t = build(&[0, 1, 2, 3, 4, 5, 6, 7, 8]);
    if terminal_width().is_some_and(|w| natural_width(&t) > w) {
        t = build(&[0, 1, 2, 3, 4, 5, 7]);
    }
    let human = or_none(&t, views, "orders");
    Output::new(to_json(OrderList::from(views)), human)
}

/// How wide `t` is when nothing wraps: its content, one space of padding on
/// each side of every cell, and the borders.
fn natural_width(t: &Table) -> usize {
    t.column_max_content_widths().iter().map(|&w| usize::from(w) + 3).sum::<usize>() + 1
}

/// `events` printed at once: a table for people (`--format table`), or
/// one `--json` object `{"events":[…]}` with the items in `format`.
pub fn events(events: &[StoredEvent], format: EventFormat) -> Output {
    let json = match format {
        EventFormat::Table => return Output::new(json!({}), events_table(events)),
        EventFormat::Json => to_json(EventList::from(events)),
        EventFormat::Cloudevents => to_json(CloudEventList::from(events)),
    };
    Output::new(json, String::new())
}

/// One event as one line in `format` (`events` to a pipe, or `--follow`).
pub fn event_line_in(format: EventFormat, e: &StoredEvent) -> String {
    match format {
        EventFormat::Cloudevents => to_json(CloudEvent::from(e)).to_string(),
        EventFormat::Json => to_json(EventJson::from(e)).to_string(),
        // Following on a terminal: one line per event, as it comes.
        EventFormat::Table => event_line(e),
    }
}

/// Events as a table for people (`at` in UTC).
pub fn events_table(events: &[StoredEvent]) -> String {
    let rows = events.iter().map(|e| {
        vec![
            right(e.seq),
            Cell::new(e.at.format("%Y-%m-%d %H:%M:%S").to_string()),
            Cell::new(e.event.type_name()),
            right(e.event.order_id().map_or("-".into(), |o| o.to_string())),
            Cell::new(e.event.data().to_string()),
        ]
    });
    let t = table(&["seq", "at (UTC)", "type", "order", "data"], &[4], rows);
    or_none(&t, events, "events")
}

/// One event as one line for people (`events --follow` on a terminal).
pub fn event_line(e: &StoredEvent) -> String {
    format!(
        "{:>6}  {}  {:<22}  {}  {}",
        e.seq,
        e.at.format("%Y-%m-%d %H:%M:%S"),
        e.event.type_name(),
        e.event.order_id().map_or("-".into(), |o| format!("order {o}")),
        e.event.data()
    )
}

/// `breaker status`
pub fn breakers(breakers: &[BreakerStatus]) -> Output {
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
    let rows = breakers.iter().map(|b| {
        vec![
            Cell::new(b.name.as_str()),
            style::status_cell(b.state.as_str()),
            right(b.failures),
            Cell::new(time(b.opened_at)),
            Cell::new(time(b.retry_at)),
        ]
    });
    let t = table(&["name", "state", "failures", "opened at (UTC)", "retries at (UTC)"], &[0], rows);
    Output::new(json!({ "breakers": breakers }), t.to_string())
}

/// `breaker reset NAME`
pub fn breaker_reset(b: &BreakerStatus) -> Output {
    Output::new(json!(b), format!("breaker {} is closed", b.name))
}

/// `projection rebuild`
pub fn rebuild(p: &Progress) -> Output {
    let json = json!({ "events": p.events, "applied": p.applied, "checkpoint": p.checkpoint });
    Output::new(
        json,
        format!("mypage rebuilt from {} events ({} applied), checkpoint {}", p.events, p.applied, p.checkpoint),
    )
}

/// `db copy`: the tables with their rows, and what was verified. `from`
/// and `to` as shown to people (a URL's password redacted).
pub fn copy(from: &str, to: &str, r: &CopyReport) -> Output {
    let json = json!({
        "from": from, "to": to, "tables": r.tables, "rows": r.rows(), "events": r.events, "views": r.views,
        "verified": true, "carried_violations": r.carried_violations,
    });
    let t =
        table(&["table", "rows"], &[], r.tables.iter().map(|table| vec![Cell::new(&table.name), right(table.rows)]));
    let mut text = format!("copied {from} → {to}\n{t}\n");
    text.push_str(&format!(
        "verified: {} rows in {} tables, the same in both; {} events identical; {} mypage views equal to a \
         rebuild from the copied log",
        r.rows(),
        r.tables.len(),
        r.events,
        r.views
    ));
    for v in &r.carried_violations {
        text.push_str(&format!("\nnote: carried over from the source as it was: {v}"));
    }
    Output::new(json, text)
}

/// `completions SHELL`: the script, as it is and as `{"script": …}`.
pub fn completions(script: &[u8]) -> Output {
    let script = String::from_utf8_lossy(script);
    Output::new(json!({ "script": script }), script)
}

/// `man`: the page, as it is and as `{"man": …}`.
pub fn man(page: String) -> Output {
    Output::new(json!({ "man": page }), page)
}

/// `simulate`: the report, as JSON and for people.
pub fn simulation(r: &SimReport) -> Output {
    Output::new(simulation_json(r), simulation_text(r))
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A simulation's report as JSON.
fn simulation_json(r: &SimReport) -> serde_json::Value {
    let commands: Vec<_> = r
        .commands
        .iter()
        .map(|c| {
            json!({ "command": c.command, "count": c.count, "p50_ms": ms(c.p50), "p99_ms": ms(c.p99),
                    "max_ms": ms(c.max) })
        })
        .collect();
    let violations: Vec<_> =
        r.violations.iter().map(|v| json!({ "order_id": v.order, "rule": v.rule, "detail": v.detail })).collect();
    json!({
        "orders": r.orders, "delivered": r.delivered, "cancelled": r.cancelled, "queued": r.queued,
        "retried": r.retried, "still_queued": r.still_queued, "seconds": r.elapsed.as_secs_f64(),
        "orders_per_second": r.orders_per_second(), "commands": commands,
        "invariants": { "hold": r.violations.is_empty(), "violations": violations,
                        "check_seconds": r.check_elapsed.as_secs_f64() },
        "seed": r.config.seed,
    })
}

/// A simulation's report for people: the totals, a latency table, the
/// invariants.
fn simulation_text(r: &SimReport) -> String {
    let totals = table(
        &["orders", "orders/s", "delivered", "cancelled", "queued", "retried", "still queued"],
        &[],
        [vec![
            right(r.orders),
            right(format!("{:.0}", r.orders_per_second())),
            right(r.delivered),
            right(r.cancelled),
            right(r.queued),
            right(r.retried),
            right(r.still_queued),
        ]],
    );
    let rows = r.commands.iter().filter(|c| c.count > 0).map(|c| {
        vec![
            Cell::new(c.command),
            right(c.count),
            right(format!("{:.3}", ms(c.p50))),
            right(format!("{:.3}", ms(c.p99))),
            right(format!("{:.3}", ms(c.max))),
        ]
    });
    let latency = table(&["command", "count", "p50 ms", "p99 ms", "max ms"], &[], rows);
    let check = if r.violations.is_empty() {
        format!("invariants: all hold (checked in {:.2} s)", r.check_elapsed.as_secs_f64())
    } else {
        let mut lines = format!("invariants: {} BROKEN", r.violations.len());
        for v in r.violations.iter().take(20) {
            lines.push_str(&format!("\n  {v}"));
        }
        lines
    };
    format!(
        "simulated {} orders in {:.2} s (seed {})\n{totals}\n{latency}\n{check}",
        r.orders,
        r.elapsed.as_secs_f64(),
        r.config.seed,
        totals = totals,
        latency = latency
    )
}
