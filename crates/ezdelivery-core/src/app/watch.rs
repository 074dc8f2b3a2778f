//! `relay --watch`: the relay as a long-running worker. It runs one relay
//! pass after another, waits (in short slices, watching its stop flag)
//! when a pass found nothing to settle, and now and then purges the
//! messages delivered long ago, so the outbox does not grow for ever (and
//! the idempotency keys of requests claimed as long ago).
//!
//! Stopping is cooperative: whoever owns the flag (the CLI's SIGTERM and
//! SIGINT handlers, an embedder's shutdown) sets it, and the worker stops
//! taking new items. The gateway call or message in flight is finished and
//! recorded; messages claimed and not sent are released; a gateway call is
//! claimed only right before it is made, so no claim is left behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::TimeDelta;

use crate::app::engine::Engine;
use crate::app::relay::RelayReport;
use crate::Result;

/// How long the worker waits, when there is nothing to do, before it looks
/// again (unless [`WatchOptions::interval`] says otherwise): a second.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// How long delivered messages are kept (unless
/// [`WatchOptions::retention`] says otherwise): a week.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the worker purges delivered messages older than the retention.
pub const DEFAULT_PURGE_EVERY: Duration = Duration::from_secs(60);

/// The longest single wait between two looks at the stop flag: a stop is
/// noticed within this long while the worker waits.
pub const WAIT_SLICE: Duration = Duration::from_millis(200);

/// How long the worker goes on trying when every pass fails for its
/// storage (unless [`WatchOptions::storage_patience`] says otherwise):
/// five minutes, for a database server restarted or a connection dropped.
pub const DEFAULT_STORAGE_PATIENCE: Duration = Duration::from_secs(5 * 60);

/// The first wait after a pass that failed for its storage; it doubles
/// with each failure in a row, up to [`MAX_STORAGE_BACKOFF`].
const FIRST_STORAGE_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two passes that fail for their storage.
const MAX_STORAGE_BACKOFF: Duration = Duration::from_secs(10);

/// How a [`Engine::relay_watch`] worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// After a pass that settled nothing, wait this long (at most) before
    /// the next; the storage may wake the worker earlier
    /// ([`crate::ports::Storage::wait_for_work`]), and it waits only until
    /// the earliest queued item falls due when that is sooner.
    pub interval: Duration,
    /// Delete the messages queued longer ago than this and delivered on
    /// every channel, and the idempotency keys of requests claimed longer
    /// ago than this; `None` keeps them all. Pending and dead messages are
    /// never purged.
    pub retention: Option<Duration>,
    /// How often to purge: after the first pass, then at most this often.
    pub purge_every: Duration,
    /// How long passes may fail in a row for the storage (a database
    /// server restarted, a connection dropped) before the worker gives up
    /// with the error; meanwhile it tries again with a growing back-off.
    pub storage_patience: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: DEFAULT_INTERVAL,
            retention: Some(DEFAULT_RETENTION),
            purge_every: DEFAULT_PURGE_EVERY,
            storage_patience: DEFAULT_STORAGE_PATIENCE,
        }
    }
}

/// What a [`Engine::relay_watch`] worker did, from its start to its stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WatchReport {
    /// Relay passes run.
    pub passes: u64,
    /// The counts of every pass, added up.
    #[serde(flatten)]
    pub totals: RelayReport,
    /// Delivered messages purged (older than the retention).
    pub messages_purged: usize,
    /// Idempotency keys of requests purged (claimed longer ago than the
    /// retention; see [`Engine::purge_requests`]).
    pub requests_purged: usize,
}

/// How long the worker waits after a pass that settled nothing, with the
/// earliest queued item due at `next_due`: until then (and a millisecond,
/// so that it is due) when that is ahead and sooner than `interval`;
/// otherwise `interval`. Not sooner when it is due already: the pass just
/// tried it, or a breaker holds it back.
fn idle_wait(
    next_due: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    interval: Duration,
) -> Duration {
    next_due
        .and_then(|due| (due - now).to_std().ok())
        .filter(|until| !until.is_zero())
        .map_or(interval, |until| (until + Duration::from_millis(1)).min(interval))
}

impl Engine {
    /// Relays until `stop` is set (`ezdelivery relay --watch`): one pass
    /// ([`Engine::relay`]) after another, calling `on_pass` with each
    /// pass's report. A pass that settled something is followed by the next
    /// at once (more may be due); otherwise the worker waits up to
    /// `options.interval` (or until the earliest queued item falls due, if
    /// sooner), in slices of at most [`WAIT_SLICE`], looking at
    /// `stop` between them. After the first pass, and then every
    /// `options.purge_every`, it purges the delivered messages older than
    /// `options.retention`, and the idempotency keys of requests claimed
    /// longer ago ([`Engine::purge_requests`]).
    ///
    /// Once `stop` is set, the pass under way takes on no new item: the
    /// gateway call or message in flight is finished and recorded, and the
    /// messages it claimed but did not send are released. Then it returns
    /// the totals. A pass that fails for its storage is tried again, with
    /// a back-off from 100 ms doubling to 10 s, until one succeeds or they
    /// have failed for `options.storage_patience`: then the worker ends
    /// with the last error. Any other error ends it at once (a gateway or
    /// notifier that fails is not an error: its work is queued again, as by
    /// `relay`).
    pub fn relay_watch(
        &self,
        options: WatchOptions,
        stop: &AtomicBool,
        on_pass: &mut dyn FnMut(&RelayReport),
    ) -> Result<WatchReport> {
        let _span = tracing::info_span!("relay_watch").entered();
        let stopped = || stop.load(Ordering::SeqCst);
        let mut report = WatchReport::default();
        let mut next_purge = Instant::now();
        // Since when passes fail for the storage, and the next wait.
        let mut failing: Option<(Instant, Duration)> = None;
        while !stopped() {
            let pass = match self.relay_pass(Some(stop)) {
                Ok(pass) => {
                    failing = None;
                    pass
                }
                Err(e @ crate::Error::Storage(_)) => {
                    let (since, wait) = failing.unwrap_or((Instant::now(), FIRST_STORAGE_BACKOFF));
                    if since.elapsed() >= options.storage_patience {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "relay pass failed; trying again");
                    failing = Some((since, (wait * 2).min(MAX_STORAGE_BACKOFF)));
                    self.wait_for_work(wait, stop);
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.passes += 1;
            report.totals.add(&pass);
            if pass.tried() > 0 {
                tracing::info!(pass = report.passes, settled = pass.settled(), tried = pass.tried(), "relay pass");
            } else {
                tracing::debug!(pass = report.passes, "relay pass: nothing to do");
            }
            on_pass(&pass);
            if let Some(retention) = options.retention.filter(|_| !stopped() && Instant::now() >= next_purge) {
                match self.purge_old(retention) {
                    Ok((messages, requests)) => {
                        report.messages_purged += messages;
                        report.requests_purged += requests;
                        next_purge = super::deadline_in(options.purge_every);
                    }
                    // Tried again after the next pass, which tells the storage's state.
                    Err(e @ crate::Error::Storage(_)) => tracing::warn!(error = %e, "purge failed"),
                    Err(e) => return Err(e),
                }
            }
            if pass.settled() == 0 {
                // A queued call or message that falls due within the
                // interval is not left waiting for the rest of it: a
                // command's wake-up comes when it queues its work, which
                // its back-off makes due a little later.
                let next_due = self.queue_status().ok().and_then(|q| q.next_due);
                self.wait_for_work(idle_wait(next_due, self.clock.now(), options.interval), stop);
            }
        }
        Ok(report)
    }

    /// Purges the delivered messages and the request keys older than
    /// `retention`: how many of each.
    fn purge_old(&self, retention: Duration) -> Result<(usize, usize)> {
        let messages = self.purge_delivered_messages(retention)?;
        if messages > 0 {
            tracing::info!(purged = messages, "delivered messages purged");
        }
        // Keys of requests are kept as long as the messages: a client
        // retrying after that is answered as new.
        let requests = self.purge_requests(retention)?;
        if requests > 0 {
            tracing::info!(purged = requests, "request keys purged");
        }
        Ok((messages, requests))
    }

    /// Deletes the messages queued more than `retention` ago that were
    /// delivered on every channel (with their deliveries), in one unit of
    /// work; returns how many. Pending and dead messages stay.
    pub fn purge_delivered_messages(&self, retention: Duration) -> Result<usize> {
        let _span = tracing::debug_span!("purge_delivered_messages").entered();
        let back = TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX);
        let purged = self.write(|w| match w.now.checked_sub_signed(back) {
            Some(before) => w.repo.purge_delivered_messages(before),
            // A retention longer than the calendar: nothing is that old.
            None => Ok(0),
        })?;
        Ok(purged.value)
    }

    /// Waits up to `interval` for work, in slices of at most
    /// [`WAIT_SLICE`], until `stop` is set or the storage says work may be
    /// there (its wait returned before its slice was up). A storage whose
    /// wake-up hint fails is waited on by the clock instead: the worker
    /// polls anyway.
    fn wait_for_work(&self, interval: Duration, stop: &AtomicBool) {
        let until = super::deadline_in(interval);
        while !stop.load(Ordering::SeqCst) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let slice = left.min(WAIT_SLICE);
            let started = Instant::now();
            match self.storage.wait_for_work(slice) {
                Ok(()) if started.elapsed() < slice => return,
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "waiting for work failed; polling instead");
                    std::thread::sleep(slice.saturating_sub(started.elapsed()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::*;
    use crate::adapters::console::ConsoleNotifier;
    use crate::adapters::memory::MemoryStorage;
    use crate::adapters::sandbox::{SandboxPayment, SandboxSettings};
    use crate::app::retry::RetryPolicy;
    use crate::ports::{GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest};
    use crate::{ItemPick, NewOrder};

    /// A payment gateway that is down until `up` is set; once up, it sets
    /// `stop` on every approval it makes (the worker is told to stop while
    /// a call is in flight).
    struct Switch {
        up: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
        down: SandboxPayment,
        working: SandboxPayment,
    }

    impl PaymentGateway for Switch {
        fn name(&self) -> &str {
            "test"
        }

        fn approve(&self, request: &PaymentRequest) -> GatewayOutcome {
            if !self.up.load(Ordering::SeqCst) {
                return self.down.approve(request);
            }
            self.stop.store(true, Ordering::SeqCst);
            self.working.approve(request)
        }

        fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
            self.working.refund(request)
        }
    }

    #[test]
    fn an_idle_worker_waits_until_the_next_item_is_due_or_the_interval_is_up() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a time");
        let at = |ms: i64| now + TimeDelta::milliseconds(ms);
        let interval = Duration::from_secs(60);
        assert_eq!(idle_wait(None, now, interval), interval, "nothing queued");
        assert_eq!(idle_wait(Some(at(200)), now, interval), Duration::from_millis(201), "due in 200 ms");
        assert_eq!(idle_wait(Some(at(90_000)), now, interval), interval, "due after the interval");
        assert_eq!(idle_wait(Some(at(0)), now, interval), interval, "due now: just tried");
        assert_eq!(idle_wait(Some(at(-5_000)), now, interval), interval, "overdue: held back");
    }

    /// An engine on memory with a silent console channel, retries due
    /// within a few milliseconds, and `payment` for payments.
    fn engine(payment: impl PaymentGateway + 'static) -> Engine {
        Engine::builder(MemoryStorage::new())
            .payment(payment)
            .notifier(ConsoleNotifier::to(Box::new(std::io::sink())))
            .retry(RetryPolicy { base_ms: 1, max_ms: 2, ..RetryPolicy::default() })
            .build()
    }

    /// A store with one menu; returns the store's id.
    fn shop(engine: &Engine) -> i64 {
        let store = engine.add_store("BBQ", Some("park"), None).unwrap();
        engine.add_menu(store.id, "후라이드", 18_000).unwrap();
        store.id
    }

    fn order(engine: &Engine, store: i64, customer: &str) -> crate::Result<crate::OrderView> {
        engine.place_order(NewOrder::new(store, customer, &[ItemPick::new("후라이드", 1)]).pay_now(None))
    }

    /// Waits (bounded) until `done` holds.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < until, "{what} did not happen within 20 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_stop_set_from_another_thread_ends_the_worker() {
        let engine = engine(SandboxPayment::default());
        let store = shop(&engine);
        let stop = AtomicBool::new(false);
        let passes = AtomicUsize::new(0);
        let options = WatchOptions { interval: Duration::from_millis(20), ..WatchOptions::default() };
        let report = std::thread::scope(|s| {
            let worker = s.spawn(|| {
                engine.relay_watch(options, &stop, &mut |_| {
                    passes.fetch_add(1, Ordering::SeqCst);
                })
            });
            wait_until("two passes", || passes.load(Ordering::SeqCst) >= 2);
            // work that arrives while it watches is taken on too
            order(&engine, store, "kim").unwrap();
            let seen = passes.load(Ordering::SeqCst);
            wait_until("a pass after the order", || passes.load(Ordering::SeqCst) > seen);
            stop.store(true, Ordering::SeqCst);
            worker.join().expect("the worker does not panic")
        })
        .unwrap();
        assert!(report.passes >= 3, "{report:?}");
        assert_eq!(report.passes, passes.load(Ordering::SeqCst) as u64, "on_pass is called once per pass");
        assert_eq!(report.totals.payments_approved, 0, "the order was paid by its own command: {report:?}");

        // a flag set before it starts: no pass at all
        let report = engine.relay_watch(options, &AtomicBool::new(true), &mut |_| {}).unwrap();
        assert_eq!(report, WatchReport::default());
    }

    #[test]
    fn a_stop_during_a_call_finishes_it_and_takes_on_no_new_item() {
        let (up, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let down = SandboxPayment::new(SandboxSettings { unavailable: true, ..SandboxSettings::default() });
        let switch = Switch { up: up.clone(), stop: stop.clone(), down, working: SandboxPayment::default() };
        let engine = engine(switch);
        let store = shop(&engine);
        for customer in ["kim", "lee", "choi"] {
            assert!(matches!(order(&engine, store, customer), Err(crate::Error::Unavailable { .. })));
        }
        assert_eq!(engine.queue_status().unwrap().payments, 3);
        up.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(10)); // the retries fall due (1-2 ms)
        let mut passes = Vec::new();
        let report = engine.relay_watch(WatchOptions::default(), &stop, &mut |p| passes.push(*p)).unwrap();
        assert_eq!(report.passes, 1, "{passes:?}");
        assert_eq!(report.totals.payments_approved, 1, "the call in flight is finished and recorded: {report:?}");
        assert_eq!(report.totals.messages_delivered, 0, "its messages are released, not sent: {report:?}");
        assert_eq!(report.messages_purged, 0, "no purge once stopped");
        let waiting = engine.queue_status().unwrap();
        assert_eq!(waiting.payments, 2, "the other two wait for the next relay: {waiting:?}");
        assert!(waiting.messages > 0, "the approval's messages are due again: {waiting:?}");
        // the next relay finds everything due: nothing is left claimed
        stop.store(false, Ordering::SeqCst);
        let next = engine.relay().unwrap();
        assert_eq!(next.payments_approved, 2, "{next:?}");
        assert_eq!(engine.queue_status().unwrap().messages, 0);
    }

    #[test]
    fn the_worker_purges_delivered_messages_older_than_the_retention() {
        let engine = engine(SandboxPayment::default());
        let store = shop(&engine);
        order(&engine, store, "kim").unwrap();
        order(&engine, store, "lee").unwrap();
        assert_eq!(engine.queue_status().unwrap().messages, 0, "delivered at once");
        let once = |retention: Option<Duration>| {
            let stop = AtomicBool::new(false);
            let options = WatchOptions { retention, ..WatchOptions::default() };
            engine.relay_watch(options, &stop, &mut |_| stop.store(true, Ordering::SeqCst)).unwrap()
        };
        // stopped after its first pass (the purge comes after it): kept
        assert_eq!(once(None).messages_purged, 0);
        // a week's retention keeps what was delivered just now
        assert_eq!(engine.purge_delivered_messages(DEFAULT_RETENTION).unwrap(), 0);
        // the purge runs after the first pass unless the worker was told to
        // stop: a pass that stops it from on_pass skips it
        assert_eq!(once(Some(Duration::ZERO)).messages_purged, 0);
        // Keys of requests go with them, with the same retention but never
        // before a day (Engine::purge_requests: one may still be at work).
        assert_eq!(engine.claim_request("customer:kim", "k-1", "fp").unwrap(), crate::RequestClaim::New);
        std::thread::sleep(Duration::from_millis(2));
        let stop = AtomicBool::new(false);
        let passes = AtomicUsize::new(0);
        let options = WatchOptions {
            retention: Some(Duration::ZERO),
            interval: Duration::from_millis(5),
            ..WatchOptions::default()
        };
        let report = engine
            .relay_watch(options, &stop, &mut |_| {
                // stop at the second pass: the first one's purge has run
                if passes.fetch_add(1, Ordering::SeqCst) == 1 {
                    stop.store(true, Ordering::SeqCst);
                }
            })
            .unwrap();
        assert!(report.messages_purged > 0, "{report:?}");
        assert_eq!(report.requests_purged, 0, "kept: {report:?}");
        let kept = engine.claim_request("customer:kim", "k-1", "fp").unwrap();
        assert!(matches!(kept, crate::RequestClaim::InFlight { .. }), "still in flight: {kept:?}");
        assert_eq!(engine.purge_delivered_messages(Duration::ZERO).unwrap(), 0, "nothing left to purge");
    }

    /// A storage whose units of work fail while `down` is above 0 (each
    /// failure counts it down; `usize::MAX`: for good).
    struct Dropping {
        inner: MemoryStorage,
        down: Arc<AtomicUsize>,
    }

    impl Dropping {
        fn unit(&self) -> crate::Result<()> {
            let left = self.down.load(Ordering::SeqCst);
            if left == 0 {
                return Ok(());
            }
            if left != usize::MAX {
                self.down.store(left - 1, Ordering::SeqCst);
            }
            Err(crate::Error::storage("connection closed"))
        }
    }

    impl crate::ports::Storage for Dropping {
        fn write(&self, work: &mut dyn FnMut(&mut dyn crate::ports::Repo) -> crate::Result<()>) -> crate::Result<()> {
            self.unit()?;
            self.inner.write(work)
        }
        fn read(&self, work: &mut dyn FnMut(&mut dyn crate::ports::Repo) -> crate::Result<()>) -> crate::Result<()> {
            self.unit()?;
            self.inner.read(work)
        }
    }

    /// Passes that fail for the storage (a dropped connection, a server
    /// restarted) are tried again with a back-off; the worker ended on the
    /// first one, though the server was back a moment later.
    #[test]
    fn the_worker_outlasts_a_storage_that_fails_for_a_while_and_gives_up_after_its_patience() {
        let down = Arc::new(AtomicUsize::new(0));
        let engine = Engine::builder(Dropping { inner: MemoryStorage::new(), down: Arc::clone(&down) }).build();
        let store = shop(&engine);
        let order = engine.place_order(NewOrder::new(store, "kim", &[ItemPick::new("후라이드", 1)])).unwrap();
        down.store(3, Ordering::SeqCst);
        let stop = AtomicBool::new(false);
        let options = WatchOptions { interval: Duration::from_millis(5), ..WatchOptions::default() };
        let report = engine.relay_watch(options, &stop, &mut |_| stop.store(true, Ordering::SeqCst)).unwrap();
        assert_eq!((report.passes, down.load(Ordering::SeqCst)), (1, 0), "three failures, then a pass");
        assert_eq!(engine.status(order.order_id).unwrap().order_id, order.order_id);

        down.store(usize::MAX, Ordering::SeqCst);
        let stop = AtomicBool::new(false);
        let options = WatchOptions { storage_patience: Duration::from_millis(300), ..options };
        let e = engine.relay_watch(options, &stop, &mut |_| {}).unwrap_err();
        assert!(matches!(e, crate::Error::Storage(_)), "{e:?}");
    }
}
