//! The transactional outbox: messages queued in the same transaction as the
//! state change they tell about, and their delivery state per channel.

use chrono::{DateTime, Utc};

use crate::domain::{status_strings, EventType, OrderId, OrderStatus};

/// Where one message stands on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not delivered yet; due at `next_at`.
    Pending,
    /// The channel accepted it; it is never sent again.
    Delivered,
    /// Given up after too many tries; `relay --dead` shows it, `relay --retry-dead` revives it.
    Dead,
}

status_strings!(DeliveryState {
    Pending => "pending",
    Delivered => "delivered",
    Dead => "dead",
});

/// The delivery state of one message on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDelivery {
    /// The message's id ([`Message::id`]).
    pub message_id: String,
    /// The channel (`console`, `jsonl`, …).
    pub channel: String,
    /// Pending (due at `next_at`), delivered (never sent again) or dead (given up).
    pub state: DeliveryState,
    /// How many times it was tried.
    pub tries: u32,
    /// When it is due (pending only).
    pub next_at: DateTime<Utc>,
    /// What the channel said when it last failed to deliver it; `None`
    /// before the first failure.
    pub last_error: Option<String>,
}

/// A message with its delivery state on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The message, as queued with the event it tells about.
    pub message: Message,
    /// Its state on the channel.
    pub delivery: MessageDelivery,
}

/// One message to one person about one order event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stable across retries, so a receiver can drop repeats.
    pub id: String,
    /// The order the event is about.
    pub order_id: OrderId,
    /// The event type that caused it (`PaymentApproved`).
    pub event: EventType,
    /// The order's status after the event.
    pub status: OrderStatus,
    /// Who it is for (customer or store owner name).
    pub recipient: String,
    /// The text, in the configured language.
    pub text: String,
    /// When the event happened.
    pub at: DateTime<Utc>,
}
