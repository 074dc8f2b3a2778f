//! Application services: the [`engine::Engine`] facade that runs each
//! command as a transaction around the pure domain, the saga that calls the
//! gateways between transactions, the projector and the outbox relay.

pub mod breakers;
pub mod catalogue;
mod command;
pub mod copy;
pub mod engine;
mod event_ids;
pub mod invariants;
pub mod lifecycle;
pub mod messages;
mod nonces;
mod notify;
pub mod projector;
pub mod relay;
pub mod requests;
pub mod retry;
mod saga;
pub mod simulate;
pub mod watch;

/// The instant `within` from now, or a century from now when `within`
/// goes past what the clock counts: a budget or an interval of
/// `Duration::MAX` (an embedder's "no bound") is not a panic.
pub(crate) fn deadline_in(within: std::time::Duration) -> std::time::Instant {
    const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);
    let now = std::time::Instant::now();
    now.checked_add(within).or_else(|| now.checked_add(CENTURY)).unwrap_or(now)
}

/// Runs `f`, a call into code an embedder wrote (a gateway, a notifier),
/// turning its panic into the panic's message: the engine holds claims
/// and leases around such calls, which a panic would leave for their
/// lease to end, and the caller would get the panic for an answer.
pub(crate) fn caught<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let said = panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str));
        said.unwrap_or("(no message)").to_string()
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn a_deadline_past_the_clock_saturates() {
        let before = Instant::now();
        assert!(super::deadline_in(Duration::MAX) > before + Duration::from_secs(86_400));
        let soon = super::deadline_in(Duration::from_millis(5));
        assert!(soon >= before + Duration::from_millis(5));
    }
}
