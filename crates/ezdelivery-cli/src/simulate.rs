//! `ezdelivery simulate`: runs the library's simulation with a progress bar
//! on a terminal, and prints its report as a table (or JSON). A broken
//! invariant prints the report, then fails the command (exit 1).
//!
//! It writes thousands of orders, so it runs only on a new, empty database:
//! [`check_new_database`] refuses any other before it is opened.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use ezdelivery_core::adapters::sqlite::{Contents, SqliteStorage};
use ezdelivery_core::app::simulate::SimConfig;
use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::{Engine, Error, Result};

use crate::args::SimulateArgs;
use crate::render::{self, Output};

/// The simulation `args` ask for.
pub fn config(args: &SimulateArgs) -> SimConfig {
    SimConfig {
        orders: args.orders,
        customers: args.customers,
        stores: args.stores,
        riders: args.riders,
        cancel_rate: args.cancel_rate,
        payment_unavailable_rate: args.payment_unavailable_rate,
        seed: args.seed,
    }
}

/// Runs the simulation on `engine`'s database.
pub fn run(engine: &Engine, args: &SimulateArgs, json: bool) -> Result<Output> {
    let config = config(args);
    let mut bar = Progress::new(std::io::stderr().is_terminal());
    let report = engine.simulate(&config, &mut |done, total| bar.show(done, total));
    bar.clear();
    let report = report?;
    let out = render::simulation(&report);
    if report.violations.is_empty() {
        return Ok(out);
    }
    let printed = if json { out.json.to_string() } else { out.human.trim_end().to_string() };
    crate::print_line(&printed).map_err(|e| Error::Internal(format!("cannot write to standard output: {e}")))?;
    let n = report.violations.len();
    Err(Error::Internal(format!(
        "{n} invariant violation{} at the end of the simulation; the first: {}",
        if n == 1 { "" } else { "s" },
        report.violations[0]
    )))
}

/// Refuses (exit 2), with a read-only look and so before anything is
/// written, a database that holds any row: a simulation must never mix its
/// orders with real ones. A path with no file yet, an empty file, or a
/// database without a row is fine. `default` says that `db` is the default
/// database (no `--db`, no `EZDELIVERY_DB`).
pub fn check_new_database(db: &Path, default: bool) -> Result<()> {
    let Some(contents) = SqliteStorage::inspect(db).map_err(crate::config::another_file)? else {
        return Ok(());
    };
    if contents.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(Invalid(format!(
        "simulate runs only on a new, empty database: {}{} holds {}; use `--db /tmp/sim.db` on a file that does \
         not exist yet",
        if default { "the default database " } else { "" },
        db.display(),
        holdings(&contents)
    ))))
}

/// "3 orders, 1 store" or, when only other tables hold rows, "2 rows in breakers".
fn holdings(contents: &Contents) -> String {
    const RECORDS: [(&str, &str); 5] =
        [("orders", "order"), ("stores", "store"), ("menus", "menu"), ("riders", "rider"), ("events", "event")];
    let plural = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let mut parts: Vec<String> = RECORDS
        .iter()
        .filter(|(table, _)| contents.rows_in(table) > 0)
        .map(|(table, one)| plural(contents.rows_in(table), one))
        .collect();
    if parts.is_empty() {
        parts = contents
            .rows
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(table, n)| format!("{} in {table}", plural(*n, "row")))
            .collect();
    }
    parts.join(", ")
}

/// A progress bar of our own on standard error, drawn only on a terminal,
/// at most ten times a second.
struct Progress {
    on: bool,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress { on, started: Instant::now(), drawn: None }
    }

    fn show(&mut self, done: u64, total: u64) {
        if !self.on || self.drawn.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) && done < total {
            return;
        }
        self.drawn = Some(Instant::now());
        const WIDTH: u64 = 30;
        let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let bar: String = (0..WIDTH).map(|i| if i < filled { '█' } else { '░' }).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{bar} {done}/{total} orders · {rate:.0}/s");
        let _ = err.flush();
    }

    fn clear(&mut self) {
        if self.on && self.drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
