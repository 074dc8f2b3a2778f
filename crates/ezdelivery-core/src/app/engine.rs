//! The [`Engine`]: the library's facade, one method per command.

use crate::adapters::sandbox::{SandboxCharge, SandboxPayment};
use crate::app::messages::Locale;
use crate::ports::{ChargeGateway, Clock, Notifier, PaymentGateway, Storage, SystemClock};

/// The ordering engine over one storage, with its gateways and notifiers.
pub struct Engine {
    pub(crate) storage: Box<dyn Storage>,
    pub(crate) payment: Box<dyn PaymentGateway>,
    pub(crate) charge: Box<dyn ChargeGateway>,
    pub(crate) notifiers: Vec<Box<dyn Notifier>>,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) locale: Locale,
}

/// Builds an [`Engine`]: sandbox gateways, system clock, no notifier and
/// Korean messages unless told otherwise.
pub struct EngineBuilder {
    engine: Engine,
}

impl Engine {
    /// Starts building an engine over `storage`.
    pub fn builder(storage: impl Storage + 'static) -> EngineBuilder {
        EngineBuilder {
            engine: Engine {
                storage: Box::new(storage),
                payment: Box::new(SandboxPayment::default()),
                charge: Box::new(SandboxCharge::default()),
                notifiers: Vec::new(),
                clock: Box::new(SystemClock),
                locale: Locale::default(),
            },
        }
    }
}

impl EngineBuilder {
    /// Uses `gateway` for payments.
    pub fn payment(mut self, gateway: impl PaymentGateway + 'static) -> Self {
        self.engine.payment = Box::new(gateway);
        self
    }

    /// Uses `gateway` for delivery charges.
    pub fn charge(mut self, gateway: impl ChargeGateway + 'static) -> Self {
        self.engine.charge = Box::new(gateway);
        self
    }

    /// Adds a notification channel.
    pub fn notifier(mut self, notifier: impl Notifier + 'static) -> Self {
        self.engine.notifiers.push(Box::new(notifier));
        self
    }

    /// Reads the time from `clock`.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.engine.clock = Box::new(clock);
        self
    }

    /// Writes messages in `locale`.
    pub fn locale(mut self, locale: Locale) -> Self {
        self.engine.locale = locale;
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        self.engine
    }
}

/// One `--item MENU[:QTY]`: a menu id or exact name, and a quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPick {
    /// A menu id, or the menu's exact name within the store.
    pub menu: String,
    /// How many.
    pub qty: u32,
}

impl ItemPick {
    /// `qty` of `menu`.
    pub fn new(menu: impl Into<String>, qty: u32) -> ItemPick {
        ItemPick { menu: menu.into(), qty }
    }
}
