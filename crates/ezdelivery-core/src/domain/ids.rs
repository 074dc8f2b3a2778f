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
