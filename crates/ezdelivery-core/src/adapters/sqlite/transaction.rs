//! A transaction begun and ended by prepared statements kept in the
//! connection's cache ([`Transaction`]).

use rusqlite::{Connection, TransactionBehavior};

/// A transaction on a connection, rolled back if dropped before
/// [`Transaction::commit`] (an error, a panic).
///
/// rusqlite's own `Transaction` runs `BEGIN` and `COMMIT` through
/// `execute_batch`, which prepares them anew each time: two statements
/// compiled for every unit of work, fourteen a lifecycle (BENCHMARKS.md,
/// "Rows a command reads again"). These are prepared once per connection,
/// and behave as rusqlite's do: the same `BEGIN`, a rollback when dropped
/// unfinished, a failed commit rolled back.
pub(super) struct Transaction<'c> {
    conn: &'c Connection,
}

impl<'c> Transaction<'c> {
    /// Begins a transaction of `behavior` on `conn`.
    pub(super) fn begin(conn: &'c Connection, behavior: TransactionBehavior) -> rusqlite::Result<Transaction<'c>> {
        let begin = match behavior {
            TransactionBehavior::Immediate => "BEGIN IMMEDIATE",
            TransactionBehavior::Exclusive => "BEGIN EXCLUSIVE",
            _ => "BEGIN DEFERRED",
        };
        conn.prepare_cached(begin)?.execute([])?;
        Ok(Transaction { conn })
    }

    /// Commits it. Should that fail, it is rolled back when dropped.
    pub(super) fn commit(self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // Not committed (or the commit failed): nothing of it is kept. The
        // rollback is tried twice (as the storage's error path did with
        // rusqlite's); should both fail, the transaction stays open and the
        // next unit of work's BEGIN fails with SQLite's error until the
        // connection closes, which rolls it back.
        for _ in 0..2 {
            if self.conn.is_autocommit() {
                break;
            }
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
