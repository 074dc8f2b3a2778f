//! An index from text ids to positions in a vector ([`TextIndex`]): the
//! memory adapter's from a message's id to its place in the outbox.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// Text ids → positions (`usize` keys into a vector the caller keeps),
/// indexed by a 64-bit hash of the id instead of the id itself.
///
/// A map of the ids themselves kept a copy of each id, and each time it
/// grew it read every id again to hash it: with seven 40-odd-byte message
/// ids a lifecycle, that was a fifth of an in-memory lifecycle's time
/// (BENCHMARKS.md, "Shared texts and item lists"). Here a lookup hashes
/// the id once and checks the one candidate against the caller's vector.
/// Two ids with the same hash (possible, never yet seen) keep the later
/// one under its id in `clashes`.
#[derive(Default)]
#[cfg_attr(test, derive(Clone, Debug, PartialEq))]
pub(super) struct TextIndex {
    by_hash: HashMap<u64, usize, foldhash::fast::RandomState>,
    clashes: HashMap<String, usize>,
}

impl TextIndex {
    /// The position of `id`, given the id at each position.
    pub(super) fn get<'a>(&self, id: &str, id_at: impl Fn(usize) -> Option<&'a str>) -> Option<usize> {
        match self.by_hash.get(&hash(id)) {
            Some(&key) if id_at(key) == Some(id) => Some(key),
            // `clashes` is empty but for a hash two ids share.
            _ => self.clashes.get(id).copied(),
        }
    }

    /// Records `id` at `key`, unless `id` is there already (given the id at
    /// each position): then `Err` with its key, and nothing changes. One
    /// hash and one probe both check and record, as queuing a message
    /// does for each one (a `get` and then an insert took two).
    pub(super) fn insert_new<'a>(
        &mut self,
        id: &str,
        key: usize,
        id_at: impl Fn(usize) -> Option<&'a str>,
    ) -> Result<(), usize> {
        let found = self.by_hash.entry(hash(id));
        if let Entry::Occupied(slot) = &found {
            if id_at(*slot.get()) == Some(id) {
                return Err(*slot.get());
            }
        }
        // The hash is another id's, or free: `id` can only be a clash.
        if let Some(&there) = self.clashes.get(id) {
            return Err(there);
        }
        match found {
            Entry::Vacant(slot) => {
                slot.insert(key);
            }
            Entry::Occupied(_) => {
                self.clashes.insert(id.to_string(), key);
            }
        }
        Ok(())
    }

    /// Forgets `id`, which is at `key`.
    pub(super) fn remove(&mut self, id: &str, key: usize) {
        if self.clashes.remove(id).is_none() {
            if let Entry::Occupied(slot) = self.by_hash.entry(hash(id)) {
                if *slot.get() == key {
                    slot.remove();
                }
            }
        }
    }
}

/// One fixed hash for every index: ids are made by engines, not chosen by
/// users, so a per-process random seed would buy nothing, and two equal
/// indexes compare equal (the adapter's tests compare whole states).
fn hash(id: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x6d65_7373_6167_6573).hash_one(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index whose ids all share one hash, to reach the clash path.
    fn clashing(ids: &[&str]) -> TextIndex {
        let mut index = TextIndex::default();
        for (key, id) in ids.iter().enumerate() {
            // Put every id but the first aside as a clash, as two ids of the
            // same hash would be.
            if key == 0 {
                index.by_hash.insert(hash(id), key);
            } else {
                index.clashes.insert(id.to_string(), key);
            }
        }
        index
    }

    #[test]
    fn ids_are_found_at_their_keys_and_forgotten() {
        let ids = ["e1:customer", "e1:owner", "e2:customer"];
        let id_at = |k: usize| ids.get(k).copied();
        let mut index = TextIndex::default();
        for (key, id) in ids.iter().enumerate() {
            assert_eq!(index.insert_new(id, key, id_at), Ok(()));
        }
        // Once there, an id keeps its key.
        let before = index.clone();
        assert_eq!(index.insert_new("e1:owner", 7, id_at), Err(1));
        assert_eq!(index, before);
        assert_eq!(ids.map(|id| index.get(id, id_at)), [Some(0), Some(1), Some(2)]);
        assert_eq!(index.get("e3:customer", id_at), None);
        index.remove("e2:customer", 2);
        assert_eq!(index.get("e2:customer", id_at), None);
        assert_eq!(index.get("e1:owner", id_at), Some(1));
    }

    #[test]
    fn an_id_whose_hash_is_taken_is_found_by_its_id() {
        let ids = ["a", "b", "c"];
        let id_at = |k: usize| ids.get(k).copied();
        let mut index = clashing(&ids);
        assert_eq!(ids.map(|id| index.get(id, id_at)), [Some(0), Some(1), Some(2)]);
        // The hash's holder and a clash are each forgotten alone.
        index.remove("c", 2);
        assert_eq!((index.get("c", id_at), index.get("a", id_at)), (None, Some(0)));
        index.remove("a", 0);
        assert_eq!((index.get("a", id_at), index.get("b", id_at)), (None, Some(1)));
    }

    #[test]
    fn a_second_id_with_a_taken_hash_goes_to_the_clashes() {
        let ids = ["x", "y"];
        let id_at = |k: usize| ids.get(k).copied();
        let mut index = TextIndex::default();
        assert_eq!(index.insert_new("x", 0, id_at), Ok(()));
        // y's hash taken (by x's key), as a clash would find it.
        index.by_hash.insert(hash("y"), 0);
        assert_eq!(index.insert_new("y", 1, id_at), Ok(()));
        assert_eq!(index.clashes.get("y"), Some(&1));
        assert_eq!(index.get("y", id_at), Some(1));
        // Queued again, a clash is found and kept where it is, with or
        // without the hash's holder.
        assert_eq!(index.insert_new("y", 5, id_at), Err(1));
        index.by_hash.remove(&hash("y"));
        assert_eq!(index.insert_new("y", 5, id_at), Err(1));
        assert_eq!(index.clashes.get("y"), Some(&1));
    }
}
