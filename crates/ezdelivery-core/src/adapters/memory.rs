//! In-memory storage, for embedding, tests and benchmarks.
//!
//! Every record type lives in its own typed map, next to the secondary
//! indexes the [`Repo`] queries need (orders in a store's inbox, payments and
//! charges by order and awaiting the gateway, active deliveries per rider,
//! views by customer, events by order, message deliveries by due time), so
//! every call is a few map operations. The tables whose ids the engine
//! hands out in sequence (orders and what hangs off them, payments,
//! charges) are vectors indexed by id (`dense_map`). The event log, the
//! queued messages and their deliveries are append-only vectors, kept
//! compactly: an event's id as 16 bytes and its data written as bytes
//! (`log`, `event_codec`: the one thing serialized, as events are written
//! once and seldom read), a message's recipient and the end of its id as
//! numbers in a table of names (`names`).
//!
//! # Transactions: the undo journal
//!
//! [`Storage::write`] does not copy the state. Every mutation goes through a
//! `put_*` (or `set_*`, `push_*`) function that changes one record, keeps
//! that record's index entries in step, and hands back the value it replaced;
//! the write pushes that previous value onto an undo journal (for the id
//! counters, the previous largest id; for an append, a marker to pop it
//! again; a replaced view, payment or charge goes on a stack of its own
//! beside the journal, whose entry only says that it is there). When the unit
//! of work returns `Ok` the journal is simply cleared. When it returns `Err`,
//! or panics, the journal is replayed in reverse, putting every previous
//! value back through the same functions, which restores the indexes along
//! with the records. A commit costs nothing but dropping the old values; a
//! rollback costs as much as the writes it undoes. [`Storage::read`] runs its
//! work without a journal: a write inside it is refused with
//! [`Error::Storage`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use smallvec::SmallVec;
use uuid::Uuid;

mod dense_map;
mod event_codec;
mod keyed_queue;
mod log;
mod names;
mod texts;
mod view_parts;

use self::dense_map::DenseMap;
use self::keyed_queue::{Keyed, KeyedQueue};
use self::log::{Log, LoggedEvent};
use self::names::{NameId, Names};
use self::texts::{TextSpan, Texts};
use self::view_parts::ViewParts;
use super::calls::{CallRecord, CallsWaiting};
use crate::domain::view::OrderView;
use crate::domain::{
    Breaker, Charge, ChargeId, Delivery, Event, EventType, KitchenTicket, Menu, MenuId, Order, OrderId, OrderStatus,
    Payment, PaymentId, Review, Rider, RiderId, Store, StoreId,
};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::requests::{RequestClaim, StoredResponse};
use crate::ports::storage::{QueueStatus, StoredEvent, Table};
use crate::ports::{Message, Repo, Storage};
use crate::{Error, Result};

/// Storage that keeps everything in memory, with atomic write transactions.
///
/// ```
/// use ezdelivery_core::adapters::memory::MemoryStorage;
/// use ezdelivery_core::ports::storage::Table;
/// use ezdelivery_core::domain::Rider;
/// use ezdelivery_core::ports::Storage;
///
/// let mut storage = MemoryStorage::new();
/// storage
///     .write(&mut |repo| {
///         let id = repo.next_id(Table::Rider)?;
///         repo.save_rider(&Rider { id, name: "lee".into() })
///     })
///     .unwrap();
/// // A write that fails leaves nothing behind.
/// let failed = storage.write(&mut |repo| {
///     repo.save_rider(&Rider { id: 2, name: "park".into() })?;
///     Err(ezdelivery_core::Error::Internal("changed my mind".into()))
/// });
/// assert!(failed.is_err());
/// let mut riders = Vec::new();
/// storage.read(&mut |repo| Ok(riders = repo.riders()?)).unwrap();
/// assert_eq!(riders.len(), 1);
/// assert_eq!(riders[0].name, "lee");
/// ```
#[derive(Default)]
pub struct MemoryStorage {
    /// One unit of work at a time, as a database's single writer.
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    state: State,
    /// The undo journal of the write in progress; empty between writes (kept
    /// here so its allocation is reused).
    journal: Journal,
}

impl MemoryStorage {
    /// The state, with no lock to take: nothing else can hold it.
    #[cfg(test)]
    fn parts(&mut self) -> &mut Inner {
        self.inner.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, for the one unit of work running. A panic in an earlier
    /// one was rolled back by its guard: the state is sound.
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

impl fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner();
        let s = &inner.state;
        f.debug_struct("MemoryStorage")
            .field("stores", &s.stores.len())
            .field("menus", &s.menus.len())
            .field("riders", &s.riders.len())
            .field("orders", &s.orders.len())
            .field("payments", &s.payments.len())
            .field("charges", &s.charges.len())
            .field("events", &s.events.len())
            .field("views", &s.views.len())
            .field("messages", &s.messages.len())
            .finish_non_exhaustive()
    }
}

impl Storage for MemoryStorage {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        let mut inner = self.inner();
        let Inner { state, journal } = &mut *inner;
        // The guard replays whatever is left in the journal when it is
        // dropped: after an `Err`, and after a panic in `work`.
        let guard = Rollback { state, journal };
        let result = work(&mut Tx { state: guard.state, journal: Some(guard.journal) });
        if result.is_ok() {
            guard.journal.undo.clear();
            guard.journal.replaced.clear();
        }
        result
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        work(&mut Tx { state: &mut self.inner().state, journal: None })
    }
}

/// Undoes the journal of an unfinished write when dropped.
struct Rollback<'a> {
    state: &'a mut State,
    journal: &'a mut Journal,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        while let Some(undo) = self.journal.undo.pop() {
            self.state.undo(undo, &mut self.journal.replaced);
        }
        // Every record on a stack came with its entry, so the replay took
        // them all; cleared all the same, so that a record left without one
        // could never be taken by the next write. (Not asserted while
        // unwinding: a second panic would abort.)
        debug_assert!(
            std::thread::panicking() || self.journal.replaced.is_empty(),
            "a replaced record without its entry"
        );
        self.journal.replaced.clear();
    }
}

/// What a write changed, newest last.
#[derive(Default)]
struct Journal {
    undo: Vec<Undo>,
    replaced: Replaced,
}

/// The largest records that a write's saves replaced, newest last, one
/// stack per kind: kept apart so that they do not widen every entry of
/// [`Journal::undo`], which every save writes and every write clears (208
/// bytes with payments and charges inline; 64 with them here and the rare
/// large variants boxed).
#[derive(Default)]
struct Replaced {
    views: Vec<OrderView>,
    /// What saves changed in views they updated in place.
    view_parts: Vec<ViewParts>,
    payments: Vec<Payment>,
    charges: Vec<Charge>,
}

impl Replaced {
    fn clear(&mut self) {
        self.views.clear();
        self.view_parts.clear();
        self.payments.clear();
        self.charges.clear();
    }

    fn is_empty(&self) -> bool {
        self.views.is_empty() && self.view_parts.is_empty() && self.payments.is_empty() && self.charges.is_empty()
    }
}

/// Puts a replaced record on its stack, if there was one; whether there
/// was, for the journal entry that [`unstash`] reads back.
fn stash<T>(stack: &mut Vec<T>, old: Option<T>) -> bool {
    let was = old.is_some();
    stack.extend(old);
    was
}

/// Takes back the record [`stash`] put on its stack, if it put one.
fn unstash<T>(stack: &mut Vec<T>, was: bool) -> Option<T> {
    if !was {
        return None;
    }
    let old = stack.pop();
    debug_assert!(old.is_some(), "a journal entry without its replaced record");
    old
}

impl Journal {
    fn push(&mut self, undo: Undo) {
        self.undo.push(undo);
    }
}

// Every save writes one entry; the large records go on `Replaced` instead.
const _: () = assert!(std::mem::size_of::<Undo>() <= 64);

/// One entry of the undo journal: what to put back.
enum Undo {
    /// The largest id of a table before it grew.
    MaxId(Table, i64),
    Store(StoreId, Option<Box<Store>>),
    Menu(MenuId, Option<Menu>),
    Rider(RiderId, Option<Rider>),
    /// An order was inserted: remove it.
    OrderInserted(OrderId),
    /// An order's status, review flag and time before `update_order`.
    OrderFields(OrderId, OrderStatus, bool, DateTime<Utc>),
    /// A payment was saved; `true` when it replaced one, which is on [`Replaced::payments`].
    Payment(PaymentId, bool),
    Ticket(OrderId, Option<KitchenTicket>),
    Delivery(OrderId, Option<Delivery>),
    /// A charge was saved; `true` when it replaced one, which is on [`Replaced::charges`].
    Charge(ChargeId, bool),
    Review(OrderId, Option<Box<Review>>),
    /// An event was appended: pop it.
    Event,
    /// A checkpoint (by its index) before it moved.
    Checkpoint(usize, i64),
    /// A checkpoint was added: pop it.
    NewCheckpoint,
    /// A breaker before it was saved (`None`: it was new).
    Breaker(String, Option<Box<Breaker>>),
    /// A view was saved; `true` when it replaced one, which is on [`Replaced::views`].
    View(OrderId, bool),
    /// A view was updated in place; what changed is on [`Replaced::view_parts`].
    ViewParts(OrderId),
    /// Every view and the customer index, as they were before `clear_views`.
    Views(Box<(ViewMap, CustomerIndex)>),
    /// A message was queued: pop it.
    Message,
    /// A name was added to [`State::names`]: pop it.
    Name,
    /// A channel name was interned: pop it.
    Channel,
    /// A message delivery was created: pop it.
    NewDelivery,
    /// A message delivery's progress before it was saved.
    Progress(usize, Progress),
    /// The whole outbox as it was before a purge.
    Outbox(Box<Outbox>),
    /// An idempotency key (scope, key) before it changed (`None`: it was new).
    Request(RequestKey, Option<Box<StoredRequest>>),
    /// Every idempotency key, as they were before a purge.
    Requests(BTreeMap<RequestKey, StoredRequest>),
}

/// An idempotency key: its sender's scope, then the key.
type RequestKey = (String, String);

/// What is kept of a claimed idempotency key.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct StoredRequest {
    fingerprint: String,
    claimed_at: DateTime<Utc>,
    /// `None` until the request finishes.
    response: Option<StoredResponse>,
}

/// The outbox's messages and deliveries with their indexes (channel names
/// stay: a purge keeps them).
struct Outbox {
    messages: KeyedQueue<QueuedEntry>,
    names: Names,
    texts: Texts,
    message_deliveries: Vec<Slot>,
    delivery_keys: IdMap<(usize, usize), usize>,
    due: BTreeSet<(DateTime<Utc>, usize)>,
    dead: BTreeSet<usize>,
}

/// A hash map keyed by ids, with foldhash's fast hasher (hashbrown's
/// default): ids are handed out by the engine, not chosen by users, so the
/// flooding resistance of std's SipHash buys nothing there, and a lifecycle
/// hashes about 110 ids (10,000 inserted and looked up in 154 µs against
/// 391 µs with std's; `cargo bench --bench primitives -- id_map`,
/// BENCHMARKS.md). Maps keyed by names keep std's hasher.
type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The mypage views by order.
type ViewMap = DenseMap<OrderView>;

/// A customer's name → the orders of their views.
type CustomerIndex = HashMap<String, BTreeSet<OrderId>>;

/// The tables and their indexes.
#[derive(Default)]
#[cfg_attr(test, derive(Clone, Debug, PartialEq))]
struct State {
    /// The largest id saved per [`Table`] (see [`table_index`]); 0 when none.
    max_ids: [i64; 6],

    stores: BTreeMap<StoreId, Store>,

    menus: BTreeMap<MenuId, Menu>,
    /// Per store: its menu ids, and its menu ids by name.
    store_menus: IdMap<StoreId, StoreMenus>,

    riders: BTreeMap<RiderId, Rider>,
    rider_names: HashMap<String, BTreeSet<RiderId>>,
    /// Deliveries `preparing` or `delivering` per rider id (registered or
    /// not), without the zeros.
    rider_load: IdMap<RiderId, u32>,
    /// (load, id) of every registered rider: the first is the least busy.
    riders_by_load: BTreeSet<(u32, RiderId)>,

    orders: DenseMap<Order>,
    /// Per store, its orders whose status is in the store's inbox.
    inbox: IdMap<StoreId, BTreeSet<OrderId>>,

    payments: Calls<Payment>,

    tickets: DenseMap<KitchenTicket>,
    deliveries: DenseMap<Delivery>,

    charges: Calls<Charge>,

    /// By order; a hash map, not a [`DenseMap`]: few orders have one, and a
    /// vector would keep an empty slot for every order without.
    reviews: IdMap<OrderId, Review>,

    /// The log; an event's seq is its index + 1.
    events: Log,

    /// (projector, seq): a handful, so a vector.
    checkpoints: Vec<(String, i64)>,
    /// Circuit breakers by name: a handful.
    breakers: BTreeMap<String, Breaker>,

    views: ViewMap,
    customer_views: CustomerIndex,

    /// Queued messages, in queue order. A message's place in the queue is
    /// what the deliveries and the indexes below call its key; it is
    /// found by its [`Message::key`], which identifies a message as it
    /// does in the SQL adapters.
    messages: KeyedQueue<QueuedEntry>,
    /// The recipients of messages and the last part of their ids; a purge
    /// builds it again from the messages that stay, so that it does not
    /// keep every name ever messaged.
    names: Names,
    /// The messages' texts; a purge too builds it again.
    texts: Texts,
    /// Channel names; a name's index is its key.
    channels: Vec<String>,
    /// Message deliveries, in the order they were created (so oldest
    /// first); a delivery's index is its key.
    message_deliveries: Vec<Slot>,
    /// (message key, channel key) → delivery key.
    delivery_keys: IdMap<(usize, usize), usize>,
    /// (next_at, key) of every `pending` delivery.
    due: BTreeSet<(DateTime<Utc>, usize)>,
    /// Keys of the `dead` deliveries.
    dead: BTreeSet<usize>,

    /// Idempotency keys of requests, by (scope, key).
    requests: BTreeMap<RequestKey, StoredRequest>,
}

/// The menus of one store.
#[derive(Default)]
#[cfg_attr(test, derive(Clone, Debug, PartialEq))]
struct StoreMenus {
    ids: BTreeSet<MenuId>,
    by_name: HashMap<String, BTreeSet<MenuId>>,
}

/// A queued message, as kept: its recipient a number in [`State::names`],
/// its id and time most often not kept but made again from its event's.
///
/// A message's three strings were three heap blocks of their own: with
/// seven messages per lifecycle, nearly a third of the memory an in-memory
/// lifecycle kept (BENCHMARKS.md). Its time, the event's, made the entry
/// 72 bytes with padding, now 56.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct QueuedEntry {
    key: i64,
    order_id: OrderId,
    event: EventType,
    status: OrderStatus,
    recipient: NameId,
    id: MessageIdForm,
    text: TextSpan,
}

impl Keyed for QueuedEntry {
    fn key(&self) -> i64 {
        self.key
    }
}

/// How a queued message's id and time are kept.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
enum MessageIdForm {
    /// The id of the event its key names, `:`, and this name (the
    /// engine's ids: `<event id>:customer`), at the event's time.
    OfEvent(NameId),
    /// Any other id, or another time, as given.
    Own(Box<(Box<str>, DateTime<Utc>)>),
}

/// One message on one channel.
#[cfg_attr(test, derive(Clone, Debug, PartialEq))]
struct Slot {
    message: usize,
    channel: usize,
    progress: Progress,
}

/// The part of a message delivery that changes.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Progress {
    state: DeliveryState,
    tries: u32,
    next_at: DateTime<Utc>,
    last_error: Option<String>,
}

impl Progress {
    fn of(d: &MessageDelivery) -> Progress {
        Progress { state: d.state, tries: d.tries, next_at: d.next_at, last_error: d.last_error.clone() }
    }
}

fn table_index(table: Table) -> usize {
    match table {
        Table::Store => 0,
        Table::Menu => 1,
        Table::Rider => 2,
        Table::Order => 3,
        Table::Payment => 4,
        Table::Charge => 5,
    }
}

/// Puts `value` under `key` (or removes the key when `None`); returns what was there.
fn swap_btree<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: Option<V>) -> Option<V> {
    match value {
        Some(v) => map.insert(key, v),
        None => map.remove(&key),
    }
}

/// Adds `id` to the set under `key`, allocating the key only when it is new.
fn index_add<K, Q, T, S>(index: &mut HashMap<K, BTreeSet<T>, S>, key: &Q, id: T)
where
    K: std::borrow::Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    T: Ord,
    S: BuildHasher,
{
    match index.get_mut(key) {
        Some(set) => {
            set.insert(id);
        }
        None => {
            index.insert(key.to_owned(), BTreeSet::from([id]));
        }
    }
}

/// Removes `id` from the set under `key`, and the key once its set is empty.
fn index_remove<K, Q, T, S>(index: &mut HashMap<K, BTreeSet<T>, S>, key: &Q, id: &T)
where
    K: std::borrow::Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
    T: Ord,
    S: BuildHasher,
{
    if let Some(set) = index.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

/// The payments or the delivery charges, with the indexes their queries
/// need; one type for both, so both keep their indexes the same way.
#[cfg_attr(test, derive(Clone, Debug, PartialEq))]
struct Calls<T> {
    records: DenseMap<T>,
    /// Each order's record ids, ascending. Keyed by order id rather than a
    /// set of (order, id) pairs: an order's ids are one index away, where
    /// a B-tree of every pair ever put was a walk of several nodes for
    /// each lookup and each insert (about 4 % of an in-memory lifecycle).
    by_order: DenseMap<OrderCalls>,
    /// The ids of those in the relay's queue ([`CallRecord::waits`]).
    waiting: BTreeSet<i64>,
}

/// An order's payment or charge ids: inline, as an order has one of each
/// unless a payment is tried again.
type OrderCalls = SmallVec<[i64; 1]>;

// Not derived: the derive would ask for `T: Default`, which no record is.
impl<T> Default for Calls<T> {
    fn default() -> Self {
        Calls { records: DenseMap::default(), by_order: DenseMap::default(), waiting: BTreeSet::new() }
    }
}

impl<T: CallRecord> Calls<T> {
    /// How many there are.
    fn len(&self) -> usize {
        self.records.len()
    }

    fn get(&self, id: i64) -> Option<&T> {
        self.records.get(&id)
    }

    /// Puts `record` under `id` (or removes it when `None`), keeping the
    /// indexes in step; returns what was there.
    fn put(&mut self, id: i64, record: Option<T>) -> Option<T> {
        let old_order = self.get(id).map(T::order_id);
        let new_order = record.as_ref().map(T::order_id);
        if old_order != new_order {
            if let Some(order) = old_order {
                if let Some(ids) = self.by_order.get_mut(&order) {
                    ids.retain(|i| *i != id);
                    if ids.is_empty() {
                        self.by_order.remove(&order);
                    }
                }
            }
            if let Some(order) = new_order {
                match self.by_order.get_mut(&order) {
                    Some(ids) => {
                        let at = ids.partition_point(|i| *i < id);
                        ids.insert(at, id);
                    }
                    None => {
                        self.by_order.insert(order, OrderCalls::from_buf([id]));
                    }
                }
            }
        }
        match record.as_ref().is_some_and(T::waits) {
            true => self.waiting.insert(id),
            false => self.waiting.remove(&id),
        };
        self.records.swap(id, record)
    }

    /// An order's records, oldest (lowest id) first.
    fn of_order(&self, order: OrderId) -> impl DoubleEndedIterator<Item = &T> {
        self.by_order.get(&order).into_iter().flatten().filter_map(|id| self.get(*id))
    }

    /// Copies of order `order`'s records, by id, in a vector of their
    /// number (`collect` would make room for four: 800 bytes for one charge).
    fn copies_of_order(&self, order: OrderId) -> Vec<T> {
        let mut copies = Vec::with_capacity(self.by_order.get(&order).map_or(0, |ids| ids.len()));
        copies.extend(self.of_order(order).cloned());
        copies
    }

    /// The records in the relay's queue, by id.
    fn queued(&self) -> impl Iterator<Item = &T> {
        self.waiting.iter().filter_map(|id| self.get(*id))
    }

    /// Those in the queue for gateway `gateway` whose retry is due at
    /// `now` or that were never tried, by id, at most `limit`.
    fn awaiting(&self, now: DateTime<Utc>, gateway: &str, limit: usize) -> Vec<T> {
        let due = |c: &&T| c.attempt().next_at.is_none_or(|t| t <= now) && c.goes_to(gateway);
        self.queued().filter(due).take(limit).cloned().collect()
    }

    /// What waits in the queue, for gateway `gateway`.
    fn waiting_for(&self, now: DateTime<Utc>, gateway: &str) -> CallsWaiting {
        let (ours, theirs): (Vec<&T>, Vec<&T>) = self.queued().partition(|c| c.goes_to(gateway));
        let next_due = ours.iter().map(|c| c.attempt().next_at.unwrap_or(now)).min();
        CallsWaiting { ours: ours.len(), next_due, elsewhere: theirs.len() }
    }

    /// Those a person must look at, by id, at most `limit`.
    fn needing_attention(&self, limit: usize) -> Vec<T> {
        let mut found: Vec<T> = self.records.values().filter(|c| c.needs_attention()).cloned().collect();
        found.sort_by_key(T::id);
        found.truncate(limit);
        found
    }
}

/// Events an order's timeline holds once it is delivered: the room a
/// newly stored view is given, so that its timeline is not moved to a
/// larger block twice on the way (BENCHMARKS.md).
const LIFECYCLE_EVENTS: usize = 8;

/// A copy of a view with room in its timeline for `room` more events, so
/// that a write applying the next ones does not move it again (a clone is
/// as long as the original, with no room to grow).
#[inline(always)]
fn copy_view(view: &OrderView, room: usize) -> OrderView {
    let OrderView {
        order_id,
        store_id,
        store,
        customer,
        address,
        status,
        items,
        total,
        payment,
        kitchen,
        delivery,
        review,
        reason,
        placed_at,
        updated_at,
        timeline,
    } = view;
    let mut copied = Vec::with_capacity(timeline.len() + room);
    copied.extend_from_slice(timeline);
    OrderView {
        order_id: *order_id,
        store_id: *store_id,
        store: store.clone(),
        customer: customer.clone(),
        address: address.clone(),
        status: *status,
        items: items.clone(),
        total: *total,
        payment: payment.clone(),
        kitchen: kitchen.clone(),
        delivery: delivery.clone(),
        review: review.clone(),
        reason: reason.clone(),
        placed_at: *placed_at,
        updated_at: *updated_at,
        timeline: copied,
    }
}

impl State {
    /// Puts back what one journal entry recorded, taking the records it
    /// replaced from `replaced`.
    fn undo(&mut self, undo: Undo, replaced: &mut Replaced) {
        match undo {
            Undo::MaxId(table, id) => self.max_ids[table_index(table)] = id,
            Undo::Store(id, v) => {
                swap_btree(&mut self.stores, id, v.map(|store| *store));
            }
            Undo::Menu(id, v) => {
                self.put_menu(id, v);
            }
            Undo::Rider(id, v) => {
                self.put_rider(id, v);
            }
            Undo::OrderInserted(id) => self.remove_order(id),
            Undo::OrderFields(id, status, reviewed, at) => {
                self.set_order_fields(id, status, reviewed, at);
            }
            Undo::Payment(id, was) => {
                self.payments.put(id, unstash(&mut replaced.payments, was));
            }
            Undo::Ticket(id, v) => {
                self.tickets.swap(id, v);
            }
            Undo::Delivery(id, v) => {
                self.put_delivery(id, v);
            }
            Undo::Charge(id, was) => {
                self.charges.put(id, unstash(&mut replaced.charges, was));
            }
            Undo::Review(id, v) => {
                match v {
                    Some(review) => self.reviews.insert(id, *review),
                    None => self.reviews.remove(&id),
                };
            }
            Undo::Event => {
                self.events.pop();
            }
            Undo::Checkpoint(index, seq) => {
                if let Some(c) = self.checkpoints.get_mut(index) {
                    c.1 = seq;
                }
            }
            Undo::NewCheckpoint => {
                self.checkpoints.pop();
            }
            Undo::Breaker(name, old) => {
                match old {
                    Some(b) => self.breakers.insert(name, *b),
                    None => self.breakers.remove(&name),
                };
            }
            Undo::View(id, was) => {
                self.put_view(id, unstash(&mut replaced.views, was));
            }
            Undo::ViewParts(id) => {
                let parts = replaced.view_parts.pop();
                debug_assert!(parts.is_some(), "a journal entry without its view's parts");
                if let (Some(view), Some(parts)) = (self.views.get_mut(&id), parts) {
                    view_parts::restore(view, parts);
                }
            }
            Undo::Views(views) => {
                (self.views, self.customer_views) = *views;
            }
            Undo::Message => self.pop_message(),
            Undo::Name => self.names.pop(),
            Undo::Channel => {
                self.channels.pop();
            }
            Undo::NewDelivery => self.pop_message_delivery(),
            Undo::Progress(key, progress) => {
                self.set_progress(key, progress);
            }
            Undo::Outbox(outbox) => self.put_outbox(*outbox),
            Undo::Request(key, old) => {
                swap_btree(&mut self.requests, key, old.map(|request| *request));
            }
            Undo::Requests(requests) => self.requests = requests,
        }
    }

    /// Raises the largest id of `table` to `id`; the previous one, if it grew.
    fn bump_id(&mut self, table: Table, id: i64) -> Option<Undo> {
        let max = &mut self.max_ids[table_index(table)];
        (id > *max).then(|| Undo::MaxId(table, std::mem::replace(max, id)))
    }

    fn put_menu(&mut self, id: MenuId, menu: Option<Menu>) -> Option<Menu> {
        if let Some(old) = self.menus.get(&id) {
            let (store, name) = (old.store_id, old.name.as_str());
            if let Some(m) = self.store_menus.get_mut(&store) {
                m.ids.remove(&id);
                index_remove(&mut m.by_name, name, &id);
                if m.ids.is_empty() {
                    self.store_menus.remove(&store);
                }
            }
        }
        if let Some(new) = &menu {
            let m = self.store_menus.entry(new.store_id).or_default();
            m.ids.insert(id);
            index_add(&mut m.by_name, new.name.as_str(), id);
        }
        swap_btree(&mut self.menus, id, menu)
    }

    fn put_rider(&mut self, id: RiderId, rider: Option<Rider>) -> Option<Rider> {
        let load = self.rider_load.get(&id).copied().unwrap_or(0);
        if let Some(old) = self.riders.get(&id) {
            index_remove(&mut self.rider_names, old.name.as_str(), &id);
            self.riders_by_load.remove(&(load, id));
        }
        if let Some(new) = &rider {
            index_add(&mut self.rider_names, new.name.as_str(), id);
            self.riders_by_load.insert((load, id));
        }
        swap_btree(&mut self.riders, id, rider)
    }

    /// Adds one to (`busy`) or takes one from a rider's count of active deliveries.
    fn change_load(&mut self, rider: RiderId, busy: bool) {
        let load = self.rider_load.entry(rider).or_insert(0);
        let old = *load;
        *load = if busy { old.saturating_add(1) } else { old.saturating_sub(1) };
        let new = *load;
        if new == 0 {
            self.rider_load.remove(&rider);
        }
        if self.riders.contains_key(&rider) {
            self.riders_by_load.remove(&(old, rider));
            self.riders_by_load.insert((new, rider));
        }
    }

    fn insert_order(&mut self, order: Order) {
        if order.status.in_store_inbox() {
            index_add(&mut self.inbox, &order.store_id, order.id);
        }
        self.orders.insert(order.id, order);
    }

    fn remove_order(&mut self, id: OrderId) {
        if let Some(old) = self.orders.remove(&id) {
            if old.status.in_store_inbox() {
                index_remove(&mut self.inbox, &old.store_id, &id);
            }
        }
    }

    /// Sets an order's status, review flag and time; the previous ones, or
    /// `None` when there is no such order.
    fn set_order_fields(
        &mut self,
        id: OrderId,
        status: OrderStatus,
        reviewed: bool,
        at: DateTime<Utc>,
    ) -> Option<(OrderStatus, bool, DateTime<Utc>)> {
        let order = self.orders.get_mut(&id)?;
        let old = (order.status, order.reviewed, order.updated_at);
        order.status = status;
        order.reviewed = reviewed;
        order.updated_at = at;
        match (old.0.in_store_inbox(), status.in_store_inbox()) {
            (true, false) => index_remove(&mut self.inbox, &order.store_id, &id),
            (false, true) => index_add(&mut self.inbox, &order.store_id, id),
            _ => {}
        }
        Some(old)
    }

    fn put_delivery(&mut self, order: OrderId, delivery: Option<Delivery>) -> Option<Delivery> {
        let was = self.deliveries.get(&order).and_then(Delivery::busy_rider);
        let will = delivery.as_ref().and_then(Delivery::busy_rider);
        if was != will {
            if let Some(r) = was {
                self.change_load(r, false);
            }
            if let Some(r) = will {
                self.change_load(r, true);
            }
        }
        self.deliveries.swap(order, delivery)
    }

    fn put_view(&mut self, order: OrderId, view: Option<OrderView>) -> Option<OrderView> {
        let old_customer = self.views.get(&order).map(|v| &*v.customer);
        let new_customer = view.as_ref().map(|v| &*v.customer);
        if old_customer != new_customer {
            if let Some(c) = old_customer {
                index_remove(&mut self.customer_views, c, &order);
            }
            if let Some(c) = new_customer {
                index_add(&mut self.customer_views, c, order);
            }
        }
        self.views.swap(order, view)
    }

    /// The place in `messages` of the message keyed `key`.
    fn message_at(&self, key: i64) -> Option<usize> {
        self.messages.place(key)
    }

    /// Queues a message unless one with its key is queued already; its
    /// place in `messages`, or `None` when it was there.
    fn push_message(&mut self, entry: QueuedEntry) -> Option<usize> {
        self.messages.push(entry)
    }

    fn pop_message(&mut self) {
        if let Some(entry) = self.messages.pop() {
            self.texts.truncate(entry.text);
        }
    }

    /// `message` as it is kept; also how many names it added to
    /// [`State::names`] (for the journal to take back). `suffix`, when the
    /// caller knows the id to be its event's, `:` and `suffix`: then
    /// `message.id` is not read.
    fn entry_of(&mut self, message: Message, suffix: Option<&str>) -> (QueuedEntry, usize) {
        let Message { id, key, order_id, event, status, recipient, text, at } = message;
        let (recipient, new) = self.names.intern(&recipient);
        let mut added = usize::from(new);
        let logged = self.event_of_message(key);
        let suffix = suffix.or_else(|| logged.as_ref()?.after_id(&id));
        let at_event = logged.as_ref().is_some_and(|e| e.at() == at);
        let id = match suffix {
            Some(suffix) if at_event => {
                let (suffix, new) = self.names.intern(suffix);
                added += usize::from(new);
                MessageIdForm::OfEvent(suffix)
            }
            // An id made from its event's, at another time: written out.
            Some(suffix) => {
                let made = logged.map(|e| e.with_id(|e| Message::id_of_text(e, suffix)));
                MessageIdForm::Own(Box::new((made.unwrap_or(id).into_boxed_str(), at)))
            }
            None => MessageIdForm::Own(Box::new((id.into_boxed_str(), at))),
        };
        let text = self.texts.push(&text);
        (QueuedEntry { key, order_id, event, status, recipient, id, text }, added)
    }

    /// `entry`, taken from an outbox whose names and texts were `old`'s,
    /// with its names numbered and its text kept in this one's.
    fn renamed(&mut self, entry: &QueuedEntry, old: &Outbox) -> QueuedEntry {
        let names = &old.names;
        let mut entry = entry.clone();
        entry.text = self.texts.push(old.texts.get(entry.text));
        entry.recipient = self.names.intern(names.get(entry.recipient)).0;
        if let MessageIdForm::OfEvent(suffix) = &mut entry.id {
            *suffix = self.names.intern(names.get(*suffix)).0;
        }
        entry
    }

    /// The event of the log that the message keyed `key` is about, if it is.
    fn event_of_message(&self, key: i64) -> Option<LoggedEvent<'_>> {
        let seq = key.checked_div(Message::RECIPIENTS)?;
        self.events.get(usize::try_from(seq.checked_sub(1)?).ok()?)
    }

    /// When the message an entry keeps was queued.
    fn at_of(&self, entry: &QueuedEntry) -> DateTime<Utc> {
        match &entry.id {
            MessageIdForm::Own(own) => own.1,
            MessageIdForm::OfEvent(_) => self.event_of_message(entry.key).map(|e| e.at()).unwrap_or_default(),
        }
    }

    /// The message an entry keeps.
    fn message_of(&self, entry: &QueuedEntry) -> Message {
        let id = match &entry.id {
            MessageIdForm::Own(own) => own.0.to_string(),
            MessageIdForm::OfEvent(suffix) => {
                // The log only grows: the event an entry was made from stays.
                let suffix = self.names.get(*suffix);
                let event = self.event_of_message(entry.key);
                debug_assert!(event.is_some(), "message {} lost the event its id is made from", entry.key);
                match event {
                    Some(event) => event.with_id(|event| Message::id_of_text(event, suffix)),
                    None => Message::id_of_text("", suffix),
                }
            }
        };
        Message {
            id,
            key: entry.key,
            order_id: entry.order_id,
            event: entry.event,
            status: entry.status,
            recipient: self.names.shared(entry.recipient),
            text: self.texts.get(entry.text).to_string(),
            at: self.at_of(entry),
        }
    }

    /// The key of a channel name, interned if new (and then `true`).
    fn channel_key(&mut self, name: &str) -> (usize, bool) {
        match self.channels.iter().position(|c| c == name) {
            Some(key) => (key, false),
            None => {
                self.channels.push(name.to_string());
                (self.channels.len() - 1, true)
            }
        }
    }

    /// Adds a delivery to (`add`) or removes it from the due or dead index.
    fn index_progress(&mut self, key: usize, state: DeliveryState, next_at: DateTime<Utc>, add: bool) {
        match (state, add) {
            (DeliveryState::Pending, true) => self.due.insert((next_at, key)),
            (DeliveryState::Pending, false) => self.due.remove(&(next_at, key)),
            (DeliveryState::Dead, true) => self.dead.insert(key),
            (DeliveryState::Dead, false) => self.dead.remove(&key),
            (DeliveryState::Delivered, _) => false,
        };
    }

    fn push_message_delivery(&mut self, message: usize, channel: usize, progress: Progress) {
        let key = self.message_deliveries.len();
        self.index_progress(key, progress.state, progress.next_at, true);
        self.delivery_keys.insert((message, channel), key);
        self.message_deliveries.push(Slot { message, channel, progress });
    }

    fn pop_message_delivery(&mut self) {
        let Some(slot) = self.message_deliveries.pop() else { return };
        let key = self.message_deliveries.len();
        self.index_progress(key, slot.progress.state, slot.progress.next_at, false);
        self.delivery_keys.remove(&(slot.message, slot.channel));
    }

    /// Takes the outbox out, leaving it empty.
    fn take_outbox(&mut self) -> Outbox {
        Outbox {
            messages: std::mem::take(&mut self.messages),
            names: std::mem::take(&mut self.names),
            texts: std::mem::take(&mut self.texts),
            message_deliveries: std::mem::take(&mut self.message_deliveries),
            delivery_keys: std::mem::take(&mut self.delivery_keys),
            due: std::mem::take(&mut self.due),
            dead: std::mem::take(&mut self.dead),
        }
    }

    /// Puts an outbox taken out back.
    fn put_outbox(&mut self, outbox: Outbox) {
        Outbox {
            messages: self.messages,
            names: self.names,
            texts: self.texts,
            message_deliveries: self.message_deliveries,
            delivery_keys: self.delivery_keys,
            due: self.due,
            dead: self.dead,
        } = outbox;
    }

    /// Replaces a delivery's progress; the previous one.
    fn set_progress(&mut self, key: usize, progress: Progress) -> Option<Progress> {
        let (state, next_at) = (progress.state, progress.next_at);
        let slot = self.message_deliveries.get_mut(key)?;
        let old = std::mem::replace(&mut slot.progress, progress);
        self.index_progress(key, old.state, old.next_at, false);
        self.index_progress(key, state, next_at, true);
        Some(old)
    }

    /// The message and its delivery of a delivery key.
    fn queued(&self, key: usize) -> Option<QueuedMessage> {
        let slot = self.message_deliveries.get(key)?;
        let message = self.message_of(self.messages.get(slot.message)?);
        let channel = self.channels.get(slot.channel)?;
        let p = &slot.progress;
        let delivery = MessageDelivery {
            message_id: message.id.clone(),
            message_key: message.key,
            channel: channel.clone(),
            state: p.state,
            tries: p.tries,
            next_at: p.next_at,
            last_error: p.last_error.clone(),
        };
        Some(QueuedMessage { message, delivery })
    }
}

/// The [`Repo`] of one transaction: the state, and the journal of a write
/// (`None` in a read, where writes are refused).
struct Tx<'a> {
    state: &'a mut State,
    journal: Option<&'a mut Journal>,
}

impl Tx<'_> {
    /// The state and the journal, or an error inside a read.
    fn writable(&mut self) -> Result<(&mut State, &mut Journal)> {
        match self.journal.as_deref_mut() {
            Some(journal) => Ok((&mut *self.state, journal)),
            None => Err(Error::storage("a read transaction cannot write")),
        }
    }

    /// Appends an event to the log with `push`; its sequence number.
    fn append_logged(&mut self, push: impl FnOnce(&mut Log) -> i64) -> Result<i64> {
        let (state, journal) = self.writable()?;
        let seq = push(&mut state.events);
        journal.push(Undo::Event);
        Ok(seq)
    }

    /// Queues `message` unless its key is queued already (see
    /// [`State::entry_of`] for `suffix`).
    fn queue_entry(&mut self, message: Message, suffix: Option<&str>, channels: &[&str]) -> Result<()> {
        let (state, journal) = self.writable()?;
        if state.message_at(message.key).is_some() {
            return Ok(()); // queued already: replays never send twice
        }
        let (at, message_key) = (message.at, message.key);
        let (entry, names) = state.entry_of(message, suffix);
        journal.undo.extend((0..names).map(|_| Undo::Name));
        let text = entry.text;
        let Some(key) = state.push_message(entry) else {
            debug_assert!(false, "message {message_key} was queued between two looks");
            state.texts.truncate(text);
            return Ok(());
        };
        journal.push(Undo::Message);
        for &name in channels {
            let channel = Tx::channel(state, journal, name);
            if state.delivery_keys.contains_key(&(key, channel)) {
                continue; // a channel named twice is queued once
            }
            let progress = Progress { state: DeliveryState::Pending, tries: 0, next_at: at, last_error: None };
            state.push_message_delivery(key, channel, progress);
            journal.push(Undo::NewDelivery);
        }
        Ok(())
    }

    /// Records that `table` has a record `id` (for `next_id`).
    fn bump(state: &mut State, journal: &mut Journal, table: Table, id: i64) {
        if let Some(undo) = state.bump_id(table, id) {
            journal.push(undo);
        }
    }

    /// Saves record `id` of a table that hands out ids: `put` stores it and
    /// returns the undo of what it replaced, which the journal keeps.
    fn save(&mut self, table: Table, id: i64, put: impl FnOnce(&mut State, &mut Replaced) -> Undo) -> Result<()> {
        let (state, journal) = self.writable()?;
        Tx::bump(state, journal, table, id);
        let undo = put(state, &mut journal.replaced);
        journal.push(undo);
        Ok(())
    }

    /// The key of a channel name, interning it if new.
    fn channel(state: &mut State, journal: &mut Journal, name: &str) -> usize {
        let (key, new) = state.channel_key(name);
        if new {
            journal.push(Undo::Channel);
        }
        key
    }
}

impl Repo for Tx<'_> {
    fn next_id(&mut self, table: Table) -> Result<i64> {
        // Ids come from here, so only a record saved directly with the
        // largest id can leave none after it.
        let max = self.state.max_ids[table_index(table)];
        max.checked_add(1).ok_or_else(|| Error::storage(format!("no id is left after {max} for {table:?}")))
    }

    fn lock_order(&mut self, _id: OrderId) -> Result<()> {
        // One unit of work at a time holds the whole storage.
        Ok(())
    }

    fn save_store(&mut self, store: &Store) -> Result<()> {
        let id = store.id;
        let kept = match self.state.stores.get(&id) {
            Some(old) => Store { review_count: old.review_count, review_sum: old.review_sum, ..store.clone() },
            None => store.clone(),
        };
        self.save(Table::Store, id, |state, _| Undo::Store(id, state.stores.insert(id, kept).map(Box::new)))
    }

    fn add_store_review(&mut self, id: StoreId, score: u8) -> Result<()> {
        let reviewed =
            self.state.stores.get(&id).ok_or_else(|| Error::not_found(crate::Record::Store, id))?.add_review(score);
        self.save(Table::Store, id, |state, _| Undo::Store(id, state.stores.insert(id, reviewed).map(Box::new)))
    }

    fn store(&mut self, id: StoreId) -> Result<Option<Store>> {
        Ok(self.state.stores.get(&id).cloned())
    }

    fn stores(&mut self) -> Result<Vec<Store>> {
        Ok(self.state.stores.values().cloned().collect())
    }

    fn save_menu(&mut self, menu: &Menu) -> Result<()> {
        let id = menu.id;
        let namesake = self.menu_by_name(menu.store_id, &menu.name)?;
        if namesake.is_some_and(|other| other.id != id) {
            return Err(Error::Invalid(crate::domain::validate::Invalid(crate::domain::validate::menu_taken(
                menu.store_id,
                &menu.name,
            ))));
        }
        self.save(Table::Menu, id, |state, _| Undo::Menu(id, state.put_menu(id, Some(menu.clone()))))
    }

    fn menu(&mut self, id: MenuId) -> Result<Option<Menu>> {
        Ok(self.state.menus.get(&id).cloned())
    }

    fn menu_by_name(&mut self, store: StoreId, name: &str) -> Result<Option<Menu>> {
        let state = &self.state;
        let id = state.store_menus.get(&store).and_then(|m| m.by_name.get(name)).and_then(|ids| ids.first());
        Ok(id.and_then(|id| state.menus.get(id)).cloned())
    }

    fn menus(&mut self, store: Option<StoreId>) -> Result<Vec<Menu>> {
        let state = &self.state;
        Ok(match store {
            None => state.menus.values().cloned().collect(),
            Some(store) => match state.store_menus.get(&store) {
                Some(m) => m.ids.iter().filter_map(|id| state.menus.get(id)).cloned().collect(),
                None => Vec::new(),
            },
        })
    }

    fn save_rider(&mut self, rider: &Rider) -> Result<()> {
        let id = rider.id;
        if self.rider_by_name(&rider.name)?.is_some_and(|other| other.id != id) {
            return Err(Error::Invalid(crate::domain::validate::Invalid(crate::domain::validate::rider_taken(
                &rider.name,
            ))));
        }
        self.save(Table::Rider, id, |state, _| Undo::Rider(id, state.put_rider(id, Some(rider.clone()))))
    }

    fn rider(&mut self, id: RiderId) -> Result<Option<Rider>> {
        Ok(self.state.riders.get(&id).cloned())
    }

    fn rider_by_name(&mut self, name: &str) -> Result<Option<Rider>> {
        let state = &self.state;
        let id = state.rider_names.get(name).and_then(|ids| ids.first());
        Ok(id.and_then(|id| state.riders.get(id)).cloned())
    }

    fn riders(&mut self) -> Result<Vec<Rider>> {
        Ok(self.state.riders.values().cloned().collect())
    }

    fn least_busy_rider(&mut self) -> Result<Option<Rider>> {
        let state = &self.state;
        Ok(state.riders_by_load.first().and_then(|(_, id)| state.riders.get(id)).cloned())
    }

    fn insert_order(&mut self, order: &Order) -> Result<()> {
        let (state, journal) = self.writable()?;
        if state.orders.contains_key(&order.id) {
            return Err(Error::storage(format!("order {} is already stored", order.id)));
        }
        Tx::bump(state, journal, Table::Order, order.id);
        state.insert_order(order.clone());
        journal.push(Undo::OrderInserted(order.id));
        Ok(())
    }

    fn update_order(&mut self, order: &Order) -> Result<()> {
        let (state, journal) = self.writable()?;
        match state.set_order_fields(order.id, order.status, order.reviewed, order.updated_at) {
            Some((status, reviewed, at)) => {
                journal.push(Undo::OrderFields(order.id, status, reviewed, at));
                Ok(())
            }
            None => Err(Error::storage(format!("order {} cannot be updated: it is not stored", order.id))),
        }
    }

    fn order(&mut self, id: OrderId) -> Result<Option<Order>> {
        Ok(self.state.orders.get(&id).cloned())
    }

    fn store_inbox(&mut self, store: StoreId) -> Result<Vec<OrderId>> {
        Ok(self.state.inbox.get(&store).map(|ids| ids.iter().copied().collect()).unwrap_or_default())
    }

    /// Counted by looking at every order: no index for a metrics scrape
    /// now and then.
    fn order_counts(&mut self) -> Result<Vec<(OrderStatus, u64)>> {
        let mut counts: Vec<(OrderStatus, u64)> = OrderStatus::ALL.iter().map(|&s| (s, 0)).collect();
        for order in self.state.orders.values() {
            if let Some(entry) = counts.iter_mut().find(|(s, _)| *s == order.status) {
                entry.1 += 1;
            }
        }
        Ok(counts)
    }

    fn save_payment(&mut self, payment: &Payment) -> Result<()> {
        let id = payment.id;
        self.save(Table::Payment, id, |state, replaced| {
            let old = state.payments.put(id, Some(payment.clone()));
            Undo::Payment(id, stash(&mut replaced.payments, old))
        })
    }

    fn payment(&mut self, id: PaymentId) -> Result<Option<Payment>> {
        Ok(self.state.payments.get(id).cloned())
    }

    fn latest_payment(&mut self, order: OrderId) -> Result<Option<Payment>> {
        Ok(self.state.payments.of_order(order).next_back().cloned())
    }

    fn save_ticket(&mut self, ticket: &KitchenTicket) -> Result<()> {
        let (state, journal) = self.writable()?;
        let found = state.orders.get(&ticket.order_id).is_some_and(|o| o.store_id == ticket.store_id);
        super::saved_on_order(found, "kitchen ticket", ticket.order_id, Some(ticket.store_id))?;
        let old = state.tickets.insert(ticket.order_id, ticket.clone());
        journal.push(Undo::Ticket(ticket.order_id, old));
        Ok(())
    }

    fn ticket(&mut self, order: OrderId) -> Result<Option<KitchenTicket>> {
        Ok(self.state.tickets.get(&order).cloned())
    }

    fn save_delivery(&mut self, delivery: &Delivery) -> Result<()> {
        let (state, journal) = self.writable()?;
        super::saved_on_order(state.orders.contains_key(&delivery.order_id), "delivery", delivery.order_id, None)?;
        let old = state.put_delivery(delivery.order_id, Some(delivery.clone()));
        journal.push(Undo::Delivery(delivery.order_id, old));
        Ok(())
    }

    fn delivery(&mut self, order: OrderId) -> Result<Option<Delivery>> {
        Ok(self.state.deliveries.get(&order).cloned())
    }

    fn save_charge(&mut self, charge: &Charge) -> Result<()> {
        let id = charge.id;
        self.save(Table::Charge, id, |state, replaced| {
            let old = state.charges.put(id, Some(charge.clone()));
            Undo::Charge(id, stash(&mut replaced.charges, old))
        })
    }

    fn charges(&mut self, order: OrderId) -> Result<Vec<Charge>> {
        Ok(self.state.charges.copies_of_order(order))
    }

    fn save_review(&mut self, review: &Review) -> Result<()> {
        let (state, journal) = self.writable()?;
        let old = state.reviews.insert(review.order_id, review.clone());
        journal.push(Undo::Review(review.order_id, old.map(Box::new)));
        Ok(())
    }

    fn payments_awaiting(&mut self, now: DateTime<Utc>, gateway: &str, limit: usize) -> Result<Vec<Payment>> {
        Ok(self.state.payments.awaiting(now, gateway, limit))
    }

    fn charges_awaiting(&mut self, now: DateTime<Utc>, gateway: &str, limit: usize) -> Result<Vec<Charge>> {
        Ok(self.state.charges.awaiting(now, gateway, limit))
    }

    fn payments_needing_attention(&mut self, limit: usize) -> Result<Vec<Payment>> {
        Ok(self.state.payments.needing_attention(limit))
    }

    fn charges_needing_attention(&mut self, limit: usize) -> Result<Vec<Charge>> {
        Ok(self.state.charges.needing_attention(limit))
    }

    fn queue_status(&mut self, now: DateTime<Utc>, payment_gateway: &str, charge_gateway: &str) -> Result<QueueStatus> {
        let state = &self.state;
        let payments = state.payments.waiting_for(now, payment_gateway);
        let charges = state.charges.waiting_for(now, charge_gateway);
        let messages = state.due.first().map(|&(next_at, _)| next_at);
        Ok(super::calls::queue_status(payments, charges, Some((state.due.len(), messages))))
    }

    fn waiting_channels(&mut self) -> Result<Vec<String>> {
        let state = &self.state;
        let keys: BTreeSet<usize> =
            state.due.iter().filter_map(|&(_, key)| Some(state.message_deliveries.get(key)?.channel)).collect();
        let mut names: Vec<String> = keys.into_iter().filter_map(|key| state.channels.get(key).cloned()).collect();
        names.sort();
        Ok(names)
    }

    fn append_event(&mut self, id: &str, at: DateTime<Utc>, event: &Event) -> Result<i64> {
        self.append_logged(|log| log.push_text(id, at, event))
    }

    fn append_event_uuid(&mut self, id: Uuid, at: DateTime<Utc>, event: &Event) -> Result<i64> {
        self.append_logged(|log| log.push_uuid(id, at, event))
    }

    fn events(&mut self, after: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        // seq = index + 1, so the first event with seq > after is at index `after`.
        let start = usize::try_from(after.max(0)).unwrap_or(usize::MAX);
        let events = (start..self.state.events.len()).take(limit);
        // Numbered from the index, which is in range: `after + 1` is not.
        events.filter_map(|index| Some(self.state.events.get(index)?.stored(index as i64 + 1))).collect()
    }

    fn events_numbered(&mut self, seqs: &[i64], after: i64) -> Result<Vec<StoredEvent>> {
        let event = |seq: i64| usize::try_from(seq - 1).ok().and_then(|i| self.state.events.get(i));
        seqs.iter().filter(|&&seq| seq > after).filter_map(|&seq| Some(event(seq)?.stored(seq))).collect()
    }

    fn breaker(&mut self, name: &crate::domain::BreakerName) -> Result<Option<Breaker>> {
        Ok(self.state.breakers.get(name.as_str()).cloned())
    }

    fn breakers(&mut self) -> Result<Vec<Breaker>> {
        Ok(self.state.breakers.values().cloned().collect())
    }

    fn save_breaker(&mut self, breaker: &Breaker) -> Result<()> {
        let (state, journal) = self.writable()?;
        let old = state.breakers.insert(String::from(breaker.name.as_str()), breaker.clone());
        journal.push(Undo::Breaker(String::from(breaker.name.as_str()), old.map(Box::new)));
        Ok(())
    }

    fn checkpoint(&mut self, projector: &str) -> Result<i64> {
        Ok(self.state.checkpoints.iter().find(|(name, _)| name == projector).map_or(0, |c| c.1))
    }

    fn set_checkpoint(&mut self, projector: &str, seq: i64) -> Result<()> {
        let (state, journal) = self.writable()?;
        match state.checkpoints.iter().position(|(name, _)| name == projector) {
            Some(index) => {
                let old = std::mem::replace(&mut state.checkpoints[index].1, seq);
                journal.push(Undo::Checkpoint(index, old));
            }
            None => {
                state.checkpoints.push((projector.to_string(), seq));
                journal.push(Undo::NewCheckpoint);
            }
        }
        Ok(())
    }

    fn view(&mut self, order: OrderId) -> Result<Option<OrderView>> {
        Ok(self.state.views.get(&order).map(|view| copy_view(view, 4)))
    }

    fn save_view(&mut self, view: &OrderView) -> Result<()> {
        let (state, journal) = self.writable()?;
        // The view as stored with events applied: no copy, and no index to
        // change (its customer is the same).
        if let Some(parts) = state.views.get_mut(&view.order_id).and_then(|stored| view_parts::update(stored, view)) {
            journal.replaced.view_parts.push(parts);
            journal.push(Undo::ViewParts(view.order_id));
            return Ok(());
        }
        let room = LIFECYCLE_EVENTS.saturating_sub(view.timeline.len());
        let old = state.put_view(view.order_id, Some(copy_view(view, room)));
        let was = stash(&mut journal.replaced.views, old);
        journal.push(Undo::View(view.order_id, was));
        Ok(())
    }

    fn customer_views(&mut self, customer: &str) -> Result<Vec<OrderView>> {
        let state = &self.state;
        Ok(match state.customer_views.get(customer) {
            Some(ids) => ids.iter().filter_map(|id| state.views.get(id)).cloned().collect(),
            None => Vec::new(),
        })
    }

    fn clear_views(&mut self) -> Result<()> {
        let (state, journal) = self.writable()?;
        let views = std::mem::take(&mut state.views);
        let index = std::mem::take(&mut state.customer_views);
        journal.push(Undo::Views(Box::new((views, index))));
        Ok(())
    }

    fn queue_message(&mut self, message: &Message, channels: &[&str]) -> Result<()> {
        let (state, _) = self.writable()?;
        if state.message_at(message.key).is_some() {
            return Ok(());
        }
        self.queue_owned_message(message.clone(), channels)
    }

    fn queue_owned_message(&mut self, message: Message, channels: &[&str]) -> Result<()> {
        self.queue_entry(message, None, channels)
    }

    fn queue_event_message(
        &mut self,
        event_id: Uuid,
        audience: &str,
        mut message: Message,
        channels: &[&str],
    ) -> Result<()> {
        let (state, _) = self.writable()?;
        // Its id is made again from its event's when it is read, which
        // needs the event its key names to be that one.
        if state.event_of_message(message.key).is_some_and(|e| e.has_uuid(event_id)) {
            return self.queue_entry(message, Some(audience), channels);
        }
        message.id = Message::id_of(event_id, audience);
        self.queue_entry(message, None, channels)
    }

    fn due_messages_except(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        channels: &[&str],
    ) -> Result<Vec<QueuedMessage>> {
        let state = &self.state;
        let Some(last) = limit.checked_sub(1) else { return Ok(Vec::new()) };
        // When each wanted delivery's message was queued, by delivery key.
        let queued_at = |key: usize| {
            let slot = state.message_deliveries.get(key)?;
            let channel = state.channels.get(slot.channel)?;
            (!channels.contains(&channel.as_str())).then_some(())?;
            Some((state.at_of(state.messages.get(slot.message)?), key))
        };
        let mut due: Vec<(DateTime<Utc>, usize)> =
            state.due.range(..=(now, usize::MAX)).filter_map(|&(_, key)| queued_at(key)).collect();
        // The due set is in retry order, not in the order asked for: the
        // `limit` oldest are found by time alone before any is made into a
        // message, so that a relay working through a long backlog batch by
        // batch does not build every due message for every batch.
        if last < due.len() {
            let (_, &mut (cut, _), _) = due.select_nth_unstable(last);
            // Those queued at the same time as the last kept go by id,
            // which only the messages themselves know.
            due.retain(|&(at, _)| at <= cut);
        }
        Ok(oldest_message_first(due.into_iter().filter_map(|(_, key)| state.queued(key)).collect(), limit))
    }

    fn dead_messages(&mut self, limit: usize) -> Result<Vec<QueuedMessage>> {
        let state = &self.state;
        Ok(oldest_message_first(state.dead.iter().filter_map(|&key| state.queued(key)).collect(), limit))
    }

    fn purge_delivered_messages(&mut self, before: DateTime<Utc>) -> Result<usize> {
        let (state, journal) = self.writable()?;
        let old = state.take_outbox();
        // Keys shift when messages go: the outbox is built again from what stays.
        let mut keep: Vec<bool> = old.messages.iter().map(|e| state.at_of(e) >= before).collect();
        for slot in &old.message_deliveries {
            if slot.progress.state != DeliveryState::Delivered {
                keep[slot.message] = true;
            }
        }
        let purged = keep.iter().filter(|k| !**k).count();
        if purged == 0 {
            state.put_outbox(old);
            return Ok(0);
        }
        let mut moved = vec![None; old.messages.len()];
        for (key, entry) in old.messages.iter().enumerate().filter(|(key, _)| keep[*key]) {
            let entry = state.renamed(entry, &old);
            moved[key] = state.push_message(entry);
        }
        for slot in &old.message_deliveries {
            if let Some(message) = moved[slot.message] {
                state.push_message_delivery(message, slot.channel, slot.progress.clone());
            }
        }
        journal.push(Undo::Outbox(Box::new(old)));
        Ok(purged)
    }

    fn claim_request(&mut self, scope: &str, key: &str, fingerprint: &str, at: DateTime<Utc>) -> Result<RequestClaim> {
        let (state, journal) = self.writable()?;
        let id = (scope.to_string(), key.to_string());
        if let Some(stored) = state.requests.get(&id) {
            return Ok(RequestClaim::of_stored(
                &stored.fingerprint,
                stored.claimed_at,
                stored.response.clone(),
                fingerprint,
            ));
        }
        let claimed = StoredRequest { fingerprint: fingerprint.to_string(), claimed_at: at, response: None };
        state.requests.insert(id.clone(), claimed);
        journal.push(Undo::Request(id, None));
        Ok(RequestClaim::New)
    }

    fn finish_request(&mut self, scope: &str, key: &str, response: &StoredResponse) -> Result<bool> {
        let (state, journal) = self.writable()?;
        let id = (scope.to_string(), key.to_string());
        let Some(stored) = state.requests.get_mut(&id) else { return Ok(false) };
        let old = stored.response.replace(response.clone());
        let before = StoredRequest { response: old, ..stored.clone() };
        journal.push(Undo::Request(id, Some(Box::new(before))));
        Ok(true)
    }

    fn forget_request(&mut self, scope: &str, key: &str) -> Result<bool> {
        let (state, journal) = self.writable()?;
        let id = (scope.to_string(), key.to_string());
        let Some(old) = state.requests.remove(&id) else { return Ok(false) };
        journal.push(Undo::Request(id, Some(Box::new(old))));
        Ok(true)
    }

    fn purge_requests(&mut self, before: DateTime<Utc>) -> Result<usize> {
        let (state, journal) = self.writable()?;
        if !state.requests.values().any(|r| r.claimed_at < before) {
            return Ok(0);
        }
        let old = state.requests.clone();
        state.requests.retain(|_, r| r.claimed_at >= before);
        let purged = old.len() - state.requests.len();
        journal.push(Undo::Requests(old));
        Ok(purged)
    }

    fn save_message_delivery(&mut self, delivery: &MessageDelivery) -> Result<()> {
        let (state, journal) = self.writable()?;
        let Some(message) = state.message_at(delivery.message_key) else {
            return Err(Error::storage(format!(
                "the delivery of message {} cannot be saved: the message was never queued",
                delivery.message_id
            )));
        };
        let channel = Tx::channel(state, journal, &delivery.channel);
        let progress = Progress::of(delivery);
        match state.delivery_keys.get(&(message, channel)) {
            Some(&key) => {
                if let Some(old) = state.set_progress(key, progress) {
                    journal.push(Undo::Progress(key, old));
                }
            }
            None => {
                state.push_message_delivery(message, channel, progress);
                journal.push(Undo::NewDelivery);
            }
        }
        Ok(())
    }
}

/// The storage contract's order: oldest message first (then id, then
/// channel), so a retried message still reaches its recipient before newer
/// ones about the same order.
fn oldest_message_first(mut queued: Vec<QueuedMessage>, limit: usize) -> Vec<QueuedMessage> {
    queued.sort_by(|a, b| {
        (a.message.at, &a.message.id, &a.delivery.channel).cmp(&(b.message.at, &b.message.id, &b.delivery.channel))
    });
    queued.truncate(limit);
    queued
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::*;
    use crate::adapters::contract_tests::{message_key, through};
    use crate::domain::view::OrderView;
    use crate::domain::{ChargeStatus, DeliveryStatus, KitchenStatus, OrderItem, PaymentStatus};

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    /// Runs `f` in a write and returns its value.
    fn write<T>(s: &mut MemoryStorage, f: impl FnMut(&mut dyn Repo) -> Result<T>) -> Result<T> {
        through(|w| s.write(w), f)
    }

    /// Runs `f` in a read and returns its value.
    fn read<T>(s: &mut MemoryStorage, f: impl FnMut(&mut dyn Repo) -> Result<T>) -> T {
        through(|w| s.read(w), f).unwrap()
    }

    fn store(id: StoreId, name: &str) -> Store {
        Store::register(id, name, None, None).unwrap().0
    }

    fn menu(id: MenuId, store: StoreId, name: &str) -> Menu {
        Menu::add(id, store, name, 1_000 * id).unwrap().0
    }

    fn rider(id: RiderId, name: &str) -> Rider {
        Rider { id, name: name.into() }
    }

    fn order(id: OrderId, store: StoreId, status: OrderStatus) -> Order {
        Order {
            id,
            store_id: store,
            customer: "kim".into(),
            address: "seoul".into(),
            items: vec![OrderItem { menu_id: 1, name: "후라이드".into(), unit_price: 18_000, qty: 2 }].into(),
            total: 36_000,
            status,
            reviewed: false,
            created_at: t(0),
            updated_at: t(0),
        }
    }

    fn payment(id: PaymentId, order: OrderId, status: PaymentStatus, next_at: Option<DateTime<Utc>>) -> Payment {
        let mut p = Payment::request(id, order, 36_000, None, format!("k{id}"), t(0));
        p.status = status;
        p.attempt.next_at = next_at;
        p
    }

    fn charge(id: ChargeId, order: OrderId, status: ChargeStatus, next_at: Option<DateTime<Utc>>) -> Charge {
        let mut c = Charge::request(id, order, 1, 3_000, format!("c{id}"), t(0));
        c.status = status;
        c.attempt.next_at = next_at;
        c
    }

    fn delivery(order: OrderId, rider: Option<RiderId>, status: DeliveryStatus) -> Delivery {
        Delivery { order_id: order, rider_id: rider, charge: 3_000, status, updated_at: t(0) }
    }

    fn placed(order: OrderId) -> Event {
        Event::OrderPlaced(Box::new(crate::domain::Placed {
            order_id: order,
            store_id: 1,
            store: "BBQ".into(),
            customer: "kim".into(),
            address: "seoul".into(),
            items: vec![].into(),
            total: 0,
        }))
    }

    fn view(order: OrderId, customer: &str) -> OrderView {
        let mut v = OrderView::start(order, t(0), &placed(order)).unwrap();
        v.customer = customer.into();
        v
    }

    fn message(id: &str, at: DateTime<Utc>) -> Message {
        Message {
            id: id.into(),
            key: message_key(id),
            order_id: 1,
            event: "PaymentApproved".parse().expect("an event type"),
            status: "paid".parse().expect("a status"),
            recipient: "kim".into(),
            text: format!("message {id}"),
            at,
        }
    }

    /// The table of names keeps only the names of messages that stay.
    #[test]
    fn a_purge_forgets_the_names_only_purged_messages_had() {
        let mut s = MemoryStorage::new();
        let gone = Message { recipient: "choi".into(), ..message("gone", t(0)) };
        let stays = Message { recipient: "lee".into(), ..message("stays", t(0)) };
        write(&mut s, |r| {
            r.queue_message(&gone, &["console"])?;
            r.queue_message(&stays, &["console"])
        })
        .unwrap();
        write(&mut s, |r| r.save_message_delivery(&md("gone", "console", DeliveryState::Delivered, t(0)))).unwrap();
        assert_eq!(write(&mut s, |r| r.purge_delivered_messages(t(10))).unwrap(), 1);
        let names = &mut s.parts().state.names;
        assert_eq!(names.intern("lee"), (0, false), "the name of the message that stays, renumbered");
        assert!(names.intern("choi").1, "the purged message's name is gone");
        let due = read(&mut s, |r| r.due_messages(t(10), 10));
        assert_eq!(due.iter().map(|q| q.message.recipient.as_str()).collect::<Vec<_>>(), ["lee"]);
    }

    fn md(id: &str, channel: &str, state: DeliveryState, next_at: DateTime<Utc>) -> MessageDelivery {
        MessageDelivery {
            message_id: id.into(),
            message_key: message_key(id),
            channel: channel.into(),
            state,
            tries: 1,
            next_at,
            last_error: None,
        }
    }

    /// A storage with one of everything, for the rollback tests.
    fn populated() -> MemoryStorage {
        let mut s = MemoryStorage::new();
        write(&mut s, |r| {
            r.save_store(&store(1, "BBQ"))?;
            r.save_menu(&menu(1, 1, "후라이드"))?;
            r.save_rider(&rider(1, "lee"))?;
            r.save_rider(&rider(2, "park"))?;
            r.insert_order(&order(1, 1, OrderStatus::Paid))?;
            r.save_payment(&payment(1, 1, PaymentStatus::Pending, None))?;
            r.save_ticket(&KitchenTicket::receive(1, 1, t(0)))?;
            r.save_delivery(&delivery(1, Some(1), DeliveryStatus::Preparing))?;
            r.save_charge(&charge(1, 1, ChargeStatus::Pending, None))?;
            r.append_event("e1", t(0), &placed(1))?;
            r.append_event("e2", t(0), &Event::StoreOpened { store_id: 1 })?;
            r.set_checkpoint("mypage", 2)?;
            r.save_view(&view(1, "kim"))?;
            r.queue_message(&message("m1", t(0)), &["console", "jsonl"])?;
            r.claim_request("s", "k1", "fp", t(0))?;
            r.claim_request("s", "k2", "fp", t(5))?;
            Ok(())
        })
        .unwrap();
        s
    }

    /// Every kind of write: inserts, overwrites that move index entries,
    /// ids, events, checkpoints, views (cleared and saved again), messages.
    fn write_everything(r: &mut dyn Repo) -> Result<()> {
        r.save_store(&Store { open: false, ..store(1, "BBQ") })?;
        r.save_store(&store(9, "교촌"))?;
        r.save_menu(&menu(1, 9, "양념"))?; // renamed and moved to another store
        r.save_menu(&menu(7, 1, "간장"))?;
        r.save_rider(&rider(2, "choi"))?; // renamed
        r.save_rider(&rider(8, "jung"))?;
        r.update_order(&Order { reviewed: true, updated_at: t(5), ..order(1, 1, OrderStatus::Delivered) })?;
        r.insert_order(&order(6, 1, OrderStatus::Cooking))?;
        r.save_payment(&Payment { status: PaymentStatus::Approved, ..payment(1, 1, PaymentStatus::Pending, None) })?;
        // Replaced twice in one write: undone newest first, back to the first.
        r.save_payment(&payment(1, 1, PaymentStatus::Approved, Some(t(8))))?;
        r.save_payment(&payment(5, 6, PaymentStatus::RefundPending, None))?;
        r.save_ticket(&KitchenTicket { status: KitchenStatus::Cooked, ..KitchenTicket::receive(1, 1, t(0)) })?;
        r.save_ticket(&KitchenTicket::receive(6, 1, t(0)))?;
        r.save_delivery(&delivery(1, Some(2), DeliveryStatus::Delivering))?; // moves the load
        r.save_delivery(&delivery(6, Some(8), DeliveryStatus::Preparing))?;
        r.save_charge(&Charge { status: ChargeStatus::Paid, ..charge(1, 1, ChargeStatus::Pending, None) })?;
        r.save_charge(&charge(1, 1, ChargeStatus::Paid, Some(t(8))))?;
        r.save_charge(&charge(4, 6, ChargeStatus::Pending, Some(t(9))))?;
        r.save_review(&Review {
            order_id: 1,
            store_id: 1,
            customer: "kim".into(),
            score: 5,
            text: "good".into(),
            created_at: t(5),
        })?;
        r.append_event("e3", t(5), &Event::CookingStarted { order_id: 6 })?;
        r.append_event("e4", t(5), &Event::StoreClosed { store_id: 1 })?;
        r.set_checkpoint("mypage", 4)?;
        r.set_checkpoint("other", 1)?;
        // A view saved with events applied is updated in place; twice here.
        let mut one = r.view(1)?.expect("order 1's view");
        one.apply(10, t(6), &Event::PaymentApproved { order_id: 1, payment_id: 1, amount: 18_000, card: None });
        r.save_view(&one)?;
        one.apply(11, t(7), &Event::CookingStarted { order_id: 1 });
        r.save_view(&one)?;
        assert_eq!(r.view(1)?.as_ref(), Some(&one), "updated in place as saved");
        r.clear_views()?;
        r.save_view(&view(1, "lee"))?;
        r.save_view(&view(6, "kim"))?;
        // In place after a whole view, then a whole view over that.
        let mut six = view(6, "kim");
        six.apply(12, t(8), &Event::CookingStarted { order_id: 6 });
        r.save_view(&six)?;
        r.save_view(&view(6, "park"))?;
        r.queue_message(&message("m2", t(5)), &["console"])?;
        r.queue_message(&message("m1", t(5)), &["console", "webhook"])?; // already queued: nothing
        r.save_message_delivery(&md("m1", "console", DeliveryState::Delivered, t(0)))?;
        r.save_message_delivery(&md("m1", "jsonl", DeliveryState::Dead, t(3)))?;
        r.save_message_delivery(&md("m2", "kakao", DeliveryState::Pending, t(6)))?;
        Ok(())
    }

    #[test]
    fn a_failed_write_undoes_every_change() {
        let mut s = populated();
        let before = s.parts().state.clone();
        let ids_before: Vec<i64> = read(&mut s, |r| {
            [Table::Store, Table::Menu, Table::Rider, Table::Order, Table::Payment, Table::Charge]
                .iter()
                .map(|&t| r.next_id(t))
                .collect()
        });
        let err = s
            .write(&mut |r| {
                write_everything(r)?;
                // The writes are visible inside the transaction.
                assert_eq!(r.next_id(Table::Store)?, 10);
                assert_eq!(r.events(0, 10)?.len(), 4);
                assert_eq!(r.least_busy_rider()?.unwrap().id, 1);
                Err(Error::Internal("boom".into()))
            })
            .unwrap_err();
        assert!(matches!(err, Error::Internal(m) if m == "boom"));
        assert_eq!(s.parts().state, before);
        assert!(s.parts().journal.undo.is_empty());
        // And through the Repo: ids, events, indexes.
        let ids_after: Vec<i64> = read(&mut s, |r| {
            [Table::Store, Table::Menu, Table::Rider, Table::Order, Table::Payment, Table::Charge]
                .iter()
                .map(|&t| r.next_id(t))
                .collect()
        });
        assert_eq!(ids_after, ids_before);
        assert_eq!(ids_after, vec![2, 2, 3, 2, 2, 2]);
        read(&mut s, |r| {
            assert_eq!(r.events(0, 10)?.len(), 2);
            assert_eq!(r.events_numbered(&[3, 4], 0)?, vec![], "the rolled-back events");
            assert_eq!(r.store(9)?, None);
            assert!(r.store(1)?.unwrap().open);
            assert_eq!(r.menu_by_name(1, "후라이드")?.unwrap().id, 1);
            assert_eq!(r.menu_by_name(9, "양념")?, None);
            assert_eq!(r.rider_by_name("park")?.unwrap().id, 2);
            assert_eq!(r.rider_by_name("choi")?, None);
            assert_eq!(r.least_busy_rider()?.unwrap().id, 2);
            assert_eq!(r.store_inbox(1)?, vec![1]);
            assert_eq!(r.order(1)?.unwrap().status, OrderStatus::Paid);
            assert_eq!(r.order(6)?, None);
            assert_eq!(r.payments_awaiting(t(100), "sandbox", 10)?.len(), 1);
            assert_eq!(r.charges_awaiting(t(100), "sandbox", 10)?.len(), 1);
            assert_eq!(r.checkpoint("mypage")?, 2);
            assert_eq!(r.checkpoint("other")?, 0);
            assert_eq!(r.customer_views("kim")?.len(), 1);
            assert_eq!(r.customer_views("lee")?, vec![]);
            assert_eq!(r.due_messages(t(100), 10)?.len(), 2);
            assert_eq!(r.dead_messages(10)?, vec![]);
            Ok(())
        });
        // The same writes commit when the work succeeds, and ids go on from there.
        s.write(&mut write_everything).unwrap();
        assert_ne!(s.parts().state, before);
        read(&mut s, |r| {
            assert_eq!(r.next_id(Table::Store)?, 10);
            assert_eq!(r.next_id(Table::Order)?, 7);
            assert_eq!(r.events(0, 10)?.len(), 4);
            assert_eq!(r.least_busy_rider()?.unwrap().id, 1);
            assert_eq!(r.store_inbox(1)?, vec![6]);
            assert_eq!(r.customer_views("park")?.len(), 1);
            assert_eq!(r.dead_messages(10)?.len(), 1);
            Ok(())
        });
    }

    #[test]
    fn each_kind_of_write_rolls_back_alone() {
        type Work = fn(&mut dyn Repo) -> Result<()>;
        let writes: Vec<(&str, Work)> = vec![
            ("save_store", |r| r.save_store(&store(5, "x"))),
            ("save_menu", |r| r.save_menu(&menu(1, 1, "renamed"))),
            ("save_rider", |r| r.save_rider(&rider(3, "kim"))),
            ("insert_order", |r| r.insert_order(&order(2, 1, OrderStatus::Paid))),
            ("update_order", |r| r.update_order(&order(1, 1, OrderStatus::Cancelled))),
            ("save_payment", |r| r.save_payment(&payment(2, 1, PaymentStatus::Pending, None))),
            ("save_ticket", |r| r.save_ticket(&KitchenTicket::receive(1, 1, t(1)))),
            ("save_delivery", |r| r.save_delivery(&delivery(1, Some(1), DeliveryStatus::Delivered))),
            ("save_charge", |r| r.save_charge(&charge(1, 1, ChargeStatus::Paid, None))),
            ("save_review", |r| {
                r.save_review(&Review {
                    order_id: 1,
                    store_id: 1,
                    customer: "kim".into(),
                    score: 3,
                    text: String::new(),
                    created_at: t(1),
                })
            }),
            ("append_event", |r| r.append_event("e9", t(1), &Event::FoodCooked { order_id: 1 }).map(drop)),
            ("append_event_uuid", |r| {
                r.append_event_uuid(uuid::Uuid::from_u128(9), t(1), &Event::FoodCooked { order_id: 1 }).map(drop)
            }),
            ("set_checkpoint", |r| r.set_checkpoint("mypage", 9)),
            ("save_view", |r| r.save_view(&view(1, "lee"))),
            ("save_view in place", |r| {
                let mut v = r.view(1)?.expect("order 1's view");
                v.apply(10, t(1), &Event::CookingStarted { order_id: 1 });
                r.save_view(&v)?;
                v.apply(11, t(2), &Event::FoodCooked { order_id: 1 });
                r.save_view(&v)
            }),
            ("clear_views", |r| r.clear_views()),
            ("queue_message", |r| r.queue_message(&message("m9", t(1)), &["console"])),
            ("queue_event_message", |r| {
                r.queue_event_message(uuid::Uuid::from_u128(9), "owner", message("m10", t(1)), &["console"])
            }),
            ("save_message_delivery", |r| r.save_message_delivery(&md("m1", "console", DeliveryState::Dead, t(1)))),
            ("claim_request", |r| r.claim_request("s", "k9", "fp", t(1)).map(drop)),
            ("finish_request", |r| {
                r.finish_request("s", "k1", &StoredResponse { status: 200, body: "ok".into() }).map(drop)
            }),
            ("forget_request", |r| r.forget_request("s", "k2").map(drop)),
            ("purge_requests", |r| r.purge_requests(t(1)).map(drop)),
        ];
        for (name, work) in writes {
            let mut s = populated();
            let before = s.parts().state.clone();
            let result = s.write(&mut |r| {
                work(r)?;
                Err(Error::Internal(name.into()))
            });
            assert!(result.is_err(), "{name}");
            assert_eq!(s.parts().state, before, "{name} was not undone");
            s.write(&mut |r| work(r)).unwrap();
            assert_ne!(s.parts().state, before, "{name} changed nothing");
        }
    }

    #[test]
    fn a_panicking_write_is_undone_too() {
        let mut s = populated();
        let before = s.parts().state.clone();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _ = s.write(&mut |r| {
                write_everything(r)?;
                panic!("work panicked");
            });
        }));
        assert!(caught.is_err());
        assert_eq!(s.parts().state, before);
        assert!(s.parts().journal.undo.is_empty());
    }

    #[test]
    fn an_error_from_the_repo_rolls_back_what_came_before() {
        let mut s = populated();
        let before = s.parts().state.clone();
        let err = s
            .write(&mut |r| {
                r.save_store(&store(2, "new"))?;
                r.append_event("e", t(1), &Event::StoreOpened { store_id: 2 })?;
                r.insert_order(&order(1, 1, OrderStatus::Paid)) // already there
            })
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Internal);
        assert_eq!(s.parts().state, before);
    }

    /// An order's payments come back by id, whatever order they were put
    /// in, moved between orders or removed: as a set of (order, id) pairs
    /// would give them.
    #[test]
    fn calls_of_an_order_agree_with_a_set_of_pairs() {
        let mut calls: Calls<Payment> = Calls::default();
        let mut model: BTreeSet<(OrderId, PaymentId)> = BTreeSet::new();
        // A fixed walk, as in `dense_map`'s own test, from the generator's
        // high bits (its low ones repeat every few steps). Orders 1 to 12
        // have slots; order 1,000 is too far past them and goes aside.
        let (mut x, mut aside): (i64, bool) = (11, false);
        for step in 0..5_000 {
            x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
            let r = x >> 8;
            let order = match (r / 90) % 13 {
                12 => 1_000,
                o => o + 1,
            };
            let id = r % 90 + 1;
            let old = model.iter().find(|(_, i)| *i == id).copied();
            if let Some(old) = old {
                model.remove(&old);
            }
            let record = ((r >> 12) % 4 != 0).then(|| payment(id, order, PaymentStatus::Pending, None));
            if record.is_some() {
                model.insert((order, id));
            }
            let replaced = calls.put(id, record).map(|p| (p.order_id, p.id));
            assert_eq!(replaced, old, "step {step}: put {id} on order {order}");
            for order in (1..=12).chain([1_000]) {
                let ids: Vec<PaymentId> = calls.of_order(order).map(|p| p.id).collect();
                let want: Vec<PaymentId> = model.range((order, 0)..=(order, i64::MAX)).map(|(_, i)| *i).collect();
                assert_eq!(ids, want, "step {step}: order {order}");
            }
            let orders: BTreeSet<OrderId> = model.iter().map(|(order, _)| *order).collect();
            assert_eq!(calls.by_order.len(), orders.len(), "step {step}: no order is left with no ids");
            aside |= calls.by_order.is_aside(1_000);
        }
        assert!(aside, "order 1,000's ids were kept aside, not in a slot");
        assert!(!model.is_empty() && model.len() < 90, "the walk both puts and removes");
    }

    #[test]
    fn the_riders_load_index_follows_every_move() {
        // The contract's moves, then the index behind `least_busy_rider`
        // holds exactly each rider's count of active deliveries.
        let mut s = MemoryStorage::new();
        crate::adapters::contract_tests::least_busy_rider(&mut s);
        assert_eq!(s.parts().state.riders_by_load.iter().copied().collect::<Vec<_>>(), [(0, 1), (0, 2), (1, 3)]);
    }

    #[test]
    fn no_id_after_the_largest_is_an_error_not_a_wrapped_id() {
        let mut s = MemoryStorage::new();
        write(&mut s, |r| r.save_rider(&Rider::register(i64::MAX, "kim").expect("a rider").0)).unwrap();
        let next = write(&mut s, |r| r.next_id(Table::Rider));
        assert!(matches!(next, Err(Error::Storage(_))), "{next:?}");
        assert_eq!(write(&mut s, |r| r.next_id(Table::Store)).unwrap(), 1, "other tables go on");
    }

    #[test]
    fn a_delivery_of_a_message_never_queued_is_refused() {
        let mut s = MemoryStorage::new();
        let err = write(&mut s, |r| r.save_message_delivery(&md("nope", "console", DeliveryState::Pending, t(0))));
        assert!(matches!(err, Err(Error::Storage(_))));
        assert_eq!(read(&mut s, |r| r.due_messages(t(0), 10)), vec![]);
    }

    #[test]
    fn a_channel_named_twice_is_queued_once() {
        let mut s = MemoryStorage::new();
        write(&mut s, |r| r.queue_message(&message("m1", t(0)), &["console", "console", "jsonl"])).unwrap();
        let channels: Vec<String> =
            read(&mut s, |r| r.due_messages(t(0), 10)).into_iter().map(|q| q.delivery.channel).collect();
        assert_eq!(channels, ["console", "jsonl"]);
        // A message queued on no channel is still recorded, so a replay adds none.
        write(&mut s, |r| {
            r.queue_message(&message("m2", t(0)), &[])?;
            r.queue_message(&message("m2", t(0)), &["console"])
        })
        .unwrap();
        assert_eq!(read(&mut s, |r| r.due_messages(t(0), 10)).len(), 2);
    }

    /// A message about an event keeps neither its id nor its time when
    /// they are its event's, and comes back the same either way.
    #[test]
    fn a_message_comes_back_as_queued_whether_or_not_its_id_and_time_are_its_events() {
        let mut s = MemoryStorage::new();
        let event = uuid::Uuid::from_u128(0x0192_f0c4_7b1a_7abc_8def_0123_4567_89ab);
        let seq = write(&mut s, |r| r.append_event_uuid(event, t(5), &placed(1))).unwrap();
        let about = |audience: &str, at: DateTime<Utc>| Message {
            id: String::new(),
            key: Message::key_of(seq, if audience == "customer" { 0 } else { 1 }),
            ..message("", at)
        };
        let own_time =
            Message { id: Message::id_of_text("e-2", "customer"), key: 2 * Message::RECIPIENTS, ..about("", t(9)) };
        write(&mut s, |r| {
            r.queue_event_message(event, "customer", about("customer", t(5)), &["console"])?;
            r.queue_event_message(event, "owner", about("owner", t(7)), &["console"])?;
            r.queue_message(&own_time, &["console"])
        })
        .unwrap();
        let forms: Vec<bool> =
            s.parts().state.messages.iter().map(|e| matches!(e.id, MessageIdForm::OfEvent(_))).collect();
        assert_eq!(forms, [true, false, false], "only the one at its event's time keeps neither");
        let due = read(&mut s, |r| r.due_messages(t(10), 10));
        let got: Vec<(String, DateTime<Utc>)> = due.into_iter().map(|q| (q.message.id, q.message.at)).collect();
        let id = |audience: &str| Message::id_of(event, audience);
        assert_eq!(got, [(id("customer"), t(5)), (id("owner"), t(7)), (own_time.id.clone(), t(9))]);
        for (audience, place) in [("customer", 0), ("owner", 1)] {
            let delivered = MessageDelivery {
                message_key: Message::key_of(seq, place),
                ..md(&id(audience), "console", DeliveryState::Delivered, t(0))
            };
            write(&mut s, |r| r.save_message_delivery(&delivered)).unwrap();
        }
        assert_eq!(write(&mut s, |r| r.purge_delivered_messages(t(6))).unwrap(), 1, "queued at 5, its event's time");
        assert_eq!(write(&mut s, |r| r.purge_delivered_messages(t(8))).unwrap(), 1, "queued at 7, its own");
    }

    /// A rolled-back event takes its messages with it; a message queued
    /// later under the same key, about the event that took its number,
    /// keeps the id and time it was given.
    #[test]
    fn a_message_names_the_event_its_number_has_now_not_a_rolled_back_one() {
        let mut s = MemoryStorage::new();
        let (gone, kept) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let key = Message::key_of(1, 0);
        let about_gone = Message { id: Message::id_of(gone, "customer"), key, ..message("", t(5)) };
        let failed: Result<()> = s.write(&mut |r| {
            let seq = r.append_event_uuid(gone, t(5), &placed(1))?;
            assert_eq!(seq, 1);
            r.queue_event_message(gone, "customer", Message { id: String::new(), ..about_gone.clone() }, &["console"])?;
            Err(Error::Internal("rolled back".into()))
        });
        assert!(failed.is_err());
        write(&mut s, |r| {
            assert_eq!(r.append_event_uuid(kept, t(6), &placed(1))?, 1, "the number is given again");
            r.queue_message(&about_gone, &["console"])
        })
        .unwrap();
        let due = read(&mut s, |r| r.due_messages(t(10), 10));
        let got: Vec<(String, DateTime<Utc>)> = due.into_iter().map(|q| (q.message.id, q.message.at)).collect();
        assert_eq!(got, [(about_gone.id.clone(), t(5))]);
    }

    #[test]
    fn debug_shows_sizes_not_contents() {
        let s = populated();
        let shown = format!("{s:?}");
        assert!(shown.starts_with("MemoryStorage { stores: 1, menus: 1, riders: 2, orders: 1"), "{shown}");
        assert_eq!(format!("{:?}", MemoryStorage::default()), format!("{:?}", MemoryStorage::new()));
    }
}

#[cfg(test)]
mod contract {
    #[test]
    fn memory_storage_passes_the_storage_contract() {
        crate::adapters::contract_tests::run_all(&|| Box::new(super::MemoryStorage::new()));
    }
}
