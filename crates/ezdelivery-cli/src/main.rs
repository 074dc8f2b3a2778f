//! `ezdelivery`: the command-line program over `ezdelivery-core`.
//!
//! Parsing is in `args`, the config file in `config`, what each command
//! does in `commands` (one function each), what it prints in `render`;
//! errors become messages and exit codes in one place, [`fail`].

#![forbid(unsafe_code)]

mod args;
mod commands;
mod config;
mod copy;
mod demo;
mod errors;
mod man;
mod render;
mod serve;
mod simulate;
mod storage;
mod style;

use std::process::ExitCode;

use clap::CommandFactory;
use ezdelivery_core::app::watch::WatchOptions;
use ezdelivery_core::domain::validate::{self, Invalid};
use ezdelivery_core::domain::PaymentStatus;
use ezdelivery_core::{Engine, Error, Result};
use serde_json::json;

use args::{BreakerCommand, Cli, Command, MenuCommand, RiderCommand, StoreCommand};
use commands::RelayFlags;
use config::Config;
use render::Output;
use storage::{Access, Database};

fn main() -> ExitCode {
    let cli = match Cli::from_env() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    style::decide();
    // A server's failures are for its operator, who reads its log: its
    // clients' answers do not carry them.
    let errors_logged = matches!(cli.command, Command::Serve { .. }) && !cli.quiet;
    logging(cli.verbose, errors_logged);
    let out = match run(&cli) {
        Ok(Printed::Out(out)) => out,
        Ok(Printed::Done) => return ExitCode::SUCCESS,
        Err(e) => return fail(&e, cli.json),
    };
    let silenced = cli.quiet && !prints_only(&cli.command);
    let printed = if cli.json {
        print_line(&out.json.to_string())
    } else if !silenced && !out.human.is_empty() {
        print_line(out.human.trim_end())
    } else {
        Ok(())
    };
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match unwritten(&cli.command, &out, &e) {
            // The reader went away (`| head`): nothing more to say, and no
            // error of ours, unless it never learnt which order took the
            // money (exit 7, so that it does not order and pay again).
            Error::Internal(_) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            error => fail(&error, cli.json),
        },
    }
}

/// The error of a result that could not be written. A command that writes
/// has committed by then: its message says so, since running it again would
/// do it again (a second store, a second order). When the command took the
/// customer's money (`order --pay`, `pay`), the caller must learn which
/// order it was, or a retry would order and pay again.
fn unwritten(command: &Command, out: &Output, e: &std::io::Error) -> Error {
    let order = out.json["order_id"].as_i64();
    let writes = matches!(access(command), Access::Writes | Access::Lasts) && !prints_only(command);
    let unwritten = Error::Internal(match writes {
        false => format!("the result could not be written to standard output: {e}"),
        true => {
            let saved = match order {
                Some(order) => format!("the change to order {order} is saved"),
                None => "the change is saved".to_string(),
            };
            format!(
                "{saved}, but the result could not be written to standard output ({e}): running the command \
                 again would do it again; read the result back instead (`ezdelivery status`, `… list`)"
            )
        }
    });
    let paying = matches!(command, Command::Order(o) if o.pay) || matches!(command, Command::Pay { .. });
    match order {
        // Exit 7, so that a script does not pay again for what it could not read.
        Some(order) if paying && out.json["payment"]["status"] == PaymentStatus::Approved.as_str() => {
            let source = Error::Internal(format!(
                "the result could not be written to standard output ({e}), though the payment is recorded \
                 (`ezdelivery status {order}` reads it back)"
            ));
            Error::MoneyMoved { order, what: ezdelivery_core::domain::Billing::Payment, source: Box::new(source) }
        }
        _ => unwritten,
    }
}

/// Whether `command` only prints a text (`completions`, `man`): it opens
/// no database, and its text is all it is for, so `-q` does not silence
/// it (`-q completions bash > FILE` must not write an empty script).
fn prints_only(command: &Command) -> bool {
    matches!(command, Command::Completions { .. } | Command::Man)
}

/// `-v` logs each command and gateway call (with its duration) at info
/// level, `-vv` every step at debug level, `-vvv` everything; on standard
/// error, so standard output stays the command's result. Off by default,
/// but for errors when `errors` says so (`serve`).
fn logging(verbose: u8, errors: bool) {
    let level = match verbose {
        0 if errors => tracing::Level::ERROR,
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

/// Prints one line on standard error, for an error's message. A standard
/// error that cannot be written (a full disk, closed) must not turn the
/// error's exit code into a panic's 101: the code is what a script reads.
fn print_error_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
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
        print_error_line(&json!({ "error": object }).to_string());
    } else {
        print_error_line(&format!("ezdelivery: {message}"));
    }
    ExitCode::from(errors::exit_code(error))
}

/// clap's own errors: help and version are not errors; usage errors exit 2,
/// as JSON when `--json` was asked for. A command given without its
/// subcommand (`ezdelivery store`, or nothing at all) is a usage error too:
/// clap shows the command's help for it, and it exits 2 all the same. The
/// arguments are read as they are (`args_os`): one that is not UTF-8 is an
/// error to report, not a panic. An argument that holds control characters or is long is shown
/// escaped and shortened ([`validate::shown`]) where clap repeats it.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    if matches!(e.kind(), ErrorKind::DisplayVersion | ErrorKind::DisplayHelp) && json {
        // `--json` is one JSON object on stdout, the version and the help
        // too (the help's text as it would be printed, without colour).
        let object = match e.kind() {
            ErrorKind::DisplayVersion => json!({ "name": "ezdelivery", "version": env!("CARGO_PKG_VERSION") }),
            _ => json!({ "help": e.render().to_string() }),
        };
        return match print_line(&object.to_string()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
            _ => ExitCode::SUCCESS,
        };
    }
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    // an argument that is not UTF-8: where clap refused it, or repeats it
    // (an unknown command) with its bytes replaced by U+FFFD
    let not_utf8 = args.iter().enumerate().find(|(_, a)| {
        a.to_str().is_none() && (e.kind() == ErrorKind::InvalidUtf8 || rendered.contains(&*a.to_string_lossy()))
    });
    let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand && json {
        // The whole help would be a poor error message: its usage line says it.
        let usage = rendered.lines().find_map(|l| l.trim().strip_prefix("Usage: ")).unwrap_or("ezdelivery <COMMAND>");
        clean_usage_message(&format!("a subcommand is missing (usage: {usage}); add `--help` to list them"), &args)
    } else if let Some((i, arg)) = not_utf8 {
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
        let kind = ezdelivery_core::ErrorKind::InvalidInput;
        print_error_line(&json!({ "error": { "kind": kind, "message": message } }).to_string());
    } else {
        print_error_line(message.trim_end());
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

fn run(cli: &Cli) -> Result<Printed> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "ezdelivery", &mut script);
            return Ok(Printed::Out(render::completions(&script)));
        }
        Command::Man => {
            let page = man::page().map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?;
            return Ok(Printed::Out(render::man(page)));
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    config.check_ranges()?;
    if let Command::Demo = cli.command {
        config.check_adapters()?;
        return demo::run(cli, &config).map(|()| Printed::Done);
    }
    // `--db` (or EZDELIVERY_DB, or the default file) picks the storage.
    let db = Database::from_arg(cli.db.as_deref())?;
    // Whatever a command on a PostgreSQL URL ends with, its password is not in it.
    run_on(cli, &config, &db).map_err(|e| db.scrub(e))
}

/// Runs the command on `db` (shown, in logs and errors, without a password).
fn run_on(cli: &Cli, config: &Config, db: &Database) -> Result<Printed> {
    tracing::info!(db = %db, "database");
    let watch = match &cli.command {
        Command::Relay { watch: true, interval, .. } => config.relay.watch_options(*interval)?,
        _ => WatchOptions::default(),
    };
    if let Command::Db(command) = &cli.command {
        return copy::run(db, config, command).map(Printed::Out);
    }
    if let Command::Serve { listen, tokens } = &cli.command {
        return serve::run(config, db, listen, tokens.as_deref(), cli.json, cli.quiet).map(|()| Printed::Done);
    }
    if let Command::Simulate(args) = &cli.command {
        // Before the database is opened (and created): a rate of 1.5 is
        // refused as the rest of the arguments are, with nothing written.
        simulate::config(args).validate()?;
        let Database::Sqlite(path) = db else {
            return Err(Error::Invalid(Invalid(
                "simulate runs only on a new, empty SQLite file: use `--db /tmp/sim.db` on a file that does not \
                 exist yet"
                    .into(),
            )));
        };
        // Before the database is opened: a refused one stays byte for byte as it was.
        simulate::check_new_database(path, cli.db.is_none())?;
    }
    // With --json, standard error carries nothing but a failure's one error
    // object: the console channel is silenced, as with -q (its messages
    // still count as delivered).
    let engine = config.engine(db, cli.quiet || cli.json, access(&cli.command))?;
    execute(&engine, &cli.command, &Context { json: cli.json, quiet: cli.quiet, watch })
}

/// What `command` does with the database: a command that only reads can
/// read one that cannot be written; one that writes for as long as it runs
/// checkpoints in the background ([`Access`]).
fn access(command: &Command) -> Access {
    match command {
        Command::Store(StoreCommand::List | StoreCommand::Orders { .. })
        | Command::Menu(MenuCommand::List { .. })
        | Command::Rider(RiderCommand::List)
        | Command::Status { .. }
        | Command::Events { follow: false, .. }
        | Command::Breaker { action: None | Some(BreakerCommand::Status) }
        | Command::Relay { dead: true, .. }
        | Command::Relay { attention: true, .. } => Access::Reads,
        Command::Events { follow: true, .. } => Access::Follows,
        Command::Simulate(_) | Command::Relay { watch: true, .. } => Access::Lasts,
        _ => Access::Writes,
    }
}

/// How a command is to run, besides the command itself.
pub(crate) struct Context {
    /// `--json`: one JSON object on stdout.
    pub json: bool,
    /// `-q`: no human output on success.
    pub quiet: bool,
    /// How `relay --watch` runs (`[relay]`, `--interval`).
    pub watch: WatchOptions,
}

/// Runs one command on `engine`: [`commands`] has a function for each,
/// [`render`] what it prints. The demo runs its steps through here too.
fn execute(engine: &Engine, command: &Command, context: &Context) -> Result<Printed> {
    let json = context.json;
    let out = match command {
        Command::Store(c) => commands::store(engine, c),
        Command::Menu(c) => commands::menu(engine, c),
        Command::Rider(c) => commands::rider(engine, c),
        Command::Order(o) => commands::order(engine, o),
        Command::Pay { order, card } => commands::pay(engine, *order, card.as_deref()),
        Command::Cook(c) => commands::cook(engine, c),
        Command::Deliver(c) => commands::deliver(engine, c),
        Command::Cancel { order, reason } => commands::cancel(engine, *order, reason),
        Command::Review { order, score, text } => commands::review(engine, *order, *score, text),
        Command::Status { order, customer } => commands::status(engine, *order, customer.as_deref()),
        Command::Events { order, after, format, follow } => {
            return commands::events(engine, *order, *after, *format, *follow, context)
        }
        Command::Breaker { action } => commands::breaker(engine, action.as_ref()),
        Command::Relay { dead, retry_dead, attention, retry_attention, watch, interval: _ } => {
            let flags = RelayFlags {
                dead: *dead,
                attention: *attention,
                retry_dead: *retry_dead,
                retry_attention: *retry_attention,
            };
            if *watch {
                commands::relay_watch(engine, flags, context)
            } else {
                commands::relay(engine, flags)
            }
        }
        Command::Projection(c) => commands::projection(engine, c),
        Command::Simulate(args) => simulate::run(engine, args, json),
        Command::Demo | Command::Completions { .. } | Command::Man | Command::Db(_) | Command::Serve { .. } => {
            return Err(Error::Internal("this command runs before the engine is opened".into()))
        }
    };
    out.map(Printed::Out)
}
