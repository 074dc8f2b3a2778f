//! What every connection of the adapter is set to: how long it waits for
//! a lock, how many statements it keeps prepared, how often it checkpoints
//! the WAL, how much of the file it reads through a memory map.

use std::time::Duration;

/// How long a writer waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many prepared statements each connection keeps (more than the
/// adapter has, so the hot paths never prepare twice).
pub(super) const STATEMENT_CACHE: usize = 128;

/// Bytes written to the WAL between two checkpoints
/// (`wal_autocheckpoint`, or the worker's step of
/// [`SqliteStorage::checkpoint_in_background`](super::SqliteStorage::checkpoint_in_background)),
/// whatever the file's page size: 40,960,000, the 10,000 pages of SQLite's
/// default 4 KiB, 20,000 of a new file's [`PAGE_SIZE`] (SQLite's own step
/// is 1,000 pages). Each checkpoint syncs both files, so a step counted in
/// pages would sync twice as often per byte written in a file of half-size
/// pages ([`checkpoint_pages`] converts).
pub const CHECKPOINT_BYTES: u32 = 40_960_000;

/// The step of earlier versions, 10,000 pages whatever their size (the
/// [`CHECKPOINT_BYTES`] of a file of 4 KiB pages).
#[deprecated(since = "0.2.0", note = "the step is CHECKPOINT_BYTES now: use checkpoint_pages(page_size)")]
pub const CHECKPOINT_PAGES: u32 = 10_000;

/// The pages of [`CHECKPOINT_BYTES`] in a file of `page_size`-byte pages
/// (SQLite's pages are 512 to 65,536 bytes).
///
/// ```
/// use ezdelivery_core::adapters::sqlite::{checkpoint_pages, PAGE_SIZE};
/// assert_eq!(checkpoint_pages(4096), 10_000);
/// assert_eq!(checkpoint_pages(PAGE_SIZE), 20_000);
/// ```
pub fn checkpoint_pages(page_size: u32) -> u32 {
    CHECKPOINT_BYTES / page_size.clamp(512, 65_536)
}

/// The size in bytes of the pages of a database file the adapter creates:
/// 2 KiB, half of SQLite's default. A file keeps the page size it was
/// created with (files of earlier versions keep 4 KiB; `db copy` to a new
/// file gives it this one).
///
/// The WAL takes a whole page for every page a transaction changes, and a
/// unit of work changes a few hundred bytes in each of about ten b-trees
/// (the order, its records, the log, the view, the outbox and their
/// indexes): with half-size pages it writes about half the bytes to the
/// WAL, and spends less time writing them (BENCHMARKS.md, "Smaller
/// pages"). Smaller still, 1 KiB, would split a view (about 1.2 KB with
/// its timeline) over an overflow page, and a message over two.
pub const PAGE_SIZE: u32 = 2048;

/// How many bytes of the database file each connection may read through
/// a memory map: 64 GiB on 64-bit targets, more than a database that
/// outgrows it would be kept in one file. SQLite caps it at the
/// `SQLITE_MAX_MMAP_SIZE` it was built with (2 GiB by default on Linux,
/// macOS and Windows) and reads the rest of the file with `pread`. On a
/// 32-bit target SQLite keeps only the low 31 bits of the size, which
/// would turn 64 GiB into 0, so there it is SQLite's own default.
pub const MMAP_SIZE: i64 = if cfg!(target_pointer_width = "64") { 64 << 30 } else { 0x7fff_0000 };

/// The flags of a connection that reads and writes, creating the file if
/// need be (rusqlite's `Connection::open`'s, but `SQLITE_OPEN_URI`).
pub(super) fn read_write() -> rusqlite::OpenFlags {
    use rusqlite::OpenFlags;
    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Opens the database file at `path` with `flags`, as the file of that
/// name whatever the name looks like. SQLite reads a name that begins
/// with `file:` as a URI whatever the flags say (rusqlite's bundled build
/// turns URIs on for every connection): `file:x.db?mode=memory` was a
/// database in memory, and every write the command acknowledged was gone
/// when it ended. `./` in front makes such a name a plain one again.
pub(super) fn open_file(path: &std::path::Path, flags: rusqlite::OpenFlags) -> rusqlite::Result<rusqlite::Connection> {
    if path.as_os_str().as_encoded_bytes().starts_with(b"file:") {
        rusqlite::Connection::open_with_flags(std::path::Path::new(".").join(path), flags)
    } else {
        rusqlite::Connection::open_with_flags(path, flags)
    }
}
