//! # ezdelivery-core
//!
//! A food-delivery ordering engine: stores and menus, orders, payment, the
//! store owner's inbox, cooking, delivery with the rider's delivery charge,
//! cancellation with compensation, reviews, the "mypage" view of every
//! order, and a message on every status change.
//!
//! The crate is laid out as a hexagon:
//!
//! - [`domain`]: pure state machines (order, payment, kitchen ticket,
//!   delivery, delivery charge, store) and their [`domain::Event`]s. No I/O.
//! - [`app`]: the [`Engine`] facade, one method per command; each command
//!   runs in one write transaction, gateway calls happen between
//!   transactions, never inside one.
//! - [`ports`]: the traits the engine talks to: [`ports::Storage`],
//!   [`ports::PaymentGateway`], [`ports::ChargeGateway`],
//!   [`ports::Notifier`], [`ports::Clock`].
//! - [`adapters`]: SQLite and in-memory storage, sandbox and HTTP
//!   gateways, console, JSON-lines, webhook and KakaoTalk notifiers.
//!
//! ```
//! use ezdelivery_core::{adapters::memory::MemoryStorage, Engine, ItemPick};
//!
//! let mut engine = Engine::builder(MemoryStorage::new()).build();
//! let store = engine.add_store("BBQ", Some("park"), None).unwrap();
//! engine.add_menu(store.id, "후라이드", 18_000).unwrap();
//! engine.add_rider("lee").unwrap();
//! let order = engine
//!     .place_order(store.id, "kim", &[ItemPick::new("후라이드", 2)], "", true, None)
//!     .unwrap();
//! assert_eq!(order.total, 36_000);
//! assert_eq!(order.status.as_str(), "paid");
//! ```

#![deny(missing_docs)]

pub mod adapters;
pub mod app;
pub mod domain;
mod error;
pub mod ports;

pub use app::engine::{Engine, EngineBuilder, ItemPick};
pub use app::view::OrderView;
pub use error::{Error, Result};
