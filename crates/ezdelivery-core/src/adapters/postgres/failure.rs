//! What a PostgreSQL failure means: a message (without a password), a
//! storage error that keeps it as its source, and whether the unit of work
//! is to run again.

use postgres::error::SqlState;

use crate::{Error, StorageProblem};

/// A PostgreSQL error as a message: the server's own words (severity,
/// message, SQLSTATE, detail, hint) for a database error, else the
/// client's with its causes. Never holds a password: neither the server
/// nor the client repeats one.
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A storage error caused by `e`; a server whose disk is full says so
/// ([`StorageProblem::Full`]), so that the caller can say what to do.
pub(crate) fn storage_error(e: postgres::Error) -> Error {
    let full = e.code() == Some(&SqlState::DISK_FULL);
    let problem = if full { StorageProblem::Full } else { StorageProblem::Other };
    Error::Storage(crate::error::StorageError::caused_by(describe(&e), e).because(problem))
}

/// Whether `code` means "another transaction got in the way: run it again".
pub(crate) fn retryable(code: Option<&SqlState>) -> bool {
    matches!(code, Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// Why a unit of work failed, and whether it is to run again.
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) retry: bool,
}
