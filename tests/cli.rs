//! CLI tests: the real `ezdelivery` binary, run as a user or a script runs it,
//! against a temporary database. They check SPEC.md's outside contract
//! (commands, statuses, JSON shapes, exit codes, config) and the decisions the
//! README writes down where SPEC.md is silent.
//!
//! Every test gets its own temporary folder: the database, the data folder
//! (`XDG_DATA_HOME`) and `HOME` all point inside it, and `EZDELIVERY_DB` /
//! `EZDELIVERY_CONFIG` are removed, so nothing touches the real home.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use ezdelivery_testkit::cli_world::{finish, id, one_object, order_id, stdout_lines, Shop, World};
use serde_json::Value;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");
/// The card the sandbox declines by default.
const DECLINE_CARD: &str = "4000000000000002";
/// A card the sandbox approves.
const GOOD_CARD: &str = "4111111111111111";
/// SPEC.md's event type names of an order (those that carry its id).
const ORDER_EVENT_TYPES: &[&str] = &[
    "OrderPlaced",
    "PaymentApproved",
    "PaymentDeclined",
    "PaymentRefunded",
    "OrderRejected",
    "CookingStarted",
    "FoodCooked",
    "DeliveryPrepared",
    "DeliveryChargePaid",
    "DeliveryStarted",
    "DeliveryCompleted",
    "OrderCancelled",
    "DeliveryCancelled",
    "DeliveryChargeRefunded",
    "ReviewRegistered",
];

// ───────────────────────────── helpers ─────────────────────────────

/// A world of its own, with no config file: the program's defaults.
fn new_world() -> World {
    World::without_config(BIN)
}

/// A world of its own on a fresh database of the testkit's PostgreSQL
/// server, with an empty config file (the program's defaults); `None`
/// (the test returns, a SKIPPED line said why) when there is no server.
fn postgres_world() -> Option<World> {
    let pg = ezdelivery_testkit::postgres::server()?;
    Some(World::on_postgres(BIN, "", pg, &pg.fresh_database()))
}

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Asserts that `obj` has at least the keys `names` (SPEC: "other fields may be added").
fn assert_has_keys(obj: &Value, names: &[&str], what: &str) {
    let have = keys(obj);
    let missing: Vec<_> = names.iter().filter(|n| !have.contains(**n)).collect();
    assert!(missing.is_empty(), "{what} lacks {missing:?}: {obj}");
}

/// Is `wanted` a subsequence of `all` (same order, gaps allowed)?
fn is_subsequence(wanted: &[&str], all: &[String]) -> bool {
    let mut it = all.iter();
    wanted.iter().all(|w| it.any(|a| a == w))
}

/// The order command's arguments.
fn order_args(store: i64, customer: &str, items: &[&str]) -> Vec<String> {
    let mut args = vec!["order".into(), "--store".into(), store.to_string(), "--customer".into(), customer.into()];
    for item in items {
        args.push("--item".into());
        args.push(item.to_string());
    }
    args
}

/// What these tests do on a [`World`] beyond what every CLI test does.
trait Spec {
    /// Places an order of `items` (`--pay` when `pay`) and returns its view.
    fn place(&self, store: i64, customer: &str, items: &[&str], pay: bool) -> Value;
    /// Places a paid order of one 후라이드 and returns its id.
    fn paid(&self, shop: &Shop, customer: &str) -> i64;
    /// The type names of an order's events, in order.
    fn types(&self, order: i64) -> Vec<String>;
    /// The orders in the store's inbox (`store orders`).
    fn inbox(&self, store: i64) -> BTreeSet<i64>;
    fn stores(&self) -> Vec<Value>;
    fn store(&self, store: i64) -> Value;
    fn menus(&self, store: i64) -> Vec<Value>;
    /// Everything a failed command must not have changed.
    fn snapshot(&self) -> Value;
}

impl Spec for World {
    fn place(&self, store: i64, customer: &str, items: &[&str], pay: bool) -> Value {
        let mut args = order_args(store, customer, items);
        if pay {
            args.push("--pay".into());
        }
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn paid(&self, shop: &Shop, customer: &str) -> i64 {
        order_id(&self.place(shop.store, customer, &["후라이드"], true))
    }

    fn types(&self, order: i64) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["order_id"] == order)
            .map(|e| e["type"].as_str().expect("type is a string").to_string())
            .collect()
    }

    fn inbox(&self, store: i64) -> BTreeSet<i64> {
        let v = self.ok(&["store", "orders", &store.to_string()]);
        v["orders"]
            .as_array()
            .unwrap_or_else(|| panic!("{{\"orders\":[…]}} expected: {v}"))
            .iter()
            .map(order_id)
            .collect()
    }

    fn stores(&self) -> Vec<Value> {
        self.ok(&["store", "list"])["stores"].as_array().expect("{\"stores\":[…]}").clone()
    }

    fn store(&self, store: i64) -> Value {
        self.stores().into_iter().find(|s| s["id"] == store).unwrap_or_else(|| panic!("store {store} is listed"))
    }

    fn menus(&self, store: i64) -> Vec<Value> {
        self.ok(&["menu", "list", "--store", &store.to_string()])["menus"].as_array().expect("{\"menus\":[…]}").clone()
    }

    fn snapshot(&self) -> Value {
        serde_json::json!({
            "events": self.events(),
            "stores": self.stores(),
            "menus": self.ok(&["menu", "list"]),
            "riders": self.ok(&["rider", "list"]),
            "kim": self.orders_of("kim"),
        })
    }
}

// ───────────────────────────── 1. catalogue ─────────────────────────────

#[test]
fn catalogue_stores_menus_and_riders() {
    let cli = new_world();
    let store = cli.ok(&["store", "add", "--name", "교촌치킨", "--owner", "park", "--address", "서울 강남구"]);
    assert_has_keys(&store, &["id", "name", "owner", "open"], "store add");
    assert_eq!(store["name"], "교촌치킨");
    assert_eq!(store["owner"], "park");
    assert_eq!(store["open"], true, "a new store is open");
    assert_eq!(store["review_count"], 0);
    let s = id(&store);
    let other = cli.add_store("BBQ", "choi");
    assert_ne!(s, other);

    let listed = cli.stores();
    assert_eq!(listed.iter().map(id).collect::<BTreeSet<_>>(), BTreeSet::from([s, other]));

    // close / open, both idempotent (README: succeeds and writes no event)
    let closed = cli.ok(&["store", "close", &s.to_string()]);
    assert_eq!(closed["id"], s);
    assert_eq!(closed["open"], false);
    assert_eq!(cli.store(s)["open"], false);
    let before = cli.events().len();
    assert_eq!(cli.ok(&["store", "close", &s.to_string()])["open"], false);
    assert_eq!(cli.events().len(), before, "closing a closed store writes no event");
    assert_eq!(cli.ok(&["store", "open", &s.to_string()])["open"], true);
    assert_eq!(cli.store(s)["open"], true);
    assert_eq!(cli.store(other)["open"], true, "the other store is untouched");

    // menus
    let menu = cli.ok(&["menu", "add", "--store", &s.to_string(), "--name", "후라이드", "--price", "18000"]);
    assert_has_keys(&menu, &["id", "store_id", "name", "price", "available"], "menu add");
    assert_eq!(menu["store_id"], s);
    assert_eq!(menu["name"], "후라이드");
    assert_eq!(menu["price"], 18_000);
    assert_eq!(menu["available"], true);
    let chicken = id(&menu);
    let cola = cli.add_menu(s, "콜라", 2_000);
    let bbq = cli.add_menu(other, "황금올리브", 20_000);
    let menus = cli.menus(s);
    assert_eq!(menus.iter().map(id).collect::<BTreeSet<_>>(), BTreeSet::from([chicken, cola]));
    assert!(menus.iter().all(|m| m["store_id"] == s));
    let all = cli.ok(&["menu", "list"])["menus"].as_array().unwrap().clone();
    assert_eq!(all.iter().map(id).collect::<BTreeSet<_>>(), BTreeSet::from([chicken, cola, bbq]));

    let sold = cli.ok(&["menu", "soldout", &chicken.to_string()]);
    assert_eq!(sold["id"], chicken);
    assert_eq!(sold["available"], false);
    let listed = cli.menus(s);
    assert_eq!(listed.iter().find(|m| m["id"] == chicken).unwrap()["available"], false);
    assert_eq!(listed.iter().find(|m| m["id"] == cola).unwrap()["available"], true);
    let before = cli.events().len();
    assert_eq!(cli.ok(&["menu", "soldout", &chicken.to_string()])["available"], false);
    assert_eq!(cli.events().len(), before, "a sold-out menu marked sold out again writes no event");
    assert_eq!(cli.ok(&["menu", "available", &chicken.to_string()])["available"], true);
    assert_eq!(cli.menus(s).iter().find(|m| m["id"] == chicken).unwrap()["available"], true);

    // riders
    let rider = cli.ok(&["rider", "add", "--name", "lee"]);
    assert_has_keys(&rider, &["id", "name"], "rider add");
    assert_eq!(rider["name"], "lee");
    let choi = cli.add_rider("choi");
    let riders = cli.ok(&["rider", "list"])["riders"].as_array().expect("{\"riders\":[…]}").clone();
    assert_eq!(riders.iter().map(id).collect::<BTreeSet<_>>(), BTreeSet::from([id(&rider), choi]));
    assert!(riders.iter().any(|r| r["name"] == "lee") && riders.iter().any(|r| r["name"] == "choi"));

    // the catalogue's events
    let types: Vec<String> = cli.events().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types.iter().filter(|t| *t == "StoreRegistered").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "MenuAdded").count(), 3);

    // output for people
    let human = cli.run(&["store", "list"]);
    assert_eq!(human.code, Some(0));
    assert!(human.stdout.contains("교촌치킨") && human.stdout.contains("BBQ"), "{}", human.stdout);
    let human = cli.run(&["menu", "list", "--store", &s.to_string()]);
    assert_eq!(human.code, Some(0));
    assert!(human.stdout.contains("후라이드") && human.stdout.contains("콜라"), "{}", human.stdout);
}

#[test]
fn closed_store_and_sold_out_menu_refuse_orders_and_write_nothing() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let s = shop.store.to_string();

    cli.ok(&["store", "close", &s]);
    let before = cli.snapshot();
    let msg = cli.fails(&["order", "--store", &s, "--customer", "kim", "--item", "후라이드"], 4, "invalid_state");
    assert!(msg.contains("closed"), "the reason says the store is closed: {msg}");
    cli.fails(&["order", "--store", &s, "--customer", "kim", "--item", "후라이드", "--pay"], 4, "invalid_state");
    assert_eq!(cli.snapshot(), before, "an order refused by a closed store writes nothing");
    assert!(cli.orders_of("kim").is_empty());
    let human = cli.run(&["order", "--store", &s, "--customer", "kim", "--item", "후라이드"]);
    assert_eq!(human.code, Some(4));
    assert!(human.stdout.is_empty());
    assert!(!human.stderr.trim().is_empty(), "a failure without --json explains itself on stderr");

    cli.ok(&["store", "open", &s]);
    let view = cli.place(shop.store, "kim", &["후라이드"], false);
    assert_eq!(view["status"], "pending_payment");

    cli.ok(&["menu", "soldout", &shop.chicken.to_string()]);
    let before = cli.snapshot();
    let msg = cli.fails(&["order", "--store", &s, "--customer", "kim", "--item", "후라이드"], 4, "invalid_state");
    assert!(msg.contains("sold out"), "the reason says the menu is sold out: {msg}");
    cli.fails(&["order", "--store", &s, "--customer", "kim", "--item", &shop.chicken.to_string()], 4, "invalid_state");
    cli.fails(
        &["order", "--store", &s, "--customer", "kim", "--item", "콜라", "--item", "후라이드:2"],
        4,
        "invalid_state",
    );
    cli.fails(&["order", "--store", &s, "--customer", "kim", "--item", "후라이드", "--pay"], 4, "invalid_state");
    assert_eq!(cli.snapshot(), before, "an order of a sold-out menu writes nothing");
    assert_eq!(cli.orders_of("kim").len(), 1);

    // the other menu still sells; the menu sells again once available
    assert_eq!(cli.place(shop.store, "kim", &["콜라"], true)["status"], "paid");
    cli.ok(&["menu", "available", &shop.chicken.to_string()]);
    assert_eq!(cli.place(shop.store, "kim", &["후라이드"], true)["status"], "paid");
}

// ───────────────────────────── 2. order ─────────────────────────────

#[test]
fn order_is_pending_payment_with_the_sum_of_its_items() {
    let cli = new_world();
    let shop = cli.shop(&[]);

    let v = cli.place(shop.store, "kim", &["후라이드:2", "콜라"], false);
    assert_eq!(v["status"], "pending_payment");
    assert_eq!(v["store_id"], shop.store);
    assert_eq!(v["customer"], "kim");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let line = |menu: i64| items.iter().find(|i| i["menu_id"] == menu).unwrap_or_else(|| panic!("menu {menu} in {v}"));
    assert_eq!(line(shop.chicken)["name"], "후라이드");
    assert_eq!(line(shop.chicken)["unit_price"], 18_000);
    assert_eq!(line(shop.chicken)["qty"], 2);
    assert_eq!(line(shop.cola)["name"], "콜라");
    assert_eq!(line(shop.cola)["unit_price"], 2_000);
    assert_eq!(line(shop.cola)["qty"], 1, "QTY defaults to 1");
    assert_eq!(v["total"], 38_000);
    assert!(v["payment"].is_null(), "an unpaid order has no payment yet: {v}");
    assert!(v["kitchen"].is_null(), "an unpaid order has no kitchen ticket: {v}");
    assert!(v["delivery"].is_null());
    assert_eq!(cli.types(order_id(&v)), ["OrderPlaced"]);

    // MENU by id
    let by_id = cli.place(shop.store, "kim", &[&format!("{}:1", shop.chicken), &format!("{}:3", shop.cola)], false);
    assert_eq!(by_id["total"], 18_000 + 3 * 2_000);
    assert_eq!(by_id["items"].as_array().unwrap().len(), 2);

    // the same menu twice is one line (README)
    let twice = cli.place(shop.store, "kim", &["후라이드", &format!("{}:2", shop.chicken)], false);
    assert_eq!(twice["items"].as_array().unwrap().len(), 1, "{twice}");
    assert_eq!(twice["items"][0]["qty"], 3);
    assert_eq!(twice["total"], 54_000);

    // --pay pays at once
    let paid = cli.place(shop.store, "lee", &["후라이드", "콜라:2"], true);
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["total"], 22_000);
    assert_eq!(paid["payment"]["status"], "approved");
    assert_eq!(paid["payment"]["amount"], 22_000);
    assert_eq!(paid["kitchen"]["status"], "received");
    assert!(paid["delivery"].is_null());
    assert_eq!(cli.types(order_id(&paid)), ["OrderPlaced", "PaymentApproved"]);

    // ids are distinct and the customer's orders are all there
    let kim: BTreeSet<i64> = cli.orders_of("kim").iter().map(order_id).collect();
    assert_eq!(kim, BTreeSet::from([order_id(&v), order_id(&by_id), order_id(&twice)]));

    // a declined card with --pay keeps the order, unpaid (exit 5)
    let s = shop.store.to_string();
    cli.fails(
        &["order", "--store", &s, "--customer", "choi", "--item", "콜라", "--pay", "--card", DECLINE_CARD],
        5,
        "declined",
    );
    let choi = cli.orders_of("choi");
    assert_eq!(choi.len(), 1, "the declined order is kept");
    assert_eq!(choi[0]["status"], "pending_payment");
    assert_eq!(choi[0]["payment"]["status"], "declined");

    // MENU is looked up within the store only
    let other = cli.add_store("BBQ", "choi");
    cli.add_menu(other, "황금올리브", 20_000);
    let before = cli.snapshot();
    let o = other.to_string();
    cli.fails(&["order", "--store", &o, "--customer", "kim", "--item", "후라이드"], 3, "not_found");
    cli.fails(&["order", "--store", &o, "--customer", "kim", "--item", &shop.chicken.to_string()], 3, "not_found");
    cli.fails(&["order", "--store", &s, "--customer", "kim", "--item", "후라이"], 3, "not_found");
    assert_eq!(cli.snapshot(), before);
}

// ───────────────────────────── 3. pay ─────────────────────────────

#[test]
fn pay_approves_by_default_and_declines_the_listed_card() {
    let cli = new_world();
    let shop = cli.shop(&[]);

    // without a card the sandbox approves
    let plain = order_id(&cli.place(shop.store, "kim", &["콜라"], false));
    let v = cli.on(&["pay"], plain);
    assert_eq!(v["status"], "paid");
    assert_eq!(v["payment"]["status"], "approved");
    assert_eq!(v["payment"]["amount"], 2_000);
    cli.fails(&["pay", &plain.to_string()], 4, "invalid_state");
    assert_eq!(cli.types(plain), ["OrderPlaced", "PaymentApproved"], "paying a paid order writes nothing");

    let o = order_id(&cli.place(shop.store, "kim", &["후라이드:2"], false));
    let os = o.to_string();
    let msg = cli.fails(&["pay", &os, "--card", DECLINE_CARD], 5, "declined");
    assert!(msg.contains("declined"), "{msg}");
    let human = cli.run(&["pay", &os, "--card", DECLINE_CARD]);
    assert_eq!(human.code, Some(5), "declined without --json too: {}", human.stderr);
    let v = cli.status(o);
    assert_eq!(v["status"], "pending_payment", "a declined order stays pending_payment");
    assert_eq!(v["payment"]["status"], "declined");
    assert!(v["kitchen"].is_null());
    assert_eq!(v["total"], 36_000);

    // not established: not in the inbox, cannot be cooked
    assert!(!cli.inbox(shop.store).contains(&o));
    cli.fails(&["cook", "start", &os], 4, "invalid_state");
    assert_eq!(cli.status(o)["status"], "pending_payment");

    // pay again with another card
    let v = cli.ok(&["pay", &os, "--card", GOOD_CARD]);
    assert_eq!(v["status"], "paid");
    assert_eq!(v["payment"]["status"], "approved");
    assert_eq!(v["payment"]["amount"], 36_000);
    assert_eq!(v["kitchen"]["status"], "received");
    assert!(cli.inbox(shop.store).contains(&o));
    assert_eq!(cli.types(o), ["OrderPlaced", "PaymentDeclined", "PaymentDeclined", "PaymentApproved"]);

    // no card number is ever printed in full
    let dump = cli.run(&["events", "--format", "json"]);
    assert!(!dump.stdout.contains(GOOD_CARD) && !dump.stdout.contains(DECLINE_CARD), "cards are masked");
}

#[test]
fn pay_declines_the_cards_listed_in_the_config() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let config = cli
        .config("decline.toml", &format!("[payment.sandbox]\ndecline_cards = [\"{GOOD_CARD}\"]\n"))
        .display()
        .to_string();
    let o = order_id(&cli.place(shop.store, "kim", &["콜라"], false));
    let os = o.to_string();
    cli.fails(&["--config", &config, "pay", &os, "--card", GOOD_CARD], 5, "declined");
    assert_eq!(cli.status(o)["status"], "pending_payment");
    let v = cli.ok(&["--config", &config, "pay", &os, "--card", DECLINE_CARD]);
    assert_eq!(v["status"], "paid", "a card not in the configured list is approved");

    // EZDELIVERY_CONFIG picks the file too
    let o2 = order_id(&cli.place(shop.store, "kim", &["콜라"], false));
    let mut c = cli.command(&["--json", "pay", &o2.to_string(), "--card", GOOD_CARD]);
    c.env("EZDELIVERY_CONFIG", &config);
    assert_eq!(finish(c, "pay with EZDELIVERY_CONFIG").code, Some(5));
    // a file it names that is not there says where its name came from
    let mut c = cli.command(&["--json", "store", "list"]);
    c.env("EZDELIVERY_CONFIG", cli.path("nonexistent.toml"));
    let (code, error) = ezdelivery_testkit::cli_world::json_outcome(
        &finish(c, "store list with a missing EZDELIVERY_CONFIG"),
        "store list",
    );
    assert_eq!(code, 2, "{error}");
    assert!(error["error"]["message"].as_str().unwrap_or_default().contains("EZDELIVERY_CONFIG"), "{error}");
}

#[test]
fn an_unpaid_order_is_not_established() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let o = order_id(&cli.place(shop.store, "kim", &["후라이드:2", "콜라"], false));
    let os = o.to_string();
    assert!(cli.inbox(shop.store).is_empty(), "the store never sees an unpaid order");
    let human = cli.run(&["store", "orders", &shop.store.to_string()]);
    assert_eq!(human.code, Some(0));
    let before = cli.snapshot();
    let msg = cli.fails(&["cook", "start", &os], 4, "invalid_state");
    assert!(msg.contains("not paid"), "{msg}");
    cli.fails(&["cook", "finish", &os], 4, "invalid_state");
    cli.fails(&["cook", "reject", &os], 4, "invalid_state");
    cli.fails(&["deliver", "start", &os], 4, "invalid_state");
    cli.fails(&["deliver", "complete", &os], 4, "invalid_state");
    cli.fails(&["review", &os, "--score", "5"], 4, "invalid_state");
    assert_eq!(cli.snapshot(), before, "refused moves write nothing");
}

// ───────────────────────────── 4. store orders ─────────────────────────────

#[test]
fn store_orders_lists_paid_waiting_and_in_progress_only() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let pending = order_id(&cli.place(shop.store, "kim", &["콜라"], false));
    let paid = cli.paid(&shop, "kim");
    let cooking = cli.paid(&shop, "kim");
    cli.advance(cooking, "cooking");
    let cooked = cli.paid(&shop, "kim");
    cli.advance(cooked, "cooked");
    let delivering = cli.paid(&shop, "kim");
    cli.advance(delivering, "delivering");
    let delivered = cli.paid(&shop, "kim");
    cli.advance(delivered, "delivered");
    let cancelled = cli.paid(&shop, "kim");
    cli.on(&["cancel"], cancelled);
    let rejected = cli.paid(&shop, "kim");
    cli.on(&["cook", "reject"], rejected);

    let other = cli.add_store("BBQ", "choi");
    cli.add_menu(other, "황금올리브", 20_000);
    let elsewhere = order_id(&cli.place(other, "kim", &["황금올리브"], true));

    assert_eq!(cli.inbox(shop.store), BTreeSet::from([paid, cooking, cooked, delivering]));
    assert_eq!(cli.inbox(other), BTreeSet::from([elsewhere]));
    let listed = cli.ok(&["store", "orders", &shop.store.to_string()]);
    for v in listed["orders"].as_array().unwrap() {
        assert_has_keys(v, &["order_id", "store_id", "customer", "status", "items", "total", "payment"], "inbox view");
        assert_eq!(v["store_id"], shop.store);
    }
    let statuses: BTreeSet<String> =
        listed["orders"].as_array().unwrap().iter().map(|v| v["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(statuses, set(&["paid", "cooking", "cooked", "delivering"]));
    assert!(!cli.inbox(shop.store).contains(&pending));
    cli.fails(&["store", "orders", "999"], 3, "not_found");
}

// ───────────────────────────── 5. kitchen ─────────────────────────────

#[test]
fn cook_start_prepares_a_delivery_with_the_least_busy_rider_and_pays_the_charge() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    cli.add_rider("choi");

    let o1 = cli.paid(&shop, "kim");
    let v = cli.on(&["cook", "start"], o1);
    assert_eq!(v["status"], "cooking");
    assert_eq!(v["kitchen"]["status"], "cooking");
    assert_eq!(v["delivery"]["status"], "preparing");
    assert_eq!(v["delivery"]["rider"], "lee", "equal load: the lowest id");
    assert_eq!(v["delivery"]["charge"]["status"], "paid");
    assert_eq!(v["delivery"]["charge"]["amount"], 3_000, "the default delivery charge");
    assert!(is_subsequence(
        &["OrderPlaced", "PaymentApproved", "CookingStarted", "DeliveryPrepared", "DeliveryChargePaid"],
        &cli.types(o1)
    ));

    let o2 = cli.paid(&shop, "kim");
    assert_eq!(cli.on(&["cook", "start"], o2)["delivery"]["rider"], "choi", "lee has one active delivery");
    // lee's delivery finishes: lee has none active, choi one
    cli.on(&["cook", "finish"], o1);
    cli.on(&["deliver", "start"], o1);
    cli.on(&["deliver", "complete"], o1);
    let o3 = cli.paid(&shop, "kim");
    assert_eq!(cli.on(&["cook", "start"], o3)["delivery"]["rider"], "lee");
    let o4 = cli.paid(&shop, "kim");
    assert_eq!(cli.on(&["cook", "start"], o4)["delivery"]["rider"], "lee", "equal load again: the lowest id");

    // cook finish
    let v = cli.on(&["cook", "finish"], o2);
    assert_eq!(v["status"], "cooked");
    assert_eq!(v["kitchen"]["status"], "cooked");
    assert_eq!(v["delivery"]["status"], "preparing");
    assert!(cli.types(o2).contains(&"FoodCooked".to_string()));
    cli.fails(&["cook", "finish", &o2.to_string()], 4, "invalid_state");
    cli.fails(&["cook", "start", &o2.to_string()], 4, "invalid_state");

    // a store's own delivery charge
    let bbq = id(&cli.ok(&["store", "add", "--name", "BBQ", "--owner", "choi", "--delivery-charge", "5000"]));
    cli.add_menu(bbq, "황금올리브", 20_000);
    let o5 = order_id(&cli.place(bbq, "kim", &["황금올리브"], true));
    let v = cli.on(&["cook", "start"], o5);
    assert_eq!(v["delivery"]["charge"]["amount"], 5_000);
    assert_eq!(v["delivery"]["charge"]["status"], "paid");
}

#[test]
fn cook_reject_refunds_the_payment() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let o = order_id(&cli.place(shop.store, "kim", &["후라이드", "콜라"], true));
    let v = cli.ok(&["cook", "reject", &o.to_string(), "--reason", "out of chicken"]);
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["kitchen"]["status"], "rejected");
    assert_eq!(v["payment"]["status"], "refunded");
    assert_eq!(v["payment"]["amount"], 20_000);
    assert!(v["delivery"].is_null());
    let types = cli.types(o);
    assert!(
        is_subsequence(&["OrderPlaced", "PaymentApproved", "OrderRejected", "PaymentRefunded"], &types),
        "{types:?}"
    );
    assert!(cli.inbox(shop.store).is_empty(), "a rejected order leaves the inbox");
    cli.fails(&["cook", "start", &o.to_string()], 4, "invalid_state");
    cli.fails(&["cook", "reject", &o.to_string()], 4, "invalid_state");
    assert_eq!(cli.status(o), v, "status shows what reject printed");
}

#[test]
fn without_a_rider_the_delivery_waits_until_one_is_named() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let o = cli.paid(&shop, "kim");
    let os = o.to_string();
    let v = cli.on(&["cook", "start"], o);
    assert_eq!(v["status"], "cooking");
    assert_eq!(v["delivery"]["status"], "preparing");
    assert!(v["delivery"]["rider"].is_null(), "no rider is registered: {v}");
    assert!(v["delivery"]["charge"].is_null() || v["delivery"]["charge"]["status"] != "paid", "nobody to pay: {v}");
    assert!(cli.types(o).contains(&"DeliveryPrepared".to_string()));
    assert!(!cli.types(o).contains(&"DeliveryChargePaid".to_string()));
    cli.on(&["cook", "finish"], o);

    let before = cli.snapshot();
    cli.fails(&["deliver", "start", &os], 4, "invalid_state");
    cli.fails(&["deliver", "start", &os, "--rider", "lee"], 3, "not_found");
    assert_eq!(cli.snapshot(), before);

    cli.add_rider("lee");
    let v = cli.status(o);
    assert_eq!(v["delivery"]["status"], "preparing", "still waiting for a rider to be named");
    assert!(v["delivery"]["rider"].is_null());
    cli.fails(&["deliver", "start", &os], 4, "invalid_state");

    let v = cli.ok(&["deliver", "start", &os, "--rider", "lee"]);
    assert_eq!(v["status"], "delivering");
    assert_eq!(v["delivery"]["status"], "delivering");
    assert_eq!(v["delivery"]["rider"], "lee");
    assert_eq!(v["delivery"]["charge"]["status"], "paid");
    assert_eq!(v["delivery"]["charge"]["amount"], 3_000);
    assert!(is_subsequence(
        &["DeliveryPrepared", "FoodCooked", "DeliveryChargePaid", "DeliveryStarted"],
        &cli.types(o)
    ));
}

// ───────────────────────────── 6. delivery ─────────────────────────────

#[test]
fn deliver_start_needs_cooked_food_and_naming_another_rider_moves_the_delivery() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let lee = cli.add_rider("lee");
    cli.add_rider("choi");
    let o = cli.paid(&shop, "kim");
    let os = o.to_string();
    assert_eq!(cli.on(&["cook", "start"], o)["delivery"]["rider"], "lee");

    let before = cli.snapshot();
    let msg = cli.fails(&["deliver", "start", &os], 4, "invalid_state");
    assert!(msg.contains("cooked"), "{msg}");
    cli.fails(&["deliver", "start", &os, "--rider", "choi"], 4, "invalid_state");
    cli.fails(&["deliver", "complete", &os], 4, "invalid_state");
    assert_eq!(cli.snapshot(), before, "a refused departure writes nothing");
    assert_eq!(cli.status(o)["delivery"]["rider"], "lee");

    cli.on(&["cook", "finish"], o);
    cli.fails(&["deliver", "start", &os, "--rider", "nobody"], 3, "not_found");
    let v = cli.ok(&["deliver", "start", &os, "--rider", "choi"]);
    assert_eq!(v["status"], "delivering");
    assert_eq!(v["delivery"]["status"], "delivering");
    assert_eq!(v["delivery"]["rider"], "choi", "the delivery moved to choi");
    assert_eq!(v["delivery"]["charge"]["status"], "paid");
    assert_eq!(v["delivery"]["charge"]["amount"], 3_000);
    let types = cli.types(o);
    assert_eq!(
        types.iter().filter(|t| *t == "DeliveryChargePaid").count(),
        2,
        "a new charge is paid to choi: {types:?}"
    );
    assert!(types.contains(&"DeliveryChargeRefunded".to_string()), "lee's charge is taken back: {types:?}");
    assert_eq!(types.last().map(String::as_str), Some("DeliveryStarted"), "{types:?}");
    let started = cli.events().into_iter().find(|e| e["order_id"] == o && e["type"] == "DeliveryStarted").unwrap();
    assert_eq!(started["data"]["rider"], "choi");

    cli.fails(&["deliver", "start", &os], 4, "invalid_state");
    let v = cli.on(&["deliver", "complete"], o);
    assert_eq!(v["status"], "delivered");
    assert_eq!(v["delivery"]["status"], "delivered");
    assert_eq!(v["delivery"]["rider"], "choi");
    assert_eq!(cli.types(o).last().map(String::as_str), Some("DeliveryCompleted"));
    cli.fails(&["deliver", "complete", &os], 4, "invalid_state");

    // naming the rider already assigned (by id) does not move anything
    let o2 = cli.paid(&shop, "kim");
    assert_eq!(cli.on(&["cook", "start"], o2)["delivery"]["rider"], "lee");
    cli.on(&["cook", "finish"], o2);
    let v = cli.ok(&["deliver", "start", &o2.to_string(), "--rider", &lee.to_string()]);
    assert_eq!(v["delivery"]["rider"], "lee");
    let types = cli.types(o2);
    assert_eq!(types.iter().filter(|t| *t == "DeliveryChargePaid").count(), 1, "{types:?}");
    assert!(!types.contains(&"DeliveryChargeRefunded".to_string()), "{types:?}");
}

// ───────────────────────────── 7. cancel ─────────────────────────────

#[test]
fn cancel_until_departure_compensates_everything() {
    cancel_until_departure(&new_world());
}

#[test]
fn cancel_until_departure_compensates_everything_on_postgres() {
    let Some(cli) = postgres_world() else { return };
    cancel_until_departure(&cli);
}

fn cancel_until_departure(cli: &World) {
    let shop = cli.shop(&[]);
    cli.add_rider("lee");

    // unpaid
    let o = order_id(&cli.place(shop.store, "kim", &["콜라"], false));
    let v = cli.ok(&["cancel", &o.to_string(), "--reason", "changed my mind"]);
    assert_eq!(v["status"], "cancelled");
    assert!(cli.types(o).contains(&"OrderCancelled".to_string()));
    cli.fails(&["pay", &o.to_string()], 4, "invalid_state");

    // paid: refund, kitchen ticket cancelled
    let o = cli.paid(&shop, "kim");
    let v = cli.on(&["cancel"], o);
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["payment"]["status"], "refunded");
    assert_eq!(v["payment"]["amount"], 18_000);
    assert_eq!(v["kitchen"]["status"], "cancelled");
    assert!(v["delivery"].is_null());
    assert!(is_subsequence(&["PaymentApproved", "OrderCancelled", "PaymentRefunded"], &cli.types(o)));

    // cooking and cooked: also the delivery and the rider's charge
    for stage in ["cooking", "cooked"] {
        let o = cli.paid(&shop, "kim");
        cli.advance(o, stage);
        let v = cli.ok(&["cancel", &o.to_string(), "--reason", "changed my mind"]);
        assert_eq!(v["status"], "cancelled", "{stage}");
        assert_eq!(v["payment"]["status"], "refunded", "{stage}");
        assert_eq!(v["kitchen"]["status"], "cancelled", "{stage}");
        assert_eq!(v["delivery"]["status"], "cancelled", "{stage}");
        assert_eq!(v["delivery"]["charge"]["status"], "refunded", "{stage}");
        assert_eq!(v["delivery"]["charge"]["amount"], 3_000, "{stage}");
        let types = cli.types(o);
        for t in ["OrderCancelled", "PaymentRefunded", "DeliveryCancelled", "DeliveryChargeRefunded"] {
            assert!(types.contains(&t.to_string()), "{stage}: {t} in {types:?}");
        }
        assert!(is_subsequence(&["DeliveryChargePaid", "OrderCancelled", "PaymentRefunded"], &types), "{types:?}");
        assert_eq!(cli.status(o), v);
        cli.fails(&["cancel", &o.to_string()], 4, "invalid_state");
        cli.fails(&["cook", "finish", &o.to_string()], 4, "invalid_state");
        cli.fails(&["deliver", "start", &o.to_string()], 4, "invalid_state");
    }
    assert!(cli.inbox(shop.store).is_empty(), "cancelled orders leave the inbox");

    // after departure: refused with the reason
    for stage in ["delivering", "delivered"] {
        let o = cli.paid(&shop, "kim");
        cli.advance(o, stage);
        let before = cli.snapshot();
        let msg = cli.fails(&["cancel", &o.to_string()], 4, "invalid_state");
        let why = if stage == "delivered" { "was already delivered" } else { "is already on its way (delivering)" };
        assert!(msg.contains(why), "{stage}: {msg}");
        let human = cli.run(&["cancel", &o.to_string()]);
        assert_eq!(human.code, Some(4));
        assert!(human.stderr.contains(why), "{stage}: {}", human.stderr);
        assert_eq!(cli.snapshot(), before, "a refused cancel writes nothing");
        let v = cli.status(o);
        assert_eq!(v["status"], stage);
        assert_eq!(v["payment"]["status"], "approved");
        assert_eq!(v["delivery"]["charge"]["status"], "paid");
    }
}

// ───────────────────────────── 8. review ─────────────────────────────

#[test]
fn review_once_after_delivery_and_store_list_shows_count_and_average() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let other = cli.add_store("BBQ", "choi");

    let cooking = cli.paid(&shop, "kim");
    cli.advance(cooking, "cooking");
    let o1 = cli.paid(&shop, "kim");
    cli.advance(o1, "delivered");
    let o2 = cli.paid(&shop, "lee");
    cli.advance(o2, "delivered");

    let before = cli.snapshot();
    cli.fails(&["review", &cooking.to_string(), "--score", "5"], 4, "invalid_state");
    cli.fails(&["review", &o1.to_string(), "--score", "9"], 2, "invalid_input");
    cli.fails(&["review", &o1.to_string(), "--score", "0"], 2, "invalid_input");
    cli.fails(&["review", "999", "--score", "5"], 3, "not_found");
    assert_eq!(cli.snapshot(), before);
    assert_eq!(cli.store(shop.store)["review_count"], 0);

    let r = cli.ok(&["review", &o1.to_string(), "--score", "5", "--text", "바삭해요"]);
    assert_eq!(r["order_id"], o1);
    assert_eq!(r["score"], 5);
    assert_eq!(r["text"], "바삭해요");
    let store = cli.store(shop.store);
    assert_eq!(store["review_count"], 1);
    assert_eq!(store["average_score"].as_f64(), Some(5.0));

    let before = cli.snapshot();
    let msg = cli.fails(&["review", &o1.to_string(), "--score", "1"], 4, "invalid_state");
    assert!(msg.contains("review"), "{msg}");
    assert_eq!(cli.snapshot(), before, "a second review writes nothing");

    cli.ok(&["review", &o2.to_string(), "--score", "2"]);
    let store = cli.store(shop.store);
    assert_eq!(store["review_count"], 2);
    assert_eq!(store["average_score"].as_f64(), Some(3.5));
    assert_eq!(cli.store(other)["review_count"], 0);
    assert_eq!(cli.types(o1).last().map(String::as_str), Some("ReviewRegistered"));

    let human = cli.run(&["store", "list"]);
    assert!(human.stdout.contains("3.5"), "the table shows the average: {}", human.stdout);
}

// ───────────────────────────── 9. status ─────────────────────────────

/// Checks the order view against SPEC.md's JSON shape.
fn assert_view_shape(v: &Value) {
    assert_has_keys(
        v,
        &[
            "order_id",
            "store_id",
            "customer",
            "status",
            "items",
            "total",
            "payment",
            "kitchen",
            "delivery",
            "updated_at",
            "timeline",
        ],
        "order view",
    );
    assert!(v["order_id"].is_i64() && v["store_id"].is_i64() && v["total"].is_i64(), "{v}");
    assert!(v["customer"].is_string() && v["status"].is_string() && v["updated_at"].is_string(), "{v}");
    let statuses = ["pending_payment", "paid", "cooking", "cooked", "delivering", "delivered", "cancelled", "rejected"];
    assert!(statuses.contains(&v["status"].as_str().unwrap()), "{}", v["status"]);
    let mut sum = 0;
    for item in v["items"].as_array().expect("items is an array") {
        assert_has_keys(item, &["menu_id", "name", "unit_price", "qty"], "item");
        assert!(item["menu_id"].is_i64() && item["name"].is_string(), "{item}");
        sum += item["unit_price"].as_i64().unwrap() * item["qty"].as_i64().unwrap();
    }
    assert_eq!(v["total"], sum, "total is the sum of the items");
    if !v["payment"].is_null() {
        assert_has_keys(&v["payment"], &["status", "amount"], "payment");
        assert!(v["payment"]["amount"].is_i64());
    }
    if !v["kitchen"].is_null() {
        assert_has_keys(&v["kitchen"], &["status"], "kitchen");
    }
    if !v["delivery"].is_null() {
        assert_has_keys(&v["delivery"], &["status", "rider", "charge"], "delivery");
        if !v["delivery"]["charge"].is_null() {
            assert_has_keys(&v["delivery"]["charge"], &["status", "amount"], "charge");
        }
    }
    let timeline = v["timeline"].as_array().expect("timeline is an array");
    assert!(!timeline.is_empty());
    assert_eq!(timeline[0]["type"], "OrderPlaced");
    let mut last = 0;
    for t in timeline {
        assert_has_keys(t, &["seq", "type", "at"], "timeline entry");
        let seq = t["seq"].as_i64().expect("seq is an integer");
        assert!(seq > last, "timeline in order: {timeline:?}");
        last = seq;
        assert!(t["type"].is_string() && t["at"].is_string());
    }
    assert_eq!(v["updated_at"], timeline.last().unwrap()["at"], "updated_at is the last event's time");
}

#[test]
fn status_prints_the_spec_view_with_its_timeline() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let o = order_id(&cli.place(shop.store, "kim", &["후라이드:2", "콜라"], false));
    let os = o.to_string();

    let v = cli.status(o);
    assert_view_shape(&v);
    assert_eq!(v["timeline"].as_array().unwrap().len(), 1);

    cli.fails(&["pay", &os, "--card", DECLINE_CARD], 5, "declined");
    cli.ok(&["pay", &os, "--card", GOOD_CARD]);
    cli.advance(o, "delivering");
    let v = cli.status(o);
    assert_view_shape(&v);
    assert_eq!(v["order_id"], o);
    assert_eq!(v["store_id"], shop.store);
    assert_eq!(v["customer"], "kim");
    assert_eq!(v["status"], "delivering");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(v["total"], 38_000);
    assert_eq!(v["payment"]["status"], "approved");
    assert_eq!(v["payment"]["amount"], 38_000);
    assert_eq!(v["kitchen"]["status"], "cooked");
    assert_eq!(v["delivery"]["status"], "delivering");
    assert_eq!(v["delivery"]["rider"], "lee");
    assert_eq!(v["delivery"]["charge"]["status"], "paid");
    assert_eq!(v["delivery"]["charge"]["amount"], 3_000);

    // the timeline is the order's events, in order
    let events: Vec<Value> = cli.events().into_iter().filter(|e| e["order_id"] == o).collect();
    let timeline = v["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), events.len());
    for (t, e) in timeline.iter().zip(&events) {
        assert_eq!(t["seq"], e["seq"]);
        assert_eq!(t["type"], e["type"]);
    }
    let types: Vec<String> = timeline.iter().map(|t| t["type"].as_str().unwrap().to_string()).collect();
    assert!(is_subsequence(
        &[
            "OrderPlaced",
            "PaymentDeclined",
            "PaymentApproved",
            "CookingStarted",
            "DeliveryPrepared",
            "DeliveryChargePaid",
            "FoodCooked",
            "DeliveryStarted"
        ],
        &types
    ));

    // every command's printed view is what status shows afterwards
    let done = cli.on(&["deliver", "complete"], o);
    assert_view_shape(&done);
    assert_eq!(cli.status(o), done);

    let human = cli.run(&["status", &os]);
    assert_eq!(human.code, Some(0));
    assert!(human.stdout.contains("후라이드") && human.stdout.contains("delivered"), "{}", human.stdout);
    assert!(human.stdout.contains("OrderPlaced"), "the timeline is shown: {}", human.stdout);

    cli.fails(&["status", "999"], 3, "not_found");
    cli.fails(&["status"], 2, "invalid_input");
}

#[test]
fn status_customer_lists_a_customers_orders() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let k1 = order_id(&cli.place(shop.store, "kim", &["콜라"], false));
    let k2 = cli.paid(&shop, "kim");
    let c1 = cli.paid(&shop, "choi");

    let v = cli.ok(&["status", "--customer", "kim"]);
    assert_eq!(keys(&v), set(&["orders"]));
    let orders = v["orders"].as_array().unwrap();
    assert_eq!(orders.iter().map(order_id).collect::<BTreeSet<_>>(), BTreeSet::from([k1, k2]));
    for view in orders {
        assert_view_shape(view);
        assert_eq!(view["customer"], "kim");
        assert_eq!(*view, cli.status(order_id(view)), "the list holds the same views as status ORDER");
    }
    assert_eq!(cli.orders_of("choi").iter().map(order_id).collect::<Vec<_>>(), [c1]);
    assert_eq!(cli.ok(&["status", "--customer", "nobody"]), serde_json::json!({"orders": []}));
    let human = cli.run(&["status", "--customer", "kim"]);
    assert_eq!(human.code, Some(0));
    assert!(human.stdout.contains("kim"), "{}", human.stdout);
}

#[test]
fn projection_rebuild_gives_the_same_views() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    cli.add_rider("choi");
    let pending = order_id(&cli.place(shop.store, "kim", &["콜라:3"], false));
    cli.fails(&["pay", &pending.to_string(), "--card", DECLINE_CARD], 5, "declined");
    let delivered = cli.paid(&shop, "kim");
    cli.advance(delivered, "cooked");
    cli.ok(&["deliver", "start", &delivered.to_string(), "--rider", "choi"]);
    cli.on(&["deliver", "complete"], delivered);
    cli.ok(&["review", &delivered.to_string(), "--score", "4", "--text", "good"]);
    let cancelled = cli.paid(&shop, "kim");
    cli.advance(cancelled, "cooking");
    cli.on(&["cancel"], cancelled);
    let rejected = cli.paid(&shop, "choi");
    cli.on(&["cook", "reject"], rejected);
    let cooking = cli.paid(&shop, "choi");
    cli.advance(cooking, "cooking");

    let ids = [pending, delivered, cancelled, rejected, cooking];
    let views = |cli: &World| {
        let mut all: Vec<Value> = ids.iter().map(|o| cli.status(*o)).collect();
        all.push(cli.ok(&["status", "--customer", "kim"]));
        all.push(cli.ok(&["status", "--customer", "choi"]));
        all.push(cli.ok(&["store", "orders", &shop.store.to_string()]));
        all
    };
    let before = views(&cli);
    let events = cli.events();

    let r = cli.ok(&["projection", "rebuild"]);
    assert!(r.is_object());
    assert_eq!(views(&cli), before, "a rebuild gives the same views");
    assert_eq!(cli.events(), events, "a rebuild appends no event");
    cli.ok(&["projection", "rebuild"]);
    assert_eq!(views(&cli), before, "rebuilding twice changes nothing");
    let human = cli.run(&["projection", "rebuild"]);
    assert_eq!(human.code, Some(0));
    assert_eq!(views(&cli), before);
}

// ───────────────────────────── 10. events ─────────────────────────────

/// `events ARGS --format json` as parsed lines.
fn event_lines(cli: &World, args: &[&str]) -> Vec<Value> {
    let r = cli.run(&[&["events", "--format", "json"], args].concat());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| one_object(l, "an event line")).collect()
}

#[test]
fn events_are_json_lines_with_filters_in_lifecycle_order() {
    events_in_lifecycle_order(&new_world());
}

#[test]
fn events_are_json_lines_with_filters_in_lifecycle_order_on_postgres() {
    let Some(cli) = postgres_world() else { return };
    events_in_lifecycle_order(&cli);
}

fn events_in_lifecycle_order(cli: &World) {
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let o = order_id(&cli.place(shop.store, "kim", &["후라이드"], false));
    cli.fails(&["pay", &o.to_string(), "--card", DECLINE_CARD], 5, "declined");
    cli.on(&["pay"], o);
    cli.advance(o, "delivered");
    cli.ok(&["review", &o.to_string(), "--score", "5"]);
    let other = cli.paid(&shop, "choi");
    cli.advance(other, "cooking");
    cli.on(&["cancel"], other);

    // on PostgreSQL: every event committed is visible from now on
    let settled = cli.events();
    let all = event_lines(cli, &[]);
    assert_eq!(all, settled);
    assert!(all.len() > 10);
    let mut last = 0;
    let mut ids = BTreeSet::new();
    for e in &all {
        assert_has_keys(e, &["seq", "id", "type", "order_id", "at", "data"], "event");
        let seq = e["seq"].as_i64().expect("seq is an integer");
        assert!(seq > last, "events in seq order");
        last = seq;
        let eid = e["id"].as_str().expect("id is a string");
        assert!(!eid.is_empty() && ids.insert(eid.to_string()), "event ids are unique");
        assert!(e["type"].is_string() && e["at"].is_string() && !e["data"].is_null(), "{e}");
        if ORDER_EVENT_TYPES.contains(&e["type"].as_str().unwrap()) {
            assert!(e["order_id"].is_i64(), "an order event carries its order id: {e}");
        }
    }
    let types: Vec<String> = all.iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    assert!(is_subsequence(&["StoreRegistered", "MenuAdded", "MenuAdded", "OrderPlaced"], &types), "{types:?}");
    assert_eq!(all, cli.events(), "`--json events` holds the same events");

    // --order
    let mine = event_lines(cli, &["--order", &o.to_string()]);
    let expected: Vec<Value> = all.iter().filter(|e| e["order_id"] == o).cloned().collect();
    assert_eq!(mine, expected);
    let mine: Vec<String> = mine.iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    let lifecycle = [
        "OrderPlaced",
        "PaymentDeclined",
        "PaymentApproved",
        "CookingStarted",
        "DeliveryPrepared",
        "DeliveryChargePaid",
        "FoodCooked",
        "DeliveryStarted",
        "DeliveryCompleted",
        "ReviewRegistered",
    ];
    assert!(is_subsequence(&lifecycle, &mine), "the lifecycle in order: {mine:?}");
    assert_eq!(mine.first().map(String::as_str), Some("OrderPlaced"));
    assert_eq!(mine.last().map(String::as_str), Some("ReviewRegistered"));
    let review = all.iter().find(|e| e["type"] == "ReviewRegistered").unwrap();
    assert_eq!(review["data"]["score"], 5);
    let placed = all.iter().find(|e| e["type"] == "OrderPlaced" && e["order_id"] == o).unwrap();
    assert_eq!(placed["data"]["customer"], "kim");

    let cancelled: Vec<String> = event_lines(cli, &["--order", &other.to_string()])
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(is_subsequence(
        &[
            "OrderPlaced",
            "PaymentApproved",
            "CookingStarted",
            "DeliveryPrepared",
            "DeliveryChargePaid",
            "OrderCancelled"
        ],
        &cancelled
    ));
    for t in ["PaymentRefunded", "DeliveryCancelled", "DeliveryChargeRefunded"] {
        let at = cancelled.iter().position(|c| c == t).unwrap_or_else(|| panic!("{t} in {cancelled:?}"));
        assert!(at > cancelled.iter().position(|c| c == "OrderCancelled").unwrap(), "{t} after OrderCancelled");
    }

    // --after
    let cut = all[all.len() / 2]["seq"].as_i64().unwrap();
    let after = event_lines(cli, &["--after", &cut.to_string()]);
    let expected: Vec<Value> = all.iter().filter(|e| e["seq"].as_i64().unwrap() > cut).cloned().collect();
    assert_eq!(after, expected);
    let both = event_lines(cli, &["--order", &o.to_string(), "--after", &cut.to_string()]);
    let expected: Vec<Value> =
        all.iter().filter(|e| e["order_id"] == o && e["seq"].as_i64().unwrap() > cut).cloned().collect();
    assert_eq!(both, expected);
    assert!(event_lines(cli, &["--after", &last.to_string()]).is_empty());
    cli.fails(&["events", "--order", "999"], 3, "not_found");

    // stdout is not a terminal here: JSON lines by default (README)
    let default = cli.run(&["events"]);
    assert_eq!(default.code, Some(0));
    let lines: Vec<Value> = default.stdout.lines().map(|l| one_object(l, "a default event line")).collect();
    assert_eq!(lines, all);
}

// ───────────────────────────── the same on PostgreSQL ─────────────────────────────

/// A whole lifecycle through the binary, every `--json` output in order:
/// order → pay → cook → deliver → review, an order cancelled while
/// cooking (its payment and the rider's charge refunded), one rejected, a
/// declined card, `relay`, `status --customer`, `store orders`, `store
/// list`, `events`, `projection rebuild` and the views after it.
fn lifecycle_transcript(cli: &World) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut ok = |args: &[&str]| {
        let (code, value) = cli.json(args);
        out.push((format!("{} -> {code}", args.join(" ")), value));
    };
    ok(&["store", "add", "--name", "교촌치킨", "--owner", "park"]);
    ok(&["menu", "add", "--store", "1", "--name", "후라이드", "--price", "18000"]);
    ok(&["menu", "add", "--store", "1", "--name", "콜라", "--price", "2000"]);
    ok(&["rider", "add", "--name", "lee"]);
    ok(&["rider", "add", "--name", "choi"]);
    // 1: the whole lifecycle, a declined card first
    ok(&["order", "--store", "1", "--customer", "kim", "--item", "후라이드:2", "--item", "콜라"]);
    ok(&["pay", "1", "--card", DECLINE_CARD]);
    ok(&["pay", "1", "--card", GOOD_CARD]);
    ok(&["cook", "start", "1"]);
    ok(&["cook", "finish", "1"]);
    ok(&["deliver", "start", "1", "--rider", "choi"]);
    ok(&["deliver", "complete", "1"]);
    ok(&["review", "1", "--score", "4", "--text", "바삭해요"]);
    ok(&["review", "1", "--score", "5"]);
    // 2: cancelled while cooking: refunds
    ok(&["order", "--store", "1", "--customer", "kim", "--item", "후라이드", "--pay"]);
    ok(&["cook", "start", "2"]);
    ok(&["cancel", "2", "--reason", "changed my mind"]);
    ok(&["deliver", "start", "2"]);
    // 3: rejected; 4: cooking; 5: unpaid, cancelled
    ok(&["order", "--store", "1", "--customer", "choi", "--item", "콜라:3", "--pay"]);
    ok(&["cook", "reject", "3"]);
    ok(&["order", "--store", "1", "--customer", "choi", "--item", "후라이드", "--pay"]);
    ok(&["cook", "start", "4"]);
    ok(&["order", "--store", "1", "--customer", "jung", "--item", "콜라"]);
    ok(&["cancel", "5"]);
    ok(&["relay"]);
    for customer in ["kim", "choi", "jung"] {
        ok(&["status", "--customer", customer]);
    }
    ok(&["store", "orders", "1"]);
    ok(&["store", "list"]);
    ok(&["rider", "list"]);
    // on PostgreSQL the log shows an event once older transactions on the
    // whole server have ended: wait for it as `World::events` does
    cli.events();
    ok(&["events"]);
    ok(&["events", "--order", "2"]);
    ok(&["projection", "rebuild"]);
    for customer in ["kim", "choi", "jung"] {
        ok(&["status", "--customer", customer]);
    }
    ok(&["events"]);
    out
}

/// `value` without what differs from run to run: times, event ids (UUIDs)
/// and message ids.
fn without_times_and_uuids(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, v)| {
                    !(key.ends_with("_at") || *key == "at" || (*key == "id" && v.is_string()) || *key == "next_due")
                })
                .map(|(key, v)| (key.clone(), without_times_and_uuids(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_times_and_uuids).collect()),
        other => other.clone(),
    }
}

/// The same commands print the same JSON on SQLite and on PostgreSQL
/// (but for times and UUIDs): ids, statuses, refunds, the event log and
/// its numbers, the views before and after a rebuild.
#[test]
fn a_whole_lifecycle_prints_the_same_json_on_sqlite_and_postgresql() {
    let Some(on_postgres) = postgres_world() else { return };
    let sqlite = lifecycle_transcript(&new_world());
    let postgres = lifecycle_transcript(&on_postgres);
    assert_eq!(sqlite.len(), postgres.len());
    for ((what, on_sqlite), (what_pg, on_pg)) in sqlite.iter().zip(&postgres) {
        assert_eq!(what, what_pg, "the same exit codes");
        assert_eq!(
            without_times_and_uuids(on_sqlite),
            without_times_and_uuids(on_pg),
            "`{what}` prints the same JSON on SQLite (left) and PostgreSQL (right)"
        );
    }
    let codes: Vec<&str> = sqlite.iter().map(|(what, _)| what.as_str()).collect();
    for refused in ["pay 1 --card 4000000000000002 -> 5", "review 1 --score 5 -> 4", "deliver start 2 -> 4"] {
        assert!(codes.contains(&refused), "{refused} in {codes:#?}");
    }
    let cancelled = &sqlite.iter().find(|(what, _)| what.starts_with("cancel 2 ")).expect("cancel 2").1;
    assert_eq!(cancelled["payment"]["status"], "refunded", "{cancelled}");
    assert_eq!(cancelled["delivery"]["charge"]["status"], "refunded", "{cancelled}");
}

// ───────────────────────────── 11. notifications ─────────────────────────────

#[test]
fn notifications_go_to_stderr_and_json_stdout_stays_one_object() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let s = shop.store.to_string();

    let r = cli.run(&["--json", "order", "--store", &s, "--customer", "kim", "--item", "후라이드"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v = one_object(&r.stdout, "stdout of order --json");
    let o = order_id(&v).to_string();
    assert!(r.stderr.is_empty(), "with --json the console notifier writes nothing: {}", r.stderr);

    let r = cli.run(&["pay", &o]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("paid") && !r.stdout.contains("[알림"), "{}", r.stdout);
    let lines = r.notifications();
    assert!(lines.iter().any(|l| l.starts_with("[알림 → kim]")), "the customer is told: {}", r.stderr);
    assert!(lines.iter().any(|l| l.starts_with("[알림 → park]")), "the owner is told of a paid order: {}", r.stderr);

    // every status change tells the customer; with --json the console
    // channel delivers it without printing, so stderr stays empty
    for (cmd, json) in [(["cook", "start"], true), (["cook", "finish"], false), (["deliver", "start"], true)] {
        let args = [&cmd[..], &[o.as_str()]].concat();
        let r = if json { cli.run(&[&["--json"], &args[..]].concat()) } else { cli.run(&args) };
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        if json {
            one_object(&r.stdout, "stdout with --json");
            assert!(r.stderr.is_empty(), "{cmd:?} --json: {}", r.stderr);
        } else {
            assert!(!r.stdout.contains("[알림"), "notifications stay off stdout: {}", r.stdout);
            assert!(r.notifications().iter().any(|l| l.starts_with("[알림 → kim]")), "{cmd:?}: {}", r.stderr);
        }
    }

    // a failing command: stdout empty, stderr exactly the error object
    let o2 = order_id(&cli.place(shop.store, "kim", &["콜라"], false)).to_string();
    let r = cli.run(&["--json", "pay", &o2, "--card", DECLINE_CARD]);
    assert_eq!(r.code, Some(5));
    assert!(r.stdout.is_empty());
    assert_eq!(one_object(&r.stderr, "the error")["error"]["kind"], "declined");

    // -q silences everything on success; with --json the object is still printed
    let r = cli.run(&["-q", "deliver", "complete", &o]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "-q prints nothing on success: {}", r.stdout);
    assert!(r.stderr.is_empty(), "-q silences the console notifier: {}", r.stderr);
    let r = cli.run(&["-q", "--json", "order", "--store", &s, "--customer", "kim", "--item", "콜라", "--pay"]);
    assert_eq!(r.code, Some(0));
    assert_eq!(one_object(&r.stdout, "-q --json stdout")["status"], "paid");
    assert!(r.notifications().is_empty(), "{}", r.stderr);

    // everything was delivered (or silenced): relay has nothing to resend
    let r = cli.run(&["--json", "relay"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let report = one_object(&r.stdout, "relay --json");
    assert_has_keys(&report, &["messages_delivered", "messages_failed", "messages_dead"], "relay report");
    assert_eq!(report["messages_delivered"], 0, "{report}");
    assert_eq!(report["messages_failed"], 0, "{report}");
    assert!(r.notifications().is_empty(), "relay resends nothing already delivered: {}", r.stderr);
    let r = cli.run(&["relay"]);
    assert_eq!(r.code, Some(0));
    assert!(!r.stdout.trim().is_empty(), "relay reports for people too");
}

#[test]
fn a_declined_payment_tells_the_customer_in_the_same_command() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let o = order_id(&cli.place(shop.store, "kim", &["콜라"], false)).to_string();
    let r = cli.run(&["pay", &o, "--card", DECLINE_CARD]);
    assert_eq!(r.code, Some(5));
    assert!(r.stderr_without_notifications().starts_with("ezdelivery: the payment for order"), "{}", r.stderr);
    assert_eq!(
        r.notifications().iter().filter(|l| l.starts_with("[알림 → kim]")).count(),
        1,
        "the decline message is printed by the command that was declined, not by the next one: {}",
        r.stderr
    );
    let r = cli.run(&["pay", &o, "--card", GOOD_CARD]);
    assert_eq!(r.code, Some(0));
    assert_eq!(
        r.notifications().iter().filter(|l| l.starts_with("[알림 → kim]")).count(),
        1,
        "paying tells kim once that the order is paid (and nothing older): {}",
        r.stderr
    );

    // order --pay with a declined card: placed and declined, both told at once
    let s = shop.store.to_string();
    let r = cli.run(&["order", "--store", &s, "--customer", "choi", "--item", "콜라", "--pay", "--card", DECLINE_CARD]);
    assert_eq!(r.code, Some(5));
    assert_eq!(r.notifications().iter().filter(|l| l.starts_with("[알림 → choi]")).count(), 2, "{}", r.stderr);
}

#[test]
fn a_failing_notifier_never_fails_the_command_and_relay_delivers_later() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    // stderr is a pipe whose reader is gone: every console message fails
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    // (without --json: with it, the console channel prints nothing at all)
    let args = order_args(shop.store, "kim", &["후라이드"]);
    let mut c = cli.command(&[&args.iter().map(String::as_str).collect::<Vec<_>>()[..], &["--pay"]].concat());
    c.stderr(writer);
    let out = c.output().expect("the binary runs");
    assert_eq!(out.status.code(), Some(0), "a notifier failure never fails the command");
    assert!(String::from_utf8(out.stdout).unwrap().contains("paid"));
    let o = order_id(&cli.orders_of("kim")[0]);
    assert_eq!(cli.status(o)["status"], "paid", "the order is committed");

    // relay delivers what the notifier could not take, once; the failed
    // messages are due again after a back-off, so poll for them
    let mut delivered = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while delivered.len() < 3 && std::time::Instant::now() < deadline {
        let r = cli.run(&["relay"]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let lines = r.notifications();
        assert!(r.stdout.contains(&format!("; {} messages delivered", lines.len())), "{}", r.stdout);
        delivered.extend(lines.iter().map(|l| l.to_string()));
        if delivered.len() < 3 {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    assert_eq!(delivered.len(), 3, "placed and paid for kim, new order for park: {delivered:?}");
    assert_eq!(delivered.iter().filter(|l| l.starts_with("[알림 → kim]")).count(), 2, "{delivered:?}");
    assert_eq!(delivered.iter().filter(|l| l.starts_with("[알림 → park]")).count(), 1, "{delivered:?}");
    let r = cli.run(&["--json", "relay"]);
    assert_eq!(one_object(&r.stdout, "relay --json")["messages_delivered"], 0, "nothing is sent twice");
    let r = cli.run(&["relay"]);
    assert!(r.notifications().is_empty(), "{}", r.stderr);
}

// ───────────────────────────── 12. errors and bad input ─────────────────────────────

#[test]
fn json_errors_use_spec_kinds_and_bad_input_writes_nothing() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let s = shop.store.to_string();
    let chicken = shop.chicken.to_string();
    let pending = order_id(&cli.place(shop.store, "kim", &["후라이드"], false)).to_string();
    let cooking = cli.paid(&shop, "kim");
    cli.advance(cooking, "cooking");
    let cooking = cooking.to_string();
    let cooked = cli.paid(&shop, "kim");
    cli.advance(cooked, "cooked");
    let cooked = cooked.to_string();
    let bad_config =
        cli.config("bad.toml", "[payment]\nadapter = \"sandbox\"\nfrobnicate = true\n").display().to_string();
    let bad_top = cli.config("bad-top.toml", "colour = \"blue\"\n").display().to_string();

    let order = |item: &str| order_args(shop.store, "kim", &[item]);
    let owned = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<String>>();
    let (p, c, d) = (pending.as_str(), cooking.as_str(), cooked.as_str());
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        // invalid input: exit 2
        (order(&format!("{chicken}:0")), 2, "invalid_input"),
        (order(&format!("{chicken}:99999999999")), 2, "invalid_input"),
        (order("후라이드:-1"), 2, "invalid_input"),
        (owned(&["menu", "add", "--store", &s, "--name", "x", "--price", "-5"]), 2, "invalid_input"),
        (owned(&["menu", "add", "--store", &s, "--name", "x", "--price", "99999999999999999999"]), 2, "invalid_input"),
        (owned(&["review", p, "--score", "9"]), 2, "invalid_input"),
        (owned(&["pay", p, "--card", "not-a-card"]), 2, "invalid_input"),
        (owned(&["store", "add", "--name", ""]), 2, "invalid_input"),
        (owned(&["store", "add", "--name", "X", "--delivery-charge", "-1"]), 2, "invalid_input"),
        (owned(&["store", "add", "--owner", "park"]), 2, "invalid_input"),
        (owned(&["frobnicate"]), 2, "invalid_input"),
        (owned(&["--config", &bad_config, "store", "add", "--name", "X"]), 2, "invalid_input"),
        (owned(&["--config", &bad_top, "store", "list"]), 2, "invalid_input"),
        // unknown ids: exit 3
        (owned(&["order", "--store", "999", "--customer", "kim", "--item", "1"]), 3, "not_found"),
        (order("999"), 3, "not_found"),
        (order("피자"), 3, "not_found"),
        (owned(&["menu", "add", "--store", "999", "--name", "x", "--price", "5"]), 3, "not_found"),
        (owned(&["menu", "soldout", "999"]), 3, "not_found"),
        (owned(&["menu", "available", "999"]), 3, "not_found"),
        (owned(&["store", "open", "999"]), 3, "not_found"),
        (owned(&["store", "close", "999"]), 3, "not_found"),
        (owned(&["pay", "999"]), 3, "not_found"),
        (owned(&["cook", "start", "999"]), 3, "not_found"),
        (owned(&["cook", "finish", "999"]), 3, "not_found"),
        (owned(&["cook", "reject", "999"]), 3, "not_found"),
        (owned(&["deliver", "start", "999"]), 3, "not_found"),
        (owned(&["deliver", "complete", "999"]), 3, "not_found"),
        (owned(&["cancel", "999"]), 3, "not_found"),
        (owned(&["status", "999"]), 3, "not_found"),
        (owned(&["events", "--order", "999"]), 3, "not_found"),
        (owned(&["deliver", "start", d, "--rider", "nobody"]), 3, "not_found"),
        (owned(&["deliver", "start", d, "--rider", "999"]), 3, "not_found"),
        // the state machine refuses: exit 4
        (owned(&["cook", "start", p]), 4, "invalid_state"),
        (owned(&["deliver", "start", c]), 4, "invalid_state"),
        (owned(&["review", c, "--score", "5"]), 4, "invalid_state"),
        (owned(&["deliver", "complete", d]), 4, "invalid_state"),
    ];
    let before = cli.snapshot();
    for (args, code, kind) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli.fails(&args, *code, kind);
        // without --json: the same exit code, nothing on stdout, a message on stderr
        let human = cli.run(&args);
        assert_eq!(human.code, Some(*code), "`{}` without --json: {}", args.join(" "), human.stderr);
        assert!(human.stdout.is_empty(), "`{}` printed on stdout: {}", args.join(" "), human.stdout);
        assert!(!human.stderr.trim().is_empty(), "`{}` explains itself on stderr", args.join(" "));
    }
    assert_eq!(cli.snapshot(), before, "bad input writes nothing");

    // a declined payment: exit 5 and the one thing written is the decline
    cli.fails(&["pay", &pending, "--card", DECLINE_CARD], 5, "declined");
    assert_eq!(cli.status(pending.parse().unwrap())["status"], "pending_payment");

    // an unknown config key on a fresh path does not even create the database
    let fresh = new_world();
    fresh.fails(&["--config", &bad_config, "store", "add", "--name", "X"], 2, "invalid_input");
    assert!(!fresh.db.exists(), "a refused command creates no database");
}

#[test]
fn breaker_settings_out_of_range_are_input_errors() {
    let cli = new_world();
    for (name, text) in [
        ("zero.toml", "[breaker]\nfailure_threshold = 0\n"),
        ("huge.toml", "[breaker]\nopen_ms = 9223372036854775807\n"),
    ] {
        let config = cli.config(name, text).display().to_string();
        let message = cli.fails(&["--config", &config, "breaker"], 2, "invalid_input");
        assert!(message.contains("[breaker]") && message.contains(&format!("config file {config}")), "{message}");
    }
}

/// `demo` takes only the locale of the config file, but a file that is not
/// valid stops it as it stops every command, before its database is made.
#[test]
fn demo_refuses_a_config_file_every_command_refuses() {
    for (name, text, names) in [
        ("http.toml", "[payment]\nadapter = \"http\"\n", "[payment]"),
        ("zero.toml", "[breaker]\nfailure_threshold = 0\n", "[breaker]"),
        ("attention.toml", "[retry]\nattention_after = 0\n", "[retry]"),
    ] {
        let cli = new_world();
        let config = cli.config(name, text).display().to_string();
        let stores = cli.fails(&["--config", &config, "store", "list"], 2, "invalid_input");
        let demo = cli.fails(&["--config", &config, "demo"], 2, "invalid_input");
        assert_eq!(demo, stores, "{name}: the same message");
        assert!(demo.contains(names), "{name}: {demo}");
        assert!(!cli.db.exists(), "{name}: no database made");
    }
}

#[test]
fn the_config_file_of_spec_is_accepted() {
    let cli = new_world();
    let config = cli
        .config(
            "spec.toml",
            r#"
[payment]
adapter = "sandbox"
url = "http://127.0.0.1:8083"
timeout_ms = 610

[payment.sandbox]
latency_ms = 0
unavailable = false
decline_cards = ["4000000000000002"]

[charge]
adapter = "sandbox"

[breaker]
failure_threshold = 5
open_ms = 30000

[storage]
synchronous = "normal"

[[notify]]
kind = "console"
"#,
        )
        .display()
        .to_string();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let r = cli.run(&[
        "--config",
        &config,
        "order",
        "--store",
        &shop.store.to_string(),
        "--customer",
        "kim",
        "--item",
        "후라이드",
        "--pay",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let o = order_id(&cli.orders_of("kim")[0]);
    assert!(r.notifications().iter().any(|l| l.starts_with("[알림 → park]")), "{}", r.stderr);
    let v = cli.ok(&["--config", &config, "cook", "start", &o.to_string()]);
    assert_eq!(v["delivery"]["charge"]["status"], "paid");
    cli.fails(
        &[
            "--config",
            &config,
            "pay",
            &order_id(&cli.place(shop.store, "kim", &["콜라"], false)).to_string(),
            "--card",
            DECLINE_CARD,
        ],
        5,
        "declined",
    );
}

// ───────────────────────────── 13. demo ─────────────────────────────

#[test]
fn demo_runs_on_a_fresh_path_explained_and_refuses_an_existing_one() {
    let cli = new_world();
    assert!(!cli.db.exists());
    let r = cli.run(&["demo"]);
    assert_eq!(r.code, Some(0), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(cli.db.exists(), "the demo ran on --db");
    assert!(r.stdout.lines().count() > 20, "the demo explains itself: {}", r.stdout);
    for command in
        ["store add", "menu add", "rider add", "order", "pay", "cook start", "deliver start", "cancel", "review"]
    {
        assert!(r.stdout.contains(command), "the demo shows `{command}`: {}", r.stdout);
    }
    assert!(!r.notifications().is_empty(), "its messages show on stderr");

    // the scenario is in the database
    let orders = cli.orders_of("kim");
    let statuses: BTreeSet<String> = orders.iter().map(|v| v["status"].as_str().unwrap().to_string()).collect();
    assert!(statuses.contains("delivered") && statuses.contains("cancelled"), "{statuses:?}");
    let events = cli.events();
    assert!(events.iter().any(|e| e["type"] == "ReviewRegistered"));

    // again on the same, now existing, path: refused, and the data is kept
    let r = cli.run(&["demo"]);
    assert_eq!(r.code, Some(2), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(!r.stderr.trim().is_empty());
    cli.fails(&["demo"], 2, "invalid_input");
    assert_eq!(cli.events(), events, "the existing database is untouched");

    // --json: one object on stdout
    let other = new_world();
    let r = other.run(&["--json", "demo"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    one_object(&r.stdout, "demo --json");
}

// ───────────────────────────── help ─────────────────────────────

#[test]
fn help_of_every_command_exits_0_and_shows_an_example() {
    let cli = new_world();
    let commands: &[&[&str]] = &[
        &[],
        &["store", "add"],
        &["store", "list"],
        &["store", "open"],
        &["store", "close"],
        &["store", "orders"],
        &["menu", "add"],
        &["menu", "list"],
        &["menu", "soldout"],
        &["menu", "available"],
        &["rider", "add"],
        &["rider", "list"],
        &["order"],
        &["pay"],
        &["cook", "start"],
        &["cook", "finish"],
        &["cook", "reject"],
        &["deliver", "start"],
        &["deliver", "complete"],
        &["cancel"],
        &["review"],
        &["status"],
        &["events"],
        &["relay"],
        &["projection", "rebuild"],
        &["demo"],
    ];
    for command in commands {
        let r = cli.run_bare(&[*command, &["--help"]].concat());
        assert_eq!(r.code, Some(0), "`{} --help`: {}", command.join(" "), r.stderr);
        assert!(r.stdout.contains("Example"), "`{} --help` shows an example:\n{}", command.join(" "), r.stdout);
    }
    assert!(!cli.dir.path().join("data").exists(), "--help touches no database");
}

#[test]
fn help_of_every_command_group_shows_an_example() {
    let cli = new_world();
    for group in ["store", "menu", "rider", "cook", "deliver", "projection"] {
        let r = cli.run_bare(&[group, "--help"]);
        assert_eq!(r.code, Some(0), "`{group} --help`: {}", r.stderr);
        assert!(r.stdout.contains("Example"), "`{group} --help` shows an example:\n{}", r.stdout);
    }
}

// ───────────────────────────── the rest of SPEC.md ─────────────────────────────

#[test]
fn database_location_comes_from_db_env_or_the_data_folder() {
    let cli = new_world();
    // EZDELIVERY_DB
    let env_db = cli.dir.path().join("env").join("from-env.db");
    let mut c = cli.bare();
    c.env("EZDELIVERY_DB", &env_db).args(["--json", "store", "add", "--name", "A"]);
    assert_eq!(finish(c, "store add with EZDELIVERY_DB").code, Some(0));
    assert!(env_db.exists(), "EZDELIVERY_DB names the database, created with its folder");

    // no --db, no EZDELIVERY_DB: $XDG_DATA_HOME/ezdelivery/ezdelivery.db
    let mut c = cli.bare();
    c.args(["--json", "store", "add", "--name", "B"]);
    assert_eq!(finish(c, "store add without --db").code, Some(0));
    let default: &Path = &cli.dir.path().join("data").join("ezdelivery").join("ezdelivery.db");
    assert!(default.exists(), "the default database is in the data folder");

    // -v prints the database path on stderr
    let r = cli.run(&["-v", "store", "list"]);
    assert_eq!(r.code, Some(0));
    assert!(r.stderr.contains(&*cli.db.to_string_lossy()), "{}", r.stderr);
    assert!(!r.stdout.contains(&*cli.db.to_string_lossy()), "-v writes to stderr only");
}

#[test]
fn events_cloudevents_format() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let o = cli.paid(&shop, "kim");
    let r = cli.run(&["events", "--order", &o.to_string(), "--format", "cloudevents"]);
    assert_eq!(r.code, Some(0), "SPEC: `--format cloudevents` prints CloudEvents 1.0 JSON: {}", r.stderr);
    let lines: Vec<Value> = r.stdout.lines().map(|l| one_object(l, "a CloudEvent")).collect();
    assert_eq!(lines.len(), 2);
    for e in &lines {
        assert_eq!(e["specversion"], "1.0");
        assert_has_keys(e, &["id", "source", "type", "data"], "CloudEvent");
    }
}

#[test]
fn breaker_command_exists() {
    let cli = new_world();
    cli.shop(&[]);
    let r = cli.run(&["breaker", "status"]);
    assert_eq!(r.code, Some(0), "SPEC: `ezdelivery breaker [status|reset NAME]`: {}", r.stderr);
    let r = cli.run(&["--json", "breaker"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    one_object(&r.stdout, "breaker --json");
}

#[test]
fn completions_print_a_shell_script() {
    let cli = new_world();
    let r = cli.run(&["completions", "bash"]);
    assert_eq!(r.code, Some(0), "SPEC: `ezdelivery completions SHELL`: {}", r.stderr);
    assert!(r.stdout.contains("ezdelivery"), "{}", r.stdout);
}

#[test]
fn a_closed_stdout_pipe_does_not_panic() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    for _ in 0..3 {
        cli.paid(&shop, "kim");
    }
    // stdout is a pipe whose reader is gone, as in `ezdelivery events | head -0`
    for args in [&["events", "--format", "json"][..], &["--json", "events"][..], &["store", "list"][..]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let mut c = cli.command(args);
        c.stdout(writer);
        let out = c.output().expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "`{}` into a closed pipe panics:\n{stderr}", args.join(" "));
        assert_ne!(out.status.code(), Some(101), "`{}`: exit 101 is a panic", args.join(" "));
    }
}

// ───────────────────────────── a tool people enjoy ─────────────────────────────

/// Kills the child process when dropped, so a failing test never leaves
/// `events --follow` running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn with_no_db_the_database_is_in_the_data_folder_and_demo_needs_no_flags() {
    let cli = new_world();
    let folder = cli.dir.path().join("data").join("ezdelivery");
    assert!(!folder.exists());

    // first use: $XDG_DATA_HOME/ezdelivery/ezdelivery.db is created with its folder
    let r = cli.run_bare(&["--json", "store", "add", "--name", "교촌치킨"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(folder.join("ezdelivery.db").is_file(), "the default database is created on first use");
    let r = cli.run_bare(&["--json", "store", "list"]);
    assert_eq!(one_object(&r.stdout, "store list")["stores"].as_array().map(Vec::len), Some(1), "and used again");

    // `ezdelivery demo` on a clean machine, no flags: its own database in the same folder
    for run in 0..2 {
        let r = cli.run_bare(&["demo"]);
        assert_eq!(r.code, Some(0), "demo run {run}:\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
        let demo_db = folder.join("ezdelivery-demo.db");
        assert!(demo_db.is_file(), "the demo's database is in the data folder");
        assert!(r.stdout.contains(&*demo_db.to_string_lossy()), "the demo says where it ran: {}", r.stdout);
    }
    // the default database is untouched by the demo
    let r = cli.run_bare(&["--json", "store", "list"]);
    assert_eq!(one_object(&r.stdout, "store list")["stores"].as_array().map(Vec::len), Some(1));
}

#[test]
fn completions_for_every_shell() {
    let cli = new_world();
    let markers = [
        ("bash", "complete -F"),
        ("zsh", "#compdef ezdelivery"),
        ("fish", "complete -c ezdelivery"),
        ("powershell", "Register-ArgumentCompleter"),
    ];
    for (shell, marker) in markers {
        let r = cli.run_bare(&["completions", shell]);
        assert_eq!(r.code, Some(0), "completions {shell}: {}", r.stderr);
        assert!(r.stdout.contains(marker), "completions {shell} is a {shell} script: {}", r.stdout);
        for command in ["store", "deliver", "events", "follow"] {
            assert!(r.stdout.contains(command), "completions {shell} knows `{command}`");
        }
        if shell != "powershell" {
            assert!(r.stdout.contains("cloudevents"), "completions {shell} know the values of --format");
        }
    }
    let r = cli.run(&["completions", "tcsh"]);
    assert_eq!(r.code, Some(2), "an unknown shell is a usage error");
    assert!(!cli.dir.path().join("data").exists(), "completions touch no database");
}

#[test]
fn man_prints_a_roff_page_with_every_command() {
    let cli = new_world();
    let r = cli.run_bare(&["man"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let page = &r.stdout;
    let first_request = page.lines().find(|l| !l.starts_with(".ie") && !l.starts_with(".el")).unwrap_or_default();
    assert!(first_request.starts_with(".TH ezdelivery 1"), "a roff page starts with .TH: {first_request}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH COMMANDS", ".SH EXIT STATUS"] {
        assert!(page.contains(section), "the page has {section}");
    }
    for command in ["store add", "order", "cook start", "deliver complete", "events", "completions", "man"] {
        assert!(page.contains(&format!(".SS \"ezdelivery {command}\"")), "the page documents `{command}`");
    }
    assert!(page.contains("NO_COLOR") && page.contains("EZDELIVERY_DB"), "and the environment");
    assert!(!cli.dir.path().join("data").exists(), "man touches no database");
}

/// Every human output this world can print, with `env` applied.
fn human_outputs(cli: &World, order: i64, env: &dyn Fn(&mut Command)) -> Vec<(String, String)> {
    let o = order.to_string();
    let commands: &[&[&str]] = &[
        &["store", "list"],
        &["menu", "list"],
        &["rider", "list"],
        &["status", &o],
        &["status", "--customer", "kim"],
        &["store", "orders", "1"],
        &["events", "--format", "table"],
        &["breaker"],
        &["cancel", &o],
    ];
    commands
        .iter()
        .map(|args| {
            let mut c = cli.command(args);
            env(&mut c);
            let r = finish(c, &args.join(" "));
            (args.join(" "), format!("{}{}", r.stdout, r.stderr))
        })
        .collect()
}

#[test]
fn no_escape_codes_with_no_color_or_into_a_pipe() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let o = cli.paid(&shop, "kim");
    cli.advance(o, "delivering");
    // NO_COLOR set (any value), and stdout a pipe, as in every test here
    for value in ["1", "0", "yes"] {
        for (cmd, out) in human_outputs(&cli, o, &|c| {
            c.env("NO_COLOR", value);
        }) {
            assert!(!out.contains('\x1b'), "NO_COLOR={value} `{cmd}` printed an escape code:\n{out}");
        }
    }
    // NO_COLOR unset, TERM a colour terminal: still none, because stdout is not a terminal
    for (cmd, out) in human_outputs(&cli, o, &|c| {
        c.env_remove("NO_COLOR").env("TERM", "xterm-256color");
    }) {
        assert!(!out.contains('\x1b'), "piped `{cmd}` printed an escape code:\n{out}");
    }
}

#[test]
fn status_shows_the_progress_as_a_timeline() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_rider("lee");
    let o = cli.paid(&shop, "kim");
    cli.advance(o, "cooked");
    let r = cli.run(&["status", &o.to_string()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let progress = r.stdout.lines().find(|l| l.starts_with("progress")).unwrap_or_else(|| panic!("{}", r.stdout));
    let steps: Vec<&str> = progress.trim_start_matches("progress").split(" → ").map(str::trim).collect();
    let names: Vec<&str> = steps.iter().map(|s| s.split(' ').next().unwrap_or_default()).collect();
    assert_eq!(names, ["placed", "paid", "cooking", "cooked", "delivering", "delivered"], "{progress}");
    for done in &steps[..4] {
        let time = done.split(' ').nth(1).unwrap_or_default();
        assert!(time.len() == 8 && time.as_bytes()[2] == b':' && time.as_bytes()[5] == b':', "a time: {progress}");
    }
    assert_eq!(steps[4], "delivering ·", "a step not reached yet: {progress}");
    assert_eq!(steps[5], "delivered ·", "{progress}");
    assert!(r.stdout.contains("FoodCooked"), "and the full event list: {}", r.stdout);

    // a cancelled order says so, and what became of the money
    let o = cli.paid(&shop, "kim");
    cli.on(&["cook", "start"], o);
    cli.ok(&["cancel", &o.to_string()]);
    let r = cli.run(&["status", &o.to_string()]);
    let progress = r.stdout.lines().find(|l| l.starts_with("progress")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(progress.contains("placed") && progress.contains("cooking"), "{progress}");
    assert!(progress.contains("✗ cancelled"), "a cancelled order is shown clearly: {progress}");
    assert!(!progress.contains("delivered"), "steps it will never reach are not shown: {progress}");
    assert!(r.stdout.contains("refunded"), "{}", r.stdout);
}

/// Display columns of `s`: Hangul and CJK ideographs take two.
fn columns(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F | 0x2E80..=0x9FFF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFF00..=0xFF60 => 2,
            _ => 1,
        })
        .sum()
}

#[test]
fn korean_text_aligns_in_tables() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    cli.add_store("BBQ", "lee");
    cli.add_menu(shop.store, "양념반 후라이드반", 19_000);
    cli.place(shop.store, "김민수", &["후라이드", "콜라"], true);
    for args in [&["store", "list"][..], &["menu", "list"], &["status", "--customer", "김민수"]] {
        let r = cli.run(args);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let table: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with(['┌', '│', '╞', '├', '└'])).collect();
        assert!(table.len() >= 4, "`{}` prints a table: {}", args.join(" "), r.stdout);
        let widths: BTreeSet<usize> = table.iter().map(|l| columns(l)).collect();
        assert_eq!(widths.len(), 1, "`{}`: every line of the table is as wide:\n{}", args.join(" "), r.stdout);
    }
}

#[test]
fn cloudevents_have_every_required_field() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let o = cli.paid(&shop, "kim");
    let r = cli.run(&["events", "--order", &o.to_string(), "--format", "cloudevents"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let ces: Vec<Value> = r.stdout.lines().map(|l| one_object(l, "a CloudEvent")).collect();
    let plain = event_lines(&cli, &["--order", &o.to_string()]);
    assert_eq!(ces.len(), plain.len());
    for (ce, e) in ces.iter().zip(&plain) {
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["id"], e["id"], "the event's own id, stable for deduplication");
        assert!(ce["source"].as_str().is_some_and(|s| !s.is_empty()), "{ce}");
        assert!(ce["type"].as_str().is_some_and(|t| t.starts_with("ezdelivery.")), "{ce}");
        assert_eq!(ce["subject"], o.to_string(), "subject is the order id, as a string");
        let time = ce["time"].as_str().unwrap_or_default();
        assert!(time.contains('T') && time.ends_with('Z'), "time is RFC 3339 UTC: {time}");
        assert_eq!(ce["time"], e["at"]);
        assert_eq!(ce["datacontenttype"], "application/json");
        assert_eq!(ce["data"], e["data"]);
    }
    assert_eq!(ces[0]["type"], "ezdelivery.order.placed");
    assert_eq!(ces[1]["type"], "ezdelivery.payment.approved");
    // catalogue events have no order, so no subject
    let r = cli.run(&["events", "--format", "cloudevents"]);
    let first = one_object(r.stdout.lines().next().unwrap_or_default(), "a CloudEvent");
    assert_eq!(first["type"], "ezdelivery.store.registered");
    assert!(first.get("subject").is_none(), "{first}");
}

#[test]
fn follow_prints_an_event_written_by_another_process() {
    use std::time::{Duration, Instant};

    let cli = new_world();
    let shop = cli.shop(&[]);
    let before = cli.events().len();
    let mut child = cli.command(&["events", "--follow", "--format", "json"]);
    child.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = KillOnDrop(child.spawn().expect("events --follow starts"));
    let rx = stdout_lines(&mut child.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let next = |what: &str| -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("`events --follow` printed no line for {what}"));
        one_object(&line, "a followed event")
    };
    // what was there already
    for _ in 0..before {
        next("the existing events");
    }
    // another process writes an event
    let o = order_id(&cli.place(shop.store, "kim", &["후라이드"], false));
    let e = next("the new order");
    assert_eq!(e["type"], "OrderPlaced", "{e}");
    assert_eq!(e["order_id"], o, "{e}");
    assert!(child.0.try_wait().expect("the child's status").is_none(), "--follow keeps running");
}

#[test]
fn verbose_logs_each_gateway_call_with_its_duration_on_stderr() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let args = order_args(shop.store, "kim", &["후라이드"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let r = cli.run(&[&["-v"], &args[..], &["--pay"]].concat());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let call = r
        .stderr
        .lines()
        .find(|l| l.contains("gateway call") && l.contains("gateway=payment"))
        .unwrap_or_else(|| panic!("-v logs the payment gateway call: {}", r.stderr));
    assert!(call.contains("call=approve") && call.contains("result=approved"), "{call}");
    let ms = call.split("elapsed_ms=").nth(1).and_then(|rest| rest.split_whitespace().next());
    assert!(ms.and_then(|m| m.parse::<f64>().ok()).is_some(), "the call's duration in ms: {call}");
    assert!(!r.stdout.contains("gateway call"), "logs stay off stdout");
    assert!(!r.stderr.contains("DEBUG"), "-v is info level: {}", r.stderr);

    // -vv: every step
    let r = cli.run(&["-vv", "cook", "start", "1"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("DEBUG") && r.stderr.contains("event appended"), "{}", r.stderr);

    // -v: each command that writes, with its duration
    let copy = cli.dir.path().join("copy.db").display().to_string();
    for args in [&["breaker", "reset", "payment"][..], &["store", "open", "1"], &["db", "copy", "--to", &copy]] {
        let r = cli.run(&[&["-v"], args].concat());
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("close time.busy="), "-v {args:?} logs its duration: {}", r.stderr);
    }

    // default: no logs
    let r = cli.run(&[&args[..], &["--pay"]].concat());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr_without_notifications().trim().is_empty(), "no logs without -v: {}", r.stderr);
}

#[test]
fn a_refusal_names_the_order_and_the_next_step() {
    let cli = new_world();
    let shop = cli.shop(&[]);
    let o = cli.paid(&shop, "kim");
    let msg = cli.fails(&["cook", "finish", &o.to_string()], 4, "invalid_state");
    assert!(msg.contains(&format!("order {o} is paid")), "what and which id: {msg}");
    assert!(msg.contains(&format!("`ezdelivery cook start {o}`")), "what to do next: {msg}");
    let msg = cli.fails(&["pay", &o.to_string()], 4, "invalid_state");
    assert!(msg.contains("again"), "{msg}");
    let msg = cli.fails(
        &["order", "--store", &shop.store.to_string(), "--customer", "kim", "--item", "짜장"],
        3,
        "not_found",
    );
    assert!(msg.contains("짜장") && msg.contains(&format!("menu list --store {}", shop.store)), "{msg}");
}

#[test]
fn help_of_the_other_commands_shows_an_example() {
    let cli = new_world();
    for command in [&["completions"][..], &["man"], &["breaker"], &["breaker", "reset"]] {
        let r = cli.run_bare(&[command, &["--help"]].concat());
        assert_eq!(r.code, Some(0), "`{} --help`: {}", command.join(" "), r.stderr);
        assert!(r.stdout.contains("Example"), "`{} --help` shows an example:\n{}", command.join(" "), r.stdout);
    }
}

// ───────────────────────────── the shipped reference ─────────────────────────────

/// Every command `--help` lists is in docs/reference.md, the contract users
/// have; no help text or man page sends them to a file that does not ship.
#[test]
fn the_reference_that_ships_covers_every_command_and_nothing_points_elsewhere() {
    let cli = new_world();
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/reference.md"))
        .expect("docs/reference.md ships");
    let help = cli.run(&["--help"]);
    assert_eq!(help.code, Some(0));
    let commands: Vec<&str> = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 15, "{}", help.stdout);
    for command in &commands {
        assert!(reference.contains(&format!("ezdelivery {command}")), "docs/reference.md lacks `{command}`");
        let own = cli.run(&[command, "--help"]);
        assert!(!own.stdout.contains("SPEC.md"), "`{command} --help` names SPEC.md");
    }
    let man = cli.run(&["man"]);
    assert!(!man.stdout.contains("SPEC.md") && !help.stdout.contains("SPEC.md"));
    for key in [
        "[retry]",
        "attention_after",
        "lease_ms",
        "[storage]",
        "synchronous",
        "pool_size",
        "locale",
        "decline_cards",
        "[relay]",
        "retention_days",
        "interval_ms",
        "watch",
        "[serve]",
        "body_limit_bytes",
        "max_connections",
        "idle_timeout_ms",
        "EZDELIVERY_TOKENS",
    ] {
        assert!(reference.contains(key), "docs/reference.md documents `{key}`");
        assert!(man.stdout.contains(key), "the man page documents `{key}`");
    }
    assert!(man.stdout.contains("money_moved"), "exit 7 is in the man page");
}

#[test]
fn a_postgres_url_selects_postgresql_not_a_file_name() {
    let cli = new_world();
    // Nothing listens on port 1: the server cannot be reached.
    for url in ["postgres://kim@127.0.0.1:1/ez", "postgresql://127.0.0.1:1/ez"] {
        let mut command = cli.bare();
        command.current_dir(cli.dir.path()).args(["--json", "--db", url, "store", "list"]);
        let run = finish(command, &format!("--db {url} store list"));
        assert_eq!(run.code, Some(1), "{run:?}");
        let error: Value = serde_json::from_str(run.stderr.trim()).expect("one JSON error object");
        assert_eq!(error["error"]["kind"], "internal", "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("cannot connect to PostgreSQL at") && message.contains("127.0.0.1:1"), "{error}");
        assert!(message.contains("--db"), "says what to check: {error}");
        for made in ["postgres:", "postgresql:"] {
            assert!(!cli.dir.path().join(made).exists(), "no folder named after the URL");
        }
    }
}

#[test]
fn a_postgres_password_is_never_printed() {
    let cli = new_world();
    // Nothing listens on port 1: every command fails, none prints the password.
    let url = "postgres://kim:s3cr%40t@127.0.0.1:1/ez?sslmode=disable&password=0therS3cret";
    let shown = "postgres://kim:***@127.0.0.1:1/ez?sslmode=disable&password=***";
    let secrets = ["s3cr%40t", "s3cr@t", "0therS3cret"];
    let runs = [
        (vec!["-v", "--db", url, "store", "list"], false),
        (vec!["-vv", "--json", "--db", url, "relay", "--watch"], false),
        (vec!["-v", "--db", url, "simulate", "--orders", "1"], false),
        (vec!["--db", url, "demo"], false),
        (vec!["-v", "store", "list"], true),
    ];
    for (args, from_env) in runs {
        let mut command = cli.bare();
        command.current_dir(cli.dir.path()).args(&args);
        if from_env {
            command.env("EZDELIVERY_DB", url);
        }
        let what = format!("{}{}", if from_env { "EZDELIVERY_DB=… " } else { "" }, args.join(" "));
        let run = finish(command, &what);
        assert!(matches!(run.code, Some(1 | 2)), "{}", run.describe(&what));
        for secret in secrets {
            assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{}", run.describe(&what));
        }
        if args.iter().any(|a| a.starts_with("-v")) {
            assert!(run.stderr.contains(shown), "-v logs the database, redacted: {}", run.describe(&what));
        }
    }
    assert!(!cli.dir.path().join("postgres:").exists(), "no folder named after the URL");
}
