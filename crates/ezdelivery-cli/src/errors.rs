//! The one place where a library error becomes what the program says: the
//! library's message (what happened), the command to run next (the
//! library knows no commands), and the exit code.

use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::domain::{Billing, BreakerName, OrderStatus, Refusal, Standing};
use ezdelivery_core::{Error, Kept, Record, StorageProblem};

/// The exit code of `error` (the README's table): 1 internal, 2 invalid
/// input, 3 not found, 4 invalid state, 5 declined, 6 unavailable, 7 money
/// moved but the command failed.
pub fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Storage(_) | Error::Internal(_) => 1,
        Error::Invalid(_) => 2,
        Error::NotFound { .. } => 3,
        Error::Refused(_) => 4,
        Error::Declined { .. } => 5,
        Error::Unavailable { .. } => 6,
        Error::MoneyMoved { .. } => 7,
    }
}

/// What the program says of `error`: the library's message, then what to
/// run next, when there is something.
pub fn message(error: &Error) -> String {
    match next_step(error) {
        Some((joint, next)) => format!("{error}{joint}{next}"),
        None => error.to_string(),
    }
}

/// The command to run next, and how it joins the library's message.
fn next_step(error: &Error) -> Option<(&'static str, String)> {
    let step = match error {
        Error::NotFound { what, store, .. } => match (what, store) {
            (Record::Menu, Some(store)) => format!("`ezdelivery menu list --store {store}` shows its menus"),
            (Record::Menu, None) => "`ezdelivery menu list` shows the menus".into(),
            (Record::Store, _) => "`ezdelivery store list` shows the stores".into(),
            (Record::Rider, _) => {
                "`ezdelivery rider list` shows the riders, `ezdelivery rider add --name NAME` registers one".into()
            }
            (Record::Order, _) => "`ezdelivery status --customer NAME` lists a customer's orders".into(),
            (Record::Breaker, _) => "`ezdelivery breaker` lists them".into(),
        },
        Error::Refused(refusal) => return refused(refusal),
        Error::Declined { order, .. } => format!("pay again with another card: `ezdelivery pay {order} --card NUMBER`"),
        Error::Unavailable { order, kept, breaker_open, .. } => {
            let next = match kept {
                Kept::Payment => "`ezdelivery relay` retries it".to_string(),
                Kept::PaymentNeedsAttention => "`ezdelivery relay --attention` lists it".to_string(),
                Kept::Charge => {
                    format!("`ezdelivery relay` retries it, or run `ezdelivery deliver start {order}` again later")
                }
            };
            if *breaker_open {
                let breaker = if *kept == Kept::Charge { BreakerName::Charge } else { BreakerName::Payment };
                format!("{next} (`ezdelivery breaker reset {breaker}` lets calls through at once)")
            } else {
                next
            }
        }
        Error::MoneyMoved { order, .. } => {
            format!("`ezdelivery status {order}` shows the order, and `ezdelivery relay` is that relay")
        }
        Error::Storage(failure) => match failure.problem() {
            StorageProblem::Access => "or use another database with --db PATH or EZDELIVERY_DB".into(),
            StorageProblem::ReadOnly => {
                return Some((": ", "make it writable, or copy it somewhere writable and use --db PATH".into()))
            }
            // The storage's message says what to check of the server.
            StorageProblem::Unreachable => "check the --db URL (or EZDELIVERY_DB)".into(),
            StorageProblem::Full => "free space on the disk that holds the database, then try again".into(),
            StorageProblem::Damaged => "the database file is damaged: restore it from a backup (`ezdelivery db \
                                        copy` makes one), or save what SQLite can read with `sqlite3 FILE .recover`"
                .into(),
            StorageProblem::Busy => "another process held the database for over 10 s (a `projection rebuild`, say): \
                                     try again once it is done"
                .into(),
            StorageProblem::Io => "check that the disk that holds the database has free space (and is not over a \
                                   quota or a file-size limit) and works, then try again"
                .into(),
            StorageProblem::Other => return None,
        },
        Error::Invalid(_) | Error::Internal(_) => return None,
    };
    Some(("; ", step))
}

/// `db copy` to or from `postgres://…` while this build has no PostgreSQL
/// storage: the same refusal as `--db postgres://…` (exit 2). `url` is
/// shown with its password redacted.
#[cfg(not(feature = "postgres"))]
pub fn postgres_not_supported(url: &str) -> Error {
    Error::Invalid(Invalid(format!(
        "this ezdelivery was built without PostgreSQL (the `postgres` feature): {url} cannot be copied to or from; \
         pass --to PATH, or use a build with it"
    )))
}

/// `db copy` from a `--db` that holds no database.
pub fn copy_without_source(db: &std::path::Path) -> Error {
    Error::Invalid(Invalid(format!(
        "there is no database at {} to copy: point --db (or EZDELIVERY_DB) at the database to copy",
        db.display()
    )))
}

/// `db copy --to` the `--db` database itself (`db` as shown: a path, or a
/// URL without its password).
pub fn copy_into_itself(db: &str) -> Error {
    Error::Invalid(Invalid(format!(
        "--to names the database being copied ({db}): pass --to a new file or an empty PostgreSQL database"
    )))
}

/// `db copy --to` a database that holds rows: `holds` says which;
/// `postgres` when it is a PostgreSQL database (else a file).
pub fn copy_into_non_empty(target: &str, holds: &str, postgres: bool) -> Error {
    let instead = if postgres {
        "pass --to an empty PostgreSQL database (CREATE DATABASE gives one)"
    } else {
        "pass --to a new file (one that does not exist yet is created)"
    };
    Error::Invalid(Invalid(format!(
        "the target of a copy must be empty, and {target} holds {holds}; it is left untouched: {instead}"
    )))
}

/// What to run after the state machine said no.
fn refused(refusal: &Refusal) -> Option<(&'static str, String)> {
    let step = match refusal {
        Refusal::StoreClosed { store } => format!("`ezdelivery store open {store}` opens it"),
        Refusal::MenuSoldOut { menu, .. } => format!("`ezdelivery menu available {menu}` offers it again"),
        Refusal::NotPaid { order, .. } => format!("pay it with `ezdelivery pay {order}`"),
        Refusal::FoodNotCooked { order, .. } => format!("run `ezdelivery cook finish {order}` first"),
        Refusal::ChargeNotPaid { .. } => "`ezdelivery relay` retries it".into(),
        Refusal::NoRider { order } => format!("name one with `ezdelivery deliver start {order} --rider RIDER`"),
        Refusal::PaymentInDoubt { order, .. } => format!(
            "`ezdelivery relay` settles it (run `ezdelivery pay {order}` to retry that card now); if it is \
             declined, pay again with another card"
        ),
        Refusal::GatewayBusy { order, .. } => format!("`ezdelivery status {order}` shows how it ends"),
        Refusal::OtherGateway { what, .. } => format!(
            "run it with the --config whose [{}] section reaches that gateway",
            if *what == Billing::Payment { "payment" } else { "charge" }
        ),
        Refusal::NeedsAttention { .. } => "`ezdelivery relay --attention` lists it, and `ezdelivery relay \
                                           --retry-attention` tries again once the gateway is fixed"
            .into(),
        Refusal::Transition { order, standing, .. } => return Some((". ", transition_step(*order, *standing))),
        Refusal::AlreadyDeparted { .. } | Refusal::AlreadyReviewed { .. } => return None,
    };
    Some(("; ", step))
}

/// What can be done with an order where it stands (for the order itself),
/// or where to look (for its other parts).
fn transition_step(order: i64, standing: Standing) -> String {
    use OrderStatus as S;
    let Standing::Order(status) = standing else {
        return format!("`ezdelivery status {order}` shows where the order stands");
    };
    match status {
        S::PendingPayment => format!("It is not paid yet: `ezdelivery pay {order}`"),
        S::Paid => format!(
            "Next, the store owner accepts it (`ezdelivery cook start {order}`) or rejects it \
             (`ezdelivery cook reject {order}`)"
        ),
        S::Cooking => format!("Next, when the food is ready: `ezdelivery cook finish {order}`"),
        S::Cooked => format!("Next, the rider departs: `ezdelivery deliver start {order}`"),
        S::Delivering => format!("Next, when the food is handed over: `ezdelivery deliver complete {order}`"),
        S::Delivered => {
            format!("It is finished; the customer can still review it once: `ezdelivery review {order} --score 1..5`")
        }
        S::Cancelled | S::Rejected => "Nothing more can happen to it; to order again, use `ezdelivery order`".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_gets_its_exit_code_and_the_command_to_run_next() {
        let standing = Standing::Order(OrderStatus::Paid);
        let e = Error::Refused(Refusal::Transition { order: 7, standing, action: "depart" });
        assert_eq!(exit_code(&e), 4);
        assert_eq!(
            message(&e),
            "order 7 is paid; it cannot depart. Next, the store owner accepts it (`ezdelivery cook start 7`) \
             or rejects it (`ezdelivery cook reject 7`)"
        );
        let e = Error::not_found(Record::Order, 9);
        assert_eq!(
            (exit_code(&e), message(&e).as_str()),
            (3, "order 9 does not exist; `ezdelivery status --customer NAME` lists a customer's orders")
        );
        let e = Error::Unavailable { order: 4, kept: Kept::Payment, reason: "HTTP 503".into(), breaker_open: true };
        assert_eq!(exit_code(&e), 6);
        let text = message(&e);
        assert!(text.contains("`ezdelivery relay` retries it") && text.contains("breaker reset payment"), "{text}");
        let e = Error::Refused(Refusal::AlreadyReviewed { order: 1 });
        assert_eq!(message(&e), e.to_string(), "nothing to add");
    }
}
