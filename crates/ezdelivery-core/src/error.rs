//! The library's one error type. The CLI turns it into a message and an
//! exit code in one place (`fail` in `ezdelivery-cli`'s `main.rs`).

use crate::domain::validate::Invalid;
use crate::domain::{DomainError, OrderId, Refusal};

/// Everything that can go wrong, by what the caller should do about it.
///
/// `Debug` prints the kind and the message, as a person reads them: a
/// `main` that returns `Result<(), Error>` ends with
/// `Error: not_found: order 7 does not exist; …`.
#[derive(thiserror::Error)]
pub enum Error {
    /// A value is wrong whatever the state: fix the input (exit 2).
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// No such record (exit 3).
    #[error("{what} {id} does not exist; {hint}")]
    NotFound {
        /// `store`, `menu`, `order`, `rider`.
        what: &'static str,
        /// The id or name that was asked for.
        id: String,
        /// What to do next: where to look instead.
        hint: String,
    },
    /// The state machine refuses the move (exit 4).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The payment gateway declined the payment (exit 5).
    #[error("the payment for order {order} was declined: {reason}; the order stays pending_payment, so pay again with another card: `ezdelivery pay {order} --card NUMBER`")]
    Declined {
        /// The order.
        order: OrderId,
        /// The gateway's reason.
        reason: String,
    },
    /// A gateway is down, slow, or its breaker is open; the work is kept and
    /// queued (exit 6).
    #[error("{0}")]
    Unavailable(String),
    /// A gateway took the money (approved the payment, paid the rider),
    /// and then the command failed (exit 7): recording the answer, or
    /// writing the result. Do not pay again: if the answer is not recorded,
    /// the claim on the call lapses and `relay` replays its key and records it.
    #[error("order {order}: the {what} went through at the gateway and the money is taken, but then the command failed ({source}); do not pay again: `ezdelivery status {order}` shows the order, and `ezdelivery relay` records the {what} if it is not recorded yet (once the claim on the call lapses, within a minute)")]
    MoneyMoved {
        /// The order.
        order: OrderId,
        /// `payment` or `delivery charge`.
        what: &'static str,
        /// Why recording failed.
        source: Box<Error>,
    },
    /// The storage failed (exit 1).
    #[error("storage failed: {0}")]
    Storage(String),
    /// Anything else that should not happen (exit 1).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The stable machine-readable kind (`not_found`), as in the CLI's exit-code table.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_input",
            Error::NotFound { .. } => "not_found",
            Error::Refused(_) => "invalid_state",
            Error::Declined { .. } => "declined",
            Error::Unavailable(_) => "unavailable",
            Error::MoneyMoved { .. } => "money_moved",
            Error::Storage(_) | Error::Internal(_) => "internal",
        }
    }

    /// The order the error is about, when it is about one that must be
    /// looked at (money moved, a payment declined).
    pub fn order(&self) -> Option<OrderId> {
        match self {
            Error::MoneyMoved { order, .. } | Error::Declined { order, .. } => Some(*order),
            _ => None,
        }
    }

    /// The CLI's exit code for this error (1 to 7).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Storage(_) | Error::Internal(_) => 1,
            Error::Invalid(_) => 2,
            Error::NotFound { .. } => 3,
            Error::Refused(_) => 4,
            Error::Declined { .. } => 5,
            Error::Unavailable(_) => 6,
            Error::MoneyMoved { .. } => 7,
        }
    }

    /// A missing record, with a hint of the command that lists them.
    pub fn not_found(what: &'static str, id: impl ToString) -> Error {
        let hint = match what {
            "store" => "`ezdelivery store list` shows the stores",
            "menu" => "`ezdelivery menu list` shows the menus",
            "rider" => "`ezdelivery rider list` shows the riders, `ezdelivery rider add --name NAME` registers one",
            "order" => "`ezdelivery status --customer NAME` lists a customer's orders",
            _ => "check the id",
        };
        // a name typed by someone: shown escaped and shortened
        Error::NotFound { what, id: crate::domain::validate::shown(&id.to_string()), hint: hint.to_string() }
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
        let e = Error::not_found("order", 7);
        assert_eq!(
            format!("{e:?}"),
            "not_found: order 7 does not exist; `ezdelivery status --customer NAME` lists a customer's orders"
        );
        let e = Error::Invalid(Invalid("a card number has 12 to 19 digits".into()));
        assert_eq!(format!("{e:?}"), "invalid_input: a card number has 12 to 19 digits");
    }
}
