//! The [`Engine`]: the library's facade, one method per command, and the
//! unit of work every command runs in.
//!
//! A command runs as one write transaction (`Engine::write`): it loads
//! aggregates, applies pure domain transitions, stores the results and
//! appends the events; before the commit the projector brings the mypage
//! views up to date and the outbox queues the messages, so state, events,
//! views and messages commit together or not at all. Gateway calls happen
//! between transactions (see `saga`), and queued messages are delivered
//! after the commit (see `relay`).

use std::sync::Arc;

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use smallvec::SmallVec;
use uuid::Uuid;

use crate::app::event_ids::EventIds;
use crate::app::messages::{texts_for, Audience, Locale};
use crate::app::nonces::Nonces;
use crate::app::projector::{self, KeptViews};
use crate::app::retry::RetryPolicy;
use crate::domain::view::OrderView;
use crate::domain::{BreakerSettings, Event, OrderId, OrderStatus, SmolStr};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::storage::{Repo, StoredEvent};
use crate::ports::{ChargeGateway, Clock, Message, Notifier, PaymentGateway, Storage, SystemClock};
use crate::{Error, Result};

/// The ordering engine over one storage, with its gateways and notifiers.
///
/// Build one with [`Engine::builder`]; every command is a method. An
/// engine holds no state between commands but what it was built with:
/// every method takes `&self`, and one engine may serve many threads at
/// once (it is `Send + Sync`; the storage serialises what must be).
pub struct Engine {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) gateways: Gateways,
    pub(crate) notifiers: Vec<Box<dyn Notifier>>,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) settings: Settings,
    /// Hands out event ids.
    event_ids: EventIds,
    /// Hands out claim tokens and idempotency keys' random parts.
    nonces: Nonces,
}

/// The two gateways money moves through.
pub(crate) struct Gateways {
    pub payment: Box<dyn PaymentGateway>,
    pub charge: Box<dyn ChargeGateway>,
    /// Their names, as claims record them (asked once, shared by every claim).
    pub names: GatewayNames,
}

/// The names of an engine's two gateways ([`PaymentGateway::name`]).
#[derive(Debug, Clone)]
pub(crate) struct GatewayNames {
    pub payment: Arc<str>,
    pub charge: Arc<str>,
}

impl Gateways {
    fn new(payment: Box<dyn PaymentGateway>, charge: Box<dyn ChargeGateway>) -> Gateways {
        let names = GatewayNames { payment: payment.name().into(), charge: charge.name().into() };
        Gateways { payment, charge, names }
    }
}

/// How an engine behaves, as built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub locale: Locale,
    pub retry: RetryPolicy,
    pub breakers: BreakerSettings,
    /// How many due messages a command delivers right after its commit.
    pub relay_after_command: usize,
    /// How long a command may spend delivering them.
    pub relay_budget: std::time::Duration,
    /// How long a claim on a gateway call lasts: longer than any call may
    /// take, after which another actor may take the call over.
    pub lease: std::time::Duration,
    /// How long one batch of claimed messages is sent for
    /// ([`SENDING_WINDOW`]).
    pub sending_window: std::time::Duration,
}

/// How long a claim on a gateway call lasts unless told otherwise
/// ([`EngineBuilder::lease`]): a minute, well beyond a gateway's timeout.
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Builds an [`Engine`]: sandbox gateways, system clock, no notifier and
/// Korean messages unless told otherwise.
pub struct EngineBuilder {
    engine: Engine,
}

/// How long a claim on a message lasts: a process that claimed messages and
/// died leaves them to the next `relay` after this.
pub(crate) const MESSAGE_LEASE_MS: u64 = 120_000;

/// How long one batch of claimed messages is sent for: a quarter of the
/// claim's lease, so that the last send (at most a minute, the longest
/// timeout a channel may have) and the record of it end well before the
/// claim lapses and another relay may claim, and send, the same messages.
/// What is not tried by then is released for the next batch
/// (`Settings::sending_window`, this unless a test says otherwise).
pub(crate) const SENDING_WINDOW: std::time::Duration = std::time::Duration::from_millis(MESSAGE_LEASE_MS / 4);

impl EngineBuilder {
    /// A builder over `storage` with these gateways, and the defaults for
    /// the rest. [`Engine::builder`] (in `crate::wiring`, the one place
    /// that knows the adapters) picks the sandbox gateways.
    pub fn new(
        storage: impl Storage + 'static,
        payment: impl PaymentGateway + 'static,
        charge: impl ChargeGateway + 'static,
    ) -> EngineBuilder {
        EngineBuilder {
            engine: Engine {
                storage: Arc::new(storage),
                gateways: Gateways::new(Box::new(payment), Box::new(charge)),
                notifiers: Vec::new(),
                clock: Box::new(SystemClock),
                settings: Settings {
                    locale: Locale::default(),
                    retry: RetryPolicy::default(),
                    breakers: BreakerSettings::default(),
                    relay_after_command: 32,
                    relay_budget: std::time::Duration::from_millis(250),
                    sending_window: SENDING_WINDOW,
                    lease: DEFAULT_LEASE,
                },
                event_ids: EventIds::new(),
                nonces: Nonces::new(),
            },
        }
    }
}

/// What one committed unit of work produced besides its result: the view
/// its events left and the messages it claimed to deliver right away.
#[derive(Debug, Default)]
pub(crate) struct Produced {
    /// The view of the order the unit of work's last event changed, as
    /// committed; `None` when it emitted nothing (it changed no view).
    /// Boxed, as the projector hands it over (see `apply_events`).
    pub view: Option<Box<OrderView>>,
    /// Messages it queued and claimed, to deliver after the commit.
    pub claimed: Vec<QueuedMessage>,
}

impl Produced {
    /// Adds what a later unit of work of the same command produced.
    pub fn absorb(&mut self, later: Produced) {
        if later.view.is_some() {
            self.view = later.view;
        }
        self.claimed.extend(later.claimed);
    }
}

/// A committed unit of work: its result and what else it produced.
#[derive(Debug)]
pub(crate) struct Committed<R> {
    pub value: R,
    pub produced: Produced,
}

/// The last year a unit of work may begin in: far enough below 9999 that
/// what it writes later than its time (leases, retries) stays in four digits.
const MAX_YEAR: i32 = 9000;

impl Engine {
    /// The current time from the engine's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An engine over the same storage, with other gateways and clock and
    /// no notifiers, that delivers nothing after its commands (`simulate`).
    pub(crate) fn sibling(
        &self,
        payment: Box<dyn PaymentGateway>,
        charge: Box<dyn ChargeGateway>,
        clock: Box<dyn Clock>,
    ) -> Engine {
        Engine {
            storage: Arc::clone(&self.storage),
            gateways: Gateways::new(payment, charge),
            notifiers: Vec::new(),
            clock,
            settings: Settings { relay_after_command: 0, ..self.settings },
            event_ids: EventIds::new(),
            nonces: Nonces::new(),
        }
    }

    /// Runs `work` as one write transaction, then, still inside it, brings
    /// the views up to date and queues the messages for the events `work`
    /// emitted. Returns, once committed, the result and what else the unit
    /// of work produced (see [`Produced`]).
    ///
    /// `work` may run more than once: a storage that lets writers run at
    /// once re-runs the whole unit of work when the database aborts it for
    /// a conflict with another (PostgreSQL's serialisation failures and
    /// deadlocks). It must do nothing but through `Work`.
    pub(crate) fn write<R>(&self, mut work: impl FnMut(&mut Work<'_>) -> Result<R>) -> Result<Committed<R>> {
        let mut out = None;
        let produced = self.write_unit(&mut |unit| {
            out = Some(work(unit)?);
            Ok(())
        })?;
        let value = out.ok_or_else(|| Error::Internal("a unit of work did not run".into()))?;
        Ok(Committed { value, produced })
    }

    /// [`Engine::write`] but for the value `work` returns, which the caller
    /// keeps: one copy of this code serves every command. A copy for each
    /// type of `work` put 13 KB more machine code on an in-memory
    /// lifecycle's path (BENCHMARKS.md).
    fn write_unit(&self, work: &mut dyn FnMut(&mut Work<'_>) -> Result<()>) -> Result<Produced> {
        // Whole microseconds: what every storage keeps, so a view rebuilt
        // from the log is equal to the one built live.
        let now = self.clock.now().trunc_subsecs(6);
        if !(1..=MAX_YEAR).contains(&now.year()) {
            // A storage keeps four-digit years; a time it wrote and cannot
            // read back made every later read of the row fail.
            return Err(Error::Internal(format!(
                "the clock reads {now}, outside the years 1 to {MAX_YEAR} the engine keeps: nothing was written"
            )));
        }
        let settings = self.settings;
        let channels: Vec<&str> = self.notifiers.iter().map(|n| n.channel().as_str()).collect();
        // This engine delivers what its commands queue right after their
        // commit: it claims those messages in the same transaction, so that
        // no other process's relay sends them meanwhile.
        let claim = (settings.relay_after_command > 0 && !channels.is_empty())
            .then(|| (crate::domain::time::after_ms(now, MESSAGE_LEASE_MS), settings.relay_after_command));
        let mut produced = Produced::default();
        self.storage.write(&mut |repo| {
            let mut unit = Work {
                repo,
                now,
                lease: settings.lease,
                ids: &self.event_ids,
                nonces: &self.nonces,
                gateways: &self.gateways.names,
                emitted: SmallVec::new(),
                views: KeptViews::new(),
                claim,
                claimed: Vec::new(),
                locked: SmallVec::new(),
            };
            work(&mut unit)?;
            let emitted = !unit.emitted.is_empty();
            unit.finish(&channels, settings.locale)?;
            produced = Produced { view: if emitted { unit.views.pop() } else { None }, claimed: unit.claimed };
            Ok(())
        })?;
        Ok(produced)
    }

    /// Runs `read` on a consistent snapshot.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&mut dyn Repo) -> Result<R>) -> Result<R> {
        let mut read = Some(read);
        let mut out = None;
        self.storage.read(&mut |repo| {
            let run = read.take().ok_or_else(|| Error::Internal("a read ran twice".into()))?;
            out = Some(run(repo)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::Internal("a read did not run".into()))
    }

    /// The mypage view of one order (`ezdelivery status ORDER`).
    pub fn status(&self, order: OrderId) -> Result<OrderView> {
        let _span = tracing::debug_span!("status", order).entered();
        self.read(|repo| repo.view(order)?.ok_or_else(|| Error::not_found(crate::Record::Order, order)))
    }

    /// The views of all of a customer's orders, oldest first
    /// (`ezdelivery status --customer NAME`); empty for an unknown customer.
    /// A name no customer can have (a newline, say) is invalid input.
    pub fn customer_orders(&self, customer: &str) -> Result<Vec<OrderView>> {
        let customer = crate::domain::validate::name("customer", customer)?;
        self.read(|repo| repo.customer_views(&customer))
    }

    /// Events after `after`, of one order or all, at most `limit`
    /// (`ezdelivery events`). One order's are those its mypage view lists,
    /// read from the log by number: the log keeps no index by order.
    pub fn events(&self, after: i64, order: Option<OrderId>, limit: usize) -> Result<Vec<StoredEvent>> {
        self.read(|repo| {
            let Some(id) = order else { return repo.events(after, limit) };
            // The view's timeline lists every event of its order, in number
            // order, as each unit of work projects its own events in its own
            // transaction; an order's events are appended under its lock,
            // so number order is also the order in which they committed.
            // Which come after `after` is the log's to say: on PostgreSQL an
            // event numbered below `after` may have committed after it.
            // A view is written with its order, so only without one is the
            // order itself looked up, to tell an unknown order.
            let seqs: Vec<i64> = match repo.view(id)? {
                Some(view) => view.timeline.iter().map(|t| t.seq).collect(),
                None => {
                    repo.order(id)?.ok_or_else(|| Error::not_found(crate::Record::Order, id))?;
                    Vec::new()
                }
            };
            let mut events = repo.events_numbered(&seqs, after)?;
            events.truncate(limit);
            Ok(events)
        })
    }

    /// How many orders there are in each status, for metrics: every
    /// status of [`OrderStatus::ALL`], in that order, zeros included,
    /// counted on one snapshot.
    pub fn order_counts(&self) -> Result<Vec<(OrderStatus, u64)>> {
        self.read(|repo| repo.order_counts())
    }

    /// Deletes the mypage views and rebuilds them from the event log
    /// (`ezdelivery projection rebuild`).
    pub fn rebuild_projection(&self) -> Result<projector::Progress> {
        let _span = tracing::info_span!("rebuild_projection").entered();
        Ok(self.write(|w| projector::rebuild(w.repo))?.value)
    }
}

/// One unit of work: the repository inside the transaction, the time of the
/// command, and the events emitted so far.
pub(crate) struct Work<'r> {
    pub repo: &'r mut dyn Repo,
    pub now: DateTime<Utc>,
    /// How long a claim on a gateway call taken in this unit of work
    /// lasts (see [`Work::lease_until`]).
    lease: std::time::Duration,
    ids: &'r EventIds,
    /// Claim tokens and the random part of idempotency keys.
    pub nonces: &'r Nonces,
    /// The names of the gateways a claim is for.
    pub gateways: &'r GatewayNames,
    /// Each event emitted, with its id and sequence number. Inline, as
    /// the locks below: a unit of work emits one or two and locks one
    /// order, and a heap allocation for each was 3.4 % of an
    /// in-memory lifecycle's instructions.
    emitted: SmallVec<[(Uuid, i64, Event); 2]>,
    /// The views the events left, once projected; boxed so that the one
    /// handed out moves as a pointer (see `apply_events`).
    views: KeptViews,
    /// Until when, and how many, of the messages queued here to claim for
    /// delivery right after the commit.
    claim: Option<(DateTime<Utc>, usize)>,
    /// The messages claimed, as they are due once released.
    claimed: Vec<QueuedMessage>,
    /// The orders locked so far ([`Work::lock_order`]).
    locked: SmallVec<[OrderId; 2]>,
}

impl Work<'_> {
    /// When a claim on a gateway call taken now lapses: worked out only
    /// for a unit of work that claims one (date arithmetic for every unit
    /// was 1 % of an in-memory lifecycle's instructions).
    pub fn lease_until(&self) -> DateTime<Utc> {
        crate::domain::time::after_ms(self.now, u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX))
    }

    /// Takes order `order`'s lock for the rest of the unit of work (see
    /// [`Repo::lock_order`]), once.
    pub fn lock_order(&mut self, order: OrderId) -> Result<()> {
        if !self.locked.contains(&order) {
            self.repo.lock_order(order)?;
            self.locked.push(order);
        }
        Ok(())
    }

    /// Appends `event` to the log, in this transaction. An order's event
    /// is appended under the order's lock, so that the order's events are
    /// numbered in the order their units of work commit.
    pub fn emit(&mut self, event: Event) -> Result<()> {
        if let Some(order) = event.order_id() {
            self.lock_order(order)?;
        }
        let id = self.ids.next(self.now);
        let seq = self.repo.append_event_uuid(id, self.now, &event)?;
        tracing::debug!(event = %event.type_name(), order = event.order_id(), "event appended");
        self.emitted.push((id, seq, event));
        Ok(())
    }

    /// Emits `event` if there is one.
    pub fn emit_opt(&mut self, event: Option<Event>) -> Result<()> {
        event.map_or(Ok(()), |e| self.emit(e))
    }

    /// Projects the new events and queues their messages (the transactional outbox).
    fn finish(&mut self, channels: &[&str], locale: Locale) -> Result<()> {
        if self.emitted.is_empty() {
            return Ok(());
        }
        // A unit of work projects its own events, from memory, in its own
        // transaction: the views commit with the events, with no shared
        // checkpoint for every command to write (several writers at once
        // would queue on it). An order's events are appended under the
        // order's lock, so they come here in the order they commit.
        let now = self.now;
        let events = self.emitted.iter().map(|(_, seq, e)| (*seq, now, e));
        projector::apply_events(self.repo, events, Some(&mut self.views))?;
        let mut owner: Option<(i64, SmolStr)> = None;
        for (event_id, seq, event) in std::mem::take(&mut self.emitted) {
            let Some(order_id) = event.order_id() else { continue };
            if !self.views.iter().any(|v| v.order_id == order_id) {
                let view = self.repo.view(order_id)?.ok_or_else(|| Error::not_found(crate::Record::Order, order_id))?;
                self.views.push(Box::new(view));
            }
            let Some(view) = self.views.iter().find(|v| v.order_id == order_id) else { continue };
            for (audience, text) in texts_for(&event, view, locale) {
                let recipient = match audience {
                    Audience::Customer => view.customer.clone(),
                    Audience::Rider => match view.delivery.as_ref().and_then(|d| d.rider.clone()) {
                        Some(rider) => rider,
                        None => continue,
                    },
                    Audience::Owner => match &owner {
                        Some((store, name)) if *store == view.store_id => name.clone(),
                        _ => {
                            let name = self.repo.store(view.store_id)?.map(|s| s.owner).unwrap_or_default();
                            owner = Some((view.store_id, name.clone()));
                            name
                        }
                    },
                };
                let key = Message::key_of(seq, audience.place());
                let (kind, status, at) = (event.kind(), view.status, self.now);
                // Its id is the event's and the audience's: written out
                // here only for a message delivered right after the
                // commit; else the storage writes it (or keeps its parts).
                let message = Message { id: String::new(), key, order_id, event: kind, status, recipient, text, at };
                match self.claim {
                    Some((until, most)) if self.claimed.len() + channels.len() <= most => {
                        let message = Message { id: Message::id_of(event_id, audience.as_str()), ..message };
                        self.repo.queue_owned_message(message.clone(), channels)?;
                        for channel in channels {
                            let due = MessageDelivery {
                                message_id: message.id.clone(),
                                message_key: message.key,
                                channel: channel.to_string(),
                                state: DeliveryState::Pending,
                                tries: 0,
                                next_at: message.at,
                                last_error: None,
                            };
                            self.repo.save_message_delivery(&MessageDelivery { next_at: until, ..due.clone() })?;
                            self.claimed.push(QueuedMessage { message: message.clone(), delivery: due });
                        }
                    }
                    _ => self.repo.queue_event_message(event_id, audience.as_str(), message, channels)?,
                }
            }
        }
        Ok(())
    }
}

impl EngineBuilder {
    /// Uses `gateway` for payments.
    pub fn payment(mut self, gateway: impl PaymentGateway + 'static) -> Self {
        self.engine.gateways.names.payment = gateway.name().into();
        self.engine.gateways.payment = Box::new(gateway);
        self
    }

    /// Uses `gateway` for delivery charges.
    pub fn charge(mut self, gateway: impl ChargeGateway + 'static) -> Self {
        self.engine.gateways.names.charge = gateway.name().into();
        self.engine.gateways.charge = Box::new(gateway);
        self
    }

    /// Adds a notification channel. Its name is its key: a notifier with
    /// the name of one added before replaces it (and says so in the log),
    /// as a map's insert does. Two of one name had the messages queued
    /// once per notifier, all sent through the first.
    pub fn notifier(self, notifier: impl Notifier + 'static) -> Self {
        self.boxed_notifier(Box::new(notifier))
    }

    /// Adds an already boxed notification channel (see [`EngineBuilder::notifier`]).
    pub fn boxed_notifier(mut self, notifier: Box<dyn Notifier>) -> Self {
        let name = notifier.channel().as_str();
        match self.engine.notifiers.iter_mut().find(|n| n.channel().as_str() == name) {
            Some(added) => {
                tracing::warn!(channel = name, "a second notifier of the same channel name replaces the first");
                *added = notifier;
            }
            None => self.engine.notifiers.push(notifier),
        }
        self
    }

    /// Reads the time from `clock`.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.engine.clock = Box::new(clock);
        self
    }

    /// Writes messages in `locale`.
    pub fn locale(mut self, locale: Locale) -> Self {
        self.engine.settings.locale = locale;
        self
    }

    /// Spaces retries and gives up on messages by `policy`.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.engine.settings.retry = policy;
        self
    }

    /// Opens the circuit breakers by `settings`.
    pub fn breakers(mut self, settings: BreakerSettings) -> Self {
        self.engine.settings.breakers = settings;
        self
    }

    /// How many due messages each command delivers right after its commit
    /// (0: leave them all to [`Engine::relay`]).
    pub fn relay_after_command(mut self, messages: usize) -> Self {
        self.engine.settings.relay_after_command = messages;
        self
    }

    /// How long a claim on a gateway call lasts (default [`DEFAULT_LEASE`]):
    /// it must be longer than any call may take (the gateways' timeouts);
    /// a claim whose holder died is taken over after it.
    pub fn lease(mut self, lease: std::time::Duration) -> Self {
        self.engine.settings.lease = lease;
        self
    }

    /// How long each command may spend delivering messages after its commit
    /// (default 250 ms); what is left waits for `relay`.
    pub fn relay_budget(mut self, budget: std::time::Duration) -> Self {
        self.engine.settings.relay_budget = budget;
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        self.engine
    }
}

/// An order to place ([`Engine::place_order`]): who orders what from
/// which store; where to, and whether it is paid at once, are said by name.
///
/// ```
/// use ezdelivery_core::{ItemPick, NewOrder};
/// let items = [ItemPick::new("후라이드", 2)];
/// let later = NewOrder::new(1, "kim", &items);
/// let now = NewOrder::new(1, "kim", &items).deliver_to("서울 강남구").pay_now(Some("4111 1111 1111 1111"));
/// assert!(later.pay.is_none() && now.pay.is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder<'a> {
    /// The store ordered from.
    pub store: crate::domain::StoreId,
    /// Who orders.
    pub customer: &'a str,
    /// What: menus (by id or exact name) and quantities.
    pub items: &'a [ItemPick],
    /// Where to deliver, when given.
    pub address: Option<&'a str>,
    /// Paying at once, and with which card; `None`: the order waits for
    /// [`Engine::pay`] as `pending_payment`.
    pub pay: Option<PayNow<'a>>,
}

/// Paying an order as it is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayNow<'a> {
    /// The card number (masked before it is stored or sent), if any.
    pub card: Option<&'a str>,
}

impl<'a> NewOrder<'a> {
    /// `customer` orders `items` from `store`, to pay later, no address.
    pub fn new(store: crate::domain::StoreId, customer: &'a str, items: &'a [ItemPick]) -> NewOrder<'a> {
        NewOrder { store, customer, items, address: None, pay: None }
    }

    /// Delivered to `address`.
    pub fn deliver_to(self, address: &'a str) -> NewOrder<'a> {
        NewOrder { address: Some(address), ..self }
    }

    /// Paid at once, with `card` if one is given.
    pub fn pay_now(self, card: Option<&'a str>) -> NewOrder<'a> {
        NewOrder { pay: Some(PayNow { card }), ..self }
    }
}

/// One `--item MENU[:QTY]`: a menu id or exact name, and a quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPick {
    /// The menu, among the store's.
    pub menu: MenuPick,
    /// How many of that menu, 1 to 999
    /// ([`MAX_QTY`](crate::domain::validate::MAX_QTY)); picks of the same
    /// menu in one order add up, within the same limit.
    pub qty: u32,
}

/// How an [`ItemPick`] names its menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuPick {
    /// Text as a user types it (`--item 3`): the store's menu with that id
    /// when the text is a number and the store has one, else the menu with
    /// that exact name.
    IdOrName(String),
    /// The store's menu with this id (a number in an HTTP request's JSON).
    Id(crate::domain::MenuId),
    /// The store's menu with this exact name, even one that reads as a
    /// number (a string in an HTTP request's JSON).
    Name(String),
}

impl std::fmt::Display for MenuPick {
    /// The id or the name, as given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MenuPick::IdOrName(text) | MenuPick::Name(text) => f.write_str(text),
            MenuPick::Id(id) => write!(f, "{id}"),
        }
    }
}

impl ItemPick {
    /// `qty` of `menu`, an id or an exact name as a user types it
    /// ([`MenuPick::IdOrName`]).
    pub fn new(menu: impl Into<String>, qty: u32) -> ItemPick {
        ItemPick { menu: MenuPick::IdOrName(menu.into()), qty }
    }

    /// `qty` of the menu with id `menu`.
    pub fn by_id(menu: crate::domain::MenuId, qty: u32) -> ItemPick {
        ItemPick { menu: MenuPick::Id(menu), qty }
    }

    /// `qty` of the menu named exactly `name`, a number or not.
    ///
    /// ```
    /// use ezdelivery_core::{ItemPick, MenuPick};
    /// assert_eq!(ItemPick::by_name("2", 1).menu, MenuPick::Name("2".into()));
    /// assert_eq!(ItemPick::new("2", 1).menu, MenuPick::IdOrName("2".into()));
    /// ```
    pub fn by_name(name: impl Into<String>, qty: u32) -> ItemPick {
        ItemPick { menu: MenuPick::Name(name.into()), qty }
    }

    /// Parses `MENU[:QTY]`. When the text holds a `:`, what follows the
    /// last one is the quantity and must be a whole number from 1 to
    /// [`MAX_QTY`](crate::domain::validate::MAX_QTY); without a `:` the
    /// quantity is 1. A menu whose name holds a `:` is picked with its
    /// quantity (`Set: A:1`) or by its id.
    ///
    /// ```
    /// use ezdelivery_core::ItemPick;
    /// assert_eq!(ItemPick::parse("후라이드:2").unwrap(), ItemPick::new("후라이드", 2));
    /// assert_eq!(ItemPick::parse("3").unwrap(), ItemPick::new("3", 1));
    /// assert_eq!(ItemPick::parse("Set: A:1").unwrap(), ItemPick::new("Set: A", 1));
    /// assert!(ItemPick::parse("콜라:0").is_err());
    /// assert!(ItemPick::parse("콜라:99999999999").is_err());
    /// assert!(ItemPick::parse("후라이드:abc").is_err());
    /// assert!(ItemPick::parse(":").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<ItemPick> {
        use crate::domain::validate::{self, shown, Invalid, MAX_QTY};
        let invalid = |message: String| Error::Invalid(Invalid(message));
        let (menu, qty) = match text.rsplit_once(':') {
            None => (text, None),
            Some((menu, qty)) => (menu, Some(qty.trim())),
        };
        if menu.trim().is_empty() {
            return Err(invalid(format!("`{}` names no menu: use MENU[:QTY], such as 후라이드:2", shown(text))));
        }
        let menu = validate::name("menu name", menu)?;
        let qty = match qty {
            None => 1,
            Some(qty) => {
                let digits = qty.strip_prefix('-').unwrap_or(qty);
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Err(invalid(format!(
                        "`{}`: the quantity after the last `:` must be a whole number from 1 to {MAX_QTY}, \
                         got `{}`; a menu whose name holds `:` is picked with its quantity (`NAME:1`) or by its id",
                        shown(text),
                        shown(qty)
                    )));
                }
                qty.parse::<i64>()
                    .ok()
                    .and_then(|q| u32::try_from(q).ok())
                    .filter(|q| (1..=MAX_QTY).contains(q))
                    .ok_or_else(|| invalid(format!("quantity must be between 1 and {MAX_QTY}, got {}", shown(qty))))?
            }
        };
        Ok(ItemPick::new(menu, validate::qty(qty)?))
    }
}
