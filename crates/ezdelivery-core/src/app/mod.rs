//! Application services: the [`engine::Engine`] facade that runs each
//! command as a transaction around the pure domain, the saga that calls the
//! gateways between transactions, the projector and the outbox relay.

pub mod engine;
pub mod messages;
pub mod outbox;
pub mod projector;
pub mod storage;
pub mod view;
