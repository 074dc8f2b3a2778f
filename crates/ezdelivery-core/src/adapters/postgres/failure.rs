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
        text.push_str(rights_hint(db.code(), db.message()));
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

/// What to grant, for a user refused a table or a sequence: the server
/// names the object, not the rights ezdelivery needs. (A user who may not
/// create the tables is told so by the schema's migration.)
fn rights_hint(code: &SqlState, message: &str) -> &'static str {
    let on_rows = ["permission denied for table", "permission denied for sequence"];
    if *code == SqlState::INSUFFICIENT_PRIVILEGE && on_rows.iter().any(|m| message.starts_with(m)) {
        "; ezdelivery's user must read and write all of its tables and sequences: GRANT SELECT, INSERT, UPDATE, \
         DELETE ON ALL TABLES IN SCHEMA public TO the user, and GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN \
         SCHEMA public TO the user (as the user that created them)"
    } else {
        ""
    }
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
