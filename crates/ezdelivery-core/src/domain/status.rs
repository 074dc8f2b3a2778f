//! Where each aggregate stands: its status enum and the one table of its
//! names. The moves between them (`next`) are each aggregate's own, in its
//! module; the statuses live here because events and refusals name them
//! too, and an aggregate uses its events and refusals. A leaf: it uses only
//! the `status_strings!` macro.

use super::strings::status_strings;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Placed, not paid: not established, the store does not see it.
    PendingPayment,
    /// Paid: waiting in the store's inbox.
    Paid,
    /// The owner accepted it and is cooking.
    Cooking,
    /// The food is ready for the rider.
    Cooked,
    /// The rider is on the way.
    Delivering,
    /// Handed over.
    Delivered,
    /// Cancelled by the customer before departure.
    Cancelled,
    /// Rejected by the store owner.
    Rejected,
}

status_strings!(OrderStatus {
    PendingPayment => "pending_payment",
    Paid => "paid",
    Cooking => "cooking",
    Cooked => "cooked",
    Delivering => "delivering",
    Delivered => "delivered",
    Cancelled => "cancelled",
    Rejected => "rejected",
});

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Sent or queued; no answer from the gateway yet.
    Pending,
    /// Approved: the order is established.
    Approved,
    /// Declined by the gateway; the customer may pay again.
    Declined,
    /// The order was cancelled or rejected; the refund is not confirmed yet.
    RefundPending,
    /// Refunded.
    Refunded,
    /// Never charged: the order was cancelled while the payment was queued.
    Voided,
    /// The gateway may hold money that the engine cannot settle by itself
    /// (its answers stayed unreadable): a person must look.
    NeedsAttention,
}

status_strings!(PaymentStatus {
    Pending => "pending",
    Approved => "approved",
    Declined => "declined",
    RefundPending => "refund_pending",
    Refunded => "refunded",
    Voided => "voided",
    NeedsAttention => "needs_attention",
});

/// Where a delivery charge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeStatus {
    /// Not paid yet (sent, queued, or waiting for a retry).
    Pending,
    /// Paid to the rider: the delivery may depart.
    Paid,
    /// Being taken back from the rider.
    RefundPending,
    /// Taken back.
    Refunded,
    /// Never paid: dropped because the delivery was cancelled or moved.
    Voided,
    /// The gateway may have moved money that the engine cannot settle by
    /// itself (its answers stayed unreadable): a person must look.
    NeedsAttention,
}

status_strings!(ChargeStatus {
    Pending => "pending",
    Paid => "paid",
    RefundPending => "refund_pending",
    Refunded => "refunded",
    Voided => "voided",
    NeedsAttention => "needs_attention",
});

impl PaymentStatus {
    /// The statuses in which a gateway call for the payment is outstanding
    /// (its approval, or its refund): what `relay` works through.
    pub const AWAITING_GATEWAY: [PaymentStatus; 2] = [PaymentStatus::Pending, PaymentStatus::RefundPending];
}

impl ChargeStatus {
    /// The statuses in which a gateway call for the charge is outstanding
    /// (paying the rider, or taking it back): what `relay` works through.
    pub const AWAITING_GATEWAY: [ChargeStatus; 2] = [ChargeStatus::Pending, ChargeStatus::RefundPending];
}

/// Where a kitchen ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KitchenStatus {
    /// In the owner's inbox.
    Received,
    /// Being cooked.
    Cooking,
    /// Ready for the rider.
    Cooked,
    /// The owner rejected the order.
    Rejected,
    /// The customer cancelled the order.
    Cancelled,
}

status_strings!(KitchenStatus {
    Received => "received",
    Cooking => "cooking",
    Cooked => "cooked",
    Rejected => "rejected",
    Cancelled => "cancelled",
});

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for the food, the charge, or a rider.
    Preparing,
    /// On the way.
    Delivering,
    /// Handed over.
    Delivered,
    /// Cancelled with its order.
    Cancelled,
}

status_strings!(DeliveryStatus {
    Preparing => "preparing",
    Delivering => "delivering",
    Delivered => "delivered",
    Cancelled => "cancelled",
});
