//! What every connection of the adapter is set to: how long it waits for
//! a lock, how many statements it keeps prepared, how much of the file it
//! reads through a memory map.

use std::time::Duration;

/// How long a writer waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many prepared statements each connection keeps (more than the
/// adapter has, so the hot paths never prepare twice).
pub(super) const STATEMENT_CACHE: usize = 128;

/// How much of the database file each connection reads through a memory
/// map: 64 GiB, more than a database that outgrows it would be kept in
/// one file. SQLite caps it at the `SQLITE_MAX_MMAP_SIZE` it was built
/// with (2 GiB by default) and reads the rest of the file with `pread`.
pub(super) const MMAP_SIZE: &str = "PRAGMA mmap_size = 68719476736";
