//! The words of the notifications: which events tell whom, in Korean (the
//! default) or English.

use smallvec::{smallvec, SmallVec};

use crate::domain::view::OrderView;
use crate::domain::{push_int, push_won, Event, OrderStatus, Won};

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

    /// Its place among an event's recipients, part of the message's key
    /// ([`Message::key_of`](crate::ports::outbox::Message::key_of)).
    pub fn place(self) -> i64 {
        match self {
            Audience::Customer => 0,
            Audience::Owner => 1,
            Audience::Rider => 2,
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
        c @ '0'..='9' => c.to_digit(10).map(digit_ends_in_consonant),
        c @ '가'..='힣' => Some((u32::from(c) - 0xAC00) % 28 != 0),
        _ => None,
    }
}

/// Whether the Korean reading of a number's last digit ends in a
/// consonant: 영 일 삼 육 칠 팔 do, 이 사 오 구 do not.
fn digit_ends_in_consonant(digit: u32) -> bool {
    matches!(digit, 0 | 1 | 3 | 6 | 7 | 8)
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

/// Appends each piece, in order, to a `String`: the texts, ids and
/// amounts of a message. A message is written for every status change, and
/// `format!` spent most of a lifecycle's formatting time walking its
/// templates; pieces pushed in order write the same text in a fraction.
macro_rules! put {
    ($text:expr, $($piece:expr),+ $(,)?) => {{
        let text: &mut String = &mut $text;
        $( Piece::put($piece, text); )+
    }};
}

/// `[store] `, the start of every message, with room for the rest.
fn about(store: &str) -> String {
    let mut text = String::with_capacity(store.len() + 128);
    put!(text, "[", store, "] ");
    text
}

/// The messages `event` causes, with the view of its order after the event:
/// every order status change tells the customer, a newly paid order also
/// tells the store's owner, and a cancelled one the owner (once it was
/// paid) and the assigned rider.
pub fn messages_for(event: &Event, view: &OrderView, locale: Locale) -> Vec<(Audience, String)> {
    texts_for(event, view, locale).into_vec()
}

/// Each message of an event, with whom it is for: one or two kept inline
/// (a vector for them was a heap block for nearly every event); a
/// cancellation's three spill to the heap.
pub(crate) type Texts = SmallVec<[(Audience, String); 2]>;

/// [`messages_for`], without a vector of its own.
pub(crate) fn texts_for(event: &Event, view: &OrderView, locale: Locale) -> Texts {
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
        return Texts::new();
    }
    let (id, store, total) = (view.order_id, &*view.store, view.total);
    let stopped = matches!(view.status, OrderStatus::Cancelled | OrderStatus::Rejected);
    if stopped
        && matches!(event, Event::PaymentApproved { .. } | Event::PaymentDeclined { .. } | Event::PaymentQueued { .. })
    {
        // The answer to a call that was in doubt when the order was
        // cancelled: the order is not established, and the refund (if
        // any) is what the customer hears about.
        return Texts::new();
    }
    let ko = locale == Locale::Ko;
    if let Event::PaymentApproved { .. } = event {
        let mut owner = about(store);
        match locale {
            Locale::Ko => put!(owner, "새 주문 #", Int(id), ": "),
            Locale::En => put!(owner, "new order #", Int(id), ": "),
        }
        for (n, i) in view.items.iter().enumerate() {
            put!(owner, if n == 0 { "" } else { ", " }, &*i.name, " x", Int(i64::from(i.qty)));
        }
        match locale {
            Locale::Ko => put!(owner, " · ", Amount(total), "원 (고객 ", &*view.customer, ")"),
            Locale::En => put!(owner, " · ", Amount(total), " won (customer ", &*view.customer, ")"),
        }
        let mut customer = about(store);
        match locale {
            Locale::Ko => {
                put!(customer, "주문 #", Int(id), " 결제가 완료되었습니다 · ", Amount(total), "원 · 상태: 결제완료")
            }
            Locale::En => put!(customer, "order #", Int(id), " is paid · ", Amount(total), " won · status: paid"),
        }
        return smallvec![(Audience::Customer, customer), (Audience::Owner, owner)];
    }
    // Only the configured language is written: `[store] line · total`.
    let mut t = about(store);
    match event {
        Event::OrderPlaced { .. } if ko => {
            put!(t, "주문 #", IdParticle(id, "이", "가"), " 접수되었습니다. 결제를 기다립니다.")
        }
        Event::OrderPlaced { .. } => put!(t, "order #", Int(id), " was placed and waits for payment."),
        Event::PaymentDeclined { reason, .. } if ko => {
            put!(t, "주문 #", Int(id), " 결제가 거절되었습니다 (", &**reason, "). 다른 카드로 다시 결제해 주세요.")
        }
        Event::PaymentDeclined { reason, .. } => {
            put!(t, "the payment for order #", Int(id), " was declined (", &**reason, "); pay again with another card.")
        }
        Event::PaymentQueued { .. } if ko => {
            put!(t, "주문 #", IdParticle(id, "은", "는"), " 접수되었고, 결제 서비스가 복구되면 결제됩니다.")
        }
        Event::PaymentQueued { .. } => {
            put!(t, "order #", Int(id), " is kept and will be paid when the payment service is back.")
        }
        Event::PaymentRefunded { amount, .. } if ko => {
            put!(t, "주문 #", Int(id), " 결제 ", Amount(*amount), "원이 환불되었습니다.")
        }
        Event::PaymentRefunded { amount, .. } => {
            put!(t, "the payment of ", Amount(*amount), " won for order #", Int(id), " was refunded.")
        }
        Event::OrderRejected { .. } if ko => {
            put!(t, "가게에서 주문 #", IdParticle(id, "을", "를"), " 거절했습니다. 결제는 환불됩니다. · 상태: 거절")
        }
        Event::OrderRejected { .. } => {
            put!(t, "the store rejected order #", Int(id), "; the payment will be refunded. · status: rejected")
        }
        Event::CookingStarted { .. } if ko => put!(t, "주문 #", Int(id), " 조리를 시작했습니다. · 상태: 조리중"),
        Event::CookingStarted { .. } => put!(t, "order #", Int(id), " is being cooked. · status: cooking"),
        Event::FoodCooked { .. } if ko => put!(t, "주문 #", Int(id), " 조리가 완료되었습니다. · 상태: 조리완료"),
        Event::FoodCooked { .. } => put!(t, "order #", Int(id), " is cooked. · status: cooked"),
        Event::DeliveryStarted { rider, .. } if ko => {
            put!(t, "주문 #", Int(id), " 배달이 출발했습니다 (라이더 ", &**rider, "). · 상태: 배달중")
        }
        Event::DeliveryStarted { rider, .. } => {
            put!(t, "order #", Int(id), " is on its way (rider ", &**rider, "). · status: delivering")
        }
        Event::DeliveryCompleted { .. } if ko => {
            put!(t, "주문 #", Int(id), " 배달이 완료되었습니다. 맛있게 드세요! · 상태: 배달완료")
        }
        Event::DeliveryCompleted { .. } => put!(t, "order #", Int(id), " was delivered. Enjoy! · status: delivered"),
        Event::OrderCancelled { .. } if ko => {
            put!(t, "주문 #", IdParticle(id, "이", "가"), " 취소되었습니다. · 상태: 취소")
        }
        Event::OrderCancelled { .. } => put!(t, "order #", Int(id), " was cancelled. · status: cancelled"),
        _ => return Texts::new(),
    }
    put!(t, " · ", Amount(total), if ko { "원" } else { " won" });
    let mut out = smallvec![(Audience::Customer, t)];
    if let Event::OrderCancelled { reason, .. } = event {
        out.extend(cancelled_for_store_and_rider(view, reason, locale));
    }
    out
}

/// A cancelled order also tells those who were working on it: the store's
/// owner, once told of the order (it was paid, so it reached the kitchen),
/// to stop preparing it, and the rider assigned to its delivery not to come.
fn cancelled_for_store_and_rider(view: &OrderView, reason: &str, locale: Locale) -> Vec<(Audience, String)> {
    let (id, store, total) = (view.order_id, &*view.store, view.total);
    let reason = reason.trim();
    let mut out = Vec::new();
    if view.kitchen.is_some() {
        let mut t = about(store);
        match (locale, reason.is_empty()) {
            (Locale::Ko, true) => put!(t, "주문 #", Int(id), " 취소: 조리·포장을 멈춰 주세요. · ", Amount(total), "원"),
            (Locale::Ko, false) => put!(
                t,
                "주문 #",
                Int(id),
                " 취소 (사유: ",
                reason,
                "): 조리·포장을 멈춰 주세요. · ",
                Amount(total),
                "원"
            ),
            (Locale::En, true) => {
                put!(t, "order #", Int(id), " was cancelled; stop preparing it. · ", Amount(total), " won")
            }
            (Locale::En, false) => put!(
                t,
                "order #",
                Int(id),
                " was cancelled (",
                reason,
                "); stop preparing it. · ",
                Amount(total),
                " won"
            ),
        }
        out.push((Audience::Owner, t));
    }
    if view.delivery.as_ref().is_some_and(|d| d.rider.is_some()) {
        let mut t = about(store);
        match locale {
            Locale::Ko => put!(t, "주문 #", Int(id), " 배달이 취소되었습니다. 픽업하지 마세요."),
            Locale::En => put!(t, "the delivery of order #", Int(id), " was cancelled; do not pick it up."),
        }
        out.push((Audience::Rider, t));
    }
    out
}

/// Something a message writes: a text, an id, an amount.
trait Piece {
    fn put(self, text: &mut String);
}

impl Piece for &str {
    fn put(self, text: &mut String) {
        text.push_str(self);
    }
}

/// An integer, as `{}` writes it.
struct Int(i64);

impl Piece for Int {
    fn put(self, text: &mut String) {
        push_int(text, self.0);
    }
}

/// An amount, as [`won`] writes it.
struct Amount(Won);

impl Piece for Amount {
    fn put(self, text: &mut String) {
        push_won(text, self.0);
    }
}

/// An order id followed by the particle that fits it, as [`particle`]
/// writes it, without a string of its own: a number always ends in a
/// digit, whose reading says which particle.
struct IdParticle<'a>(i64, &'a str, &'a str);

impl Piece for IdParticle<'_> {
    fn put(self, text: &mut String) {
        let IdParticle(id, after_consonant, after_vowel) = self;
        // The last digit, 0 to 9 whatever the sign.
        let digit = (id % 10).unsigned_abs() as u32;
        push_int(text, id);
        text.push_str(if digit_ends_in_consonant(digit) { after_consonant } else { after_vowel });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderItem;
    use chrono::DateTime;

    fn view() -> OrderView {
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let placed = Event::OrderPlaced(Box::new(crate::domain::Placed {
            order_id: 7,
            store_id: 1,
            store: "BBQ".into(),
            customer: "kim".into(),
            address: "".into(),
            items: vec![OrderItem { menu_id: 1, name: "후라이드".into(), unit_price: 18_000, qty: 2 }].into(),
            total: 36_000,
        }));
        OrderView::start(1, at, &placed).unwrap()
    }

    /// The fixture view, paid.
    fn paid(at: DateTime<chrono::Utc>) -> OrderView {
        let mut paid = view();
        paid.apply(2, at, &Event::PaymentApproved { order_id: 7, payment_id: 1, amount: 36_000, card: None });
        paid
    }

    /// `paid`, cooking, and with a rider on its way to the store.
    fn cooking_with_rider(mut paid: OrderView, at: DateTime<chrono::Utc>) -> OrderView {
        paid.apply(3, at, &Event::CookingStarted { order_id: 7 });
        let prepared = Event::DeliveryPrepared {
            order_id: 7,
            rider_id: Some(1),
            rider: Some("lee".into()),
            charge_id: Some(1),
            charge: 3_000,
        };
        paid.apply(4, at, &prepared);
        paid
    }

    #[test]
    fn an_id_takes_the_particle_particle_gives_it() {
        for id in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 19, 100, 1_000_005, -3, i64::MAX, i64::MIN] {
            for (c, v) in [("이", "가"), ("은", "는"), ("을", "를")] {
                let mut text = String::new();
                IdParticle(id, c, v).put(&mut text);
                assert_eq!(text, particle(id, c, v), "{id}");
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

        let paid = paid(at);
        assert_eq!(audiences(&cancel(&paid, "")), [Audience::Customer, Audience::Owner]);

        let cooking = cooking_with_rider(paid, at);
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
            let e = Event::OrderPlaced(Box::new(crate::domain::Placed {
                order_id: id,
                store_id: 1,
                store: "BBQ".into(),
                customer: "kim".into(),
                address: "".into(),
                items: vec![].into(),
                total: 0,
            }));
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

    /// Every text, word for word, in both languages: the order of the
    /// fixture view, paid, cooking and with a rider (cancellations are
    /// applied to it first, as the engine does).
    #[test]
    fn every_text_in_both_languages() {
        let at = DateTime::from_timestamp(60, 0).unwrap();
        let v = cooking_with_rider(paid(at), at);
        let (order_id, payment_id, amount) = (7, 1, 36_000);
        let cases: Vec<(Event, &[&str], &[&str])> = vec![
            (
                Event::OrderPlaced(Box::new(crate::domain::Placed {
                    order_id,
                    store_id: 1,
                    store: "BBQ".into(),
                    customer: "kim".into(),
                    address: "".into(),
                    items: vec![].into(),
                    total: amount,
                })),
                &["[BBQ] 주문 #7이 접수되었습니다. 결제를 기다립니다. · 36,000원"],
                &["[BBQ] order #7 was placed and waits for payment. · 36,000 won"],
            ),
            (
                Event::PaymentApproved { order_id, payment_id, amount, card: None },
                &[
                    "[BBQ] 주문 #7 결제가 완료되었습니다 · 36,000원 · 상태: 결제완료",
                    "[BBQ] 새 주문 #7: 후라이드 x2 · 36,000원 (고객 kim)",
                ],
                &["[BBQ] order #7 is paid · 36,000 won · status: paid", "[BBQ] new order #7: 후라이드 x2 · 36,000 won (customer kim)"],
            ),
            (
                Event::PaymentDeclined { order_id, payment_id, amount, reason: "card limit".into(), card: None },
                &["[BBQ] 주문 #7 결제가 거절되었습니다 (card limit). 다른 카드로 다시 결제해 주세요. · 36,000원"],
                &["[BBQ] the payment for order #7 was declined (card limit); pay again with another card. · 36,000 won"],
            ),
            (
                Event::PaymentQueued { order_id, payment_id, amount, reason: String::new(), card: None },
                &["[BBQ] 주문 #7은 접수되었고, 결제 서비스가 복구되면 결제됩니다. · 36,000원"],
                &["[BBQ] order #7 is kept and will be paid when the payment service is back. · 36,000 won"],
            ),
            (
                Event::PaymentRefunded { order_id, payment_id, amount: 1_500 },
                &["[BBQ] 주문 #7 결제 1,500원이 환불되었습니다. · 36,000원"],
                &["[BBQ] the payment of 1,500 won for order #7 was refunded. · 36,000 won"],
            ),
            (
                Event::OrderRejected { order_id, reason: "busy".into() },
                &["[BBQ] 가게에서 주문 #7을 거절했습니다. 결제는 환불됩니다. · 상태: 거절 · 36,000원"],
                &["[BBQ] the store rejected order #7; the payment will be refunded. · status: rejected · 36,000 won"],
            ),
            (
                Event::CookingStarted { order_id },
                &["[BBQ] 주문 #7 조리를 시작했습니다. · 상태: 조리중 · 36,000원"],
                &["[BBQ] order #7 is being cooked. · status: cooking · 36,000 won"],
            ),
            (
                Event::FoodCooked { order_id },
                &["[BBQ] 주문 #7 조리가 완료되었습니다. · 상태: 조리완료 · 36,000원"],
                &["[BBQ] order #7 is cooked. · status: cooked · 36,000 won"],
            ),
            (
                Event::DeliveryStarted { order_id, rider_id: 1, rider: "lee".into() },
                &["[BBQ] 주문 #7 배달이 출발했습니다 (라이더 lee). · 상태: 배달중 · 36,000원"],
                &["[BBQ] order #7 is on its way (rider lee). · status: delivering · 36,000 won"],
            ),
            (
                Event::DeliveryCompleted { order_id },
                &["[BBQ] 주문 #7 배달이 완료되었습니다. 맛있게 드세요! · 상태: 배달완료 · 36,000원"],
                &["[BBQ] order #7 was delivered. Enjoy! · status: delivered · 36,000 won"],
            ),
            (
                Event::OrderCancelled { order_id, reason: " no ".into() },
                &[
                    "[BBQ] 주문 #7이 취소되었습니다. · 상태: 취소 · 36,000원",
                    "[BBQ] 주문 #7 취소 (사유: no): 조리·포장을 멈춰 주세요. · 36,000원",
                    "[BBQ] 주문 #7 배달이 취소되었습니다. 픽업하지 마세요.",
                ],
                &[
                    "[BBQ] order #7 was cancelled. · status: cancelled · 36,000 won",
                    "[BBQ] order #7 was cancelled (no); stop preparing it. · 36,000 won",
                    "[BBQ] the delivery of order #7 was cancelled; do not pick it up.",
                ],
            ),
        ];
        for (event, ko, en) in cases {
            let mut after = v.clone();
            if let Event::OrderCancelled { .. } = event {
                after.apply(5, at, &event);
            }
            for (locale, want) in [(Locale::Ko, ko), (Locale::En, en)] {
                let texts: Vec<String> = messages_for(&event, &after, locale).into_iter().map(|(_, t)| t).collect();
                assert_eq!(texts, want, "{event:?} {locale:?}");
            }
        }

        // A cancellation with no reason, to the owner.
        let cancelled = Event::OrderCancelled { order_id, reason: "  ".into() };
        let mut after = v.clone();
        after.apply(5, at, &cancelled);
        let texts = messages_for(&cancelled, &after, Locale::Ko);
        assert_eq!(texts[1].1, "[BBQ] 주문 #7 취소: 조리·포장을 멈춰 주세요. · 36,000원");

        // The extremes of an id and an amount, written as `{}` would.
        let extreme = OrderView { order_id: -3, total: i64::MIN, ..v.clone() };
        let texts = messages_for(&Event::CookingStarted { order_id: -3 }, &extreme, Locale::Ko);
        assert_eq!(texts[0].1, "[BBQ] 주문 #-3 조리를 시작했습니다. · 상태: 조리중 · -9,223,372,036,854,775,808원");
        let extreme = OrderView { order_id: i64::MAX, total: i64::MAX, ..v };
        let texts = messages_for(&Event::FoodCooked { order_id: i64::MAX }, &extreme, Locale::En);
        assert_eq!(
            texts[0].1,
            "[BBQ] order #9223372036854775807 is cooked. · status: cooked · 9,223,372,036,854,775,807 won"
        );
    }
}
