//! Checkpoints of the WAL on a thread of their own
//! ([`SqliteStorage::checkpoint_in_background`](super::SqliteStorage::checkpoint_in_background)).
//!
//! A checkpoint copies the WAL's pages back into the database file and
//! syncs both files. SQLite runs it in the connection whose commit filled
//! the WAL past `wal_autocheckpoint`, so that commit's caller waits for
//! both syncs, and every other unit of work of the storage waits behind
//! it: at `synchronous=normal` about half a lifecycle's wall time
//! (BENCHMARKS.md, "Checkpoints off the writer's thread").
//!
//! Here the writer's connection reports how many pages its WAL holds after
//! each commit (a WAL hook, which replaces SQLite's automatic checkpoint),
//! and a worker thread with a connection of its own is woken each time
//! another step of pages ([`CHECKPOINT_BYTES`](super::CHECKPOINT_BYTES) of them) was written. It runs
//! `PASSIVE` checkpoints, which never block the writer: commits go on
//! while it copies.
//!
//! SQLite starts the WAL over from its first frame only when a write
//! transaction begins on a WAL whose every frame has been copied, and
//! commits made while the worker copied are not: a checkpoint of 10,000
//! pages takes about as long as 7,000 more take to commit. So the worker
//! passes again while its last pass found at least a [`TAIL`]th of a step
//! new. SQLite syncs the database file only at a pass during which nothing
//! was committed, which under load is never the worker's; so the worker
//! syncs the file itself after its last pass. Then the writer copies what
//! is left, if the worker is not in another pass: a few hundred frames,
//! and a sync of what they changed; the WAL starts over at the next write.
//!
//! At `synchronous=normal` a writer can commit faster than the disk takes
//! checkpoints, and the worker then falls behind for good. So once the WAL
//! holds [`BACKSTOP`] steps the writer holds the worker off, waits for its
//! pass under way and checkpoints the rest itself, as SQLite would have:
//! under a sustained load that is the steady state, a unit of work waiting
//! for such a checkpoint every four steps instead of every step, and the
//! `-wal` file grows to about four steps (160 MB; more only if another
//! process keeps reading an old snapshot, as with SQLite's own). Should
//! the worker die, the writer checkpoints at each step as SQLite would.

use std::cell::Cell;
use std::ffi::c_int;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use crate::{Error, Result};

/// How many steps the WAL may grow to before the writer checkpoints
/// itself, the worker being behind.
const BACKSTOP: u32 = 4;

/// The worker passes again while its last pass copied at least
/// `1 / TAIL` of a step in new frames (else the writer copies them).
const TAIL: u32 = 16;

thread_local! {
    /// Pages in the WAL after this thread's last commit (0: none since taken).
    static WAL_PAGES: Cell<u32> = const { Cell::new(0) };
}

/// The WAL hook: SQLite calls it on the committing thread right after each
/// commit, with the number of frames in the WAL.
fn record_wal_pages(_wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(u32::try_from(pages).unwrap_or(0));
    Ok(())
}

/// What the worker and the writer share.
#[derive(Debug, Default)]
struct Signal {
    /// The writer asks for a checkpoint.
    wanted: bool,
    /// The storage is being dropped.
    stop: bool,
    /// The worker is in a checkpoint.
    busy: bool,
    /// The writer checkpoints: the worker starts none meanwhile.
    hold: bool,
    /// Checkpoints the worker has run (so the writer knows to finish one).
    runs: u64,
}

#[derive(Debug, Default)]
struct Shared {
    signal: Mutex<Signal>,
    /// Signalled when `wanted`, `stop` or `busy` changes.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Signal> {
        self.signal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, signal: MutexGuard<'a, Signal>) -> MutexGuard<'a, Signal> {
        self.changed.wait(signal).unwrap_or_else(PoisonError::into_inner)
    }

    /// Checkpoints on `writer` with the worker held off, after the
    /// worker's pass under way if `wait` (else not at all while there is
    /// one): SQLite runs one checkpoint at a time and fails the other.
    /// Whether every frame of the WAL is now in the file.
    fn hold_off(&self, wait: bool, writer: &Connection) -> bool {
        let mut signal = self.lock();
        if signal.busy && !wait {
            return false;
        }
        // Held before waiting: the worker starts no other pass meanwhile.
        signal.hold = true;
        while signal.busy {
            signal = self.wait(signal);
        }
        drop(signal);
        let done = checkpoint(writer, "the writer").is_some_and(|p| p.copied == p.log);
        self.lock().hold = false;
        done
    }
}

/// The writer's side: when to wake the worker, and the worker itself
/// (stopped and joined when dropped).
#[derive(Debug)]
pub(super) struct Checkpoints {
    /// Pages written between two wake-ups of the worker.
    every: u32,
    /// The WAL's pages at which the worker is woken next.
    next: u32,
    /// The WAL's pages after the last commit (fewer now: it started over).
    last: u32,
    /// The worker's runs the writer has finished.
    finished: u64,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Checkpoints {
    /// Takes the checkpoints of `writer`'s WAL off its thread: installs the
    /// WAL hook (which turns SQLite's automatic checkpoint off) and starts
    /// a worker on a connection of its own to the same file, with the same
    /// `synchronous`, woken every `every` pages.
    pub(super) fn start(writer: &Connection, path: &str, every: u32) -> Result<Checkpoints> {
        let synchronous: i64 = writer.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        let conn = super::connection::open_file(std::path::Path::new(path), super::connection::read_write())?;
        conn.pragma_update(None, "synchronous", synchronous)?;
        let shared = Arc::new(Shared::default());
        // The worker syncs the database file itself after its passes:
        // SQLite syncs it only at a pass during which nothing was committed,
        // which under load is the writer's.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::storage_caused(format!("cannot open {path} for the checkpoint thread: {e}"), e))?;
        let every = every.max(1);
        let worker = std::thread::Builder::new()
            .name("ezdelivery-checkpoints".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || work(&conn, &file, &shared, (every / TAIL).max(1))
            })
            .map_err(|e| Error::storage_caused(format!("cannot start the checkpoint thread: {e}"), e))?;
        writer.wal_hook(Some(record_wal_pages));
        tracing::debug!(db = path, "the WAL is checkpointed on a thread of its own");
        Ok(Checkpoints { every, next: every, last: 0, finished: 0, shared, worker: Some(worker) })
    }

    /// After a commit of `writer` on this thread: finishes the worker's
    /// last run, wakes the worker when another step of pages was written,
    /// or checkpoints here when the WAL reached the backstop (waiting for
    /// the worker's checkpoint under way) or the worker is gone. A
    /// checkpoint that fails here is only logged, as SQLite ignores its
    /// automatic one's failure: the commit is done, the next one tries again.
    pub(super) fn after_commit(&mut self, writer: &Connection) {
        let pages = WAL_PAGES.replace(0);
        if pages == 0 {
            return; // nothing was written to the WAL
        }
        let started_over = pages < self.last;
        if started_over {
            self.next = self.every;
        }
        self.last = pages;
        let runs = self.shared.lock().runs;
        let alive = self.worker.as_ref().is_some_and(|w| !w.is_finished());
        let done = if runs != self.finished {
            // What was committed during the worker's last pass, so that the
            // WAL starts over at the next write; nothing to do if it just
            // did. Not while the worker is in another pass: the backstop
            // is there.
            self.finished = runs;
            !started_over && self.shared.hold_off(false, writer)
        } else if pages >= self.next {
            self.next = pages.saturating_add(self.every);
            if !alive {
                checkpoint(writer, "the writer").is_some_and(|p| p.copied == p.log)
            } else if pages >= self.every.saturating_mul(BACKSTOP) {
                self.shared.hold_off(true, writer)
            } else {
                self.shared.lock().wanted = true;
                self.shared.changed.notify_all();
                false
            }
        } else {
            false
        };
        if done {
            // The WAL starts over at the next write, however large it is.
            (self.last, self.next) = (0, self.every);
        }
    }
}

#[cfg(test)]
impl Checkpoints {
    /// Checkpoints the worker has run.
    pub(super) fn runs(&self) -> u64 {
        self.shared.lock().runs
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(worker) = self.worker.take() {
            // A panic in the worker was reported when it happened.
            let _ = worker.join();
        }
    }
}

/// The worker: each time the writer asks, checkpoints until a pass copies
/// fewer than `tail` new frames or the writer holds it off, then syncs the
/// database `file`; until stopped.
fn work(conn: &Connection, file: &File, shared: &Shared, tail: u32) {
    loop {
        {
            let mut signal = shared.lock();
            while !signal.wanted && !signal.stop {
                signal = shared.wait(signal);
            }
            if signal.stop {
                return;
            }
            signal.wanted = false;
        }
        let mut copied: Option<u32> = None;
        loop {
            let now = {
                let Some(_pass) = Pass::start(shared) else { break };
                checkpoint(conn, "the checkpoint thread")
            };
            match (now, copied) {
                // Fewer than before: the WAL started over meanwhile.
                (Some(now), Some(before)) if now.copied < before.saturating_add(tail) => break,
                (Some(now), _) => copied = Some(now.copied),
                (None, _) => break,
            }
        }
        if copied.is_some() {
            if let Err(e) = file.sync_data() {
                tracing::warn!(error = %e, "the checkpoint thread could not sync the database file");
            }
            shared.lock().runs += 1;
        }
    }
}

/// The worker's pass under way: `busy` while it lives, cleared (and the
/// writer told) when it ends, even by a panic.
struct Pass<'a>(&'a Shared);

impl<'a> Pass<'a> {
    /// `None` when the writer holds the worker off or the storage stops.
    fn start(shared: &'a Shared) -> Option<Pass<'a>> {
        let mut signal = shared.lock();
        if signal.hold || signal.stop {
            return None;
        }
        signal.busy = true;
        Some(Pass(shared))
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.lock().busy = false;
        self.0.changed.notify_all();
    }
}

/// How far a checkpoint got: frames in the WAL, and of them in the file.
#[derive(Debug, Clone, Copy)]
struct Progress {
    log: u32,
    copied: u32,
}

/// A `PASSIVE` checkpoint on `conn`: copies what it can without waiting
/// for any lock. `None` when another checkpoint was under way, or on a
/// failure (a full disk, say), which is logged; the WAL keeps every
/// commit meanwhile.
fn checkpoint(conn: &Connection, who: &str) -> Option<Progress> {
    let row = conn.prepare_cached("PRAGMA wal_checkpoint(PASSIVE)").and_then(|mut statement| {
        statement.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
    });
    match row {
        // (1 when another checkpoint held the lock, frames in the WAL, copied)
        Ok((0, log, copied)) => {
            Some(Progress { log: u32::try_from(log).unwrap_or(0), copied: u32::try_from(copied).unwrap_or(0) })
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "a checkpoint of the WAL by {who} failed; the next one tries again");
            None
        }
    }
}
