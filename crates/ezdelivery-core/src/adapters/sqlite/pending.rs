//! Changes to an order's row that a unit of work has made and not yet
//! written ([`PendingRow`]).

use chrono::{DateTime, Utc};
use rusqlite::types::Value;

use crate::adapters::rows::time_text;
use crate::domain::{
    Delivery, DeliveryStatus, KitchenStatus, KitchenTicket, Order, OrderId, OrderStatus, RiderId, Won,
};

/// The columns of one order's row that a unit of work set, written by one
/// `UPDATE` when it ends instead of one per change: a command changes an
/// order's status, its kitchen ticket, its delivery and their flags in one
/// row (schema 12), up to four statements (BENCHMARKS.md, "Rows a command
/// reads again").
///
/// Only a row the connection's cache holds is changed so, the cache then
/// holding the new values: the repo writes this before every query, before
/// it changes a row directly, and before committing (`SqliteRepo::flush`).
/// A flag is set only when it changes (see `rows::SET_INBOX`): setting it
/// rewrites its index entry.
#[derive(Debug)]
pub(super) struct PendingRow {
    pub(super) id: OrderId,
    /// `status`, `reviewed`, `updated_at`.
    order: Option<(OrderStatus, bool, DateTime<Utc>)>,
    in_inbox: Option<bool>,
    /// `kitchen_status`, `kitchen_updated_at`.
    ticket: Option<(KitchenStatus, DateTime<Utc>)>,
    /// `delivery_charge`, `delivery_status`, `delivery_updated_at`.
    delivery: Option<(Won, DeliveryStatus, DateTime<Utc>)>,
    /// `delivery_rider_id`, `rider_busy`.
    rider: Option<(Option<RiderId>, bool)>,
}

impl PendingRow {
    pub(super) fn new(id: OrderId) -> PendingRow {
        PendingRow { id, order: None, in_inbox: None, ticket: None, delivery: None, rider: None }
    }

    /// The order's own columns; its inbox flag when `inbox_changes`.
    pub(super) fn order(&mut self, o: &Order, inbox_changes: bool) {
        self.order = Some((o.status, o.reviewed, o.updated_at));
        if inbox_changes {
            self.in_inbox = Some(o.status.in_store_inbox());
        }
    }

    pub(super) fn ticket(&mut self, t: &KitchenTicket) {
        self.ticket = Some((t.status, t.updated_at));
    }

    /// The delivery's columns; its rider's (`rows::rider_columns`) when
    /// given.
    pub(super) fn delivery(&mut self, d: &Delivery, rider: Option<(Option<RiderId>, bool)>) {
        self.delivery = Some((d.charge, d.status, d.updated_at));
        if rider.is_some() {
            self.rider = rider;
        }
    }

    /// The `UPDATE` that writes it, and its parameters in order.
    pub(super) fn statement(&self) -> (String, Vec<Value>) {
        let text = |s: &str| Value::Text(s.to_owned());
        let time = |t: &DateTime<Utc>| Value::Text(time_text(t));
        let flag = |b: bool| Value::Integer(b.into());
        let mut set: Vec<(&str, Value)> = Vec::with_capacity(11);
        if let Some((status, reviewed, at)) = &self.order {
            set.extend([("status", text(status.as_str())), ("reviewed", flag(*reviewed)), ("updated_at", time(at))]);
        }
        if let Some(in_inbox) = self.in_inbox {
            set.push(("in_inbox", flag(in_inbox)));
        }
        if let Some((status, at)) = &self.ticket {
            set.extend([("kitchen_status", text(status.as_str())), ("kitchen_updated_at", time(at))]);
        }
        if let Some((charge, status, at)) = &self.delivery {
            set.extend([
                ("delivery_charge", Value::Integer(*charge)),
                ("delivery_status", text(status.as_str())),
                ("delivery_updated_at", time(at)),
            ]);
        }
        if let Some((rider, busy)) = self.rider {
            set.extend([("delivery_rider_id", rider.map_or(Value::Null, Value::Integer)), ("rider_busy", flag(busy))]);
        }
        let mut sql = String::from("UPDATE orders SET ");
        for (i, (column, _)) in set.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(column);
            sql.push_str(" = ?");
        }
        sql.push_str(" WHERE id = ?");
        let mut values: Vec<Value> = set.into_iter().map(|(_, value)| value).collect();
        values.push(Value::Integer(self.id));
        (sql, values)
    }
}
