//! Random-looking numbers for claim tokens and the random part of
//! idempotency keys, without asking the operating system each time.
//!
//! Both must differ from every other one handed out, here and in any other
//! process that shares the database or the gateway: a claim token tells its
//! holder's claim from a later one, and an idempotency key must never be
//! taken by the gateway for another payment's. Neither should be guessable
//! from the ones before it, since keys are seen by the gateway's operator
//! and in the attention list. A `getrandom` call for each (what
//! `uuid::Uuid::new_v4` does) cost about 5 % of an in-memory lifecycle
//! (BENCHMARKS.md, "Shared texts and item lists").

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A keyed hash of a counter: std's SipHash-1-3 under the 128-bit key of a
/// `RandomState` (drawn from the operating system once per thread, and
/// different for every `RandomState`), over a counter that starts at 64
/// more random bits. Without the key, one output says nothing of the next;
/// and two outputs, of this engine or of another with its own key, are
/// equal no more often than two random 64-bit draws are.
pub(crate) struct Nonces {
    key: RandomState,
    counter: AtomicU64,
}

impl Nonces {
    /// A generator with a fresh random key and start.
    pub(crate) fn new() -> Nonces {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        Nonces { key: RandomState::new(), counter: AtomicU64::new(high ^ low) }
    }

    /// The next number. Lock-free: threads sharing the engine each hash a
    /// count of their own.
    pub(crate) fn next(&self) -> u64 {
        self.key.hash_one(self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// A claim token: 128 bits as 32 lowercase hexadecimal digits, the
    /// shape of the `uuid` tokens stored before (and laid out by `uuid`).
    pub(crate) fn token(&self) -> Arc<str> {
        let bits = (u128::from(self.next()) << 64) | u128::from(self.next());
        Arc::from(&*uuid::Uuid::from_u128(bits).simple().encode_lower(&mut uuid::Uuid::encode_buffer()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_do_not_repeat_and_tokens_have_the_uuid_shape() {
        let n = Nonces::new();
        let mut seen = std::collections::HashSet::new();
        assert!((0..100_000).all(|_| seen.insert(n.next())), "a number repeated");
        let token = n.token();
        assert_eq!(token.len(), 32);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{token}");
    }

    #[test]
    fn the_same_count_under_two_keys_gives_two_numbers() {
        let (a, b) = (Nonces::new(), Nonces::new());
        b.counter.store(a.counter.load(Ordering::Relaxed), Ordering::Relaxed);
        assert_ne!(a.next(), b.next(), "the key, not only the start, sets the numbers");
    }
}
