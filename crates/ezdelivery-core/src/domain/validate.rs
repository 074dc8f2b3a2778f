//! Input validation: values a user typed that can never be right, whatever
//! the state (exit code 2). Checked before anything is written.

use super::Won;

/// The largest price of one menu item, in won. Keeps every total far from
/// integer overflow (999 items of 999 of the most expensive menu still fit).
pub const MAX_PRICE: Won = 100_000_000;
/// The largest quantity of one item in one order.
pub const MAX_QTY: u32 = 999;
/// The most distinct items in one order.
pub const MAX_ITEMS: usize = 100;
/// The longest name, address, reason or review text, in characters.
pub const MAX_TEXT: usize = 1000;

/// A value that is wrong whatever the state: exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A non-empty, trimmed name of at most [`MAX_TEXT`] characters.
///
/// ```
/// use ezdelivery_core::domain::validate::name;
/// assert_eq!(name("store name", "  BBQ ").unwrap(), "BBQ");
/// assert!(name("store name", " ").is_err());
/// ```
pub fn name(what: &str, value: &str) -> Result<String, Invalid> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Invalid(format!("{what} must not be empty")));
    }
    text(what, trimmed)
}

/// Free text of at most [`MAX_TEXT`] characters (may be empty).
pub fn text(what: &str, value: &str) -> Result<String, Invalid> {
    if value.chars().count() > MAX_TEXT {
        return Err(Invalid(format!("{what} is longer than {MAX_TEXT} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid(format!("{what} contains control characters")));
    }
    Ok(value.to_string())
}

/// A price in whole won: 1 ..= [`MAX_PRICE`].
pub fn price(value: Won) -> Result<Won, Invalid> {
    if value <= 0 {
        return Err(Invalid(format!("price must be at least 1 won, got {value}")));
    }
    if value > MAX_PRICE {
        return Err(Invalid(format!("price {value} is above the limit of {MAX_PRICE} won")));
    }
    Ok(value)
}

/// A delivery charge in whole won: 0 ..= [`MAX_PRICE`] (a store may deliver for free).
pub fn charge(value: Won) -> Result<Won, Invalid> {
    if !(0..=MAX_PRICE).contains(&value) {
        return Err(Invalid(format!("delivery charge must be between 0 and {MAX_PRICE} won, got {value}")));
    }
    Ok(value)
}

/// A quantity: 1 ..= [`MAX_QTY`].
pub fn qty(value: u32) -> Result<u32, Invalid> {
    if value == 0 || value > MAX_QTY {
        return Err(Invalid(format!("quantity must be between 1 and {MAX_QTY}, got {value}")));
    }
    Ok(value)
}

/// A review score: 1 ..= 5.
pub fn score(value: u8) -> Result<u8, Invalid> {
    if !(1..=5).contains(&value) {
        return Err(Invalid(format!("score must be between 1 and 5, got {value}")));
    }
    Ok(value)
}
