//! The command line, as clap definitions: SPEC.md's commands and options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A food-delivery ordering engine on one SQLite file.
#[derive(Debug, Parser)]
#[command(name = "ezdelivery", version, long_about = None, propagate_version = true)]
#[command(
    after_help = "Example:\n  ezdelivery demo\n  ezdelivery order --store 1 --customer kim --item 후라이드:2 --pay"
)]
pub struct Cli {
    /// The SQLite file (created with its folder on first use).
    #[arg(long, global = true, env = "EZDELIVERY_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// A TOML file that picks the adapters (see SPEC.md).
    #[arg(long, global = true, env = "EZDELIVERY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Machine output: one JSON object on stdout; errors as JSON on stderr.
    #[arg(long, global = true)]
    pub json: bool,

    /// Quieter: no notifications on the console, no human output on success.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log to stderr: -v each command and gateway call with its duration, -vv every step.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
        order: i64,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Review a delivered order, once.
    #[command(after_help = "Example:\n  ezdelivery review 7 --score 5 --text 맛있어요")]
    Review {
        /// The order.
        order: i64,
        /// 1 to 5.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
        score: u8,
        /// What you thought.
        #[arg(long, default_value = "")]
        text: String,
    },
    /// The mypage view: one order with its timeline, or all of a customer's orders.
    #[command(after_help = "Examples:\n  ezdelivery status 7\n  ezdelivery status --customer kim")]
    Status {
        /// The order.
        #[arg(required_unless_present = "customer", conflicts_with = "customer")]
        order: Option<i64>,
        /// All orders of this customer.
        #[arg(long, value_name = "NAME")]
        customer: Option<String>,
    },
    /// Print the event log, one event per line.
    #[command(after_help = "Example:\n  ezdelivery events --order 7 --format json")]
    Events {
        /// Only this order's events.
        #[arg(long)]
        order: Option<i64>,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0, value_name = "SEQ")]
        after: i64,
        /// Output format (defaults to a table on a terminal, json otherwise).
        #[arg(long, value_enum)]
        format: Option<EventFormat>,
        /// Keep printing new events as they are written, until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// Deliver queued notifications; retry queued payments, refunds and charges.
    #[command(
        after_help = "Examples:\n  ezdelivery relay\n  ezdelivery relay --dead\n  ezdelivery relay --attention\n  \
                      ezdelivery relay --retry-attention"
    )]
    Relay {
        /// List the messages given up on, instead of relaying.
        #[arg(long, conflicts_with_all = ["retry_dead", "attention", "retry_attention"])]
        dead: bool,
        /// Put the messages given up on back in the queue, then relay.
        #[arg(long)]
        retry_dead: bool,
        /// List the payments and delivery charges that need a person (the
        /// gateway may hold money the engine could not settle), instead of relaying.
        #[arg(long, conflicts_with_all = ["retry_dead", "retry_attention"])]
        attention: bool,
        /// Put the payments and charges that need attention back in the
        /// queue (once the gateway is fixed), then relay.
        #[arg(long)]
        retry_attention: bool,
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
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub orders: u64,
    /// How many customers order.
    #[arg(long, value_name = "K", default_value_t = 1_000)]
    pub customers: u64,
    /// How many stores are registered for the run.
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub stores: u64,
    /// How many riders deliver (registered if missing).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub riders: u64,
    /// The share of orders cancelled before departure, 0 to 1.
    #[arg(long, value_name = "R", default_value_t = 0.05)]
    pub cancel_rate: f64,
    /// The share of payment calls that find the gateway down (queued, retried), 0 to 1.
    #[arg(long, value_name = "R", default_value_t = 0.02)]
    pub payment_unavailable_rate: f64,
    /// The seed: the same seed runs the same simulation.
    #[arg(long, value_name = "X", default_value_t = 1)]
    pub seed: u64,
}

/// `ezdelivery breaker …`
#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Show each breaker: state, consecutive failures, when it retries.
    #[command(after_help = "Example:\n  ezdelivery breaker status")]
    Status,
    /// Close a breaker by hand.
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
        #[arg(long, value_name = "WON")]
        delivery_charge: Option<i64>,
    },
    /// List the stores with their review count and average score.
    #[command(after_help = "Example:\n  ezdelivery store list")]
    List,
    /// Open a store: it takes orders.
    #[command(after_help = "Example:\n  ezdelivery store open 1")]
    Open {
        /// The store.
        store: i64,
    },
    /// Close a store: it takes no orders.
    #[command(after_help = "Example:\n  ezdelivery store close 1")]
    Close {
        /// The store.
        store: i64,
    },
    /// The owner's inbox: paid orders waiting, and those in progress.
    #[command(after_help = "Example:\n  ezdelivery store orders 1")]
    Orders {
        /// The store.
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
        #[arg(long)]
        store: i64,
        /// Its name (unique within the store).
        #[arg(long)]
        name: String,
        /// Its price in whole won.
        #[arg(long, allow_negative_numbers = true)]
        price: i64,
    },
    /// List the menus of one store, or of all.
    #[command(after_help = "Example:\n  ezdelivery menu list --store 1")]
    List {
        /// Only this store's menus.
        #[arg(long)]
        store: Option<i64>,
    },
    /// Mark a menu sold out.
    #[command(after_help = "Example:\n  ezdelivery menu soldout 3")]
    Soldout {
        /// The menu id.
        menu: i64,
    },
    /// Mark a sold-out menu available again.
    #[command(after_help = "Example:\n  ezdelivery menu available 3")]
    Available {
        /// The menu id.
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
    #[arg(long)]
    pub store: i64,
    /// Who orders.
    #[arg(long)]
    pub customer: String,
    /// A menu id or exact name, with an optional quantity: MENU[:QTY]. Repeatable.
    #[arg(long = "item", value_name = "MENU[:QTY]", required = true)]
    pub items: Vec<String>,
    /// Where to deliver.
    #[arg(long, default_value = "")]
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
        order: i64,
    },
    /// The food is cooked.
    #[command(after_help = "Example:\n  ezdelivery cook finish 7")]
    Finish {
        /// The order.
        order: i64,
    },
    /// The owner rejects a paid order; the payment is refunded.
    #[command(after_help = "Example:\n  ezdelivery cook reject 7 --reason \"out of chicken\"")]
    Reject {
        /// The order.
        order: i64,
        /// Why.
        #[arg(long, default_value = "")]
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
        order: i64,
        /// The rider (id or name); moves the delivery to this rider.
        #[arg(long)]
        rider: Option<String>,
    },
    /// The rider handed the food over.
    #[command(after_help = "Example:\n  ezdelivery deliver complete 7")]
    Complete {
        /// The order.
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
