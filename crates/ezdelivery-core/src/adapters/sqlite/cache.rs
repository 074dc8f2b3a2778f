//! What a connection read or wrote lately ([`RowCache`]), kept between its
//! transactions.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, SubsecRound, Utc};
use rusqlite::Connection;

use crate::domain::view::OrderView;
use crate::domain::{
    Breaker, BreakerName, Charge, Delivery, KitchenTicket, Menu, Order, OrderId, Rider, RiderId, Store, StoreId,
};
use crate::Result;

/// An order's row as the database holds it: the order with its items, and
/// the kitchen ticket and delivery kept in the same row (schema 12).
#[derive(Debug, Clone)]
pub(crate) struct OrderRow {
    pub(crate) order: Order,
    pub(crate) ticket: Option<KitchenTicket>,
    pub(crate) delivery: Option<Delivery>,
    /// Whether its `in_inbox` flag is what its status makes it
    /// (`OrderStatus::in_store_inbox`): so it is as the adapter writes it,
    /// and a write sets the flag only when it changes. A row changed by
    /// hand may hold another, which its next write sets again.
    pub(crate) inbox_holds: bool,
    /// Whether `delivery_rider_id` and `rider_busy` are what its delivery
    /// makes them (`rows::rider_columns`), likewise.
    pub(crate) rider_holds: bool,
}

/// Rows this connection read or wrote lately, decoded, so that a command
/// neither decodes again the view it wrote a moment before nor reads again
/// a row it read or wrote: a lifecycle's commands touch the same order, its
/// charges, its store and the gateways' breakers one after the other.
///
/// - Views are kept as written.
/// - Order rows are kept as read and as written (only the columns a write
///   sets change), and so are an order's charges (a charge saved that its
///   order's cached list does not hold empties every list: it may be new,
///   or another order's).
/// - Stores, menus, riders and breakers are kept as read (a breaker also
///   when there is none); a write of one of a kind empties that kind.
///
/// All is valid while no other connection has committed: `PRAGMA
/// data_version`, read at the start of every transaction, says when one
/// has, and the cache is emptied; so it is when this connection changed
/// rows outside the adapter's transactions (through
/// [`SqliteStorage::connection`]), which its count of changes tells. A
/// rolled-back write empties it too.
///
/// [`SqliteStorage::connection`]: super::SqliteStorage::connection
#[derive(Debug, Default)]
pub(crate) struct RowCache {
    /// `PRAGMA data_version` when the cache was last known valid.
    data_version: Option<i64>,
    /// The connection's count of changed rows after the last transaction
    /// (set by the storage after each one).
    pub(super) changes: u64,
    pub(crate) views: Kept<OrderId, OrderView>,
    pub(crate) orders: Kept<OrderId, OrderRow>,
    pub(crate) charges: Kept<OrderId, Vec<Charge>>,
    pub(crate) stores: Kept<StoreId, Store>,
    pub(crate) menus: Kept<(StoreId, String), Menu>,
    pub(crate) riders: Kept<RiderId, Rider>,
    pub(crate) breakers: Kept<BreakerName, Option<Breaker>>,
}

/// Records of one kind by key: at most [`Kept::CAPACITY`], then it starts
/// over.
#[derive(Debug)]
pub(crate) struct Kept<K, V>(HashMap<K, V>);

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Kept(HashMap::new())
    }
}

impl<K: Eq + Hash, V> Kept<K, V> {
    /// Most records kept of one kind.
    const CAPACITY: usize = 4_096;

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.0.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.0.get_mut(key)
    }

    pub(crate) fn put(&mut self, key: K, value: V) {
        if self.0.len() >= Self::CAPACITY {
            self.0.clear();
        }
        self.0.insert(key, value);
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

/// `t` as the database gives it back: times are stored to the microsecond
/// (`rows::time_text`).
pub(crate) fn as_stored(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// `c` as the database gives it back ([`as_stored`] times).
pub(crate) fn charge_as_stored(c: &Charge) -> Charge {
    let mut c = c.clone();
    c.created_at = as_stored(c.created_at);
    c.updated_at = as_stored(c.updated_at);
    c.attempt.next_at = c.attempt.next_at.map(as_stored);
    if let Some(claim) = &mut c.attempt.claim {
        claim.until = as_stored(claim.until);
    }
    c
}

impl RowCache {
    pub(crate) fn clear(&mut self) {
        let RowCache { data_version: _, changes: _, views, orders, charges, stores, menus, riders, breakers } = self;
        views.clear();
        orders.clear();
        charges.clear();
        stores.clear();
        menus.clear();
        riders.clear();
        breakers.clear();
    }

    /// Empties the cache if another connection committed since it was
    /// filled, or this one changed rows behind the adapter's back. Whether
    /// another connection committed (or this is the first look).
    pub(super) fn check(&mut self, conn: &Connection) -> Result<bool> {
        let version: i64 = conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        let others = self.data_version != Some(version);
        if others || self.changes != conn.total_changes() {
            self.clear();
            self.data_version = Some(version);
        }
        Ok(others)
    }
}
