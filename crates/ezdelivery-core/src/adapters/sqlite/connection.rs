//! What every connection of the adapter is set to: how long it waits for
//! a lock, how many statements it keeps prepared.

use std::time::Duration;

/// How long a writer waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many prepared statements each connection keeps (more than the
/// adapter has, so the hot paths never prepare twice).
pub(super) const STATEMENT_CACHE: usize = 128;
