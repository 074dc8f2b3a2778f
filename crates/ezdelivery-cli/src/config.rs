//! The config file (`--config`, TOML, SPEC.md's keys) and the engine it builds.

use std::path::Path;

use ezdelivery_core::adapters::console::ConsoleNotifier;
use ezdelivery_core::adapters::sandbox::{SandboxCharge, SandboxPayment, SandboxSettings, DEFAULT_DECLINE_CARD};
use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
use ezdelivery_core::app::messages::Locale;
use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::domain::BreakerSettings;
use ezdelivery_core::{Engine, Error, Result};
use serde::Deserialize;

/// The whole file. Unknown keys are errors, so a typo does not silently
/// fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[payment]`
    pub payment: GatewayConfig,
    /// `[charge]`
    pub charge: GatewayConfig,
    /// `[breaker]`
    pub breaker: BreakerConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[[notify]]`, zero or more; none means the console.
    pub notify: Vec<NotifyConfig>,
    /// `locale = "ko" | "en"`: the language of messages.
    pub locale: Option<String>,
}

/// `[payment]` or `[charge]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// `sandbox` or `http`.
    pub adapter: String,
    /// The service's base URL (http only).
    pub url: Option<String>,
    /// Connect + read timeout (http only).
    pub timeout_ms: u64,
    /// `[payment.sandbox]`
    pub sandbox: SandboxConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig { adapter: "sandbox".into(), url: None, timeout_ms: 610, sandbox: SandboxConfig::default() }
    }
}

/// `[payment.sandbox]` or `[charge.sandbox]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Wait this long before answering.
    pub latency_ms: u64,
    /// Simulate an outage.
    pub unavailable: bool,
    /// Cards to decline.
    pub decline_cards: Vec<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig { latency_ms: 0, unavailable: false, decline_cards: vec![DEFAULT_DECLINE_CARD.into()] }
    }
}

impl SandboxConfig {
    fn settings(&self) -> SandboxSettings {
        SandboxSettings {
            latency_ms: self.latency_ms,
            unavailable: self.unavailable,
            decline_cards: self.decline_cards.clone(),
        }
    }
}

/// `[breaker]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open a breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls.
    pub open_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failure_threshold: 5, open_ms: 30_000 }
    }
}

/// `[storage]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `full` (the default) or `normal`.
    pub synchronous: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { synchronous: "full".into() }
    }
}

/// One `[[notify]]` channel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The channel: `console` in this version.
    pub kind: String,
}

fn invalid(message: String) -> Error {
    Error::Invalid(Invalid(message))
}

impl Config {
    /// Reads `path`, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read the config file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| invalid(format!("config file {}: {e}", path.display())))
    }

    fn synchronous(&self) -> Result<Synchronous> {
        if self.breaker.failure_threshold == 0 {
            return Err(invalid("[breaker] failure_threshold must be at least 1".into()));
        }
        match self.storage.synchronous.as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            other => Err(invalid(format!("[storage] synchronous = \"{other}\": use \"full\" or \"normal\""))),
        }
    }

    /// Opens the database at `db` and builds the engine the file describes.
    /// `quiet` silences the console notifier (messages still count as delivered).
    pub fn engine(&self, db: &Path, quiet: bool) -> Result<Engine> {
        let locale = match &self.locale {
            Some(l) => l.parse::<Locale>().map_err(invalid)?,
            None => Locale::default(),
        };
        for (section, gateway) in [("payment", &self.payment), ("charge", &self.charge)] {
            if gateway.adapter != "sandbox" {
                return Err(invalid(format!(
                    "[{section}] adapter = \"{}\" is not supported by this version: use \"sandbox\"",
                    gateway.adapter
                )));
            }
        }
        let storage = SqliteStorage::open(db, self.synchronous()?).map_err(|e| match e {
            Error::Storage(m) => Error::Storage(format!(
                "{m}; check that the folder is writable, or use another database with --db PATH or EZDELIVERY_DB"
            )),
            other => other,
        })?;
        let mut builder = Engine::builder(storage)
            .payment(SandboxPayment::new(self.payment.sandbox.settings()))
            .charge(SandboxCharge::new(self.charge.sandbox.settings()))
            .locale(locale)
            .breakers(BreakerSettings {
                failure_threshold: self.breaker.failure_threshold,
                open_ms: self.breaker.open_ms,
            });
        let console = || {
            if quiet {
                ConsoleNotifier::to(Box::new(std::io::sink()))
            } else {
                ConsoleNotifier::stderr()
            }
        };
        if self.notify.is_empty() {
            builder = builder.notifier(console());
        }
        for channel in &self.notify {
            match channel.kind.as_str() {
                "console" => builder = builder.notifier(console()),
                other => {
                    return Err(invalid(format!(
                        "[[notify]] kind = \"{other}\" is not supported by this version: use \"console\""
                    )))
                }
            }
        }
        Ok(builder.build())
    }
}
