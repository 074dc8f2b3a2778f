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
mod ids;
mod item;
pub mod kitchen;
pub mod order;
pub mod payment;
pub mod refusal;
pub mod review;
mod status;
pub(crate) mod strings;
pub mod time;
pub mod validate;
pub mod view;

pub use billed::{Billed, BillingAction, BillingStatus};
pub use breaker::{Breaker, BreakerName, BreakerSettings, BreakerState, ChannelName};
pub use catalogue::{Menu, Rider, Store};
pub use charge::{Charge, ChargeStatus};
pub use delivery::{Delivery, DeliveryStatus};
pub use event::{Event, EventType, Placed};
pub(crate) use ids::{push_int, push_won};
pub use ids::{won, ChargeId, MenuId, OrderId, PaymentId, RiderId, StoreId, Won};
pub use item::OrderItem;
pub use kitchen::{KitchenStatus, KitchenTicket};
pub use order::{Order, OrderStatus};
pub use payment::{Payment, PaymentStatus};
pub use refusal::{Billing, DomainError, Refusal, Standing};
pub use review::Review;
/// The domain's names, copied with every record that holds them (an
/// order's customer, address and store name, the catalogue's names, a
/// rider's, a message's recipient): up to 23 bytes inline, a shared
/// block beyond, O(1) to clone either way. `SmolStr::from("kim")`;
/// `&*text` or `text.as_str()` for the `&str`.
pub use smol_str::SmolStr;

pub(crate) use strings::status_strings;
