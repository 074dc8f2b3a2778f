//! `ezdelivery demo`: one whole scenario on a fresh database, each step
//! explained. Every step is a real command line: it is parsed by the same
//! clap definitions and run by the same code ([`crate::execute`]) as the
//! command itself, so what the demo prints under `$ ezdelivery …` is what
//! that command prints, and every such line runs as shown (after
//! `export EZDELIVERY_DB=…`, the path the demo names first).

use std::path::{Path, PathBuf};

use clap::Parser;
use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::{Engine, Error, Result};
use serde_json::Value;

use crate::args::Cli;
use crate::config::Config;
use crate::storage::{is_postgres_url, Access, Database};
use crate::{render, Printed};

/// Runs the demo on `--db PATH` when it is given on the command line and
/// names a file that does not exist yet (or is empty); without `--db`, on a
/// fresh `ezdelivery-demo.db` in the data folder, replaced on every run.
/// `EZDELIVERY_DB` is not the demo's: the database you work with is never
/// touched, and the demo needs no flags.
pub fn run(cli: &Cli, config: &Config) -> Result<()> {
    let db = demo_db(cli.db.as_deref().filter(|_| db_on_command_line()))?;
    // The demo shows the sandbox's behaviour, whatever adapters the config picks.
    let sandbox = Config { locale: config.locale, ..Config::default() };
    let engine = sandbox.engine(&Database::Sqlite(db.clone()), cli.quiet || cli.json, Access::Writes)?;
    let mut demo = Demo { talk: !cli.quiet && !cli.json, engine, steps: 0 };
    demo.say(&format!(
        "ezdelivery demo on {}\n\
         Each `$ ezdelivery …` line below is a real command, run as shown on this database, and under\n\
         it is what that command prints. To run more commands on it:\n   \
         export EZDELIVERY_DB={}\n\
         (messages to customers and owners appear on stderr as [알림 → …] lines)",
        db.display(),
        shell_word(&db.to_string_lossy())
    ))?;
    let orders = demo.scenario()?;
    if cli.json {
        let json = serde_json::json!({ "db": db, "orders": orders.iter().map(render::view_json).collect::<Vec<_>>() });
        crate::print_line(&json.to_string()).map_err(crate::output_error)?;
    } else {
        demo.say(&format!(
            "\nDone. Look around: ezdelivery --db {} status --customer kim",
            shell_word(&db.to_string_lossy())
        ))?;
    }
    Ok(())
}

/// Whether `--db` was typed (not filled in from `EZDELIVERY_DB`).
fn db_on_command_line() -> bool {
    std::env::args_os().any(|a| a == "--db" || a.to_string_lossy().starts_with("--db="))
}

/// The demo's database: `given` when it is new (or empty), else the data
/// folder's `ezdelivery-demo.db`, deleted first.
fn demo_db(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        // Not repeated: a URL may hold a password.
        Some(db) if is_postgres_url(&db.to_string_lossy()) => Err(Error::Invalid(Invalid(
            "the demo runs on a fresh SQLite file: pass a new path with --db, or no --db".into(),
        ))),
        Some(db) if db.exists() && std::fs::metadata(db).map(|m| m.len() > 0).unwrap_or(true) => {
            Err(Error::Invalid(Invalid(format!(
                "the demo needs a fresh database, and {} already exists: pass a new path with --db, or no --db",
                db.display()
            ))))
        }
        Some(db) => Ok(db.to_path_buf()),
        None => {
            let dir = dirs::data_dir()
                .ok_or_else(|| Error::Invalid(Invalid("no data folder is known: pass --db PATH".into())))?
                .join("ezdelivery");
            let db = dir.join("ezdelivery-demo.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            Ok(db)
        }
    }
}

/// How a step is expected to end.
#[derive(Clone, Copy)]
enum Expect {
    /// Exit 0.
    Done,
    /// Fails with this exit code.
    Exit(i32),
}

struct Demo {
    /// Print the steps (not with `-q` or `--json`).
    talk: bool,
    engine: Engine,
    steps: u32,
}

impl Demo {
    /// The scenario; returns kim's orders at the end.
    fn scenario(&mut self) -> Result<Vec<ezdelivery_core::OrderView>> {
        let store =
            self.id("A store registers; it is open.", &["store", "add", "--name", "교촌치킨", "--owner", "park"])?;
        let s = store.to_string();
        self.run(
            "It lists its menu, in whole won.",
            &["menu", "add", "--store", &s, "--name", "후라이드", "--price", "18000"],
        )?;
        self.run("", &["menu", "add", "--store", &s, "--name", "콜라", "--price", "2000"])?;
        self.run("A rider registers.", &["rider", "add", "--name", "lee"])?;

        let order_args: [&str; 9] =
            ["order", "--store", &s, "--customer", "kim", "--item", "후라이드:2", "--item", "콜라"];
        let decline = [&order_args[..], &["--pay", "--card", "4000000000000002"]].concat();
        let why = "kim orders and pays with a card the sandbox declines: exit 5, the order is kept unpaid.";
        self.expect(why, &decline, Expect::Exit(5))?;
        // The order the decline kept: the newest of kim's.
        let order = self
            .engine
            .customer_orders("kim")?
            .last()
            .map(|v| v.order_id)
            .ok_or_else(|| Error::Internal("the declined order was not kept".into()))?;
        let o = order.to_string();
        self.run("An unpaid order is not established: the owner's inbox is empty.", &["store", "orders", &s])?;
        self.run("kim pays again with another card.", &["pay", &o, "--card", "4111111111111111"])?;
        self.run("Now the owner sees it.", &["store", "orders", &s])?;
        self.run(
            "The owner accepts and starts cooking; a delivery is prepared with lee, whose 3,000 won charge is paid.",
            &["cook", "start", &o],
        )?;
        self.expect(
            "lee cannot depart before the food is cooked: exit 4.",
            &["deliver", "start", &o],
            Expect::Exit(4),
        )?;
        self.run("The food is cooked.", &["cook", "finish", &o])?;
        self.run("lee departs: food cooked, charge paid.", &["deliver", "start", &o])?;
        self.expect("Too late to cancel: the order is on its way (exit 4).", &["cancel", &o], Expect::Exit(4))?;
        self.run("Delivered.", &["deliver", "complete", &o])?;
        self.run("kim reviews the order, once.", &["review", &o, "--score", "5", "--text", "바삭해요"])?;

        let json = self.run(
            "A second order, paid at once ...",
            &["order", "--store", &s, "--customer", "kim", "--item", "후라이드", "--pay"],
        )?;
        let second = json["order_id"]
            .as_i64()
            .ok_or_else(|| Error::Internal(format!("the second order printed no order_id: {json}")))?
            .to_string();
        self.run("... is accepted ...", &["cook", "start", &second])?;
        self.run(
            "... and cancelled while cooking: payment refunded, kitchen and delivery cancelled, lee's charge taken back.",
            &["cancel", &second, "--reason", "changed my mind"],
        )?;

        self.run("mypage: the whole order in one view, with its timeline, built from the event log.", &["status", &o])?;
        self.run("The store's review count and average score.", &["store", "list"])?;
        let before = self.engine.customer_orders("kim")?;
        self.run("The read model is rebuilt from the event log to the same result.", &["projection", "rebuild"])?;
        let after = self.engine.customer_orders("kim")?;
        if before != after {
            return Err(Error::Internal("the rebuilt views differ from the live ones".into()));
        }
        self.run("All of kim's orders.", &["status", "--customer", "kim"])?;
        Ok(after)
    }

    /// A step that succeeds; returns its `--json` object.
    fn run(&mut self, why: &str, args: &[&str]) -> Result<Value> {
        self.expect(why, args, Expect::Done)
    }

    /// A step that succeeds and prints a record; returns its `id`.
    fn id(&mut self, why: &str, args: &[&str]) -> Result<i64> {
        let json = self.run(why, args)?;
        json["id"].as_i64().ok_or_else(|| Error::Internal(format!("`{}` printed no id: {json}", args.join(" "))))
    }

    /// Shows and runs one command line as the command itself would, and
    /// checks that it ends as `expect` says; returns its `--json` object
    /// (`null` for a failure).
    fn expect(&mut self, why: &str, args: &[&str], expect: Expect) -> Result<Value> {
        let line = args.iter().map(|a| shell_word(a)).collect::<Vec<_>>().join(" ");
        if why.is_empty() {
            self.say(&format!("   $ ezdelivery {line}"))?;
        } else {
            self.steps += 1;
            self.say(&format!("\n── {}. {why}\n   $ ezdelivery {line}", self.steps))?;
        }
        let parsed = Cli::try_parse_from(std::iter::once("ezdelivery").chain(args.iter().copied()))
            .map_err(|e| Error::Internal(format!("the demo's step `{line}` is not a command: {e}")))?;
        let context = crate::Context { json: false, quiet: false, watch: Default::default() };
        match (crate::execute(&self.engine, &parsed.command, &context), expect) {
            (Ok(Printed::Out(out)), Expect::Done) => {
                self.show(&out.human)?;
                Ok(out.json)
            }
            (Ok(Printed::Done), Expect::Done) => Ok(Value::Null),
            (Err(e), Expect::Exit(code)) if i32::from(crate::errors::exit_code(&e)) == code => {
                // What `fail` prints on standard error.
                self.show(&format!("ezdelivery: {}", crate::errors::message(&e)))?;
                Ok(Value::Null)
            }
            (Ok(_), Expect::Exit(code)) => {
                Err(Error::Internal(format!("the demo's step `{line}` succeeded where it should exit {code}")))
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Prints what a step printed, indented.
    fn show(&self, text: &str) -> Result<()> {
        text.trim_end().lines().try_for_each(|line| self.say(&format!("   {line}")))
    }

    /// Prints `text` unless the demo is quiet; a closed standard output
    /// ends the demo as it ends any command (quietly, exit 0), not in a panic.
    fn say(&self, text: &str) -> Result<()> {
        if !self.talk {
            return Ok(());
        }
        crate::print_line(text).map_err(crate::output_error)
    }
}

/// `word` as a shell reads it back: as it is when it is plain, else in
/// single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| c.is_alphanumeric() || "-_:./=,@%+".contains(c) || !c.is_ascii() && !c.is_whitespace());
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("후라이드:2"), "후라이드:2");
        assert_eq!(shell_word("--card"), "--card");
        assert_eq!(shell_word("/tmp/demo.db"), "/tmp/demo.db");
        assert_eq!(shell_word("changed my mind"), "'changed my mind'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
    }
}
