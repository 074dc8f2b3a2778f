//! `ezdelivery`: the command-line program over `ezdelivery-core`.
//!
//! Parsing is in `args`, the config file in `config`, what each command
//! prints in `render`; errors become messages and exit codes in one place,
//! [`fail`].

#![forbid(unsafe_code)]

mod args;
mod config;
mod demo;
mod errors;
mod man;
mod render;
mod simulate;
mod style;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use ezdelivery_core::domain::validate::{self, Invalid};
use ezdelivery_core::{Engine, Error, ItemPick, NewOrder, Result};
use serde_json::json;

use args::{
    BreakerCommand, Cli, Command, CookCommand, DeliverCommand, EventFormat, MenuCommand, ProjectionCommand,
    RiderCommand, StoreCommand,
};
use config::Config;
use render::Output;

fn main() -> ExitCode {
    let cli = match Cli::from_env() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    style::decide();
    logging(cli.verbose);
    let out = match run(&cli) {
        Ok(Printed::Out(out)) => out,
        Ok(Printed::Done) => return ExitCode::SUCCESS,
        Err(e) => return fail(&e, cli.json),
    };
    let printed = if cli.json {
        print_line(&out.json.to_string())
    } else if !cli.quiet && !out.human.is_empty() {
        print_line(out.human.trim_end())
    } else {
        Ok(())
    };
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): nothing more to say, and no error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&unwritten(&cli.command, &out, &e), cli.json),
    }
}

/// The error of a result that could not be written. When the command
/// took the customer's money (`order --pay`, `pay`), the caller must learn
/// which order it was, or a retry would order and pay again.
fn unwritten(command: &Command, out: &Output, e: &std::io::Error) -> Error {
    let unwritten = Error::Internal(format!("the result could not be written to standard output: {e}"));
    let paying = matches!(command, Command::Order(o) if o.pay) || matches!(command, Command::Pay { .. });
    match out.json["order_id"].as_i64() {
        Some(order) if paying && out.json["payment"]["status"] == "approved" => {
            Error::MoneyMoved { order, what: "payment", source: Box::new(unwritten) }
        }
        _ => unwritten,
    }
}

/// `-v` logs each command and gateway call (with its duration) at info
/// level, `-vv` every step at debug level, `-vvv` everything; on standard
/// error, so standard output stays the command's result. Off by default.
fn logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(level)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
}

/// Prints one line on standard output; unlike `println!`, a closed pipe is
/// an error to handle, not a panic.
pub(crate) fn print_line(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// A failed write to standard output, as the engine's error type.
fn output_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Error::Internal(BROKEN_PIPE.into())
    } else {
        Error::Internal(format!("cannot write to standard output: {e}"))
    }
}

/// The message of a closed standard output, which exits 0 quietly.
const BROKEN_PIPE: &str = "standard output was closed";

/// Prints `error` (its message and what to run next: [`errors::message`])
/// and exits with its code ([`errors::exit_code`]).
fn fail(error: &Error, json: bool) -> ExitCode {
    if matches!(error, Error::Internal(m) if m == BROKEN_PIPE) {
        return ExitCode::SUCCESS;
    }
    let message = errors::message(error);
    if json {
        let mut object = json!({ "kind": error.kind(), "message": message });
        if let Some(order) = error.order() {
            object["order_id"] = json!(order);
        }
        eprintln!("{}", json!({ "error": object }));
    } else {
        eprintln!("ezdelivery: {message}");
    }
    ExitCode::from(errors::exit_code(error))
}

/// clap's own errors: help and version are not errors; usage errors exit 2,
/// as JSON when `--json` was asked for. The arguments are read as they
/// are (`args_os`): one that is not UTF-8 is an error to report, not a
/// panic. An argument that holds control characters or is long is shown
/// escaped and shortened ([`validate::shown`]) where clap repeats it.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let rendered = e.render().to_string();
    // an argument that is not UTF-8: where clap refused it, or repeats it
    // (an unknown command) with its bytes replaced by U+FFFD
    let not_utf8 = args.iter().enumerate().find(|(_, a)| {
        a.to_str().is_none() && (e.kind() == ErrorKind::InvalidUtf8 || rendered.contains(&*a.to_string_lossy()))
    });
    let message = if let Some((i, arg)) = not_utf8 {
        let (n, bad) = (i + 1, escaped_bytes(arg));
        format!(
            "error: argument {n} (`{bad}`) is not valid UTF-8: ezdelivery takes its commands, names and values \
             as UTF-8 text\n\nFor more information, try '--help'."
        )
    } else if json || args.iter().any(|a| needs_cleaning(a)) {
        clean_usage_message(&rendered, &args)
    } else {
        // nothing to clean: clap prints it, in colour on a terminal
        let _ = e.print();
        return ExitCode::from(2);
    };
    if json {
        let message = message.trim().trim_start_matches("error: ");
        eprintln!("{}", json!({ "error": { "kind": "invalid_input", "message": message } }));
    } else {
        eprintln!("{}", message.trim_end());
    }
    ExitCode::from(2)
}

/// Whether clap's repetition of `arg` must not be printed as it is.
fn needs_cleaning(arg: &std::ffi::OsStr) -> bool {
    let arg = arg.to_string_lossy();
    validate::shown(&arg) != arg
}

/// The bytes of an argument that is not UTF-8: its UTF-8 parts as they
/// are, every other byte as `\xff`, shortened ([`validate::shown`]).
fn escaped_bytes(arg: &std::ffi::OsStr) -> String {
    let mut out = String::new();
    for chunk in arg.as_encoded_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    validate::shown(&out)
}

/// clap's plain `message` (its styles, and any escape sequence of the
/// arguments, stripped) with each argument it repeats in quotes shown
/// escaped and shortened, and no control character left but line ends.
fn clean_usage_message(message: &str, args: &[std::ffi::OsString]) -> String {
    let mut message = message.to_string();
    let mut values: Vec<String> = Vec::new();
    for arg in args {
        let arg = arg.to_string_lossy().into_owned();
        // `--name=VALUE`: clap repeats the value alone
        if let Some((_, value)) = arg.split_once('=').filter(|_| arg.starts_with("--")) {
            values.push(value.to_string());
        }
        values.push(arg);
    }
    // the longest first, so that a value inside another is not cut apart
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in values {
        let shown = validate::shown(&value);
        // what clap's plain rendering made of the value
        let plain = clap::builder::StyledStr::from(value.clone()).to_string();
        if shown != value {
            message = message.replace(&format!("'{plain}'"), &format!("'{shown}'"));
        }
    }
    message
        .chars()
        .map(|c| if c.is_control() && c != '\n' { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// What a command leaves to print.
enum Printed {
    /// An output in both forms.
    Out(Output),
    /// The command printed as it went (events as lines, the demo).
    Done,
}

/// The database path: `--db`, `EZDELIVERY_DB`, or the platform data folder.
fn db_path(cli: &Cli) -> Result<PathBuf> {
    if let Some(db) = &cli.db {
        let text = db.to_string_lossy();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Err(Error::Invalid(Invalid(
                "this version of ezdelivery stores its data in a SQLite file only: PostgreSQL URLs are not \
                 supported yet; pass --db PATH"
                    .into(),
            )));
        }
        return Ok(db.clone());
    }
    let data = dirs::data_dir().ok_or_else(|| {
        Error::Invalid(Invalid("no data folder is known for this platform: pass --db PATH or set EZDELIVERY_DB".into()))
    })?;
    Ok(data.join("ezdelivery").join("ezdelivery.db"))
}

fn run(cli: &Cli) -> Result<Printed> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "ezdelivery", &mut script);
            return Ok(Printed::Out(Output::new(
                json!({ "script": String::from_utf8_lossy(&script) }),
                String::from_utf8_lossy(&script),
            )));
        }
        Command::Man => {
            let page = man::page().map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?;
            return Ok(Printed::Out(Output::new(json!({ "man": page }), page)));
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    if let Command::Demo = cli.command {
        return demo::run(cli, &config).map(|()| Printed::Done);
    }
    let db = db_path(cli)?;
    tracing::info!(db = %db.display(), "database");
    if let Command::Simulate(_) = cli.command {
        // Before the database is opened: a refused one stays byte for byte as it was.
        simulate::check_new_database(&db, cli.db.is_none())?;
    }
    // With --json, standard error carries nothing but a failure's one error
    // object: the console channel is silenced, as with -q (its messages
    // still count as delivered).
    let mut engine = if only_reads(&cli.command) {
        config.reading_engine(&db, cli.quiet || cli.json)?
    } else {
        config.engine(&db, cli.quiet || cli.json)?
    };
    execute(&mut engine, &cli.command, cli.json)
}

/// Whether `command` only reads the database: then one that cannot be
/// written is read read-only ([`Config::reading_engine`]).
fn only_reads(command: &Command) -> bool {
    matches!(
        command,
        Command::Store(StoreCommand::List | StoreCommand::Orders { .. })
            | Command::Menu(MenuCommand::List { .. })
            | Command::Rider(RiderCommand::List)
            | Command::Status { .. }
            | Command::Events { .. }
            | Command::Breaker { action: None | Some(BreakerCommand::Status) }
            | Command::Relay { dead: true, .. }
            | Command::Relay { attention: true, .. }
    )
}

fn execute(engine: &mut Engine, command: &Command, json: bool) -> Result<Printed> {
    let view = |v: ezdelivery_core::OrderView| Printed::Out(Output::new(render::view_json(&v), render::view_text(&v)));
    Ok(match command {
        Command::Store(StoreCommand::Add { name, owner, address, delivery_charge }) => {
            if let Some(charge) = delivery_charge {
                ezdelivery_core::domain::validate::charge(*charge)?;
            }
            let mut store = engine.add_store(name, owner.as_deref(), address.as_deref())?;
            if let Some(charge) = delivery_charge {
                store = engine.set_delivery_charge(store.id, *charge)?;
            }
            Printed::Out(Output::new(render::store_json(&store), render::store_text("registered", &store)))
        }
        Command::Store(StoreCommand::List) => Printed::Out(render::stores(&engine.stores()?)),
        Command::Store(StoreCommand::Open { store }) => {
            let s = engine.set_store_open(*store, true)?;
            Printed::Out(Output::new(render::store_json(&s), render::store_text("is open", &s)))
        }
        Command::Store(StoreCommand::Close { store }) => {
            let s = engine.set_store_open(*store, false)?;
            Printed::Out(Output::new(render::store_json(&s), render::store_text("is closed", &s)))
        }
        Command::Store(StoreCommand::Orders { store }) => {
            Printed::Out(render::views("orders", &engine.store_inbox(*store)?))
        }
        Command::Menu(MenuCommand::Add { store, name, price }) => {
            let m = engine.add_menu(*store, name, *price)?;
            Printed::Out(Output::new(render::menu_json(&m), render::menu_text("added", &m)))
        }
        Command::Menu(MenuCommand::List { store }) => Printed::Out(render::menus(&engine.menus(*store)?)),
        Command::Menu(MenuCommand::Soldout { menu }) => {
            let m = engine.set_menu_available(*menu, false)?;
            Printed::Out(Output::new(render::menu_json(&m), render::menu_text("is sold out", &m)))
        }
        Command::Menu(MenuCommand::Available { menu }) => {
            let m = engine.set_menu_available(*menu, true)?;
            Printed::Out(Output::new(render::menu_json(&m), render::menu_text("is available again", &m)))
        }
        Command::Rider(RiderCommand::Add { name }) => {
            let r = engine.add_rider(name)?;
            Printed::Out(Output::new(render::rider_json(&r), format!("rider {} registered: {}", r.id, r.name)))
        }
        Command::Rider(RiderCommand::List) => Printed::Out(render::riders(&engine.riders()?)),
        Command::Order(o) => {
            let picks = o.items.iter().map(|i| ItemPick::parse(i)).collect::<Result<Vec<_>>>()?;
            let mut new = NewOrder::new(o.store, &o.customer, &picks).deliver_to(&o.address);
            if o.pay {
                new = new.pay_now(o.card.as_deref());
            }
            view(engine.place_order(new)?)
        }
        Command::Pay { order, card } => view(engine.pay(*order, card.as_deref())?),
        Command::Cook(CookCommand::Start { order }) => view(engine.start_cooking(*order)?),
        Command::Cook(CookCommand::Finish { order }) => view(engine.finish_cooking(*order)?),
        Command::Cook(CookCommand::Reject { order, reason }) => view(engine.reject(*order, reason)?),
        Command::Deliver(DeliverCommand::Start { order, rider }) => {
            view(engine.start_delivery(*order, rider.as_deref())?)
        }
        Command::Deliver(DeliverCommand::Complete { order }) => view(engine.complete_delivery(*order)?),
        Command::Cancel { order, reason } => view(engine.cancel(*order, reason)?),
        Command::Review { order, score, text } => {
            let r = engine.review(*order, *score, text)?;
            let json = json!({ "order_id": r.order_id, "store_id": r.store_id, "customer": r.customer,
                               "score": r.score, "text": r.text, "at": r.created_at });
            Printed::Out(Output::new(json, format!("order {} reviewed: {}/5 {}", r.order_id, r.score, r.text)))
        }
        Command::Status { order: Some(order), .. } => view(engine.status(*order)?),
        Command::Status { customer, .. } => {
            Printed::Out(render::views("orders", &engine.customer_orders(customer.as_deref().unwrap_or_default())?))
        }
        Command::Events { order, after, format, follow } => {
            if *after < 0 {
                return Err(Error::Invalid(Invalid(format!("--after must be 0 or more, got {after}"))));
            }
            // --json: one object {"events":[…]}, or with --follow one object
            // per line; the items in --format json (the default) or cloudevents.
            if json && *format == Some(EventFormat::Table) {
                return Err(Error::Invalid(Invalid(
                    "--format table is for people and --json for programs: with --json, use --format json \
                     (the default) or --format cloudevents"
                        .into(),
                )));
            }
            let format = format.unwrap_or(if !json && std::io::stdout().is_terminal() {
                EventFormat::Table
            } else {
                EventFormat::Json
            });
            let events = engine.events(*after, *order, usize::MAX >> 1)?;
            if json && !follow {
                let item = if format == EventFormat::Cloudevents { render::cloud_event } else { render::event_json };
                let all: Vec<_> = events.iter().map(item).collect();
                return Ok(Printed::Out(Output::new(json!({ "events": all }), String::new())));
            }
            if format == EventFormat::Table && !follow {
                return Ok(Printed::Out(Output::new(json!({}), render::events_table(&events))));
            }
            let line = |e: &ezdelivery_core::ports::storage::StoredEvent| match format {
                EventFormat::Cloudevents => render::cloud_event(e).to_string(),
                EventFormat::Json => render::event_json(e).to_string(),
                // Following on a terminal: one line per event, as it comes.
                EventFormat::Table => render::event_line(e),
            };
            let mut last = *after;
            for e in &events {
                print_line(&line(e)).map_err(output_error)?;
                last = e.seq;
            }
            // --follow: poll for what other processes append, sleeping
            // between looks (no busy loop), until interrupted.
            if *follow {
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    for e in engine.events(last, *order, 1_000)? {
                        print_line(&line(&e)).map_err(output_error)?;
                        last = e.seq;
                    }
                }
            }
            Printed::Done
        }
        Command::Breaker { action } => match action {
            Some(BreakerCommand::Reset { name }) => {
                let b = engine.reset_breaker(name)?;
                Printed::Out(Output::new(json!(b), format!("breaker {} is closed", b.name)))
            }
            _ => Printed::Out(render::breakers(&engine.breakers()?)),
        },
        Command::Relay { dead: true, .. } => {
            let dead = engine.dead_messages()?;
            let list: Vec<_> = dead
                .iter()
                .map(|q| {
                    json!({ "id": q.message.id, "channel": q.delivery.channel, "order_id": q.message.order_id,
                                 "recipient": q.message.recipient, "tries": q.delivery.tries,
                                 "last_error": q.delivery.last_error, "text": q.message.text })
                })
                .collect();
            let human = if dead.is_empty() {
                "no dead messages".to_string()
            } else {
                dead.iter()
                    .map(|q| {
                        format!(
                            "{} [{}] order {} → {}: {} (after {} tries: {})",
                            q.message.id,
                            q.delivery.channel,
                            q.message.order_id,
                            q.message.recipient,
                            q.message.text,
                            q.delivery.tries,
                            q.delivery.last_error.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Printed::Out(Output::new(json!({ "dead": list }), human))
        }
        Command::Relay { attention: true, .. } => Printed::Out(render::attention(&engine.attention()?)),
        Command::Relay { retry_dead, retry_attention, .. } => {
            let revived = if *retry_dead { engine.revive_dead_messages()? } else { 0 };
            let requeued = if *retry_attention { engine.requeue_attention()? } else { 0 };
            let r = engine.relay()?;
            let waiting = engine.queue_status()?;
            let mut json = serde_json::to_value(r).unwrap_or_default();
            json["revived"] = json!(revived);
            json["requeued"] = json!(requeued);
            json["waiting"] = json!(waiting.calls() + waiting.messages);
            json["waiting_calls"] = json!(waiting.calls());
            json["waiting_messages"] = json!(waiting.messages);
            json["next_due"] = json!(waiting.next_due.map(render::utc_text));
            Printed::Out(Output::new(json, render::relay_text(&r, &waiting, revived, requeued)))
        }
        Command::Projection(ProjectionCommand::Rebuild) => {
            let p = engine.rebuild_projection()?;
            let json = json!({ "events": p.events, "applied": p.applied, "checkpoint": p.checkpoint });
            Printed::Out(Output::new(
                json,
                format!("mypage rebuilt from {} events ({} applied), checkpoint {}", p.events, p.applied, p.checkpoint),
            ))
        }
        Command::Simulate(args) => Printed::Out(simulate::run(engine, args, json)?),
        Command::Demo | Command::Completions { .. } | Command::Man => {
            return Err(Error::Internal("this command runs before the engine is opened".into()))
        }
    })
}
