//! Application services: the [`engine::Engine`] facade that runs each
//! command as a transaction around the pure domain, the saga that calls the
//! gateways between transactions, the projector and the outbox relay.

pub mod breakers;
pub mod catalogue;
mod command;
pub mod copy;
pub mod engine;
mod event_ids;
pub mod invariants;
pub mod lifecycle;
pub mod messages;
mod nonces;
mod notify;
pub mod projector;
pub mod relay;
pub mod requests;
pub mod retry;
mod saga;
pub mod simulate;
pub mod watch;
