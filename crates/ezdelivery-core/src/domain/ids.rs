//! Identifiers and money: what every aggregate, event and refusal names.
//! A leaf: it uses nothing of the crate.

/// Money: whole Korean won. Prices, totals and charges are never fractional.
pub type Won = i64;

/// An amount as every message and table writes it: `36000` → `36,000`
/// (followed by `원`, or ` won` in English).
///
/// ```
/// assert_eq!(ezdelivery_core::app::messages::won(1234567), "1,234,567");
/// assert_eq!(ezdelivery_core::domain::won(-1000), "-1,000");
/// ```
pub fn won(amount: Won) -> String {
    let mut out = String::with_capacity(27);
    push_won(&mut out, amount);
    out
}

/// Appends `amount` as [`won`] writes it, without a string of its own: a
/// message writes an amount or two into its text.
pub(crate) fn push_won(out: &mut String, amount: Won) {
    push_digits(out, amount, true);
}

/// Appends `n` in decimal, as `{n}` would, without `fmt`'s machinery (a
/// message and an idempotency key write one or two ids each).
pub(crate) fn push_int(out: &mut String, n: i64) {
    push_digits(out, n, false);
}

/// Appends `n` in decimal, with a `,` between each group of three digits
/// when `grouped`.
fn push_digits(out: &mut String, n: i64, grouped: bool) {
    // itoa writes two digits at a time into a buffer on the stack and
    // hands it back as text, unchecked: one digit at a time, with the
    // text checked as UTF-8 again, was 2.7 % of an in-memory lifecycle.
    let mut buf = itoa::Buffer::new();
    let text = buf.format(n);
    if !grouped {
        out.push_str(text);
        return;
    }
    let (sign, digits) = text.split_at(usize::from(n < 0));
    out.push_str(sign);
    // The first group has one to three digits, every later one three.
    let (first, mut rest) = digits.split_at(digits.len() - (digits.len() - 1) / 3 * 3);
    out.push_str(first);
    while let Some((group, tail)) = rest.split_at_checked(3) {
        out.push(',');
        out.push_str(group);
        rest = tail;
    }
}

/// Identifier of a store.
pub type StoreId = i64;
/// Identifier of a menu item.
pub type MenuId = i64;
/// Identifier of a rider.
pub type RiderId = i64;
/// Identifier of an order; also the correlation key of every order event.
pub type OrderId = i64;
/// Identifier of one payment attempt.
pub type PaymentId = i64;
/// Identifier of one delivery-charge attempt.
pub type ChargeId = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_int_writes_what_display_writes() {
        for n in [0, 1, -1, 9, 10, 99, 100, 12_345, -1_000_005, i64::MAX, i64::MIN] {
            let mut out = String::from("#");
            push_int(&mut out, n);
            assert_eq!(out, format!("#{n}"));
        }
    }

    #[test]
    fn won_groups_thousands_on_either_side_of_zero() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (36_000, "36,000"),
            (-1_000, "-1,000"),
            (-999_999, "-999,999"),
            (i64::MAX, "9,223,372,036,854,775,807"),
            (i64::MIN, "-9,223,372,036,854,775,808"),
        ] {
            assert_eq!(won(n), text);
        }
    }
}
