//! Adapters for the ports: storage (SQLite, in memory), gateways (sandbox),
//! notifiers (console).

pub mod console;
pub mod memory;
pub mod sandbox;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod contract_tests;
