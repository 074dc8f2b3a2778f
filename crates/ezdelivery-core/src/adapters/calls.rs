//! What a storage adapter needs to know of the two records that carry a
//! gateway call, payments and delivery charges, so that each adapter stores,
//! indexes and queries both with one piece of code: the same bookkeeping
//! written twice drifts apart when only one copy is fixed.

use chrono::{DateTime, Utc};

use super::rows;
use crate::domain::attempt::Attempt;
use crate::domain::{Charge, ChargeStatus, OrderId, Payment, PaymentStatus};
use crate::Result;

/// A payment or a delivery charge, as the storage queries see it: an id, the
/// order it belongs to, a status and the [`Attempt`] of its gateway call.
pub(crate) trait CallRecord: Clone {
    /// Its status type ([`PaymentStatus`] or [`ChargeStatus`]).
    type Status: Copy + PartialEq + 'static;

    /// The statuses that wait for the gateway (`pending`, `refund_pending`):
    /// the relay's queue (the domain's `AWAITING_GATEWAY`).
    const WAITING: [Self::Status; 2];
    /// The status of a call a person must look at (`needs_attention`).
    const ATTENTION: Self::Status;

    /// Its id; payments and charges are numbered apart.
    fn id(&self) -> i64;
    /// The order it belongs to.
    fn order_id(&self) -> OrderId;
    /// Its status.
    fn status(&self) -> Self::Status;
    /// Its gateway call.
    fn attempt(&self) -> &Attempt;
    /// The stable name of a status, as stored.
    fn status_text(status: Self::Status) -> &'static str;

    /// Whether it is in the relay's queue (due or not).
    fn waits(&self) -> bool {
        Self::WAITING.contains(&self.status())
    }

    /// Whether a person must look at it.
    fn needs_attention(&self) -> bool {
        self.status() == Self::ATTENTION
    }

    /// Whether, waiting, it may be settled through gateway `gateway`
    /// (`Attempt::goes_to`; it takes money while `pending`, the first of
    /// [`CallRecord::WAITING`]); SQL asks the same with [`goes_to!`].
    fn goes_to(&self, gateway: &str) -> bool {
        self.attempt().goes_to(gateway, self.status() == Self::WAITING[0])
    }
}

/// What waits of the payments or the charges, for one gateway.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallsWaiting {
    /// How many go to the gateway asked about (or to none yet).
    pub(crate) ours: usize,
    /// The earliest of those due.
    pub(crate) next_due: Option<DateTime<Utc>>,
    /// How many go to another gateway.
    pub(crate) elsewhere: usize,
}

/// A row of a [`rows::CallSql::waiting`] query of `table`.
pub(crate) fn calls_waiting(row: &dyn rows::SqlRow, table: &str) -> Result<CallsWaiting> {
    let ours = rows::int_at(row, 0, table, "count(*)")?;
    let all: usize = rows::int_at(row, 2, table, "count(*)")?;
    let next_due = rows::opt_time_at(row, 1, table, "next_at")?;
    Ok(CallsWaiting { ours, next_due, elsewhere: all.saturating_sub(ours) })
}

/// What waits for the relay, from what waits of payments, charges and
/// message deliveries (the count and earliest due of the last).
pub(crate) fn queue_status(
    payments: CallsWaiting,
    charges: CallsWaiting,
    messages: Option<(usize, Option<DateTime<Utc>>)>,
) -> crate::ports::storage::QueueStatus {
    let messages = messages.unwrap_or_default();
    crate::ports::storage::QueueStatus {
        payments: payments.ours,
        charges: charges.ours,
        messages: messages.0,
        next_due: [payments.next_due, charges.next_due, messages.1].into_iter().flatten().min(),
        elsewhere: payments.elsewhere + charges.elsewhere,
    }
}

/// Implements [`CallRecord`] for a record whose fields are named alike
/// (`id`, `order_id`, `status`, `attempt`) and whose status has the same
/// four variants it needs.
macro_rules! call_record {
    ($record:ident, $status:ident) => {
        impl CallRecord for $record {
            type Status = $status;
            const WAITING: [$status; 2] = $status::AWAITING_GATEWAY;
            const ATTENTION: $status = $status::NeedsAttention;

            fn id(&self) -> i64 {
                self.id
            }
            fn order_id(&self) -> OrderId {
                self.order_id
            }
            fn status(&self) -> $status {
                self.status
            }
            fn attempt(&self) -> &Attempt {
                &self.attempt
            }
            fn status_text(status: $status) -> &'static str {
                status.as_str()
            }
        }
    };
}

call_record!(Payment, PaymentStatus);
call_record!(Charge, ChargeStatus);

/// The `Repo` methods of the relay's queues and of what needs a person, for
/// a SQL repo with generic `calls_awaiting`, `calls_needing_attention` and
/// `calls_waiting`, and `messages_waiting` and `channels_waiting`: payments and charges are
/// asked the same way, and the queue status is put together once.
macro_rules! call_queues {
    () => {
        fn payments_awaiting(&mut self, now: DateTime<Utc>, gateway: &str, n: usize) -> Result<Vec<Payment>> {
            self.calls_awaiting(now, gateway, n)
        }

        fn charges_awaiting(&mut self, now: DateTime<Utc>, gateway: &str, n: usize) -> Result<Vec<Charge>> {
            self.calls_awaiting(now, gateway, n)
        }

        fn payments_needing_attention(&mut self, n: usize) -> Result<Vec<Payment>> {
            self.calls_needing_attention(n)
        }

        fn charges_needing_attention(&mut self, n: usize) -> Result<Vec<Charge>> {
            self.calls_needing_attention(n)
        }

        fn queue_status(
            &mut self,
            now: DateTime<Utc>,
            payment_gateway: &str,
            charge_gateway: &str,
        ) -> Result<crate::ports::storage::QueueStatus> {
            let now_text = crate::adapters::rows::time_text(&now);
            let payments = self.calls_waiting::<Payment>(&now_text, payment_gateway)?;
            let charges = self.calls_waiting::<Charge>(&now_text, charge_gateway)?;
            Ok(crate::adapters::calls::queue_status(payments, charges, self.messages_waiting()?))
        }

        fn waiting_channels(&mut self) -> Result<Vec<String>> {
            self.channels_waiting()
        }
    };
}
pub(crate) use call_queues;
