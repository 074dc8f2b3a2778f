//! Sending queued messages: each claimed message goes to its channel's
//! notifier, through the channel's circuit breaker, and what happened is
//! recorded (delivered, to retry, dead). Commands deliver what they queued
//! right after their commit (`deliver_quietly`); `relay` delivers the rest.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::app::engine::{Engine, MESSAGE_LEASE_MS};
use crate::domain::breaker::Permit;
use crate::domain::time::after_ms;
use crate::domain::{Breaker, BreakerName, BreakerState, ChannelName};
use crate::ports::outbox::{DeliveryState, MessageDelivery, QueuedMessage};
use crate::ports::{Message, Notifier};
use crate::Result;

/// What delivering a batch of messages did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageStats {
    /// Delivered.
    pub delivered: usize,
    /// Failed, to be retried.
    pub failed: usize,
    /// Failed for the last time: parked as dead.
    pub dead: usize,
    /// Not tried: the channel's circuit breaker is open, or it failed
    /// earlier in the batch.
    pub skipped: usize,
    /// Not tried, or cut short by a command's relay budget (the channel's
    /// breaker is not told), or the batch's sending window (30 s) was
    /// over; released, due again at once.
    pub released: usize,
}

/// When to stop sending: at a deadline (a command's relay budget), when a
/// flag is set (`relay --watch` told to stop), either, or never. A message
/// not tried by then is released, due again as it was.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Halt<'a> {
    /// No more sends after this.
    pub deadline: Option<Instant>,
    /// No more sends once this is set.
    pub stop: Option<&'a AtomicBool>,
}

impl Halt<'_> {
    /// Whether it is time to stop taking new work.
    pub fn reached(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d) || self.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

/// A channel's breaker during one batch of deliveries.
struct Gate {
    /// As stored before the batch (`None`: never used).
    before: Option<Breaker>,
    /// As it is now.
    breaker: Breaker,
    /// No more sends on this channel in this batch.
    open: bool,
    /// Its breaker refused, or a send failed: no more sends on this
    /// channel for the rest of the relay's pass either.
    shut: bool,
    /// This batch's first send is the half-open trial.
    trial: bool,
}

impl Engine {
    /// Delivers up to `limit` due messages, each on its channel, and records
    /// what happened. A failing notifier only delays its own messages; a
    /// channel whose breaker is open is skipped without being called.
    /// (Within a command's relay budget, a channel that does not answer can
    /// use up the budget: what is left is `relay`'s.)
    pub fn deliver_messages(&self, limit: usize) -> Result<MessageStats> {
        self.deliver_messages_until(limit, Halt::default(), &mut Vec::new())
    }

    /// [`Engine::deliver_messages`], sending nothing more once `halt` is
    /// reached, and leaving out the channels in `shut`, to which it adds
    /// those that failed or whose breaker refused in this batch.
    pub(crate) fn deliver_messages_until(
        &self,
        limit: usize,
        halt: Halt<'_>,
        shut: &mut Vec<String>,
    ) -> Result<MessageStats> {
        let except: Vec<&str> = shut.iter().map(String::as_str).collect();
        // Claim what is due first, so that two processes relaying at once
        // never send the same message: each sees the other's claim as not due.
        let due = self
            .write(|w| {
                let due = w.repo.due_messages_except(w.now, limit, &except)?;
                let until = after_ms(w.now, MESSAGE_LEASE_MS);
                for q in &due {
                    w.repo.save_message_delivery(&MessageDelivery { next_at: until, ..q.delivery.clone() })?;
                }
                Ok(due)
            })?
            .value;
        self.deliver_noting(due, halt, shut)
    }

    /// Sends claimed messages and records what happened; a message not
    /// tried (`halt` was reached, or its channel's breaker is open) is
    /// released, due again as it was.
    pub(crate) fn deliver(&self, due: Vec<QueuedMessage>, halt: Halt<'_>) -> Result<MessageStats> {
        self.deliver_noting(due, halt, &mut Vec::new())
    }

    /// [`Engine::deliver`], adding to `shut` each channel that failed or
    /// whose breaker refused.
    fn deliver_noting(&self, due: Vec<QueuedMessage>, halt: Halt<'_>, shut: &mut Vec<String>) -> Result<MessageStats> {
        let now = self.clock.now();
        let settings = self.settings.breakers;
        if due.is_empty() {
            return Ok(MessageStats::default());
        }
        let stored = self.read(|repo| repo.breakers())?;
        let mut stats = MessageStats::default();
        let mut gates: HashMap<String, Gate> = HashMap::new();
        let mut outcomes = Vec::with_capacity(due.len());
        // Every batch sends one message at least (if any channel is open),
        // so that a relay going on with the next batch gets somewhere.
        let window = Halt { deadline: Some(super::deadline_in(self.settings.sending_window)), stop: None };
        let mut tried = false;
        for queued in due {
            if halt.reached() {
                outcomes.push((queued.delivery, None));
                continue;
            }
            let channel = queued.delivery.channel.clone();
            // Behind a channel shut in this batch: skipped, even once the
            // window is over (the relay leaves a shut channel out of its
            // later batches, so a message released here would not come back
            // in this pass, and would not be counted).
            if tried && window.reached() && !gates.get(&channel).is_some_and(|g| g.shut) {
                stats.released += 1;
                outcomes.push((queued.delivery, None));
                continue;
            }
            let Ok(name) = ChannelName::new(&channel).map(BreakerName::Channel) else {
                // Queued for a channel named like a gateway (refused since):
                // no notifier has it, and it is not the gateway's breaker.
                outcomes.push((queued.delivery, Some(Err(unconfigured(&channel)))));
                continue;
            };
            let gate = gates.entry(channel.clone()).or_insert_with(|| {
                let before = stored.iter().find(|b| b.name == name).cloned();
                let current = before.clone().unwrap_or_else(|| Breaker::closed(name, now));
                let (breaker, permit) = current.permit(&settings, now);
                let refused = matches!(permit, Permit::Refuse { .. });
                Gate { before, breaker, open: refused, shut: refused, trial: permit == Permit::Trial }
            });
            if gate.open {
                stats.skipped += 1;
                outcomes.push((queued.delivery, None));
                continue;
            }
            let started = Instant::now();
            tried = true;
            // A command waits for its messages no longer than its budget.
            let within = halt.deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(started));
            let sent = match self.notifiers.iter().find(|n| n.channel().as_str() == channel) {
                Some(n) => send_guarded(n.as_ref(), &fitted(&queued.message, n.max_chars()), within),
                None => Err(unconfigured(&channel)),
            };
            let elapsed = started.elapsed();
            let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
            tracing::debug!(channel = %channel, message_id = %queued.message.id, ok = sent.is_ok(),
                elapsed_ms = format_args!("{elapsed_ms:.3}"), "notifier call");
            if sent.is_err() && elapsed >= within {
                // Cut short by the budget, not failed by the channel: left
                // to relay (it may have arrived: a message can arrive twice),
                // and the breaker is not told.
                gate.open = true;
                stats.released += 1;
                outcomes.push((queued.delivery, None));
                continue;
            }
            gate.breaker = gate.breaker.record(sent.is_ok(), &settings, now);
            // After a trial or a failure, the channel waits for the next
            // batch: a dead endpoint costs one timeout per batch, not one
            // per message.
            gate.open = gate.trial || sent.is_err() || gate.breaker.state == BreakerState::Open;
            gate.shut |= sent.is_err();
            outcomes.push((queued.delivery, Some(sent)));
        }
        for (channel, gate) in &gates {
            if gate.shut && !shut.contains(channel) {
                shut.push(channel.clone());
            }
        }
        let retry = self.settings.retry;
        let recorded = self.write(|w| {
            // Counted afresh each time the unit of work runs.
            let mut stats = stats;
            for (delivery, sent) in &outcomes {
                let (delivery, tries) = (delivery.clone(), delivery.tries + 1);
                let next = match sent {
                    None => delivery,
                    Some(Ok(())) => {
                        stats.delivered += 1;
                        MessageDelivery { state: DeliveryState::Delivered, tries, last_error: None, ..delivery }
                    }
                    Some(Err(error)) if tries >= retry.max_message_tries => {
                        stats.dead += 1;
                        let last_error = Some(error.clone());
                        MessageDelivery { state: DeliveryState::Dead, tries, last_error, ..delivery }
                    }
                    Some(Err(error)) => {
                        stats.failed += 1;
                        let next_at = retry.next_at(tries, w.now);
                        MessageDelivery { tries, next_at, last_error: Some(error.clone()), ..delivery }
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
            Ok(stats)
        })?;
        Ok(recorded.value)
    }
}

/// `notifier`'s send of `message` within `within`, a panic in it turned
/// into a failed send. A notifier is its embedder's code: its panic failed
/// the command it ran in (committed already) and, in `relay`, lost the
/// batch's record, so that every relay sent the batch's messages again and
/// the one that panicked never became dead.
fn send_guarded(notifier: &dyn Notifier, message: &Message, within: Duration) -> Result<(), String> {
    super::caught(|| notifier.send_within(message, within))
        .unwrap_or_else(|said| Err(format!("the notifier panicked: {said}")))
}

/// Delivers what a command just queued and claimed, within the engine's
/// relay budget. Its failures are not the command's: the command is
/// committed, and anything not delivered now stays in the outbox, due
/// again once its claim lapses (older due messages are `relay`'s, which
/// claims them itself).
pub(crate) fn deliver_quietly(engine: &Engine, claimed: Vec<QueuedMessage>) {
    if !claimed.is_empty() {
        let deadline = super::deadline_in(engine.settings.relay_budget);
        // Deliberately ignored: see above.
        let _ = engine.deliver(claimed, Halt { deadline: Some(deadline), stop: None });
    }
}

/// Why a message queued for `channel` cannot be sent: no notifier has that name.
fn unconfigured(channel: &str) -> String {
    format!("no notifier `{channel}` is configured")
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
