//! What the ezdelivery tests share, in one place.
//!
//! - [`server`]: one small HTTP/1.1 server on 127.0.0.1 that records every
//!   request, with its front door for the adapters' unit tests in
//!   ezdelivery-core: [`server::ScriptedServer`], which answers with a list
//!   of replies in order.
//! - [`gateway`]: the other front door of the same server, a fake payment,
//!   delivery-charge or webhook service that answers by a [`gateway::Mode`],
//!   idempotently, and keeps a [`gateway::Ledger`] of the money it moved.
//! - [`cli_world`]: running the `ezdelivery` binary in a temporary
//!   [`cli_world::World`] (database, config, data folder and home of its
//!   own, a clean environment, bounded processes, `--json` helpers) and the
//!   assertions the fault and money tests make against a gateway.
//! - [`files::folder`]: a folder's files and their bytes, for the tests that
//!   check a refused database was left untouched (core's and the CLI's).
//! - [`postgres`]: a real PostgreSQL server for the tests, one per test
//!   process (a throwaway one from the machine's `initdb`/`postgres`, or
//!   `EZDELIVERY_TEST_PG`'s), a fresh database per test, and a skip (or,
//!   with `EZDELIVERY_REQUIRE_PG=1`, a failure) when there is none.
//!
//! The crate does not depend on ezdelivery-core, so core's unit tests can
//! use it without a second copy of core's types; and it cannot name the
//! binary itself (`env!("CARGO_BIN_EXE_ezdelivery")` only exists in the
//! CLI's own tests), so a test hands the path to [`cli_world::World::new`].
//!
//! Everything is bounded: servers stop after a lifetime and a number of
//! connections, sockets have timeouts, every process has a deadline.

#![forbid(unsafe_code)]

pub mod cli_world;
pub mod files;
pub mod gateway;
pub mod postgres;
pub mod server;
