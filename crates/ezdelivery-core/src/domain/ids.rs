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
    // The digits, last first, on the stack: a message writes an amount
    // or two, and only the result is a string of its own.
    let mut digits = [0u8; 20];
    let (mut rest, mut len) = (amount.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(len + len / 3 + 1);
    if amount < 0 {
        out.push('-');
    }
    for (i, &digit) in digits[..len].iter().enumerate().rev() {
        out.push(char::from(digit));
        if i > 0 && i % 3 == 0 {
            out.push(',');
        }
    }
    out
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
