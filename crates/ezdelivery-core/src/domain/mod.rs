//! The pure domain: aggregates as state machines, their events and refusals.
//!
//! Nothing in here touches SQLite, HTTP or the clock. Every transition is a
//! function of the current state and a command that returns the new state and
//! the events it produced, or a [`Refusal`] that says why the move is not
//! allowed. The application layer (`crate::app`) loads aggregates, calls
//! these functions and stores the results.

pub mod attempt;
pub mod billed;
pub mod breaker;
pub mod catalogue;
pub mod charge;
pub mod delivery;
pub mod event;
pub mod fit;
pub mod kitchen;
pub mod order;
pub mod payment;
pub mod refusal;
pub mod review;
pub mod time;
pub mod validate;
pub mod view;

pub use billed::{Billed, BillingAction, BillingStatus};
pub use breaker::{Breaker, BreakerName, BreakerSettings, BreakerState, ChannelName};
pub use catalogue::{Menu, Rider, Store};
pub use charge::{Charge, ChargeStatus};
pub use delivery::{Delivery, DeliveryStatus};
pub use event::{Event, EventType};
pub use kitchen::{KitchenStatus, KitchenTicket};
pub use order::{Order, OrderItem, OrderStatus};
pub use payment::{Payment, PaymentStatus};
pub use refusal::{Billing, DomainError, Refusal, Standing};
pub use review::Review;

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

/// Implements `as_str`, `Display` and `FromStr` for a status enum from one
/// table of `Variant => "snake_case"` pairs, so the strings in JSON, in the
/// database and in messages can never drift apart.
macro_rules! status_strings {
    ($ty:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            /// Every status, in lifecycle order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable snake_case name used in JSON and in the database.
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $s),+ }
            }
        }

        $crate::domain::named_strings!($ty);
    };
}
pub(crate) use status_strings;

/// Implements `Display`, `FromStr`, `Serialize` and `Deserialize` for an
/// enum that names itself with `as_str` and lists itself in `ALL`: it is
/// written and read as that name, and nothing else reads.
macro_rules! named_strings {
    ($ty:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|t| t.as_str() == s)
                    .ok_or_else(|| format!("unknown {} `{s}`", stringify!($ty)))
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use named_strings;
