//! Why the state machine refuses a move: typed, with messages that say what
//! went wrong, for which id, and what to do next.

use super::ids::{OrderId, StoreId};
use super::status::{ChargeStatus, DeliveryStatus, KitchenStatus, OrderStatus, PaymentStatus};

/// A move the domain does not allow in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The store is closed and takes no orders.
    #[error("store {store} is closed; it takes orders again once it opens")]
    StoreClosed {
        /// The closed store.
        store: StoreId,
    },
    /// A picked menu is sold out.
    #[error("menu {menu} ({name}) is sold out; pick another menu or wait until it is available again")]
    MenuSoldOut {
        /// The sold-out menu item's id.
        menu: i64,
        /// Its name, to say which one in the message.
        name: String,
    },
    /// The order is not paid, so it is not established: the store never sees it.
    #[error("order {order} is not paid ({status}); it has to be paid first")]
    NotPaid {
        /// The order the move was asked of.
        order: OrderId,
        /// Its current status.
        status: OrderStatus,
    },
    /// The order has left the store (or was delivered): a cancel is no
    /// longer possible.
    #[error("{}", departed_message(*.order, *.status))]
    AlreadyDeparted {
        /// The order the move was asked of.
        order: OrderId,
        /// `delivering` or `delivered`.
        status: OrderStatus,
    },
    /// The food has to be cooked before the rider departs.
    #[error("order {order} cannot depart: the food is not cooked yet (kitchen: {kitchen})")]
    FoodNotCooked {
        /// The order the move was asked of.
        order: OrderId,
        /// The kitchen ticket's status.
        kitchen: KitchenStatus,
    },
    /// The rider's delivery charge has to be paid before departure.
    #[error("order {order} cannot depart: the delivery charge to the rider is not paid ({}); it is retried under the same key", .charge.map_or("none", ChargeStatus::as_str))]
    ChargeNotPaid {
        /// The order the move was asked of.
        order: OrderId,
        /// The charge's status, or `none`.
        charge: Option<ChargeStatus>,
    },
    /// No rider is assigned, and none was named.
    #[error("order {order} has no rider yet")]
    NoRider {
        /// The order the move was asked of.
        order: OrderId,
    },
    /// Another card was given while an earlier payment may have reached the
    /// gateway: charging the new card could charge the customer twice.
    #[error("order {order}: the earlier payment (card {card}) may have reached the gateway and its outcome is not known yet; it is not replaced by another card, so the customer is never charged twice")]
    PaymentInDoubt {
        /// The order the move was asked of.
        order: OrderId,
        /// The earlier card's last four digits (`…1111`).
        card: String,
    },
    /// Another process is calling the gateway for this order right now.
    #[error(
        "order {order}: the {what} is being sent to the gateway by another process right now (until {} at the latest)",
        super::time::to_the_second(.until)
    )]
    GatewayBusy {
        /// The order the move was asked of.
        order: OrderId,
        /// `payment` or `delivery charge`.
        what: Billing,
        /// When that process's claim lapses.
        until: chrono::DateTime<chrono::Utc>,
    },
    /// The payment (or charge) went to another gateway than this engine's:
    /// only that one knows its key and may settle it (see
    /// `PaymentGateway::name`).
    #[error("order {order}: the {what} went to the gateway {gateway}, not to this one ({ours}); only that gateway can settle it, so that the money moves once")]
    OtherGateway {
        /// The order the move was asked of.
        order: OrderId,
        /// `payment` or `delivery charge`.
        what: Billing,
        /// The gateway it went to, by name.
        gateway: String,
        /// This engine's gateway for it, by name.
        ours: String,
    },
    /// The order's payment (or charge) needs a person before anything else
    /// moves money for it.
    #[error(
        "order {order}: the {what} needs attention: the gateway may hold money that could not be settled automatically"
    )]
    NeedsAttention {
        /// The order the move was asked of.
        order: OrderId,
        /// `payment` or `delivery charge`.
        what: Billing,
    },
    /// The order was already reviewed.
    #[error("order {order} was already reviewed; a review can be written once")]
    AlreadyReviewed {
        /// The order the move was asked of.
        order: OrderId,
    },
    /// Any other move the state machine of one aggregate does not allow.
    /// The message names the order, says where it stands and what can be
    /// done with it next.
    #[error("{}", transition_message(*.order, *.standing, .action))]
    Transition {
        /// The order the aggregate belongs to.
        order: OrderId,
        /// Which aggregate, and where it stands.
        standing: Standing,
        /// What was asked, as a verb phrase (`be cooked`, `be cancelled`).
        action: &'static str,
    },
}

/// `order 7 is already on its way (delivering)…`, or `order 7 was already
/// delivered…`.
fn departed_message(order: OrderId, status: OrderStatus) -> String {
    match status {
        OrderStatus::Delivered => format!("order {order} was already delivered; it can no longer be cancelled"),
        _ => format!("order {order} is already on its way ({status}); it can no longer be cancelled"),
    }
}

/// `order 7 is paid; it cannot depart`; `the kitchen ticket of order 3 is
/// cancelled; it cannot be cooked`.
fn transition_message(order: OrderId, standing: Standing, action: &str) -> String {
    let (what, status) = (standing.what(), standing.status());
    let subject = if what == "order" { format!("order {order}") } else { format!("the {what} of order {order}") };
    format!("{subject} is {status}; it cannot {action}")
}

/// What moves money through a gateway: a customer's payment, or a rider's
/// delivery charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Billing {
    /// The customer's payment (and its refund).
    Payment,
    /// The rider's delivery charge (and taking it back).
    DeliveryCharge,
}

impl std::fmt::Display for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Billing::Payment => "payment",
            Billing::DeliveryCharge => "delivery charge",
        })
    }
}

/// Which aggregate a refused move was asked of, and where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The order itself.
    Order(OrderStatus),
    /// Its payment.
    Payment(PaymentStatus),
    /// Its kitchen ticket.
    KitchenTicket(KitchenStatus),
    /// Its delivery.
    Delivery(DeliveryStatus),
    /// Its rider's delivery charge.
    DeliveryCharge(ChargeStatus),
}

impl Standing {
    /// The aggregate, as a message names it (`kitchen ticket`).
    pub fn what(self) -> &'static str {
        match self {
            Standing::Order(_) => "order",
            Standing::Payment(_) => "payment",
            Standing::KitchenTicket(_) => "kitchen ticket",
            Standing::Delivery(_) => "delivery",
            Standing::DeliveryCharge(_) => "delivery charge",
        }
    }

    /// Its status's stable name (`paid`).
    pub fn status(self) -> &'static str {
        match self {
            Standing::Order(s) => s.as_str(),
            Standing::Payment(s) => s.as_str(),
            Standing::KitchenTicket(s) => s.as_str(),
            Standing::Delivery(s) => s.as_str(),
            Standing::DeliveryCharge(s) => s.as_str(),
        }
    }
}

/// Either kind of "no" the domain can say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The input is wrong whatever the state.
    #[error(transparent)]
    Invalid(#[from] super::validate::Invalid),
    /// The state machine refuses the move.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_move_says_what_which_order_and_where_it_stands() {
        let r = Refusal::Transition { order: 7, standing: Standing::Order(OrderStatus::Paid), action: "depart" };
        assert_eq!(r.to_string(), "order 7 is paid; it cannot depart");
        let standing = Standing::KitchenTicket(KitchenStatus::Cancelled);
        let r = Refusal::Transition { order: 3, standing, action: "be cooked" };
        assert_eq!(r.to_string(), "the kitchen ticket of order 3 is cancelled; it cannot be cooked");
        let r = Refusal::NotPaid { order: 2, status: OrderStatus::PendingPayment };
        assert!(!r.to_string().contains("ezdelivery"), "the library names no command of the CLI: {r}");
        let r = Refusal::AlreadyDeparted { order: 7, status: OrderStatus::Delivering };
        assert_eq!(r.to_string(), "order 7 is already on its way (delivering); it can no longer be cancelled");
        let r = Refusal::AlreadyDeparted { order: 7, status: OrderStatus::Delivered };
        assert_eq!(r.to_string(), "order 7 was already delivered; it can no longer be cancelled");
    }
}
