//! The load generator behind `ezdelivery simulate`: drives N orders through
//! the whole lifecycle in-process on the engine's storage, with some
//! cancelled along the way and some payments finding the gateway down
//! (queued, then retried by the relay), and ends with a report and a check
//! of every invariant (`invariants`).
//!
//! Deterministic for a seed: the commands, the gateway's answers and so the
//! counts are the same on every run (the clock is simulated too: each
//! command moves it one second on, each relay round ten minutes, from the
//! time the simulation starts). Only the timings and the event ids differ.
//!
//! The run goes through a sibling engine (`Engine::sibling`): the same
//! storage, but simulated gateways (the payment one unavailable at the
//! configured rate, the charge one always there), the simulated clock and
//! no notifier channel (messages are still queued in the outbox, so the
//! writes are the real ones, but nothing is printed 100,000 times). The
//! engine `simulate` was called on is left as it was: its gateways, clock
//! and notifiers are never swapped, so another thread may use it meanwhile.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::app::engine::{Engine, ItemPick, NewOrder};
use crate::app::invariants::Violation;
use crate::domain::{Menu, OrderId, OrderStatus, StoreId};
use crate::ports::{
    ChargeGateway, ChargeRequest, Clock, GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest,
};
use crate::{Error, Result};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// How many orders are placed, one after another (each paid at once,
    /// most of them then cooked and delivered).
    pub orders: u64,
    /// How many customers order (`customer 1` …).
    pub customers: u64,
    /// How many stores take orders (registered for the run, four menus each).
    pub stores: u64,
    /// How many riders deliver (at least one).
    pub riders: u64,
    /// The share of orders cancelled before departure (0 to 1).
    pub cancel_rate: f64,
    /// The share of payment calls that find the gateway unavailable (0 to 1).
    pub payment_unavailable_rate: f64,
    /// The seed of every random pick (customer, store, menu, cancel,
    /// gateway down): the same seed runs the same orders.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            orders: 1_000,
            customers: 100,
            stores: 10,
            riders: 20,
            cancel_rate: 0.05,
            payment_unavailable_rate: 0.02,
            seed: 1,
        }
    }
}

impl SimConfig {
    /// Refuses rates outside 0 to 1 (or not numbers), and counts of
    /// stores, riders or customers the run cannot have, with
    /// [`Error::Invalid`]: what [`Engine::simulate`] checks first, for a
    /// caller to check before it opens (and creates) a database.
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::Invalid(crate::domain::validate::Invalid(m)));
        for (name, rate) in
            [("cancel rate", self.cancel_rate), ("payment-unavailable rate", self.payment_unavailable_rate)]
        {
            if !(0.0..=1.0).contains(&rate) {
                return invalid(format!("the {name} must be between 0 and 1, got {rate}"));
            }
        }
        for (name, n) in [("customers", self.customers), ("stores", self.stores), ("riders", self.riders)] {
            if n == 0 {
                return invalid(format!("at least one of {name} is needed"));
            }
        }
        if self.stores > 10_000 || self.riders > 10_000 {
            return invalid("at most 10,000 stores and 10,000 riders".into());
        }
        Ok(())
    }
}

/// The commands whose latency the report shows, in its order.
pub const COMMANDS: [&str; 7] =
    ["order+pay", "cook start", "cook finish", "deliver start", "deliver complete", "cancel", "relay"];

/// Latency of one command over the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandStats {
    /// One of [`COMMANDS`].
    pub command: &'static str,
    /// How many times the command ran in the simulation (the latencies
    /// below are over these).
    pub count: usize,
    /// The median latency: half the runs took at most this.
    pub p50: Duration,
    /// The 99th percentile latency: all but one run in a hundred took at
    /// most this.
    pub p99: Duration,
    /// The slowest run's latency.
    pub max: Duration,
}

/// What a simulation did.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// The configuration it ran.
    pub config: SimConfig,
    /// Orders placed (`config.orders`, unless the run stopped early).
    pub orders: u64,
    /// Orders that reached `delivered`.
    pub delivered: u64,
    /// Orders cancelled (before departure; queued ones included).
    pub cancelled: u64,
    /// Orders whose payment found the gateway down and was queued.
    pub queued: u64,
    /// Payment calls the relay tried again (those an open circuit breaker
    /// refused without calling included).
    pub retried: u64,
    /// Orders whose payment is still unsettled at the end: queued (the
    /// gateway never came back) or needing attention (too many answers in
    /// a row that settled nothing).
    pub still_queued: u64,
    /// Wall time of the orders (setup and the check excluded).
    pub elapsed: Duration,
    /// Latency per command, one entry per command of [`COMMANDS`] that
    /// ran, in that order.
    pub commands: Vec<CommandStats>,
    /// Broken invariants found at the end (empty: all hold).
    pub violations: Vec<Violation>,
    /// How long the invariant check took.
    pub check_elapsed: Duration,
}

impl SimReport {
    /// Orders per second of wall time.
    pub fn orders_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.orders as f64 / secs
        } else {
            0.0
        }
    }
}

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        unit(self.next()) < p
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The simulated clock: microseconds since the epoch, moved by the driver.
#[derive(Clone)]
struct SimClock(Arc<AtomicI64>);

impl SimClock {
    fn advance(&self, by: TimeDelta) {
        self.0.fetch_add(by.num_microseconds().unwrap_or(0), Ordering::Relaxed);
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::Relaxed)).unwrap_or_default()
    }
}

/// A payment gateway that is unavailable for a seeded share of calls.
struct SimPayment {
    seed: u64,
    rate: f64,
    calls: AtomicU64,
}

/// The name of the simulated gateways: what they leave queued is theirs to
/// settle, never a real gateway's.
const SIMULATED: &str = "simulate";

impl PaymentGateway for SimPayment {
    fn name(&self) -> &str {
        SIMULATED
    }

    fn approve(&self, request: &PaymentRequest) -> GatewayOutcome {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        if unit(mix(self.seed ^ mix(call.wrapping_add(1)))) < self.rate {
            return GatewayOutcome::Unavailable { reason: "the simulated payment service is down".into() };
        }
        GatewayOutcome::Approved { gateway_ref: format!("sim-{}", request.idempotency_key) }
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        GatewayOutcome::Approved { gateway_ref: format!("sim-{}", request.idempotency_key) }
    }
}

/// A delivery-charge gateway that always pays.
struct SimCharge;

impl ChargeGateway for SimCharge {
    fn name(&self) -> &str {
        SIMULATED
    }

    fn pay(&self, request: &ChargeRequest) -> GatewayOutcome {
        GatewayOutcome::Approved { gateway_ref: format!("sim-{}", request.idempotency_key) }
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        GatewayOutcome::Approved { gateway_ref: format!("sim-{}", request.idempotency_key) }
    }
}

/// Where in its life an order is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelAt {
    /// Paid (or queued), before cooking.
    Placed,
    /// While cooking.
    Cooking,
    /// Cooked, before departure.
    Cooked,
}

/// The run in progress.
struct Run<'e> {
    engine: &'e Engine,
    clock: SimClock,
    latencies: Vec<Vec<Duration>>,
    delivered: u64,
    cancelled: u64,
    queued: u64,
    retried: u64,
    /// Orders whose payment is queued, with when they will be cancelled.
    waiting: Vec<(OrderId, Option<CancelAt>)>,
}

/// The menu names of a simulated store, with their base prices.
const MENUS: [(&str, i64); 4] = [("후라이드", 18_000), ("양념치킨", 19_000), ("떡볶이", 9_000), ("콜라", 2_000)];
/// A relay round every this many orders while payments are queued.
const RELAY_EVERY: u64 = 250;
/// Rounds without progress before the drain gives up (a gateway that never comes back).
const DRAIN_PATIENCE: u32 = 50;

impl Run<'_> {
    /// Times one command, moving the simulated clock on first.
    fn timed<T>(&mut self, command: usize, f: impl FnOnce(&Engine) -> Result<T>) -> Result<T> {
        self.clock.advance(TimeDelta::seconds(1));
        let start = Instant::now();
        let out = f(self.engine);
        self.latencies[command].push(start.elapsed());
        out
    }

    /// Takes a paid order on from where it stands to delivered or cancelled.
    fn proceed(&mut self, order: OrderId, cancel: Option<CancelAt>) -> Result<()> {
        if cancel == Some(CancelAt::Placed) {
            return self.cancel(order);
        }
        self.timed(1, |e| e.start_cooking(order))?;
        if cancel == Some(CancelAt::Cooking) {
            return self.cancel(order);
        }
        self.timed(2, |e| e.finish_cooking(order))?;
        if cancel == Some(CancelAt::Cooked) {
            return self.cancel(order);
        }
        self.timed(3, |e| e.start_delivery(order, None))?;
        self.timed(4, |e| e.complete_delivery(order))?;
        self.delivered += 1;
        Ok(())
    }

    fn cancel(&mut self, order: OrderId) -> Result<()> {
        self.timed(5, |e| e.cancel(order, "simulated change of mind"))?;
        self.cancelled += 1;
        Ok(())
    }

    /// One relay round: the clock moves past every back-off, the relay
    /// retries what is queued, and the orders it paid go on. Returns how
    /// many orders left the queue.
    fn relay_round(&mut self) -> Result<usize> {
        self.clock.advance(TimeDelta::minutes(10));
        let report = self.timed(6, |e| e.relay())?;
        self.retried += (report.payments_approved + report.payments_declined) as u64;
        self.retried += report.still_queued as u64;
        let waiting = std::mem::take(&mut self.waiting);
        let before = waiting.len();
        for (order, cancel) in waiting {
            match self.engine.status(order)?.status {
                OrderStatus::PendingPayment => self.waiting.push((order, cancel)),
                OrderStatus::Paid => self.proceed(order, cancel)?,
                other => {
                    return Err(Error::Internal(format!("simulated order {order} is {other} after a relay")));
                }
            }
        }
        Ok(before - self.waiting.len())
    }
}

impl Engine {
    /// Runs a simulation (see the module documentation) on this engine's
    /// storage; `progress` is told (orders done, orders in all) as it goes.
    /// Ends with [`Engine::check_invariants`].
    pub fn simulate(&self, config: &SimConfig, progress: &mut dyn FnMut(u64, u64)) -> Result<SimReport> {
        config.validate()?;
        let start = crate::ports::Clock::now(&crate::ports::SystemClock).timestamp_micros();
        let clock = SimClock(Arc::new(AtomicI64::new(start)));
        let payment = SimPayment {
            seed: mix(config.seed ^ 0x5eed),
            rate: config.payment_unavailable_rate,
            calls: AtomicU64::new(0),
        };
        let sim = self.sibling(Box::new(payment), Box::new(SimCharge), Box::new(clock.clone()));
        let mut report = simulate(&sim, config, clock, progress)?;
        let checking = Instant::now();
        report.violations = self.check_invariants()?;
        report.check_elapsed = checking.elapsed();
        Ok(report)
    }
}

fn simulate(
    engine: &Engine,
    config: &SimConfig,
    clock: SimClock,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimReport> {
    let mut rng = Rng(config.seed);
    let stores = setup(engine, config, &mut rng)?;
    let mut run = Run {
        engine,
        clock,
        latencies: vec![Vec::new(); COMMANDS.len()],
        delivered: 0,
        cancelled: 0,
        queued: 0,
        retried: 0,
        waiting: Vec::new(),
    };
    let started = Instant::now();
    progress(0, config.orders);
    for n in 1..=config.orders {
        let (store, menus) = &stores[rng.below(stores.len() as u64) as usize];
        let customer = format!("customer {}", rng.below(config.customers) + 1);
        let lines = 1 + rng.below(3);
        let picks: Vec<ItemPick> = (0..lines)
            .map(|_| {
                ItemPick::new(menus[rng.below(menus.len() as u64) as usize].id.to_string(), 1 + rng.below(2) as u32)
            })
            .collect();
        let cancel = rng.chance(config.cancel_rate).then(|| match rng.below(3) {
            0 => CancelAt::Placed,
            1 => CancelAt::Cooking,
            _ => CancelAt::Cooked,
        });
        let address = format!("서울 {}구", rng.below(25) + 1);
        let placed = run
            .timed(0, |e| e.place_order(NewOrder::new(*store, &customer, &picks).deliver_to(&address).pay_now(None)));
        match placed {
            Ok(view) => run.proceed(view.order_id, cancel)?,
            // The order is kept, and the error names it.
            Err(Error::Unavailable { order, .. }) => {
                run.queued += 1;
                if cancel == Some(CancelAt::Placed) {
                    run.cancel(order)?;
                } else {
                    run.waiting.push((order, cancel));
                }
            }
            Err(other) => return Err(other),
        }
        if n % RELAY_EVERY == 0 && !run.waiting.is_empty() {
            run.relay_round()?;
        }
        if n % 100 == 0 || n == config.orders {
            progress(n, config.orders);
        }
    }
    let mut idle = 0;
    while !run.waiting.is_empty() && idle < DRAIN_PATIENCE {
        idle = if run.relay_round()? == 0 { idle + 1 } else { 0 };
    }
    let elapsed = started.elapsed();
    let commands = COMMANDS
        .iter()
        .zip(std::mem::take(&mut run.latencies))
        .map(|(command, mut times)| {
            times.sort_unstable();
            let at = |q: f64| {
                if times.is_empty() {
                    Duration::ZERO
                } else {
                    times[((times.len() - 1) as f64 * q).round() as usize]
                }
            };
            CommandStats { command, count: times.len(), p50: at(0.5), p99: at(0.99), max: at(1.0) }
        })
        .collect();
    Ok(SimReport {
        config: config.clone(),
        orders: config.orders,
        delivered: run.delivered,
        cancelled: run.cancelled,
        queued: run.queued,
        retried: run.retried,
        still_queued: run.waiting.len() as u64,
        elapsed,
        commands,
        violations: Vec::new(),
        check_elapsed: Duration::ZERO,
    })
}

/// Registers the stores (with their menus) and the riders the run uses;
/// riders already registered under the simulation's names are reused.
fn setup(engine: &Engine, config: &SimConfig, rng: &mut Rng) -> Result<Vec<(StoreId, Vec<Menu>)>> {
    let mut stores = Vec::with_capacity(config.stores as usize);
    for i in 1..=config.stores {
        let store = engine.add_store(&format!("시뮬 가게 {i}"), Some(&format!("owner {i}")), Some("서울"))?;
        let mut menus = Vec::with_capacity(MENUS.len());
        for (name, price) in MENUS {
            let price = price + 500 * rng.below(5) as i64;
            menus.push(engine.add_menu(store.id, name, price)?);
        }
        stores.push((store.id, menus));
    }
    let known: std::collections::HashSet<String> =
        engine.riders()?.into_iter().map(|r| String::from(r.name.as_str())).collect();
    for i in 1..=config.riders {
        let name = format!("sim rider {i}");
        if !known.contains(&name) {
            engine.add_rider(&name)?;
        }
    }
    Ok(stores)
}
