//! `ezdelivery simulate`: runs the library's simulation with a progress bar
//! on a terminal, and prints its report as a table (or JSON). A broken
//! invariant prints the report, then fails the command (exit 1).
//!
//! It writes thousands of orders, so it runs only on a new, empty database:
//! [`check_new_database`] refuses any other before it is opened.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use ezdelivery_core::adapters::sqlite::{Contents, SqliteStorage};
use ezdelivery_core::app::simulate::{SimConfig, SimReport};
use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::{Engine, Error, Result};
use serde_json::json;

use crate::args::SimulateArgs;
use crate::render::Output;

/// Runs the simulation on `engine`'s database.
pub fn run(engine: &Engine, args: &SimulateArgs, json: bool) -> Result<Output> {
    let config = SimConfig {
        orders: args.orders,
        customers: args.customers,
        stores: args.stores,
        riders: args.riders,
        cancel_rate: args.cancel_rate,
        payment_unavailable_rate: args.payment_unavailable_rate,
        seed: args.seed,
    };
    let mut bar = Progress::new(std::io::stderr().is_terminal());
    let report = engine.simulate(&config, &mut |done, total| bar.show(done, total));
    bar.clear();
    let report = report?;
    let out = Output::new(report_json(&report), report_text(&report));
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The report as JSON.
pub fn report_json(r: &SimReport) -> serde_json::Value {
    let commands: Vec<_> = r
        .commands
        .iter()
        .map(|c| {
            json!({ "command": c.command, "count": c.count, "p50_ms": ms(c.p50), "p99_ms": ms(c.p99),
                    "max_ms": ms(c.max) })
        })
        .collect();
    let violations: Vec<_> =
        r.violations.iter().map(|v| json!({ "order_id": v.order, "rule": v.rule, "detail": v.detail })).collect();
    json!({
        "orders": r.orders, "delivered": r.delivered, "cancelled": r.cancelled, "queued": r.queued,
        "retried": r.retried, "still_queued": r.still_queued, "seconds": r.elapsed.as_secs_f64(),
        "orders_per_second": r.orders_per_second(), "commands": commands,
        "invariants": { "hold": r.violations.is_empty(), "violations": violations,
                        "check_seconds": r.check_elapsed.as_secs_f64() },
        "seed": r.config.seed,
    })
}

fn right(text: impl ToString) -> Cell {
    Cell::new(text.to_string()).set_alignment(CellAlignment::Right)
}

/// The report for people: the totals, a latency table, the invariants.
pub fn report_text(r: &SimReport) -> String {
    let mut totals = Table::new();
    totals.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    totals.set_header(vec!["orders", "orders/s", "delivered", "cancelled", "queued", "retried", "still queued"]);
    totals.add_row(vec![
        right(r.orders),
        right(format!("{:.0}", r.orders_per_second())),
        right(r.delivered),
        right(r.cancelled),
        right(r.queued),
        right(r.retried),
        right(r.still_queued),
    ]);
    let mut latency = Table::new();
    latency.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    latency.set_header(vec!["command", "count", "p50 ms", "p99 ms", "max ms"]);
    for c in r.commands.iter().filter(|c| c.count > 0) {
        latency.add_row(vec![
            Cell::new(c.command),
            right(c.count),
            right(format!("{:.3}", ms(c.p50))),
            right(format!("{:.3}", ms(c.p99))),
            right(format!("{:.3}", ms(c.max))),
        ]);
    }
    let check = if r.violations.is_empty() {
        format!("invariants: all hold (checked in {:.2} s)", r.check_elapsed.as_secs_f64())
    } else {
        let mut lines = format!("invariants: {} BROKEN", r.violations.len());
        for v in r.violations.iter().take(20) {
            lines.push_str(&format!("\n  {v}"));
        }
        lines
    };
    format!(
        "simulated {} orders in {:.2} s (seed {})\n{totals}\n{latency}\n{check}",
        r.orders,
        r.elapsed.as_secs_f64(),
        r.config.seed,
        totals = totals,
        latency = latency
    )
}
