//! The command line, as clap definitions: the commands and options of docs/reference.md.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// A food-delivery ordering engine on one SQLite file, or on PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "ezdelivery", version, long_about = None, propagate_version = true)]
#[command(
    after_help = "Example:\n  ezdelivery demo\n  ezdelivery order --store 1 --customer kim --item 후라이드:2 --pay"
)]
pub struct Cli {
    /// The SQLite file, created with its folder on first use, or a postgres:// URL (default: $EZDELIVERY_DB, else the data folder).
    // EZDELIVERY_DB, EZDELIVERY_CONFIG and EZDELIVERY_TOKENS are read by
    // `Cli::from_env`, not by clap: clap would show an option set from the environment in the
    // usage line of every error, as if it had been typed.
    #[arg(long, global = true, value_name = "PATH|URL", help_heading = GLOBAL)]
    pub db: Option<PathBuf>,

    /// A TOML file that picks the adapters (default: $EZDELIVERY_CONFIG; `ezdelivery man` lists its keys).
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// Machine output: one JSON object on stdout; errors as JSON on stderr.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Quieter: no notifications on the console, no human output on success (but for completions and man), no serve error log.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,

    /// Log to stderr: -v each command and gateway call with its duration, -vv every step.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The heading of the options every command takes, in `--help`.
const GLOBAL: &str = "Global options";

impl Cli {
    /// Parses the command line, then fills `--db`, `--config` and `serve
    /// --tokens` in from `EZDELIVERY_DB`, `EZDELIVERY_CONFIG` and
    /// `EZDELIVERY_TOKENS` (when set and not empty) where they were not given.
    pub fn from_env() -> Result<Cli, clap::Error> {
        let mut cli = Cli::try_parse()?;
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        cli.db = cli.db.take().or_else(|| env("EZDELIVERY_DB"));
        cli.config = cli.config.take().or_else(|| env("EZDELIVERY_CONFIG"));
        if let Command::Serve { tokens, .. } = &mut cli.command {
            *tokens = tokens.take().or_else(|| env("EZDELIVERY_TOKENS"));
        }
        if let Command::Status { order: None, customer: None } = cli.command {
            const NEITHER: &str = "give an ORDER id or --customer NAME: `ezdelivery status 7` shows order 7, \
                                   `ezdelivery status --customer kim` all of kim's orders";
            let kind = clap::error::ErrorKind::MissingRequiredArgument;
            let mut command = Cli::command();
            command.build();
            return Err(match command.find_subcommand_mut("status") {
                Some(status) => status.error(kind, NEITHER),
                None => command.error(kind, NEITHER),
            });
        }
        Ok(cli)
    }
}

/// An id as a command-line value: a whole number from 1. Negative numbers
/// reach this check (`allow_negative_numbers`) rather than being taken
/// for options.
fn id(what: &str, value: &str) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(id) if id >= 1 => Ok(id),
        Ok(id) => Err(format!("{what} id must be 1 or more, got {id}")),
        Err(_) => Err(format!("{what} id must be a whole number from 1, such as 7")),
    }
}

fn order_id(value: &str) -> Result<i64, String> {
    id("order", value)
}

fn store_id(value: &str) -> Result<i64, String> {
    id("store", value)
}

fn menu_id(value: &str) -> Result<i64, String> {
    id("menu", value)
}

/// A review score: 1 to 5.
fn score(value: &str) -> Result<u8, String> {
    match value.trim().parse::<i64>() {
        Ok(n) => u8::try_from(n)
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| format!("score must be between 1 and 5, got {n}")),
        Err(_) => Err("score must be a whole number from 1 to 5".into()),
    }
}

/// An amount of won as a command-line value: digits only, as the ranges
/// (checked by the domain, with their own messages) are written. `1,000`,
/// `1.5` or `+100` would otherwise meet the parser's bare "invalid digit".
fn won(value: &str) -> Result<i64, String> {
    whole(value).map_err(|e| match e {
        NotWhole::Written => format!("{value:?} is not an amount of won: write whole won in digits, such as 18000"),
        NotWhole::OutOfRange => format!(
            "{} is out of range: amounts are at most {}원",
            value.trim(),
            ezdelivery_core::domain::won(ezdelivery_core::domain::validate::MAX_PRICE)
        ),
    })
}

/// An event's sequence number as a command-line value (`events --after`).
fn seq(value: &str) -> Result<i64, String> {
    whole(value).map_err(|e| match e {
        NotWhole::Written => {
            format!("{value:?} is not a sequence number: write an event's number in digits, such as 120 (0 for all)")
        }
        NotWhole::OutOfRange => format!("{} is out of range for a sequence number", value.trim()),
    })
}

/// Why a value is not a [`whole`] number.
enum NotWhole {
    /// Not written as digits.
    Written,
    /// Digits beyond what an `i64` holds.
    OutOfRange,
}

/// `value` as a whole number written in ASCII digits, with an optional
/// leading `-` (surrounding spaces ignored): what a script writes.
fn whole(value: &str) -> Result<i64, NotWhole> {
    let value = value.trim();
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NotWhole::Written);
    }
    value.parse().map_err(|_| NotWhole::OutOfRange)
}

/// A count of the simulation: a whole number from 1.
fn count(value: &str) -> Result<u64, String> {
    match value.trim().parse::<i128>() {
        Ok(n) if n >= 1 => u64::try_from(n).map_err(|_| format!("must be at most {}, got {n}", u64::MAX)),
        Ok(n) => Err(format!("must be 1 or more, got {n}")),
        Err(_) => Err("must be a whole number from 1".into()),
    }
}

/// `--interval MS`: a whole number of milliseconds (its range is checked
/// with the config's, [`crate::config::RelayConfig::watch_options`]).
fn interval_ms(value: &str) -> Result<u64, String> {
    value.trim().parse::<u64>().map_err(|_| "--interval is a whole number of milliseconds, such as 1000".into())
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stores: register, list, open, close, and the owner's inbox.
    #[command(subcommand, after_help = "Example:\n  ezdelivery store add --name BBQ --owner park")]
    Store(StoreCommand),
    /// Menus: add, list, sold out, available again.
    #[command(subcommand, after_help = "Example:\n  ezdelivery menu add --store 1 --name 후라이드 --price 18000")]
    Menu(MenuCommand),
    /// Riders: register, list.
    #[command(subcommand, after_help = "Example:\n  ezdelivery rider add --name lee")]
    Rider(RiderCommand),
    /// Place an order (pending_payment; with --pay, pay it at once).
    #[command(
        after_help = "Example:\n  ezdelivery order --store 1 --customer kim --item 후라이드:2 --item 콜라 --pay"
    )]
    Order(OrderArgs),
    /// Pay a pending_payment order.
    #[command(after_help = "Example:\n  ezdelivery pay 7 --card 4111111111111111")]
    Pay {
        /// The order.
        #[arg(allow_negative_numbers = true, value_parser = order_id)]
        order: i64,
        /// The card number (only its last four digits are kept).
        #[arg(long, value_name = "NUMBER")]
        card: Option<String>,
    },
    /// The kitchen: start (accept), finish, reject.
    #[command(subcommand, after_help = "Example:\n  ezdelivery cook start 7")]
    Cook(CookCommand),
    /// Delivery: depart, complete.
    #[command(subcommand, after_help = "Example:\n  ezdelivery deliver start 7 --rider lee")]
    Deliver(DeliverCommand),
    /// Cancel an order before it departs (refunds the payment).
    #[command(after_help = "Example:\n  ezdelivery cancel 7 --reason \"changed my mind\"")]
    Cancel {
        /// The order.
        #[arg(allow_negative_numbers = true, value_parser = order_id)]
        order: i64,
        /// Why.
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// Review a delivered order, once.
    #[command(after_help = "Example:\n  ezdelivery review 7 --score 5 --text 맛있어요")]
    Review {
        /// The order.
        #[arg(allow_negative_numbers = true, value_parser = order_id)]
        order: i64,
        /// 1 to 5.
        #[arg(long, allow_negative_numbers = true, value_parser = score)]
        score: u8,
        /// What you thought (one line).
        #[arg(long, default_value = "", hide_default_value = true)]
        text: String,
    },
    /// The mypage view: one order with its timeline, or all of a customer's orders.
    #[command(
        override_usage = "ezdelivery status [OPTIONS] <ORDER|--customer <NAME>>",
        after_help = "Examples:\n  ezdelivery status 7\n  ezdelivery status --customer kim"
    )]
    Status {
        /// The order (or give --customer).
        #[arg(conflicts_with = "customer", allow_negative_numbers = true, value_parser = order_id)]
        order: Option<i64>,
        /// All orders of this customer.
        #[arg(long, value_name = "NAME")]
        customer: Option<String>,
    },
    /// Print the event log, one event per line.
    #[command(after_help = "Example:\n  ezdelivery events --order 7 --format json")]
    Events {
        /// Only this order's events.
        #[arg(long, allow_negative_numbers = true, value_parser = order_id)]
        order: Option<i64>,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0, value_name = "SEQ", allow_negative_numbers = true, value_parser = seq)]
        after: i64,
        /// Output format (defaults to a table on a terminal, json otherwise; with --json, the items' format: json or cloudevents).
        #[arg(long, value_enum)]
        format: Option<EventFormat>,
        /// Keep printing new events as they are written, until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// Deliver queued notifications; retry queued payments, refunds and charges.
    #[command(
        after_help = "Examples:\n  ezdelivery relay\n  ezdelivery relay --dead\n  ezdelivery relay --attention\n  \
                      ezdelivery relay --retry-attention\n  ezdelivery relay --watch --interval 500\n\n\
                      --watch relays until SIGTERM or SIGINT (Ctrl-C): the call in flight is finished and \
                      recorded, then it exits 0\nwith one summary (one JSON object with --json); a second signal \
                      ends it at once. Every minute it purges\nthe messages delivered more than [relay] \
                      retention_days ago (default 7)."
    )]
    Relay {
        /// List the messages given up on, instead of relaying.
        #[arg(long, conflicts_with_all = ["retry_dead", "attention", "retry_attention", "watch", "interval"])]
        dead: bool,
        /// Put the messages given up on back in the queue, then relay.
        #[arg(long)]
        retry_dead: bool,
        /// List the payments and delivery charges that need a person (the
        /// gateway may hold money the engine could not settle), instead of relaying.
        #[arg(long, conflicts_with_all = ["retry_dead", "retry_attention", "interval"])]
        attention: bool,
        /// Put the payments and charges that need attention back in the
        /// queue (once the gateway is fixed), then relay.
        #[arg(long)]
        retry_attention: bool,
        /// Keep relaying, as a long-running worker, until SIGTERM or SIGINT:
        /// a line per pass that did something, a summary at the end.
        #[arg(long, conflicts_with = "attention")]
        watch: bool,
        /// With --watch: how long to wait, when there is nothing to do,
        /// before looking again (default: [relay] interval_ms, 1000); less
        /// when queued work falls due sooner.
        #[arg(long, value_name = "MS", requires = "watch", value_parser = interval_ms)]
        interval: Option<u64>,
    },
    /// Serve the HTTP API (README, "Serving HTTP") until SIGTERM or SIGINT.
    #[command(after_help = "Examples:\n  ezdelivery serve --tokens /etc/ezdelivery/tokens.toml\n  \
                            EZDELIVERY_TOKENS=tokens.toml ezdelivery serve --listen 0.0.0.0:8080\n\n\
                            Prints `listening on http://ADDR` (with --json: {\"listening\":\"ADDR\"}) once it \
                            accepts requests.\nOn SIGTERM or SIGINT it stops accepting, lets the requests in \
                            flight finish, and exits 0.\nQueued payments and messages are retried by `ezdelivery \
                            relay --watch`, run beside it.\nErrors (a 500's cause, a database that does not \
                            answer) are logged on stderr even without -v; -q silences them.")]
    Serve {
        /// The address to listen on (`127.0.0.1:0` picks a free port).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: String,
        /// The tokens file: each token's SHA-256, role and name, not readable by others (default: $EZDELIVERY_TOKENS).
        // Read by `Cli::from_env` like EZDELIVERY_DB: set but empty is as if unset.
        #[arg(long, value_name = "FILE")]
        tokens: Option<std::path::PathBuf>,
    },
    /// Circuit breakers around the gateways and notifier channels.
    #[command(after_help = "Examples:\n  ezdelivery breaker\n  ezdelivery breaker reset payment")]
    Breaker {
        /// `status` (the default) or `reset NAME`.
        #[command(subcommand)]
        action: Option<BreakerCommand>,
    },
    /// The mypage read model.
    #[command(subcommand, after_help = "Example:\n  ezdelivery projection rebuild")]
    Projection(ProjectionCommand),
    /// The database as a whole: copy it into a new one.
    #[command(subcommand, after_help = "Example:\n  ezdelivery --db orders.db db copy --to /backup/orders-copy.db")]
    Db(DbCommand),
    /// Drive N orders through the whole lifecycle in-process on a new database, then check every invariant.
    #[command(after_help = "Examples (each on a file that does not exist yet):\n  \
                            ezdelivery --db /tmp/sim.db simulate --orders 10000\n  \
                            ezdelivery --db /tmp/sim-7.db simulate --orders 2000 --cancel-rate 0.1 \
                            --payment-unavailable-rate 0.05 --seed 7\n\n\
                            Runs only on a new, empty database: a database that holds any row is refused \
                            (exit 2) and left untouched, the default one included.\n\
                            Exits 1 when an invariant is broken at the end.")]
    Simulate(SimulateArgs),
    /// Run one whole scenario on a fresh database, explaining each step.
    #[command(after_help = "Example:\n  ezdelivery demo")]
    Demo,
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  ezdelivery completions bash > ~/.local/share/bash-completion/completions/ezdelivery"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) generated from these definitions.
    #[command(after_help = "Example:\n  ezdelivery man > ezdelivery.1 && man ./ezdelivery.1")]
    Man,
}

/// `ezdelivery simulate …`
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// How many orders to drive through the lifecycle (at least 1).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = count)]
    pub orders: u64,
    /// How many customers order.
    #[arg(long, value_name = "K", default_value_t = 1_000, allow_negative_numbers = true, value_parser = count)]
    pub customers: u64,
    /// How many stores are registered for the run.
    #[arg(long, value_name = "S", default_value_t = 10, allow_negative_numbers = true, value_parser = count)]
    pub stores: u64,
    /// How many riders deliver (registered if missing).
    #[arg(long, value_name = "N", default_value_t = 20, allow_negative_numbers = true, value_parser = count)]
    pub riders: u64,
    /// The share of orders cancelled before departure, 0 to 1.
    #[arg(long, value_name = "R", default_value_t = 0.05, allow_negative_numbers = true)]
    pub cancel_rate: f64,
    /// The share of payment calls that find the gateway down (queued, retried), 0 to 1.
    #[arg(long, value_name = "R", default_value_t = 0.02, allow_negative_numbers = true)]
    pub payment_unavailable_rate: f64,
    /// The seed: the same seed runs the same simulation.
    #[arg(long, value_name = "X", default_value_t = 1)]
    pub seed: u64,
}

/// `ezdelivery db …`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy the whole --db database (SQLite or PostgreSQL) into a new, empty one of either kind, then verify the copy.
    #[command(after_help = "Examples:\n  ezdelivery --db orders.db db copy --to orders-copy.db\n  \
                            ezdelivery --db orders.db db copy --to postgres://ezdelivery@localhost/ezdelivery\n  \
                            ezdelivery --db postgres://ezdelivery@localhost/ezdelivery db copy --to back.db\n\n\
                            Every table is copied in one transaction and verified before it is committed: row \
                            counts and contents, the event log event by event, and every mypage view against a \
                            rebuild from the copied log. A target that holds any row, or is the source itself, is \
                            refused (exit 2) and left untouched; a copy that does not verify is rolled back (exit \
                            1). A password in a URL is never printed.")]
    Copy {
        /// Where to: a SQLite file (created if missing) or a postgres:// URL (an existing, empty database).
        #[arg(long, value_name = "URL|PATH", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        to: String,
    },
}

/// `ezdelivery breaker …`
#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Show each breaker: state, consecutive failures, when it retries.
    #[command(after_help = "Example:\n  ezdelivery breaker status")]
    Status,
    /// Close a breaker by hand; a gateway's also makes the calls queued for it due now.
    #[command(after_help = "Example:\n  ezdelivery breaker reset payment")]
    Reset {
        /// `payment`, `charge`, or a notifier channel.
        name: String,
    },
}

/// `ezdelivery store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Register a store (open, delivery charge 3,000 won unless given).
    #[command(after_help = "Example:\n  ezdelivery store add --name BBQ --owner park --address 서울")]
    Add {
        /// Its name.
        #[arg(long)]
        name: String,
        /// The owner (defaults to the store's name).
        #[arg(long)]
        owner: Option<String>,
        /// Its address.
        #[arg(long)]
        address: Option<String>,
        /// What each delivery pays the rider, in won.
        #[arg(long, value_name = "WON", allow_negative_numbers = true, value_parser = won)]
        delivery_charge: Option<i64>,
    },
    /// List the stores with their review count and average score.
    #[command(after_help = "Example:\n  ezdelivery store list")]
    List,
    /// Open a store: it takes orders.
    #[command(after_help = "Example:\n  ezdelivery store open 1")]
    Open {
        /// The store.
        #[arg(allow_negative_numbers = true, value_parser = store_id)]
        store: i64,
    },
    /// Close a store: it takes no orders.
    #[command(after_help = "Example:\n  ezdelivery store close 1")]
    Close {
        /// The store.
        #[arg(allow_negative_numbers = true, value_parser = store_id)]
        store: i64,
    },
    /// The owner's inbox: paid orders waiting, and those in progress.
    #[command(after_help = "Example:\n  ezdelivery store orders 1")]
    Orders {
        /// The store.
        #[arg(allow_negative_numbers = true, value_parser = store_id)]
        store: i64,
    },
}

/// `ezdelivery menu …`
#[derive(Debug, Subcommand)]
pub enum MenuCommand {
    /// Add a menu item to a store.
    #[command(after_help = "Example:\n  ezdelivery menu add --store 1 --name 후라이드 --price 18000")]
    Add {
        /// The store.
        #[arg(long, allow_negative_numbers = true, value_parser = store_id)]
        store: i64,
        /// Its name (unique within the store).
        #[arg(long)]
        name: String,
        /// Its price in whole won.
        #[arg(long, allow_negative_numbers = true, value_parser = won)]
        price: i64,
    },
    /// List the menus of one store, or of all.
    #[command(after_help = "Example:\n  ezdelivery menu list --store 1")]
    List {
        /// Only this store's menus.
        #[arg(long, allow_negative_numbers = true, value_parser = store_id)]
        store: Option<i64>,
    },
    /// Mark a menu sold out.
    #[command(after_help = "Example:\n  ezdelivery menu soldout 3")]
    Soldout {
        /// The menu id.
        #[arg(allow_negative_numbers = true, value_parser = menu_id)]
        menu: i64,
    },
    /// Mark a sold-out menu available again.
    #[command(after_help = "Example:\n  ezdelivery menu available 3")]
    Available {
        /// The menu id.
        #[arg(allow_negative_numbers = true, value_parser = menu_id)]
        menu: i64,
    },
}

/// `ezdelivery rider …`
#[derive(Debug, Subcommand)]
pub enum RiderCommand {
    /// Register a rider.
    #[command(after_help = "Example:\n  ezdelivery rider add --name lee")]
    Add {
        /// The rider's name (unique).
        #[arg(long)]
        name: String,
    },
    /// List the riders.
    #[command(after_help = "Example:\n  ezdelivery rider list")]
    List,
}

/// `ezdelivery order …`
#[derive(Debug, Args)]
pub struct OrderArgs {
    /// The store.
    #[arg(long, allow_negative_numbers = true, value_parser = store_id)]
    pub store: i64,
    /// Who orders.
    #[arg(long)]
    pub customer: String,
    /// A menu id or exact name, with an optional quantity: MENU[:QTY]. Repeatable.
    #[arg(long = "item", value_name = "MENU[:QTY]", required = true)]
    pub items: Vec<String>,
    /// Where to deliver.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub address: String,
    /// Pay at once.
    #[arg(long)]
    pub pay: bool,
    /// The card to pay with (with --pay).
    #[arg(long, value_name = "NUMBER", requires = "pay")]
    pub card: Option<String>,
}

/// `ezdelivery cook …`
#[derive(Debug, Subcommand)]
pub enum CookCommand {
    /// The owner accepts a paid order and starts cooking; a delivery is prepared.
    #[command(after_help = "Example:\n  ezdelivery cook start 7")]
    Start {
        /// The order.
        #[arg(allow_negative_numbers = true, value_parser = order_id)]
        order: i64,
    },
    /// The food is cooked.
    #[command(after_help = "Example:\n  ezdelivery cook finish 7")]
    Finish {
        /// The order.
        #[arg(allow_negative_numbers = true, value_parser = order_id)]
        order: i64,
    },
    /// The owner rejects a paid order; the payment is refunded.
    #[command(after_help = "Example:\n  ezdelivery cook reject 7 --reason \"out of chicken\"")]
    Reject {
        /// The order.
        #[arg(allow_negative_numbers = true, value_parser = order_id)]
        order: i64,
        /// Why.
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
    },
}

/// `ezdelivery deliver …`
#[derive(Debug, Subcommand)]
pub enum DeliverCommand {
    /// The rider departs (needs cooked food and a paid delivery charge).
    #[command(after_help = "Example:\n  ezdelivery deliver start 7 --rider lee")]
    Start {
        /// The order.
        #[arg(allow_negative_numbers = true, value_parser = order_id)]
        order: i64,
        /// The rider (id or name); moves the delivery to this rider.
        #[arg(long)]
        rider: Option<String>,
    },
    /// The rider handed the food over.
    #[command(after_help = "Example:\n  ezdelivery deliver complete 7")]
    Complete {
        /// The order.
        #[arg(allow_negative_numbers = true, value_parser = order_id)]
        order: i64,
    },
}

/// `ezdelivery projection …`
#[derive(Debug, Subcommand)]
pub enum ProjectionCommand {
    /// Rebuild the mypage views from the event log.
    #[command(after_help = "Example:\n  ezdelivery projection rebuild")]
    Rebuild,
}

/// `events --format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventFormat {
    /// A table for people.
    Table,
    /// One JSON object per line: seq, id, type, order_id, at, data.
    Json,
    /// One CloudEvents 1.0 JSON object per line.
    Cloudevents,
}
