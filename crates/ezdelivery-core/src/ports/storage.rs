//! The storage port: a unit of work ([`Repo`]) run inside one transaction
//! ([`Storage`]). Adapters: `adapters::sqlite` (the default),
//! `adapters::memory` (for embedding and tests) and `adapters::postgres`
//! (feature `postgres`: several writers at once).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::outbox::{Message, MessageDelivery, QueuedMessage};
use super::requests::{RequestClaim, StoredResponse};
use crate::domain::view::OrderView;
use crate::domain::{
    Breaker, BreakerName, Charge, Delivery, Event, KitchenTicket, Menu, MenuId, Order, OrderId, OrderStatus, Payment,
    PaymentId, Review, Rider, RiderId, Store, StoreId,
};
use crate::Result;

/// Runs units of work atomically. Shared by every thread of a process
/// (`&self`): an adapter serialises writes itself, as its database needs.
pub trait Storage: Send + Sync {
    /// Runs `work` in one write transaction (SQLite: `BEGIN IMMEDIATE`): when
    /// it returns `Ok` everything it wrote is committed, when it returns
    /// `Err` nothing is. Never call a gateway from inside `work`.
    fn write(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()>;

    /// Runs `work` on a consistent snapshot; it must not write.
    fn read(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()>;

    /// Waits up to `timeout` for work for the relay (a long-running
    /// `relay --watch` between two passes), and returns early when told
    /// some may be there. A hint only: the relay polls anyway. By default
    /// it just waits; PostgreSQL listens for a notification.
    fn wait_for_work(&self, timeout: std::time::Duration) -> Result<()> {
        std::thread::sleep(timeout);
        Ok(())
    }
}

/// A boxed storage is a storage (so a front end that picks the adapter at
/// run time, SQLite or PostgreSQL, builds one engine over either).
impl<S: Storage + ?Sized> Storage for Box<S> {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        (**self).write(work)
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        (**self).read(work)
    }

    fn wait_for_work(&self, timeout: std::time::Duration) -> Result<()> {
        (**self).wait_for_work(timeout)
    }
}

/// The tables that hand out ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Stores.
    Store,
    /// Menus.
    Menu,
    /// Riders.
    Rider,
    /// Orders.
    Order,
    /// Payment attempts.
    Payment,
    /// Delivery charges.
    Charge,
}

/// One event as stored in the append-only log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Global sequence number, strictly increasing, from 1.
    pub seq: i64,
    /// Unique id (a UUID), for consumers that deduplicate.
    pub id: String,
    /// When it happened (the engine's clock, UTC).
    pub at: DateTime<Utc>,
    /// The event itself: its type and its data.
    pub event: Event,
}

/// What waits in the queues for `relay`: gateway calls not settled yet and
/// messages not delivered yet, and when the earliest of them is due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStatus {
    /// Payments in `pending` or `refund_pending`.
    pub payments: usize,
    /// Delivery charges in `pending` or `refund_pending`.
    pub charges: usize,
    /// Message deliveries still `pending` (one per message and channel).
    pub messages: usize,
    /// When the earliest of them is due (a call never tried: the `now` asked
    /// about); `None` when nothing waits.
    pub next_due: Option<DateTime<Utc>>,
    /// Payments and delivery charges waiting for another gateway than the
    /// ones asked about (`Attempt::gateway`): not counted above, and
    /// never due for these gateways; a relay run with a config that
    /// reaches theirs settles them.
    pub elsewhere: usize,
}

impl QueueStatus {
    /// Gateway calls waiting: payments and delivery charges.
    pub fn calls(&self) -> usize {
        self.payments + self.charges
    }
}

/// Reads and writes inside one transaction. Every `save_*` is an upsert
/// keyed by the record's id; ids come from [`Repo::next_id`].
///
/// Several writers may run at once (PostgreSQL), so a unit of work that
/// changes an order's rows first takes the order's lock
/// ([`Repo::lock_order`]): commands on one order are serialised, and an
/// order's events are appended in the order they commit. Counters change
/// in place ([`Repo::add_store_review`]), never by writing back a copy read
/// earlier; names that must be unique are so by a constraint, and a unit
/// of work that would break one fails as invalid input.
pub trait Repo {
    /// A new id of `table`, never handed out before and larger than every
    /// id handed out before it commits (SQLite: one more than the largest
    /// used, under its single writer; PostgreSQL: a sequence).
    fn next_id(&mut self, table: Table) -> Result<i64>;

    /// Takes the lock of order `id` until the unit of work ends, waiting
    /// while another unit holds it. Taking it again is free. A storage with
    /// one writer at a time has nothing to do.
    fn lock_order(&mut self, id: OrderId) -> Result<()>;

    /// Inserts a store, or updates its name, owner, address, opening and
    /// delivery charge; its review tally is kept as stored (see
    /// [`Repo::add_store_review`]).
    fn save_store(&mut self, store: &Store) -> Result<()>;
    /// Adds one review of `score` to store `id`'s tally, in place.
    fn add_store_review(&mut self, id: StoreId, score: u8) -> Result<()>;
    /// One store, by id (`None`: no such store).
    fn store(&mut self, id: StoreId) -> Result<Option<Store>>;
    /// All stores, by id.
    fn stores(&mut self) -> Result<Vec<Store>>;

    /// Inserts or replaces a menu item; names are unique within a store (a
    /// second menu of the same name is [`crate::Error::Invalid`]).
    fn save_menu(&mut self, menu: &Menu) -> Result<()>;
    /// One menu item, by id.
    fn menu(&mut self, id: MenuId) -> Result<Option<Menu>>;
    /// The menu of `store` named exactly `name`.
    fn menu_by_name(&mut self, store: StoreId, name: &str) -> Result<Option<Menu>>;
    /// The menus of one store, or of all, by id.
    fn menus(&mut self, store: Option<StoreId>) -> Result<Vec<Menu>>;

    /// Inserts or replaces a rider; names are unique (a second rider of
    /// the same name is [`crate::Error::Invalid`]).
    fn save_rider(&mut self, rider: &Rider) -> Result<()>;
    /// One rider, by id.
    fn rider(&mut self, id: RiderId) -> Result<Option<Rider>>;
    /// The rider named exactly `name`.
    fn rider_by_name(&mut self, name: &str) -> Result<Option<Rider>>;
    /// All riders, by id.
    fn riders(&mut self) -> Result<Vec<Rider>>;
    /// The rider with the fewest deliveries in `preparing` or `delivering`
    /// (the lowest id among equals), or `None` when no rider is registered.
    fn least_busy_rider(&mut self) -> Result<Option<Rider>>;

    /// Stores a new order with its items.
    fn insert_order(&mut self, order: &Order) -> Result<()>;
    /// Stores an order's status, review flag and time (items never change).
    fn update_order(&mut self, order: &Order) -> Result<()>;
    /// One order with its items, by id.
    fn order(&mut self, id: OrderId) -> Result<Option<Order>>;
    /// The ids of `store`'s orders that are paid and not finished, oldest first.
    fn store_inbox(&mut self, store: StoreId) -> Result<Vec<OrderId>>;
    /// How many orders there are in each status: every status of
    /// [`OrderStatus::ALL`], in that order, zeros included (for metrics).
    fn order_counts(&mut self) -> Result<Vec<(OrderStatus, u64)>>;

    /// Inserts or replaces a payment attempt, its gateway attempt (claim included) with it.
    fn save_payment(&mut self, payment: &Payment) -> Result<()>;
    /// One payment attempt, by its id.
    fn payment(&mut self, id: PaymentId) -> Result<Option<Payment>>;
    /// The order's newest payment attempt.
    fn latest_payment(&mut self, order: OrderId) -> Result<Option<Payment>>;
    /// Inserts or replaces an order's kitchen ticket (one per order), of
    /// an order of its store inserted before (a storage keeps it with its
    /// order): otherwise [`Error::Storage`](crate::Error::Storage).
    fn save_ticket(&mut self, ticket: &KitchenTicket) -> Result<()>;
    /// The kitchen ticket of an order, once it is paid.
    fn ticket(&mut self, order: OrderId) -> Result<Option<KitchenTicket>>;
    /// Inserts or replaces an order's delivery (one per order), of an
    /// order inserted before: otherwise [`Error::Storage`](crate::Error::Storage).
    fn save_delivery(&mut self, delivery: &Delivery) -> Result<()>;
    /// The delivery of an order, once cooking started.
    fn delivery(&mut self, order: OrderId) -> Result<Option<Delivery>>;
    /// Inserts or replaces a delivery charge, its gateway attempt (claim included) with it.
    fn save_charge(&mut self, charge: &Charge) -> Result<()>;
    /// All delivery charges of an order, oldest first.
    fn charges(&mut self, order: OrderId) -> Result<Vec<Charge>>;
    /// Inserts a review (one per order).
    fn save_review(&mut self, review: &Review) -> Result<()>;

    /// Payments waiting for gateway `gateway` (`pending` or
    /// `refund_pending`, and [`Attempt::goes_to`] it) whose retry is due
    /// at `now` or that were never tried, oldest first.
    ///
    /// [`Attempt::goes_to`]: crate::domain::attempt::Attempt::goes_to
    fn payments_awaiting(&mut self, now: DateTime<Utc>, gateway: &str, limit: usize) -> Result<Vec<Payment>>;
    /// The same for delivery charges.
    fn charges_awaiting(&mut self, now: DateTime<Utc>, gateway: &str, limit: usize) -> Result<Vec<Charge>>;
    /// Payments in `needs_attention`, oldest first, at most `limit`.
    fn payments_needing_attention(&mut self, limit: usize) -> Result<Vec<Payment>>;
    /// Delivery charges in `needs_attention`, oldest first, at most `limit`.
    fn charges_needing_attention(&mut self, limit: usize) -> Result<Vec<Charge>>;
    /// What waits for a `relay` whose gateways are named `payment_gateway`
    /// and `charge_gateway`, due or not: payments and delivery charges in
    /// `pending` or `refund_pending` that go to them, message deliveries in
    /// `pending`, and the earliest `next_at` among them (a call never tried
    /// counts as due at `now`); and how many calls wait for other gateways.
    fn queue_status(&mut self, now: DateTime<Utc>, payment_gateway: &str, charge_gateway: &str) -> Result<QueueStatus>;
    /// The channels of the message deliveries in `pending`, each once, in
    /// name order.
    fn waiting_channels(&mut self) -> Result<Vec<String>>;

    /// Appends an event to the log and returns its sequence number, new and
    /// larger than any number handed out before.
    fn append_event(&mut self, id: &str, at: DateTime<Utc>, event: &Event) -> Result<i64>;
    /// [`Repo::append_event`] for an id that is a UUID, as the engine's
    /// are: kept as its text, hyphenated and in lower case. A storage that
    /// keeps the UUID itself (the in-memory one) takes it as it is rather
    /// than reading it back from the text.
    fn append_event_uuid(&mut self, id: Uuid, at: DateTime<Utc>, event: &Event) -> Result<i64> {
        self.append_event(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()), at, event)
    }
    /// The events after event `after` (0: from the start) in the log's
    /// order, at most `limit`.
    ///
    /// The log's order is the order in which its events can no longer be
    /// joined by one before them, so a reader that asks again after the last
    /// event it got never misses one: with one writer at a time (SQLite) it
    /// is the order of sequence numbers; with several (PostgreSQL) a number
    /// handed out early may commit late, so the log's order is commit
    /// order, and a reader sees an event only once every transaction that
    /// could still add one before it has ended. Numbers are unique either
    /// way; an order's events are in number order (they are appended under
    /// the order's lock). An `after` that names no event (a number rolled
    /// back) counts as the last event numbered below it.
    fn events(&mut self, after: i64, limit: usize) -> Result<Vec<StoredEvent>>;

    /// Of the events numbered `seqs` (given in increasing order, as a
    /// timeline lists them), those after event `after` in the log's order
    /// (as [`Repo::events`] takes `after`), in the log's order; a number
    /// no event has is skipped. The engine reads one order's events this
    /// way, the numbers taken from the order's view
    /// ([`OrderView::timeline`], kept in the same transaction as the log),
    /// so the log needs no index by order: on SQLite such an index cost a
    /// page written per event.
    fn events_numbered(&mut self, seqs: &[i64], after: i64) -> Result<Vec<StoredEvent>>;

    /// Every event this unit of work sees with a number above `after`, in
    /// number order, at most `limit`: the whole log as of this unit of
    /// work, for a replay that compares it with the views saved beside it
    /// (a projection rebuild, the invariant check, a copy's
    /// verification). Unlike [`Repo::events`] it does not hold back events
    /// a follower could still see joined by earlier ones; those are as
    /// committed as the views that a replay compares them with. With one
    /// writer at a time the two are the same, which is the default.
    fn replay(&mut self, after: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.events(after, limit)
    }

    /// The last event a projector has applied (0: none), as `events` takes
    /// it. Only a rebuild keeps one: commands project their own events.
    fn checkpoint(&mut self, projector: &str) -> Result<i64>;
    /// Records that `projector` has applied the log up to `seq`.
    fn set_checkpoint(&mut self, projector: &str, seq: i64) -> Result<()>;
    /// The mypage view of one order.
    fn view(&mut self, order: OrderId) -> Result<Option<OrderView>>;
    /// Inserts or replaces the mypage view of one order.
    fn save_view(&mut self, view: &OrderView) -> Result<()>;
    /// The views of one customer's orders, by order id.
    fn customer_views(&mut self, customer: &str) -> Result<Vec<OrderView>>;
    /// Deletes every view (before a rebuild).
    fn clear_views(&mut self) -> Result<()>;

    /// Queues a message once per channel; a message whose id is already
    /// queued is left as it is, so replays never send twice.
    fn queue_message(&mut self, message: &Message, channels: &[&str]) -> Result<()>;
    /// [`Repo::queue_message`] for a message the caller no longer needs
    /// (an adapter that keeps messages in memory takes it without a copy).
    fn queue_owned_message(&mut self, message: Message, channels: &[&str]) -> Result<()> {
        self.queue_message(&message, channels)
    }
    /// [`Repo::queue_owned_message`] for the message about event
    /// `event_id` to `audience` (`customer`, `owner`, `rider`), with the id
    /// the engine gives it, [`Message::id_of`] the two: `message.id` is
    /// replaced. A storage that makes the id again from its event's when it
    /// is read (the in-memory one) neither writes it out nor keeps it.
    fn queue_event_message(
        &mut self,
        event_id: Uuid,
        audience: &str,
        mut message: Message,
        channels: &[&str],
    ) -> Result<()> {
        message.id = Message::id_of(event_id, audience);
        self.queue_owned_message(message, channels)
    }
    /// Deliveries still `pending` whose next try is due at `now`, oldest
    /// message first (by its time, then id, then channel), at most `limit`.
    fn due_messages(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<QueuedMessage>> {
        self.due_messages_except(now, limit, &[])
    }
    /// [`Repo::due_messages`] but for the channels named in `channels`:
    /// the relay leaves out a channel that failed or whose breaker is open,
    /// so that its backlog does not fill every batch and hold up the
    /// other channels' messages behind it.
    fn due_messages_except(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        channels: &[&str],
    ) -> Result<Vec<QueuedMessage>>;
    /// Deliveries parked as `dead`, oldest message first, at most `limit`.
    fn dead_messages(&mut self, limit: usize) -> Result<Vec<QueuedMessage>>;
    /// Inserts or replaces the delivery state of one message on one channel.
    fn save_message_delivery(&mut self, delivery: &MessageDelivery) -> Result<()>;
    /// Deletes the messages queued before `before` that were delivered on
    /// every channel (or had none), with their deliveries; returns how
    /// many. Pending and dead ones stay, however old.
    fn purge_delivered_messages(&mut self, before: DateTime<Utc>) -> Result<usize>;

    /// Claims the idempotency key `key` of sender `scope` for a request
    /// whose method, path and body hash to `fingerprint`, at `at` (see
    /// [`RequestClaim`]): when no request of `scope` has claimed `key`, it
    /// is recorded, with no response yet, and the answer is
    /// [`RequestClaim::New`]; else nothing changes and the answer says what
    /// is stored. Race-free: of any number of units of work claiming the
    /// same key at once, in any number of processes, exactly one gets
    /// `New` (SQLite: its one writer; PostgreSQL: the primary key, with
    /// `INSERT … ON CONFLICT DO NOTHING`).
    fn claim_request(&mut self, scope: &str, key: &str, fingerprint: &str, at: DateTime<Utc>) -> Result<RequestClaim>;
    /// Stores the response of the request that claimed `key` of `scope`;
    /// `false` when no request holds that key (never claimed, forgotten or
    /// purged), and then nothing changes.
    fn finish_request(&mut self, scope: &str, key: &str, response: &StoredResponse) -> Result<bool>;
    /// Deletes the key `key` of `scope`, finished or not, so that it can be
    /// claimed anew (the request failed before it did anything); `false`
    /// when there was none.
    fn forget_request(&mut self, scope: &str, key: &str) -> Result<bool>;
    /// Deletes every key claimed before `before`, finished or not; returns
    /// how many.
    fn purge_requests(&mut self, before: DateTime<Utc>) -> Result<usize>;

    /// A circuit breaker's state (`None`: never used, i.e. closed).
    fn breaker(&mut self, name: &BreakerName) -> Result<Option<Breaker>>;
    /// Every breaker that was ever used, by name.
    fn breakers(&mut self) -> Result<Vec<Breaker>>;
    /// Inserts or replaces a circuit breaker's state.
    fn save_breaker(&mut self, breaker: &Breaker) -> Result<()>;
}
