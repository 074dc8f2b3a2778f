//! A customer's review of a delivered order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validate::{self};
use super::{DomainError, Event, Order, OrderId, StoreId};

/// A review: once per delivered order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The order reviewed.
    pub order_id: OrderId,
    /// Its store.
    pub store_id: StoreId,
    /// Who wrote it.
    pub customer: String,
    /// 1 to 5.
    pub score: u8,
    /// What they wrote (may be empty).
    pub text: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl Review {
    /// Reviews `order`; returns the order marked as reviewed, the review and its event.
    pub fn write(
        order: &Order,
        score: u8,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(Order, Review, Event), DomainError> {
        let score = validate::score(score)?;
        let text = validate::text("review text", text)?;
        let reviewed = order.review()?;
        let review = Review {
            order_id: order.id,
            store_id: order.store_id,
            customer: order.customer.clone(),
            score,
            text: text.clone(),
            created_at: now,
        };
        let event = Event::ReviewRegistered { order_id: order.id, store_id: order.store_id, score, text };
        Ok((reviewed, review, event))
    }
}
