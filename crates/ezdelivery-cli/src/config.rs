//! The config file (`--config`, TOML, the keys of docs/reference.md) and the engine it builds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ezdelivery_core::adapters::console::ConsoleNotifier;
use ezdelivery_core::adapters::http::{HttpCharge, HttpPayment, DEFAULT_TIMEOUT};
use ezdelivery_core::adapters::jsonl::JsonlNotifier;
use ezdelivery_core::adapters::kakao::{KakaoNotifier, KAKAO_API};
use ezdelivery_core::adapters::sandbox::{SandboxCharge, SandboxPayment, SandboxSettings};
use ezdelivery_core::adapters::sqlite::Synchronous;
use ezdelivery_core::adapters::webhook::WebhookNotifier;
use ezdelivery_core::app::engine::DEFAULT_LEASE;
use ezdelivery_core::app::messages::Locale;
use ezdelivery_core::app::retry::RetryPolicy;
use ezdelivery_core::app::watch::{WatchOptions, DEFAULT_INTERVAL, DEFAULT_RETENTION};
use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::domain::{BreakerSettings, ChannelName};
use ezdelivery_core::ports::{ChargeGateway, Notifier, PaymentGateway};
use ezdelivery_core::{Engine, Error, Result};
use ezdelivery_http::metrics::{Metered, Metrics};
use ezdelivery_http::Settings;
use serde::Deserialize;

use crate::storage::{self, Access, Database};

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
    pub breaker: BreakerSettings,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[retry]`
    pub retry: RetryConfig,
    /// `[relay]`
    pub relay: RelayConfig,
    /// `[[notify]]`, zero or more; none means the console.
    pub notify: Vec<NotifyConfig>,
    /// `[serve]`
    pub serve: ServeConfig,
    /// `locale = "ko" | "en"`: the language of messages (Korean when
    /// left out).
    #[serde(deserialize_with = "parsed")]
    pub locale: Locale,
    /// The file this was read from, if any: errors of its values name it.
    #[serde(skip)]
    pub file: Option<std::path::PathBuf>,
}

/// A setting named by a word the core parses (`Locale`, `Synchronous`):
/// an unknown word is refused while the file is read, in the core's words
/// (which name the words it knows).
fn parsed<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let word = String::deserialize(deserializer)?;
    word.parse().map_err(serde::de::Error::custom)
}

/// `adapter` of `[payment]` or `[charge]`: what carries the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Adapter {
    /// In this process, with the behaviour of `[payment.sandbox]` (the default).
    Sandbox,
    /// A payment or charge service over HTTP at `url`.
    Http,
}

/// `[payment]` or `[charge]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// `sandbox` or `http`; `None` when the file does not say (the sandbox).
    pub adapter: Option<Adapter>,
    /// The service's base URL (http only).
    pub url: Option<String>,
    /// The name payments and charges record of this gateway (http only;
    /// default: the url without credentials): set it to the old url when
    /// the service moves, so that what it holds is still settled there.
    pub name: Option<String>,
    /// Connect + read timeout (http only).
    pub timeout_ms: u64,
    /// `[payment.sandbox]`
    pub sandbox: SandboxSettings,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            adapter: None,
            url: None,
            name: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            sandbox: SandboxSettings::default(),
        }
    }
}

/// 610 ms, as in the original system.
const DEFAULT_TIMEOUT_MS: u64 = DEFAULT_TIMEOUT.as_millis() as u64;

impl GatewayConfig {
    /// `http`: the URL, which must be there.
    fn http_url(&self, section: &str) -> Result<&str> {
        self.url.as_deref().ok_or_else(|| {
            invalid(format!("[{section}] adapter = \"http\" needs a url, for example url = \"http://127.0.0.1:8083\""))
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `timeout_ms`, checked: 1 ms to a minute.
    fn checked_timeout_ms(&self, section: &str) -> Result<u64> {
        checked_timeout(&format!("[{section}]"), self.timeout_ms)
    }

    /// The sandbox's settings, with this section's timeout. A card in the
    /// payment section's `decline_cards` that is not a card number could
    /// never match one, so it is refused rather than ignored (the charge
    /// section's are not used).
    fn sandbox(&self, section: &str) -> Result<SandboxSettings> {
        let used = if section == "payment" { self.sandbox.decline_cards.as_slice() } else { &[] };
        for card in used {
            ezdelivery_core::domain::payment::mask_card(card).map_err(
                |ezdelivery_core::domain::validate::Invalid(why)| {
                    invalid(format!(
                        "[{section}.sandbox] decline_cards: `{}` is not a card number ({why})",
                        ezdelivery_core::domain::validate::shown(card)
                    ))
                },
            )?;
        }
        Ok(SandboxSettings { timeout_ms: Some(self.timeout_ms), ..self.sandbox.clone() })
    }

    /// The adapter: the sandbox unless the file says otherwise. A section
    /// that gives a `url` but no `adapter` is refused: it most likely meant
    /// the service, and the sandbox would approve every payment without
    /// calling it. (`adapter = "sandbox"` beside a url, as in the
    /// specification's example, is a choice, and the url goes unused.)
    fn adapter(&self, section: &str) -> Result<Adapter> {
        match (self.adapter, &self.url) {
            (Some(adapter), _) => Ok(adapter),
            (None, None) => Ok(Adapter::Sandbox),
            (None, Some(_)) => Err(invalid(format!(
                "[{section}] has a url but no adapter, and the default adapter, the sandbox, calls no service: add \
                 adapter = \"http\" to use the service (or adapter = \"sandbox\" to keep the sandbox)"
            ))),
        }
    }

    /// The adapter, with a `name` only where it applies: the sandbox's
    /// name is its own, so that it can never settle a service's money.
    fn named_adapter(&self, section: &str) -> Result<Adapter> {
        let adapter = self.adapter(section)?;
        if adapter == Adapter::Sandbox && self.name.is_some() {
            return Err(invalid(format!(
                "[{section}] name names an http gateway; the sandbox's name is always `sandbox`: remove it, or \
                 add adapter = \"http\" and a url"
            )));
        }
        Ok(adapter)
    }

    fn payment(&self) -> Result<Box<dyn PaymentGateway>> {
        Ok(match self.named_adapter("payment")? {
            Adapter::Sandbox => Box::new(SandboxPayment::new(self.sandbox("payment")?)),
            Adapter::Http => {
                let gateway = HttpPayment::new(self.http_url("payment")?, self.timeout());
                Box::new(in_section("payment", renamed(gateway, self.name.as_deref(), HttpPayment::named))?)
            }
        })
    }

    fn charge(&self) -> Result<Box<dyn ChargeGateway>> {
        Ok(match self.named_adapter("charge")? {
            Adapter::Sandbox => Box::new(SandboxCharge::new(self.sandbox("charge")?)),
            Adapter::Http => {
                let gateway = HttpCharge::new(self.http_url("charge")?, self.timeout());
                Box::new(in_section("charge", renamed(gateway, self.name.as_deref(), HttpCharge::named))?)
            }
        })
    }
}

/// `gateway` under the section's `name`, when it gives one.
fn renamed<G>(gateway: Result<G>, name: Option<&str>, rename: fn(G, &str) -> Result<G>) -> Result<G> {
    match name {
        Some(name) => rename(gateway?, name),
        None => gateway,
    }
}

/// Puts `[section]` in front of an adapter's invalid-input error.
fn in_section<T>(section: &str, built: Result<T>) -> Result<T> {
    built.map_err(|e| match e {
        Error::Invalid(Invalid(message)) => invalid(format!("[{section}] {message}")),
        other => other,
    })
}

/// `[retry]`: how queued gateway calls and messages are retried, and how
/// long a claim on a gateway call lasts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// The wait after the first failure.
    pub base_ms: u64,
    /// The longest wait between two tries.
    pub max_ms: u64,
    /// How long a claim on a gateway call lasts: more than twice every
    /// gateway's `timeout_ms`.
    pub lease_ms: u64,
    /// Unreadable answers in a row before a payment or charge needs attention.
    pub attention_after: u32,
    /// Failed tries before a message is parked as dead (`relay --dead`).
    pub message_tries: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        RetryConfig {
            base_ms: policy.base_ms,
            max_ms: policy.max_ms,
            lease_ms: DEFAULT_LEASE.as_millis() as u64,
            attention_after: policy.attention_after,
            message_tries: policy.max_message_tries,
        }
    }
}

/// The longest gateway or notifier timeout: a call that may hang longer
/// holds its claim (and the command) too long to be worth waiting for.
const MAX_TIMEOUT_MS: u64 = 60_000;

/// The longest claim on a gateway call (an hour).
const MAX_LEASE_MS: u64 = 3_600_000;

impl RetryConfig {
    /// The policy, and the lease, checked against the gateways' timeouts.
    fn policy(&self, timeouts_ms: &[u64]) -> Result<(RetryPolicy, Duration)> {
        let longest = timeouts_ms.iter().copied().max().unwrap_or(DEFAULT_TIMEOUT_MS);
        if self.max_ms < self.base_ms {
            return Err(invalid(format!(
                "[retry] max_ms ({}) must be at least base_ms ({})",
                self.max_ms, self.base_ms
            )));
        }
        if self.max_ms > MAX_LEASE_MS {
            return Err(invalid(format!(
                "[retry] max_ms must be at most {MAX_LEASE_MS} (an hour), got {}",
                self.max_ms
            )));
        }
        if self.lease_ms > MAX_LEASE_MS || self.lease_ms <= 2 * longest {
            return Err(invalid(format!(
                "[retry] lease_ms = {}: a claim on a gateway call must last more than twice the longest gateway \
                 timeout_ms ({longest}) and at most {MAX_LEASE_MS} (an hour)",
                self.lease_ms
            )));
        }
        if self.attention_after == 0 {
            return Err(invalid("[retry] attention_after must be at least 1".into()));
        }
        if self.message_tries == 0 {
            return Err(invalid("[retry] message_tries must be at least 1".into()));
        }
        let policy = RetryPolicy {
            base_ms: self.base_ms,
            max_ms: self.max_ms,
            attention_after: self.attention_after,
            max_message_tries: self.message_tries,
        };
        Ok((policy, Duration::from_millis(self.lease_ms)))
    }
}

/// `[serve]`: the HTTP server's limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// The largest request body, in bytes (413 above).
    pub body_limit_bytes: u64,
    /// How long a request may take before it is answered 503.
    pub timeout_ms: u64,
    /// Requests handled at once; more are answered 503 at once.
    pub max_requests: u64,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: u64,
    /// How long a connection may go without a whole request head, or without
    /// taking any of an answer.
    pub idle_timeout_ms: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let defaults = Settings::default();
        ServeConfig {
            body_limit_bytes: defaults.body_limit as u64,
            timeout_ms: defaults.request_timeout.as_millis() as u64,
            max_requests: defaults.max_requests as u64,
            max_connections: defaults.max_connections as u64,
            idle_timeout_ms: defaults.idle_timeout.as_millis() as u64,
        }
    }
}

impl ServeConfig {
    /// The server's settings, checked; as many engine calls at once as
    /// the storage has connections (`[storage] pool_size`).
    pub fn settings(&self, storage: &StorageConfig) -> Result<Settings> {
        let within = |value: u64, range: std::ops::RangeInclusive<u64>, what: &str| {
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(invalid(format!("[serve] {what} must be {} to {}, got {value}", range.start(), range.end())))
            }
        };
        Ok(Settings {
            body_limit: within(self.body_limit_bytes, 1024..=64 * 1024 * 1024, "body_limit_bytes")? as usize,
            request_timeout: std::time::Duration::from_millis(within(self.timeout_ms, 100..=3_600_000, "timeout_ms")?),
            max_requests: within(self.max_requests, 1..=100_000, "max_requests")? as usize,
            max_connections: within(self.max_connections, 1..=100_000, "max_connections")? as usize,
            idle_timeout: std::time::Duration::from_millis(within(
                self.idle_timeout_ms,
                1000..=3_600_000,
                "idle_timeout_ms",
            )?),
            engine_calls: storage.pool_size()? as usize,
            ..Settings::default()
        })
    }
}

/// `[relay]`: how `relay --watch` runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// How long the worker waits when a pass settled nothing (`--interval`
    /// overrides it).
    pub interval_ms: u64,
    /// How many days delivered messages are kept before the worker purges
    /// them; 0 purges every delivered message.
    pub retention_days: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            interval_ms: DEFAULT_INTERVAL.as_millis() as u64,
            retention_days: DEFAULT_RETENTION.as_secs() / DAY_SECS,
        }
    }
}

/// A day, in seconds.
const DAY_SECS: u64 = 24 * 3600;
/// The shortest and longest wait of `relay --watch` between passes.
const INTERVAL_MS: std::ops::RangeInclusive<u64> = 10..=3_600_000;
/// The longest retention of delivered messages (about ten years).
const MAX_RETENTION_DAYS: u64 = 3_650;

impl RelayConfig {
    /// The worker's options: `interval_ms` (or `--interval`, when given)
    /// and `retention_days`, checked.
    pub fn watch_options(&self, interval_flag: Option<u64>) -> Result<WatchOptions> {
        let (interval_ms, what) = match interval_flag {
            Some(ms) => (ms, "--interval"),
            None => (self.interval_ms, "[relay] interval_ms"),
        };
        if !INTERVAL_MS.contains(&interval_ms) {
            return Err(invalid(format!(
                "{what} must be {} to {} (milliseconds, an hour at most), got {interval_ms}",
                INTERVAL_MS.start(),
                INTERVAL_MS.end()
            )));
        }
        if self.retention_days > MAX_RETENTION_DAYS {
            return Err(invalid(format!(
                "[relay] retention_days must be 0 to {MAX_RETENTION_DAYS}, got {}",
                self.retention_days
            )));
        }
        Ok(WatchOptions {
            interval: Duration::from_millis(interval_ms),
            retention: Some(Duration::from_secs(self.retention_days * DAY_SECS)),
            ..WatchOptions::default()
        })
    }
}

/// `[storage]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `full` (the default) or `normal` (SQLite only).
    #[serde(deserialize_with = "parsed")]
    pub synchronous: Synchronous,
    /// PostgreSQL only: how many connections this process keeps open at
    /// most (1 to 64; default 8). A command uses one at a time; a
    /// `relay --watch` one more to listen for wake-ups.
    pub pool_size: Option<u32>,
}

impl StorageConfig {
    /// The largest `pool_size`.
    pub const MAX_POOL: u32 = 64;

    /// The PostgreSQL pool size, checked.
    pub fn pool_size(&self) -> Result<u32> {
        match self.pool_size {
            None => Ok(DEFAULT_POOL),
            Some(n) if (1..=Self::MAX_POOL).contains(&n) => Ok(n),
            Some(n) => Err(Error::Invalid(Invalid(format!(
                "[storage] pool_size = {n}: it must be from 1 to {}",
                Self::MAX_POOL
            )))),
        }
    }
}

/// Connections a PostgreSQL storage keeps open at most, unless told.
pub const DEFAULT_POOL: u32 = 8;

/// One `[[notify]]` channel, by its `kind`. Each kind takes its own keys;
/// any other key is an error.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum NotifyConfig {
    /// `kind = "console"`: one line per message on standard error.
    Console {
        /// The channel's name (default `console`).
        name: Option<String>,
    },
    /// `kind = "jsonl"`: one JSON object per message appended to `path`.
    Jsonl {
        /// The channel's name (default `jsonl`).
        name: Option<String>,
        /// The file (created 0600, with its folder, on the first message).
        path: PathBuf,
    },
    /// `kind = "webhook"`: each message posted as JSON to `url`.
    Webhook {
        /// The channel's name (default `webhook`).
        name: Option<String>,
        /// Where to post.
        url: String,
        /// Connect + read timeout.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// `kind = "kakao"`: KakaoTalk "send to me", with the token in
    /// [`KAKAO_TOKEN_ENV`].
    Kakao {
        /// The channel's name (default `kakao`).
        name: Option<String>,
        /// The API's base URL; default [`KAKAO_API`] (`https://kapi.kakao.com`),
        /// or a stand-in for tests.
        #[serde(default)]
        base_url: Option<String>,
        /// Connect + read timeout.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
}

impl NotifyConfig {
    /// The `kind` key, which is also the channel's default name.
    fn kind(&self) -> &'static str {
        match self {
            NotifyConfig::Console { .. } => "console",
            NotifyConfig::Jsonl { .. } => "jsonl",
            NotifyConfig::Webhook { .. } => "webhook",
            NotifyConfig::Kakao { .. } => "kakao",
        }
    }

    /// The channel's name: `name`, or the kind. A gateway's breaker name
    /// (`payment`, `charge`) is refused: a channel has a breaker of its own.
    fn name(&self) -> Result<ChannelName> {
        let name = match self {
            NotifyConfig::Console { name }
            | NotifyConfig::Jsonl { name, .. }
            | NotifyConfig::Webhook { name, .. }
            | NotifyConfig::Kakao { name, .. } => name.as_deref(),
        };
        let what = format!("[[notify]] kind = \"{}\": name", self.kind());
        ChannelName::parse(&what, name.unwrap_or(self.kind())).map_err(Error::from)
    }
}

/// Where the KakaoTalk notifier's access token comes from (never the file).
pub const KAKAO_TOKEN_ENV: &str = "EZDELIVERY_KAKAO_TOKEN";

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// A `timeout_ms` of `section`: 1 ms to [`MAX_TIMEOUT_MS`].
fn checked_timeout(section: &str, timeout_ms: u64) -> Result<u64> {
    if (1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        Ok(timeout_ms)
    } else {
        Err(invalid(format!("{section} timeout_ms must be 1 to {MAX_TIMEOUT_MS} (a minute), got {timeout_ms}")))
    }
}

fn invalid(message: String) -> Error {
    Error::Invalid(Invalid(message))
}

/// Puts the channel in front of a notifier's invalid-input error.
fn in_notify<T>(section: &str, built: Result<T>) -> Result<T> {
    built.map_err(|e| match e {
        Error::Invalid(Invalid(message)) => invalid(format!("{section} {message}")),
        other => other,
    })
}

impl Config {
    /// Checks the ranges of the sections only some commands use (`[storage]
    /// pool_size` is PostgreSQL's, `[relay]` is `relay --watch`'s, `[serve]`
    /// is `serve`'s): a file that is wrong is wrong whatever command or
    /// database it is used with, so every command checks them.
    pub fn check_ranges(&self) -> Result<()> {
        let checked = || -> Result<()> {
            self.storage.pool_size()?;
            self.relay.watch_options(None)?;
            self.serve.settings(&self.storage)?;
            Ok(())
        };
        checked().map_err(|e| self.in_file(e))
    }

    /// `error`, naming the config file when it is about one of its values
    /// (input errors only: the others are about something else).
    fn in_file(&self, error: Error) -> Error {
        match (error, &self.file) {
            (Error::Invalid(Invalid(message)), Some(file)) => {
                Error::Invalid(Invalid(format!("config file {}: {message}", file.display())))
            }
            (error, _) => error,
        }
    }

    /// Reads `path`, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path).map_err(|e| {
            invalid(format!(
                "cannot read the config file {} (given by --config or EZDELIVERY_CONFIG): {e}",
                path.display()
            ))
        })?;
        let config: Config =
            toml::from_str(&text).map_err(|e| invalid(format!("config file {}: {e}", path.display())))?;
        Ok(Config { file: Some(path.to_path_buf()), ..config })
    }

    fn breaker_settings(&self) -> Result<BreakerSettings> {
        /// A week: longer than any outage worth waiting out without a hand on it.
        const MAX_OPEN_MS: u64 = 7 * 24 * 3_600_000;
        let BreakerSettings { failure_threshold, open_ms } = self.breaker;
        if failure_threshold == 0 {
            return Err(invalid("[breaker] failure_threshold must be at least 1".into()));
        }
        if open_ms > MAX_OPEN_MS {
            return Err(invalid(format!("[breaker] open_ms must be at most {MAX_OPEN_MS} (a week), got {open_ms}")));
        }
        Ok(self.breaker)
    }

    /// Opens the database `db` and builds the engine the file describes.
    /// `quiet` silences the console notifier (messages still count as delivered).
    /// `access` says what the command does with it ([`Access`]).
    pub fn engine(&self, db: &Database, quiet: bool, access: Access) -> Result<Engine> {
        self.build_engine(db, quiet, access, None)
    }

    /// [`Config::engine`] for `serve`: its gateway calls are timed and
    /// counted in `metrics` (`/metrics`).
    pub fn serving_engine(&self, db: &Database, quiet: bool, metrics: &Arc<Metrics>) -> Result<Engine> {
        self.build_engine(db, quiet, Access::Lasts, Some(metrics))
    }

    /// Checks what an engine takes of this config but its storage (the
    /// gateways, the channels, the breakers' and retries' settings), as
    /// every command that opens one does: for `demo`, which builds its own
    /// from the defaults, so that a config file that is not valid stops it
    /// too.
    pub fn check_adapters(&self) -> Result<()> {
        self.adapters(true, None).map(drop)
    }

    /// The gateways, channels and settings of an engine, each checked; an
    /// error names the config file.
    fn adapters(&self, quiet: bool, metrics: Option<&Arc<Metrics>>) -> Result<Adapters> {
        self.build_adapters(quiet, metrics).map_err(|e| self.in_file(e))
    }

    fn build_adapters(&self, quiet: bool, metrics: Option<&Arc<Metrics>>) -> Result<Adapters> {
        let timeouts = [self.payment.checked_timeout_ms("payment")?, self.charge.checked_timeout_ms("charge")?];
        let mut payment = self.payment.payment()?;
        let mut charge = self.charge.charge()?;
        if let Some(metrics) = metrics {
            payment = Box::new(Metered::new(payment, Arc::clone(metrics)));
            charge = Box::new(Metered::new(charge, Arc::clone(metrics)));
        }
        let notifiers = self.notifiers(quiet, &|name| std::env::var(name).ok())?;
        let breakers = self.breaker_settings()?;
        let (retry, lease) = self.retry.policy(&timeouts)?;
        Ok(Adapters { payment, charge, notifiers, breakers, retry, lease })
    }

    fn build_engine(
        &self,
        db: &Database,
        quiet: bool,
        access: Access,
        metrics: Option<&Arc<Metrics>>,
    ) -> Result<Engine> {
        // Every adapter is checked before the database is touched.
        let Adapters { payment, charge, notifiers, breakers, retry, lease } = self.adapters(quiet, metrics)?;
        // The storage's errors say what to do when the cause is the file's
        // access (a folder or file that cannot be written), and only then.
        let storage = storage::open(db, &self.storage, access)?;
        let mut builder = Engine::builder(storage)
            .payment(payment)
            .charge(charge)
            .locale(self.locale)
            .breakers(breakers)
            .retry(retry)
            .lease(lease);
        for notifier in notifiers {
            builder = builder.boxed_notifier(notifier);
        }
        Ok(builder.build())
    }

    /// The `[[notify]]` channels (the console when there are none); `env`
    /// reads an environment variable.
    fn notifiers(&self, quiet: bool, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Box<dyn Notifier>>> {
        let console = || {
            if quiet {
                ConsoleNotifier::to(Box::new(std::io::sink()))
            } else {
                ConsoleNotifier::stderr()
            }
        };
        if self.notify.is_empty() {
            return Ok(vec![Box::new(console())]);
        }
        let mut names = HashSet::new();
        let mut notifiers: Vec<Box<dyn Notifier>> = Vec::with_capacity(self.notify.len());
        for channel in &self.notify {
            let name = channel.name()?;
            if !names.insert(name.clone()) {
                return Err(invalid(format!(
                    "[[notify]] two channels are named \"{name}\": give one of them another `name`"
                )));
            }
            let section = format!("[[notify]] {name}:");
            notifiers.push(match channel {
                NotifyConfig::Console { .. } => Box::new(console().named(name)),
                NotifyConfig::Jsonl { path, .. } => {
                    if path.as_os_str().is_empty() {
                        return Err(invalid(format!("{section} path must not be empty")));
                    }
                    // refused at start, not at each message: a folder can never be appended to
                    if path.is_dir() || path.as_os_str().to_string_lossy().ends_with(['/', '\\']) {
                        return Err(invalid(format!(
                            "{section} path = \"{}\" is a folder: give the path of a file in it, such as \
                             \"{}\"",
                            path.display(),
                            path.join("messages.jsonl").display()
                        )));
                    }
                    Box::new(JsonlNotifier::new(path).named(name))
                }
                NotifyConfig::Webhook { url, timeout_ms, .. } => Box::new(
                    in_notify(
                        &section,
                        WebhookNotifier::new(url, Duration::from_millis(checked_timeout(&section, *timeout_ms)?)),
                    )?
                    .named(name),
                ),
                NotifyConfig::Kakao { base_url, timeout_ms, .. } => {
                    let token = env(KAKAO_TOKEN_ENV).filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                        invalid(format!(
                            "{section} the KakaoTalk access token comes from the environment variable \
                             {KAKAO_TOKEN_ENV}, which is not set (or empty)"
                        ))
                    })?;
                    let kakao = KakaoNotifier::new(
                        base_url.as_deref().unwrap_or(KAKAO_API),
                        token,
                        Duration::from_millis(checked_timeout(&section, *timeout_ms)?),
                    );
                    Box::new(in_notify(&section, kakao)?.named(name))
                }
            });
        }
        Ok(notifiers)
    }
}

/// What [`Config::adapters`] gives an engine.
struct Adapters {
    payment: Box<dyn PaymentGateway>,
    charge: Box<dyn ChargeGateway>,
    notifiers: Vec<Box<dyn Notifier>>,
    breakers: BreakerSettings,
    retry: RetryPolicy,
    lease: Duration,
}

/// A database file refused as it was opened (not a plain file, another
/// program's, a newer ezdelivery's): the library says why, the program
/// says what to do.
pub fn another_file(error: Error) -> Error {
    match error {
        Error::Invalid(Invalid(why)) => {
            Error::Invalid(Invalid(format!("{why}: point --db (or EZDELIVERY_DB) at another file")))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use ezdelivery_core::{ItemPick, NewOrder};

    use super::*;

    fn parse(text: &str) -> Result<Config> {
        toml::from_str(text).map_err(|e| invalid(e.to_string()))
    }

    fn error<T>(result: Result<T>) -> String {
        match result {
            Err(Error::Invalid(Invalid(message))) => message,
            Err(other) => panic!("expected an invalid-input error, got {other:?}"),
            Ok(_) => panic!("expected an invalid-input error, got Ok"),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn channels(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
        Ok(config.notifiers(true, env)?.iter().map(|n| n.channel().to_string()).collect())
    }

    #[test]
    fn http_gateways_need_an_http_url() {
        let config = parse("[payment]\nadapter = \"http\"\n").unwrap();
        let message = error(config.payment.payment());
        assert!(message.starts_with("[payment] adapter = \"http\" needs a url"), "{message}");

        let config = parse("[charge]\nadapter = \"http\"\nurl = \"ftp://127.0.0.1:8083\"\n").unwrap();
        let message = error(config.charge.charge());
        assert!(message.starts_with("[charge] "), "{message}");
        assert!(message.contains("must start with http:// or https://"), "{message}");

        // a url but no adapter: refused, not the sandbox in silence
        let config =
            parse("[payment]\nurl = \"http://127.0.0.1:8083\"\n[charge]\nurl = \"http://127.0.0.1:8084\"\n").unwrap();
        for (section, message) in
            [("payment", error(config.payment.payment())), ("charge", error(config.charge.charge()))]
        {
            assert!(message.starts_with(&format!("[{section}] has a url but no adapter")), "{message}");
            assert!(message.contains("adapter = \"http\""), "{message}");
        }
        // the sandbox chosen beside a url (the specification's example) is a choice
        let config = parse("[payment]\nadapter = \"sandbox\"\nurl = \"http://127.0.0.1:8083\"\n").unwrap();
        assert!(config.payment.payment().is_ok());

        let message = error(parse("[payment]\nadapter = \"soap\"\n"));
        assert!(message.contains("unknown variant `soap`, expected `sandbox` or `http`"), "{message}");

        let config = parse("[payment]\nadapter = \"http\"\nurl = \"http://127.0.0.1:8083\"\ntimeout_ms = 0\n").unwrap();
        assert!(error(config.payment.payment()).contains("at least 1 ms"));

        let config = parse(
            "[payment]\nadapter = \"http\"\nurl = \"http://127.0.0.1:8083\"\ntimeout_ms = 250\n\
             [charge]\nadapter = \"http\"\nurl = \"http://127.0.0.1:8084/api/\"\n",
        )
        .unwrap();
        assert_eq!(config.payment.timeout_ms, 250);
        assert_eq!(config.charge.timeout_ms, 610);
        assert_eq!(config.payment.payment().unwrap().name(), "http://127.0.0.1:8083");
        assert_eq!(config.charge.charge().unwrap().name(), "http://127.0.0.1:8084/api");
    }

    #[test]
    fn an_http_gateway_may_keep_its_name_when_it_moves_and_the_sandbox_never_takes_one() {
        let config = parse(
            "[payment]\nadapter = \"http\"\nurl = \"http://pay.new:8083\"\nname = \"http://127.0.0.1:8083\"\n\
             [charge]\nadapter = \"http\"\nurl = \"http://127.0.0.1:8084\"\nname = \"charges\"\n",
        )
        .unwrap();
        assert_eq!(config.payment.payment().unwrap().name(), "http://127.0.0.1:8083");
        assert_eq!(config.charge.charge().unwrap().name(), "charges");

        let config = parse("[payment]\nname = \"http://127.0.0.1:8083\"\n").unwrap();
        let message = error(config.payment.payment());
        assert!(message.starts_with("[payment] name names an http gateway"), "{message}");
        for name in ["sandbox", " ", "a\\nb"] {
            let text = format!("[charge]\nadapter = \"http\"\nurl = \"http://127.0.0.1:8084\"\nname = \"{name}\"\n");
            let message = error(parse(&text).unwrap().charge.charge());
            assert!(message.starts_with("[charge] charge gateway name"), "{name:?}: {message}");
        }
    }

    #[test]
    fn adapters_storage_and_locale_are_known_words() {
        let config =
            parse("locale = \"en\"\n[storage]\nsynchronous = \"normal\"\n[charge]\nadapter = \"http\"\n").unwrap();
        assert_eq!(config.locale, Locale::En);
        assert_eq!(config.storage.synchronous, Synchronous::Normal);
        assert_eq!((config.payment.adapter, config.charge.adapter), (None, Some(Adapter::Http)));
        let defaults = parse("").unwrap();
        assert_eq!((defaults.locale, defaults.storage.synchronous), (Locale::Ko, Synchronous::Full));

        let message = error(parse("[charge]\nadapter = \"Http\"\n"));
        assert!(message.contains("unknown variant `Http`, expected `sandbox` or `http`"), "{message}");
        assert_eq!(parse("[storage]\npool_size = 3\n").unwrap().storage.pool_size().ok(), Some(3));
        assert_eq!(defaults.storage.pool_size().ok(), Some(DEFAULT_POOL));
        for bad in ["0", "65"] {
            let config = parse(&format!("[storage]\npool_size = {bad}\n")).unwrap();
            assert!(matches!(config.storage.pool_size(), Err(Error::Invalid(_))), "pool_size = {bad}");
        }
        let message = error(parse("[storage]\nsynchronous = \"fast\"\n"));
        assert!(message.contains("synchronous = \"fast\""), "{message}");
        assert!(message.contains("use \"full\" or \"normal\""), "{message}");
        let message = error(parse("locale = \"fr\"\n"));
        assert!(message.contains("unknown locale `fr`: use \"ko\" or \"en\""), "{message}");
        assert!(parse("locale = 1\n").is_err());
    }

    #[test]
    fn a_decline_card_that_is_no_card_number_is_refused() {
        let config = parse("[payment.sandbox]\ndecline_cards = [\"abc\"]\n").unwrap();
        let message = error(config.payment.payment().map(drop));
        assert!(message.contains("[payment.sandbox] decline_cards: `abc` is not a card number"), "{message}");
        let config = parse("[payment.sandbox]\ndecline_cards = [\"4000 0000 0000 0002\"]\n").unwrap();
        assert!(config.payment.payment().is_ok(), "spaces and dashes, as in a card");
        let config = parse("[charge.sandbox]\ndecline_cards = [\"abc\"]\n").unwrap();
        assert!(config.charge.charge().is_ok(), "the charge sandbox declines nothing: its list is not read");
    }

    #[test]
    fn timeouts_and_the_retry_section_are_checked() {
        let huge = parse("[payment]\ntimeout_ms = 18446744073709551615\n").unwrap();
        assert!(error(huge.payment.checked_timeout_ms("payment")).contains("1 to 60000"));
        let config =
            parse("[retry]\nbase_ms = 50\nmax_ms = 200\nlease_ms = 2000\nattention_after = 3\nmessage_tries = 4\n")
                .unwrap();
        let (policy, lease) = config.retry.policy(&[610, 610]).unwrap();
        assert_eq!((policy.base_ms, policy.max_ms, policy.attention_after, policy.max_message_tries), (50, 200, 3, 4));
        assert_eq!(lease, Duration::from_millis(2000));
        let message = error(config.retry.policy(&[1_000, 610]));
        assert!(message.contains("more than twice the longest gateway timeout_ms (1000)"), "{message}");
        for bad in ["attention_after = 0", "message_tries = 0", "base_ms = 10\nmax_ms = 5", "lease_ms = 99999999"] {
            let config = parse(&format!("[retry]\n{bad}\n")).unwrap();
            assert!(config.retry.policy(&[610]).is_err(), "{bad}");
        }
        let (policy, lease) = Config::default().retry.policy(&[610]).unwrap();
        assert_eq!((policy, lease), (RetryPolicy::default(), DEFAULT_LEASE));
    }

    #[test]
    fn the_relay_section_sets_the_watch() {
        let defaults = Config::default().relay.watch_options(None).unwrap();
        assert_eq!(defaults, WatchOptions::default());
        let config = parse("[relay]\ninterval_ms = 250\nretention_days = 0\n").unwrap();
        let options = config.relay.watch_options(None).unwrap();
        assert_eq!((options.interval, options.retention), (Duration::from_millis(250), Some(Duration::ZERO)));
        assert_eq!(config.relay.watch_options(Some(40)).unwrap().interval, Duration::from_millis(40), "the flag wins");
        assert!(error(config.relay.watch_options(Some(0))).starts_with("--interval must be 10 to 3600000"));
        let config = parse("[relay]\ninterval_ms = 5\n").unwrap();
        assert!(error(config.relay.watch_options(None)).starts_with("[relay] interval_ms must be"));
        let config = parse("[relay]\nretention_days = 3651\n").unwrap();
        assert!(error(config.relay.watch_options(None)).contains("retention_days must be 0 to 3650"));
        assert!(error(parse("[relay]\nretention = 3\n")).contains("unknown field `retention`"));
    }

    #[test]
    fn unknown_keys_are_still_errors() {
        assert!(parse("[payment]\nadapter = \"http\"\nurl = \"http://h\"\ntimeout = 5\n").is_err());
        let message = error(parse("[[notify]]\nkind = \"webhook\"\nurl = \"http://h\"\npath = \"x\"\n"));
        assert!(message.contains("unknown field `path`"), "{message}");
        let message = error(parse("[[notify]]\nkind = \"smtp\"\n"));
        assert!(message.contains("unknown variant `smtp`"), "{message}");
        let message = error(parse("[[notify]]\nkind = \"jsonl\"\n"));
        assert!(message.contains("missing field `path`"), "{message}");
        let message = error(parse("[[notify]]\nkind = \"webhook\"\n"));
        assert!(message.contains("missing field `url`"), "{message}");
        let message = error(parse("[[notify]]\nkind = \"kakao\"\ntoken = \"t\"\n"));
        assert!(message.contains("unknown field `token`"), "{message}");
    }

    #[test]
    fn notify_channels_are_built_and_named() {
        assert_eq!(channels(&Config::default(), &no_env).unwrap(), ["console"]);
        let config = parse(
            "[[notify]]\nkind = \"console\"\n\
             [[notify]]\nkind = \"jsonl\"\npath = \"/tmp/never-written.jsonl\"\n\
             [[notify]]\nkind = \"jsonl\"\nname = \"audit\"\npath = \"/tmp/never-written-2.jsonl\"\n\
             [[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\ntimeout_ms = 100\n\
             [[notify]]\nkind = \"kakao\"\nbase_url = \"http://127.0.0.1:9\"\n",
        )
        .unwrap();
        let env = |name: &str| (name == KAKAO_TOKEN_ENV).then(|| "secret-token-123".to_string());
        assert_eq!(channels(&config, &env).unwrap(), ["console", "jsonl", "audit", "webhook", "kakao"]);

        let message = error(channels(&config, &no_env));
        assert!(message.contains(KAKAO_TOKEN_ENV), "{message}");
        let blank = |_: &str| Some("  ".to_string());
        assert!(error(channels(&config, &blank)).contains(KAKAO_TOKEN_ENV));
    }

    #[test]
    fn channel_names_are_unique_and_urls_checked() {
        let twice = parse("[[notify]]\nkind = \"jsonl\"\npath = \"a\"\n[[notify]]\nkind = \"jsonl\"\npath = \"b\"\n");
        let message = error(channels(&twice.unwrap(), &no_env));
        assert!(message.contains("two channels are named \"jsonl\""), "{message}");
        let clash = parse(
            "[[notify]]\nkind = \"console\"\nname = \"webhook\"\n[[notify]]\nkind = \"webhook\"\nurl = \"http://h\"\n",
        );
        assert!(error(channels(&clash.unwrap(), &no_env)).contains("\"webhook\""));
        for gateway in ["payment", "charge"] {
            let named = parse(&format!("[[notify]]\nkind = \"console\"\nname = \"{gateway}\"\n")).unwrap();
            let message = error(channels(&named, &no_env));
            assert!(message.starts_with("[[notify]] kind = \"console\": name"), "{message}");
            assert!(message.contains(&format!("the {gateway} gateway's circuit breaker")), "{message}");
        }
        let near = parse("[[notify]]\nkind = \"console\"\nname = \"payments\"\n").unwrap();
        assert_eq!(channels(&near, &no_env).unwrap(), ["payments"]);
        let empty = parse("[[notify]]\nkind = \"console\"\nname = \" \"\n").unwrap();
        assert!(error(channels(&empty, &no_env)).contains("name must not be empty"));

        let webhook = parse("[[notify]]\nkind = \"webhook\"\nname = \"ops\"\nurl = \"hook.example\"\n").unwrap();
        let message = error(channels(&webhook, &no_env));
        assert!(message.starts_with("[[notify]] ops: webhook url"), "{message}");
        assert!(message.contains("must start with http:// or https://"), "{message}");

        let kakao = parse("[[notify]]\nkind = \"kakao\"\nbase_url = \"kapi.kakao.com\"\n").unwrap();
        let env = |_: &str| Some("secret-token-123".to_string());
        let message = error(channels(&kakao, &env));
        assert!(message.contains("kakao base_url"), "{message}");
        assert!(!message.contains("secret-token-123"), "{message}");
    }

    #[test]
    fn a_jsonl_channel_gets_the_messages_of_a_command() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out/messages.jsonl");
        let config = parse(&format!("[[notify]]\nkind = \"jsonl\"\npath = {:?}\n", log.display().to_string())).unwrap();
        let engine = config.engine(&Database::Sqlite(dir.path().join("ezdelivery.db")), true, Access::Writes).unwrap();
        let store = engine.add_store("BBQ", Some("park"), None).unwrap();
        engine.add_menu(store.id, "후라이드", 18_000).unwrap();
        engine.place_order(NewOrder::new(store.id, "kim", &[ItemPick::new("후라이드", 1)]).pay_now(None)).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(!lines.is_empty());
        assert!(lines.iter().all(|l| l["orderId"] == 1 && l["message"].is_string()), "{text}");
    }
}
