//! Adapters for the ports: storage (SQLite, in memory, PostgreSQL with the
//! `postgres` feature), gateways (sandbox,
//! HTTP), notifiers (console, JSON lines, webhook, KakaoTalk).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::OrderId;
use crate::ports::Message;

mod calls;
pub mod console;
pub mod http;
mod http_client;
pub mod jsonl;
pub mod kakao;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
mod rows;
pub mod sandbox;
pub mod sqlite;
pub mod webhook;

#[cfg(test)]
pub(crate) mod contract_tests;

/// One message as the JSON-lines file and the webhook carry it (the protocol in the README):
/// `{"id", "orderId", "event", "status", "recipient", "message", "at"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageJson<'a> {
    id: &'a str,
    order_id: OrderId,
    event: &'a str,
    status: &'a str,
    recipient: &'a str,
    message: &'a str,
    at: &'a DateTime<Utc>,
}

impl<'a> From<&'a Message> for MessageJson<'a> {
    fn from(m: &'a Message) -> Self {
        MessageJson {
            id: &m.id,
            order_id: m.order_id,
            event: m.event.as_str(),
            status: m.status.as_str(),
            recipient: &m.recipient,
            message: &m.text,
            at: &m.at,
        }
    }
}

#[cfg(test)]
pub(crate) fn sample_message() -> Message {
    use chrono::TimeZone;
    Message {
        id: "7:customer".into(),
        key: Message::key_of(7, 0),
        order_id: 3,
        event: "PaymentApproved".parse().expect("an event type"),
        status: crate::domain::OrderStatus::Paid,
        recipient: "kim".into(),
        text: "주문 3번 결제 완료 \"ok\" & more".into(),
        at: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
    }
}

/// What saving a kitchen ticket or delivery of order `order` comes to,
/// given whether it found the order (each is kept with its order, in the
/// SQL storages in its row; a ticket with an order of its store `store`):
/// none means the order is not there, which no unit of work asks for.
pub(crate) fn saved_on_order(
    changed: bool,
    what: &str,
    order: crate::domain::OrderId,
    store: Option<crate::domain::StoreId>,
) -> crate::Result<()> {
    if !changed {
        let of_store = store.map(|s| format!(" of store {s}")).unwrap_or_default();
        return Err(crate::Error::storage(format!(
            "cannot save the {what} of order {order}: there is no order {order}{of_store}"
        )));
    }
    Ok(())
}
