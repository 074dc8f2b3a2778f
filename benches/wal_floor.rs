//! What a lifecycle writes to SQLite's WAL, beside the least any program
//! recording the same state changes durably must write (issue 12, "Write
//! less per order").
//!
//! Two programs, side by side in one run, at `synchronous=normal` and
//! `=full`:
//!
//! - **the floor**: a fixed minimal design in raw rusqlite: tables `orders`,
//!   `events`, `views` (one row per order) and `outbox`, primary keys only;
//!   one lifecycle is seven `BEGIN IMMEDIATE` transactions, one per state
//!   change as the engine commits them (placed, paid, cooking started with
//!   the delivery prepared, charge paid, cooked, departed, delivered), each
//!   writing its order row, its event(s), its view row and an outbox row
//!   (none for the charge, as the engine queues no message for it);
//! - **the engine**: `common::lifecycle` on a file opened with the
//!   library's defaults (as `benches/lifecycle.rs` does);
//! - **the engine with checkpoints in the background**
//!   (`SqliteStorage::checkpoint_in_background`, as `serve` and `simulate`
//!   run it): the same writes, the WAL copied into the file by a thread of
//!   its own instead of by the commit that fills it. It runs after the
//!   other two's rounds, all its lifecycles on one storage opened and
//!   dropped inside the timing, so that its worker's last checkpoint (and
//!   the one SQLite runs when the last connection closes) is counted in
//!   its time rather than run during another program's round; it shares
//!   no round with the floor, so compare its ratio over several runs. The
//!   floor keeps SQLite's automatic checkpoint: it is the fixed design the
//!   issue names.
//!
//! All use the engine's PRAGMAs (WAL, `synchronous`, `cache_size`,
//! `wal_autocheckpoint`, `mmap_size`). The engine creates its files with
//! its own page size (`PAGE_SIZE`, 2 KiB); the floor keeps SQLite's
//! default of 4 KiB, as the issue's fixed design does, unless
//! `WAL_FLOOR_PAGE_SIZE` gives it another (`=2048`: the floor with the
//! engine's pages, to see what the page size alone is worth). It prints
//! lifecycles/s and the ratio engine/floor, the first two run in
//! alternating rounds so that they share the machine's noise; then **WAL
//! frames per lifecycle by table and index**:
//! after the timed rounds, the WAL is emptied (`wal_checkpoint(TRUNCATE)`),
//! [`COUNTED`] more lifecycles run (few enough that no automatic
//! checkpoint starts over the WAL), and the `-wal` file is read while the
//! program's connection is still open (closing the last one would
//! checkpoint and delete it). Each frame is a 24-byte header, whose first
//! four bytes are the page number (big-endian), and a page; pages are
//! named by the `dbstat` virtual table (compiled into the bundled SQLite),
//! which lists every page of every b-tree. Bytes per lifecycle are frames
//! × (the program's page size + 24).
//!
//! `cargo bench --bench wal_floor` (`WAL_FLOOR_N=500` for a quicker run).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
use ezdelivery_core::Engine;
use rusqlite::{params, Connection};

use common::{engine, lifecycle, picks, pragmas};

/// Lifecycles whose frames are counted: about 50 frames each, so well
/// under the 10,000 pages at which the floor's connection checkpoints (the
/// engine's, 20,000: `checkpoint_pages`).
const COUNTED: usize = 40;
/// Rounds the timed lifecycles are split into, alternating the programs.
const ROUNDS: usize = 4;

const FLOOR_SCHEMA: &str = "
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, status TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE events (seq INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, type TEXT NOT NULL, at TEXT NOT NULL,
                     data TEXT NOT NULL);
CREATE TABLE views (order_id INTEGER PRIMARY KEY, view TEXT NOT NULL);
CREATE TABLE outbox (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, text TEXT NOT NULL, at TEXT NOT NULL);
";

/// The floor: the fixed minimal program.
struct Floor {
    conn: Connection,
    order: i64,
    seq: i64,
    outbox: i64,
}

/// The seven state changes: the order's status after it, the events it
/// records, and whether it queues a message.
const STEPS: [(&str, &[&str], bool); 7] = [
    ("pending_payment", &["OrderPlaced"], true),
    ("paid", &["PaymentApproved"], true),
    ("cooking", &["CookingStarted", "DeliveryPrepared"], true),
    ("cooking", &["DeliveryChargePaid"], false),
    ("cooked", &["FoodCooked"], true),
    ("delivering", &["DeliveryStarted"], true),
    ("delivered", &["DeliveryCompleted"], true),
];

impl Floor {
    fn open(path: &Path, synchronous: Synchronous, page_size: u32) -> Floor {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "page_size", page_size).unwrap();
        pragmas(&conn, synchronous);
        conn.execute_batch(FLOOR_SCHEMA).unwrap();
        conn.set_prepared_statement_cache_capacity(16);
        Floor { conn, order: 0, seq: 0, outbox: 0 }
    }

    fn lifecycle(&mut self) {
        self.order += 1;
        let o = self.order;
        let at = "2026-12-02T12:00:00.000000Z";
        for (i, (status, events, message)) in STEPS.iter().enumerate() {
            self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            if i == 0 {
                self.conn
                    .prepare_cached("INSERT INTO orders (id, customer, status, updated_at) VALUES (?1, 'kim', ?2, ?3)")
                    .unwrap()
                    .execute(params![o, status, at])
                    .unwrap();
            } else {
                self.conn
                    .prepare_cached("UPDATE orders SET status = ?2, updated_at = ?3 WHERE id = ?1")
                    .unwrap()
                    .execute(params![o, status, at])
                    .unwrap();
            }
            for kind in *events {
                self.seq += 1;
                let data = format!(r#"{{"order_id":{o},"store_id":1,"customer":"kim","total":38000,"rider_id":1}}"#);
                self.conn
                    .prepare_cached("INSERT INTO events (seq, order_id, type, at, data) VALUES (?1, ?2, ?3, ?4, ?5)")
                    .unwrap()
                    .execute(params![self.seq, o, kind, at, data])
                    .unwrap();
            }
            let view = format!(
                r#"{{"order_id":{o},"store":"교촌치킨","customer":"kim","status":"{status}","total":38000,"updated_at":"{at}"}}"#
            );
            self.conn
                .prepare_cached(
                    "INSERT INTO views (order_id, view) VALUES (?1, ?2) ON CONFLICT (order_id) DO UPDATE SET view = \
                     excluded.view",
                )
                .unwrap()
                .execute(params![o, view])
                .unwrap();
            if *message {
                self.outbox += 1;
                let text = format!("[교촌치킨] 주문 {o}: {status}");
                self.conn
                    .prepare_cached("INSERT INTO outbox (id, order_id, text, at) VALUES (?1, ?2, ?3, ?4)")
                    .unwrap()
                    .execute(params![self.outbox, o, text, at])
                    .unwrap();
            }
            self.conn.execute_batch("COMMIT").unwrap();
        }
    }
}

/// One of the programs, open on its file.
enum Program {
    Floor(Floor),
    Engine(Engine),
    /// The engine with checkpoints in the background, opened when it runs
    /// on a file that already holds the store.
    Background(PathBuf, Synchronous),
}

impl Program {
    fn lifecycles(&mut self, n: usize) -> Duration {
        let picks = picks();
        let start = Instant::now();
        match self {
            Program::Floor(f) => (0..n).for_each(|_| f.lifecycle()),
            Program::Engine(e) => (0..n).for_each(|_| lifecycle(e, &picks)),
            Program::Background(path, sync) => {
                let storage = SqliteStorage::open_with(path, *sync).unwrap().checkpoint_in_background().unwrap();
                let e = Engine::builder(storage).build();
                (0..n).for_each(|_| lifecycle(&e, &picks));
                drop(e); // joins the worker
            }
        }
        start.elapsed()
    }
}

/// Frames of a WAL file by page number, in the order they were written
/// (only the frames of the current generation: their salts match the
/// header's).
fn wal_frames(wal: &Path) -> Vec<u32> {
    let bytes = std::fs::read(wal).unwrap_or_default();
    if bytes.len() < 32 {
        return Vec::new();
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let page_size = be(&bytes[8..12]);
    let salts = &bytes[16..24];
    let frame = 24 + page_size as usize;
    let mut pages = Vec::new();
    let mut at = 32;
    while at + frame <= bytes.len() {
        let header = &bytes[at..at + 24];
        if &header[8..16] != salts {
            break; // left over from before the last restart of the WAL
        }
        pages.push(be(&header[0..4]));
        at += frame;
    }
    pages
}

/// The b-tree (table or index) each page belongs to, from `dbstat`.
fn page_owners(path: &Path) -> BTreeMap<u32, String> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT pageno, name FROM dbstat").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Runs [`COUNTED`] lifecycles on an emptied WAL and returns frames per
/// lifecycle by b-tree, and the page size.
fn count_frames(program: &mut Program, db: &Path) -> (u32, BTreeMap<String, f64>) {
    let side = Connection::open(db).unwrap();
    let (busy, _, _): (i64, i64, i64) =
        side.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!(busy, 0, "the WAL could not be emptied");
    program.lifecycles(COUNTED);
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let pages = wal_frames(&wal);
    let page_size: u32 = side.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let owners = page_owners(db);
    let mut by = BTreeMap::new();
    for page in pages {
        let name = owners.get(&page).cloned().unwrap_or_else(|| "(free or new page)".to_string());
        *by.entry(name).or_insert(0.0) += 1.0 / COUNTED as f64;
    }
    drop(side);
    (page_size, by)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the arguments.
    let n: usize = std::env::var("WAL_FLOOR_N").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let floor_page_size: u32 = std::env::var("WAL_FLOOR_PAGE_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(4096);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "wal_floor: {n} lifecycles per program and setting, {ROUNDS} alternating rounds; floor's pages {floor_page_size} \
         bytes; load {}",
        load.trim()
    );
    let mut summary = Vec::new();
    for sync in [Synchronous::Normal, Synchronous::Full] {
        let (floor_db, engine_db) = (
            dir.path().join(format!("floor-{}.db", sync.as_str())),
            dir.path().join(format!("engine-{}.db", sync.as_str())),
        );
        let background_db = dir.path().join(format!("background-{}.db", sync.as_str()));
        drop(engine(SqliteStorage::open_with(&background_db, sync).unwrap()));
        let mut programs = [
            Program::Floor(Floor::open(&floor_db, sync, floor_page_size)),
            Program::Engine(engine(SqliteStorage::open_with(&engine_db, sync).unwrap())),
            Program::Background(background_db, sync),
        ];
        // Warm all (statement caches, first pages) before timing.
        for program in &mut programs {
            program.lifecycles(20);
        }
        let mut took = [Duration::ZERO; 3];
        for round in 0..ROUNDS {
            // Who goes first alternates too.
            for i in 0..2 {
                let at = (round + i) % 2;
                took[at] += programs[at].lifecycles(n / ROUNDS);
            }
        }
        let done = n / ROUNDS * ROUNDS;
        took[2] = programs[2].lifecycles(done);
        let done = done as f64;
        let [ef, ee, eb] = took.map(|t| done / t.as_secs_f64());
        println!(
            "synchronous={:<6} floor {:>8.0} lifecycles/s  engine {:>8.0} lifecycles/s ({:.2}x the floor's time)  \
             checkpoints in the background {:>8.0} lifecycles/s ({:.2}x)",
            sync.as_str(),
            ef,
            ee,
            ef / ee,
            eb,
            ef / eb
        );
        // Checkpoints change when pages reach the file, not which are
        // written: the frames are counted on the first two.
        let [mut floor, mut eng, _background] = programs;
        let (floor_page, floor_frames) = count_frames(&mut floor, &floor_db);
        let (engine_page, engine_frames) = count_frames(&mut eng, &engine_db);
        summary.push((sync, ef, ee, eb, (engine_page, floor_page), floor_frames, engine_frames));
        drop((floor, eng));
    }

    for (sync, ef, ee, eb, (engine_page, floor_page), floor, engine) in &summary {
        println!(
            "\n== WAL frames per lifecycle by b-tree, synchronous={} ({COUNTED} lifecycles counted)",
            sync.as_str()
        );
        println!("{:<36} {:>8} {:>8}", "table or index", "engine", "floor");
        let mut names: Vec<&String> = engine.keys().chain(floor.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let (e, f) = (engine.get(name).copied().unwrap_or(0.0), floor.get(name).copied().unwrap_or(0.0));
            println!("{name:<36} {e:>8.2} {f:>8.2}");
        }
        let (te, tf): (f64, f64) = (engine.values().sum(), floor.values().sum());
        let (fe, ff) = (f64::from(*engine_page) + 24.0, f64::from(*floor_page) + 24.0);
        println!("{:<36} {te:>8.2} {tf:>8.2}   ratio {:.2}x", "total frames", te / tf);
        println!("{:<36} {engine_page:>8} {floor_page:>8}", "page size (bytes)");
        println!(
            "{:<36} {:>8.1} {:>8.1}   ratio {:.2}x (frames x page size + 24)",
            "KB written to the WAL",
            te * fe / 1000.0,
            tf * ff / 1000.0,
            te * fe / (tf * ff)
        );
        println!("{:<36} {:>8.0} {:>8.0}   engine/floor time {:.2}x", "lifecycles/s", ee, ef, ef / ee);
        println!("{:<36} {:>8.0} {:>8}   engine/floor time {:.2}x", "  checkpoints in the background", eb, "", ef / eb);
    }
}
