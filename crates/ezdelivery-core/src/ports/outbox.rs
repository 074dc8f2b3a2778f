//! The transactional outbox: messages queued in the same transaction as the
//! state change they tell about, and their delivery state per channel.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{status_strings, EventType, OrderId, OrderStatus, SmolStr};

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
    /// The message's key in the outbox ([`Message::key`]): what the
    /// storage finds the message by.
    pub message_key: i64,
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
    /// Its key in the outbox, one to one with `id`: [`Message::key_of`] the
    /// event's sequence number and the recipient. It grows with the log,
    /// so the outbox is written at its end, as a short integer rather than
    /// the text id (which a storage keeps as a plain column).
    pub key: i64,
    /// The order the event is about.
    pub order_id: OrderId,
    /// The event type that caused it (`PaymentApproved`).
    pub event: EventType,
    /// The order's status after the event.
    pub status: OrderStatus,
    /// Who it is for (customer or store owner name).
    pub recipient: SmolStr,
    /// The text, in the configured language.
    pub text: String,
    /// When the event happened.
    pub at: DateTime<Utc>,
}

impl Message {
    /// Places for the recipients of one event's messages: three are taken
    /// (customer, owner, rider), one is spare, so a new kind of recipient
    /// needs no new keys for the messages already queued.
    pub const RECIPIENTS: i64 = 4;

    /// The key of the message about event `seq` for the recipient in place
    /// `recipient` (`0..RECIPIENTS`): unique while each event's messages
    /// have places of their own, and ordered as the log.
    ///
    /// ```
    /// use ezdelivery_core::ports::outbox::Message;
    /// assert_eq!(Message::key_of(7, 1), 29);
    /// assert!(Message::key_of(7, 3) < Message::key_of(8, 0));
    /// ```
    pub fn key_of(seq: i64, recipient: i64) -> i64 {
        seq.saturating_mul(Self::RECIPIENTS).saturating_add(recipient)
    }

    /// The id of the message about event `event_id` for `audience` (the
    /// kind of recipient), as the engine names its messages: the event's
    /// id, `:`, the audience.
    ///
    /// ```
    /// use ezdelivery_core::ports::outbox::Message;
    /// let event = "0192f0c4-7b1a-7abc-8def-0123456789ab".parse().unwrap();
    /// assert_eq!(Message::id_of(event, "owner"), "0192f0c4-7b1a-7abc-8def-0123456789ab:owner");
    /// ```
    pub fn id_of(event_id: Uuid, audience: &str) -> String {
        Message::id_of_text(event_id.hyphenated().encode_lower(&mut Uuid::encode_buffer()), audience)
    }

    /// [`Message::id_of`] for an event id kept as text (an id the log was
    /// given that is not a UUID).
    pub fn id_of_text(event_id: &str, audience: &str) -> String {
        let mut id = String::with_capacity(event_id.len() + 1 + audience.len());
        id.push_str(event_id);
        id.push(':');
        id.push_str(audience);
        id
    }
}
