//! The storage contract, for every adapter: each [`Repo`] method exercised
//! through [`Storage::write`] and [`Storage::read`] with real assertions.
//!
//! An adapter's tests call [`run_all`] with a function that makes a fresh,
//! empty storage; every check gets its own. A failing check does not stop
//! the others: `run_all` panics at the end with the names of all that failed
//! (their panic messages are printed above it).
//!
//! The checks save records in an order that satisfies foreign keys (stores
//! before menus and orders, orders before their payments, …), use times with
//! whole microseconds (what SQLite and PostgreSQL keep), and pin only what
//! the trait's documentation promises.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

use chrono::{DateTime, Duration, Utc};

use crate::adapters::calls::CallRecord;
use crate::domain::attempt::{Attempt, Claim};
use crate::domain::view::OrderView;
use crate::domain::{
    Breaker, BreakerName, BreakerState, Charge, ChargeStatus, Delivery, DeliveryStatus, Event, KitchenStatus,
    KitchenTicket, Menu, Order, OrderItem, OrderStatus, Payment, PaymentStatus, Review, Rider, Store,
};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::requests::{RequestClaim, StoredResponse};
use crate::ports::storage::{QueueStatus, Repo, Storage, StoredEvent, Table};
use crate::ports::Message;
use crate::{Error, Result};

type Check = fn(&mut dyn Storage);

/// Every check, by name.
const CHECKS: &[(&str, Check)] = &[
    ("next_id", next_id),
    ("stores", stores),
    ("menus", menus),
    ("riders", riders),
    ("longest_names", longest_names),
    ("least_busy_rider", least_busy_rider),
    ("orders", orders),
    ("store_inbox", store_inbox),
    ("payments", payments),
    ("tickets", tickets),
    ("deliveries", deliveries),
    ("charges", charges),
    ("reviews", reviews),
    ("payments_awaiting", |s| awaiting(s, &PAYMENTS)),
    ("charges_awaiting", |s| awaiting(s, &CHARGES)),
    ("payments_needing_attention", |s| needing_attention(s, &PAYMENTS)),
    ("charges_needing_attention", |s| needing_attention(s, &CHARGES)),
    ("events", events),
    ("checkpoints", checkpoints),
    ("views", views),
    ("messages", messages),
    ("due_batches", due_batches),
    ("messages_of_events", messages_of_events),
    ("dead_messages", dead_messages),
    ("purge_delivered_messages", purge_delivered_messages),
    ("queue_status", queue_status),
    ("breakers", breakers),
    ("request_keys", request_keys),
    ("purge_requests", purge_requests),
    ("order_counts", order_counts),
    ("failed_write_rolls_back", failed_write_rolls_back),
    ("failed_read_returns_its_error", failed_read_returns_its_error),
];

/// Runs every check, each on a fresh storage from `make`.
pub(crate) fn run_all(make: &dyn Fn() -> Box<dyn Storage>) {
    let mut failed = Vec::new();
    for (name, check) in CHECKS {
        let mut storage = make();
        if catch_unwind(AssertUnwindSafe(|| check(storage.as_mut()))).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "storage contract checks failed: {failed:?} (their panics are printed above)");
}

// ---------------------------------------------------------------- helpers

/// Runs `work` through `tx` (a storage's `write` or `read`) and returns what
/// it returned: the `Storage` methods return nothing, so a test that wants
/// a value carries it out. The adapters' own tests use it too.
pub(crate) fn through<T>(
    tx: impl FnOnce(&mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()>,
    mut work: impl FnMut(&mut dyn Repo) -> Result<T>,
) -> Result<T> {
    let mut out = None;
    tx(&mut |repo| {
        out = Some(work(repo)?);
        Ok(())
    })?;
    out.ok_or_else(|| Error::Internal("the transaction did not run its work".into()))
}

/// Runs `work` in a write transaction and returns what it returned.
fn write<T>(s: &mut dyn Storage, work: impl FnMut(&mut dyn Repo) -> Result<T>) -> T {
    through(|w| s.write(w), work).expect("the write fails")
}

/// Runs `work` in a read transaction and returns what it returned.
fn read<T>(s: &mut dyn Storage, work: impl FnMut(&mut dyn Repo) -> Result<T>) -> T {
    through(|w| s.read(w), work).expect("the read fails")
}

/// A time `secs` after a fixed instant, with whole microseconds.
fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_714_521_600 + secs, 123_456_000).expect("a valid time")
}

pub(crate) fn store(id: i64) -> Store {
    Store {
        id,
        name: format!("치킨집 {id}").into(),
        owner: format!("owner-{id}").into(),
        address: format!("서울 강남구 테헤란로 {id}").into(),
        open: true,
        delivery_charge: 3_000 + id,
        review_count: 2,
        review_sum: 9,
    }
}

fn menu(id: i64, store_id: i64, name: &str) -> Menu {
    Menu { id, store_id, name: name.into(), price: 18_000 + id, available: true }
}

fn rider(id: i64, name: &str) -> Rider {
    Rider { id, name: name.into() }
}

fn item(menu_id: i64, qty: u32) -> OrderItem {
    OrderItem { menu_id, name: format!("메뉴 {menu_id}").into(), unit_price: 1_000 * menu_id, qty }
}

fn order(id: i64, store_id: i64, status: OrderStatus) -> Order {
    let items = vec![item(3, 2), item(1, 1), item(2, 5)];
    Order {
        id,
        store_id,
        customer: "kim".into(),
        address: "서울 마포구 1".into(),
        total: items.iter().map(|i| i.unit_price * i64::from(i.qty)).sum(),
        items: items.into(),
        status,
        reviewed: false,
        created_at: t(id),
        updated_at: t(id + 1),
    }
}

fn attempt(key: &str, next_at: Option<DateTime<Utc>>) -> Attempt {
    Attempt {
        idempotency_key: key.into(),
        tries: 3,
        next_at,
        last_error: Some("gateway timed out".into()),
        maybe_processed: true,
        unsettled: 2,
        claim: next_at.map(|until| Claim { token: format!("claim-of-{key}").into(), until }),
        gateway: Some(GW.into()),
    }
}

/// The gateway the sample payments and charges went to.
const GW: &str = "http://gw.test:8083";

fn payment(id: i64, order_id: i64, status: PaymentStatus, next_at: Option<DateTime<Utc>>) -> Payment {
    Payment {
        id,
        order_id,
        amount: 36_000 + id,
        card: Some("************0002".to_string()),
        status,
        gateway_ref: Some(format!("gw-pay-{id}")),
        attempt: attempt(&format!("ezd-pay-{id}"), next_at),
        created_at: t(10 + id),
        updated_at: t(20 + id),
    }
}

fn charge(id: i64, order_id: i64, rider_id: i64, status: ChargeStatus, next_at: Option<DateTime<Utc>>) -> Charge {
    Charge {
        id,
        order_id,
        rider_id,
        amount: 3_000 + id,
        status,
        gateway_ref: Some(format!("gw-charge-{id}")),
        attempt: attempt(&format!("ezd-charge-{id}"), next_at),
        created_at: t(30 + id),
        updated_at: t(40 + id),
    }
}

fn delivery(order_id: i64, rider_id: Option<i64>, status: DeliveryStatus) -> Delivery {
    Delivery { order_id, rider_id, charge: 3_000, status, updated_at: t(50 + order_id) }
}

/// Saves stores `1..=stores`, riders `1..=riders` and orders `1..=orders`
/// of store 1 (status paid): the parents most records need.
fn world(s: &mut dyn Storage, stores: i64, riders: i64, orders: i64) {
    write(s, |r| {
        for id in 1..=stores {
            r.save_store(&store(id))?;
        }
        for id in 1..=riders {
            r.save_rider(&rider(id, &format!("rider-{id}")))?;
        }
        for id in 1..=orders {
            r.insert_order(&order(id, 1, OrderStatus::Paid))?;
        }
        Ok(())
    });
}

fn ids<T>(records: &[T], id: impl Fn(&T) -> i64) -> Vec<i64> {
    records.iter().map(id).collect()
}

// ----------------------------------------------------------------- checks

fn next_id(s: &mut dyn Storage) {
    // A unit of work takes an id and saves its record before the next:
    // every id is new, and later than every id handed out before.
    let tables = [Table::Store, Table::Menu, Table::Rider, Table::Order, Table::Payment, Table::Charge];
    let save = |r: &mut dyn Repo, table: Table, id: i64| match table {
        Table::Store => r.save_store(&store(id)),
        Table::Menu => r.save_menu(&menu(id, 1, &format!("menu {id}"))),
        Table::Rider => r.save_rider(&rider(id, &format!("rider {id}"))),
        Table::Order => r.insert_order(&order(id, 1, OrderStatus::Paid)),
        Table::Payment => r.save_payment(&payment(id, 1, PaymentStatus::Pending, None)),
        Table::Charge => r.save_charge(&charge(id, 1, 1, ChargeStatus::Pending, None)),
    };
    let mut seen: Vec<Vec<i64>> = vec![Vec::new(); tables.len()];
    for _ in 0..3 {
        let taken = write(s, |r| {
            let mut taken = Vec::new();
            for &table in &tables {
                let (first, second) = (r.next_id(table)?, 0);
                save(r, table, first)?;
                let second = second.max(r.next_id(table)?);
                save(r, table, second)?;
                taken.push([first, second]);
            }
            Ok(taken)
        });
        for (seen, [first, second]) in seen.iter_mut().zip(taken) {
            assert!(first >= 1 && first < second, "{first} then {second} in one unit of work");
            assert!(seen.last().is_none_or(|&last| last < first), "{first} after {seen:?}");
            seen.extend([first, second]);
        }
    }
    assert_eq!(read(s, |r| r.stores()).len(), 6, "every store id new");
    assert_eq!(read(s, |r| r.riders()).len(), 6, "every rider id new");
}

fn stores(s: &mut dyn Storage) {
    assert_eq!(read(s, |r| r.stores()), vec![]);
    write(s, |r| {
        for id in [3, 1, 2] {
            r.save_store(&store(id))?;
        }
        Ok(())
    });
    assert_eq!(read(s, |r| r.stores()), vec![store(1), store(2), store(3)]);
    assert_eq!(read(s, |r| r.store(2)), Some(store(2)));
    assert_eq!(read(s, |r| r.store(99)), None);

    let changed = Store {
        name: "BBQ 강남".into(),
        owner: "park".into(),
        address: "".into(),
        open: false,
        delivery_charge: 4_500,
        review_count: 7,
        review_sum: 30,
        ..store(2)
    };
    write(s, |r| r.save_store(&changed));
    // The tally is the storage's to count: a store saved keeps it as stored.
    let kept = Store { review_count: store(2).review_count, review_sum: store(2).review_sum, ..changed.clone() };
    assert_eq!(read(s, |r| r.store(2)), Some(kept.clone()));
    assert_eq!(read(s, |r| r.stores()), vec![store(1), kept.clone(), store(3)]);

    // Reviews add to it in place; saving the store again keeps them.
    write(s, |r| {
        r.add_store_review(2, 5)?;
        r.save_store(&Store { open: true, ..kept.clone() })?;
        r.add_store_review(2, 2)
    });
    let reviewed =
        Store { open: true, review_count: kept.review_count + 2, review_sum: kept.review_sum + 7, ..kept.clone() };
    assert_eq!(read(s, |r| r.store(2)), Some(reviewed));
    let unknown = through(|w| s.write(w), |r| r.add_store_review(99, 5));
    assert!(matches!(unknown, Err(Error::NotFound { .. })), "{unknown:?}");
}

fn menus(s: &mut dyn Storage) {
    world(s, 2, 0, 0);
    let all = [menu(1, 1, "후라이드"), menu(2, 1, "양념"), menu(3, 2, "후라이드"), menu(4, 1, "Cola")];
    write(s, |r| {
        for m in all.iter().rev() {
            r.save_menu(m)?;
        }
        Ok(())
    });
    assert_eq!(read(s, |r| r.menu(3)), Some(all[2].clone()));
    assert_eq!(read(s, |r| r.menu(9)), None);
    assert_eq!(read(s, |r| r.menu_by_name(1, "후라이드")), Some(all[0].clone()));
    assert_eq!(read(s, |r| r.menu_by_name(2, "후라이드")), Some(all[2].clone()));
    assert_eq!(read(s, |r| r.menu_by_name(2, "양념")), None, "another store's menu");
    assert_eq!(read(s, |r| r.menu_by_name(1, "cola")), None, "names match exactly");
    assert_eq!(read(s, |r| r.menu_by_name(1, "Cola ")), None, "names match exactly");
    assert_eq!(read(s, |r| r.menus(Some(1))), vec![all[0].clone(), all[1].clone(), all[3].clone()]);
    assert_eq!(read(s, |r| r.menus(Some(2))), vec![all[2].clone()]);
    assert_eq!(read(s, |r| r.menus(Some(3))), vec![]);
    assert_eq!(read(s, |r| r.menus(None)), all.to_vec());

    let sold_out = Menu { price: 21_000, available: false, ..all[1].clone() };
    write(s, |r| r.save_menu(&sold_out));
    assert_eq!(read(s, |r| r.menu(2)), Some(sold_out.clone()));
    assert_eq!(read(s, |r| r.menu_by_name(1, "양념")), Some(sold_out.clone()));
    assert_eq!(read(s, |r| r.menus(None)).len(), 4);

    // Renamed, and moved to another store: the lookups follow.
    let renamed = Menu { name: "반반".into(), ..all[0].clone() };
    let moved = Menu { store_id: 1, ..all[2].clone() };
    write(s, |r| {
        r.save_menu(&renamed)?;
        r.save_menu(&moved)
    });
    assert_eq!(read(s, |r| r.menu_by_name(1, "반반")), Some(renamed.clone()));
    assert_eq!(read(s, |r| r.menu_by_name(1, "후라이드")), Some(moved.clone()), "the moved one took the name");
    assert_eq!(read(s, |r| r.menu_by_name(2, "후라이드")), None, "gone from its old store");
    assert_eq!(read(s, |r| r.menus(Some(2))), vec![]);
    assert_eq!(read(s, |r| r.menus(Some(1))), vec![renamed, sold_out, moved, all[3].clone()]);

    // Names are unique within a store.
    let twice = through(|w| s.write(w), |r| r.save_menu(&menu(9, 1, "반반")));
    assert!(matches!(twice, Err(Error::Invalid(_))), "{twice:?}");
    assert_eq!(read(s, |r| r.menu(9)), None, "nothing written");
}

fn riders(s: &mut dyn Storage) {
    assert_eq!(read(s, |r| r.riders()), vec![]);
    write(s, |r| {
        for rd in [rider(5, "kang"), rider(2, "lee"), rider(1, "park")] {
            r.save_rider(&rd)?;
        }
        Ok(())
    });
    assert_eq!(read(s, |r| r.rider(2)), Some(rider(2, "lee")));
    assert_eq!(read(s, |r| r.rider(9)), None);
    assert_eq!(read(s, |r| r.rider_by_name("lee")), Some(rider(2, "lee")));
    assert_eq!(read(s, |r| r.rider_by_name("park")), Some(rider(1, "park")));
    assert_eq!(read(s, |r| r.rider_by_name("Lee")), None, "names match exactly");
    assert_eq!(ids(&read(s, |r| r.riders()), |r| r.id), vec![1, 2, 5]);

    // Names are unique: a second rider of a name is invalid input, and the
    // unit of work that tried writes nothing.
    let twice = through(
        |w| s.write(w),
        |r| {
            r.save_rider(&rider(6, "choi"))?;
            r.save_rider(&rider(7, "lee"))
        },
    );
    assert!(matches!(twice, Err(Error::Invalid(_))), "{twice:?}");
    assert_eq!(read(s, |r| r.riders()).len(), 3, "nothing written");

    write(s, |r| r.save_rider(&rider(2, "choi")));
    assert_eq!(read(s, |r| r.rider(2)), Some(rider(2, "choi")));
    assert_eq!(read(s, |r| r.rider_by_name("lee")), None, "the name is free again");
    write(s, |r| r.save_rider(&rider(3, "lee")));
    assert_eq!(read(s, |r| r.rider_by_name("lee")), Some(rider(3, "lee")));
    assert_eq!(read(s, |r| r.riders()).len(), 4);
}

pub(crate) fn least_busy_rider(s: &mut dyn Storage) {
    assert_eq!(read(s, |r| r.least_busy_rider()), None, "no rider registered");
    world(s, 1, 3, 8);
    assert_eq!(read(s, |r| r.least_busy_rider()), Some(rider(1, "rider-1")), "all idle: the lowest id");

    write(s, |r| {
        r.save_delivery(&delivery(1, Some(1), DeliveryStatus::Preparing))?;
        r.save_delivery(&delivery(2, Some(1), DeliveryStatus::Delivering))?;
        r.save_delivery(&delivery(3, Some(2), DeliveryStatus::Preparing))?;
        // Finished deliveries and deliveries without a rider keep nobody busy.
        r.save_delivery(&delivery(4, Some(3), DeliveryStatus::Delivered))?;
        r.save_delivery(&delivery(5, Some(3), DeliveryStatus::Cancelled))?;
        r.save_delivery(&delivery(6, None, DeliveryStatus::Preparing))?;
        Ok(())
    });
    assert_eq!(read(s, |r| r.least_busy_rider()), Some(rider(3, "rider-3")), "busy: 1→2, 2→1, 3→0");

    write(s, |r| r.save_delivery(&delivery(7, Some(3), DeliveryStatus::Delivering)));
    assert_eq!(read(s, |r| r.least_busy_rider()), Some(rider(2, "rider-2")), "tie of 2 and 3: the lowest id");

    write(s, |r| {
        r.save_delivery(&delivery(3, Some(2), DeliveryStatus::Delivered))?;
        r.save_delivery(&delivery(8, Some(3), DeliveryStatus::Preparing))
    });
    assert_eq!(read(s, |r| r.least_busy_rider()), Some(rider(2, "rider-2")), "busy: 1→2, 2→0, 3→2");

    write(s, |r| {
        r.save_delivery(&delivery(1, Some(1), DeliveryStatus::Cancelled))?;
        r.save_delivery(&delivery(2, Some(1), DeliveryStatus::Delivered))
    });
    assert_eq!(read(s, |r| r.least_busy_rider()), Some(rider(1, "rider-1")), "tie of 1 and 2 at 0");

    // A delivery moved to another rider moves its weight; a renamed rider
    // keeps theirs.
    write(s, |r| {
        r.save_delivery(&delivery(7, Some(1), DeliveryStatus::Delivering))?;
        r.save_rider(&rider(1, "rider-one"))
    });
    assert_eq!(read(s, |r| r.least_busy_rider()), Some(rider(2, "rider-2")), "busy: 1→1, 2→0, 3→1");
    write(s, |r| r.save_delivery(&delivery(7, Some(1), DeliveryStatus::Delivered)));
    assert_eq!(read(s, |r| r.least_busy_rider()), Some(rider(1, "rider-one")), "busy: 1→0, 2→0, 3→1");
}

fn orders(s: &mut dyn Storage) {
    world(s, 2, 0, 0);
    let first = order(1, 1, OrderStatus::PendingPayment);
    let many = Order {
        items: (1..=12).rev().map(|m| item(m, u32::try_from(m).expect("small"))).collect(),
        ..order(2, 2, OrderStatus::Paid)
    };
    let single = Order { items: vec![item(9, 1)].into(), ..order(3, 1, OrderStatus::Paid) };
    write(s, |r| {
        r.insert_order(&first)?;
        r.insert_order(&many)?;
        r.insert_order(&single)
    });
    assert_eq!(read(s, |r| r.order(1)), Some(first.clone()));
    assert_eq!(read(s, |r| r.order(2)), Some(many.clone()), "items keep their order");
    assert_eq!(read(s, |r| r.order(3)), Some(single.clone()));
    assert_eq!(read(s, |r| r.order(4)), None);

    let cooking = Order { status: OrderStatus::Cooking, reviewed: true, updated_at: t(500), ..first.clone() };
    write(s, |r| r.update_order(&Order { items: vec![].into(), ..cooking.clone() }));
    assert_eq!(read(s, |r| r.order(1)), Some(cooking), "status, review flag and time change; items never do");
    assert_eq!(read(s, |r| r.order(2)), Some(many), "other orders are untouched");

    let again = s.write(&mut |r| r.insert_order(&first));
    assert!(matches!(again, Err(Error::Storage(_))), "an order is inserted once: {again:?}");
    let missing = s.write(&mut |r| r.update_order(&order(9, 1, OrderStatus::Paid)));
    assert!(matches!(missing, Err(Error::Storage(_))), "an order never inserted is not updated: {missing:?}");
    assert_eq!(read(s, |r| r.order(9)), None);
}

/// Names as long as a name may be, in a script of three bytes a character
/// that does not compress (PostgreSQL compresses an index row over about
/// 2 KB before it refuses one over 2.7 KB): a rider's, a menu's and a
/// customer's, each a key an index holds, are kept and found by name.
fn longest_names(s: &mut dyn Storage) {
    let longest = |seed: u32| -> String {
        let mut x = seed;
        let chars = (0..crate::domain::validate::MAX_NAME_BYTES / 3).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from_u32(0xAC00 + x % 11_172).unwrap_or('가')
        });
        let name: String = chars.collect();
        crate::domain::validate::name("a name", &name).expect("a name as long as a name may be")
    };
    let (rider_name, menu_name, customer) = (longest(1), longest(2), longest(3));
    world(s, 1, 0, 0);
    write(s, |r| {
        r.save_rider(&rider(1, &rider_name))?;
        r.save_menu(&menu(1, 1, &menu_name))?;
        r.save_view(&sample_view(1, &customer))
    });
    assert_eq!(read(s, |r| r.rider_by_name(&rider_name)), Some(rider(1, &rider_name)));
    assert_eq!(read(s, |r| r.menu_by_name(1, &menu_name)), Some(menu(1, 1, &menu_name)));
    assert_eq!(read(s, |r| r.customer_views(&customer)), vec![sample_view(1, &customer)]);
}

fn store_inbox(s: &mut dyn Storage) {
    world(s, 3, 0, 0);
    let statuses = OrderStatus::ALL;
    write(s, |r| {
        // Saved newest first, to check the order of the answer.
        for (i, status) in statuses.iter().enumerate().rev() {
            r.insert_order(&order(i as i64 + 1, 1, *status))?;
        }
        r.insert_order(&order(20, 2, OrderStatus::Cooking))?;
        r.insert_order(&order(10, 2, OrderStatus::Paid))?;
        r.insert_order(&order(30, 2, OrderStatus::Cancelled))
    });
    let expected: Vec<i64> =
        statuses.iter().enumerate().filter(|(_, s)| s.in_store_inbox()).map(|(i, _)| i as i64 + 1).collect();
    assert_eq!(expected.len(), 4, "paid, cooking, cooked, delivering");
    assert_eq!(read(s, |r| r.store_inbox(1)), expected);
    assert_eq!(read(s, |r| r.store_inbox(2)), vec![10, 20]);
    assert_eq!(read(s, |r| r.store_inbox(3)), Vec::<i64>::new());

    write(s, |r| r.update_order(&order(10, 2, OrderStatus::Rejected)));
    assert_eq!(read(s, |r| r.store_inbox(2)), vec![20]);

    // An order enters the inbox when it is paid, stays while it moves on
    // in it, and leaves it when it is delivered or stopped.
    let steps = [
        (OrderStatus::Paid, vec![20, 40]),
        (OrderStatus::Cooking, vec![20, 40]),
        (OrderStatus::Delivering, vec![20, 40]),
        (OrderStatus::Delivered, vec![20]),
    ];
    write(s, |r| r.insert_order(&order(40, 2, OrderStatus::PendingPayment)));
    assert_eq!(read(s, |r| r.store_inbox(2)), vec![20], "not paid yet");
    for (status, inbox) in steps {
        write(s, |r| r.update_order(&order(40, 2, status)));
        assert_eq!(read(s, |r| r.store_inbox(2)), inbox, "{status}");
    }
}

fn payments(s: &mut dyn Storage) {
    world(s, 1, 0, 3);
    let p1 = payment(1, 1, PaymentStatus::Declined, None);
    let p2 = Payment {
        card: None,
        gateway_ref: None,
        attempt: Attempt::new("ezd-pay-2".into()),
        ..payment(2, 2, PaymentStatus::Pending, None)
    };
    let p3 = payment(3, 1, PaymentStatus::Approved, Some(t(99)));
    write(s, |r| {
        r.save_payment(&p3)?;
        r.save_payment(&p1)?;
        r.save_payment(&p2)
    });
    assert_eq!(read(s, |r| r.latest_payment(1)), Some(p3.clone()), "the newest attempt");
    assert_eq!(read(s, |r| r.latest_payment(2)), Some(p2.clone()), "no card, no reference, never tried");
    assert_eq!(read(s, |r| r.latest_payment(3)), None);

    let refunding = Payment {
        status: PaymentStatus::RefundPending,
        card: None,
        gateway_ref: Some("gw-other".into()),
        attempt: Attempt {
            idempotency_key: "ezd-refund-3".into(),
            tries: 7,
            next_at: None,
            last_error: None,
            maybe_processed: true,
            unsettled: 0,
            claim: None,
            gateway: None,
        },
        updated_at: t(600),
        ..p3.clone()
    };
    write(s, |r| r.save_payment(&refunding));
    assert_eq!(read(s, |r| r.latest_payment(1)), Some(refunding));
    assert_eq!(read(s, |r| r.latest_payment(2)), Some(p2), "other orders' payments are untouched");
}

fn tickets(s: &mut dyn Storage) {
    world(s, 1, 0, 2);
    let received = KitchenTicket { order_id: 1, store_id: 1, status: KitchenStatus::Received, updated_at: t(7) };
    write(s, |r| r.save_ticket(&received));
    assert_eq!(read(s, |r| r.ticket(1)), Some(received.clone()));
    assert_eq!(read(s, |r| r.ticket(2)), None);
    let cooking = KitchenTicket { status: KitchenStatus::Cooking, updated_at: t(8), ..received };
    write(s, |r| r.save_ticket(&cooking));
    assert_eq!(read(s, |r| r.ticket(1)), Some(cooking.clone()));

    // A ticket is kept with its order: none for an order that is not
    // there, or is another store's; nothing is written.
    for (order, store) in [(3, 1), (2, 2)] {
        let stray = KitchenTicket { order_id: order, store_id: store, ..cooking.clone() };
        let failed = s.write(&mut |r| r.save_ticket(&stray));
        assert!(matches!(failed, Err(Error::Storage(_))), "order {order} of store {store}: {failed:?}");
    }
    assert_eq!(read(s, |r| r.ticket(2)), None);
    assert_eq!(read(s, |r| r.ticket(1)), Some(cooking));
}

fn deliveries(s: &mut dyn Storage) {
    world(s, 1, 2, 3);
    let unassigned = delivery(1, None, DeliveryStatus::Preparing);
    let assigned = delivery(2, Some(1), DeliveryStatus::Preparing);
    write(s, |r| {
        r.save_delivery(&unassigned)?;
        r.save_delivery(&assigned)
    });
    assert_eq!(read(s, |r| r.delivery(1)), Some(unassigned.clone()));
    assert_eq!(read(s, |r| r.delivery(2)), Some(assigned.clone()));
    assert_eq!(read(s, |r| r.delivery(3)), None);
    let on_the_way = Delivery {
        rider_id: Some(2),
        charge: 4_000,
        status: DeliveryStatus::Delivering,
        updated_at: t(70),
        ..unassigned
    };
    write(s, |r| r.save_delivery(&on_the_way));
    assert_eq!(read(s, |r| r.delivery(1)), Some(on_the_way));
    assert_eq!(read(s, |r| r.delivery(2)), Some(assigned));

    // A delivery is kept with its order: none for an order that is not there.
    let failed = s.write(&mut |r| r.save_delivery(&delivery(4, Some(1), DeliveryStatus::Preparing)));
    assert!(matches!(failed, Err(Error::Storage(_))), "{failed:?}");
    assert_eq!(read(s, |r| r.delivery(4)), None);
}

fn charges(s: &mut dyn Storage) {
    world(s, 1, 2, 3);
    let c1 = charge(1, 1, 2, ChargeStatus::Paid, None);
    let c2 = Charge {
        gateway_ref: None,
        attempt: Attempt::new("ezd-charge-2".into()),
        ..charge(2, 1, 1, ChargeStatus::Voided, None)
    };
    let c3 = charge(3, 2, 1, ChargeStatus::Pending, Some(t(5)));
    write(s, |r| {
        r.save_charge(&c3)?;
        r.save_charge(&c2)?;
        r.save_charge(&c1)
    });
    assert_eq!(read(s, |r| r.charges(1)), vec![c1.clone(), c2.clone()], "oldest first");
    assert_eq!(read(s, |r| r.charges(2)), vec![c3.clone()]);
    assert_eq!(read(s, |r| r.charges(3)), vec![]);

    let refunding = Charge {
        status: ChargeStatus::RefundPending,
        gateway_ref: Some("gw-late".into()),
        attempt: attempt("ezd-charge-refund-2", Some(t(300))),
        updated_at: t(301),
        ..c2
    };
    write(s, |r| r.save_charge(&refunding));
    assert_eq!(read(s, |r| r.charges(1)), vec![c1, refunding]);
}

fn reviews(s: &mut dyn Storage) {
    world(s, 1, 0, 1);
    let review = Review {
        order_id: 1,
        store_id: 1,
        customer: "kim".into(),
        score: 5,
        text: "맛있어요!".into(),
        created_at: t(9),
    };
    write(s, |r| r.save_review(&review));
    // Saving again is an upsert, not a second review.
    write(s, |r| r.save_review(&Review { score: 4, text: String::new(), ..review.clone() }));
}

/// Every kind of retry time around `now`: never tried, past, exactly now,
/// a microsecond later, much later.
fn due_cases(now: DateTime<Utc>) -> Vec<Option<DateTime<Utc>>> {
    vec![None, Some(now - Duration::seconds(60)), Some(now), Some(now + Duration::microseconds(1)), Some(t(99_999))]
}

/// A `Repo` query of records waiting for the gateway: `(repo, now, limit)`.
type Awaiting<C> = fn(&mut dyn Repo, DateTime<Utc>, &str, usize) -> Result<Vec<C>>;

/// One kind of gateway-call record, for the checks payments and delivery
/// charges share: how to make one (of order 1, to rider 1) and the [`Repo`]
/// methods that store and query that kind.
struct CallKind<C: CallRecord> {
    statuses: &'static [C::Status],
    /// A status that no longer waits for the gateway: answered.
    settled: C::Status,
    make: fn(i64, C::Status, Option<DateTime<Utc>>) -> C,
    save: fn(&mut dyn Repo, &C) -> Result<()>,
    awaiting: Awaiting<C>,
    needing_attention: fn(&mut dyn Repo, usize) -> Result<Vec<C>>,
    attempt_mut: fn(&mut C) -> &mut Attempt,
}

const PAYMENTS: CallKind<Payment> = CallKind {
    statuses: PaymentStatus::ALL,
    settled: PaymentStatus::Approved,
    make: |id, status, next_at| payment(id, 1, status, next_at),
    save: |r, p| r.save_payment(p),
    awaiting: |r, now, gateway, n| r.payments_awaiting(now, gateway, n),
    needing_attention: |r, n| r.payments_needing_attention(n),
    attempt_mut: |p| &mut p.attempt,
};

const CHARGES: CallKind<Charge> = CallKind {
    statuses: ChargeStatus::ALL,
    settled: ChargeStatus::Paid,
    make: |id, status, next_at| charge(id, 1, 1, status, next_at),
    save: |r, c| r.save_charge(c),
    awaiting: |r, now, gateway, n| r.charges_awaiting(now, gateway, n),
    needing_attention: |r, n| r.charges_needing_attention(n),
    attempt_mut: |c| &mut c.attempt,
};

/// Saves one record of `kind` per status and retry time, newest first.
fn one_per_status<C: CallRecord>(s: &mut dyn Storage, kind: &CallKind<C>, times: &[Option<DateTime<Utc>>]) -> Vec<C> {
    let mut all = Vec::new();
    for &status in kind.statuses {
        for &next_at in times {
            all.push((kind.make)(all.len() as i64 + 1, status, next_at));
        }
    }
    write(s, |r| {
        for c in all.iter().rev() {
            (kind.save)(r, c)?;
        }
        Ok(())
    });
    all
}

fn awaiting<C: CallRecord + PartialEq + Debug>(s: &mut dyn Storage, kind: &CallKind<C>) {
    world(s, 1, 1, 1);
    let now = t(1_000);
    assert_eq!(read(s, |r| (kind.awaiting)(r, now, GW, 100)), vec![]);
    let all = one_per_status(s, kind, &due_cases(now));
    let expected: Vec<C> = all
        .iter()
        .filter(|c| C::WAITING.contains(&c.status()))
        .filter(|c| c.attempt().next_at.is_none_or(|at| at <= now))
        .cloned()
        .collect();
    assert_eq!(expected.len(), 6, "pending and refund_pending, each never tried, past and exactly now");
    assert_eq!(read(s, |r| (kind.awaiting)(r, now, GW, 100)), expected, "due or never tried, by id");
    assert_eq!(read(s, |r| (kind.awaiting)(r, now, GW, 2)), expected[..2].to_vec(), "at most the limit");
    assert_eq!(read(s, |r| (kind.awaiting)(r, now, GW, 3)), expected[..3].to_vec(), "at most the limit");
    assert_eq!(read(s, |r| (kind.awaiting)(r, now, GW, 0)), vec![]);
    assert_eq!(read(s, |r| (kind.awaiting)(r, t(100_000), GW, 100)).len(), 10, "later, every retry is due");

    // Answered: no longer awaiting.
    let answered = |c: &C| (kind.make)(c.id(), kind.settled, c.attempt().next_at);
    write(s, |r| {
        (kind.save)(r, &answered(&expected[0]))?;
        (kind.save)(r, &answered(&expected[5]))
    });
    assert_eq!(read(s, |r| (kind.awaiting)(r, now, GW, 100)), expected[1..5].to_vec());

    // Only what may go to the gateway asked about awaits it: what went to
    // none yet, or a take that certainly never reached its gateway (never
    // processed, and no claim: a lapsed claim's call may have).
    let to = |c: &C, gateway: Option<&str>, processed: bool, claimed: bool| {
        let mut c = c.clone();
        let attempt = (kind.attempt_mut)(&mut c);
        attempt.gateway = gateway.map(Into::into);
        attempt.maybe_processed = processed;
        let lapsed = Claim { token: "lapsed".into(), until: t(900) };
        attempt.claim = claimed.then_some(lapsed);
        c
    };
    assert!(C::WAITING[0] == expected[1].status() && C::WAITING[0] == expected[2].status());
    assert!(C::WAITING[1] == expected[3].status() && C::WAITING[1] == expected[4].status());
    let taken_elsewhere = to(&expected[1], Some("sandbox"), true, false);
    let never_reached_elsewhere = to(&expected[2], Some("sandbox"), false, false);
    let given_back_elsewhere = to(&expected[3], Some("sandbox"), false, false);
    let unnamed = to(&expected[4], None, true, true);
    let claimed_elsewhere = to(&(kind.make)(100, C::WAITING[0], Some(t(900))), Some("sandbox"), false, true);
    let all = [taken_elsewhere, never_reached_elsewhere, given_back_elsewhere, unnamed, claimed_elsewhere];
    write(s, |r| all.iter().try_for_each(|c| (kind.save)(r, c)));
    let [taken_elsewhere, never_reached_elsewhere, given_back_elsewhere, unnamed, claimed_elsewhere] = all;
    let free = vec![never_reached_elsewhere.clone(), unnamed.clone()];
    assert_eq!(read(s, |r| (kind.awaiting)(r, now, GW, 100)), free, "what may have reached the sandbox stays its");
    assert_eq!(read(s, |r| (kind.awaiting)(r, now, "http://gw.test:8084", 100)), free);
    assert_eq!(
        read(s, |r| (kind.awaiting)(r, now, "sandbox", 100)),
        vec![taken_elsewhere, never_reached_elsewhere, given_back_elsewhere, unnamed, claimed_elsewhere],
        "its own, and the free ones"
    );
}

fn needing_attention<C: CallRecord + PartialEq + Debug>(s: &mut dyn Storage, kind: &CallKind<C>) {
    world(s, 1, 1, 1);
    assert_eq!(read(s, |r| (kind.needing_attention)(r, 100)), vec![]);
    let all = one_per_status(s, kind, &[None, Some(t(5))]);
    let expected: Vec<C> = all.iter().filter(|c| c.status() == C::ATTENTION).cloned().collect();
    assert_eq!(expected.len(), 2);
    assert_eq!(read(s, |r| (kind.needing_attention)(r, 100)), expected, "by id");
    assert_eq!(read(s, |r| (kind.needing_attention)(r, 1)), expected[..1].to_vec(), "at most the limit");
    assert_eq!(read(s, |r| (kind.needing_attention)(r, 0)), vec![]);

    // Put back in the queue by a person: no longer needing attention.
    let requeued = (kind.make)(expected[0].id(), C::WAITING[0], None);
    write(s, |r| (kind.save)(r, &requeued));
    assert_eq!(read(s, |r| (kind.needing_attention)(r, 100)), expected[1..].to_vec());
}

fn sample_events() -> Vec<Event> {
    vec![
        Event::StoreRegistered { store_id: 1, name: "BBQ".into(), owner: "park".into() },
        Event::OrderPlaced(Box::new(crate::domain::Placed {
            order_id: 1,
            store_id: 1,
            store: "BBQ".into(),
            customer: "kim".into(),
            address: "서울".into(),
            items: vec![item(2, 1), item(1, 3)].into(),
            total: 5_000,
        })),
        Event::PaymentApproved { order_id: 1, payment_id: 1, amount: 5_000, card: Some("************1111".into()) },
        Event::OrderPlaced(Box::new(crate::domain::Placed {
            order_id: 2,
            store_id: 1,
            store: "BBQ".into(),
            customer: "lee".into(),
            address: "".into(),
            items: vec![item(1, 1)].into(),
            total: 1_000,
        })),
        Event::DeliveryPrepared { order_id: 1, rider_id: None, rider: None, charge_id: None, charge: 3_000 },
        Event::RiderRegistered { rider_id: 1, name: "lee".into() },
        Event::ReviewRegistered { order_id: 2, store_id: 1, score: 5, text: "굿 \"quoted\"\n".into() },
    ]
}

fn events(s: &mut dyn Storage) {
    assert_eq!(read(s, |r| r.events(0, 100)), vec![]);
    let events = sample_events();
    let (first, rest) = events.split_at(5);
    let mut stored: Vec<StoredEvent> = Vec::new();
    for batch in [first, rest] {
        let seqs = write(s, |r| {
            let mut seqs = Vec::new();
            for (i, e) in batch.iter().enumerate() {
                let n = stored.len() + i;
                seqs.push(r.append_event(&format!("evt-{n}"), t(n as i64), e)?);
            }
            Ok(seqs)
        });
        for (e, seq) in batch.iter().zip(seqs) {
            let n = stored.len();
            stored.push(StoredEvent { seq, id: format!("evt-{n}"), at: t(n as i64), event: e.clone() });
        }
    }
    assert_eq!(stored[0].seq, 1, "sequence numbers start at 1");
    assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq), "strictly increasing: {stored:?}");

    assert_eq!(read(s, |r| r.events(0, 100)), stored, "everything, in order");
    assert_eq!(read(s, |r| r.events(stored[1].seq, 100)), stored[2..].to_vec(), "after a seq");
    assert_eq!(read(s, |r| r.events(0, 3)), stored[..3].to_vec(), "at most the limit");
    assert_eq!(read(s, |r| r.events(-3, 2)), stored[..2].to_vec(), "a negative seq is before the first");
    assert_eq!(read(s, |r| r.events(stored[2].seq, 2)), stored[3..5].to_vec());
    assert_eq!(read(s, |r| r.events(stored[6].seq, 100)), vec![], "nothing after the last");
    let numbered = |picked: &[usize]| picked.iter().map(|&i| stored[i].clone()).collect::<Vec<_>>();
    let seqs = |picked: &[usize]| picked.iter().map(|&i| stored[i].seq).collect::<Vec<_>>();
    assert_eq!(read(s, |r| r.events_numbered(&seqs(&[0, 1, 4]), 0)), numbered(&[0, 1, 4]), "by number");
    assert_eq!(read(s, |r| r.events_numbered(&seqs(&[0, 1, 4]), stored[0].seq)), numbered(&[1, 4]), "after one");
    assert_eq!(
        read(s, |r| r.events_numbered(&seqs(&[0, 1, 4]), stored[3].seq)),
        numbered(&[4]),
        "after one not asked for"
    );
    assert_eq!(read(s, |r| r.events_numbered(&seqs(&[0, 1, 4]), stored[4].seq)), vec![], "after the last asked for");
    assert_eq!(
        read(s, |r| r.events_numbered(&seqs(&[6]), -3)),
        numbered(&[6]),
        "the last; a negative seq is before the first"
    );
    let past_the_end = stored[6].seq + 1;
    assert_eq!(
        read(s, |r| r.events_numbered(&[-1, 0, stored[2].seq, past_the_end], -10)),
        numbered(&[2]),
        "no such events"
    );
    assert_eq!(read(s, |r| r.events_numbered(&[], 0)), vec![]);
    assert_eq!(read(s, |r| r.events(0, 0)), vec![]);
    assert_eq!(read(s, |r| r.events(i64::MAX, 10)), vec![], "after the largest number there is");

    // A rolled-back append does not disturb what follows.
    let rolled_back = s.write(&mut |r| {
        r.append_event("evt-gone", t(0), &events[0])?;
        Err(Error::Internal("no".into()))
    });
    assert!(rolled_back.is_err());
    let seq = write(s, |r| r.append_event("evt-last", t(9), &events[2]));
    assert!(seq > stored[6].seq, "{seq} after {}", stored[6].seq);
    assert_eq!(read(s, |r| r.events(stored[6].seq, 100)).len(), 1);

    // An id given as a UUID is kept as its text, hyphenated, lower case,
    // as if it had been given so.
    let uuid = uuid::Uuid::from_u128(0x0190_ABCD_7E57_7000_8000_0000_0000_00FF);
    let by_uuid = write(s, |r| r.append_event_uuid(uuid, t(10), &events[1]));
    let by_text = write(s, |r| r.append_event("0190abcd-7e57-7000-8000-0000000000fe", t(11), &events[3]));
    assert!(seq < by_uuid && by_uuid < by_text, "{seq}, {by_uuid}, {by_text}");
    let stored = |seq: i64, id: &str, at: i64, event: &Event| StoredEvent {
        seq,
        id: id.into(),
        at: t(at),
        event: event.clone(),
    };
    assert_eq!(
        read(s, |r| r.events(seq, 100)),
        vec![
            stored(by_uuid, "0190abcd-7e57-7000-8000-0000000000ff", 10, &events[1]),
            stored(by_text, "0190abcd-7e57-7000-8000-0000000000fe", 11, &events[3]),
        ]
    );
}

fn checkpoints(s: &mut dyn Storage) {
    assert_eq!(read(s, |r| r.checkpoint("mypage")), 0, "none yet");
    write(s, |r| r.set_checkpoint("mypage", 5));
    assert_eq!(read(s, |r| r.checkpoint("mypage")), 5);
    write(s, |r| r.set_checkpoint("mypage", 7));
    write(s, |r| r.set_checkpoint("other", 3));
    assert_eq!(read(s, |r| Ok((r.checkpoint("mypage")?, r.checkpoint("other")?))), (7, 3));
    write(s, |r| r.set_checkpoint("mypage", 0));
    assert_eq!(read(s, |r| Ok((r.checkpoint("mypage")?, r.checkpoint("other")?))), (0, 3));
}

/// A view of order `id` of `customer`, with every part filled in.
fn sample_view(id: i64, customer: &str) -> OrderView {
    let placed = Event::OrderPlaced(Box::new(crate::domain::Placed {
        order_id: id,
        store_id: 1,
        store: "BBQ 치킨".into(),
        customer: customer.into(),
        address: "서울 \"강남\"".into(),
        items: vec![item(2, 1), item(1, 3)].into(),
        total: 5_000,
    }));
    let mut view = OrderView::start(1, t(0), &placed).expect("OrderPlaced starts a view");
    let events = [
        Event::PaymentApproved { order_id: id, payment_id: 4, amount: 5_000, card: None },
        Event::CookingStarted { order_id: id },
        Event::DeliveryPrepared {
            order_id: id,
            rider_id: Some(1),
            rider: Some("lee".into()),
            charge_id: Some(2),
            charge: 3_000,
        },
        Event::DeliveryChargePaid { order_id: id, charge_id: 2, rider_id: 1, amount: 3_000 },
    ];
    for (i, e) in events.iter().enumerate() {
        assert!(view.apply(i as i64 + 2, t(i as i64 + 1), e));
    }
    view
}

fn views(s: &mut dyn Storage) {
    assert_eq!(read(s, |r| r.view(1)), None);
    let (v1, v2, v3) = (sample_view(1, "kim"), sample_view(2, "lee"), sample_view(3, "kim"));
    write(s, |r| {
        r.save_view(&v3)?;
        r.save_view(&v2)?;
        r.save_view(&v1)
    });
    assert_eq!(read(s, |r| r.view(1)), Some(v1.clone()));
    assert_eq!(read(s, |r| r.view(2)), Some(v2.clone()));
    assert_eq!(read(s, |r| r.view(4)), None);
    assert_eq!(read(s, |r| r.customer_views("kim")), vec![v1.clone(), v3.clone()], "by order id");
    assert_eq!(read(s, |r| r.customer_views("lee")), vec![v2.clone()]);
    assert_eq!(read(s, |r| r.customer_views("Kim")), vec![]);

    let mut later = v1.clone();
    assert!(later.apply(10, t(10), &Event::FoodCooked { order_id: 1 }));
    write(s, |r| r.save_view(&later));
    assert_eq!(read(s, |r| r.view(1)), Some(later.clone()));
    assert_eq!(read(s, |r| r.customer_views("kim")), vec![later.clone(), v3.clone()]);
    let moved = OrderView { customer: "lee".into(), ..v3.clone() };
    write(s, |r| r.save_view(&moved));
    assert_eq!(read(s, |r| r.customer_views("kim")), vec![later.clone()], "a view follows its customer");
    assert_eq!(read(s, |r| r.customer_views("lee")), vec![v2.clone(), moved]);

    write(s, |r| r.clear_views());
    assert_eq!(read(s, |r| Ok((r.view(1)?, r.view(2)?))), (None, None));
    assert_eq!(read(s, |r| r.customer_views("kim")), vec![]);
    write(s, |r| r.save_view(&v2));
    assert_eq!(read(s, |r| r.customer_views("lee")), vec![v2.clone()], "views can be saved again after a clear");
}

/// A key of a test message's own, as distinct as the ids are.
pub(crate) fn message_key(id: &str) -> i64 {
    id.bytes().fold(17_i64, |k, b| k.wrapping_mul(131).wrapping_add(i64::from(b))) & i64::MAX
}

fn message(id: &str, order_id: i64, at: DateTime<Utc>) -> Message {
    Message {
        id: id.into(),
        key: message_key(id),
        order_id,
        event: "PaymentApproved".parse().expect("an event type"),
        status: OrderStatus::Paid,
        recipient: "kim".into(),
        text: format!("주문 #{order_id} 결제가 완료되었습니다 · {id}"),
        at,
    }
}

fn queued(m: &Message, channel: &str, state: DeliveryState, tries: u32, next_at: DateTime<Utc>) -> QueuedMessage {
    QueuedMessage {
        message: m.clone(),
        delivery: MessageDelivery {
            message_id: m.id.clone(),
            message_key: m.key,
            channel: channel.into(),
            state,
            tries,
            next_at,
            last_error: (tries > 0).then(|| format!("{channel} failed")),
        },
    }
}

/// `got` holds `expected` (ties of the same message time may come in any
/// order) and runs oldest message first.
fn assert_oldest_first(got: &[QueuedMessage], expected: &[QueuedMessage], what: &str) {
    assert!(got.windows(2).all(|w| w[0].message.at <= w[1].message.at), "{what}: not oldest first: {got:#?}");
    let key = |q: &QueuedMessage| (q.message.at, q.message.id.clone(), q.delivery.channel.clone());
    let (mut got, mut expected) = (got.to_vec(), expected.to_vec());
    got.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(got, expected, "{what}");
}

/// A batch of due messages, whatever its size, is the first of those due
/// by time, id and channel: a relay working through a backlog batch by
/// batch sends the oldest first, even where many were queued at the same
/// time and where some wait for a retry or go to a channel left out.
fn due_batches(s: &mut dyn Storage) {
    let all: Vec<Message> =
        (0..24).map(|i| message(&format!("m{:02}", (i * 7) % 24), i, t((i * 5) % 4 * 10))).collect();
    write(s, |r| {
        for (i, m) in all.iter().enumerate() {
            r.queue_message(m, if i % 3 == 0 { &["console", "jsonl"] } else { &["console"] })?;
        }
        // Two wait for a retry after `now`: not due. Two were retried and
        // are due again, later than newer messages but still older.
        for (m, next) in all[..2].iter().zip([500, 500]).chain(all[4..6].iter().zip([60, 60])) {
            r.save_message_delivery(&queued(m, "console", DeliveryState::Pending, 1, t(next)).delivery)?;
        }
        Ok(())
    });
    let key = |q: &QueuedMessage| (q.message.id.clone(), q.delivery.channel.clone());
    for except in [&[][..], &["jsonl"][..]] {
        let everything = read(s, |r| r.due_messages_except(t(100), 1_000, except));
        assert_eq!(everything.len(), if except.is_empty() { 30 } else { 22 }, "due but for {except:?}");
        let order = |q: &QueuedMessage| (q.message.at, q.message.id.clone(), q.delivery.channel.clone());
        assert!(everything.windows(2).all(|w| order(&w[0]) < order(&w[1])), "by time, id and channel");
        for limit in 0..=everything.len() + 1 {
            let batch = read(s, |r| r.due_messages_except(t(100), limit, except));
            let what = format!("a batch of {limit} but for {except:?}");
            assert_eq!(batch.len(), limit.min(everything.len()), "{what}");
            assert_eq!(batch[..], everything[..batch.len()], "{what}: the first of all that are due");
            assert!(batch.windows(2).all(|w| w[0].message.at <= w[1].message.at), "{what}: oldest first");
            let chosen: Vec<_> = batch.iter().map(key).collect();
            let newest = batch.iter().map(|q| q.message.at).max();
            let left = everything.iter().filter(|q| !chosen.contains(&key(q)));
            assert!(left.clone().all(|q| Some(q.message.at) >= newest), "{what}: none left older");
            assert_eq!(left.count() + batch.len(), everything.len(), "{what}: all from the due");
        }
    }
}

fn purge_delivered_messages(s: &mut dyn Storage) {
    let [done, half, dead, late, none] =
        [("done", 10), ("half", 20), ("dead", 30), ("late", 500), ("none", 40)].map(|(id, at)| message(id, 1, t(at)));
    write(s, |r| {
        for m in [&done, &half, &dead, &late] {
            r.queue_message(m, &["console", "jsonl"])?;
        }
        r.queue_message(&none, &[])
    });
    let delivered = |m: &Message, channel: &str| queued(m, channel, DeliveryState::Delivered, 1, m.at).delivery;
    write(s, |r| {
        for d in [delivered(&done, "console"), delivered(&done, "jsonl"), delivered(&half, "console")] {
            r.save_message_delivery(&d)?;
        }
        for m in [&dead, &late] {
            r.save_message_delivery(&delivered(m, "console"))?;
        }
        r.save_message_delivery(&delivered(&late, "jsonl"))?;
        r.save_message_delivery(&queued(&dead, "jsonl", DeliveryState::Dead, 5, dead.at).delivery)
    });
    let due_before = read(s, |r| r.due_messages(t(1_000), 100));
    let dead_before = read(s, |r| r.dead_messages(100));
    // Delivered everywhere (or nowhere to deliver) and older than the
    // bound: gone. Pending, dead, or newer: kept as they were.
    assert_eq!(write(s, |r| r.purge_delivered_messages(t(100))), 2, "`done` and `none`");
    assert_eq!(read(s, |r| r.due_messages(t(1_000), 100)), due_before);
    assert_eq!(read(s, |r| r.dead_messages(100)), dead_before);
    assert_eq!(write(s, |r| r.purge_delivered_messages(t(100))), 0, "nothing more to purge");
    // A purged message queued again is new: due again.
    write(s, |r| r.queue_message(&done, &["console"]));
    assert_eq!(read(s, |r| r.due_messages(t(1_000), 100)).len(), due_before.len() + 1);
    // A purge undone with its unit of work leaves everything as it was.
    let failed = through(
        |w| s.write(w),
        |r| {
            r.purge_delivered_messages(t(1_000))?;
            Err::<(), _>(Error::Internal("rolled back".into()))
        },
    );
    assert!(failed.is_err());
    assert_eq!(read(s, |r| r.due_messages(t(1_000), 100)).len(), due_before.len() + 1);
    assert_eq!(write(s, |r| r.purge_delivered_messages(t(1_000))), 1, "`late`, once delivered everywhere");
    assert_eq!(read(s, |r| r.dead_messages(100)), dead_before);
}

fn messages(s: &mut dyn Storage) {
    let (m1, m2) = (message("1-1-customer", 1, t(10)), message("2-2-owner", 2, t(20)));
    assert_eq!(read(s, |r| r.due_messages(t(1_000), 100)), vec![]);
    write(s, |r| {
        r.queue_message(&m2, &["console"])?;
        r.queue_message(&m1, &["console", "jsonl"])
    });
    let pending = |m: &Message, channel: &str| queued(m, channel, DeliveryState::Pending, 0, m.at);
    assert_eq!(read(s, |r| r.waiting_channels()), ["console", "jsonl"], "each once, due or not");
    assert_eq!(read(s, |r| r.due_messages(t(9), 100)), vec![], "nothing due before the message");
    assert_oldest_first(
        &read(s, |r| r.due_messages(t(10), 100)),
        &[pending(&m1, "console"), pending(&m1, "jsonl")],
        "due at the message's time",
    );
    let all = [pending(&m1, "console"), pending(&m1, "jsonl"), pending(&m2, "console")];
    assert_oldest_first(&read(s, |r| r.due_messages(t(100), 100)), &all, "all due");
    let two = read(s, |r| r.due_messages(t(100), 2));
    assert_oldest_first(&two, &all[..2], "at most the limit");
    let mut except = |channels: &[&str], limit| read(s, |r| r.due_messages_except(t(100), limit, channels));
    assert_oldest_first(&except(&["jsonl"], 100), &[all[0].clone(), all[2].clone()], "but for a channel");
    assert_oldest_first(&except(&["jsonl"], 1), &all[..1], "but for a channel, at most the limit");
    assert_oldest_first(&except(&["console"], 100), &all[1..2], "but for the other");
    assert_eq!(except(&["console", "jsonl"], 100), vec![], "but for both");
    assert_oldest_first(&except(&["webhook", "it's \"quoted\""], 100), &all, "but for channels with none");
    assert_oldest_first(&except(&[], 100), &all, "but for none");

    // Queued again (a replay, a retried command): left as it is.
    let again = Message { text: "changed".into(), ..m1.clone() };
    write(s, |r| r.queue_message(&again, &["console", "jsonl", "webhook"]));
    assert_oldest_first(&read(s, |r| r.due_messages(t(100), 100)), &all, "queued once");

    // Delivered on one channel: never due again there.
    let delivered = MessageDelivery { state: DeliveryState::Delivered, tries: 1, ..pending(&m1, "console").delivery };
    write(s, |r| r.save_message_delivery(&delivered));
    assert_oldest_first(
        &read(s, |r| r.due_messages(t(100), 100)),
        &[pending(&m1, "jsonl"), pending(&m2, "console")],
        "one delivered",
    );
    write(s, |r| r.queue_message(&m1, &["console", "jsonl"]));
    assert_eq!(read(s, |r| r.due_messages(t(100), 100)).len(), 2, "a replay does not revive a delivered message");

    // Failed on the other: due again later, with its tries and error.
    let retry = queued(&m1, "jsonl", DeliveryState::Pending, 1, t(50));
    write(s, |r| r.save_message_delivery(&retry.delivery));
    assert_oldest_first(&read(s, |r| r.due_messages(t(30), 100)), &[pending(&m2, "console")], "retry not due yet");
    assert_oldest_first(
        &read(s, |r| r.due_messages(t(50), 100)),
        &[retry.clone(), pending(&m2, "console")],
        "retry due",
    );

    // Dead: parked, not due.
    let dead = queued(&m2, "console", DeliveryState::Dead, 5, t(60));
    write(s, |r| r.save_message_delivery(&dead.delivery));
    assert_eq!(read(s, |r| r.due_messages(t(1_000), 100)), vec![retry.clone()]);
    assert_eq!(read(s, |r| r.dead_messages(100)), vec![dead.clone()]);
    assert_eq!(read(s, |r| r.waiting_channels()), ["jsonl"], "neither delivered nor dead deliveries wait");

    // Revived (`relay --retry-dead`): due again.
    let revived = queued(&m2, "console", DeliveryState::Pending, 0, t(70));
    write(s, |r| r.save_message_delivery(&revived.delivery));
    assert_eq!(read(s, |r| r.dead_messages(100)), vec![]);
    assert_oldest_first(&read(s, |r| r.due_messages(t(70), 100)), &[retry.clone(), revived.clone()], "revived");

    // A channel the message was not queued on is inserted.
    let added = queued(&m1, "kakao", DeliveryState::Pending, 1, t(80));
    write(s, |r| r.save_message_delivery(&added.delivery));
    assert_oldest_first(&read(s, |r| r.due_messages(t(80), 100)), &[retry, added, revived], "a new channel");
}

/// Messages keyed and named as the engine makes them (the key from their
/// event's number, the id `<event id>:<recipient kind>`), queued with their
/// ids or as `queue_event_message` names them, read back as they were
/// queued, each with its own recipient, across a rolled-back write and a
/// purge.
fn messages_of_events(s: &mut dyn Storage) {
    let ids = ["0192f0c4-7b1a-7abc-8def-0123456789ab", "0192f0c4-7b1a-7abc-8def-0123456789ac"];
    let events = sample_events();
    // The first as the engine appends it (a UUID), the second as its text.
    let seqs = write(s, |r| {
        let first = ids[0].parse().map_err(|_| Error::Internal("a UUID".into()))?;
        Ok(vec![r.append_event_uuid(first, t(1), &events[0])?, r.append_event(ids[1], t(1), &events[1])?])
    });
    let about = |event: usize, place: i64, kind: &str, recipient: &str, at: i64| Message {
        id: format!("{}:{kind}", ids[event]),
        key: Message::key_of(seqs[event], place),
        order_id: 1,
        event: "PaymentApproved".parse().expect("an event type"),
        status: OrderStatus::Paid,
        recipient: recipient.into(),
        text: format!("to {recipient} about {}", ids[event]),
        at: t(at),
    };
    let pending = |m: &Message| queued(m, "console", DeliveryState::Pending, 0, m.at);
    let uuid = |event: usize| ids[event].parse::<uuid::Uuid>().map_err(|_| Error::Internal("a UUID".into()));
    // As the engine queues them: the id left to the storage to make.
    let unnamed = |m: &Message| Message { id: String::new(), ..m.clone() };
    let (customer, owner) = (about(0, 0, "customer", "lee", 10), about(0, 1, "owner", "park", 11));
    write(s, |r| {
        r.queue_message(&customer, &["console"])?;
        r.queue_event_message(uuid(0)?, "owner", unnamed(&owner), &["console"])
    });
    // A write that queues a message to someone new, then fails: nothing of it stays.
    let failed = s.write(&mut |r| {
        r.queue_event_message(uuid(1)?, "customer", unnamed(&about(1, 0, "customer", "choi", 12)), &["console"])?;
        Err(Error::Internal("no".into()))
    });
    assert!(failed.is_err());
    assert_oldest_first(
        &read(s, |r| r.due_messages(t(100), 100)),
        &[pending(&customer), pending(&owner)],
        "as they were queued",
    );
    let later = about(1, 0, "customer", "lee", 13);
    write(s, |r| r.queue_message(&later, &["console"]));
    // The first two delivered and purged: the third reads back the same.
    let delivered = |m: &Message| queued(m, "console", DeliveryState::Delivered, 1, m.at).delivery;
    write(s, |r| {
        r.save_message_delivery(&delivered(&customer))?;
        r.save_message_delivery(&delivered(&owner))
    });
    assert_eq!(write(s, |r| r.purge_delivered_messages(t(100))), 2);
    assert_eq!(read(s, |r| r.due_messages(t(100), 100)), vec![pending(&later)]);
    let owner_again = about(1, 1, "owner", "park", 14);
    write(s, |r| r.queue_event_message(uuid(1)?, "owner", unnamed(&owner_again), &["console"]));
    // An event id other than the one its key names: the id is still made
    // from the id given, and whatever `id` the message came with is not it.
    let elsewhere = Message { id: format!("{}:rider", ids[0]), ..about(1, 2, "rider", "kang", 15) };
    let given = Message { id: "not its id".into(), ..elsewhere.clone() };
    write(s, |r| r.queue_event_message(uuid(0)?, "rider", given.clone(), &["console"]));
    assert_oldest_first(
        &read(s, |r| r.due_messages(t(100), 100)),
        &[pending(&later), pending(&owner_again), pending(&elsewhere)],
        "after the purge",
    );
    // Queued again, by either way: its key is taken, nothing changes.
    write(s, |r| {
        r.queue_event_message(uuid(1)?, "rider", unnamed(&elsewhere), &["console", "jsonl"])?;
        r.queue_message(&owner_again, &["jsonl"])
    });
    assert_oldest_first(
        &read(s, |r| r.due_messages(t(100), 100)),
        &[pending(&later), pending(&owner_again), pending(&elsewhere)],
        "a key queued twice",
    );
}

fn dead_messages(s: &mut dyn Storage) {
    assert_eq!(read(s, |r| r.dead_messages(100)), vec![]);
    let ms = [message("a", 1, t(30)), message("b", 2, t(10)), message("c", 3, t(20))];
    write(s, |r| {
        for m in &ms {
            r.queue_message(m, &["console", "webhook"])?;
        }
        Ok(())
    });
    let dead = |m: &Message, channel: &str| queued(m, channel, DeliveryState::Dead, 8, t(100));
    write(s, |r| {
        r.save_message_delivery(&dead(&ms[0], "webhook").delivery)?;
        r.save_message_delivery(&dead(&ms[1], "webhook").delivery)?;
        r.save_message_delivery(&dead(&ms[2], "console").delivery)
    });
    let expected = [dead(&ms[1], "webhook"), dead(&ms[2], "console"), dead(&ms[0], "webhook")];
    assert_eq!(read(s, |r| r.dead_messages(100)), expected.to_vec(), "oldest message first");
    assert_eq!(read(s, |r| r.dead_messages(2)), expected[..2].to_vec(), "at most the limit");
    assert_eq!(read(s, |r| r.due_messages(t(1_000), 100)).len(), 3, "the others are still due");
}

fn queue_status(s: &mut dyn Storage) {
    world(s, 1, 1, 2);
    let now = t(1_000);
    assert_eq!(read(s, |r| r.queue_status(now, GW, GW)), QueueStatus::default(), "nothing waits");

    // Only calls in `pending` or `refund_pending` wait, due or not.
    write(s, |r| {
        r.save_payment(&payment(1, 1, PaymentStatus::Pending, Some(t(2_000))))?;
        r.save_payment(&payment(2, 1, PaymentStatus::RefundPending, Some(t(1_500))))?;
        r.save_payment(&payment(3, 2, PaymentStatus::Approved, Some(t(10))))?;
        r.save_payment(&payment(4, 2, PaymentStatus::NeedsAttention, Some(t(5))))?;
        r.save_payment(&payment(5, 2, PaymentStatus::Voided, None))?;
        r.save_charge(&charge(1, 1, 1, ChargeStatus::Pending, Some(t(1_200))))?;
        r.save_charge(&charge(2, 1, 1, ChargeStatus::Paid, Some(t(1))))?;
        r.save_charge(&charge(3, 2, 1, ChargeStatus::RefundPending, Some(t(3_000))))
    });
    let calls = QueueStatus { payments: 2, charges: 2, messages: 0, next_due: Some(t(1_200)), elsewhere: 0 };
    assert_eq!(read(s, |r| r.queue_status(now, GW, GW)), calls, "the earliest call");
    assert_eq!(calls.calls(), 4);

    // Messages: every pending delivery waits, one per channel; delivered
    // and dead ones do not.
    let (m1, m2) = (message("1-1-customer", 1, t(900)), message("2-2-owner", 2, t(950)));
    write(s, |r| {
        r.queue_message(&m1, &["console", "jsonl"])?;
        r.queue_message(&m2, &["console"])
    });
    assert_eq!(
        read(s, |r| r.queue_status(now, GW, GW)),
        QueueStatus { messages: 3, next_due: Some(t(900)), ..calls },
        "a message due before any call"
    );
    write(s, |r| {
        r.save_message_delivery(&queued(&m1, "console", DeliveryState::Delivered, 1, t(900)).delivery)?;
        r.save_message_delivery(&queued(&m1, "jsonl", DeliveryState::Pending, 1, t(1_100)).delivery)?;
        r.save_message_delivery(&queued(&m2, "console", DeliveryState::Dead, 8, t(960)).delivery)
    });
    assert_eq!(
        read(s, |r| r.queue_status(now, GW, GW)),
        QueueStatus { messages: 1, next_due: Some(t(1_100)), ..calls },
        "a retry waits for its back-off"
    );

    // A call never tried is due now.
    write(s, |r| r.save_payment(&payment(6, 2, PaymentStatus::Pending, None)));
    assert_eq!(
        read(s, |r| r.queue_status(now, GW, GW)),
        QueueStatus { payments: 3, charges: 2, messages: 1, next_due: Some(now), elsewhere: 0 },
        "never tried: due now"
    );
    // Settled: no longer waiting.
    write(s, |r| {
        r.save_payment(&payment(6, 2, PaymentStatus::Approved, None))?;
        r.save_charge(&charge(1, 1, 1, ChargeStatus::Paid, None))
    });
    let settled = QueueStatus { payments: 2, charges: 1, messages: 1, next_due: Some(t(1_100)), elsewhere: 0 };
    assert_eq!(read(s, |r| r.queue_status(now, GW, GW)), settled);

    // Calls for another gateway wait apart: counted, never due for this one.
    assert_eq!(
        read(s, |r| r.queue_status(now, "sandbox", GW)),
        QueueStatus { payments: 0, elsewhere: 2, ..settled },
        "the payments went to another gateway"
    );
    assert_eq!(
        read(s, |r| r.queue_status(now, GW, "sandbox")),
        QueueStatus { charges: 0, elsewhere: 1, next_due: Some(t(1_100)), ..settled },
        "the charge, due at 3000, went elsewhere: the message is the earliest"
    );
    let unnamed = Payment {
        attempt: Attempt { gateway: None, ..payment(7, 2, PaymentStatus::Pending, Some(t(1_050))).attempt },
        ..payment(7, 2, PaymentStatus::Pending, None)
    };
    write(s, |r| r.save_payment(&unnamed));
    assert_eq!(
        read(s, |r| r.queue_status(now, "sandbox", GW)),
        QueueStatus { payments: 1, elsewhere: 2, next_due: Some(t(1_050)), ..settled },
        "a call that went to no gateway yet waits for any"
    );
}

fn failed_write_rolls_back(s: &mut dyn Storage) {
    world(s, 1, 0, 0);
    let failed = s.write(&mut |r| {
        r.save_store(&Store { name: "renamed".into(), ..store(1) })?;
        r.save_store(&store(2))?;
        r.save_menu(&menu(1, 2, "후라이드"))?;
        r.save_rider(&rider(1, "lee"))?;
        r.insert_order(&order(1, 2, OrderStatus::Paid))?;
        r.save_payment(&payment(1, 1, PaymentStatus::Pending, None))?;
        r.save_ticket(&KitchenTicket { order_id: 1, store_id: 2, status: KitchenStatus::Received, updated_at: t(1) })?;
        r.save_delivery(&delivery(1, Some(1), DeliveryStatus::Preparing))?;
        r.save_charge(&charge(1, 1, 1, ChargeStatus::Pending, None))?;
        r.save_review(&Review {
            order_id: 1,
            store_id: 2,
            customer: "kim".into(),
            score: 3,
            text: String::new(),
            created_at: t(2),
        })?;
        r.append_event("evt-1", t(3), &Event::CookingStarted { order_id: 1 })?;
        r.set_checkpoint("mypage", 1)?;
        r.save_view(&sample_view(1, "kim"))?;
        r.queue_message(&message("m-1", 1, t(4)), &["console"])?;
        assert_eq!(r.claim_request("customer:kim", "k-1", "f", t(5))?, RequestClaim::New);
        assert!(r.finish_request("customer:kim", "k-1", &StoredResponse { status: 201, body: "{}".into() })?);
        Err(Error::Internal("boom".into()))
    });
    assert!(matches!(&failed, Err(Error::Internal(m)) if m == "boom"), "the work's error, unchanged: {failed:?}");

    read(s, |r| {
        assert_eq!(r.stores()?, vec![store(1)], "the update is undone too");
        assert_eq!(r.menus(None)?, vec![]);
        assert_eq!(r.riders()?, vec![]);
        assert_eq!(r.least_busy_rider()?, None);
        assert_eq!(r.order(1)?, None);
        assert_eq!(r.store_inbox(2)?, Vec::<i64>::new());
        assert_eq!(r.latest_payment(1)?, None);
        assert_eq!(r.payments_awaiting(t(1_000), GW, 10)?, vec![]);
        assert_eq!(r.ticket(1)?, None);
        assert_eq!(r.delivery(1)?, None);
        assert_eq!(r.charges(1)?, vec![]);
        assert_eq!(r.charges_awaiting(t(1_000), GW, 10)?, vec![]);
        assert_eq!(r.events(0, 10)?, vec![]);
        assert_eq!(r.checkpoint("mypage")?, 0);
        assert_eq!(r.view(1)?, None);
        assert_eq!(r.customer_views("kim")?, vec![]);
        assert_eq!(r.due_messages(t(1_000), 10)?, vec![]);
        assert_eq!(r.order_counts()?.iter().map(|(_, n)| n).sum::<u64>(), 0);
        for table in [Table::Store, Table::Menu, Table::Rider, Table::Order, Table::Payment, Table::Charge] {
            // Free again after the rollback (SQLite, memory), or later (a
            // sequence, PostgreSQL, never hands out a number twice): never
            // an id that is taken.
            let free = if table == Table::Store { 2 } else { 1 };
            let next = r.next_id(table)?;
            assert!(next >= free, "{table:?}: {next}");
        }
        Ok(())
    });

    assert_eq!(write(s, |r| r.claim_request("customer:kim", "k-1", "f", t(6))), RequestClaim::New, "no key kept");

    // The storage is still usable, and the same work commits when it succeeds.
    write(s, |r| {
        r.save_store(&store(2))?;
        r.queue_message(&message("m-1", 1, t(4)), &["console"])
    });
    assert_eq!(read(s, |r| r.stores()).len(), 2);
    assert_eq!(read(s, |r| r.due_messages(t(1_000), 10)).len(), 1, "a rolled-back message can be queued again");
}

fn failed_read_returns_its_error(s: &mut dyn Storage) {
    world(s, 1, 0, 0);
    let failed = s.read(&mut |r| {
        assert_eq!(r.store(1)?, Some(store(1)));
        Err(Error::not_found(crate::Record::Order, 42))
    });
    assert!(matches!(&failed, Err(Error::NotFound { what: crate::Record::Order, id, .. }) if id == "42"), "{failed:?}");
    assert_eq!(read(s, |r| r.stores()), vec![store(1)], "the storage is still usable");

    // A read cannot write, whatever it tries; it changes nothing.
    write(s, |r| r.save_view(&sample_view(1, "kim")));
    let writes: [(&str, RepoWork); 6] = [
        ("save_store", |r| r.save_store(&store(3))),
        ("append_event", |r| r.append_event("e-read", t(0), &Event::CookingStarted { order_id: 1 }).map(drop)),
        ("append_event_uuid", |r| {
            r.append_event_uuid(uuid::Uuid::from_u128(1), t(0), &Event::CookingStarted { order_id: 1 }).map(drop)
        }),
        ("clear_views", |r| r.clear_views()),
        ("claim_request", |r| r.claim_request("customer:kim", "k-read", "f", t(0)).map(drop)),
        ("queue_event_message", |r| {
            r.queue_event_message(uuid::Uuid::from_u128(1), "customer", message("m-read", 1, t(0)), &["console"])
        }),
    ];
    for (what, work) in writes {
        assert!(s.read(&mut |r| work(r)).is_err(), "a read that tries {what} fails");
    }
    assert_eq!(read(s, |r| r.stores()), vec![store(1)], "nothing written");
    assert_eq!(read(s, |r| r.events(0, 10)), vec![], "nothing appended");
    assert_eq!(read(s, |r| r.view(1)), Some(sample_view(1, "kim")), "no view cleared");
    let claim = write(s, |r| r.claim_request("customer:kim", "k-read", "f", t(1)));
    assert_eq!(claim, RequestClaim::New, "no key claimed");
}

/// One write a test tries.
type RepoWork = fn(&mut dyn Repo) -> Result<()>;

fn breakers(s: &mut dyn Storage) {
    let t0 = DateTime::from_timestamp(1_700_000_000, 123_456_000).expect("a time");
    assert_eq!(read(s, |r| r.breaker(&BreakerName::Payment)), None);
    assert_eq!(read(s, |r| r.breakers()), vec![]);
    let open = Breaker {
        name: BreakerName::Payment,
        state: BreakerState::Open,
        failures: 5,
        opened_at: Some(t0),
        updated_at: t0 + Duration::seconds(1),
    };
    let webhook = Breaker::closed("webhook".parse().expect("a channel"), t0);
    write(s, |r| {
        r.save_breaker(&webhook)?;
        r.save_breaker(&open)
    });
    assert_eq!(read(s, |r| r.breaker(&BreakerName::Payment)), Some(open.clone()));
    let closed = Breaker::closed(BreakerName::Payment, t0 + Duration::seconds(2));
    write(s, |r| r.save_breaker(&closed));
    assert_eq!(read(s, |r| r.breakers()), vec![closed, webhook], "upserted, by name");
    let fail: Result<()> = s.write(&mut |r| {
        r.save_breaker(&open)?;
        Err(Error::Internal("boom".into()))
    });
    assert!(fail.is_err());
    assert_eq!(
        read(s, |r| r.breaker(&BreakerName::Payment)).map(|b| b.state),
        Some(BreakerState::Closed),
        "rolled back"
    );
}

/// What a claim of `key` in `scope` with `fingerprint` finds, at `at`.
fn claim(s: &mut dyn Storage, scope: &str, key: &str, fingerprint: &str, at: DateTime<Utc>) -> RequestClaim {
    write(s, |r| r.claim_request(scope, key, fingerprint, at))
}

fn request_keys(s: &mut dyn Storage) {
    let created = StoredResponse { status: 201, body: "{\"order_id\":7,\"메뉴\":\"후라이드\"}".into() };
    // New, then in flight (since the first claim's time) for every repeat,
    // however late, until it finishes; then done with its response.
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-a", t(10)), RequestClaim::New);
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-a", t(11)), RequestClaim::InFlight { since: t(10) });
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-a", t(900)), RequestClaim::InFlight { since: t(10) });
    assert!(write(s, |r| r.finish_request("customer:kim", "k-1", &created)));
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-a", t(12)), RequestClaim::Done(created.clone()));
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-a", t(13)), RequestClaim::Done(created.clone()), "again");
    // Another request under the same key: a mismatch, in flight or done,
    // and the stored one is untouched.
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-b", t(14)), RequestClaim::Mismatch);
    assert_eq!(claim(s, "customer:kim", "k-2", "fp-a", t(15)), RequestClaim::New);
    assert_eq!(claim(s, "customer:kim", "k-2", "fp-b", t(16)), RequestClaim::Mismatch, "in flight");
    assert_eq!(claim(s, "customer:kim", "k-2", "fp-a", t(17)), RequestClaim::InFlight { since: t(15) });
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-a", t(18)), RequestClaim::Done(created.clone()));

    // Scopes are independent: the same key of another sender is new.
    assert_eq!(claim(s, "customer:lee", "k-1", "fp-b", t(20)), RequestClaim::New);
    assert_eq!(claim(s, "customer:lee", "k-1", "fp-b", t(21)), RequestClaim::InFlight { since: t(20) });
    let lee = StoredResponse { status: 409, body: String::new() };
    assert!(write(s, |r| r.finish_request("customer:lee", "k-1", &lee)));
    assert_eq!(claim(s, "customer:lee", "k-1", "fp-b", t(22)), RequestClaim::Done(lee));
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-a", t(23)), RequestClaim::Done(created.clone()));

    // A key nobody holds is not finished, and nothing is stored.
    assert!(!write(s, |r| r.finish_request("customer:kim", "k-9", &created)), "never claimed");
    assert_eq!(claim(s, "customer:kim", "k-9", "fp-a", t(24)), RequestClaim::New, "the finish stored nothing");

    // Forgotten (finished or not), a key is new again, with any fingerprint.
    assert!(write(s, |r| r.forget_request("customer:kim", "k-2")));
    assert!(!write(s, |r| r.forget_request("customer:kim", "k-2")), "forgotten already");
    assert_eq!(claim(s, "customer:kim", "k-2", "fp-c", t(30)), RequestClaim::New);
    assert!(write(s, |r| r.forget_request("customer:kim", "k-1")));
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-b", t(31)), RequestClaim::New);
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-b", t(32)), RequestClaim::InFlight { since: t(31) });
    let lee = RequestClaim::Done(StoredResponse { status: 409, body: String::new() });
    assert_eq!(claim(s, "customer:lee", "k-1", "fp-b", t(33)), lee, "another scope's key stays");

    // A finish rolled back with its unit of work leaves the key in flight;
    // a claim rolled back leaves it free.
    let failed = through(
        |w| s.write(w),
        |r| {
            assert!(r.finish_request("customer:kim", "k-1", &created)?);
            assert_eq!(r.claim_request("customer:kim", "k-8", "fp", t(34))?, RequestClaim::New);
            assert!(r.forget_request("customer:lee", "k-1")?);
            Err::<(), _>(Error::Internal("rolled back".into()))
        },
    );
    assert!(failed.is_err());
    assert_eq!(claim(s, "customer:kim", "k-1", "fp-b", t(35)), RequestClaim::InFlight { since: t(31) });
    assert_eq!(claim(s, "customer:kim", "k-8", "fp", t(36)), RequestClaim::New);
    assert!(matches!(claim(s, "customer:lee", "k-1", "fp-b", t(37)), RequestClaim::Done(_)), "not forgotten");

    // Keys and scopes are compared exactly: text of any kind, no folding.
    assert_eq!(claim(s, "customer:kim", "K-1", "fp-b", t(40)), RequestClaim::New, "case matters");
    assert_eq!(claim(s, "customer:김", "열쇠 🔑", "fp", t(41)), RequestClaim::New);
    assert_eq!(claim(s, "customer:김", "열쇠 🔑", "fp", t(42)), RequestClaim::InFlight { since: t(41) });
}

fn purge_requests(s: &mut dyn Storage) {
    let done = StoredResponse { status: 200, body: "ok".into() };
    for (key, at) in [("old-done", 10), ("old-open", 20), ("edge", 100), ("new-done", 200), ("new-open", 300)] {
        assert_eq!(claim(s, "s", key, "fp", t(at)), RequestClaim::New);
    }
    assert_eq!(claim(s, "other", "old-open", "fp", t(30)), RequestClaim::New);
    for key in ["old-done", "new-done"] {
        assert!(write(s, |r| r.finish_request("s", key, &done)));
    }
    // A purge undone with its unit of work leaves every key.
    let failed = through(
        |w| s.write(w),
        |r| {
            assert_eq!(r.purge_requests(t(1_000))?, 6);
            Err::<(), _>(Error::Internal("rolled back".into()))
        },
    );
    assert!(failed.is_err());
    assert_eq!(claim(s, "s", "old-done", "fp", t(40)), RequestClaim::Done(done.clone()), "kept");

    // Claimed before the bound, finished or not: gone; at or after it: kept.
    assert_eq!(write(s, |r| r.purge_requests(t(100))), 3, "old-done, old-open and other's old-open");
    assert_eq!(write(s, |r| r.purge_requests(t(100))), 0, "nothing more to purge");
    assert_eq!(claim(s, "s", "edge", "fp", t(400)), RequestClaim::InFlight { since: t(100) }, "at the bound: kept");
    assert_eq!(claim(s, "s", "new-done", "fp", t(401)), RequestClaim::Done(done.clone()));
    assert_eq!(claim(s, "s", "new-open", "fp", t(402)), RequestClaim::InFlight { since: t(300) });
    for (scope, key) in [("s", "old-done"), ("s", "old-open"), ("other", "old-open")] {
        assert_eq!(claim(s, scope, key, "fp-new", t(500)), RequestClaim::New, "{scope} {key} purged: new again");
    }
    assert_eq!(write(s, |r| r.purge_requests(t(10_000))), 6, "every key");
    assert_eq!(claim(s, "s", "new-done", "fp", t(10_001)), RequestClaim::New);
}

fn order_counts(s: &mut dyn Storage) {
    let zeros: Vec<(OrderStatus, u64)> = OrderStatus::ALL.iter().map(|&status| (status, 0)).collect();
    assert_eq!(read(s, |r| r.order_counts()), zeros, "every status, zeros included, in lifecycle order");
    world(s, 2, 0, 0);
    // Two stores, every status, some several times.
    let mut id = 0;
    let mut expected = zeros.clone();
    write(s, |r| {
        id = 0;
        expected = zeros.clone();
        for (i, &status) in OrderStatus::ALL.iter().enumerate() {
            for n in 0..(i % 3) {
                id += 1;
                r.insert_order(&order(id, 1 + (n as i64 % 2), status))?;
                expected[i].1 += 1;
            }
        }
        Ok(())
    });
    assert!(expected.iter().any(|(_, n)| *n == 0) && expected.iter().any(|(_, n)| *n == 2), "{expected:?}");
    assert_eq!(read(s, |r| r.order_counts()), expected);
    assert_eq!(write(s, |r| r.order_counts()), expected, "in a write too");

    // An order that moves is counted in its new status only.
    let moved = read(s, |r| r.order(id)).expect("the last order");
    let from = OrderStatus::ALL.iter().position(|&x| x == moved.status).expect("a status");
    let to = OrderStatus::ALL.iter().position(|&x| x == OrderStatus::PendingPayment).expect("a status");
    write(s, |r| r.update_order(&Order { status: OrderStatus::PendingPayment, ..moved.clone() }));
    expected[from].1 -= 1;
    expected[to].1 += 1;
    assert_eq!(read(s, |r| r.order_counts()), expected);
    assert_eq!(read(s, |r| r.order_counts()).iter().map(|(_, n)| n).sum::<u64>(), id as u64);
}

/// Eight claims of one idempotency key at once: exactly one is new, and
/// every other finds it in flight since that one's time.
pub(crate) fn exactly_one_claim_is_new(claims: &[crate::RequestClaim]) {
    use crate::RequestClaim;
    assert_eq!(claims.len(), 8);
    assert_eq!(claims.iter().filter(|c| **c == RequestClaim::New).count(), 1, "{claims:?}");
    let since: Vec<_> = claims
        .iter()
        .filter_map(|c| match c {
            RequestClaim::InFlight { since } => Some(*since),
            _ => None,
        })
        .collect();
    assert_eq!(since.len(), 7, "{claims:?}");
    assert!(since.windows(2).all(|w| w[0] == w[1]), "one claim's time: {claims:?}");
}

/// Claims `key` from eight threads at once, the `i`th through `engine(i)`
/// (an engine of its own, as a process of its own, or one shared), and
/// checks that exactly one claim is new.
pub(crate) fn eight_claims_at_once<E>(key: &str, engine: impl Fn(usize) -> E + Sync)
where
    E: std::ops::Deref<Target = crate::Engine>,
{
    let barrier = std::sync::Barrier::new(8);
    let claims: Vec<crate::RequestClaim> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (barrier, engine) = (&barrier, &engine);
                scope.spawn(move || {
                    let engine = engine(i);
                    barrier.wait();
                    engine.claim_request("customer:kim", key, "fp").expect("claimed")
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("no panic")).collect()
    });
    exactly_one_claim_is_new(&claims);
}
