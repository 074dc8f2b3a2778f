//! Fitting a message to a channel's length limit
//! ([`crate::ports::Notifier::max_chars`]; KakaoTalk takes 200 characters).
//!
//! The one place a text is shortened: the relay fits every message to the
//! channel it sends it on, so each channel gets as much as it can take and
//! the outbox keeps the whole text. Lengths are counted in characters
//! (Unicode scalar values), not bytes: `후라이드` is 4.
//!
//! Shortened, a message keeps what it is about:
//!
//! 1. A new-order message (`[store] 새 주문 #7: a x1, b x2, … · 36,000원
//!    (고객 kim)`, as `app::messages::messages_for` writes it) lists as
//!    many items as fit, then `외 N개` (`and N more`), and keeps the order
//!    number, the total and the customer.
//! 2. Any other text has its `[store]` name shortened first, then its
//!    middle, keeping the end (the total, after the last ` · `).
//! 3. As a last resort the text is cut, ending in `…`.

use std::borrow::Cow;

/// What stands for the text left out.
const ELLIPSIS: char = '…';

/// The fewest characters a shortened store name keeps.
const MIN_STORE: usize = 6;

/// `text` shortened to at most `max_chars` characters, or `text` itself
/// when it fits (see the module documentation).
///
/// ```
/// use ezdelivery_core::domain::fit::fit;
/// let text = "[BBQ] 새 주문 #7: 후라이드 x2, 양념 x1, 콜라 x3 · 42,000원 (고객 kim)";
/// assert_eq!(fit(text, 100), text);
/// assert_eq!(fit(text, 46), "[BBQ] 새 주문 #7: 후라이드 x2 외 2개 · 42,000원 (고객 kim)");
/// assert_eq!(fit(text, 46).chars().count(), 46);
/// ```
pub fn fit(text: &str, max_chars: usize) -> Cow<'_, str> {
    if chars(text) <= max_chars {
        return Cow::Borrowed(text);
    }
    if let Some(order) = NewOrder::parse(text) {
        let (fitted, fits) = order.within(max_chars);
        return Cow::Owned(if fits { fitted } else { shorten(&fitted, max_chars) });
    }
    Cow::Owned(shorten(text, max_chars))
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// The first `n` characters of `text`.
fn first(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}

/// The language a new-order message was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Ko,
    En,
}

impl Lang {
    /// What comes before the order number.
    fn marker(self) -> &'static str {
        match self {
            Lang::Ko => "] 새 주문 #",
            Lang::En => "] new order #",
        }
    }

    /// What follows the total (which follows ` · `).
    fn after_total(self) -> &'static str {
        match self {
            Lang::Ko => "원 (고객 ",
            Lang::En => " won (customer ",
        }
    }

    /// ` 외 3개`, or for no item listed `메뉴 30개`.
    fn more(self, listed: usize, all: usize) -> String {
        match (self, listed) {
            (Lang::Ko, 0) => format!("메뉴 {all}개"),
            (Lang::En, 0) => format!("{all} items"),
            (Lang::Ko, _) => format!(" 외 {}개", all - listed),
            (Lang::En, _) => format!(" and {} more", all - listed),
        }
    }
}

/// A new-order message taken apart.
#[derive(Debug)]
struct NewOrder<'t> {
    lang: Lang,
    /// `[store] 새 주문 #7: `
    head: &'t str,
    /// `후라이드 x2`, one per item.
    items: Vec<&'t str>,
    /// ` · 36,000원 (고객 kim)`
    tail: &'t str,
}

impl<'t> NewOrder<'t> {
    fn parse(text: &'t str) -> Option<NewOrder<'t>> {
        if !text.starts_with('[') {
            return None;
        }
        let (lang, at) = [Lang::Ko, Lang::En].into_iter().find_map(|l| text.find(l.marker()).map(|at| (l, at)))?;
        let number = &text[at + lang.marker().len()..];
        let digits = number.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || !number[digits..].starts_with(": ") {
            return None;
        }
        let head_end = at + lang.marker().len() + digits + 2;
        let (head, rest) = text.split_at(head_end);
        let tail_at = rest.match_indices(" · ").map(|(i, _)| i).find(|&i| {
            let after = &rest[i + " · ".len()..];
            let total = after.bytes().take_while(|b| b.is_ascii_digit() || *b == b',').count();
            total > 0 && after[total..].starts_with(lang.after_total())
        })?;
        let (list, tail) = rest.split_at(tail_at);
        Some(NewOrder { lang, head, items: items(list), tail })
    }

    /// The message with as many items as fit in `max_chars`, and whether it
    /// fits (with no item listed it may still not).
    fn within(&self, max_chars: usize) -> (String, bool) {
        let all = self.items.len();
        let fixed = chars(self.head) + chars(self.tail);
        let mut listed = String::new();
        let mut best = format!("{}{}{}", self.head, self.lang.more(0, all), self.tail);
        for (n, item) in self.items.iter().enumerate() {
            if n > 0 {
                listed.push_str(", ");
            }
            listed.push_str(item);
            let more = if n + 1 == all { String::new() } else { self.lang.more(n + 1, all) };
            if fixed + chars(&listed) + chars(&more) > max_chars {
                break;
            }
            best = format!("{}{listed}{more}{}", self.head, self.tail);
        }
        let fits = chars(&best) <= max_chars;
        (best, fits)
    }
}

/// `a x1, b, c x2, d x3` → `a x1`, `b, c x2`, `d x3`: an item ends in
/// ` x` and its quantity, so a menu name with a comma stays whole.
fn items(list: &str) -> Vec<&str> {
    let ends_item = |piece: &str| {
        piece.rsplit_once(" x").is_some_and(|(_, qty)| !qty.is_empty() && qty.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut items = Vec::new();
    let mut start = 0;
    for (i, _) in list.match_indices(", ") {
        if ends_item(&list[start..i]) {
            items.push(&list[start..i]);
            start = i + 2;
        }
    }
    if start < list.len() {
        items.push(&list[start..]);
    }
    items
}

/// Any text, shortened: the store name in `[…]` first, then the middle
/// (keeping the end after the last ` · `), then the end.
fn shorten(text: &str, max_chars: usize) -> String {
    let over = chars(text).saturating_sub(max_chars);
    if over == 0 {
        return text.to_string();
    }
    let mut text = text.to_string();
    if let Some(close) = text.strip_prefix('[').and_then(|t| t.find("] ")).map(|i| i + 1) {
        let store = &text[1..close];
        let keep = chars(store).saturating_sub(over + 1).max(MIN_STORE);
        if keep < chars(store) {
            text = format!("[{}{ELLIPSIS}{}", first(store, keep), &text[close..]);
            if chars(&text) <= max_chars {
                return text;
            }
        }
    }
    if let Some(at) = text.rfind(" · ") {
        let end = &text[at..];
        if chars(end) < max_chars / 2 {
            let keep = max_chars - chars(end) - 1;
            return format!("{}{ELLIPSIS}{end}", first(&text, keep));
        }
    }
    match max_chars {
        0 => String::new(),
        n => format!("{}{ELLIPSIS}", first(&text, n - 1)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::app::messages::{messages_for, Audience, Locale};
    use crate::domain::view::OrderView;
    use crate::domain::{Event, OrderItem};

    fn view(items: usize, store: &str, customer: &str) -> OrderView {
        let items: Vec<OrderItem> = (1..=items)
            .map(|i| OrderItem { menu_id: i as i64, name: format!("메뉴{i}, 특").into(), unit_price: 1_000, qty: 2 })
            .collect();
        let total = items.iter().map(|i| i.unit_price * i64::from(i.qty)).sum();
        let placed = Event::OrderPlaced(Box::new(crate::domain::Placed {
            order_id: 4321,
            store_id: 1,
            store: store.into(),
            customer: customer.into(),
            address: "".into(),
            items: items.into(),
            total,
        }));
        OrderView::start(1, DateTime::from_timestamp(0, 0).unwrap(), &placed).unwrap()
    }

    fn owner_text(view: &OrderView, locale: Locale) -> String {
        let paid = Event::PaymentApproved { order_id: 4321, payment_id: 1, amount: view.total, card: None };
        let all = messages_for(&paid, view, locale);
        all.into_iter().find(|(a, _)| *a == Audience::Owner).map(|(_, t)| t).unwrap()
    }

    #[test]
    fn a_big_order_lists_what_fits_then_how_many_more() {
        let v = view(30, "교촌치킨", "kim");
        let text = owner_text(&v, Locale::Ko);
        assert!(chars(&text) > 200, "{text}");
        let fitted = fit(&text, 200);
        assert!(chars(&fitted) <= 200, "{fitted}");
        assert!(fitted.starts_with("[교촌치킨] 새 주문 #4321: 메뉴1, 특 x2, 메뉴2, 특 x2"), "{fitted}");
        assert!(fitted.ends_with(" · 60,000원 (고객 kim)"), "{fitted}");
        let listed = fitted.matches(" x2").count();
        assert!(fitted.contains(&format!(" 외 {}개 · ", 30 - listed)), "{fitted}");
        assert!(listed > 5, "as many as fit: {fitted}");
        // One more item would not have fitted.
        let english = fit(&owner_text(&v, Locale::En), 200).into_owned();
        assert!(chars(&english) <= 200, "{english}");
        assert!(
            english.contains("new order #4321: ") && english.ends_with(" · 60,000 won (customer kim)"),
            "{english}"
        );
        assert!(english.contains(" more · "), "{english}");
    }

    #[test]
    fn no_item_listed_still_names_the_order_and_total() {
        let v = view(3, "BBQ", "kim");
        let text = owner_text(&v, Locale::Ko);
        assert_eq!(fit(&text, 41), "[BBQ] 새 주문 #4321: 메뉴 3개 · 6,000원 (고객 kim)");
        assert_eq!(fit(&text, 49), "[BBQ] 새 주문 #4321: 메뉴 3개 · 6,000원 (고객 kim)");
        assert_eq!(fit(&text, 50), "[BBQ] 새 주문 #4321: 메뉴1, 특 x2 외 2개 · 6,000원 (고객 kim)");
    }

    #[test]
    fn long_names_are_shortened_never_over_the_limit() {
        let long = "가".repeat(300);
        for (store, customer) in [(long.as_str(), "kim"), ("BBQ", long.as_str()), (long.as_str(), long.as_str())] {
            let v = view(30, store, customer);
            for locale in [Locale::Ko, Locale::En] {
                let text = owner_text(&v, locale);
                for max in [0, 1, 10, 50, 200] {
                    let fitted = fit(&text, max);
                    assert!(chars(&fitted) <= max, "{max}: {fitted}");
                }
                let fitted = fit(&text, 200);
                if customer == "kim" {
                    assert!(fitted.contains("#4321") && fitted.contains("60,000"), "{fitted}");
                }
            }
        }
        let cancelled = Event::OrderCancelled { order_id: 4321, reason: "x".repeat(500) };
        let v = view(1, &long, "kim");
        for (_, text) in messages_for(&cancelled, &v, Locale::Ko) {
            let fitted = fit(&text, 200);
            assert!(chars(&fitted) <= 200, "{fitted}");
            assert!(fitted.contains("#4321") && fitted.ends_with("2,000원"), "{fitted}");
        }
    }

    #[test]
    fn text_that_fits_is_left_alone() {
        assert!(matches!(fit("짧은 메시지", 6), Cow::Borrowed("짧은 메시지")));
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("[store] 주문 #1 · 1,000원", 200), "[store] 주문 #1 · 1,000원");
        // A text that only looks like a list is cut like any other.
        assert_eq!(chars(&fit("[x] 새 주문 #: a · b", 10)), 10);
    }

    #[test]
    fn items_keep_menu_names_with_commas_whole() {
        assert_eq!(items("a x1, b, c x2, d x3"), ["a x1", "b, c x2", "d x3"]);
        assert_eq!(items("a x1"), ["a x1"]);
    }
}
