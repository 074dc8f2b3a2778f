//! A map keyed by record ids, for the tables whose ids the engine hands out
//! one after another from 1 (orders, payments, charges, and an order's
//! view, kitchen ticket and delivery).
//!
//! Such ids index a vector: slot `i` holds id `i + 1`. A lookup is an
//! index, not a hash and a probe; a table of a million orders touches only
//! the memory its records take, where a hash table touches every page of
//! its buckets, empty ones included, and rehashes all of it as it grows
//! (on this machine a fresh page costs 1.4–3.7 µs to fault in,
//! BENCHMARKS.md). An id that does not follow on from the others (below 1,
//! or far past the last, such as a record copied in with its own id) goes
//! to a small hash map on the side, so no id can make the vector huge.

use std::collections::HashMap;

/// How far past the last slot an id may be and still get a slot of its own
/// (the slots between are left empty): ids a rolled-back unit of work used
/// up leave such gaps.
const MAX_GAP: usize = 64;

/// Records by id; see the module's documentation.
pub(super) struct DenseMap<V> {
    /// Slot `i` holds the record with id `i + 1`; never ends with `None`.
    slots: Vec<Option<V>>,
    /// Records whose ids had no slot when they were put.
    sparse: HashMap<i64, V, foldhash::fast::RandomState>,
    /// How many slots are `Some`.
    in_slots: usize,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap { slots: Vec::new(), sparse: HashMap::default(), in_slots: 0 }
    }
}

impl<V> DenseMap<V> {
    /// The slot of `id`, if it has one within the vector.
    fn index(&self, id: i64) -> Option<usize> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        (index < self.slots.len()).then_some(index)
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.in_slots + self.sparse.len()
    }

    /// The record with id `id`.
    pub fn get(&self, id: &i64) -> Option<&V> {
        match self.index(*id).and_then(|i| self.slots[i].as_ref()) {
            Some(v) => Some(v),
            None if self.sparse.is_empty() => None,
            None => self.sparse.get(id),
        }
    }

    /// The record with id `id`, to change in place.
    pub fn get_mut(&mut self, id: &i64) -> Option<&mut V> {
        match self.index(*id) {
            Some(i) if self.slots[i].is_some() => self.slots[i].as_mut(),
            _ => self.sparse.get_mut(id),
        }
    }

    /// Whether the record with id `id` is kept aside, not in a slot.
    #[cfg(test)]
    pub fn is_aside(&self, id: i64) -> bool {
        self.sparse.contains_key(&id)
    }

    /// Whether there is a record with id `id`.
    pub fn contains_key(&self, id: &i64) -> bool {
        self.get(id).is_some()
    }

    /// Puts `value` under `id`; returns the record that was there.
    pub fn insert(&mut self, id: i64, value: V) -> Option<V> {
        if !self.sparse.is_empty() {
            if let Some(slot) = self.sparse.get_mut(&id) {
                return Some(std::mem::replace(slot, value));
            }
        }
        if let Some(i) = self.index(id) {
            let old = self.slots[i].replace(value);
            self.in_slots += usize::from(old.is_none());
            return old;
        }
        match id.checked_sub(1).and_then(|i| usize::try_from(i).ok()) {
            Some(index) if index - self.slots.len() <= MAX_GAP => {
                self.slots.resize_with(index, || None);
                self.slots.push(Some(value));
                self.in_slots += 1;
                None
            }
            _ => self.sparse.insert(id, value),
        }
    }

    /// Takes the record with id `id` out; returns it.
    pub fn remove(&mut self, id: &i64) -> Option<V> {
        let Some(i) = self.index(*id).filter(|&i| self.slots[i].is_some()) else {
            return self.sparse.remove(id);
        };
        let old = self.slots[i].take();
        self.in_slots -= 1;
        // A rolled-back insert is the last slot: give it back, so that the
        // vector never ends with an empty slot.
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        old
    }

    /// Puts `value` under `id`, or removes `id` when `None`; returns what
    /// was there.
    pub fn swap(&mut self, id: i64, value: Option<V>) -> Option<V> {
        match value {
            Some(v) => self.insert(id, v),
            None => self.remove(&id),
        }
    }

    /// Every (id, record), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &V)> {
        let slotted = self.slots.iter().zip(1..).filter_map(|(v, id)| Some((id, v.as_ref()?)));
        slotted.chain(self.sparse.iter().map(|(id, v)| (*id, v)))
    }

    /// Every record, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}

/// Equal when they hold the same records, however they are laid out.
impl<V: PartialEq> PartialEq for DenseMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(id, v)| other.get(&id) == Some(v))
    }
}

impl<V: Clone> Clone for DenseMap<V> {
    fn clone(&self) -> Self {
        DenseMap { slots: self.slots.clone(), sparse: self.sparse.clone(), in_slots: self.in_slots }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for DenseMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut entries: Vec<(i64, &V)> = self.iter().collect();
        entries.sort_by_key(|(id, _)| *id);
        f.debug_map().entries(entries).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ids_in_sequence_take_slots_and_others_go_aside() {
        let mut map = DenseMap::default();
        for id in 1..=5 {
            assert_eq!(map.insert(id, id * 10), None);
        }
        assert_eq!(map.insert(0, 0), None);
        assert_eq!(map.insert(-3, -30), None);
        assert_eq!(map.insert(1_000_000, 7), None);
        assert_eq!(map.slots.len(), 5, "only the ids in sequence have slots");
        assert_eq!(map.len(), 8);
        assert_eq!(map.get(&3), Some(&30));
        assert_eq!(map.get(&-3), Some(&-30));
        assert_eq!(map.get(&1_000_000), Some(&7));
        assert_eq!(map.get(&6), None);
        assert_eq!(map.get(&i64::MIN), None);
        assert_eq!(map.get(&i64::MAX), None);
    }

    #[test]
    fn an_id_put_aside_stays_found_once_the_slots_reach_it() {
        let mut map = DenseMap::default();
        map.insert(100, "aside");
        for id in 1..=99 {
            map.insert(id, "slot");
        }
        assert_eq!(map.insert(100, "again"), Some("aside"));
        assert_eq!(map.len(), 100);
        assert_eq!(map.remove(&100), Some("again"));
        assert!(!map.contains_key(&100));
        assert_eq!(map.len(), 99);
    }

    #[test]
    fn a_small_gap_is_left_empty_and_removing_the_last_trims_it() {
        let mut map = DenseMap::default();
        map.insert(1, 'a');
        map.insert(4, 'd');
        assert_eq!(map.slots.len(), 4);
        assert_eq!(map.len(), 2);
        assert_eq!(map.remove(&4), Some('d'));
        assert_eq!(map.slots.len(), 1, "no trailing empty slots");
        assert_eq!(map.remove(&4), None);
        assert_eq!(map.len(), 1);
    }

    /// Against a `BTreeMap` doing the same, over ids in and out of sequence.
    #[test]
    fn it_agrees_with_an_ordered_map() {
        let mut map = DenseMap::default();
        let mut model = BTreeMap::new();
        // A fixed, well-mixed walk: no randomness needed to reach every case.
        let mut x: i64 = 7;
        for step in 0..5_000i64 {
            x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
            let id = match x % 7 {
                0 => -(x % 5),
                1 => x % 300 + 200,
                _ => x % 120 + 1,
            };
            if x % 3 == 0 {
                assert_eq!(map.remove(&id), model.remove(&id), "step {step}: remove {id}");
            } else {
                assert_eq!(map.insert(id, step), model.insert(id, step), "step {step}: insert {id}");
            }
            assert_eq!(map.len(), model.len());
            assert!(!matches!(map.slots.last(), Some(None)));
        }
        let mut all: Vec<(i64, i64)> = map.iter().map(|(id, v)| (id, *v)).collect();
        all.sort();
        assert_eq!(all, model.into_iter().collect::<Vec<_>>());
    }
}
