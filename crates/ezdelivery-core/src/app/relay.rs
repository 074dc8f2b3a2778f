//! The relay: delivers queued messages on every channel and retries queued
//! gateway calls (payments, refunds, delivery charges) that are due.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use crate::app::breakers::PAYMENT;
use crate::app::engine::{Engine, MESSAGE_LEASE_MS};
use crate::app::saga::{Call, Leg, Settled};
use crate::domain::breaker::Permit;
use crate::domain::time::after_ms;
use crate::domain::{Billed, Breaker, BreakerState};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::storage::QueueStatus;
use crate::ports::Message;
use crate::Result;

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

/// What delivering a batch of messages did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageStats {
    /// Delivered.
    pub delivered: usize,
    /// Failed, to be retried.
    pub failed: usize,
    /// Failed for the last time: parked as dead.
    pub dead: usize,
    /// Not tried: the channel's circuit breaker is open.
    pub skipped: usize,
}

/// A channel's breaker during one batch of deliveries.
struct Gate {
    /// As stored before the batch (`None`: never used).
    before: Option<Breaker>,
    /// As it is now.
    breaker: Breaker,
    /// No more sends on this channel in this batch.
    open: bool,
    /// This batch's first send is the half-open trial.
    trial: bool,
}

impl Engine {
    /// Retries every due queued payment, refund and delivery charge, then
    /// delivers every due message (`ezdelivery relay`). Each gateway call
    /// is claimed from a fresh read just before it is made, so several
    /// relays (and commands) at once never make the same call twice.
    pub fn relay(&mut self) -> Result<RelayReport> {
        let _span = tracing::info_span!("relay").entered();
        let mut report = RelayReport::default();
        let now = self.clock.now();
        for payment in self.read(|repo| repo.payments_awaiting(now, RELAY_BATCH))? {
            self.relay_leg(&payment, &mut report)?;
        }
        for charge in self.read(|repo| repo.charges_awaiting(now, RELAY_BATCH))? {
            self.relay_leg(&charge, &mut report)?;
        }
        // What this run's own units of work queued (the messages of the
        // payments it approved) is claimed already: deliver it now.
        let claimed = std::mem::take(&mut self.claimed);
        let stats = self.deliver(claimed, None)?;
        report.add_messages(&stats);
        loop {
            let stats = self.deliver_messages(RELAY_BATCH)?;
            report.add_messages(&stats);
            if stats.delivered + stats.failed + stats.dead < RELAY_BATCH || stats.skipped > 0 {
                break;
            }
        }
        Ok(report)
    }

    /// Claims and makes one queued gateway call, if it is still due and
    /// nobody else is making it; money taken for an order that no longer
    /// wants it goes back at once.
    fn relay_leg<L: Leg>(&mut self, leg: &L, report: &mut RelayReport) -> Result<()> {
        let Some(call) = leg.call() else { return Ok(()) };
        let (settled, back) = self.settle_leg::<L>(leg.order_id(), leg.id(), call)?;
        report.count(L::BREAKER, call, &settled);
        if let Some(back) = back {
            report.count(L::BREAKER, Call::GiveBack, &back);
        }
        Ok(())
    }

    /// What waits for `relay`, due or not: payments, refunds and delivery
    /// charges not settled yet, messages not delivered yet, and when the
    /// earliest of them is due (now, at the soonest). Those that need a
    /// person and dead messages do not wait for `relay`: see
    /// [`Engine::attention`] and [`Engine::dead_messages`].
    pub fn queue_status(&mut self) -> Result<QueueStatus> {
        let now = self.clock.now();
        let mut status = self.read(|repo| repo.queue_status(now))?;
        status.next_due = status.next_due.map(|due| due.max(now));
        Ok(status)
    }

    /// Payments and delivery charges that need a person, oldest first
    /// (`ezdelivery relay --attention`).
    pub fn attention(&mut self) -> Result<Vec<Attention>> {
        self.read(|repo| {
            let mut all: Vec<Attention> = repo
                .payments_needing_attention(usize::MAX >> 1)?
                .into_iter()
                .map(|p| Attention::of(&p, "payment", p.card.clone(), None))
                .collect();
            for c in repo.charges_needing_attention(usize::MAX >> 1)? {
                let rider = repo.rider(c.rider_id)?.map(|r| r.name);
                all.push(Attention::of(&c, "charge", None, rider));
            }
            Ok(all)
        })
    }

    /// Puts every payment and charge that needs attention back in the
    /// queue, due now under its own key, with a fresh count of unknown
    /// answers (`ezdelivery relay --retry-attention`). Returns how many.
    pub fn requeue_attention(&mut self) -> Result<usize> {
        let _span = tracing::info_span!("requeue_attention").entered();
        self.write(|w| {
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
    pub fn dead_messages(&mut self) -> Result<Vec<QueuedMessage>> {
        self.read(|repo| repo.dead_messages(usize::MAX >> 1))
    }

    /// Puts every dead message back in the queue, due now, with a fresh
    /// count of tries (`ezdelivery relay --retry-dead`). Returns how many.
    pub fn revive_dead_messages(&mut self) -> Result<usize> {
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
    }

    /// Delivers up to `limit` due messages, each on its channel, and records
    /// what happened. A failing notifier only delays its own messages; a
    /// channel whose breaker is open is skipped without being called.
    pub fn deliver_messages(&mut self, limit: usize) -> Result<MessageStats> {
        self.deliver_messages_until(limit, None)
    }

    fn deliver_messages_until(&mut self, limit: usize, deadline: Option<Instant>) -> Result<MessageStats> {
        // Claim what is due first, so that two processes relaying at once
        // never send the same message: each sees the other's claim as not due.
        let due = self.write(|w| {
            let due = w.repo.due_messages(w.now, limit)?;
            let until = after_ms(w.now, MESSAGE_LEASE_MS);
            for q in &due {
                w.repo.save_message_delivery(&MessageDelivery { next_at: until, ..q.delivery.clone() })?;
            }
            Ok(due)
        })?;
        self.deliver(due, deadline)
    }

    /// Sends claimed messages and records what happened; a message not
    /// tried (time is up, or its channel's breaker is open) is released,
    /// due again as it was.
    fn deliver(&mut self, due: Vec<QueuedMessage>, deadline: Option<Instant>) -> Result<MessageStats> {
        let now = self.clock.now();
        let settings = self.breaker_settings;
        if due.is_empty() {
            return Ok(MessageStats::default());
        }
        let stored = self.read(|repo| repo.breakers())?;
        let mut stats = MessageStats::default();
        let mut gates: HashMap<String, Gate> = HashMap::new();
        let mut outcomes = Vec::with_capacity(due.len());
        for queued in due {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                outcomes.push((queued.delivery, None));
                continue;
            }
            let channel = queued.delivery.channel.clone();
            let gate = gates.entry(channel.clone()).or_insert_with(|| {
                let before = stored.iter().find(|b| b.name == channel).cloned();
                let current = before.clone().unwrap_or_else(|| Breaker::closed(&channel, now));
                let (breaker, permit) = current.permit(&settings, now);
                Gate { before, breaker, open: matches!(permit, Permit::Refuse { .. }), trial: permit == Permit::Trial }
            });
            if gate.open {
                stats.skipped += 1;
                outcomes.push((queued.delivery, None));
                continue;
            }
            let started = Instant::now();
            let sent = match self.notifiers.iter().find(|n| n.channel() == channel) {
                Some(n) => n.send(&fitted(&queued.message, n.max_chars())),
                None => Err(format!("no notifier `{channel}` is configured")),
            };
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::debug!(channel = %channel, message_id = %queued.message.id, ok = sent.is_ok(),
                elapsed_ms = format_args!("{elapsed_ms:.3}"), "notifier call");
            gate.breaker = gate.breaker.record(sent.is_ok(), &settings, now);
            // After a trial or a failure, the channel waits for the next
            // batch: a dead endpoint costs one timeout per batch, not one
            // per message.
            gate.open = gate.trial || sent.is_err() || gate.breaker.state == BreakerState::Open;
            outcomes.push((queued.delivery, Some(sent)));
        }
        let retry = self.retry;
        self.write(|w| {
            for (delivery, sent) in outcomes {
                let tries = delivery.tries + 1;
                let next = match sent {
                    None => delivery,
                    Some(Ok(())) => {
                        stats.delivered += 1;
                        MessageDelivery { state: DeliveryState::Delivered, tries, last_error: None, ..delivery }
                    }
                    Some(Err(error)) if tries >= retry.max_message_tries => {
                        stats.dead += 1;
                        MessageDelivery { state: DeliveryState::Dead, tries, last_error: Some(error), ..delivery }
                    }
                    Some(Err(error)) => {
                        stats.failed += 1;
                        let next_at = retry.next_at(tries, w.now);
                        MessageDelivery { tries, next_at, last_error: Some(error), ..delivery }
                    }
                };
                w.repo.save_message_delivery(&next)?;
            }
            for gate in gates.values() {
                let changed = gate.before.as_ref().map_or(gate.breaker.failures > 0, |b| {
                    (b.state, b.failures, b.opened_at)
                        != (gate.breaker.state, gate.breaker.failures, gate.breaker.opened_at)
                });
                if changed {
                    w.repo.save_breaker(&gate.breaker)?;
                }
            }
            Ok(())
        })?;
        Ok(stats)
    }

    /// Delivers what a command just queued. Its failures are not the
    /// command's: the messages stay queued for `relay`.
    pub(crate) fn deliver_messages_quietly(&mut self) {
        // Only what this engine's commands queued and claimed: older due
        // messages are `relay`'s, which claims them itself.
        let claimed = std::mem::take(&mut self.claimed);
        if !claimed.is_empty() {
            // Deliberately ignored: the command is committed; anything not
            // delivered now stays pending in the outbox (its claim lapses).
            let deadline = Instant::now() + self.relay_budget;
            let _ = self.deliver(claimed, Some(deadline));
        }
    }
}

/// `message` with its text fitted to a channel that takes at most
/// `max_chars` characters ([`crate::domain::fit`]); the outbox keeps the whole
/// text.
fn fitted(message: &Message, max_chars: Option<usize>) -> Cow<'_, Message> {
    match max_chars.map(|max| crate::domain::fit::fit(&message.text, max)) {
        Some(Cow::Owned(text)) => Cow::Owned(Message { text, ..message.clone() }),
        _ => Cow::Borrowed(message),
    }
}

impl RelayReport {
    /// Counts what one gateway call of breaker `gateway` came to.
    fn count(&mut self, gateway: &str, call: Call, settled: &Settled) {
        let payment = gateway == PAYMENT;
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

    fn add_messages(&mut self, stats: &MessageStats) {
        self.messages_delivered += stats.delivered;
        self.messages_failed += stats.failed;
        self.messages_dead += stats.dead;
        self.messages_skipped += stats.skipped;
    }
}

/// A payment or delivery charge that needs a person: the gateway may hold
/// money that the engine could not settle by itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attention {
    /// `payment` or `charge`.
    pub kind: &'static str,
    /// The order.
    pub order_id: crate::domain::OrderId,
    /// The payment's or charge's id.
    pub id: i64,
    /// Always `needs_attention`.
    pub status: &'static str,
    /// The payment's or the charge's amount, in whole won.
    pub amount: crate::domain::Won,
    /// The masked card (payments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// The rider's name (charges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rider: Option<String>,
    /// The key to look the call up by at the gateway.
    pub idempotency_key: String,
    /// The gateway's reference, once known (then a refund is what failed).
    pub gateway_ref: Option<String>,
    /// Gateway calls made for it.
    pub tries: u32,
    /// The last thing that went wrong.
    pub last_error: Option<String>,
}

impl Attention {
    fn of<L: Leg>(leg: &L, kind: &'static str, card: Option<String>, rider: Option<String>) -> Attention {
        Attention {
            kind,
            card,
            rider,
            order_id: leg.order_id(),
            id: leg.id(),
            status: "needs_attention",
            amount: leg.amount(),
            idempotency_key: leg.attempt().idempotency_key.clone(),
            gateway_ref: leg.gateway_ref(),
            tries: leg.attempt().tries,
            last_error: leg.attempt().last_error.clone(),
        }
    }
}
