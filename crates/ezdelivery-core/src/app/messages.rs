//! The words of the notifications: which events tell whom, in Korean (the
//! default) or English.

use crate::app::view::OrderView;
use crate::domain::{Event, OrderStatus, Won};

/// The language of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    /// 한국어 (the default).
    #[default]
    Ko,
    /// English.
    En,
}

impl std::str::FromStr for Locale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ko" => Ok(Locale::Ko),
            "en" => Ok(Locale::En),
            other => Err(format!("unknown locale `{other}`: use \"ko\" or \"en\"")),
        }
    }
}

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The customer who ordered.
    Customer,
    /// The store's owner.
    Owner,
}

impl Audience {
    /// A short stable name, part of the message id.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Customer => "customer",
            Audience::Owner => "owner",
        }
    }
}

/// `36000` → `36,000`.
///
/// ```
/// assert_eq!(ezdelivery_core::app::messages::won(1234567), "1,234,567");
/// ```
pub fn won(amount: Won) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if amount < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The messages `event` causes, with the view of its order after the event:
/// every order status change tells the customer, and a newly paid order
/// also tells the store's owner.
pub fn messages_for(event: &Event, view: &OrderView, locale: Locale) -> Vec<(Audience, String)> {
    let tells = matches!(
        event,
        Event::OrderPlaced { .. }
            | Event::PaymentApproved { .. }
            | Event::PaymentDeclined { .. }
            | Event::PaymentQueued { .. }
            | Event::PaymentRefunded { .. }
            | Event::OrderRejected { .. }
            | Event::CookingStarted { .. }
            | Event::FoodCooked { .. }
            | Event::DeliveryStarted { .. }
            | Event::DeliveryCompleted { .. }
            | Event::OrderCancelled { .. }
    );
    if !tells {
        return Vec::new();
    }
    let (id, store, total) = (view.order_id, view.store.as_str(), won(view.total));
    let stopped = matches!(view.status, OrderStatus::Cancelled | OrderStatus::Rejected);
    if stopped
        && matches!(event, Event::PaymentApproved { .. } | Event::PaymentDeclined { .. } | Event::PaymentQueued { .. })
    {
        // The answer to a call that was in doubt when the order was
        // cancelled: the order is not established, and the refund (if
        // any) is what the customer hears about.
        return Vec::new();
    }
    let ko = locale == Locale::Ko;
    // Only the configured language is formatted.
    let pick = |k: &dyn Fn() -> String, e: &dyn Fn() -> String| if ko { k() } else { e() };
    let line = match event {
        Event::OrderPlaced { .. } => {
            pick(&|| format!("주문 #{id}이(가) 접수되었습니다. 결제를 기다립니다."), &|| {
                format!("order #{id} was placed and waits for payment.")
            })
        }
        Event::PaymentApproved { .. } => {
            let items = view.items.iter().map(|i| format!("{} x{}", i.name, i.qty)).collect::<Vec<_>>().join(", ");
            let owner = match locale {
                Locale::Ko => format!("[{store}] 새 주문 #{id}: {items} · {total}원 (고객 {})", view.customer),
                Locale::En => format!("[{store}] new order #{id}: {items} · {total} won (customer {})", view.customer),
            };
            let customer = match locale {
                Locale::Ko => format!("[{store}] 주문 #{id} 결제가 완료되었습니다 · {total}원 · 상태: 결제완료"),
                Locale::En => format!("[{store}] order #{id} is paid · {total} won · status: paid"),
            };
            return vec![(Audience::Customer, customer), (Audience::Owner, owner)];
        }
        Event::PaymentDeclined { reason, .. } => pick(
            &|| format!("주문 #{id} 결제가 거절되었습니다 ({reason}). 다른 카드로 다시 결제해 주세요."),
            &|| format!("the payment for order #{id} was declined ({reason}); pay again with another card."),
        ),
        Event::PaymentQueued { .. } => pick(
            &|| format!("주문 #{id}은(는) 접수되었고, 결제 서비스가 복구되면 결제됩니다."),
            &|| format!("order #{id} is kept and will be paid when the payment service is back."),
        ),
        Event::PaymentRefunded { amount, .. } => {
            let amount = won(*amount);
            pick(&|| format!("주문 #{id} 결제 {amount}원이 환불되었습니다."), &|| {
                format!("the payment of {amount} won for order #{id} was refunded.")
            })
        }
        Event::OrderRejected { .. } => pick(
            &|| format!("가게에서 주문 #{id}을(를) 거절했습니다. 결제는 환불됩니다. · 상태: 거절"),
            &|| format!("the store rejected order #{id}; the payment will be refunded. · status: rejected"),
        ),
        Event::CookingStarted { .. } => {
            pick(&|| format!("주문 #{id} 조리를 시작했습니다. · 상태: 조리중"), &|| {
                format!("order #{id} is being cooked. · status: cooking")
            })
        }
        Event::FoodCooked { .. } => {
            pick(&|| format!("주문 #{id} 조리가 완료되었습니다. · 상태: 조리완료"), &|| {
                format!("order #{id} is cooked. · status: cooked")
            })
        }
        Event::DeliveryStarted { rider, .. } => pick(
            &|| format!("주문 #{id} 배달이 출발했습니다 (라이더 {rider}). · 상태: 배달중"),
            &|| format!("order #{id} is on its way (rider {rider}). · status: delivering"),
        ),
        Event::DeliveryCompleted { .. } => pick(
            &|| format!("주문 #{id} 배달이 완료되었습니다. 맛있게 드세요! · 상태: 배달완료"),
            &|| format!("order #{id} was delivered. Enjoy! · status: delivered"),
        ),
        Event::OrderCancelled { .. } => {
            pick(&|| format!("주문 #{id}이(가) 취소되었습니다. · 상태: 취소"), &|| {
                format!("order #{id} was cancelled. · status: cancelled")
            })
        }
        _ => return Vec::new(),
    };
    let text = if ko { format!("[{store}] {line} · {total}원") } else { format!("[{store}] {line} · {total} won") };
    vec![(Audience::Customer, text)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderItem;
    use chrono::DateTime;

    fn view() -> OrderView {
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let placed = Event::OrderPlaced {
            order_id: 7,
            store_id: 1,
            store: "BBQ".into(),
            customer: "kim".into(),
            address: String::new(),
            items: vec![OrderItem { menu_id: 1, name: "후라이드".into(), unit_price: 18_000, qty: 2 }],
            total: 36_000,
        };
        OrderView::start(1, at, &placed).unwrap()
    }

    #[test]
    fn paid_order_tells_customer_and_owner() {
        let e = Event::PaymentApproved { order_id: 7, payment_id: 1, amount: 36_000, card: None };
        let m = messages_for(&e, &view(), Locale::Ko);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].0, Audience::Owner);
        assert!(m[0].1.contains("#7") && m[0].1.contains("36,000원") && m[0].1.contains("BBQ"));
        assert!(messages_for(&e, &view(), Locale::En)[0].1.contains("36,000 won"));
    }

    #[test]
    fn a_late_answer_for_a_cancelled_order_tells_nobody() {
        let cancelled = OrderView { status: crate::domain::OrderStatus::Cancelled, ..view() };
        let e = Event::PaymentApproved { order_id: 7, payment_id: 1, amount: 36_000, card: None };
        assert!(messages_for(&e, &cancelled, Locale::Ko).is_empty());
        let e = Event::PaymentDeclined { order_id: 7, payment_id: 1, amount: 36_000, reason: "no".into(), card: None };
        assert!(messages_for(&e, &cancelled, Locale::Ko).is_empty());
    }

    #[test]
    fn catalogue_and_charge_events_tell_nobody() {
        let e = Event::DeliveryChargePaid { order_id: 7, charge_id: 1, rider_id: 1, amount: 3000 };
        assert!(messages_for(&e, &view(), Locale::Ko).is_empty());
    }

    #[test]
    fn won_groups_thousands() {
        assert_eq!(won(0), "0");
        assert_eq!(won(999), "999");
        assert_eq!(won(36_000), "36,000");
        assert_eq!(won(-1_000), "-1,000");
    }
}
