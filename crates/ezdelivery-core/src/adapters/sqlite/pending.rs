//! Changes to an order's row that a unit of work has made and not yet
//! written ([`PendingRow`]).

use rusqlite::types::Value;

use crate::adapters::rows::time_text;
use crate::domain::{Delivery, KitchenTicket, Order, OrderId, RiderId};

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
    order: Option<[Value; 3]>,
    in_inbox: Option<bool>,
    /// `kitchen_status`, `kitchen_updated_at`.
    ticket: Option<[Value; 2]>,
    /// `delivery_charge`, `delivery_status`, `delivery_updated_at`.
    delivery: Option<[Value; 3]>,
    /// `delivery_rider_id`, `rider_busy`.
    rider: Option<(Option<RiderId>, bool)>,
}

impl PendingRow {
    pub(super) fn new(id: OrderId) -> PendingRow {
        PendingRow { id, order: None, in_inbox: None, ticket: None, delivery: None, rider: None }
    }

    /// The order's own columns; its inbox flag when `inbox_changes`.
    pub(super) fn order(&mut self, o: &Order, inbox_changes: bool) {
        let text = |s: &str| Value::Text(s.to_owned());
        self.order =
            Some([text(o.status.as_str()), Value::Integer(o.reviewed.into()), Value::Text(time_text(&o.updated_at))]);
        if inbox_changes {
            self.in_inbox = Some(o.status.in_store_inbox());
        }
    }

    pub(super) fn ticket(&mut self, t: &KitchenTicket) {
        self.ticket = Some([Value::Text(t.status.as_str().to_owned()), Value::Text(time_text(&t.updated_at))]);
    }

    /// The delivery's columns; its rider's (`rows::rider_columns`) when
    /// given.
    pub(super) fn delivery(&mut self, d: &Delivery, rider: Option<(Option<RiderId>, bool)>) {
        self.delivery = Some([
            Value::Integer(d.charge),
            Value::Text(d.status.as_str().to_owned()),
            Value::Text(time_text(&d.updated_at)),
        ]);
        if rider.is_some() {
            self.rider = rider;
        }
    }

    /// The `UPDATE` that writes it, and its parameters in order.
    pub(super) fn statement(&self) -> (String, Vec<Value>) {
        let mut sql = String::from("UPDATE orders SET ");
        let mut values = Vec::with_capacity(12);
        let mut set = |columns: &[&str], given: &mut dyn Iterator<Item = Value>| {
            for (column, value) in columns.iter().zip(given) {
                if !values.is_empty() {
                    sql.push_str(", ");
                }
                sql.push_str(column);
                sql.push_str(" = ?");
                values.push(value);
            }
        };
        if let Some(order) = &self.order {
            set(&["status", "reviewed", "updated_at"], &mut order.iter().cloned());
        }
        if let Some(flag) = self.in_inbox {
            set(&["in_inbox"], &mut std::iter::once(Value::Integer(flag.into())));
        }
        if let Some(ticket) = &self.ticket {
            set(&["kitchen_status", "kitchen_updated_at"], &mut ticket.iter().cloned());
        }
        if let Some(delivery) = &self.delivery {
            set(&["delivery_charge", "delivery_status", "delivery_updated_at"], &mut delivery.iter().cloned());
        }
        if let Some((rider, busy)) = self.rider {
            let rider = rider.map_or(Value::Null, Value::Integer);
            set(&["delivery_rider_id", "rider_busy"], &mut [rider, Value::Integer(busy.into())].into_iter());
        }
        sql.push_str(" WHERE id = ?");
        values.push(Value::Integer(self.id));
        (sql, values)
    }
}
