//! The engine's flows end to end on the in-memory storage, with scripted
//! gateways that approve, decline or are unavailable on demand.

use std::sync::{Arc, Mutex};

use ezdelivery_core::adapters::memory::MemoryStorage;
use ezdelivery_core::app::retry::RetryPolicy;
use ezdelivery_core::domain::{
    BreakerSettings, BreakerState, ChannelName, ChargeStatus, DeliveryStatus, KitchenStatus, OrderStatus, PaymentStatus,
};
use ezdelivery_core::ports::{
    ChargeGateway, ChargeRequest, GatewayOutcome, Message, Notifier, PaymentGateway, PaymentRequest, RefundRequest,
};
use ezdelivery_core::{Engine, Error, ErrorKind, ItemPick, NewOrder};

/// What a scripted gateway answers next, and every call it received.
#[derive(Clone, Default)]
struct Script {
    down: Arc<Mutex<bool>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn answer(&self, call: String, gateway_ref: &str) -> GatewayOutcome {
        self.calls.lock().unwrap().push(call);
        if *self.down.lock().unwrap() {
            GatewayOutcome::Unavailable { reason: "scripted outage".into() }
        } else {
            GatewayOutcome::Approved { gateway_ref: gateway_ref.into() }
        }
    }
    fn set_down(&self, down: bool) {
        *self.down.lock().unwrap() = down;
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

struct Pay(Script);
impl PaymentGateway for Pay {
    fn name(&self) -> &str {
        "test"
    }

    fn approve(&self, r: &PaymentRequest) -> GatewayOutcome {
        self.0.answer(format!("approve {}", r.idempotency_key), &format!("p-{}", r.idempotency_key))
    }
    fn refund(&self, r: &RefundRequest) -> GatewayOutcome {
        self.0.answer(format!("refund {} {}", r.idempotency_key, r.gateway_ref), "r")
    }
}

struct Charge(Script);
impl ChargeGateway for Charge {
    fn name(&self) -> &str {
        "test"
    }

    fn pay(&self, r: &ChargeRequest) -> GatewayOutcome {
        self.0.answer(format!("pay {} {}", r.idempotency_key, r.rider), &format!("c-{}", r.idempotency_key))
    }
    fn refund(&self, r: &RefundRequest) -> GatewayOutcome {
        self.0.answer(format!("refund {} {}", r.idempotency_key, r.gateway_ref), "cr")
    }
}

#[derive(Clone)]
struct Inbox(Arc<Mutex<Vec<Message>>>, Arc<Mutex<bool>>, ChannelName);
impl Default for Inbox {
    fn default() -> Self {
        Inbox(Arc::default(), Arc::default(), ChannelName::new("test").unwrap())
    }
}
impl Notifier for Inbox {
    fn channel(&self) -> &ChannelName {
        &self.2
    }
    fn send(&self, m: &Message) -> Result<(), String> {
        if *self.1.lock().unwrap() {
            return Err("inbox down".into());
        }
        self.0.lock().unwrap().push(m.clone());
        Ok(())
    }
}

struct World {
    engine: Engine,
    pay: Script,
    charge: Script,
    inbox: Inbox,
    store: i64,
}

fn world(riders: &[&str]) -> World {
    world_with(riders, RetryPolicy::default())
}

fn world_with(riders: &[&str], retry: RetryPolicy) -> World {
    let (pay, charge, inbox) = (Script::default(), Script::default(), Inbox::default());
    let engine = Engine::builder(MemoryStorage::new())
        .payment(Pay(pay.clone()))
        .charge(Charge(charge.clone()))
        .notifier(inbox.clone())
        .retry(retry)
        .build();
    let store = engine.add_store("BBQ", Some("park"), None).unwrap().id;
    engine.add_menu(store, "후라이드", 18_000).unwrap();
    engine.add_menu(store, "콜라", 2_000).unwrap();
    for r in riders {
        engine.add_rider(r).unwrap();
    }
    World { engine, pay, charge, inbox, store }
}

fn items() -> Vec<ItemPick> {
    vec![ItemPick::new("후라이드", 2), ItemPick::new("콜라", 1)]
}

#[test]
fn a_whole_lifecycle_updates_every_part_of_the_view() {
    let w = world(&["lee"]);
    let v = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).deliver_to("seoul").pay_now(None)).unwrap();
    assert_eq!((v.status, v.total), (OrderStatus::Paid, 38_000));
    assert_eq!(v.payment.as_ref().unwrap().status, PaymentStatus::Approved);
    assert_eq!(v.kitchen.as_ref().unwrap().status, KitchenStatus::Received);
    let id = v.order_id;
    assert_eq!(w.engine.store_inbox(w.store).unwrap().len(), 1);

    let v = w.engine.start_cooking(id).unwrap();
    let d = v.delivery.unwrap();
    assert_eq!((d.status, d.rider.as_deref()), (DeliveryStatus::Preparing, Some("lee")));
    assert_eq!(d.charge.unwrap().status, ChargeStatus::Paid);
    assert_eq!(w.engine.finish_cooking(id).unwrap().status, OrderStatus::Cooked);
    assert_eq!(w.engine.start_delivery(id, None).unwrap().status, OrderStatus::Delivering);
    let v = w.engine.complete_delivery(id).unwrap();
    assert_eq!(v.status, OrderStatus::Delivered);
    assert!(w.engine.store_inbox(w.store).unwrap().is_empty());
    w.engine.review(id, 4, "good").unwrap();
    assert!(matches!(w.engine.review(id, 5, "again"), Err(Error::Refused(_))));
    let store = w.engine.stores().unwrap().remove(0);
    assert_eq!((store.review_count, store.average_score()), (1, Some(4.0)));

    let types: Vec<String> = w.engine.status(id).unwrap().timeline.into_iter().map(|t| t.kind.to_string()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentApproved",
            "CookingStarted",
            "DeliveryPrepared",
            "DeliveryChargePaid",
            "FoodCooked",
            "DeliveryStarted",
            "DeliveryCompleted",
            "ReviewRegistered"
        ]
    );
    // One message per status change for the customer, one for the owner on payment.
    let sent = w.inbox.0.lock().unwrap().clone();
    let events: Vec<&str> = sent.iter().map(|m| m.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "OrderPlaced",
            "PaymentApproved",
            "PaymentApproved",
            "CookingStarted",
            "FoodCooked",
            "DeliveryStarted",
            "DeliveryCompleted"
        ]
    );
    assert_eq!(sent[2].recipient, "park");
    let calls = w.pay.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].starts_with("approve ezd-pay-1-"), "the key names the payment: {calls:?}");
}

#[test]
fn unpaid_orders_are_not_established() {
    let w = world(&["lee"]);
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items())).unwrap().order_id;
    assert!(w.engine.store_inbox(w.store).unwrap().is_empty());
    let err = w.engine.start_cooking(id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState, "{err}");
    assert!(w.engine.pay(id, None).is_ok());
    assert!(matches!(w.engine.pay(id, None), Err(Error::Refused(_))), "paying twice is refused");
    assert_eq!(w.pay.calls().len(), 1);
}

#[test]
fn declined_card_keeps_the_order_and_a_new_attempt_gets_a_new_key() {
    let engine = Engine::builder(MemoryStorage::new()).build(); // sandbox: declines 4000000000000002
    let s = engine.add_store("S", None, None).unwrap().id;
    engine.add_menu(s, "m", 1_000).unwrap();
    let err = engine
        .place_order(NewOrder::new(s, "kim", &[ItemPick::new("m", 1)]).pay_now(Some("4000000000000002")))
        .unwrap_err();
    let Error::Declined { order, .. } = err else { panic!("{err}") };
    let v = engine.status(order).unwrap();
    assert_eq!((v.status, v.payment.unwrap().status), (OrderStatus::PendingPayment, PaymentStatus::Declined));
    let v = engine.pay(order, Some("4111 1111 1111 1111")).unwrap();
    assert_eq!(v.payment.unwrap().status, PaymentStatus::Approved);
    assert!(matches!(engine.pay(order, Some("12")), Err(Error::Invalid(_))));
}

#[test]
fn payment_outage_queues_and_relay_charges_once_with_the_same_key() {
    let w = world(&["lee"]);
    w.pay.set_down(true);
    let err = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let v = w.engine.customer_orders("kim").unwrap().remove(0);
    assert_eq!((v.status, v.payment.as_ref().unwrap().status), (OrderStatus::PendingPayment, PaymentStatus::Pending));
    // `pay` while still down retries the same attempt.
    assert_eq!(w.engine.pay(v.order_id, None).unwrap_err().kind(), ErrorKind::Unavailable);
    w.pay.set_down(false);
    let report = w.engine.relay().unwrap();
    // The retry may not be due yet (back-off); paying by hand reuses the same attempt.
    if report.payments_approved == 0 {
        w.engine.pay(v.order_id, None).unwrap();
    }
    assert_eq!(w.engine.status(v.order_id).unwrap().status, OrderStatus::Paid);
    let calls = w.pay.calls();
    assert!(calls[0].starts_with("approve ezd-pay-1-"), "{calls:?}");
    assert!(calls.iter().all(|c| c == &calls[0]), "every retry under the same key: {calls:?}");
}

/// Resetting the payment breaker says the gateway is back: the payments
/// queued for it are due at once, not at the end of a long back-off, and
/// are charged once, under their own keys.
#[test]
fn resetting_the_payment_breaker_makes_the_queued_payments_due_now() {
    let slow = RetryPolicy { base_ms: 600_000, max_ms: 600_000, max_message_tries: 3, attention_after: 10 };
    let w = world_with(&["lee"], slow);
    w.pay.set_down(true);
    let ids: Vec<i64> = ["kim", "lee"]
        .iter()
        .map(|who| {
            let err = w.engine.place_order(NewOrder::new(w.store, who, &items()).pay_now(None)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
            err.order().expect("the order is kept")
        })
        .collect();
    w.pay.set_down(false);
    assert_eq!(w.engine.relay().unwrap().payments_approved, 0, "ten minutes of back-off to go");
    w.engine.reset_breaker(&w.engine.breaker_name("payment").unwrap()).unwrap();
    assert_eq!(w.engine.relay().unwrap().payments_approved, 2);
    for id in &ids {
        assert_eq!(w.engine.status(*id).unwrap().status, OrderStatus::Paid);
    }
    let calls = w.pay.calls();
    for id in &ids {
        let key = format!("approve ezd-pay-{id}-");
        let approvals: Vec<_> = calls.iter().filter(|c| c.starts_with(&key)).collect();
        assert_eq!(approvals.len(), 2, "one failed call and one approval per order, one key: {calls:?}");
        assert_eq!(approvals[0], approvals[1], "{calls:?}");
    }
    assert_eq!(w.engine.relay().unwrap().payments_approved, 0, "nothing charged twice");
}

#[test]
fn cancel_compensates_everything_and_is_refused_after_departure() {
    let w = world(&["lee"]);
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap().order_id;
    w.engine.start_cooking(id).unwrap();
    let v = w.engine.cancel(id, "changed my mind").unwrap();
    assert_eq!(v.status, OrderStatus::Cancelled);
    assert_eq!(v.payment.unwrap().status, PaymentStatus::Refunded);
    assert_eq!(v.kitchen.unwrap().status, KitchenStatus::Cancelled);
    let d = v.delivery.unwrap();
    assert_eq!((d.status, d.charge.unwrap().status), (DeliveryStatus::Cancelled, ChargeStatus::Refunded));
    let calls = w.pay.calls();
    let key = calls[0].strip_prefix("approve ").unwrap();
    assert!(calls.contains(&format!("refund {key}-refund p-{key}")), "{calls:?}");

    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap().order_id;
    w.engine.start_cooking(id).unwrap();
    w.engine.finish_cooking(id).unwrap();
    w.engine.start_delivery(id, None).unwrap();
    let err = w.engine.cancel(id, "").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("order {id} is already on its way (delivering); it can no longer be cancelled")
    );
    assert_eq!(w.engine.status(id).unwrap().status, OrderStatus::Delivering);
}

#[test]
fn reject_refunds_and_cancelling_an_unpaid_order_needs_no_gateway() {
    let w = world(&[]);
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap().order_id;
    let v = w.engine.reject(id, "no chicken").unwrap();
    assert_eq!((v.status, v.payment.unwrap().status), (OrderStatus::Rejected, PaymentStatus::Refunded));
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items())).unwrap().order_id;
    assert_eq!(w.engine.cancel(id, "").unwrap().status, OrderStatus::Cancelled);
    assert_eq!(w.pay.calls().len(), 2, "{:?}", w.pay.calls());
}

#[test]
fn without_riders_the_delivery_waits_and_naming_one_moves_the_charge() {
    let w = world(&[]);
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap().order_id;
    let v = w.engine.start_cooking(id).unwrap();
    let d = v.delivery.unwrap();
    assert_eq!((d.rider, d.charge), (None, None));
    w.engine.finish_cooking(id).unwrap();
    assert_eq!(w.engine.start_delivery(id, None).unwrap_err().kind(), ErrorKind::InvalidState);
    assert_eq!(w.engine.start_delivery(id, Some("ghost")).unwrap_err().kind(), ErrorKind::NotFound);
    w.engine.add_rider("lee").unwrap();
    w.engine.add_rider("choi").unwrap();
    let v = w.engine.start_delivery(id, Some("lee")).unwrap();
    assert_eq!(v.status, OrderStatus::Delivering);
    assert_eq!(v.delivery.unwrap().charge.unwrap().status, ChargeStatus::Paid);

    // A second order: assigned to the least busy rider (choi), then moved to lee.
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap().order_id;
    let v = w.engine.start_cooking(id).unwrap();
    assert_eq!(v.delivery.unwrap().rider.as_deref(), Some("choi"));
    w.engine.finish_cooking(id).unwrap();
    let v = w.engine.start_delivery(id, Some("lee")).unwrap();
    let d = v.delivery.unwrap();
    assert_eq!((d.rider.as_deref(), d.charge.unwrap().status), (Some("lee"), ChargeStatus::Paid));
    let calls = w.charge.calls();
    let choi = calls.iter().find(|c| c.starts_with("pay ezd-charge-2-")).unwrap();
    let key = choi.strip_prefix("pay ").unwrap().strip_suffix(" choi").unwrap();
    assert!(calls.iter().any(|c| c.starts_with(&format!("refund {key}-refund "))), "{calls:?}");
}

#[test]
fn a_breaker_opened_by_the_first_riders_refund_refuses_the_next_riders_charge() {
    let (pay, charge, inbox) = (Script::default(), Script::default(), Inbox::default());
    let engine = Engine::builder(MemoryStorage::new())
        .payment(Pay(pay.clone()))
        .charge(Charge(charge.clone()))
        .notifier(inbox)
        .breakers(BreakerSettings { failure_threshold: 1, open_ms: 3_600_000 })
        .build();
    let store = engine.add_store("BBQ", Some("park"), None).unwrap().id;
    engine.add_menu(store, "후라이드", 18_000).unwrap();
    engine.add_menu(store, "콜라", 2_000).unwrap();
    engine.add_rider("choi").unwrap();
    let id = engine.place_order(NewOrder::new(store, "kim", &items()).pay_now(None)).unwrap().order_id;
    assert_eq!(engine.start_cooking(id).unwrap().delivery.unwrap().charge.unwrap().status, ChargeStatus::Paid);
    engine.finish_cooking(id).unwrap();
    engine.add_rider("lee").unwrap();
    charge.set_down(true);
    // choi's charge goes back first: that call fails and opens the breaker,
    // so lee's charge is not even tried.
    let err = engine.start_delivery(id, Some("lee")).unwrap_err();
    assert!(matches!(err, Error::Unavailable { breaker_open: true, .. }), "{err:?}");
    let calls = charge.calls();
    assert!(calls.iter().any(|c| c.starts_with("refund ")), "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("pay ") && c.ends_with(" lee")),
        "called through an open breaker: {calls:?}"
    );
    assert_eq!(engine.status(id).unwrap().status, OrderStatus::Cooked);
}

#[test]
fn departure_waits_for_an_unpaid_charge_and_relay_pays_it() {
    let w = world(&["lee"]);
    w.charge.set_down(true);
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap().order_id;
    let v = w.engine.start_cooking(id).unwrap();
    assert_eq!(v.delivery.unwrap().charge.unwrap().status, ChargeStatus::Pending);
    w.engine.finish_cooking(id).unwrap();
    assert_eq!(w.engine.start_delivery(id, None).unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(w.engine.status(id).unwrap().status, OrderStatus::Cooked);
    w.charge.set_down(false);
    assert_eq!(w.engine.start_delivery(id, None).unwrap().status, OrderStatus::Delivering);
    let keys: Vec<String> = w.charge.calls();
    assert!(keys[0].starts_with("pay ezd-charge-1-") && keys[0].ends_with(" lee"), "{keys:?}");
    assert!(keys.iter().all(|c| c == &keys[0]), "every retry under the same key: {keys:?}");
}

/// A storage whose writes fail (a full disk, a database gone) once a
/// gateway call sets `failing`: between a command's first unit of work and
/// the one that records the gateway's answer.
#[derive(Clone)]
struct FailsAfterTheCall {
    inner: Arc<MemoryStorage>,
    failing: Arc<std::sync::atomic::AtomicBool>,
}
impl ezdelivery_core::ports::Storage for FailsAfterTheCall {
    fn write(
        &self,
        work: &mut dyn FnMut(&mut dyn ezdelivery_core::ports::Repo) -> ezdelivery_core::Result<()>,
    ) -> ezdelivery_core::Result<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::storage("the disk is full"));
        }
        ezdelivery_core::ports::Storage::write(&*self.inner, work)
    }
    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ezdelivery_core::ports::Repo) -> ezdelivery_core::Result<()>,
    ) -> ezdelivery_core::Result<()> {
        ezdelivery_core::ports::Storage::read(&*self.inner, work)
    }
}

/// A gateway that acts, answers something unreadable, and leaves the
/// storage failing: the answer cannot be recorded.
#[derive(Clone)]
struct InDoubtThenFull(Arc<std::sync::atomic::AtomicBool>, Script);
impl InDoubtThenFull {
    fn acted(&self, call: String) -> GatewayOutcome {
        self.1.calls.lock().unwrap().push(call);
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        GatewayOutcome::Unavailable { reason: "HTTP 503".into() }
    }
}
impl PaymentGateway for InDoubtThenFull {
    fn name(&self) -> &str {
        "test"
    }
    fn approve(&self, r: &PaymentRequest) -> GatewayOutcome {
        self.acted(format!("approve {}", r.idempotency_key))
    }
    fn refund(&self, r: &RefundRequest) -> GatewayOutcome {
        self.acted(format!("refund {}", r.idempotency_key))
    }
}
impl ChargeGateway for InDoubtThenFull {
    fn name(&self) -> &str {
        "test"
    }
    fn pay(&self, r: &ChargeRequest) -> GatewayOutcome {
        self.acted(format!("pay {}", r.idempotency_key))
    }
    fn refund(&self, r: &RefundRequest) -> GatewayOutcome {
        self.acted(format!("take back {}", r.idempotency_key))
    }
}

/// An answer that may have moved money and cannot be recorded: a payment
/// is told as queued (Unavailable, naming the order it kept), not as a
/// storage failure, which read "nothing written" for an order that relay
/// later paid; and a `start_cooking` that committed is not failed by its
/// charge's record (the order was cooking while the command said it failed).
#[test]
fn an_answer_in_doubt_that_cannot_be_recorded_is_told_as_queued() {
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let inner = Arc::new(MemoryStorage::new());
    let storage = FailsAfterTheCall { inner: Arc::clone(&inner), failing: Arc::clone(&failing) };
    let gateway = InDoubtThenFull(Arc::clone(&failing), Script::default());
    let engine = Engine::builder(storage).payment(gateway.clone()).charge(gateway.clone()).build();
    let store = engine.add_store("BBQ", Some("park"), None).unwrap().id;
    engine.add_menu(store, "후라이드", 18_000).unwrap();
    engine.add_rider("lee").unwrap();

    let e = engine.place_order(NewOrder::new(store, "kim", &items()[..1]).pay_now(None)).unwrap_err();
    let order = e.order().expect("the error names the order it kept");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("could not be recorded"), "{e}");
    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(engine.status(order).unwrap().status, OrderStatus::PendingPayment, "kept");

    // Paid through another engine on the same storage, then cooked: the
    // charge's answer cannot be recorded, and cooking stands.
    let paid = Engine::builder(FailsAfterTheCall { inner, failing: Arc::default() })
        .build()
        .place_order(NewOrder::new(store, "lee", &items()[..1]).pay_now(None))
        .unwrap()
        .order_id;
    let cooking = engine.start_cooking(paid).expect("cooking started: the charge waits for relay");
    assert_eq!(cooking.status, OrderStatus::Cooking);
    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(engine.status(paid).unwrap().status, OrderStatus::Cooking);
    assert_eq!(gateway.1.calls().len(), 2, "one approval, one charge: {:?}", gateway.1.calls());
}

/// A clock of the embedder's that reads past the year 9000 (or before the
/// year 1) writes nothing: SQLite kept such times as text it could not
/// read back, after the gateway had taken the money.
#[test]
fn a_clock_out_of_the_years_the_storage_keeps_writes_nothing() {
    use chrono::TimeZone;
    use ezdelivery_core::adapters::sqlite::SqliteStorage;
    struct Fixed(chrono::DateTime<chrono::Utc>);
    impl ezdelivery_core::ports::Clock for Fixed {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            self.0
        }
    }
    let pay = Script::default();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let sane = Engine::builder(SqliteStorage::open(&db).unwrap()).build();
    let store = sane.add_store("BBQ", None, None).unwrap().id;
    sane.add_menu(store, "후라이드", 18_000).unwrap();
    for year in [10_000, 9_001, 0, -5] {
        let at = chrono::Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap();
        let storage = SqliteStorage::open(&db).unwrap();
        let broken = Engine::builder(storage).payment(Pay(pay.clone())).clock(Fixed(at)).build();
        let e = broken.place_order(NewOrder::new(store, "kim", &items()[..1]).pay_now(None)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal, "{year}: {e}");
        assert!(e.to_string().contains("the clock reads"), "{e}");
    }
    assert!(pay.calls().is_empty(), "no gateway call");
    assert!(sane.check_invariants().unwrap().is_empty());
    assert_eq!(sane.order_counts().unwrap().iter().map(|(_, n)| n).sum::<u64>(), 0, "no order written");
}

/// A channel's name is its key: a second notifier of one name replaces the
/// first. Both used to be kept; each message was queued twice and sent
/// twice through the first.
#[test]
fn a_second_notifier_of_one_channel_name_replaces_the_first() {
    let (first, second) = (Inbox::default(), Inbox::default());
    let engine = Engine::builder(MemoryStorage::new()).notifier(first.clone()).notifier(second.clone()).build();
    let store = engine.add_store("BBQ", Some("park"), None).unwrap().id;
    engine.add_menu(store, "후라이드", 18_000).unwrap();
    engine.place_order(NewOrder::new(store, "kim", &items()[..1]).pay_now(None)).unwrap();
    assert!(first.0.lock().unwrap().is_empty());
    let ids: Vec<String> = second.0.lock().unwrap().iter().map(|m| m.id.to_string()).collect();
    let once: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), once.len()), (3, 3), "placed, paid and the owner's, once each: {ids:?}");
}

/// A notifier of the embedder's that panics for the store owner.
struct Panicking(Arc<Mutex<Vec<Message>>>, ChannelName);
impl Notifier for Panicking {
    fn channel(&self) -> &ChannelName {
        &self.1
    }
    fn send(&self, m: &Message) -> Result<(), String> {
        if m.recipient == "park" {
            panic!("no route to park");
        }
        self.0.lock().unwrap().push(m.clone());
        Ok(())
    }
}

/// A notifier that panics is a channel that failed: the command that sent
/// through it succeeds, relay records every message of its batch (the one
/// that panicked given up after its tries), and each message goes out once.
/// The panic used to fail the command, and every relay after it, which
/// recorded nothing and so sent the batch's messages again each time.
#[test]
fn a_notifier_that_panics_is_a_failed_send_not_a_failed_command() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let engine = Engine::builder(MemoryStorage::new())
        .notifier(Panicking(Arc::clone(&sent), ChannelName::new("app").unwrap()))
        .retry(RetryPolicy { base_ms: 0, max_ms: 0, max_message_tries: 3, attention_after: 10 })
        .build();
    let store = engine.add_store("BBQ", Some("park"), None).unwrap().id;
    engine.add_menu(store, "후라이드", 18_000).unwrap();
    let placed = engine.place_order(NewOrder::new(store, "kim", &items()[..1]).pay_now(None));
    let relays: Vec<_> = (0..4).map(|_| engine.relay()).collect();
    assert_eq!(placed.unwrap().status, OrderStatus::Paid);
    assert!(relays.iter().all(Result::is_ok), "{relays:?}");
    let ids: Vec<String> = sent.lock().unwrap().iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids.len(), 2, "the customer's two messages, once each: {ids:?}");
    assert!(ids.iter().all(|id| id.ends_with(":customer")), "{ids:?}");
    let dead = engine.dead_messages().unwrap();
    assert_eq!(dead.len(), 1, "the owner's, given up on");
    assert_eq!(dead[0].delivery.last_error.as_deref(), Some("the notifier panicked: no route to park"));
}

#[test]
fn a_failing_notifier_never_fails_a_command_and_relay_delivers_later() {
    // Retries due at once, and given up after three tries.
    let w = world_with(&["lee"], RetryPolicy { base_ms: 0, max_ms: 0, max_message_tries: 3, attention_after: 10 });
    *w.inbox.1.lock().unwrap() = true;
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap().order_id;
    assert_eq!(w.engine.status(id).unwrap().status, OrderStatus::Paid);
    assert!(w.inbox.0.lock().unwrap().is_empty());
    *w.inbox.1.lock().unwrap() = false;
    let report = w.engine.relay().unwrap();
    assert_eq!(report.messages_delivered, 3, "{report:?}");
    let sent = w.inbox.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    // Delivered messages are never sent again.
    assert_eq!(w.engine.relay().unwrap().messages_delivered, 0);
    assert_eq!(w.inbox.0.lock().unwrap().len(), 3);

    // A channel that keeps failing parks its messages as dead; they can be revived.
    *w.inbox.1.lock().unwrap() = true;
    w.engine.cancel(id, "").unwrap();
    // A failing channel is tried once per batch, so each relay costs it one try.
    for _ in 0..6 {
        w.engine.relay().unwrap();
    }
    let dead = w.engine.dead_messages().unwrap();
    assert!(!dead.is_empty());
    assert!(dead.iter().all(|q| q.delivery.last_error.as_deref() == Some("inbox down")));
    *w.inbox.1.lock().unwrap() = false;
    assert_eq!(w.engine.revive_dead_messages().unwrap(), dead.len());
    // Five consecutive failures opened the channel's breaker: it is skipped, not called.
    let breaker = w.engine.breakers().unwrap().into_iter().find(|b| b.name.as_str() == "test").unwrap();
    assert_eq!(breaker.state, BreakerState::Open);
    let report = w.engine.relay().unwrap();
    assert_eq!(report.messages_delivered, 0);
    assert!(report.messages_skipped >= dead.len(), "{report:?}");
    assert_eq!(w.engine.reset_breaker(&w.engine.breaker_name("test").unwrap()).unwrap().state, BreakerState::Closed);
    assert_eq!(w.engine.relay().unwrap().messages_delivered, report.messages_skipped);
    assert!(w.engine.dead_messages().unwrap().is_empty());
}

#[test]
fn rebuilding_the_projection_gives_the_same_views() {
    let w = world(&["lee"]);
    for n in 0..5 {
        let picks = items();
        let new = NewOrder::new(w.store, "kim", &picks);
        let id = w.engine.place_order(if n % 2 == 0 { new.pay_now(None) } else { new }).unwrap().order_id;
        if n % 2 == 0 {
            w.engine.start_cooking(id).unwrap();
        }
        if n == 4 {
            w.engine.cancel(id, "").unwrap();
        }
    }
    let before = w.engine.customer_orders("kim").unwrap();
    let progress = w.engine.rebuild_projection().unwrap();
    assert!(progress.events > 0);
    assert_eq!(w.engine.customer_orders("kim").unwrap(), before);
}

#[test]
fn bad_input_writes_nothing() {
    let w = world(&["lee"]);
    let before = w.engine.events(0, None, 10_000).unwrap().len();
    let bad: Vec<(Vec<ItemPick>, i64)> = vec![
        (vec![ItemPick::new("후라이드", 0)], w.store),
        (vec![ItemPick::new("없는메뉴", 1)], w.store),
        (vec![], w.store),
        (items(), 99),
    ];
    for (picks, store) in bad {
        assert!(w.engine.place_order(NewOrder::new(store, "kim", &picks).pay_now(None)).is_err());
    }
    assert!(w.engine.add_menu(w.store, "x", -1).is_err());
    assert!(w.engine.add_menu(w.store, "후라이드", 1).is_err(), "duplicate menu name");
    assert!(w.engine.review(1, 3, "").is_err());
    assert_eq!(w.engine.events(0, None, 10_000).unwrap().len(), before);
    assert!(w.engine.customer_orders("kim").unwrap().is_empty());
}

#[test]
fn a_charge_paid_after_its_order_was_cancelled_is_taken_back() {
    let w = world(&["lee"]);
    // The charge gateway times out: it may have paid the rider.
    w.charge.set_down(true);
    let id = w.engine.place_order(NewOrder::new(w.store, "kim", &items()).pay_now(None)).unwrap().order_id;
    w.engine.start_cooking(id).unwrap();
    let v = w.engine.cancel(id, "").unwrap();
    let charge = v.delivery.unwrap().charge.unwrap();
    assert_eq!(charge.status, ChargeStatus::Pending, "in doubt: neither voided nor forgotten");
    // Asked again under the same key, the gateway says it paid: take it back
    // (once the back-off of the cancel's own replay, up to 3 s, is over).
    w.charge.set_down(false);
    let mut rounds = 0;
    while w.engine.status(id).unwrap().delivery.unwrap().charge.unwrap().status != ChargeStatus::Refunded {
        w.engine.relay().unwrap();
        rounds += 1;
        assert!(rounds < 200, "relay never settled the charge");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let calls = w.charge.calls();
    let paid: Vec<_> = calls.iter().filter(|c| c.starts_with("pay ")).collect();
    assert!(paid.iter().all(|c| c == &paid[0]), "one key: {calls:?}");
    assert!(calls.iter().any(|c| c.starts_with("refund ")), "{calls:?}");
    // Nobody is told the cancelled order was paid.
    let sent = w.inbox.0.lock().unwrap().clone();
    assert!(!sent
        .iter()
        .any(|m| m.order_id == id && m.event.as_str() == "PaymentApproved" && m.status == OrderStatus::Cancelled));
}

#[test]
fn two_engines_on_one_database_send_each_message_once() {
    use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let (a_inbox, b_inbox) = (Inbox::default(), Inbox::default());
    // A's commands claim their messages but have no time to send them: the
    // claim is released, due again, for whoever relays.
    let a = Engine::builder(SqliteStorage::open_with(&db, Synchronous::Normal).unwrap())
        .notifier(a_inbox.clone())
        .relay_budget(std::time::Duration::ZERO)
        .build();
    let b =
        Engine::builder(SqliteStorage::open_with(&db, Synchronous::Normal).unwrap()).notifier(b_inbox.clone()).build();
    let store = a.add_store("S", None, None).unwrap().id;
    a.add_menu(store, "m", 1_000).unwrap();
    a.place_order(NewOrder::new(store, "kim", &[ItemPick::new("m", 1)]).pay_now(None)).unwrap();
    assert!(a_inbox.0.lock().unwrap().is_empty());
    let first = b.relay().unwrap().messages_delivered;
    assert_eq!(first, 3, "placed, paid (customer), paid (owner)");
    assert_eq!(a.relay().unwrap().messages_delivered + b.relay().unwrap().messages_delivered, 0);
    let mut ids: Vec<String> = b_inbox.0.lock().unwrap().iter().map(|m| m.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each message once");
}

/// One engine serves many threads: commands and reads run at once through
/// `&Engine`, each command returns the view its own units of work left
/// (not another thread's), and every message is delivered once.
#[test]
fn one_engine_serves_threads_each_command_returning_its_own_view() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
    use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::default();
    let engine =
        Engine::builder(SqliteStorage::open_with(&dir.path().join("threads.db"), Synchronous::Normal).unwrap())
            .notifier(inbox.clone())
            .build();
    let store = engine.add_store("S", Some("park"), None).unwrap().id;
    engine.add_menu(store, "m", 1_000).unwrap();
    engine.add_rider("lee").unwrap();
    let orders: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let engine = &engine;
                scope.spawn(move || {
                    let customer = format!("customer {t}");
                    let mut mine = Vec::new();
                    for _ in 0..5 {
                        let placed = engine
                            .place_order(NewOrder::new(store, &customer, &[ItemPick::new("m", 1)]).pay_now(None))
                            .unwrap();
                        assert_eq!((&*placed.customer, placed.status), (customer.as_str(), OrderStatus::Paid));
                        let id = placed.order_id;
                        assert_eq!(engine.start_cooking(id).unwrap().order_id, id);
                        assert_eq!(engine.status(id).unwrap().status, OrderStatus::Cooking);
                        assert_eq!(engine.finish_cooking(id).unwrap().status, OrderStatus::Cooked);
                        assert_eq!(engine.start_delivery(id, None).unwrap().status, OrderStatus::Delivering);
                        assert_eq!(engine.complete_delivery(id).unwrap().status, OrderStatus::Delivered);
                        mine.push(id);
                    }
                    assert_eq!(engine.customer_orders(&customer).unwrap().len(), 5);
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(orders.len(), 20);
    assert!(engine.check_invariants().unwrap().is_empty());
    engine.relay().unwrap();
    let delivered = inbox.0.lock().unwrap().clone();
    let mut ids: Vec<&str> = delivered.iter().map(|m| m.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), delivered.len(), "each message once");
    // Every order had the same life, so the same messages as any other.
    for order in &orders {
        assert_eq!(delivered.iter().filter(|m| m.order_id == *order).count(), 7, "order {order}'s messages");
    }
}

/// A storage whose every write runs its unit of work twice: the first run
/// is rolled back after it did all its work, as PostgreSQL aborts a
/// transaction that conflicted with another (and the adapter runs it
/// again).
struct RerunEveryWrite(MemoryStorage);

impl ezdelivery_core::ports::Storage for RerunEveryWrite {
    fn write(
        &self,
        work: &mut dyn FnMut(&mut dyn ezdelivery_core::ports::Repo) -> ezdelivery_core::Result<()>,
    ) -> ezdelivery_core::Result<()> {
        let aborted = self.0.write(&mut |repo| {
            work(repo)?;
            Err(Error::Internal("serialisation failure".into()))
        });
        assert!(aborted.is_err());
        self.0.write(work)
    }

    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ezdelivery_core::ports::Repo) -> ezdelivery_core::Result<()>,
    ) -> ezdelivery_core::Result<()> {
        self.0.read(work)
    }
}

#[test]
fn a_unit_of_work_run_again_after_a_conflict_does_its_work_once() {
    let lifecycle = |engine: &Engine| {
        let store = engine.add_store("S", Some("park"), None).unwrap().id;
        engine.add_menu(store, "m", 1_000).unwrap();
        engine.add_rider("lee").unwrap();
        let id =
            engine.place_order(NewOrder::new(store, "kim", &[ItemPick::new("m", 2)]).pay_now(None)).unwrap().order_id;
        engine.start_cooking(id).unwrap();
        engine.finish_cooking(id).unwrap();
        engine.start_delivery(id, None).unwrap();
        engine.complete_delivery(id).unwrap();
        engine.review(id, 5, "good").unwrap();
        let cancelled =
            engine.place_order(NewOrder::new(store, "kim", &[ItemPick::new("m", 1)]).pay_now(None)).unwrap();
        engine.cancel(cancelled.order_id, "changed my mind").unwrap();
        engine.relay().unwrap();
        let events: Vec<String> =
            engine.events(0, None, 1000).unwrap().iter().map(|e| e.event.type_name().to_string()).collect();
        (engine.status(id).unwrap(), engine.status(cancelled.order_id).unwrap(), events, engine.stores().unwrap())
    };
    fn build(storage: impl ezdelivery_core::ports::Storage + 'static, inbox: &Inbox, pay: &Script) -> Engine {
        Engine::builder(storage).payment(Pay(pay.clone())).notifier(inbox.clone()).build()
    }
    let (plain_inbox, plain_pay) = (Inbox::default(), Script::default());
    let plain = lifecycle(&build(MemoryStorage::new(), &plain_inbox, &plain_pay));
    let (rerun_inbox, rerun_pay) = (Inbox::default(), Script::default());
    let rerun_engine = build(RerunEveryWrite(MemoryStorage::new()), &rerun_inbox, &rerun_pay);
    let rerun = lifecycle(&rerun_engine);
    let strip = |mut v: ezdelivery_core::domain::view::OrderView| {
        for t in &mut v.timeline {
            t.at = chrono::DateTime::UNIX_EPOCH;
        }
        v.placed_at = chrono::DateTime::UNIX_EPOCH;
        v.updated_at = chrono::DateTime::UNIX_EPOCH;
        v
    };
    assert_eq!(strip(rerun.0), strip(plain.0), "the same delivered order");
    assert_eq!(strip(rerun.1), strip(plain.1), "the same cancelled order");
    assert_eq!(rerun.2, plain.2, "the same events, each once");
    assert_eq!(rerun.3, plain.3, "the review counted once");
    assert_eq!(rerun_pay.calls().len(), plain_pay.calls().len(), "each gateway call once");
    let texts = |inbox: &Inbox| inbox.0.lock().unwrap().iter().map(|m| m.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&rerun_inbox), texts(&plain_inbox), "each message once");
    assert!(rerun_engine.check_invariants().unwrap().is_empty());
}

/// A clock the test moves: the system's time plus an offset.
#[derive(Clone, Default)]
struct Shifted(Arc<Mutex<chrono::TimeDelta>>);
impl ezdelivery_core::ports::Clock for Shifted {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + *self.0.lock().unwrap()
    }
}

/// A payment gateway shared by two engines, idempotent per key: the first
/// call of a key charges (the ledger counts it), a repeat answers the same.
/// With `hold`, the first call of engine A waits, after charging, until the
/// test lets it answer `late`.
/// Every refund it is asked is done, and recorded in `refunded`; it
/// answers `refund_answer` (`None`: done).
#[derive(Clone)]
struct Held {
    charged: Arc<Mutex<Vec<Arc<str>>>>,
    entered: Arc<Mutex<Option<std::sync::mpsc::Sender<()>>>>,
    release: Arc<Mutex<Option<std::sync::mpsc::Receiver<()>>>>,
    late: GatewayOutcome,
    refunded: Arc<Mutex<Vec<Arc<str>>>>,
    refund_answer: Arc<Mutex<Option<GatewayOutcome>>>,
}
impl PaymentGateway for Held {
    fn name(&self) -> &str {
        "test"
    }

    fn approve(&self, r: &PaymentRequest) -> GatewayOutcome {
        let first = {
            let mut charged = self.charged.lock().unwrap();
            let first = !charged.contains(&r.idempotency_key);
            if first {
                charged.push(r.idempotency_key.clone());
            }
            first
        };
        let waiting = self.release.lock().unwrap().take();
        if let (true, Some(release)) = (first, waiting) {
            if let Some(entered) = self.entered.lock().unwrap().take() {
                entered.send(()).unwrap();
            }
            release.recv_timeout(std::time::Duration::from_secs(20)).unwrap();
            return self.late.clone();
        }
        GatewayOutcome::Approved { gateway_ref: format!("p-{}", r.idempotency_key) }
    }
    fn refund(&self, r: &RefundRequest) -> GatewayOutcome {
        self.refunded.lock().unwrap().push(r.idempotency_key.clone());
        let answer = self.refund_answer.lock().unwrap().clone();
        answer.unwrap_or_else(|| GatewayOutcome::Approved { gateway_ref: format!("r-{}", r.idempotency_key) })
    }
}

/// Engine A's call outlives its claim; engine B takes the call over (the
/// same key: the gateway acts once) and records the approval; A's late
/// answer is then recorded only as far as it is a fact.
fn a_call_taken_over_after_its_lease(late: GatewayOutcome) {
    let (_dir, b, gateway, order, paying, release) = a_call_held_past_its_lease(late, RetryPolicy::default());
    release.send(()).unwrap();
    let a_result = paying.join().unwrap();
    assert_eq!(a_result.unwrap(), OrderStatus::Paid, "A reports what happened to the order");
    assert_eq!(gateway.charged.lock().unwrap().len(), 1, "the gateway acted once: one key, one charge");
    let approvals = b.events(0, Some(order), 100).unwrap();
    let approvals = approvals.iter().filter(|e| e.event.type_name() == "PaymentApproved").count();
    assert_eq!(approvals, 1, "recorded once");
    let view = b.status(order).unwrap();
    assert_eq!(view.payment.unwrap().status, PaymentStatus::Approved);
}

/// B records the approval A's call got (A's claim lapsed); the order is
/// cancelled, and its refund, done at the gateway but answered 503, waits
/// for a person. A's late approval is then no news: it used to be taken
/// again, refunded a second time under a new key (`…-refund-refund`), and
/// the attention cleared, the customer refunded twice.
#[test]
fn a_late_approval_after_its_refund_went_to_a_person_refunds_nothing_more() {
    let retry = RetryPolicy { base_ms: 0, max_ms: 0, max_message_tries: 3, attention_after: 1 };
    let late = GatewayOutcome::Approved { gateway_ref: "late".into() };
    let (_dir, b, gateway, order, paying, release) = a_call_held_past_its_lease(late, retry);
    *gateway.refund_answer.lock().unwrap() = Some(GatewayOutcome::Unavailable { reason: "HTTP 503".into() });
    b.cancel(order, "").unwrap();
    assert_eq!(b.status(order).unwrap().payment.unwrap().status, PaymentStatus::NeedsAttention);
    let refund_keys = gateway.refunded.lock().unwrap().clone();
    assert_eq!(refund_keys.len(), 1, "{refund_keys:?}");

    release.send(()).unwrap();
    let a_result = paying.join().unwrap();
    assert!(matches!(a_result, Ok(OrderStatus::Cancelled)), "A reports the order as it is: {a_result:?}");
    assert_eq!(*gateway.refunded.lock().unwrap(), refund_keys, "no second refund");
    let view = b.status(order).unwrap();
    assert_eq!(view.payment.unwrap().status, PaymentStatus::NeedsAttention, "still for a person");
    assert_eq!(b.attention().unwrap().len(), 1, "listed");
    let events = b.events(0, Some(order), 100).unwrap();
    assert_eq!(events.iter().filter(|e| e.event.type_name() == "PaymentApproved").count(), 1, "recorded once");

    // The person replays the refund's own key: refunded, once.
    *gateway.refund_answer.lock().unwrap() = None;
    assert_eq!(b.requeue_attention().unwrap(), 1);
    b.relay().unwrap();
    assert_eq!(b.status(order).unwrap().payment.unwrap().status, PaymentStatus::Refunded);
    let keys = gateway.refunded.lock().unwrap().clone();
    assert!(keys.len() == 2 && keys[0] == keys[1], "the same refund's key again: {keys:?}");
}

/// Engines A and B on one database (in the folder returned) and one
/// [`Held`] gateway: A's `pay` of
/// a new order is held in the gateway, after it charged, until the test
/// sends on the returned channel; the clock has moved past A's lease, and
/// B has taken the call over (the same key: no second charge) and
/// recorded the approval.
#[allow(clippy::type_complexity)]
fn a_call_held_past_its_lease(
    late: GatewayOutcome,
    retry: RetryPolicy,
) -> (
    tempfile::TempDir,
    Engine,
    Held,
    i64,
    std::thread::JoinHandle<Result<OrderStatus, Error>>,
    std::sync::mpsc::Sender<()>,
) {
    use ezdelivery_core::adapters::sqlite::{SqliteStorage, Synchronous};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let clock = Shifted::default();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let gateway = Held {
        charged: Arc::default(),
        entered: Arc::new(Mutex::new(Some(entered_tx))),
        release: Arc::new(Mutex::new(Some(release_rx))),
        late,
        refunded: Arc::default(),
        refund_answer: Arc::default(),
    };
    let engine = |gateway: Held| {
        Engine::builder(SqliteStorage::open_with(&db, Synchronous::Normal).unwrap())
            .payment(gateway)
            .clock(clock.clone())
            .lease(std::time::Duration::from_secs(5))
            .retry(retry)
            .build()
    };
    let a = engine(gateway.clone());
    let b = engine(Held { release: Arc::default(), ..gateway.clone() });
    let store = a.add_store("S", None, None).unwrap().id;
    a.add_menu(store, "m", 1_000).unwrap();
    let order = a.place_order(NewOrder::new(store, "kim", &[ItemPick::new("m", 1)])).unwrap().order_id;
    let paying = std::thread::spawn(move || a.pay(order, Some("4111111111111111")).map(|v| v.status));
    entered.recv_timeout(std::time::Duration::from_secs(20)).unwrap();

    // Within the lease, nobody else may call: B's relay and pay leave it alone.
    assert_eq!(b.relay().unwrap().payments_approved, 0);
    assert!(matches!(b.pay(order, None), Err(Error::Refused(_))), "another process is calling");
    // The lease runs out (A stalls): B takes the call over.
    *clock.0.lock().unwrap() = chrono::TimeDelta::seconds(6);
    assert_eq!(b.relay().unwrap().payments_approved, 1);
    assert_eq!(b.status(order).unwrap().status, OrderStatus::Paid);
    (dir, b, gateway, order, paying, release)
}

#[test]
fn a_late_approval_after_a_takeover_is_recorded_once() {
    a_call_taken_over_after_its_lease(GatewayOutcome::Approved { gateway_ref: "late".into() });
}

#[test]
fn a_late_unknown_answer_after_a_takeover_changes_nothing() {
    a_call_taken_over_after_its_lease(GatewayOutcome::Unavailable { reason: "timed out".into() });
}

/// An embedder's settings of centuries (`Duration::MAX` for the lease, the
/// relay budget; `u64::MAX` ms of back-off) are times a storage keeps, not
/// a panic: on a SQLite file the order queued while its gateway is down
/// can still be relayed and cancelled (the times written used to be of the
/// year 262142, which SQLite could not read back).
#[test]
fn settings_of_centuries_write_times_a_storage_can_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let storage = ezdelivery_core::adapters::sqlite::SqliteStorage::open(dir.path().join("t.db")).unwrap();
    let (pay, inbox) = (Script::default(), Inbox::default());
    let forever = RetryPolicy { base_ms: u64::MAX, max_ms: u64::MAX, ..RetryPolicy::default() };
    let engine = Engine::builder(storage)
        .payment(Pay(pay.clone()))
        .notifier(inbox.clone())
        .retry(forever)
        .lease(std::time::Duration::MAX)
        .relay_budget(std::time::Duration::MAX)
        .build();
    let store = engine.add_store("BBQ", Some("park"), None).unwrap().id;
    engine.add_menu(store, "후라이드", 18_000).unwrap();
    pay.set_down(true);
    *inbox.1.lock().unwrap() = true;
    let placed = engine.place_order(NewOrder::new(store, "kim", &items()[..1]).pay_now(None));
    let order = match placed {
        Err(Error::Unavailable { order, .. }) => order,
        other => panic!("queued while the gateway is down: {other:?}"),
    };
    engine.relay().expect("a relay reads the times it wrote");
    engine.queue_status().expect("so does the queue's status");
    assert_eq!(engine.cancel(order, "changed my mind").unwrap().status, OrderStatus::Cancelled);
    assert!(engine.check_invariants().unwrap().is_empty());
}

/// A custom gateway that approves without a reference (which a refund
/// needs) is not taken at its word: the payment stays in doubt, asked
/// again under its key, and the order is not established.
#[test]
fn an_approval_without_a_reference_is_an_answer_that_cannot_be_read() {
    struct NoRef;
    impl PaymentGateway for NoRef {
        fn name(&self) -> &str {
            "noref"
        }
        fn approve(&self, _: &PaymentRequest) -> GatewayOutcome {
            GatewayOutcome::Approved { gateway_ref: " ".into() }
        }
        fn refund(&self, _: &RefundRequest) -> GatewayOutcome {
            GatewayOutcome::Approved { gateway_ref: String::new() }
        }
    }
    let engine = Engine::builder(MemoryStorage::new()).payment(NoRef).build();
    let store = engine.add_store("BBQ", Some("park"), None).unwrap().id;
    engine.add_menu(store, "후라이드", 18_000).unwrap();
    let placed = engine.place_order(NewOrder::new(store, "kim", &items()[..1]).pay_now(None));
    let Err(Error::Unavailable { order, reason, .. }) = placed else { panic!("in doubt: {placed:?}") };
    assert!(reason.contains("without a reference"), "{reason}");
    let view = engine.status(order).unwrap();
    assert_eq!(view.status, OrderStatus::PendingPayment);
    assert_eq!(view.payment.map(|p| p.status), Some(PaymentStatus::Pending));
}

/// A gateway that panics is an answer that cannot be read, as a notifier's
/// panic is a failed send: the caller gets `Unavailable`, not the panic,
/// and a retry once it behaves is not refused as "being sent by another
/// process" (the claim a panic left used to hold for the whole lease).
#[test]
fn a_panicking_gateway_is_an_answer_that_cannot_be_read() {
    struct Panics(Arc<Mutex<bool>>);
    impl PaymentGateway for Panics {
        fn name(&self) -> &str {
            "panics"
        }
        fn approve(&self, r: &PaymentRequest) -> GatewayOutcome {
            if *self.0.lock().unwrap() {
                panic!("a bug in the embedder's gateway");
            }
            GatewayOutcome::Approved { gateway_ref: format!("p-{}", r.idempotency_key) }
        }
        fn refund(&self, _: &RefundRequest) -> GatewayOutcome {
            GatewayOutcome::Approved { gateway_ref: "r".into() }
        }
    }
    let panicking = Arc::new(Mutex::new(true));
    let engine = Engine::builder(MemoryStorage::new()).payment(Panics(panicking.clone())).build();
    let store = engine.add_store("BBQ", Some("park"), None).unwrap().id;
    engine.add_menu(store, "후라이드", 18_000).unwrap();
    let placed = engine.place_order(NewOrder::new(store, "kim", &items()[..1]).pay_now(None));
    let Err(Error::Unavailable { order, reason, .. }) = placed else { panic!("unavailable: {placed:?}") };
    assert!(reason.contains("the gateway panicked: a bug"), "{reason}");
    *panicking.lock().unwrap() = false;
    assert_eq!(engine.pay(order, None).unwrap().status, OrderStatus::Paid);
}
