//! Model-based property test of the engine (DESIGN.md, "How it is checked").
//!
//! Random sequences of commands run against the real [`Engine`] and against
//! a small reference model side by side. After every step the test checks
//! that the command's result (success, or the kind of error with its exit
//! code) is what the model predicts, that every order's mypage view matches
//! the model, and these invariants:
//!
//! - no order is delivering or delivered unless its food was cooked and its
//!   rider's delivery charge was paid (and not taken back) at the gateway;
//! - every cancelled or rejected order whose payment was approved has its
//!   payment `refund_pending` or `refunded`; once every gateway is up and
//!   `relay` has run, `refunded`, and every charge of it refunded or voided;
//! - the amount the payment gateway was asked for is the sum of the order's
//!   items and the view's total, and the gateway approved each order at most
//!   once;
//! - the read model equals a fresh rebuild from the event log, and each
//!   order's events (read through its view) are the log's of that order.
//!
//! The gateways are scripted: the commands `PaymentDown`, `PaymentUp`,
//! `ChargeDown` and `ChargeUp` switch their availability, the payment
//! gateway declines every card whose masked form ends in `0002`, and both
//! record every call they receive, so the test can check what the engine
//! asked of them.
//!
//! The harness is generic over the storage: [`check_model`] takes a function
//! that starts an [`EngineBuilder`] over a fresh storage. It runs on memory,
//! SQLite and PostgreSQL (the testkit's throwaway server, a database of its
//! own per case; skipped, said so, when there is no server). Cases default
//! to 64 ([`POSTGRES_CASES`] on PostgreSQL); `PROPTEST_CASES` overrides it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestError, TestRunner};

use ezdelivery_core::adapters::sqlite::SqliteStorage;
use ezdelivery_core::app::retry::RetryPolicy;
use ezdelivery_core::domain::{
    BreakerSettings, ChargeStatus, DeliveryStatus, KitchenStatus, MenuId, OrderId, OrderItem, OrderStatus,
    PaymentStatus, Refusal, StoreId, Won,
};
use ezdelivery_core::ports::{
    ChargeGateway, ChargeRequest, GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest,
};
use ezdelivery_core::{Engine, EngineBuilder, Error, ItemPick, NewOrder, OrderView};

/// Steps per generated sequence, at most.
const MAX_STEPS: usize = 40;
/// Cases unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 64;
/// Cases on PostgreSQL unless `PROPTEST_CASES` says otherwise: fewer, since
/// every statement there is a round trip to a server process (a case takes
/// several times as long as on SQLite) and CI runs the whole suite on two
/// cores. Memory and SQLite explore the model with the full count; this
/// holds the PostgreSQL adapter to the same model.
const POSTGRES_CASES: u32 = 24;
/// The read model is compared with a rebuild every this many steps (and on
/// every `Rebuild` command, and at the end).
const REBUILD_EVERY: usize = 3;
/// Retries are due at once, so `relay` retries immediately.
const NO_DELAY: RetryPolicy = RetryPolicy { base_ms: 0, max_ms: 0, max_message_tries: 3, attention_after: 10 };
/// Breakers that open after two failures but let a trial through at once,
/// so that the model need not know the clock (breakers have their own tests).
const BREAKERS_RETRY_AT_ONCE: BreakerSettings = BreakerSettings { failure_threshold: 2, open_ms: 0 };
/// What a store pays its rider per delivery unless it sets another.
const DELIVERY_CHARGE: Won = 3_000;

const CUSTOMERS: [&str; 3] = ["kim", "choi", "jung"];
/// Riders that may be registered; the last one never is.
const RIDERS: [&str; 3] = ["lee", "park", "kang"];

// ---------------------------------------------------------------------------
// Storages the property runs on.
// ---------------------------------------------------------------------------

fn sqlite() -> EngineBuilder {
    Engine::builder(SqliteStorage::open_in_memory().expect("an in-memory SQLite database"))
}

fn memory() -> EngineBuilder {
    Engine::builder(ezdelivery_core::adapters::memory::MemoryStorage::new())
}

#[test]
fn model_on_memory() {
    check_model(DEFAULT_CASES, &memory);
}

#[test]
fn model_on_sqlite() {
    check_model(DEFAULT_CASES, &sqlite);
}

/// Each case runs on a database of its own, so it starts from an empty
/// storage whose ids begin at 1, as on memory and SQLite. The database is
/// a copy of one migrated once (`CREATE DATABASE … TEMPLATE … STRATEGY
/// FILE_COPY`, [`ezdelivery_testkit::postgres::PgServer::database_from`]).
/// Measured on the testkit's server (fsync off), each through `psql`
/// (about 70 ms of it is starting `psql`): creating a database takes about
/// 370 ms with PostgreSQL 15's default strategy, 175 ms as a file copy;
/// opening a copy then skips the migrations (35 ms against 130 ms for
/// `store list` on an empty database); `TRUNCATE` of every table `RESTART
/// IDENTITY` takes about 120 ms. So a copy per case costs about what
/// emptying one database does, a case takes about a second anyway, and a
/// fresh database needs no list of tables kept in step with the schema
/// here and hides nothing a really fresh database would do differently.
/// The previous case's database is dropped once its engine is gone.
#[cfg(unix)]
#[test]
fn model_on_postgres() {
    use ezdelivery_core::adapters::postgres::PostgresStorage;
    use ezdelivery_testkit::postgres::{database_of, server};

    let Some(pg) = server() else { return };
    let template = pg.fresh_database();
    drop(PostgresStorage::open(&template).expect("migrate the template database"));
    let template = database_of(&template).to_string();
    let previous: Mutex<Option<String>> = Mutex::new(None);
    check_model(POSTGRES_CASES, &|| {
        let mut previous = previous.lock().expect("the previous database");
        if let Some(url) = previous.take() {
            pg.drop_database(&url);
        }
        let url = pg.database_from(&template);
        let storage = PostgresStorage::open(&url).expect("open a fresh PostgreSQL database");
        *previous = Some(url);
        Engine::builder(storage)
    });
}

/// Runs the property over engines built on the storage `make` starts,
/// `cases` times unless `PROPTEST_CASES` says otherwise.
fn check_model(cases: u32, make: &dyn Fn() -> EngineBuilder) {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    match runner.run(&scenario(), |sc| Harness::run(make, &sc)) {
        Ok(()) => {}
        Err(TestError::Fail(reason, minimal)) => {
            panic!("the model found a violation.\n{reason}\nminimal input: {minimal:?}")
        }
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------
// Scripted gateways.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct PayCall {
    key: String,
    order: OrderId,
    amount: Won,
    card: Option<String>,
    outcome: GatewayOutcome,
}

#[derive(Debug, Clone)]
struct ChargeCall {
    key: String,
    order: OrderId,
    rider: String,
    amount: Won,
    outcome: GatewayOutcome,
}

#[derive(Debug, Clone)]
struct RefundCall {
    key: String,
    order: OrderId,
    gateway_ref: String,
    amount: Won,
    outcome: GatewayOutcome,
}

/// Both gateways' switches and every call they received.
#[derive(Debug, Default)]
struct Ledger {
    pay_down: bool,
    charge_down: bool,
    approvals: Vec<PayCall>,
    refunds: Vec<RefundCall>,
    charges: Vec<ChargeCall>,
    charge_refunds: Vec<RefundCall>,
}

#[derive(Clone, Default)]
struct Gateways(Arc<Mutex<Ledger>>);

impl Gateways {
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.0.lock().expect("the ledger lock")
    }
}

/// A gateway that is down refuses the connection: it certainly did not act.
/// (Answers that leave it in doubt, such as timeouts, are the fault tests'.)
fn outage() -> GatewayOutcome {
    GatewayOutcome::NotReached { reason: "scripted outage".into() }
}

fn approved(prefix: &str, key: &str) -> GatewayOutcome {
    GatewayOutcome::Approved { gateway_ref: format!("{prefix}:{key}") }
}

fn is_approved(outcome: &GatewayOutcome) -> bool {
    matches!(outcome, GatewayOutcome::Approved { .. })
}

fn gateway_ref(outcome: &GatewayOutcome) -> Option<&str> {
    match outcome {
        GatewayOutcome::Approved { gateway_ref } => Some(gateway_ref),
        _ => None,
    }
}

fn refund_call(r: &RefundRequest, outcome: &GatewayOutcome) -> RefundCall {
    RefundCall {
        key: r.idempotency_key.to_string(),
        order: r.order_id,
        gateway_ref: r.gateway_ref.clone(),
        amount: r.amount,
        outcome: outcome.clone(),
    }
}

struct ScriptedPayment(Gateways);

impl PaymentGateway for ScriptedPayment {
    fn name(&self) -> &str {
        "test"
    }

    fn approve(&self, r: &PaymentRequest) -> GatewayOutcome {
        let mut ledger = self.0.lock();
        let outcome = if ledger.pay_down {
            outage()
        } else if r.card.as_deref().is_some_and(|c| c.ends_with("0002")) {
            GatewayOutcome::Declined { reason: "scripted decline".into() }
        } else {
            approved("pay", &r.idempotency_key)
        };
        ledger.approvals.push(PayCall {
            key: r.idempotency_key.to_string(),
            order: r.order_id,
            amount: r.amount,
            card: r.card.clone(),
            outcome: outcome.clone(),
        });
        outcome
    }

    fn refund(&self, r: &RefundRequest) -> GatewayOutcome {
        let mut ledger = self.0.lock();
        let outcome = if ledger.pay_down { outage() } else { approved("refund", &r.idempotency_key) };
        ledger.refunds.push(refund_call(r, &outcome));
        outcome
    }
}

struct ScriptedCharge(Gateways);

impl ChargeGateway for ScriptedCharge {
    fn name(&self) -> &str {
        "test"
    }

    fn pay(&self, r: &ChargeRequest) -> GatewayOutcome {
        let mut ledger = self.0.lock();
        let outcome = if ledger.charge_down { outage() } else { approved("charge", &r.idempotency_key) };
        ledger.charges.push(ChargeCall {
            key: r.idempotency_key.to_string(),
            order: r.order_id,
            rider: r.rider.clone(),
            amount: r.amount,
            outcome: outcome.clone(),
        });
        outcome
    }

    fn refund(&self, r: &RefundRequest) -> GatewayOutcome {
        let mut ledger = self.0.lock();
        let outcome = if ledger.charge_down { outage() } else { approved("charge-refund", &r.idempotency_key) };
        ledger.charge_refunds.push(refund_call(r, &outcome));
        outcome
    }
}

/// The gateway refs a ledger approved, per order, and which of them were
/// refunded (matched by the refund's `gateway_ref`).
fn net_approved<'a>(
    calls: impl Iterator<Item = (OrderId, &'a GatewayOutcome)>,
    refunds: &[RefundCall],
) -> BTreeMap<OrderId, BTreeSet<String>> {
    let refunded: BTreeSet<&str> =
        refunds.iter().filter(|r| is_approved(&r.outcome)).map(|r| r.gateway_ref.as_str()).collect();
    let mut net: BTreeMap<OrderId, BTreeSet<String>> = BTreeMap::new();
    for (order, outcome) in calls {
        if let Some(r) = gateway_ref(outcome).filter(|r| !refunded.contains(r)) {
            net.entry(order).or_default().insert(r.to_string());
        }
    }
    net
}

// ---------------------------------------------------------------------------
// Commands and their strategies.
// ---------------------------------------------------------------------------

/// The card a payment is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    /// No card given.
    Without,
    /// A card the scripted gateway approves.
    Good,
    /// A card it declines (masked, it ends in `0002`).
    Declined,
    /// Not a card number: the command is invalid (exit 2).
    Malformed,
}

impl Card {
    fn number(self) -> Option<&'static str> {
        match self {
            Card::Without => None,
            Card::Good => Some("4111-1111-1111-1111"),
            Card::Declined => Some("4000000000000002"),
            Card::Malformed => Some("12345"),
        }
    }

    /// As the engine keeps and shows it.
    fn masked(self) -> Option<&'static str> {
        match self {
            Card::Good => Some("************1111"),
            Card::Declined => Some("************0002"),
            Card::Without | Card::Malformed => None,
        }
    }
}

/// How an order names a menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MenuRef {
    /// By its name.
    Name,
    /// By its id.
    Id,
    /// By the id of the other store's menu (or, with one store, a name no
    /// menu has): not found (exit 3).
    Foreign,
}

/// Which order a command is about.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// The newest order.
    Last,
    /// Any order.
    Any(Index),
    /// Any order the model says the command can move on (any order if
    /// none can), so that sequences get far into the lifecycle.
    Fit(Index),
    /// The order at this position (what `Cmd::Advance` resolved to).
    At(usize),
}

#[derive(Debug, Clone)]
enum Cmd {
    /// Place an order of (menu, qty) picks; with `pay`, pay it at once.
    Place {
        store: Index,
        customer: Index,
        items: Vec<(Index, u32, MenuRef)>,
        pay: Option<Card>,
    },
    Pay(Pick, Card),
    CookStart(Pick),
    CookFinish(Pick),
    CookReject(Pick),
    /// Start the delivery, naming `RIDERS[i]` or nobody.
    DeliverStart(Pick, Option<usize>),
    DeliverComplete(Pick),
    Cancel(Pick),
    Review(Pick, u8),
    Relay,
    StoreOpen(Index, bool),
    MenuAvailable(Index, Index, bool),
    AddRider(usize),
    PaymentDown,
    PaymentUp,
    ChargeDown,
    ChargeUp,
    Rebuild,
    /// The next step of an unfinished order's happy path (pay, cook start,
    /// cook finish, deliver start, deliver complete, review), as the model
    /// sees it: gets sequences deep into the lifecycle.
    Advance(Index),
}

/// The stores: each a list of menu prices.
#[derive(Debug, Clone)]
struct World {
    stores: Vec<Vec<Won>>,
}

#[derive(Debug, Clone)]
struct Scenario {
    world: World,
    cmds: Vec<Cmd>,
}

fn card() -> impl Strategy<Value = Card> {
    prop_oneof![
        5 => Just(Card::Good),
        2 => Just(Card::Without),
        2 => Just(Card::Declined),
        1 => Just(Card::Malformed),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        1 => Just(Pick::Last),
        1 => any::<Index>().prop_map(Pick::Any),
        3 => any::<Index>().prop_map(Pick::Fit),
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let menu_ref = prop_oneof![12 => Just(MenuRef::Name), 6 => Just(MenuRef::Id), 1 => Just(MenuRef::Foreign)];
    let items = prop::collection::vec((any::<Index>(), 1u32..=3, menu_ref), 1..=3);
    let pay = prop_oneof![1 => Just(None), 3 => card().prop_map(Some)];
    let place = (any::<Index>(), any::<Index>(), items, pay).prop_map(|(store, customer, items, pay)| Cmd::Place {
        store,
        customer,
        items,
        pay,
    });
    let rider = prop_oneof![2 => Just(None), 3 => (0usize..2).prop_map(Some), 1 => Just(Some(2))];
    let score = prop_oneof![8 => 1u8..=5, 1 => Just(0u8), 1 => Just(6u8)];
    prop_oneof![
        7 => place,
        3 => (pick(), card()).prop_map(|(o, c)| Cmd::Pay(o, c)),
        4 => pick().prop_map(Cmd::CookStart),
        4 => pick().prop_map(Cmd::CookFinish),
        1 => pick().prop_map(Cmd::CookReject),
        4 => (pick(), rider).prop_map(|(o, r)| Cmd::DeliverStart(o, r)),
        3 => pick().prop_map(Cmd::DeliverComplete),
        2 => pick().prop_map(Cmd::Cancel),
        2 => (pick(), score).prop_map(|(o, s)| Cmd::Review(o, s)),
        3 => Just(Cmd::Relay),
        1 => (any::<Index>(), prop::bool::weighted(0.6)).prop_map(|(s, open)| Cmd::StoreOpen(s, open)),
        1 => (any::<Index>(), any::<Index>(), prop::bool::weighted(0.6))
            .prop_map(|(s, m, a)| Cmd::MenuAvailable(s, m, a)),
        2 => (0usize..2).prop_map(Cmd::AddRider),
        1 => Just(Cmd::PaymentDown),
        1 => Just(Cmd::PaymentUp),
        1 => Just(Cmd::ChargeDown),
        1 => Just(Cmd::ChargeUp),
        1 => Just(Cmd::Rebuild),
        8 => any::<Index>().prop_map(Cmd::Advance),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let price = (2i64..=60).prop_map(|k| k * 500);
    let stores = prop::collection::vec(prop::collection::vec(price, 2..=3), 1..=2);
    (stores, prop::collection::vec(cmd(), 1..=MAX_STEPS))
        .prop_map(|(stores, cmds)| Scenario { world: World { stores }, cmds })
}

// ---------------------------------------------------------------------------
// The reference model.
// ---------------------------------------------------------------------------

/// What a command comes to: success, or the kind of error (and, for a
/// refusal, which one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// Exit 2.
    Invalid,
    /// Exit 3.
    NotFound,
    /// Exit 4, with the refusal's variant.
    Refused(&'static str),
    /// Exit 5.
    Declined,
    /// Exit 6.
    Unavailable,
    /// Exit 1.
    Internal,
    /// Exit 7.
    MoneyMoved,
}

impl Outcome {
    fn of<T>(result: &Result<T, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(Error::Invalid(_)) => Outcome::Invalid,
            Err(Error::NotFound { .. }) => Outcome::NotFound,
            Err(Error::Refused(r)) => Outcome::Refused(refusal_name(r)),
            Err(Error::Declined { .. }) => Outcome::Declined,
            Err(Error::Unavailable { .. }) => Outcome::Unavailable,
            Err(Error::Storage(_) | Error::Internal(_)) => Outcome::Internal,
            Err(Error::MoneyMoved { .. }) => Outcome::MoneyMoved,
        }
    }

    /// The library's kind of the error this outcome is.
    fn kind(self) -> &'static str {
        match self {
            Outcome::Ok => "",
            Outcome::Internal => "internal",
            Outcome::Invalid => "invalid_input",
            Outcome::NotFound => "not_found",
            Outcome::Refused(_) => "invalid_state",
            Outcome::Declined => "declined",
            Outcome::Unavailable => "unavailable",
            Outcome::MoneyMoved => "money_moved",
        }
    }

    fn exit_code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::Internal => 1,
            Outcome::Invalid => 2,
            Outcome::NotFound => 3,
            Outcome::Refused(_) => 4,
            Outcome::Declined => 5,
            Outcome::Unavailable => 6,
            Outcome::MoneyMoved => 7,
        }
    }
}

fn refusal_name(r: &Refusal) -> &'static str {
    match r {
        Refusal::StoreClosed { .. } => "StoreClosed",
        Refusal::MenuSoldOut { .. } => "MenuSoldOut",
        Refusal::NotPaid { .. } => "NotPaid",
        Refusal::AlreadyDeparted { .. } => "AlreadyDeparted",
        Refusal::FoodNotCooked { .. } => "FoodNotCooked",
        Refusal::ChargeNotPaid { .. } => "ChargeNotPaid",
        Refusal::NoRider { .. } => "NoRider",
        Refusal::AlreadyReviewed { .. } => "AlreadyReviewed",
        Refusal::Transition { .. } => "Transition",
        Refusal::PaymentInDoubt { .. } => "PaymentInDoubt",
        Refusal::GatewayBusy { .. } => "GatewayBusy",
        Refusal::NeedsAttention { .. } => "NeedsAttention",
        Refusal::OtherGateway { .. } => "OtherGateway",
    }
}

#[derive(Debug, Clone)]
struct MMenu {
    id: MenuId,
    name: String,
    price: Won,
    available: bool,
}

#[derive(Debug, Clone)]
struct MStore {
    id: StoreId,
    open: bool,
    menus: Vec<MMenu>,
    review_count: i64,
    review_sum: i64,
}

/// The order's latest payment.
#[derive(Debug, Clone, Copy)]
struct MPayment {
    status: PaymentStatus,
    /// Whether its card is one the gateway declines.
    declines: bool,
    /// The card it was made with.
    card: Card,
}

#[derive(Debug, Clone, Copy)]
struct MCharge {
    /// Index into `Model::riders`' names (`RIDERS`).
    rider: usize,
    status: ChargeStatus,
}

#[derive(Debug, Clone)]
struct MDelivery {
    rider: Option<usize>,
    status: DeliveryStatus,
    /// Every charge of the order, oldest first.
    charges: Vec<MCharge>,
    /// The charge the view shows (the one prepared or assigned last).
    shown: Option<usize>,
}

#[derive(Debug, Clone)]
struct MOrder {
    /// Known once the engine has placed it.
    id: OrderId,
    customer: &'static str,
    store: usize,
    items: Vec<OrderItem>,
    total: Won,
    status: OrderStatus,
    payment: Option<MPayment>,
    kitchen: Option<KitchenStatus>,
    delivery: Option<MDelivery>,
    review: Option<u8>,
}

impl MOrder {
    /// Calls the payment gateway for the pending payment.
    fn settle_payment(&mut self, pay_down: bool) -> Outcome {
        let payment = self.payment.as_mut().expect("a payment to settle");
        if pay_down {
            Outcome::Unavailable
        } else if payment.declines {
            payment.status = PaymentStatus::Declined;
            Outcome::Declined
        } else {
            payment.status = PaymentStatus::Approved;
            self.status = OrderStatus::Paid;
            self.kitchen = Some(KitchenStatus::Received);
            Outcome::Ok
        }
    }

    /// Asks the gateways for every refund the order waits for.
    fn settle_refunds(&mut self, pay_down: bool, charge_down: bool) {
        if let Some(p) = self.payment.as_mut().filter(|p| p.status == PaymentStatus::RefundPending && !pay_down) {
            p.status = PaymentStatus::Refunded;
        }
        if let Some(d) = self.delivery.as_mut() {
            for c in d.charges.iter_mut().filter(|c| c.status == ChargeStatus::RefundPending && !charge_down) {
                c.status = ChargeStatus::Refunded;
            }
        }
    }

    fn depart(&mut self) {
        self.status = OrderStatus::Delivering;
        self.delivery.as_mut().expect("a delivery").status = DeliveryStatus::Delivering;
    }

    /// The refusal of a move the order's status does not allow.
    fn refusal(&self) -> Outcome {
        // Every kitchen or delivery move on an unpaid order says "pay it first".
        if self.status == OrderStatus::PendingPayment {
            Outcome::Refused("NotPaid")
        } else {
            Outcome::Refused("Transition")
        }
    }
}

fn withdraw_charges(d: &mut MDelivery) {
    for c in &mut d.charges {
        c.status = match c.status {
            ChargeStatus::Pending => ChargeStatus::Voided,
            ChargeStatus::Paid => ChargeStatus::RefundPending,
            other => other,
        };
    }
}

#[derive(Debug, Clone, Default)]
struct Model {
    stores: Vec<MStore>,
    /// Registered riders, in the order (and so the id order) they were added:
    /// indices into `RIDERS`.
    riders: Vec<usize>,
    pay_down: bool,
    charge_down: bool,
    orders: Vec<MOrder>,
}

impl Model {
    /// Places an order of (menu, qty) picks; `None` is a menu the store does not have.
    fn place(
        &mut self,
        store: usize,
        customer: &'static str,
        picks: &[(Option<usize>, u32)],
        pay: Option<Card>,
    ) -> Outcome {
        if pay == Some(Card::Malformed) {
            return Outcome::Invalid;
        }
        if picks.iter().any(|(m, _)| m.is_none()) {
            return Outcome::NotFound;
        }
        let s = &self.stores[store];
        let mut items: Vec<OrderItem> = Vec::new();
        for &(m, qty) in picks {
            let Some(m) = m else { continue };
            let menu = &s.menus[m];
            if !menu.available {
                return Outcome::Refused("MenuSoldOut");
            }
            match items.iter_mut().find(|i| i.menu_id == menu.id) {
                Some(line) => line.qty += qty,
                None => items.push(OrderItem {
                    menu_id: menu.id,
                    name: menu.name.as_str().into(),
                    unit_price: menu.price,
                    qty,
                }),
            }
        }
        if !s.open {
            return Outcome::Refused("StoreClosed");
        }
        let total = items.iter().map(|i| i.unit_price * Won::from(i.qty)).sum();
        let mut order = MOrder {
            id: 0,
            customer,
            store,
            items,
            total,
            status: OrderStatus::PendingPayment,
            payment: None,
            kitchen: None,
            delivery: None,
            review: None,
        };
        let outcome = match pay {
            Some(card) => {
                order.payment =
                    Some(MPayment { status: PaymentStatus::Pending, declines: card == Card::Declined, card });
                order.settle_payment(self.pay_down)
            }
            None => Outcome::Ok,
        };
        self.orders.push(order);
        outcome
    }

    fn pay(&mut self, o: usize, card: Card) -> Outcome {
        if card == Card::Malformed {
            return Outcome::Invalid;
        }
        let pay_down = self.pay_down;
        let order = &mut self.orders[o];
        if order.status != OrderStatus::PendingPayment {
            return Outcome::Refused("Transition");
        }
        // A payment still waiting for the gateway is retried, card and all,
        // unless another card is given: the model's outages refuse the
        // connection, so a queued payment never reached the gateway and
        // gives way to a new one.
        let retried = order
            .payment
            .is_some_and(|p| p.status == PaymentStatus::Pending && (card == Card::Without || card == p.card));
        if !retried {
            order.payment = Some(MPayment { status: PaymentStatus::Pending, declines: card == Card::Declined, card });
        }
        order.settle_payment(pay_down)
    }

    /// The rider with the fewest preparing or delivering deliveries, the
    /// first registered among equals.
    fn least_busy_rider(&self) -> Option<usize> {
        self.riders.iter().copied().min_by_key(|&r| {
            self.orders
                .iter()
                .filter_map(|o| o.delivery.as_ref())
                .filter(|d| {
                    d.rider == Some(r) && matches!(d.status, DeliveryStatus::Preparing | DeliveryStatus::Delivering)
                })
                .count()
        })
    }

    fn cook_start(&mut self, o: usize) -> Outcome {
        if self.orders[o].status != OrderStatus::Paid {
            return self.orders[o].refusal();
        }
        let rider = self.least_busy_rider();
        let charge_down = self.charge_down;
        let order = &mut self.orders[o];
        order.status = OrderStatus::Cooking;
        order.kitchen = Some(KitchenStatus::Cooking);
        let charges: Vec<MCharge> = rider
            .map(|rider| MCharge {
                rider,
                status: if charge_down { ChargeStatus::Pending } else { ChargeStatus::Paid },
            })
            .into_iter()
            .collect();
        let shown = (!charges.is_empty()).then_some(0);
        order.delivery = Some(MDelivery { rider, status: DeliveryStatus::Preparing, charges, shown });
        Outcome::Ok
    }

    fn cook_finish(&mut self, o: usize) -> Outcome {
        let order = &mut self.orders[o];
        if order.status != OrderStatus::Cooking {
            return order.refusal();
        }
        order.status = OrderStatus::Cooked;
        order.kitchen = Some(KitchenStatus::Cooked);
        Outcome::Ok
    }

    fn reject(&mut self, o: usize) -> Outcome {
        let (pay_down, charge_down) = (self.pay_down, self.charge_down);
        let order = &mut self.orders[o];
        if order.status != OrderStatus::Paid {
            return order.refusal();
        }
        order.status = OrderStatus::Rejected;
        order.kitchen = Some(KitchenStatus::Rejected);
        if let Some(p) = order.payment.as_mut().filter(|p| p.status == PaymentStatus::Approved) {
            p.status = PaymentStatus::RefundPending;
        }
        order.settle_refunds(pay_down, charge_down);
        Outcome::Ok
    }

    fn deliver_start(&mut self, o: usize, named: Option<usize>) -> Outcome {
        let (pay_down, charge_down) = (self.pay_down, self.charge_down);
        match self.orders[o].status {
            OrderStatus::Cooking => return Outcome::Refused("FoodNotCooked"),
            OrderStatus::Cooked => {}
            OrderStatus::PendingPayment => return Outcome::Refused("NotPaid"),
            _ => return Outcome::Refused("Transition"),
        }
        if named.is_some_and(|r| !self.riders.contains(&r)) {
            return Outcome::NotFound;
        }
        let order = &mut self.orders[o];
        let d = order.delivery.as_mut().expect("a cooked order has a delivery");
        if let Some(r) = named.filter(|&r| d.rider != Some(r)) {
            withdraw_charges(d);
            d.charges.push(MCharge { rider: r, status: ChargeStatus::Pending });
            d.shown = Some(d.charges.len() - 1);
            d.rider = Some(r);
        }
        let Some(rider) = d.rider else {
            return Outcome::Refused("NoRider");
        };
        let live = d
            .charges
            .iter()
            .rposition(|c| c.rider == rider && matches!(c.status, ChargeStatus::Pending | ChargeStatus::Paid));
        let live = match live {
            Some(i) if d.charges[i].status == ChargeStatus::Paid => {
                order.depart();
                None
            }
            Some(i) => Some(i),
            None => {
                d.charges.push(MCharge { rider, status: ChargeStatus::Pending });
                Some(d.charges.len() - 1)
            }
        };
        order.settle_refunds(pay_down, charge_down);
        let Some(live) = live else { return Outcome::Ok };
        if charge_down {
            return Outcome::Unavailable;
        }
        order.delivery.as_mut().expect("a delivery").charges[live].status = ChargeStatus::Paid;
        order.depart();
        Outcome::Ok
    }

    fn deliver_complete(&mut self, o: usize) -> Outcome {
        let order = &mut self.orders[o];
        if order.status != OrderStatus::Delivering {
            return order.refusal();
        }
        order.status = OrderStatus::Delivered;
        order.delivery.as_mut().expect("a delivery").status = DeliveryStatus::Delivered;
        Outcome::Ok
    }

    fn cancel(&mut self, o: usize) -> Outcome {
        let (pay_down, charge_down) = (self.pay_down, self.charge_down);
        let order = &mut self.orders[o];
        match order.status {
            OrderStatus::Delivering | OrderStatus::Delivered => return Outcome::Refused("AlreadyDeparted"),
            OrderStatus::Cancelled | OrderStatus::Rejected => return Outcome::Refused("Transition"),
            _ => {}
        }
        order.status = OrderStatus::Cancelled;
        if let Some(p) = order.payment.as_mut() {
            p.status = match p.status {
                PaymentStatus::Pending => PaymentStatus::Voided,
                PaymentStatus::Approved => PaymentStatus::RefundPending,
                other => other,
            };
        }
        if let Some(k) = order.kitchen.as_mut() {
            *k = KitchenStatus::Cancelled;
        }
        if let Some(d) = order.delivery.as_mut() {
            d.status = DeliveryStatus::Cancelled;
            withdraw_charges(d);
        }
        order.settle_refunds(pay_down, charge_down);
        Outcome::Ok
    }

    fn review(&mut self, o: usize, score: u8) -> Outcome {
        if !(1..=5).contains(&score) {
            return Outcome::Invalid;
        }
        let order = &mut self.orders[o];
        if order.status != OrderStatus::Delivered {
            return Outcome::Refused("Transition");
        }
        if order.review.is_some() {
            return Outcome::Refused("AlreadyReviewed");
        }
        order.review = Some(score);
        let store = &mut self.stores[order.store];
        store.review_count += 1;
        store.review_sum += i64::from(score);
        Outcome::Ok
    }

    fn relay(&mut self) -> Outcome {
        let (pay_down, charge_down) = (self.pay_down, self.charge_down);
        for order in &mut self.orders {
            match order.payment.map(|p| p.status) {
                Some(PaymentStatus::Pending) => {
                    order.settle_payment(pay_down);
                }
                Some(PaymentStatus::RefundPending) if !pay_down => {
                    order.settle_refunds(pay_down, true);
                }
                _ => {}
            }
        }
        for order in &mut self.orders {
            if let Some(d) = order.delivery.as_mut().filter(|_| !charge_down) {
                for c in &mut d.charges {
                    c.status = match c.status {
                        ChargeStatus::Pending => ChargeStatus::Paid,
                        ChargeStatus::RefundPending => ChargeStatus::Refunded,
                        other => other,
                    };
                }
            }
        }
        Outcome::Ok
    }

    fn add_rider(&mut self, r: usize) -> Outcome {
        if self.riders.contains(&r) {
            return Outcome::Invalid;
        }
        self.riders.push(r);
        Outcome::Ok
    }

    /// The view the model expects for order `o` (its `store` name, times and
    /// timeline are copied from the engine's view, `actual`).
    fn expected_view(&self, o: usize, actual: &OrderView) -> serde_json::Value {
        let order = &self.orders[o];
        let payment = order
            .payment
            .map(|p| serde_json::json!({ "status": p.status, "amount": order.total, "card": p.card.masked() }));
        let delivery = order.delivery.as_ref().map(|d| {
            serde_json::json!({
                "status": d.status,
                "rider": d.rider.map(|r| RIDERS[r]),
                "charge": d.shown.map(|i| serde_json::json!({ "status": d.charges[i].status, "amount": DELIVERY_CHARGE })),
            })
        });
        serde_json::json!({
            "order_id": order.id,
            "store_id": self.stores[order.store].id,
            "customer": order.customer,
            "status": order.status,
            "items": order.items,
            "total": order.total,
            "payment": payment,
            "kitchen": order.kitchen.map(|k| serde_json::json!({ "status": k })),
            "delivery": delivery,
            "review": order.review.map(|s| serde_json::json!({ "score": s, "text": review_text(s) })),
            "store": actual.store,
            "address": "",
            // The reasons the harness gives.
            "reason": match order.status {
                OrderStatus::Cancelled => Some("changed my mind"),
                OrderStatus::Rejected => Some("out of rice"),
                _ => None,
            },
        })
    }
}

fn review_text(score: u8) -> String {
    format!("{score} stars")
}

/// The top-level fields where two views differ, one line each.
fn diff(engine: &serde_json::Value, model: &serde_json::Value) -> String {
    let null = serde_json::Value::Null;
    let (Some(a), Some(b)) = (engine.as_object(), model.as_object()) else {
        return format!("\n  engine: {engine}\n  model:  {model}");
    };
    let mut out = String::new();
    for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        let (x, y) = (a.get(key).unwrap_or(&null), b.get(key).unwrap_or(&null));
        if x != y {
            out.push_str(&format!("\n  {key}: engine {x} / model {y}"));
        }
    }
    out
}

/// The part of a view the model predicts: everything but times, timeline,
/// and the ids of payments and charges.
fn comparable(view: &OrderView) -> serde_json::Value {
    let mut v = serde_json::to_value(view).expect("a view serializes");
    let obj = v.as_object_mut().expect("a view is an object");
    for key in ["placed_at", "updated_at", "timeline"] {
        obj.remove(key);
    }
    if let Some(p) = obj.get_mut("payment").and_then(|p| p.as_object_mut()) {
        p.remove("id");
    }
    if let Some(c) = obj.get_mut("delivery").and_then(|d| d.get_mut("charge")).and_then(|c| c.as_object_mut()) {
        c.remove("id");
    }
    v
}

// ---------------------------------------------------------------------------
// The harness: runs a scenario on the engine and the model side by side.
// ---------------------------------------------------------------------------

struct Harness {
    engine: Engine,
    gateways: Gateways,
    model: Model,
    trace: Vec<String>,
}

/// Fails the case with a message and the steps so far.
macro_rules! ensure {
    ($h:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($h.fail(format!($($fmt)+)));
        }
    };
}

/// The value of an engine call that must succeed, or a failed case.
macro_rules! engine {
    ($h:expr, $what:expr, $call:expr) => {
        match $call {
            Ok(value) => value,
            Err(e) => return Err($h.fail(format!("{} failed: {e} ({})", $what, e.kind()))),
        }
    };
}

impl Harness {
    fn run(make: &dyn Fn() -> EngineBuilder, sc: &Scenario) -> Result<(), TestCaseError> {
        let gateways = Gateways::default();
        let engine = make()
            .payment(ScriptedPayment(gateways.clone()))
            .charge(ScriptedCharge(gateways.clone()))
            .retry(NO_DELAY)
            .breakers(BREAKERS_RETRY_AT_ONCE)
            .build();
        let mut h = Harness { engine, gateways, model: Model::default(), trace: Vec::new() };
        h.setup(&sc.world)?;
        for (n, cmd) in sc.cmds.iter().enumerate() {
            let rebuilt = h.step(cmd)?;
            h.check()?;
            if !rebuilt && (n + 1) % REBUILD_EVERY == 0 {
                h.check_rebuild()?;
            }
        }
        h.finish()
    }

    fn fail(&self, message: String) -> TestCaseError {
        let mut steps = String::new();
        for (i, line) in self.trace.iter().enumerate() {
            steps.push_str(&format!("\n  {:>2}. {line}", i + 1));
        }
        TestCaseError::fail(format!("{message}\nsteps:{steps}"))
    }

    fn setup(&mut self, world: &World) -> Result<(), TestCaseError> {
        for (s, prices) in world.stores.iter().enumerate() {
            let name = format!("store{s}");
            let store = engine!(self, "add_store", self.engine.add_store(&name, Some(&format!("owner{s}")), None));
            let mut menus = Vec::new();
            for (m, &price) in prices.iter().enumerate() {
                let menu_name = format!("s{s}m{m}");
                let menu = engine!(self, "add_menu", self.engine.add_menu(store.id, &menu_name, price));
                menus.push(MMenu { id: menu.id, name: menu_name, price, available: true });
            }
            let listed: Vec<String> =
                menus.iter().map(|m| format!("{} (id {}) {} won", m.name, m.id, m.price)).collect();
            self.trace.push(format!("store {} `{name}`: {}", store.id, listed.join(", ")));
            self.model.stores.push(MStore { id: store.id, open: true, menus, review_count: 0, review_sum: 0 });
        }
        Ok(())
    }

    /// The order `pick` stands for, among those `fits` if it asks so.
    fn pick(&self, pick: Pick, fits: impl Fn(&MOrder) -> bool) -> Option<usize> {
        let n = self.model.orders.len();
        match pick {
            _ if n == 0 => None,
            Pick::Last => Some(n - 1),
            Pick::Any(i) => Some(i.index(n)),
            Pick::At(o) => Some(o),
            Pick::Fit(i) => {
                let fit: Vec<usize> = (0..n).filter(|&o| fits(&self.model.orders[o])).collect();
                Some(if fit.is_empty() { i.index(n) } else { fit[i.index(fit.len())] })
            }
        }
    }

    /// Records a step and checks that its outcome is the expected one.
    fn expect<T>(&mut self, what: String, expected: Outcome, result: &Result<T, Error>) -> Result<(), TestCaseError> {
        let actual = Outcome::of(result);
        let error = result.as_ref().err().map(|e| format!(": {e}")).unwrap_or_default();
        if let Err(e) = result {
            ensure!(self, e.kind().as_str() == actual.kind(), "{what}: `{e}` is of kind {}", e.kind());
        }
        self.trace.push(format!("{what} -> {actual:?} (exit {}){error}", actual.exit_code()));
        ensure!(
            self,
            actual == expected,
            "{what}: expected {expected:?} (exit {}), got {actual:?}",
            expected.exit_code()
        );
        Ok(())
    }

    /// Runs one command on both sides. Returns whether it rebuilt the read model.
    fn step(&mut self, cmd: &Cmd) -> Result<bool, TestCaseError> {
        match *cmd {
            Cmd::Place { store, customer, ref items, pay } => {
                let s = store.index(self.model.stores.len());
                let customer = CUSTOMERS[customer.index(CUSTOMERS.len())];
                let st = &self.model.stores[s];
                let mut picks: Vec<(Option<usize>, u32)> = Vec::new();
                let mut item_picks: Vec<ItemPick> = Vec::new();
                for &(m, qty, by) in items {
                    let m = m.index(st.menus.len());
                    let (pick, text) = match by {
                        MenuRef::Name => (Some(m), st.menus[m].name.clone()),
                        MenuRef::Id => (Some(m), st.menus[m].id.to_string()),
                        MenuRef::Foreign if self.model.stores.len() > 1 => {
                            let other = &self.model.stores[1 - s].menus;
                            (None, other[m % other.len()].id.to_string())
                        }
                        MenuRef::Foreign => (None, "s9m9".to_string()),
                    };
                    picks.push((pick, qty));
                    item_picks.push(ItemPick::new(text, qty));
                }
                let store_id = st.id;
                let before = self.model.orders.len();
                let expected = self.model.place(s, customer, &picks, pay);
                let card = pay.and_then(Card::number);
                let result = self.engine.place_order(match pay {
                    Some(_) => NewOrder::new(store_id, customer, &item_picks).pay_now(card),
                    None => NewOrder::new(store_id, customer, &item_picks),
                });
                let names: Vec<String> = item_picks.iter().map(|p| format!("{}:{}", p.menu, p.qty)).collect();
                let what = format!("place store {store_id} {customer} [{}] pay={pay:?}", names.join(" "));
                self.expect(what, expected, &result)?;
                if self.model.orders.len() > before {
                    let id = self.discover_order(customer)?;
                    if let Some(last) = self.trace.last_mut() {
                        last.push_str(&format!(" [order {id}]"));
                    }
                    match &result {
                        Ok(view) => {
                            ensure!(self, view.order_id == id, "place returned order {} for {id}", view.order_id)
                        }
                        Err(Error::Declined { order, .. }) => {
                            ensure!(self, *order == id, "the decline names order {order}, not {id}")
                        }
                        Err(_) => {}
                    }
                }
            }
            Cmd::Pay(o, card) => {
                let Some(o) = self.pick(o, |o| o.status == OrderStatus::PendingPayment) else { return Ok(false) };
                let id = self.model.orders[o].id;
                let expected = self.model.pay(o, card);
                let result = self.engine.pay(id, card.number());
                self.expect(format!("pay {id} card={card:?}"), expected, &result)?;
            }
            Cmd::CookStart(o) => {
                let Some(o) = self.pick(o, |o| o.status == OrderStatus::Paid) else { return Ok(false) };
                let id = self.model.orders[o].id;
                let expected = self.model.cook_start(o);
                let result = self.engine.start_cooking(id);
                self.expect(format!("cook start {id}"), expected, &result)?;
            }
            Cmd::CookFinish(o) => {
                let Some(o) = self.pick(o, |o| o.status == OrderStatus::Cooking) else { return Ok(false) };
                let id = self.model.orders[o].id;
                let expected = self.model.cook_finish(o);
                let result = self.engine.finish_cooking(id);
                self.expect(format!("cook finish {id}"), expected, &result)?;
            }
            Cmd::CookReject(o) => {
                let Some(o) = self.pick(o, |o| o.status == OrderStatus::Paid) else { return Ok(false) };
                let id = self.model.orders[o].id;
                let expected = self.model.reject(o);
                let result = self.engine.reject(id, "out of rice");
                self.expect(format!("cook reject {id}"), expected, &result)?;
            }
            Cmd::DeliverStart(o, rider) => {
                let Some(o) = self.pick(o, |o| o.status == OrderStatus::Cooked) else { return Ok(false) };
                let id = self.model.orders[o].id;
                let expected = self.model.deliver_start(o, rider);
                let name = rider.map(|r| RIDERS[r]);
                let result = self.engine.start_delivery(id, name);
                self.expect(format!("deliver start {id} rider={name:?}"), expected, &result)?;
                if let Ok(view) = &result {
                    // At the moment of departure: cooked food, a paid charge.
                    let kitchen = view.kitchen.as_ref().map(|k| k.status);
                    let charge = view.delivery.as_ref().and_then(|d| d.charge.as_ref()).map(|c| c.status);
                    ensure!(
                        self,
                        view.status == OrderStatus::Delivering
                            && kitchen == Some(KitchenStatus::Cooked)
                            && charge == Some(ChargeStatus::Paid),
                        "order {id} departed as {} with kitchen {kitchen:?} and charge {charge:?}",
                        view.status
                    );
                }
            }
            Cmd::DeliverComplete(o) => {
                let Some(o) = self.pick(o, |o| o.status == OrderStatus::Delivering) else { return Ok(false) };
                let id = self.model.orders[o].id;
                let expected = self.model.deliver_complete(o);
                let result = self.engine.complete_delivery(id);
                self.expect(format!("deliver complete {id}"), expected, &result)?;
            }
            Cmd::Cancel(o) => {
                let Some(o) = self.pick(o, |o| !o.status.is_final() && o.status != OrderStatus::Delivering) else {
                    return Ok(false);
                };
                let id = self.model.orders[o].id;
                let expected = self.model.cancel(o);
                let result = self.engine.cancel(id, "changed my mind");
                self.expect(format!("cancel {id}"), expected, &result)?;
            }
            Cmd::Review(o, score) => {
                let Some(o) = self.pick(o, |o| o.status == OrderStatus::Delivered && o.review.is_none()) else {
                    return Ok(false);
                };
                let id = self.model.orders[o].id;
                let expected = self.model.review(o, score);
                let result = self.engine.review(id, score, &review_text(score));
                self.expect(format!("review {id} score={score}"), expected, &result)?;
            }
            Cmd::Relay => {
                let expected = self.model.relay();
                let result = self.engine.relay();
                let report = result.as_ref().map(|r| format!(" {r:?}")).unwrap_or_default();
                self.expect(format!("relay{report}"), expected, &result)?;
            }
            Cmd::StoreOpen(s, open) => {
                let s = s.index(self.model.stores.len());
                let id = self.model.stores[s].id;
                self.model.stores[s].open = open;
                let result = self.engine.set_store_open(id, open);
                self.expect(format!("store {} {id}", if open { "open" } else { "close" }), Outcome::Ok, &result)?;
            }
            Cmd::MenuAvailable(s, m, available) => {
                let s = s.index(self.model.stores.len());
                let menus = &mut self.model.stores[s].menus;
                let m = m.index(menus.len());
                let menu = &mut menus[m];
                menu.available = available;
                let id = menu.id;
                let result = self.engine.set_menu_available(id, available);
                let what = format!("menu {} {id}", if available { "available" } else { "soldout" });
                self.expect(what, Outcome::Ok, &result)?;
            }
            Cmd::AddRider(r) => {
                let expected = self.model.add_rider(r);
                let result = self.engine.add_rider(RIDERS[r]);
                self.expect(format!("rider add {}", RIDERS[r]), expected, &result)?;
            }
            Cmd::PaymentDown | Cmd::PaymentUp => {
                let down = matches!(cmd, Cmd::PaymentDown);
                self.model.pay_down = down;
                self.gateways.lock().pay_down = down;
                self.trace.push(format!("payment gateway {}", if down { "down" } else { "up" }));
            }
            Cmd::ChargeDown | Cmd::ChargeUp => {
                let down = matches!(cmd, Cmd::ChargeDown);
                self.model.charge_down = down;
                self.gateways.lock().charge_down = down;
                self.trace.push(format!("charge gateway {}", if down { "down" } else { "up" }));
            }
            Cmd::Rebuild => {
                self.trace.push("projection rebuild".into());
                self.check_rebuild()?;
                return Ok(true);
            }
            Cmd::Advance(i) => {
                let next: Vec<(usize, Cmd)> =
                    (0..self.model.orders.len()).filter_map(|o| self.next_step(o).map(|c| (o, c))).collect();
                if next.is_empty() {
                    return Ok(false);
                }
                let (_, cmd) = &next[i.index(next.len())];
                return self.step(cmd);
            }
        }
        Ok(false)
    }

    /// The next command of order `o`'s happy path, if it has one.
    fn next_step(&self, o: usize) -> Option<Cmd> {
        let order = &self.model.orders[o];
        let at = Pick::At(o);
        Some(match order.status {
            OrderStatus::PendingPayment => Cmd::Pay(at, Card::Good),
            OrderStatus::Paid => Cmd::CookStart(at),
            OrderStatus::Cooking => Cmd::CookFinish(at),
            OrderStatus::Cooked => {
                let rider = order.delivery.as_ref().and_then(|d| d.rider);
                Cmd::DeliverStart(at, if rider.is_some() { None } else { self.model.riders.first().copied() })
            }
            OrderStatus::Delivering => Cmd::DeliverComplete(at),
            OrderStatus::Delivered if order.review.is_none() => Cmd::Review(at, 4),
            _ => return None,
        })
    }

    /// The id of the order the engine just placed for `customer`: the one
    /// view of theirs the model does not know yet.
    fn discover_order(&mut self, customer: &str) -> Result<OrderId, TestCaseError> {
        let views = engine!(self, "customer_orders", self.engine.customer_orders(customer));
        let known: BTreeSet<OrderId> = self.model.orders.iter().map(|o| o.id).collect();
        let new: Vec<OrderId> = views.iter().map(|v| v.order_id).filter(|id| !known.contains(id)).collect();
        ensure!(self, new.len() == 1, "expected one new order of {customer} in the read model, found {new:?}");
        self.model.orders.last_mut().expect("the order the model placed").id = new[0];
        Ok(new[0])
    }

    /// Everything that must hold after every step.
    fn check(&mut self) -> Result<(), TestCaseError> {
        self.check_views()?;
        self.check_lists()?;
        self.check_ledger()?;
        Ok(())
    }

    /// Every order's view is what the model expects, and the invariants
    /// that can be read from views hold.
    fn check_views(&mut self) -> Result<(), TestCaseError> {
        for o in 0..self.model.orders.len() {
            let id = self.model.orders[o].id;
            let view = engine!(self, "status", self.engine.status(id));
            let expected = self.model.expected_view(o, &view);
            let actual = comparable(&view);
            ensure!(self, actual == expected, "the view of order {id} is not the model's:{}", diff(&actual, &expected));
            let total: Won = view.items.iter().map(|i| i.unit_price * Won::from(i.qty)).sum();
            ensure!(self, view.total == total, "order {id}: total {} is not the sum of its items {total}", view.total);
            if matches!(view.status, OrderStatus::Delivering | OrderStatus::Delivered) {
                let kitchen = view.kitchen.as_ref().map(|k| k.status);
                let charge = view.delivery.as_ref().and_then(|d| d.charge.as_ref()).map(|c| c.status);
                ensure!(
                    self,
                    kitchen == Some(KitchenStatus::Cooked) && charge == Some(ChargeStatus::Paid),
                    "order {id} is {} with kitchen {kitchen:?} and charge {charge:?}",
                    view.status
                );
            }
            if matches!(view.status, OrderStatus::Cancelled | OrderStatus::Rejected) {
                let approved = self.gateways.lock().approvals.iter().any(|c| c.order == id && is_approved(&c.outcome));
                let payment = view.payment.as_ref().map(|p| p.status);
                ensure!(
                    self,
                    !approved || matches!(payment, Some(PaymentStatus::Refunded | PaymentStatus::RefundPending)),
                    "order {id} is {} and its payment was approved, but the payment is {payment:?}",
                    view.status
                );
            }
        }
        Ok(())
    }

    /// The customers' lists, the stores' inboxes and review counts.
    fn check_lists(&mut self) -> Result<(), TestCaseError> {
        for customer in CUSTOMERS {
            let views = engine!(self, "customer_orders", self.engine.customer_orders(customer));
            let ids: Vec<OrderId> = views.iter().map(|v| v.order_id).collect();
            let mut expected: Vec<OrderId> =
                self.model.orders.iter().filter(|o| o.customer == customer).map(|o| o.id).collect();
            expected.sort_unstable();
            ensure!(self, ids == expected, "{customer}'s orders are {ids:?}, the model has {expected:?}");
        }
        for s in 0..self.model.stores.len() {
            let id = self.model.stores[s].id;
            let inbox: Vec<OrderId> =
                engine!(self, "store_inbox", self.engine.store_inbox(id)).iter().map(|v| v.order_id).collect();
            let mut expected: Vec<OrderId> =
                self.model.orders.iter().filter(|o| o.store == s && o.status.in_store_inbox()).map(|o| o.id).collect();
            expected.sort_unstable();
            let mut sorted = inbox.clone();
            sorted.sort_unstable();
            ensure!(self, sorted == expected, "store {id}'s inbox is {inbox:?}, the model has {expected:?}");
        }
        let stores = engine!(self, "stores", self.engine.stores());
        for m in &self.model.stores {
            let found = stores.iter().find(|s| s.id == m.id);
            let reviews = found.map(|s| (s.review_count, s.review_sum));
            ensure!(
                self,
                reviews == Some((m.review_count, m.review_sum)),
                "store {}: reviews (count, sum) {reviews:?}, the model has {:?}",
                m.id,
                (m.review_count, m.review_sum)
            );
        }
        Ok(())
    }

    /// What the gateways received agrees with the orders.
    fn check_ledger(&self) -> Result<(), TestCaseError> {
        let ledger = self.gateways.lock();
        let orders: BTreeMap<OrderId, &MOrder> = self.model.orders.iter().map(|o| (o.id, o)).collect();
        let registered: Vec<&str> = self.model.riders.iter().map(|&r| RIDERS[r]).collect();
        let mut approved_keys: BTreeMap<OrderId, BTreeSet<&str>> = BTreeMap::new();
        let mut requests: BTreeMap<&str, (OrderId, Won, Option<&str>)> = BTreeMap::new();
        for call in &ledger.approvals {
            let Some(order) = orders.get(&call.order) else {
                return Err(self.fail(format!("the payment gateway was asked to approve unknown order {}", call.order)));
            };
            ensure!(
                self,
                call.amount == order.total,
                "the payment gateway was asked for {} for order {}, whose items sum to {}",
                call.amount,
                call.order,
                order.total
            );
            let request = (call.order, call.amount, call.card.as_deref());
            let first = *requests.entry(call.key.as_str()).or_insert(request);
            ensure!(
                self,
                first == request,
                "key {} was retried with another request: {first:?} then {request:?}",
                call.key
            );
            if is_approved(&call.outcome) {
                approved_keys.entry(call.order).or_default().insert(call.key.as_str());
            }
        }
        for (order, keys) in &approved_keys {
            ensure!(
                self,
                keys.len() <= 1,
                "the payment gateway approved order {order} under {} keys: {keys:?}",
                keys.len()
            );
        }
        let pay_refs: BTreeMap<String, (OrderId, Won)> = ledger
            .approvals
            .iter()
            .filter_map(|c| gateway_ref(&c.outcome).map(|r| (r.to_string(), (c.order, c.amount))))
            .collect();
        for call in &ledger.refunds {
            let status = orders.get(&call.order).map(|o| o.status);
            ensure!(
                self,
                pay_refs.get(&call.gateway_ref) == Some(&(call.order, call.amount)),
                "refund {} of order {} names {} for {}, which the gateway did not approve for that order",
                call.key,
                call.order,
                call.gateway_ref,
                call.amount
            );
            ensure!(
                self,
                matches!(status, Some(OrderStatus::Cancelled | OrderStatus::Rejected)),
                "a refund for order {} ({status:?}), which is neither cancelled nor rejected",
                call.order
            );
        }
        let mut charge_requests: BTreeMap<&str, (OrderId, &str, Won)> = BTreeMap::new();
        for call in &ledger.charges {
            let status = orders.get(&call.order).map(|o| o.status);
            ensure!(
                self,
                call.amount == DELIVERY_CHARGE && registered.contains(&call.rider.as_str()),
                "a charge of {} to rider `{}` for order {}",
                call.amount,
                call.rider,
                call.order
            );
            ensure!(
                self,
                status.is_some_and(|s| !matches!(s, OrderStatus::PendingPayment | OrderStatus::Paid)),
                "a delivery charge for order {}, which is {status:?}",
                call.order
            );
            let request = (call.order, call.rider.as_str(), call.amount);
            let first = *charge_requests.entry(call.key.as_str()).or_insert(request);
            ensure!(
                self,
                first == request,
                "key {} was retried with another request: {first:?} then {request:?}",
                call.key
            );
        }
        let charge_refs: BTreeMap<String, (OrderId, Won)> = ledger
            .charges
            .iter()
            .filter_map(|c| gateway_ref(&c.outcome).map(|r| (r.to_string(), (c.order, c.amount))))
            .collect();
        for call in &ledger.charge_refunds {
            ensure!(
                self,
                charge_refs.get(&call.gateway_ref) == Some(&(call.order, call.amount)),
                "charge refund {} of order {} names {}, which the gateway did not pay for that order",
                call.key,
                call.order,
                call.gateway_ref
            );
        }
        // Money that moved and was not given back, per order, agrees with
        // the model: one approved payment while established, none once
        // refunded; the paid charges not taken back.
        let net_pay = net_approved(ledger.approvals.iter().map(|c| (c.order, &c.outcome)), &ledger.refunds);
        let net_charge = net_approved(ledger.charges.iter().map(|c| (c.order, &c.outcome)), &ledger.charge_refunds);
        let charge_riders: BTreeMap<String, &str> = ledger
            .charges
            .iter()
            .filter_map(|c| gateway_ref(&c.outcome).map(|r| (r.to_string(), c.rider.as_str())))
            .collect();
        for order in &self.model.orders {
            let paid = net_pay.get(&order.id).map_or(0, BTreeSet::len);
            let expected = usize::from(
                order
                    .payment
                    .is_some_and(|p| matches!(p.status, PaymentStatus::Approved | PaymentStatus::RefundPending)),
            );
            ensure!(
                self,
                paid == expected,
                "order {} ({}): the payment gateway holds {paid} unrefunded approvals, the model expects {expected}",
                order.id,
                order.status
            );
            let established = matches!(
                order.status,
                OrderStatus::Paid
                    | OrderStatus::Cooking
                    | OrderStatus::Cooked
                    | OrderStatus::Delivering
                    | OrderStatus::Delivered
            );
            ensure!(
                self,
                !established || paid == 1,
                "order {} is {} without an approved payment",
                order.id,
                order.status
            );
            let charged = net_charge.get(&order.id).cloned().unwrap_or_default();
            let expected = order.delivery.as_ref().map_or(0, |d| {
                d.charges
                    .iter()
                    .filter(|c| matches!(c.status, ChargeStatus::Paid | ChargeStatus::RefundPending))
                    .count()
            });
            ensure!(
                self,
                charged.len() == expected,
                "order {} ({}): the charge gateway holds {} charges not taken back, the model expects {expected}",
                order.id,
                order.status,
                charged.len()
            );
            if matches!(order.status, OrderStatus::Delivering | OrderStatus::Delivered) {
                let rider = order.delivery.as_ref().and_then(|d| d.rider).map(|r| RIDERS[r]);
                let paid_to: Vec<&str> = charged.iter().filter_map(|r| charge_riders.get(r).copied()).collect();
                ensure!(
                    self,
                    rider.is_some_and(|r| paid_to.contains(&r)),
                    "order {} departed with rider {rider:?}, but the riders paid are {paid_to:?}",
                    order.id
                );
            }
        }
        Ok(())
    }

    /// The read model equals a rebuild from the event log.
    fn check_rebuild(&mut self) -> Result<(), TestCaseError> {
        let mut before = Vec::new();
        for customer in CUSTOMERS {
            before.push(engine!(self, "customer_orders", self.engine.customer_orders(customer)));
        }
        engine!(self, "rebuild_projection", self.engine.rebuild_projection());
        for (customer, before) in CUSTOMERS.iter().zip(before) {
            let after = engine!(self, "customer_orders", self.engine.customer_orders(customer));
            if before == after {
                continue;
            }
            for (live, rebuilt) in before.iter().zip(&after) {
                if live != rebuilt {
                    let live = serde_json::to_value(live).unwrap_or_default();
                    let rebuilt = serde_json::to_value(rebuilt).unwrap_or_default();
                    return Err(self.fail(format!(
                        "the read model of order {} differs from a rebuild (engine: live, model: rebuilt):{}",
                        live["order_id"],
                        diff(&live, &rebuilt)
                    )));
                }
            }
            return Err(self.fail(format!(
                "{customer} has {} views live and {} after a rebuild",
                before.len(),
                after.len()
            )));
        }
        self.check_order_events()
    }

    /// One order's events (read through its view) are the log's events of
    /// that order, from the start, after one of them, and at most one.
    fn check_order_events(&mut self) -> Result<(), TestCaseError> {
        let log = engine!(self, "events", self.engine.events(0, None, 100_000));
        for customer in CUSTOMERS {
            for view in engine!(self, "customer_orders", self.engine.customer_orders(customer)) {
                let id = view.order_id;
                let of: Vec<_> = log.iter().filter(|e| e.event.order_id() == Some(id)).cloned().collect();
                let all = engine!(self, "events of an order", self.engine.events(0, Some(id), 100_000));
                if all != of {
                    return Err(self.fail(format!("order {id}: its events are {all:?}, the log has {of:?}")));
                }
                let after = of.first().map_or(0, |e| e.seq);
                let next = engine!(self, "events of an order", self.engine.events(after, Some(id), 1));
                if next.as_slice() != of.get(1..2).unwrap_or_default() {
                    return Err(self.fail(format!("order {id}: after {after} it gives {next:?}, the log {of:?}")));
                }
            }
        }
        Ok(())
    }

    /// Every gateway up, `relay` twice: nothing is left owing.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        self.step(&Cmd::PaymentUp)?;
        self.step(&Cmd::ChargeUp)?;
        for _ in 0..2 {
            self.step(&Cmd::Relay)?;
            self.check()?;
        }
        self.check_rebuild()?;
        let ledger = self.gateways.lock();
        let net_charge = net_approved(ledger.charges.iter().map(|c| (c.order, &c.outcome)), &ledger.charge_refunds);
        drop(ledger);
        for o in 0..self.model.orders.len() {
            let id = self.model.orders[o].id;
            let view = engine!(self, "status", self.engine.status(id));
            if !matches!(view.status, OrderStatus::Cancelled | OrderStatus::Rejected) {
                continue;
            }
            let payment = view.payment.as_ref().map(|p| p.status);
            let approved = self.gateways.lock().approvals.iter().any(|c| c.order == id && is_approved(&c.outcome));
            ensure!(
                self,
                !approved || payment == Some(PaymentStatus::Refunded),
                "after recovery, order {id} ({}) has an approved payment that is {payment:?}, not refunded",
                view.status
            );
            let charge = view.delivery.as_ref().and_then(|d| d.charge.as_ref()).map(|c| c.status);
            ensure!(
                self,
                matches!(charge, None | Some(ChargeStatus::Refunded | ChargeStatus::Voided)),
                "after recovery, order {id} ({}) has its delivery charge {charge:?}",
                view.status
            );
            let kept = net_charge.get(&id).map_or(0, BTreeSet::len);
            ensure!(self, kept == 0, "after recovery, the rider still holds {kept} charges of cancelled order {id}");
        }
        Ok(())
    }
}
