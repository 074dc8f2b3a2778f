//! `ezdelivery demo`: one whole scenario on a fresh database, each step
//! explained, run through the same engine the commands use.

use crate::args::Cli;
use crate::config::Config;
use crate::render;
use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::{Error, ItemPick, Result};

fn step(cli: &Cli, n: u32, command: &str, why: &str) {
    if !cli.quiet && !cli.json {
        println!("\n── {n}. {why}\n   $ ezdelivery {command}");
    }
}

fn show(cli: &Cli, text: &str) {
    if !cli.quiet && !cli.json {
        for line in text.trim_end().lines() {
            println!("   {line}");
        }
    }
}

/// Runs the demo on `--db` if it names a new or empty database, else on a
/// fresh `ezdelivery-demo.db` in the data folder, replaced on every run.
pub fn run(cli: &Cli, config: &Config) -> Result<()> {
    let db = match &cli.db {
        Some(db) if db.exists() && std::fs::metadata(db).map(|m| m.len() > 0).unwrap_or(true) => {
            return Err(Error::Invalid(Invalid(format!(
                "the demo needs a fresh database, and {} already exists: pass a new path with --db, or no --db",
                db.display()
            ))))
        }
        Some(db) => db.clone(),
        None => {
            let dir = dirs::data_dir()
                .ok_or_else(|| Error::Invalid(Invalid("no data folder is known: pass --db PATH".into())))?
                .join("ezdelivery");
            let db = dir.join("ezdelivery-demo.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            db
        }
    };
    // The demo shows the sandbox's behaviour, whatever adapters the config picks.
    let sandbox = Config { locale: config.locale.clone(), ..Config::default() };
    let mut e = sandbox.engine(&db, cli.quiet || cli.json)?;
    if !cli.quiet && !cli.json {
        println!("ezdelivery demo on {}", db.display());
        println!("(messages to customers and owners appear on stderr as [알림 → …] lines)");
    }

    step(cli, 1, "store add --name 교촌치킨 --owner park", "A store registers; it is open.");
    let store = e.add_store("교촌치킨", Some("park"), Some("서울 강남구"))?;
    show(cli, &render::store_text("registered", &store));
    step(
        cli,
        2,
        "menu add --store 1 --name 후라이드 --price 18000 (and 콜라 2000)",
        "It lists its menu, in whole won.",
    );
    let chicken = e.add_menu(store.id, "후라이드", 18_000)?;
    let cola = e.add_menu(store.id, "콜라", 2_000)?;
    show(cli, &format!("{}\n{}", render::menu_text("added", &chicken), render::menu_text("added", &cola)));
    step(cli, 3, "rider add --name lee", "A rider registers.");
    let rider = e.add_rider("lee")?;
    show(cli, &format!("rider {} registered: {}", rider.id, rider.name));

    step(
        cli,
        4,
        "order --store 1 --customer kim --item 후라이드:2 --item 콜라 --pay --card 4000000000000002",
        "kim orders and pays with a card the sandbox declines: exit 5, the order is kept unpaid.",
    );
    let items = [ItemPick::new("후라이드", 2), ItemPick::new("콜라", 1)];
    let order = match e.place_order(store.id, "kim", &items, "서울 서초구", true, Some("4000000000000002")) {
        Err(Error::Declined { order, reason }) => {
            show(cli, &format!("declined ({reason}); order {order} stays pending_payment"));
            order
        }
        Ok(v) => {
            return Err(Error::Internal(format!("the sandbox approved the decline card for order {}", v.order_id)))
        }
        Err(other) => return Err(other),
    };
    step(cli, 5, "store orders 1", "An unpaid order is not established: the owner's inbox is empty.");
    show(cli, &render::views("orders", &e.store_inbox(store.id)?).human);
    step(cli, 6, &format!("pay {order} --card 4111111111111111"), "kim pays again with another card.");
    let v = e.pay(order, Some("4111111111111111"))?;
    show(
        cli,
        &format!(
            "order {order}: {} · payment {}",
            v.status,
            v.payment.map(|p| p.status.to_string()).unwrap_or_default()
        ),
    );
    step(cli, 7, "store orders 1", "Now the owner sees it.");
    show(cli, &render::views("orders", &e.store_inbox(store.id)?).human);
    step(
        cli,
        8,
        &format!("cook start {order}"),
        "The owner accepts and starts cooking; a delivery is prepared with lee, whose 3,000 won charge is paid.",
    );
    let v = e.start_cooking(order)?;
    show(
        cli,
        &format!(
            "order {order}: {} · delivery {}",
            v.status,
            v.delivery
                .map(|d| format!(
                    "{} rider {:?} charge {:?}",
                    d.status,
                    d.rider.unwrap_or_default(),
                    d.charge.map(|c| c.status.to_string())
                ))
                .unwrap_or_default()
        ),
    );
    step(cli, 9, &format!("deliver start {order}"), "lee cannot depart before the food is cooked: exit 4.");
    match e.start_delivery(order, None) {
        Err(err @ Error::Refused(_)) => show(cli, &format!("refused: {err}")),
        Ok(_) => return Err(Error::Internal("departure before cooking was allowed".into())),
        Err(other) => return Err(other),
    }
    step(cli, 10, &format!("cook finish {order}"), "The food is cooked.");
    show(cli, &format!("order {order}: {}", e.finish_cooking(order)?.status));
    step(cli, 11, &format!("deliver start {order}"), "lee departs: food cooked, charge paid.");
    show(cli, &format!("order {order}: {}", e.start_delivery(order, None)?.status));
    step(cli, 12, &format!("cancel {order}"), "Too late to cancel: the order is on its way (exit 4).");
    match e.cancel(order, "changed my mind") {
        Err(err @ Error::Refused(_)) => show(cli, &format!("refused: {err}")),
        Ok(_) => return Err(Error::Internal("cancel after departure was allowed".into())),
        Err(other) => return Err(other),
    }
    step(cli, 13, &format!("deliver complete {order}"), "Delivered.");
    show(cli, &format!("order {order}: {}", e.complete_delivery(order)?.status));
    step(cli, 14, &format!("review {order} --score 5 --text 바삭해요"), "kim reviews the order, once.");
    let r = e.review(order, 5, "바삭해요")?;
    show(cli, &format!("order {} reviewed: {}/5 {}", r.order_id, r.score, r.text));

    step(cli, 15, "order --store 1 --customer kim --item 1 --pay; cook start; cancel", "A second order is cancelled while cooking: payment refunded, kitchen and delivery cancelled, lee's charge taken back.");
    let second = e.place_order(store.id, "kim", &[ItemPick::new(chicken.id.to_string(), 1)], "", true, None)?.order_id;
    e.start_cooking(second)?;
    let v = e.cancel(second, "changed my mind")?;
    show(
        cli,
        &format!(
            "order {second}: {} · payment {} · kitchen {} · delivery {}",
            v.status,
            v.payment.as_ref().map(|p| p.status.to_string()).unwrap_or_default(),
            v.kitchen.as_ref().map(|k| k.status.to_string()).unwrap_or_default(),
            v.delivery
                .as_ref()
                .map(|d| format!(
                    "{} (charge {})",
                    d.status,
                    d.charge.as_ref().map(|c| c.status.to_string()).unwrap_or_default()
                ))
                .unwrap_or_default()
        ),
    );

    step(
        cli,
        16,
        &format!("status {order}"),
        "mypage: the whole order in one view, with its timeline, built from the event log.",
    );
    let view = e.status(order)?;
    show(cli, &render::view_text(&view));
    step(cli, 17, "store list", "The store's review count and average score.");
    show(cli, &render::stores(&e.stores()?).human);
    step(cli, 18, "projection rebuild", "The read model is rebuilt from the event log to the same result.");
    let before = e.customer_orders("kim")?;
    let p = e.rebuild_projection()?;
    let after = e.customer_orders("kim")?;
    if before != after {
        return Err(Error::Internal("the rebuilt views differ from the live ones".into()));
    }
    show(cli, &format!("rebuilt from {} events: identical to the live views", p.events));
    if cli.json {
        println!(
            "{}",
            serde_json::json!({ "db": db, "orders": after.iter().map(render::view_json).collect::<Vec<_>>() })
        );
    } else if !cli.quiet {
        println!("\nDone. Look around: ezdelivery --db {} status --customer kim", db.display());
    }
    Ok(())
}
