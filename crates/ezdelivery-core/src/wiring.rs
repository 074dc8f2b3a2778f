//! The composition root: the one module that knows both the application
//! and the adapters, and wires the defaults ([`Engine::builder`] with the
//! sandbox gateways). Nothing in `app` imports `adapters`.

use crate::adapters::sandbox::{SandboxCharge, SandboxPayment};
use crate::app::engine::{Engine, EngineBuilder};
use crate::ports::Storage;

impl Engine {
    /// Starts building an engine over `storage`, with the sandbox payment
    /// and delivery-charge gateways until [`EngineBuilder::payment`] and
    /// [`EngineBuilder::charge`] name others; [`EngineBuilder::new`] takes
    /// them at once.
    pub fn builder(storage: impl Storage + 'static) -> EngineBuilder {
        EngineBuilder::new(storage, SandboxPayment::default(), SandboxCharge::default())
    }
}
