//! The library's one error type. It says what happened in the library's
//! own terms; a front end adds what to do in its own (the CLI turns each
//! error into a message with the command to run next, and an exit code, in
//! one place: `ezdelivery-cli`'s `errors.rs`).

use crate::domain::validate::Invalid;
use crate::domain::{status_strings, DomainError, OrderId, Refusal};

/// Everything that can go wrong, by what the caller should do about it.
///
/// `Debug` prints the kind and the message, as a person reads them: a
/// `main` that returns `Result<(), Error>` ends with
/// `Error: not_found: order 7 does not exist; …`.
#[derive(thiserror::Error)]
pub enum Error {
    /// A value is wrong whatever the state: fix the input.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// No such record.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What kind of record was looked for.
        what: Record,
        /// The id or name that was asked for (escaped and shortened).
        id: String,
        /// The store a menu was looked for in.
        store: Option<crate::domain::StoreId>,
    },
    /// The state machine refuses the move.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The payment gateway declined the payment; the order stays
    /// `pending_payment`, to be paid with another card.
    #[error("the payment for order {order} was declined: {reason}; the order stays pending_payment")]
    Declined {
        /// The order whose payment was declined; it stays `pending_payment`.
        order: OrderId,
        /// The gateway's reason, in its words.
        reason: String,
    },
    /// A gateway is down, slow, its answer could not be read, or its
    /// breaker is open; the order is kept and the call queued under the
    /// same idempotency key.
    #[error("{}", unavailable_message(*.order, *.kept, .reason))]
    Unavailable {
        /// The order that was kept.
        order: OrderId,
        /// What waits for the gateway.
        kept: Kept,
        /// What the gateway (or its breaker) said.
        reason: String,
        /// The gateway's circuit breaker refused the call: a reset lets
        /// calls through before its time is up.
        breaker_open: bool,
    },
    /// A gateway took the money (approved the payment, paid the rider),
    /// and then the command failed: recording the answer, or writing the
    /// result. Do not pay again: if the answer is not recorded, the claim on
    /// the call lapses and [`crate::Engine::relay`] replays its key and
    /// records it.
    #[error("order {order}: the {what} went through at the gateway and the money is taken, but {}; do not pay again: a relay records the {what} if it is not recorded yet (once the claim on the call lapses: `[retry] lease_ms`, a minute unless set)", failed_after(source))]
    MoneyMoved {
        /// The order whose money moved: look at it before paying again.
        order: OrderId,
        /// A payment or a delivery charge.
        what: crate::domain::Billing,
        /// Why recording failed.
        source: Box<Error>,
    },
    /// The storage failed; the underlying error, when there is one, is its
    /// [`std::error::Error::source`].
    #[error("storage failed: {0}")]
    Storage(#[source] StorageError),
    /// Anything else that should not happen.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The stable machine-readable kind ([`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::InvalidInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Refused(_) => ErrorKind::InvalidState,
            Error::Declined { .. } => ErrorKind::Declined,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::MoneyMoved { .. } => ErrorKind::MoneyMoved,
            Error::Storage(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The order the error is about, when it is about one that must be
    /// looked at (money moved, a payment declined, a payment or charge
    /// kept for a gateway that is unavailable).
    pub fn order(&self) -> Option<OrderId> {
        match self {
            Error::MoneyMoved { order, .. } | Error::Declined { order, .. } | Error::Unavailable { order, .. } => {
                Some(*order)
            }
            _ => None,
        }
    }

    /// A storage failure of the storage's own making.
    pub fn storage(message: impl Into<String>) -> Error {
        Error::Storage(StorageError::new(message))
    }

    /// A storage failure caused by `source` (kept, for callers and logs that
    /// walk the chain), described by `message`.
    pub fn storage_caused(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Storage(StorageError::caused_by(message, source))
    }

    /// A missing record: `what` and the id or name asked for.
    pub fn not_found(what: Record, id: impl ToString) -> Error {
        // a name typed by someone: shown escaped and shortened
        Error::NotFound { what, id: crate::domain::validate::shown(&id.to_string()), store: None }
    }
}

/// The stable machine-readable kind of an [`Error`], as `--json` prints it
/// (`"kind": "not_found"`): what the caller should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `invalid_input`: a value is wrong whatever the state.
    InvalidInput,
    /// `not_found`: no such record.
    NotFound,
    /// `invalid_state`: the state machine refuses the move.
    InvalidState,
    /// `declined`: the payment gateway declined the payment.
    Declined,
    /// `unavailable`: a gateway is down; the work is kept and queued.
    Unavailable,
    /// `money_moved`: the money is taken but the command failed.
    MoneyMoved,
    /// `internal`: the storage failed, or something that should not happen.
    Internal,
}

status_strings!(ErrorKind {
    InvalidInput => "invalid_input",
    NotFound => "not_found",
    InvalidState => "invalid_state",
    Declined => "declined",
    Unavailable => "unavailable",
    MoneyMoved => "money_moved",
    Internal => "internal",
});

/// What failed in the storage ([`Error::Storage`]): a message, and the
/// error of the layer below (SQLite's, the file system's) when there is one.
/// It reads as its message (`Deref<Target = str>`).
#[derive(Debug)]
pub struct StorageError {
    message: String,
    problem: StorageProblem,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of storage failure it is, as far as the caller can do
/// something about it (a program tells its user what to do next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageProblem {
    /// The database, its folder or its file system cannot be read or
    /// written for want of permission.
    Access,
    /// The database was opened read-only and the unit of work writes.
    ReadOnly,
    /// The database cannot be reached (a server down, a wrong address).
    Unreachable,
    /// The disk that holds the database is full (nothing was written).
    Full,
    /// The database file is damaged: not what SQLite wrote, or cut short.
    Damaged,
    /// Another connection held the database longer than the busy timeout
    /// ([`crate::adapters::sqlite::BUSY_TIMEOUT`]): a long unit of work
    /// elsewhere, such as a projection rebuild (nothing was written).
    Busy,
    /// The operating system failed a read or a write of the database's
    /// files: a disk full (as it shows while SQLite grows its WAL or
    /// shared-memory file), over a quota or a file-size limit, or failing.
    Io,
    /// Anything else: a bug, a failing disk.
    #[default]
    Other,
}

impl StorageError {
    /// A failure of the storage's own making, with no error below it.
    pub fn new(message: impl Into<String>) -> StorageError {
        StorageError { message: message.into(), problem: StorageProblem::Other, source: None }
    }

    /// A failure caused by `source`, described by `message`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StorageError {
        StorageError { message: message.into(), problem: StorageProblem::Other, source: Some(Box::new(source)) }
    }

    /// The same failure, of kind `problem`.
    pub fn because(self, problem: StorageProblem) -> StorageError {
        StorageError { problem, ..self }
    }

    /// What kind of failure it is.
    pub fn problem(&self) -> StorageProblem {
        self.problem
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl std::ops::Deref for StorageError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

/// The kinds of record a look-up may not find ([`Error::NotFound`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Record {
    /// A store.
    Store,
    /// A menu item.
    Menu,
    /// A rider.
    Rider,
    /// An order.
    Order,
    /// A circuit breaker.
    Breaker,
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Record::Store => "store",
            Record::Menu => "menu",
            Record::Rider => "rider",
            Record::Order => "order",
            Record::Breaker => "breaker",
        })
    }
}

/// What failed after the money moved ([`Error::MoneyMoved`]): the storage
/// failing is the recording of it; anything else says what it was (the
/// CLI's result that could not be printed, say).
fn failed_after(source: &Error) -> String {
    match source {
        Error::Storage(_) => format!("recording it failed ({source})"),
        other => other.to_string(),
    }
}

/// What an [`Error::Unavailable`] kept, waiting for the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The order, `pending_payment`, with its payment queued.
    Payment,
    /// The order, `pending_payment`, with its payment parked as
    /// `needs_attention`: its answers could not be read too many times.
    PaymentNeedsAttention,
    /// The order, `cooked`, with the rider's delivery charge queued: it
    /// departs once the charge is paid.
    Charge,
}

fn unavailable_message(order: OrderId, kept: Kept, reason: &str) -> String {
    match kept {
        Kept::Payment => format!(
            "the payment service is unavailable or its answer could not be read ({reason}); order {order} is kept as \
             pending_payment and is paid when the service is back, retried under the same idempotency key, so it is \
             charged once"
        ),
        Kept::PaymentNeedsAttention => format!(
            "the payment service's answers could not be read ({reason}); the payment of order {order} needs attention"
        ),
        Kept::Charge => format!(
            "the delivery-charge service is unavailable or its answer could not be read ({reason}); order {order} \
             stays cooked and departs once the rider's charge is paid"
        ),
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {self}", self.kind())
    }
}

impl From<DomainError> for Error {
    fn from(e: DomainError) -> Error {
        match e {
            DomainError::Invalid(e) => Error::Invalid(e),
            DomainError::Refused(e) => Error::Refused(e),
        }
    }
}

/// Results of the library. The error type defaults to [`Error`] and can be
/// given, so importing this alias does not hide std's two-parameter form:
/// `Result<(), String>` still means what it says.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_reads_like_the_message_with_its_kind() {
        let e = Error::not_found(Record::Order, 7);
        assert_eq!(format!("{e:?}"), "not_found: order 7 does not exist");
        let e = Error::Invalid(Invalid("a card number has 12 to 19 digits".into()));
        assert_eq!(format!("{e:?}"), "invalid_input: a card number has 12 to 19 digits");
    }
}
