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
    // Written backwards into a buffer on the stack, then appended at once:
    // 27 bytes hold any i64 with its sign and commas.
    let mut buf = [0u8; 27];
    let (mut rest, mut at, mut written) = (n.unsigned_abs(), buf.len(), 0);
    loop {
        if grouped && written > 0 && written % 3 == 0 {
            at -= 1;
            buf[at] = b',';
        }
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        written += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    // ASCII, so always UTF-8; appended as one slice (pushing it char by
    // char cost more than working the digits out).
    if let Ok(text) = std::str::from_utf8(&buf[at..]) {
        out.push_str(text);
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
