//! # ezdelivery-core
//!
//! A food-delivery ordering engine: stores and menus, orders, payment, the
//! store owner's inbox, cooking, delivery with the rider's delivery charge,
//! cancellation with compensation, reviews, the "mypage" view of every
//! order, and a message on every status change. It is synchronous, has no
//! runtime to start, and keeps everything in one storage (SQLite by
//! default, or in memory).
//!
//! - [Quick start](#quick-start)
//! - [The order's state machine](#the-orders-state-machine)
//! - [The other aggregates](#the-other-aggregates)
//! - [The ports, and how to write an adapter](#the-ports-and-how-to-write-an-adapter)
//! - [The guarantees](#the-guarantees)
//! - [Errors](#errors) and [logging](#logging)
//!
//! The crate is laid out as a hexagon:
//!
//! - [`domain`]: pure state machines (order, payment, kitchen ticket,
//!   delivery, delivery charge, store) and their [`domain::Event`]s. No I/O,
//!   no clock: each move is a function of (state, command, now).
//! - [`app`]: the [`Engine`] facade, one method per command; each command
//!   runs in one write transaction, gateway calls happen between
//!   transactions, never inside one.
//! - [`ports`]: the traits the engine talks to: [`ports::Storage`],
//!   [`ports::PaymentGateway`], [`ports::ChargeGateway`],
//!   [`ports::Notifier`], [`ports::Clock`].
//! - [`adapters`]: SQLite and in-memory storage, sandbox and HTTP
//!   gateways, console, JSON-lines, webhook and KakaoTalk notifiers.
//! - [`json`]: the JSON contract, the shapes the CLI's `--json` prints
//!   (with [`OrderView`]); with the `openapi` feature each implements
//!   `utoipa::ToSchema`, so an HTTP API's OpenAPI document comes from the
//!   types that write its JSON.
//!
//! ## Quick start
//!
//! ```
//! use ezdelivery_core::{adapters::memory::MemoryStorage, Engine, ItemPick, NewOrder};
//!
//! let engine = Engine::builder(MemoryStorage::new()).build();
//! let store = engine.add_store("BBQ", Some("park"), None).unwrap();
//! engine.add_menu(store.id, "후라이드", 18_000).unwrap();
//! engine.add_rider("lee").unwrap();
//! let order = engine
//!     .place_order(NewOrder::new(store.id, "kim", &[ItemPick::new("후라이드", 2)]).pay_now(None))
//!     .unwrap();
//! assert_eq!(order.total, 36_000);
//! assert_eq!(order.status.as_str(), "paid");
//!
//! engine.start_cooking(order.order_id).unwrap(); // a delivery is prepared with lee, whose charge is paid
//! engine.finish_cooking(order.order_id).unwrap();
//! engine.start_delivery(order.order_id, None).unwrap();
//! let view = engine.complete_delivery(order.order_id).unwrap();
//! assert_eq!(view.status.as_str(), "delivered");
//! ```
//!
//! For a file on disk, use [`adapters::sqlite::SqliteStorage::open`]`(path)?` instead
//! of [`adapters::memory::MemoryStorage::new`]. The repository's
//! `examples/embed.rs` (own notifier) and `examples/custom_gateway.rs` (own
//! payment gateway) are complete programs: `cargo run --example embed`.
//!
//! ## The order's state machine
//!
//! [`domain::OrderStatus::next`] is the whole table; every other move is
//! refused with a [`domain::Refusal`] ([`Error::Refused`]) and
//! writes nothing.
//!
//! | from | action ([`Engine`] method) | to | also happens |
//! |---|---|---|---|
//! | — | place ([`Engine::place_order`]) | `pending_payment` | not established: the store does not see it |
//! | `pending_payment` | pay, approved by the gateway ([`Engine::pay`], or `place_order` with `pay`) | `paid` | a kitchen ticket is `received`; the owner is told |
//! | `pending_payment` | pay, declined | `pending_payment` | [`Error::Declined`]; pay again with another card |
//! | `pending_payment` | pay, gateway unreachable | `pending_payment` | [`Error::Unavailable`]; the payment is queued and [`Engine::relay`] retries it under the same idempotency key |
//! | `paid` | start cooking ([`Engine::start_cooking`]) | `cooking` | a delivery is prepared with the least busy rider, whose delivery charge is paid |
//! | `paid` | reject ([`Engine::reject`]) | `rejected` | the payment is refunded |
//! | `cooking` | finish cooking ([`Engine::finish_cooking`]) | `cooked` | |
//! | `cooked` | depart ([`Engine::start_delivery`]) | `delivering` | needs a rider whose delivery charge is `paid` |
//! | `delivering` | complete ([`Engine::complete_delivery`]) | `delivered` | the customer may review it once ([`Engine::review`]) |
//! | `pending_payment`, `paid`, `cooking`, `cooked` | cancel ([`Engine::cancel`]) | `cancelled` | payment refunded (or a queued one voided), kitchen ticket and delivery cancelled, a paid delivery charge taken back |
//! | `delivering`, `delivered` | cancel | refused | [`domain::Refusal::AlreadyDeparted`]: "order 7 is already on its way (delivering); it can no longer be cancelled" (or "order 7 was already delivered; …") |
//!
//! `delivered`, `cancelled` and `rejected` are final.
//!
//! ```
//! use ezdelivery_core::domain::order::OrderAction;
//! use ezdelivery_core::domain::OrderStatus;
//!
//! assert_eq!(OrderStatus::Paid.next(OrderAction::StartCooking), Some(OrderStatus::Cooking));
//! assert_eq!(OrderStatus::Delivering.next(OrderAction::Cancel), None);
//! ```
//!
//! ## The other aggregates
//!
//! Each has its own state machine in [`domain`], with a diagram in its
//! module's documentation:
//!
//! - [`domain::Payment`] (one attempt per try to pay): `pending` →
//!   `approved` | `declined` | `voided`; `approved` → `refund_pending` →
//!   `refunded`; `pending` or `refund_pending` → `needs_attention` when the
//!   gateway's answers stay unreadable (a person looks, then requeues it).
//! - [`domain::KitchenTicket`] (the store's side of a paid order):
//!   `received` → `cooking` → `cooked`; `received` → `rejected`; any of the
//!   three → `cancelled`.
//! - [`domain::Delivery`]: `preparing` → `delivering` → `delivered`;
//!   `preparing` → `cancelled`.
//! - [`domain::Charge`] (the rider's delivery charge): `pending` → `paid`
//!   | `voided`; `paid` → `refund_pending` → `refunded`; `needs_attention`
//!   as for a payment.
//! - [`domain::attempt::Attempt`]: the bookkeeping of one gateway call of
//!   either, the same for both: claimed before the call, judged after it
//!   ([`domain::attempt::Attempt::judge`] is the one place that says what an
//!   answer means).
//! - The catalogue: [`domain::Store`] (open or closed, review count and
//!   average), [`domain::Menu`] (available or sold out), [`domain::Rider`];
//!   [`domain::Review`], one per delivered order.
//! - [`domain::Breaker`]: the circuit breaker around each gateway and
//!   notifier channel, `closed` → `open` → `half_open`, kept in the storage.
//!
//! Every change appends [`domain::Event`]s to the log; the mypage
//! [`OrderView`] is a pure fold of an order's events
//! ([`domain::view::OrderView::apply`]).
//!
//! ## The ports, and how to write an adapter
//!
//! | port | what it does | adapters in this crate |
//! |---|---|---|
//! | [`ports::Storage`] / [`ports::Repo`] | runs a unit of work in one transaction | [`adapters::sqlite`], [`adapters::memory`] |
//! | [`ports::PaymentGateway`] | approves and refunds customers' payments | [`adapters::sandbox::SandboxPayment`] |
//! | [`ports::ChargeGateway`] | pays riders' delivery charges and takes them back | [`adapters::sandbox::SandboxCharge`] |
//! | [`ports::Notifier`] | delivers one message on one channel | [`adapters::console::ConsoleNotifier`] |
//! | [`ports::Clock`] | says what time it is | [`ports::SystemClock`] |
//!
//! An adapter is a type that implements the trait, handed to the
//! [`EngineBuilder`]: [`EngineBuilder::payment`], [`EngineBuilder::charge`],
//! [`EngineBuilder::notifier`] (several channels allowed, each with its own
//! name), [`EngineBuilder::clock`]; storage is the argument of
//! [`Engine::builder`]. The rules an adapter has to keep:
//!
//! - **Gateways** get an `idempotency_key` that stays the same when the same
//!   attempt is retried: acting on a key twice must not charge twice, and a
//!   repeated key must be answered with the first result. Answer
//!   [`ports::GatewayOutcome::Approved`] with the gateway's own reference
//!   (needed to refund), [`ports::GatewayOutcome::Declined`] only for a
//!   final "no" (a refused card; a refused delivery charge or refund, which
//!   the engine asks again), [`ports::GatewayOutcome::NotReached`] only
//!   when the request certainly never left (the connection was never
//!   established), and [`ports::GatewayOutcome::Unavailable`] for anything
//!   else: the gateway may have acted, and the engine replays the key until
//!   it learns the answer, never dropping the attempt. An approval whose
//!   reference is blank, and a gateway's panic, are taken as `Unavailable`
//!   too (the key is asked again). Give every call a
//!   timeout shorter than half the engine's claim lease
//!   ([`EngineBuilder::lease`], a minute by default); the engine calls
//!   gateways outside any transaction.
//! - **Notifiers** return `Err` for "not delivered, try again later"; the
//!   message stays in the outbox and is retried with back-off, never sent
//!   twice on the same channel once delivered. [`ports::Message::id`] is
//!   stable across retries, so a receiver can drop repeats. A notifier
//!   never fails a command (its panic counts as a failed send). A channel that takes texts of limited length
//!   says so ([`ports::Notifier::max_chars`]) and gets every message fitted
//!   to it ([`domain::fit`]).
//! - **Clocks** ([`ports::Clock`]) should not go back: leases, back-offs
//!   and breakers' cool-downs are times compared with the clock's, which a
//!   step back stretches by as much, and a view's timeline shows the times
//!   as read. Nothing is lost or moved twice either way.
//! - **Storage** must make [`ports::Storage::write`] atomic: all of a unit
//!   of work or nothing. [`adapters::memory`] is a complete example.
//! - Every port is `Send`: an engine can move between threads.
//!
//! A notifier of your own, plugged in and seeing the messages of an order:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! use ezdelivery_core::adapters::memory::MemoryStorage;
//! use ezdelivery_core::domain::ChannelName;
//! use ezdelivery_core::ports::{Message, Notifier};
//! use ezdelivery_core::{Engine, ItemPick, NewOrder};
//!
//! /// Keeps every message in a shared list (a real one would call an API).
//! #[derive(Clone)]
//! struct Inbox(ChannelName, Arc<Mutex<Vec<String>>>);
//!
//! impl Notifier for Inbox {
//!     fn channel(&self) -> &ChannelName {
//!         &self.0
//!     }
//!
//!     fn send(&self, message: &Message) -> Result<(), String> {
//!         let mut list = self.1.lock().map_err(|_| "the inbox is poisoned".to_string())?;
//!         list.push(format!("{} → {}: {}", message.event, message.recipient, message.text));
//!         Ok(())
//!     }
//! }
//!
//! let inbox = Inbox(ChannelName::new("inbox").unwrap(), Arc::default());
//! let engine = Engine::builder(MemoryStorage::new()).notifier(inbox.clone()).build();
//! let store = engine.add_store("BBQ", Some("park"), None).unwrap();
//! engine.add_menu(store.id, "후라이드", 18_000).unwrap();
//! engine.place_order(NewOrder::new(store.id, "kim", &[ItemPick::new("후라이드", 1)]).pay_now(None)).unwrap();
//!
//! let seen = inbox.1.lock().unwrap();
//! assert!(seen.iter().any(|m| m.starts_with("PaymentApproved → kim")));
//! assert!(seen.iter().any(|m| m.starts_with("PaymentApproved → park")), "the owner hears of a paid order");
//! ```
//!
//! ## The guarantees
//!
//! - **No order without a payment.** An order is established (`paid`, in the
//!   store's inbox) only once the gateway approved its payment.
//! - **One transaction per command.** A command's state changes, its events,
//!   the mypage views and the queued messages commit together or not at
//!   all (a transactional outbox); a refused command writes nothing.
//! - **Money moves once.** A gateway call is made only for a payment or
//!   charge that a transaction has just claimed (still in the state that
//!   needs the call, a token and a lease written); commands claim in the
//!   transaction that checks their preconditions, so a refused command never
//!   calls a gateway. The answer is recorded in a second transaction, only
//!   while the claim holds, except a definite answer, which is a fact
//!   whoever holds the claim by then (an approval nobody wants any more is
//!   refunded, never dropped). A crash in between leaves the claim to lapse;
//!   [`Engine::relay`] then replays the same key, so nobody is charged
//!   twice. An answer that may hide an approval (a 5xx, an unreadable 2xx, a
//!   timeout) is never taken to mean "nothing happened".
//! - **Fault isolation.** Orders are taken while the payment service is
//!   down (kept `pending_payment`, the payment queued); a circuit breaker
//!   per gateway and notifier channel fails fast after repeated failures
//!   and lets one trial call through after a cool-down. Its state is in the
//!   storage, so it holds across processes.
//! - **Compensation.** A cancelled or rejected order that was paid is
//!   refunded; a paid delivery charge is taken back. What a gateway cannot
//!   do now is queued, never dropped.
//! - **Messages** are sent after the commit, retried with back-off, never
//!   lost, and never sent again on a channel once recorded as delivered
//!   there (a send whose record is lost, a crash say, is repeated: a
//!   receiver drops repeats by [`ports::Message::id`]). A notifier that is
//!   down, or panics, never fails an order; one that honours
//!   [`ports::Notifier::send_within`] (those of [`adapters`] do) never holds
//!   a command past its relay budget, while one that does not holds it for
//!   as long as its `send` takes.
//! - **CQRS.** The mypage views are built from the event log by a projector
//!   that is idempotent per event and can rebuild them from scratch to the
//!   same result ([`Engine::rebuild_projection`]).
//! - Every order event carries the order id, its correlation key.
//!
//! ## Errors
//!
//! Every fallible call returns [`Result`]; [`Error`] says what the caller
//! should do: fix the input ([`Error::Invalid`]), look elsewhere
//! ([`Error::NotFound`]), respect the state machine ([`Error::Refused`]),
//! pay with another card ([`Error::Declined`]), try again later
//! ([`Error::Unavailable`]), or do not pay again: the money moved but the
//! command failed after it ([`Error::MoneyMoved`]). Messages name the id
//! and, where the library can tell, what would help; [`Error::kind`] is a
//! stable name of each case, and [`Error::order`] the order an error is
//! about when money is involved. The library names no command of the CLI:
//! the `ezdelivery` program adds those, and its exit codes, in one place.
//!
//! ## Logging
//!
//! The engine logs with [`tracing`](https://docs.rs/tracing) and installs no
//! subscriber: each command is a span (info), each gateway call an info
//! event `gateway call` with `gateway`, `call`, `order`, `result` and
//! `elapsed_ms`, each appended event and notifier call a debug event.
//! Install any subscriber to see them; the `ezdelivery` CLI does with `-v`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

/// README's Rust example, compiled with the doc tests so that it cannot
/// drift from the library.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

pub mod adapters;
pub mod app;
pub mod domain;
mod error;
pub mod json;
pub mod ports;
mod wiring;

pub use app::engine::{Engine, EngineBuilder, ItemPick, MenuPick, NewOrder, PayNow};
pub use domain::view::OrderView;
pub use error::{Error, ErrorKind, Kept, Record, Result, StorageError, StorageProblem};
pub use ports::requests::{RequestClaim, StoredResponse};
