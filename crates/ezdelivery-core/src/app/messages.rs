//! The words of the notifications: which events tell whom, in Korean (the
//! default) or English.

use std::fmt::Write as _;

use crate::domain::view::OrderView;
use crate::domain::{Event, OrderStatus};

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
    /// The rider assigned to the order's delivery.
    Rider,
}

impl Audience {
    /// A short stable name, part of the message id.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Customer => "customer",
            Audience::Owner => "owner",
            Audience::Rider => "rider",
        }
    }
}

pub use crate::domain::won;

/// Whether the Korean reading of `word` ends in a consonant (받침): after a
/// number, as its last digit is read (영 일 이 삼 사 오 육 칠 팔 구; 10, 100,
/// 1000 and 10000 — 십 백 천 만 — end in one too, as 영 does); after a
/// Hangul syllable, by its final consonant. `None` for anything else.
fn ends_in_consonant(word: &str) -> Option<bool> {
    match word.chars().last()? {
        '0' | '1' | '3' | '6' | '7' | '8' => Some(true),
        '2' | '4' | '5' | '9' => Some(false),
        c @ '가'..='힣' => Some((u32::from(c) - 0xAC00) % 28 != 0),
        _ => None,
    }
}

/// `word` followed by the particle that fits it: `after_consonant` (이, 은,
/// 을) or `after_vowel` (가, 는, 를); both, as `이(가)`, when it cannot be told.
///
/// ```
/// use ezdelivery_core::app::messages::particle;
/// assert_eq!(particle(1, "이", "가"), "1이");
/// assert_eq!(particle(2, "이", "가"), "2가");
/// assert_eq!(particle(10, "은", "는"), "10은");
/// assert_eq!(particle("치킨", "을", "를"), "치킨을");
/// assert_eq!(particle("피자", "을", "를"), "피자를");
/// assert_eq!(particle("BBQ", "이", "가"), "BBQ이(가)");
/// ```
pub fn particle(word: impl std::fmt::Display, after_consonant: &str, after_vowel: &str) -> String {
    let word = word.to_string();
    match ends_in_consonant(&word) {
        Some(true) => format!("{word}{after_consonant}"),
        Some(false) => format!("{word}{after_vowel}"),
        None => format!("{word}{after_consonant}({after_vowel})"),
    }
}

/// The messages `event` causes, with the view of its order after the event:
/// every order status change tells the customer, a newly paid order also
/// tells the store's owner, and a cancelled one the owner (once it was
/// paid) and the assigned rider.
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
    let (id, store, total) = (view.order_id, &*view.store, won(view.total));
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
    if let Event::PaymentApproved { .. } = event {
        let mut items = String::with_capacity(16 * view.items.len());
        for (n, i) in view.items.iter().enumerate() {
            let sep = if n == 0 { "" } else { ", " };
            let _ = write!(items, "{sep}{} x{}", i.name, i.qty);
        }
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
    // Only the configured language is formatted, straight into one string
    // with room for the whole text: `[store] line · total`.
    let mut text = String::with_capacity(store.len() + 128);
    let _ = write!(text, "[{store}] ");
    let t = &mut text;
    // Writing into a `String` cannot fail.
    let _ = match event {
        Event::OrderPlaced { .. } if ko => {
            write!(t, "주문 #{} 접수되었습니다. 결제를 기다립니다.", IdParticle(id, "이", "가"))
        }
        Event::OrderPlaced { .. } => write!(t, "order #{id} was placed and waits for payment."),
        Event::PaymentDeclined { reason, .. } if ko => {
            write!(t, "주문 #{id} 결제가 거절되었습니다 ({reason}). 다른 카드로 다시 결제해 주세요.")
        }
        Event::PaymentDeclined { reason, .. } => {
            write!(t, "the payment for order #{id} was declined ({reason}); pay again with another card.")
        }
        Event::PaymentQueued { .. } if ko => {
            write!(t, "주문 #{} 접수되었고, 결제 서비스가 복구되면 결제됩니다.", IdParticle(id, "은", "는"))
        }
        Event::PaymentQueued { .. } => {
            write!(t, "order #{id} is kept and will be paid when the payment service is back.")
        }
        Event::PaymentRefunded { amount, .. } if ko => {
            write!(t, "주문 #{id} 결제 {}원이 환불되었습니다.", won(*amount))
        }
        Event::PaymentRefunded { amount, .. } => {
            write!(t, "the payment of {} won for order #{id} was refunded.", won(*amount))
        }
        Event::OrderRejected { .. } if ko => {
            write!(t, "가게에서 주문 #{} 거절했습니다. 결제는 환불됩니다. · 상태: 거절", IdParticle(id, "을", "를"))
        }
        Event::OrderRejected { .. } => {
            write!(t, "the store rejected order #{id}; the payment will be refunded. · status: rejected")
        }
        Event::CookingStarted { .. } if ko => write!(t, "주문 #{id} 조리를 시작했습니다. · 상태: 조리중"),
        Event::CookingStarted { .. } => write!(t, "order #{id} is being cooked. · status: cooking"),
        Event::FoodCooked { .. } if ko => write!(t, "주문 #{id} 조리가 완료되었습니다. · 상태: 조리완료"),
        Event::FoodCooked { .. } => write!(t, "order #{id} is cooked. · status: cooked"),
        Event::DeliveryStarted { rider, .. } if ko => {
            write!(t, "주문 #{id} 배달이 출발했습니다 (라이더 {rider}). · 상태: 배달중")
        }
        Event::DeliveryStarted { rider, .. } => {
            write!(t, "order #{id} is on its way (rider {rider}). · status: delivering")
        }
        Event::DeliveryCompleted { .. } if ko => {
            write!(t, "주문 #{id} 배달이 완료되었습니다. 맛있게 드세요! · 상태: 배달완료")
        }
        Event::DeliveryCompleted { .. } => write!(t, "order #{id} was delivered. Enjoy! · status: delivered"),
        Event::OrderCancelled { .. } if ko => {
            write!(t, "주문 #{} 취소되었습니다. · 상태: 취소", IdParticle(id, "이", "가"))
        }
        Event::OrderCancelled { .. } => write!(t, "order #{id} was cancelled. · status: cancelled"),
        _ => return Vec::new(),
    };
    let _ = if ko { write!(text, " · {total}원") } else { write!(text, " · {total} won") };
    let mut out = vec![(Audience::Customer, text)];
    if let Event::OrderCancelled { reason, .. } = event {
        out.extend(cancelled_for_store_and_rider(view, reason, locale));
    }
    out
}

/// An order id followed by the particle that fits it, as [`particle`]
/// writes it, without a string of its own: a number always ends in a
/// digit, whose reading says which particle.
struct IdParticle<'a>(i64, &'a str, &'a str);

impl std::fmt::Display for IdParticle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let IdParticle(id, after_consonant, after_vowel) = *self;
        let consonant = matches!((id % 10).unsigned_abs(), 0 | 1 | 3 | 6 | 7 | 8);
        write!(f, "{id}{}", if consonant { after_consonant } else { after_vowel })
    }
}

/// A cancelled order also tells those who were working on it: the store's
/// owner, once told of the order (it was paid, so it reached the kitchen),
/// to stop preparing it, and the rider assigned to its delivery not to come.
fn cancelled_for_store_and_rider(view: &OrderView, reason: &str, locale: Locale) -> Vec<(Audience, String)> {
    let (id, store, total) = (view.order_id, &*view.store, won(view.total));
    let reason = reason.trim();
    let mut out = Vec::new();
    if view.kitchen.is_some() {
        out.push((
            Audience::Owner,
            match (locale, reason.is_empty()) {
                (Locale::Ko, true) => format!("[{store}] 주문 #{id} 취소: 조리·포장을 멈춰 주세요. · {total}원"),
                (Locale::Ko, false) => {
                    format!("[{store}] 주문 #{id} 취소 (사유: {reason}): 조리·포장을 멈춰 주세요. · {total}원")
                }
                (Locale::En, true) => format!("[{store}] order #{id} was cancelled; stop preparing it. · {total} won"),
                (Locale::En, false) => {
                    format!("[{store}] order #{id} was cancelled ({reason}); stop preparing it. · {total} won")
                }
            },
        ));
    }
    if view.delivery.as_ref().is_some_and(|d| d.rider.is_some()) {
        out.push((
            Audience::Rider,
            match locale {
                Locale::Ko => format!("[{store}] 주문 #{id} 배달이 취소되었습니다. 픽업하지 마세요."),
                Locale::En => format!("[{store}] the delivery of order #{id} was cancelled; do not pick it up."),
            },
        ));
    }
    out
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
            address: "".into(),
            items: vec![OrderItem { menu_id: 1, name: "후라이드".into(), unit_price: 18_000, qty: 2 }].into(),
            total: 36_000,
        };
        OrderView::start(1, at, &placed).unwrap()
    }

    #[test]
    fn an_id_takes_the_particle_particle_gives_it() {
        for id in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 19, 100, 1_000_005, -3, i64::MAX, i64::MIN] {
            for (c, v) in [("이", "가"), ("은", "는"), ("을", "를")] {
                assert_eq!(IdParticle(id, c, v).to_string(), particle(id, c, v), "{id}");
            }
        }
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
    fn a_cancelled_order_tells_the_owner_and_rider_working_on_it() {
        let at = DateTime::from_timestamp(60, 0).unwrap();
        let cancel = |v: &OrderView, reason: &str| {
            let e = Event::OrderCancelled { order_id: 7, reason: reason.into() };
            let mut after = v.clone();
            after.apply(after.last_seq() + 1, at, &e);
            messages_for(&e, &after, Locale::Ko)
        };
        let audiences = |m: &[(Audience, String)]| m.iter().map(|(a, _)| *a).collect::<Vec<_>>();
        // Not paid: the owner never heard of it.
        assert_eq!(audiences(&cancel(&view(), "")), [Audience::Customer]);

        let mut paid = view();
        paid.apply(2, at, &Event::PaymentApproved { order_id: 7, payment_id: 1, amount: 36_000, card: None });
        assert_eq!(audiences(&cancel(&paid, "")), [Audience::Customer, Audience::Owner]);

        let mut cooking = paid.clone();
        cooking.apply(3, at, &Event::CookingStarted { order_id: 7 });
        let prepared = Event::DeliveryPrepared {
            order_id: 7,
            rider_id: Some(1),
            rider: Some("lee".into()),
            charge_id: Some(1),
            charge: 3_000,
        };
        cooking.apply(4, at, &prepared);
        let told = cancel(&cooking, "changed my mind");
        assert_eq!(audiences(&told), [Audience::Customer, Audience::Owner, Audience::Rider]);
        assert_eq!(told[1].1, "[BBQ] 주문 #7 취소 (사유: changed my mind): 조리·포장을 멈춰 주세요. · 36,000원");
        assert_eq!(told[2].1, "[BBQ] 주문 #7 배달이 취소되었습니다. 픽업하지 마세요.");
        assert_eq!(Audience::Rider.as_str(), "rider");
        let e = Event::OrderCancelled { order_id: 7, reason: String::new() };
        let english = messages_for(&e, &cooking, Locale::En);
        assert_eq!(english[1].1, "[BBQ] order #7 was cancelled; stop preparing it. · 36,000 won");
        assert_eq!(english[2].1, "[BBQ] the delivery of order #7 was cancelled; do not pick it up.");
    }

    #[test]
    fn particles_follow_the_reading_of_the_order_number() {
        let placed = |id| {
            let e = Event::OrderPlaced {
                order_id: id,
                store_id: 1,
                store: "BBQ".into(),
                customer: "kim".into(),
                address: "".into(),
                items: vec![].into(),
                total: 0,
            };
            let v = OrderView { order_id: id, ..view() };
            messages_for(&e, &v, Locale::Ko).remove(0).1
        };
        for (id, particle) in [(1, "이"), (2, "가"), (3, "이"), (4, "가"), (5, "가"), (6, "이"), (7, "이")] {
            assert!(placed(id).contains(&format!("주문 #{id}{particle} 접수되었습니다")), "{}", placed(id));
        }
        for (id, particle) in [(8, "이"), (9, "가"), (10, "이"), (12, "가"), (100, "이")] {
            assert!(placed(id).contains(&format!("주문 #{id}{particle} ")), "{}", placed(id));
        }
        let v = OrderView { order_id: 9, ..view() };
        let queued =
            Event::PaymentQueued { order_id: 9, payment_id: 1, amount: 36_000, reason: String::new(), card: None };
        assert!(messages_for(&queued, &v, Locale::Ko)[0].1.contains("주문 #9는 접수되었고"));
        let rejected = Event::OrderRejected { order_id: 9, reason: String::new() };
        assert!(messages_for(&rejected, &v, Locale::Ko)[0].1.contains("주문 #9를 거절했습니다"));
        let v = OrderView { order_id: 3, ..v };
        let cancelled = Event::OrderCancelled { order_id: 3, reason: String::new() };
        assert!(messages_for(&cancelled, &v, Locale::Ko)[0].1.contains("주문 #3이 취소되었습니다"));
        for text in [placed(1), placed(2)] {
            assert!(!text.contains("(가)"), "no fallback after a number: {text}");
        }
    }

    #[test]
    fn won_groups_thousands() {
        assert_eq!(won(0), "0");
        assert_eq!(won(999), "999");
        assert_eq!(won(36_000), "36,000");
        assert_eq!(won(-1_000), "-1,000");
    }
}
