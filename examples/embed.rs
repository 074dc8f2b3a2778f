//! Embedding ezdelivery in a program of your own: in-memory storage, a
//! notifier of our own (implementing the `Notifier` port), one order run
//! from placement to review, and the customer's mypage view at the end.
//!
//! ```sh
//! cargo run --example embed
//! ```

use std::sync::{Arc, Mutex};

use ezdelivery_core::adapters::memory::MemoryStorage;
use ezdelivery_core::app::messages::{won, Locale};
use ezdelivery_core::domain::ChannelName;
use ezdelivery_core::ports::{Message, Notifier};
use ezdelivery_core::{Engine, ItemPick, NewOrder, OrderView, Result};

/// Our notifier: a "phone" per recipient that keeps what it was sent. A
/// real adapter would call an SMS or chat API here, and return `Err` when
/// that API is down; the engine then keeps the message and retries it.
#[derive(Clone)]
struct Phones {
    channel: ChannelName,
    received: Arc<Mutex<Vec<(String, String)>>>,
}

impl Notifier for Phones {
    fn channel(&self) -> &ChannelName {
        &self.channel
    }

    fn send(&self, message: &Message) -> Result<(), String> {
        println!("  📱 {:<5} {}", message.recipient, message.text);
        let mut received = self.received.lock().map_err(|_| "the phone list is poisoned".to_string())?;
        received.push((message.recipient.to_string(), message.text.clone()));
        Ok(())
    }
}

fn main() -> Result<()> {
    let phones = Phones { channel: ChannelName::new("phones")?, received: Arc::default() };
    let engine = Engine::builder(MemoryStorage::new()).notifier(phones.clone()).locale(Locale::En).build();

    println!("Setting up a store, its menu and a rider");
    let store = engine.add_store("교촌치킨", Some("park"), Some("서울 강남구"))?;
    engine.add_menu(store.id, "후라이드", 18_000)?;
    engine.add_menu(store.id, "콜라", 2_000)?;
    engine.add_rider("lee")?;

    println!("kim orders and pays");
    let items = [ItemPick::new("후라이드", 2), ItemPick::new("콜라", 1)];
    let order = engine
        .place_order(
            NewOrder::new(store.id, "kim", &items).deliver_to("서울 서초구").pay_now(Some("4111 1111 1111 1111")),
        )?
        .order_id;

    println!("The owner cooks, the rider delivers");
    engine.start_cooking(order)?;
    engine.finish_cooking(order)?;
    engine.start_delivery(order, None)?;
    engine.complete_delivery(order)?;
    engine.review(order, 5, "바삭해요")?;

    let view = engine.status(order)?;
    println!();
    print_mypage(&view);

    let received = phones.received.lock().map_err(|_| ezdelivery_core::Error::Internal("poisoned".into()))?;
    println!("\n{} messages sent through our own notifier", received.len());
    assert_eq!(view.status.as_str(), "delivered");
    assert!(received.iter().any(|(who, _)| who == "park"), "the owner heard of the new order");
    Ok(())
}

/// The mypage view of one order, as a program of your own might show it.
fn print_mypage(v: &OrderView) {
    println!("mypage: order {} at {} for {} — {}", v.order_id, v.store, v.customer, v.status);
    for item in v.items.iter() {
        println!("  {} x{}  {} won", item.name, item.qty, won(item.unit_price * i64::from(item.qty)));
    }
    println!("  total {} won", won(v.total));
    if let Some(p) = &v.payment {
        println!("  payment   {} ({} won)", p.status, won(p.amount));
    }
    if let Some(k) = &v.kitchen {
        println!("  kitchen   {}", k.status);
    }
    if let Some(d) = &v.delivery {
        let charge = d.charge.as_ref().map_or("-".to_string(), |c| format!("{} ({} won)", c.status, won(c.amount)));
        println!("  delivery  {} by {} · charge {charge}", d.status, d.rider.as_deref().unwrap_or("-"));
    }
    if let Some(r) = &v.review {
        println!("  review    {}/5 {}", r.score, r.text);
    }
    println!("  timeline (UTC)");
    for t in &v.timeline {
        println!("    {}  {}", t.at.format("%H:%M:%S%.3f"), t.kind);
    }
}
