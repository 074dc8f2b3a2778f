//! The relay: delivers queued messages on every channel and retries queued
//! gateway calls (payments, refunds, delivery charges) that are due.

use crate::app::command::Command;
use std::sync::atomic::AtomicBool;

use crate::app::breakers::BreakerStatus;
use crate::app::engine::Engine;
use crate::app::notify::Halt;
pub use crate::app::notify::MessageStats;
use crate::app::saga::{Call, Leg, Settled};
use crate::domain::{Billed, Breaker, BreakerName, BreakerState};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::storage::QueueStatus;
use crate::{Error, Result};

/// How many queued gateway calls or messages one relay pass takes on.
const RELAY_BATCH: usize = 500;

/// What one `relay` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RelayReport {
    /// Payments approved on retry.
    pub payments_approved: usize,
    /// Payments declined on retry.
    pub payments_declined: usize,
    /// Refunds confirmed.
    pub refunds_confirmed: usize,
    /// Delivery charges paid on retry.
    pub charges_paid: usize,
    /// Delivery charges taken back.
    pub charges_refunded: usize,
    /// Gateway calls not settled (unreachable, or an answer that could not
    /// be read), queued again under the same key.
    pub still_queued: usize,
    /// Gateway calls given up on after too many unreadable answers: the
    /// payment or charge needs a person (`relay --attention`).
    pub needs_attention: usize,
    /// Messages delivered.
    pub messages_delivered: usize,
    /// Messages that failed and wait for another try.
    pub messages_failed: usize,
    /// Messages given up after too many tries (parked as dead).
    pub messages_dead: usize,
    /// Messages not tried because their channel's breaker is open.
    pub messages_skipped: usize,
}

impl Engine {
    /// Retries every due queued payment, refund and delivery charge, then
    /// delivers every due message (`ezdelivery relay`). Each gateway call
    /// is claimed from a fresh read just before it is made, so several
    /// relays (and commands) at once never make the same call twice.
    pub fn relay(&self) -> Result<RelayReport> {
        self.relay_pass(None)
    }

    /// One relay pass ([`Engine::relay`]) that takes on no new item once
    /// `stop` is set: the gateway call or message in flight then is
    /// finished and recorded, the messages claimed and not sent yet are
    /// released, and the rest waits for the next relay.
    pub(crate) fn relay_pass(&self, stop: Option<&AtomicBool>) -> Result<RelayReport> {
        let _span = tracing::info_span!("relay").entered();
        let halt = Halt { deadline: None, stop };
        self.command(|command| {
            let mut report = RelayReport::default();
            let now = self.clock.now();
            let names = &self.gateways.names;
            // What a call's units of work queued (the messages of a payment
            // it approved) is claimed already: it is delivered right after
            // the call, well within its claim (or released, when told to
            // stop), not after the whole batch of calls.
            let deliver_claimed = |command: &mut Command<'_>, report: &mut RelayReport| -> Result<()> {
                let stats = self.deliver(command.take_claimed(), halt)?;
                report.add_messages(&stats);
                Ok(())
            };
            for payment in self.read(|repo| repo.payments_awaiting(now, &names.payment, RELAY_BATCH))? {
                if halt.reached() {
                    break;
                }
                relay_leg(command, &payment, &mut report)?;
                deliver_claimed(command, &mut report)?;
            }
            if !halt.reached() {
                for charge in self.read(|repo| repo.charges_awaiting(now, &names.charge, RELAY_BATCH))? {
                    if halt.reached() {
                        break;
                    }
                    relay_leg(command, &charge, &mut report)?;
                    deliver_claimed(command, &mut report)?;
                }
            }
            // A channel that failed, or whose breaker refused, is left out
            // of the pass's later batches: its backlog would fill each one
            // and hold up the other channels' messages behind it. Those
            // skipped are counted once, as the most any batch skipped.
            let (mut skipped, mut shut) = (0, Vec::new());
            while !halt.reached() {
                let shut_before = shut.len();
                let stats = self.deliver_messages_until(RELAY_BATCH, halt, &mut shut)?;
                report.add_messages(&MessageStats { skipped: 0, ..stats });
                skipped = skipped.max(stats.skipped);
                // A batch cut short by its sending window released the rest,
                // and the next batch claims them afresh; a full one is
                // followed by the next (without the channels shut since);
                // one that sent, shut and released nothing ends the pass.
                let tried = stats.delivered + stats.failed + stats.dead;
                let full = tried + stats.skipped + stats.released >= RELAY_BATCH;
                let moved = tried > 0 || shut.len() > shut_before || stats.released > 0;
                if !moved || (stats.released == 0 && !full) {
                    break;
                }
            }
            report.messages_skipped += skipped;
            Ok(report)
        })
    }

    /// What waits for `relay`, due or not: payments, refunds and delivery
    /// charges not settled yet, messages not delivered yet, and when the
    /// earliest of them is due (now, at the soonest; when all that waits is
    /// behind open breakers, when the first of those breakers reopens).
    /// Those that need a person and dead messages do not wait for `relay`:
    /// see [`Engine::attention`] and [`Engine::dead_messages`].
    pub fn queue_status(&self) -> Result<QueueStatus> {
        let now = self.clock.now();
        let names = &self.gateways.names;
        let mut status = self.read(|repo| repo.queue_status(now, &names.payment, &names.charge))?;
        status.next_due = status.next_due.map(|due| due.max(now));
        // What waits behind an open breaker waits for it to let a trial
        // through: when all that waits does, nothing is due before the
        // first of those breakers reopens, whatever the back-offs say. The
        // breakers in the way: the gateways' of the calls that wait, and
        // the channels' of the messages (a message for a channel no
        // notifier has is failed by the relay when due, breaker or not).
        let mut in_the_way = Vec::new();
        if status.payments > 0 {
            in_the_way.push(BreakerName::Payment);
        }
        if status.charges > 0 {
            in_the_way.push(BreakerName::Charge);
        }
        if status.messages > 0 {
            for channel in self.read(|repo| repo.waiting_channels())? {
                let Some(notifier) = self.notifiers.iter().find(|n| n.channel().as_str() == channel) else {
                    return Ok(status);
                };
                in_the_way.push(BreakerName::Channel(notifier.channel().clone()));
            }
        }
        if in_the_way.is_empty() {
            return Ok(status);
        }
        let breakers = self.breakers()?;
        let reopens = |name: &BreakerName| {
            breakers.iter().find(|b| b.name == *name && b.state == BreakerState::Open).and_then(|b| b.retry_at)
        };
        let all_open: Option<Vec<_>> = in_the_way.iter().map(reopens).collect();
        if let Some(first) = all_open.and_then(|times| times.into_iter().min()) {
            status.next_due = status.next_due.map(|due| due.max(first));
        }
        Ok(status)
    }

    /// Payments and delivery charges that need a person, oldest first
    /// (`ezdelivery relay --attention`).
    pub fn attention(&self) -> Result<Vec<Attention>> {
        self.read(|repo| {
            let mut all: Vec<Attention> = repo
                .payments_needing_attention(usize::MAX >> 1)?
                .into_iter()
                .map(|p| Attention::of(&p, AttentionKind::Payment, Some(p.card.clone()), None))
                .collect();
            for c in repo.charges_needing_attention(usize::MAX >> 1)? {
                let rider = repo.rider(c.rider_id)?.map(|r| String::from(r.name.as_str()));
                all.push(Attention::of(&c, AttentionKind::Charge, None, Some(rider)));
            }
            Ok(all)
        })
    }

    /// Puts every payment and charge that needs attention back in the
    /// queue, due now under its own key, with a fresh count of unknown
    /// answers (`ezdelivery relay --retry-attention`). Returns how many.
    pub fn requeue_attention(&self) -> Result<usize> {
        let _span = tracing::info_span!("requeue_attention").entered();
        self.write_command(|w| {
            let payments = w.repo.payments_needing_attention(usize::MAX >> 1)?;
            let charges = w.repo.charges_needing_attention(usize::MAX >> 1)?;
            for p in &payments {
                let (p, event) = p.requeue(w.now)?;
                w.repo.save_payment(&p)?;
                w.emit(event)?;
            }
            for c in &charges {
                let (c, event) = c.requeue(w.now)?;
                w.repo.save_charge(&c)?;
                w.emit(event)?;
            }
            Ok(payments.len() + charges.len())
        })
    }

    /// Messages parked as dead, oldest first (`ezdelivery relay --dead`).
    pub fn dead_messages(&self) -> Result<Vec<QueuedMessage>> {
        self.read(|repo| repo.dead_messages(usize::MAX >> 1))
    }

    /// Puts every dead message back in the queue, due now, with a fresh
    /// count of tries (`ezdelivery relay --retry-dead`). Returns how many.
    pub fn revive_dead_messages(&self) -> Result<usize> {
        let _span = tracing::info_span!("revive_dead_messages").entered();
        self.write(|w| {
            let dead = w.repo.dead_messages(usize::MAX >> 1)?;
            for q in &dead {
                let revived =
                    MessageDelivery { state: DeliveryState::Pending, tries: 0, next_at: w.now, ..q.delivery.clone() };
                w.repo.save_message_delivery(&revived)?;
            }
            Ok(dead.len())
        })
        .map(|done| done.value)
    }

    /// Closes breaker `name` (`ezdelivery breaker reset NAME`). A person
    /// who resets a gateway's breaker says the gateway is back, so the
    /// payments (or charges) queued for it are made due now rather than at
    /// the end of their back-off: the next `relay` sends them, each under
    /// its own key. An unknown name is [`Error::NotFound`], as
    /// [`Engine::breaker_name`] says.
    pub fn reset_breaker(&self, name: &BreakerName) -> Result<BreakerStatus> {
        let _span = tracing::info_span!("reset_breaker").entered();
        let name = self.breaker_name(name.as_str())?;
        self.write(|w| w.repo.save_breaker(&Breaker::closed(name.clone(), w.now)))?;
        // Every queued call, due or not: one a century away would be lost
        // in no back-off there is.
        let (all, gateways) = (self.clock.now() + chrono::TimeDelta::days(36_500), &self.gateways.names);
        match &name {
            BreakerName::Payment => {
                self.make_due(self.read(|repo| repo.payments_awaiting(all, &gateways.payment, usize::MAX >> 1))?)?
            }
            BreakerName::Charge => {
                self.make_due(self.read(|repo| repo.charges_awaiting(all, &gateways.charge, usize::MAX >> 1))?)?
            }
            BreakerName::Channel(_) => {}
        }
        self.breakers()?
            .into_iter()
            .find(|b| b.name == name)
            .ok_or_else(|| Error::Internal(format!("breaker {name} vanished")))
    }

    /// Makes the payments or charges `waiting` lists due now, one unit of
    /// work each, as a claim would: under the order's lock, read again by
    /// id (a relay or a command may have claimed or settled it since it was
    /// listed, and what it did stands), then saved due now under its key.
    fn make_due<L: Leg + Billed>(&self, waiting: Vec<L>) -> Result<()> {
        for (order, id) in waiting.iter().map(|leg| (leg.order_id(), leg.id())) {
            self.write(|w| {
                w.lock_order(order)?;
                match L::load(w.repo, order, id)?.and_then(|leg| leg.due_now(w.now)) {
                    Some(due) => due.save(w.repo),
                    None => Ok(()),
                }
            })?;
        }
        Ok(())
    }
}

/// Claims and makes one queued gateway call, if it is still due and
/// nobody else is making it; money taken for an order that no longer
/// wants it goes back at once.
fn relay_leg<L: Leg>(command: &mut Command<'_>, leg: &L, report: &mut RelayReport) -> Result<()> {
    let Some(call) = leg.call() else { return Ok(()) };
    let (settled, back) = command.settle_leg::<L>(leg.order_id(), leg.id(), call)?;
    report.count(&L::BREAKER, call, &settled);
    if let Some(back) = back {
        report.count(&L::BREAKER, Call::GiveBack, &back);
    }
    Ok(())
}

impl RelayReport {
    /// Counts what one gateway call of breaker `gateway` came to.
    fn count(&mut self, gateway: &BreakerName, call: Call, settled: &Settled) {
        let payment = *gateway == BreakerName::Payment;
        match (settled, call) {
            (Settled::Done | Settled::Established, Call::Take) if payment => self.payments_approved += 1,
            (Settled::Done | Settled::Established, Call::Take) => self.charges_paid += 1,
            (Settled::Done | Settled::Established, Call::GiveBack) if payment => self.refunds_confirmed += 1,
            (Settled::Done | Settled::Established, Call::GiveBack) => self.charges_refunded += 1,
            (Settled::Declined(_), _) => self.payments_declined += 1,
            (Settled::Unavailable { .. }, _) => self.still_queued += 1,
            (Settled::Attention(_), _) => self.needs_attention += 1,
            (Settled::Nothing, _) => {}
        }
    }

    /// Gateway calls and messages this pass brought to an end or moved on:
    /// approved, declined, refunded, paid, taken back, given to a person,
    /// delivered, given up on. Calls queued again and messages to retry do
    /// not count: they are not due again at once.
    pub fn settled(&self) -> usize {
        self.payments_approved
            + self.payments_declined
            + self.refunds_confirmed
            + self.charges_paid
            + self.charges_refunded
            + self.needs_attention
            + self.messages_delivered
            + self.messages_dead
    }

    /// Gateway calls made and messages sent (or tried): [`RelayReport::settled`]
    /// and those that failed and wait for another try. Messages skipped
    /// because their channel's breaker is open are not counted.
    pub fn tried(&self) -> usize {
        self.settled() + self.still_queued + self.messages_failed
    }

    /// Adds the counts of `other` (another pass) to these.
    pub fn add(&mut self, other: &RelayReport) {
        // Named one by one, so that a new count cannot be left out.
        let RelayReport {
            payments_approved,
            payments_declined,
            refunds_confirmed,
            charges_paid,
            charges_refunded,
            still_queued,
            needs_attention,
            messages_delivered,
            messages_failed,
            messages_dead,
            messages_skipped,
        } = *other;
        self.payments_approved += payments_approved;
        self.payments_declined += payments_declined;
        self.refunds_confirmed += refunds_confirmed;
        self.charges_paid += charges_paid;
        self.charges_refunded += charges_refunded;
        self.still_queued += still_queued;
        self.needs_attention += needs_attention;
        self.messages_delivered += messages_delivered;
        self.messages_failed += messages_failed;
        self.messages_dead += messages_dead;
        self.messages_skipped += messages_skipped;
    }

    fn add_messages(&mut self, stats: &MessageStats) {
        self.messages_delivered += stats.delivered;
        self.messages_failed += stats.failed;
        self.messages_dead += stats.dead;
        self.messages_skipped += stats.skipped;
    }
}

/// What kind of record needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    /// A customer's payment (or its refund).
    Payment,
    /// A rider's delivery charge (or taking it back).
    Charge,
}

crate::domain::status_strings!(AttentionKind {
    Payment => "payment",
    Charge => "charge",
});

/// A payment or delivery charge that needs a person: the gateway may hold
/// money that the engine could not settle by itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attention {
    /// A payment or a delivery charge.
    pub kind: AttentionKind,
    /// The order.
    pub order_id: crate::domain::OrderId,
    /// The payment's or charge's id.
    pub id: i64,
    /// Always `needs_attention` (the same word for both kinds).
    pub status: &'static str,
    /// The payment's or the charge's amount, in whole won.
    pub amount: crate::domain::Won,
    /// Payments: `Some`, holding the masked card (`null` in JSON without
    /// one); charges: `None`, and no `card` key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<Option<String>>,
    /// Charges: `Some`, holding the rider's name (`null` in JSON for a rider
    /// no longer registered); payments: `None`, and no `rider` key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rider: Option<Option<String>>,
    /// The gateway the call went to, by name (an HTTP gateway's base URL,
    /// `sandbox`); `null` for one made before this was recorded.
    pub gateway: Option<String>,
    /// The key to look the call up by at that gateway.
    pub idempotency_key: String,
    /// The gateway's reference, once known (then a refund is what failed).
    pub gateway_ref: Option<String>,
    /// Tries made for it, those an open circuit breaker refused without
    /// calling the gateway included.
    pub tries: u32,
    /// The last thing that went wrong.
    pub last_error: Option<String>,
}

impl Attention {
    fn of<L: Leg>(
        leg: &L,
        kind: AttentionKind,
        card: Option<Option<String>>,
        rider: Option<Option<String>>,
    ) -> Attention {
        Attention {
            kind,
            card,
            rider,
            order_id: leg.order_id(),
            id: leg.id(),
            status: crate::domain::PaymentStatus::NeedsAttention.as_str(),
            amount: leg.amount(),
            gateway: leg.attempt().gateway.as_deref().map(str::to_string),
            idempotency_key: leg.attempt().idempotency_key.to_string(),
            gateway_ref: leg.gateway_ref(),
            tries: leg.attempt().tries,
            last_error: leg.attempt().last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::adapters::memory::MemoryStorage;
    use crate::app::retry::RetryPolicy;
    use crate::domain::{OrderStatus, PaymentStatus};
    use crate::ports::{GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest};
    use crate::{ItemPick, NewOrder};

    /// Down until `up`; keeps the ledger: approvals by key (a key approved
    /// again answers as before and is not counted twice).
    #[derive(Clone, Default)]
    struct Ledger {
        up: Arc<AtomicBool>,
        approved: Arc<Mutex<HashMap<String, u32>>>,
    }

    impl PaymentGateway for Ledger {
        fn name(&self) -> &str {
            "test"
        }

        fn approve(&self, r: &PaymentRequest) -> GatewayOutcome {
            if !self.up.load(Ordering::SeqCst) {
                return GatewayOutcome::Unavailable { reason: "down".into() };
            }
            let mut approved = self.approved.lock().expect("the ledger");
            *approved.entry(r.idempotency_key.to_string()).or_default() = 1;
            GatewayOutcome::Approved { gateway_ref: format!("p-{}", r.idempotency_key) }
        }

        fn refund(&self, r: &RefundRequest) -> GatewayOutcome {
            self.approved.lock().expect("the ledger").remove(r.idempotency_key.trim_end_matches("-refund"));
            GatewayOutcome::Approved { gateway_ref: "r".into() }
        }
    }

    /// A payment behind an open breaker is due when the breaker lets a
    /// trial through, not when its own back-off ends: what `relay` says
    /// ("the next is due at …") is when running it again does something.
    #[test]
    fn calls_behind_an_open_breaker_are_due_when_it_reopens() {
        let gateway = Ledger::default();
        let quick = RetryPolicy { base_ms: 1_000, max_ms: 1_000, max_message_tries: 3, attention_after: 10 };
        let open = crate::domain::BreakerSettings { failure_threshold: 1, open_ms: 600_000 };
        let engine = Engine::builder(MemoryStorage::new()).payment(gateway.clone()).retry(quick).breakers(open).build();
        let store = engine.add_store("BBQ", Some("park"), None).expect("a store").id;
        engine.add_menu(store, "후라이드", 18_000).expect("a menu");
        let picks = [ItemPick::new("후라이드", 1)];
        engine.place_order(NewOrder::new(store, "kim", &picks).pay_now(None)).expect_err("down");
        let breaker = engine.breakers().expect("breakers").into_iter().find(|b| b.name == BreakerName::Payment);
        let reopens = breaker.and_then(|b| b.retry_at).expect("the payment breaker is open");
        let waiting = engine.queue_status().expect("the queue");
        assert_eq!((waiting.payments, waiting.next_due), (1, Some(reopens)), "not in a second: {waiting:?}");

        // Reset by hand: due now.
        engine.reset_breaker(&BreakerName::Payment).expect("reset");
        let due = engine.queue_status().expect("the queue").next_due;
        assert!(due.is_some_and(|due| due <= engine.clock.now()), "{due:?}");
        gateway.up.store(true, Ordering::SeqCst);
        assert_eq!(engine.relay().expect("relay").payments_approved, 1);
        assert_eq!(gateway.approved.lock().expect("the ledger").values().sum::<u32>(), 1);
    }

    /// Records every message it is sent.
    #[derive(Clone)]
    struct Inbox(Arc<Mutex<Vec<String>>>, crate::domain::ChannelName);

    impl crate::ports::Notifier for Inbox {
        fn channel(&self) -> &crate::domain::ChannelName {
            &self.1
        }

        fn send(&self, m: &crate::ports::outbox::Message) -> std::result::Result<(), String> {
            self.0.lock().expect("the inbox").push(m.id.clone());
            Ok(())
        }
    }

    /// A channel that is always down.
    #[derive(Clone)]
    struct Down(crate::domain::ChannelName);

    impl crate::ports::Notifier for Down {
        fn channel(&self) -> &crate::domain::ChannelName {
            &self.0
        }
        fn send(&self, _: &crate::ports::outbox::Message) -> std::result::Result<(), String> {
            Err("down".into())
        }
    }

    /// A store, a menu, and three orders paid at once (three messages each).
    fn three_paid_orders(engine: &Engine) {
        let store = engine.add_store("BBQ", Some("park"), None).expect("a store").id;
        engine.add_menu(store, "후라이드", 18_000).expect("a menu");
        let picks = [ItemPick::new("후라이드", 1)];
        for customer in ["kim", "lee", "park"] {
            engine.place_order(NewOrder::new(store, customer, &picks).pay_now(None)).expect("paid");
        }
    }

    /// A batch sends only within its window and releases the rest; the
    /// relay goes on with the next batch, so every message is still sent,
    /// once. (The window keeps every send inside the claim's lease, so that
    /// no other relay can claim the same messages meanwhile.)
    #[test]
    fn batches_cut_short_by_their_window_still_send_every_message_once() {
        let inbox = Inbox(Arc::default(), crate::domain::ChannelName::new("test").expect("a channel name"));
        let mut engine = Engine::builder(MemoryStorage::new())
            .notifier(inbox.clone())
            .relay_budget(std::time::Duration::ZERO)
            .build();
        engine.settings.sending_window = std::time::Duration::ZERO;
        three_paid_orders(&engine);
        assert!(inbox.0.lock().expect("the inbox").is_empty(), "nothing sent by the commands");
        let batch = engine.deliver_messages(100).expect("one batch");
        assert_eq!((batch.delivered, batch.released), (1, 8), "its window was over after one: {batch:?}");
        let report = engine.relay().expect("relay");
        let sent = inbox.0.lock().expect("the inbox").clone();
        assert_eq!(report.messages_delivered + 1, sent.len());
        assert_eq!(sent.len(), 9, "three messages an order: {sent:?}");
        let mut once = sent.clone();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), sent.len(), "each once: {sent:?}");
        assert_eq!(engine.queue_status().expect("the queue").messages, 0);
    }

    /// A channel that fails opens its breaker; the messages behind it are
    /// skipped by every later batch, and a batch that sends nothing ends
    /// the relay (it used to go on for ever when the window was over),
    /// counting them once.
    #[test]
    fn a_relay_behind_an_open_breaker_ends_and_counts_its_skips_once() {
        let down = Down(crate::domain::ChannelName::new("test").expect("a channel name"));
        let open = crate::domain::BreakerSettings { failure_threshold: 1, open_ms: 600_000 };
        let mut engine = Engine::builder(MemoryStorage::new())
            .notifier(down)
            .breakers(open)
            .relay_budget(std::time::Duration::ZERO)
            .build();
        engine.settings.sending_window = std::time::Duration::ZERO;
        three_paid_orders(&engine);
        let report = engine.relay().expect("the relay ends");
        assert_eq!((report.messages_failed, report.messages_skipped), (1, 8), "{report:?}");
    }

    /// A channel that fails, with more messages waiting than a batch holds,
    /// delays only its own: the relay leaves it out of its later batches,
    /// and every message of a working channel goes out in one pass (the
    /// failing channel's backlog used to fill every batch, ahead of them).
    #[test]
    fn a_failing_channel_with_a_backlog_delays_only_its_own_messages() {
        let inbox = Inbox(Arc::default(), crate::domain::ChannelName::new("ok").expect("a channel name"));
        let down = Down(crate::domain::ChannelName::new("down").expect("a channel name"));
        let engine = Engine::builder(MemoryStorage::new())
            .notifier(down)
            .notifier(inbox.clone())
            .relay_budget(std::time::Duration::ZERO)
            .build();
        let store = engine.add_store("BBQ", Some("park"), None).expect("a store").id;
        engine.add_menu(store, "후라이드", 18_000).expect("a menu");
        let picks = [ItemPick::new("후라이드", 1)];
        // Three messages an order on each channel: 600 on each, more than
        // a batch of 500 holds.
        for n in 0..200 {
            engine.place_order(NewOrder::new(store, &format!("c{n}"), &picks).pay_now(None)).expect("paid");
        }
        assert!(inbox.0.lock().expect("the inbox").is_empty(), "nothing sent by the commands");
        let report = engine.relay().expect("relay");
        assert_eq!(inbox.0.lock().expect("the inbox").len(), 600, "{report:?}");
        assert_eq!(report.messages_delivered, 600, "{report:?}");
        assert_eq!(engine.relay().expect("relay").messages_delivered, 0, "each once");
    }

    /// Messages behind an open channel breaker are due when it reopens, as
    /// calls are; after a reset, due at once.
    #[test]
    fn messages_behind_an_open_breaker_are_due_when_it_reopens() {
        let channel = crate::domain::ChannelName::new("test").expect("a channel name");
        let quick = RetryPolicy { base_ms: 1_000, max_ms: 1_000, max_message_tries: 30, attention_after: 10 };
        let open = crate::domain::BreakerSettings { failure_threshold: 1, open_ms: 600_000 };
        let engine =
            Engine::builder(MemoryStorage::new()).notifier(Down(channel.clone())).retry(quick).breakers(open).build();
        three_paid_orders(&engine);
        let name = BreakerName::Channel(channel);
        let breaker = engine.breakers().expect("breakers").into_iter().find(|b| b.name == name);
        let reopens = breaker.and_then(|b| b.retry_at).expect("the channel's breaker is open");
        let waiting = engine.queue_status().expect("the queue");
        assert!(waiting.messages > 0 && waiting.calls() == 0, "{waiting:?}");
        assert_eq!(waiting.next_due, Some(reopens), "not now: {waiting:?}");

        engine.reset_breaker(&name).expect("reset");
        let due = engine.queue_status().expect("the queue").next_due;
        assert!(due.is_some_and(|due| due <= engine.clock.now()), "{due:?}");
    }

    /// A message waiting for a channel no notifier has (the configuration
    /// changed since it was queued) is failed by a relay when due, whatever
    /// the other channels' breakers say: it is due then.
    #[test]
    fn a_message_for_a_channel_no_longer_configured_is_due_whatever_the_breakers() {
        let channel = crate::domain::ChannelName::new("test").expect("a channel name");
        let open = crate::domain::BreakerSettings { failure_threshold: 1, open_ms: 600_000 };
        let engine = Engine::builder(MemoryStorage::new()).notifier(Down(channel)).breakers(open).build();
        three_paid_orders(&engine);
        let now = engine.clock.now();
        let key = engine.read(|repo| repo.due_messages(now, 1)).expect("read")[0].message.key;
        engine
            .write(|w| {
                let gone = MessageDelivery {
                    message_id: String::new(),
                    message_key: key,
                    channel: "gone".into(),
                    state: DeliveryState::Pending,
                    tries: 0,
                    next_at: now,
                    last_error: None,
                };
                w.repo.save_message_delivery(&gone)
            })
            .expect("a delivery for a channel since removed");
        let due = engine.queue_status().expect("the queue").next_due;
        assert!(due.is_some_and(|due| due <= engine.clock.now()), "due now, not at the reopening: {due:?}");
    }

    /// A payment listed before a reset and settled before the reset writes
    /// it is read again under its order's lock: the approval stands, and
    /// nothing is made due, refunded or charged again.
    #[test]
    fn a_payment_settled_after_it_was_listed_is_not_made_due_again() {
        let gateway = Ledger::default();
        let slow = RetryPolicy { base_ms: 600_000, max_ms: 600_000, max_message_tries: 3, attention_after: 10 };
        let engine = Engine::builder(MemoryStorage::new()).payment(gateway.clone()).retry(slow).build();
        let store = engine.add_store("BBQ", Some("park"), None).expect("a store").id;
        engine.add_menu(store, "후라이드", 18_000).expect("a menu");
        let picks = [ItemPick::new("후라이드", 1)];
        let order = engine.place_order(NewOrder::new(store, "kim", &picks).pay_now(None)).expect_err("down").order();
        let order = order.expect("the order is kept");
        let far = engine.clock.now() + chrono::TimeDelta::days(1);
        let listed = engine.read(|repo| repo.payments_awaiting(far, "test", 10)).expect("listed");
        assert_eq!(listed.len(), 1);

        gateway.up.store(true, Ordering::SeqCst);
        assert_eq!(engine.pay(order, None).expect("paid by hand").status, OrderStatus::Paid);
        engine.make_due(listed).expect("made due");

        let payment = engine.read(|repo| repo.latest_payment(order)).expect("read").expect("a payment");
        assert_eq!(payment.status, PaymentStatus::Approved);
        assert_eq!(engine.relay().expect("relay").payments_approved, 0);
        assert_eq!(engine.status(order).expect("the view").status, OrderStatus::Paid);
        let ledger = gateway.approved.lock().expect("the ledger").clone();
        assert_eq!(ledger.values().sum::<u32>(), 1, "one approval, none refunded: {ledger:?}");
    }
}
