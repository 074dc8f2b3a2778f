//! A customer's review of a delivered order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::Event;
use super::ids::{OrderId, StoreId};
use super::order::Order;
use super::refusal::DomainError;
use super::validate::{self};

/// A review: once per delivered order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The order reviewed.
    pub order_id: OrderId,
    /// The order's store, whose review count and average it changes.
    pub store_id: StoreId,
    /// Who wrote it: the order's customer.
    pub customer: String,
    /// The score, from 1 (worst) to 5 (best).
    pub score: u8,
    /// What they wrote (may be empty).
    pub text: String,
    /// When it was written (the engine's clock, UTC).
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
            customer: order.customer.to_string(),
            score,
            text: text.clone(),
            created_at: now,
        };
        let event = Event::ReviewRegistered { order_id: order.id, store_id: order.store_id, score, text };
        Ok((reviewed, review, event))
    }
}
