//! SQLite's errors as storage errors, with the problem their code tells, so
//! that a caller can say what to do next (free space, restore a backup).

use rusqlite::ErrorCode;

use crate::{Error, StorageError, StorageProblem};

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        sqlite_failure(e.to_string(), e)
    }
}

/// A SQLite failure described by `message`, with the problem its code
/// tells ([`problem_of`]).
pub(super) fn sqlite_failure(message: String, e: rusqlite::Error) -> Error {
    let problem = problem_of(&e);
    Error::Storage(StorageError::caused_by(message, e).because(problem))
}

/// What a caller can do about a SQLite error: a full disk, a damaged file,
/// a database held by another process and a failing disk each have their
/// remedy. Access is told apart where a file is
/// opened, where it is known to be the file's (`Failed::sqlite`).
pub(super) fn problem_of(e: &rusqlite::Error) -> StorageProblem {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StorageProblem::Full,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StorageProblem::Damaged,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StorageProblem::Busy,
        Some(ErrorCode::SystemIoFailure) => StorageProblem::Io,
        _ => StorageProblem::Other,
    }
}
