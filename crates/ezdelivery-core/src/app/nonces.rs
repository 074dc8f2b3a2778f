//! Unique random-looking numbers for claim tokens and the random part of
//! idempotency keys, without asking the operating system each time.
//!
//! Both only need to differ from every other one handed out, here and in
//! any other process that shares the database or the gateway: a claim
//! token tells its holder's claim from a later one, and an idempotency key
//! must never be taken by the gateway for another payment's. A `getrandom`
//! call for each (what `uuid::Uuid::new_v4` does) cost about 5 % of an
//! in-memory lifecycle (BENCHMARKS.md, "In-memory engine beside cqrs-es").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// SplitMix64 (Steele, Lea and Flood, 2014) over a shared counter: the
/// counter starts at 64 bits drawn once from the operating system and steps
/// by an odd constant, so it takes 2^64 steps to come back, and the output
/// mix is a bijection: no two numbers one generator hands out are equal.
/// Two generators (two engines, two processes) start at independent random
/// points, so their numbers meet only by chance, as two random draws do.
pub(crate) struct Nonces {
    state: AtomicU64,
}

/// The golden-ratio step of SplitMix64.
const STEP: u64 = 0x9e37_79b9_7f4a_7c15;

impl Nonces {
    /// A generator with a fresh random start (one `getrandom`).
    pub(crate) fn new() -> Nonces {
        Nonces::starting_at(uuid::Uuid::new_v4().as_u64_pair().0)
    }

    fn starting_at(state: u64) -> Nonces {
        Nonces { state: AtomicU64::new(state) }
    }

    /// The next number. Lock-free: threads sharing the engine each get
    /// their own step of the counter.
    pub(crate) fn next(&self) -> u64 {
        let mut z = self.state.fetch_add(STEP, Ordering::Relaxed).wrapping_add(STEP);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
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
    fn splitmix64_gives_its_published_sequence() {
        // The first outputs for seed 0 of the reference implementation
        // (https://prng.di.unimi.it/splitmix64.c).
        let n = Nonces::starting_at(0);
        assert_eq!(n.next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(n.next(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(n.next(), 0x06c4_5d18_8009_454f);
    }

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
    fn two_generators_start_apart() {
        assert_ne!(Nonces::new().next(), Nonces::new().next());
    }
}
