//! The views a connection wrote lately ([`ViewCache`]), kept between its
//! transactions.

use rusqlite::Connection;

use crate::domain::view::OrderView;
use crate::domain::OrderId;
use crate::Result;

/// The views this connection wrote lately, decoded, so that a command does
/// not decode again the JSON it wrote a moment before. Valid
/// while no other connection has committed: `PRAGMA data_version`, read at
/// the start of every transaction, says when one has, and the cache is
/// emptied; so it is when this connection changed rows outside the
/// adapter's transactions (through [`SqliteStorage::connection`]), which
/// its count of changes tells. A rolled-back write empties it too.
#[derive(Debug, Default)]
pub(crate) struct ViewCache {
    /// `PRAGMA data_version` when the cache was last known valid.
    data_version: Option<i64>,
    /// The connection's count of changed rows after the last transaction
    /// (set by the storage after each one).
    pub(super) changes: u64,
    views: std::collections::HashMap<OrderId, OrderView>,
}

impl ViewCache {
    /// Most views a cache holds before it starts over.
    const CAPACITY: usize = 4_096;

    pub(crate) fn get(&self, order: OrderId) -> Option<OrderView> {
        self.views.get(&order).cloned()
    }

    pub(crate) fn put(&mut self, view: OrderView) {
        if self.views.len() >= Self::CAPACITY {
            self.views.clear();
        }
        self.views.insert(view.order_id, view);
    }

    pub(crate) fn clear(&mut self) {
        self.views.clear();
    }

    /// Empties the cache if another connection committed since it was
    /// filled, or this one changed rows behind the adapter's back.
    pub(super) fn check(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        if self.data_version != Some(version) || self.changes != conn.total_changes() {
            self.views.clear();
            self.data_version = Some(version);
        }
        Ok(())
    }
}
