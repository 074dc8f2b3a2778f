//! A payment gateway adapter of our own: it declines any payment over a
//! limit, and it is idempotent (a retried request with the same key gets
//! the same answer, and nobody is charged twice). Plugged in with
//! `Engine::builder(..).payment(..)`.
//!
//! ```sh
//! cargo run --example custom_gateway
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use ezdelivery_core::adapters::memory::MemoryStorage;
use ezdelivery_core::app::messages::won;
use ezdelivery_core::domain::Won;
use ezdelivery_core::ports::{GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest};
use ezdelivery_core::{Engine, Error, ItemPick, NewOrder, Result};

/// Declines payments above `limit`; remembers every answer by idempotency key.
struct LimitGateway {
    limit: Won,
    answers: Mutex<HashMap<String, GatewayOutcome>>,
}

impl LimitGateway {
    fn new(limit: Won) -> LimitGateway {
        LimitGateway { limit, answers: Mutex::new(HashMap::new()) }
    }
}

impl PaymentGateway for LimitGateway {
    /// Recorded with every payment this gateway takes: only a gateway of
    /// the same name settles them later.
    fn name(&self) -> &str {
        "limit-gateway"
    }

    fn approve(&self, request: &PaymentRequest) -> GatewayOutcome {
        let Ok(mut answers) = self.answers.lock() else {
            // Not a "no" from the bank: the engine keeps the payment and retries it.
            return GatewayOutcome::Unavailable { reason: "the gateway's ledger is poisoned".into() };
        };
        let outcome = answers.entry(request.idempotency_key.to_string()).or_insert_with(|| {
            if request.amount > self.limit {
                GatewayOutcome::Declined {
                    reason: format!("{}원 is over this card's limit of {}원", won(request.amount), won(self.limit)),
                }
            } else {
                GatewayOutcome::Approved { gateway_ref: format!("limit-{}", request.idempotency_key) }
            }
        });
        outcome.clone()
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        GatewayOutcome::Approved { gateway_ref: format!("refund-{}", request.gateway_ref) }
    }
}

fn main() -> Result<()> {
    let engine = Engine::builder(MemoryStorage::new()).payment(LimitGateway::new(50_000)).build();
    let store = engine.add_store("교촌치킨", Some("park"), None)?;
    engine.add_menu(store.id, "후라이드", 18_000)?;

    // Under the limit: approved.
    let small = engine.place_order(NewOrder::new(store.id, "kim", &[ItemPick::new("후라이드", 2)]).pay_now(None))?;
    println!("order {} for {}원: {}", small.order_id, won(small.total), small.status);
    assert_eq!(small.status.as_str(), "paid");

    // Over the limit: declined; the order is kept, unpaid.
    let big = match engine.place_order(NewOrder::new(store.id, "kim", &[ItemPick::new("후라이드", 3)]).pay_now(None))
    {
        Err(Error::Declined { order, reason }) => {
            println!("order {order} declined: {reason}");
            order
        }
        other => panic!("expected a decline, got {other:?}"),
    };
    let kept = engine.status(big)?;
    println!("order {} stays {} (payment {})", kept.order_id, kept.status, kept.payment.as_ref().unwrap().status);
    assert_eq!(kept.status.as_str(), "pending_payment");

    // The customer cancels the declined order; nothing was charged.
    let cancelled = engine.cancel(big, "too expensive")?;
    println!("order {} is {}", cancelled.order_id, cancelled.status);
    Ok(())
}
