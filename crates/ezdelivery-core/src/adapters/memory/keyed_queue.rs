//! A queue of records in the order they came, each found by its key: the
//! outbox's messages, found by [`Message::key`](crate::ports::Message::key).
//!
//! The engine queues an event's messages as it appends the event, and a
//! message's key grows with its event's number: keys nearly always come in
//! ascending order. While they do, the queue itself is sorted by key and a
//! key's place is found by a binary search; no index is kept. The hash map
//! this replaces took a heap block's share and a random cache line for
//! every message, on every command (the table of a few hundred thousand
//! messages is larger than the caches). A new key that comes below the
//! last one (a message queued by hand, or copied from another database in
//! another order) switches the queue to a map of every key's place, for
//! as long as it lives; a key already there is refused either way.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// A record with a key of its own.
pub(super) trait Keyed {
    /// Its key: unique within a queue.
    fn key(&self) -> i64;
}

/// Records in the order they came; see the module's documentation.
#[cfg_attr(test, derive(Clone, Debug))]
pub(super) struct KeyedQueue<T> {
    records: Vec<T>,
    /// `None` while the keys ascend; then every key's place.
    places: Option<HashMap<i64, usize, foldhash::fast::RandomState>>,
}

impl<T> Default for KeyedQueue<T> {
    fn default() -> Self {
        KeyedQueue { records: Vec::new(), places: None }
    }
}

/// Two are equal when they hold the same records in the same order: how
/// they find them is not part of what is kept.
#[cfg(test)]
impl<T: PartialEq> PartialEq for KeyedQueue<T> {
    fn eq(&self, other: &KeyedQueue<T>) -> bool {
        self.records == other.records
    }
}

impl<T: Keyed> KeyedQueue<T> {
    /// How many records there are.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The record at `place`.
    pub fn get(&self, place: usize) -> Option<&T> {
        self.records.get(place)
    }

    /// The records, in the order they came.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.records.iter()
    }

    /// The place of the record keyed `key`.
    pub fn place(&self, key: i64) -> Option<usize> {
        match &self.places {
            Some(places) => places.get(&key).copied(),
            // A new message's key is above the last: no search, which
            // would touch a cold cache line at each of its steps.
            None if self.records.last().is_none_or(|last| last.key() < key) => None,
            None => self.records.binary_search_by_key(&key, T::key).ok(),
        }
    }

    /// Appends `record` unless one with its key is there; its place, or
    /// `None` when the key was taken.
    pub fn push(&mut self, record: T) -> Option<usize> {
        let (key, at) = (record.key(), self.records.len());
        match &mut self.places {
            Some(places) => match places.entry(key) {
                Entry::Occupied(_) => return None,
                Entry::Vacant(slot) => {
                    slot.insert(at);
                }
            },
            None if self.records.last().is_some_and(|last| last.key() >= key) => {
                if self.place(key).is_some() {
                    return None;
                }
                let mut places: HashMap<i64, usize, _> =
                    self.records.iter().enumerate().map(|(place, r)| (r.key(), place)).collect();
                places.insert(key, at);
                self.places = Some(places);
            }
            None => {}
        }
        self.records.push(record);
        Some(at)
    }

    /// Takes the newest record back (a rolled-back write's).
    pub fn pop(&mut self) -> Option<T> {
        let record = self.records.pop()?;
        if let Some(places) = &mut self.places {
            places.remove(&record.key());
        }
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Record(i64, u32);

    impl Keyed for Record {
        fn key(&self) -> i64 {
            self.0
        }
    }

    /// Checks every key against a plain map of what was pushed.
    fn agrees(queue: &KeyedQueue<Record>, model: &BTreeMap<i64, usize>) {
        assert_eq!(queue.len(), model.len());
        for (key, place) in model {
            assert_eq!(queue.place(*key), Some(*place), "key {key}");
            assert_eq!(queue.get(*place).map(|r| r.0), Some(*key));
        }
        for absent in [i64::MIN, -1, 0, 2, 1_000_001, i64::MAX] {
            assert_eq!(queue.place(absent).is_some(), model.contains_key(&absent), "key {absent}");
        }
    }

    #[test]
    fn ascending_keys_need_no_map_and_a_taken_key_is_refused() {
        let mut queue = KeyedQueue::default();
        let mut model = BTreeMap::new();
        for (n, key) in [4, 5, 9, 12, 13, 400].into_iter().enumerate() {
            assert_eq!(queue.push(Record(key, 0)), Some(n));
            model.insert(key, n);
        }
        assert!(queue.places.is_none(), "ascending keys are found by search");
        assert_eq!(queue.push(Record(9, 1)), None, "a key taken is refused");
        assert_eq!(queue.push(Record(400, 1)), None, "so is the last key");
        assert!(queue.places.is_none(), "a refused key changes nothing");
        agrees(&queue, &model);
        assert_eq!(queue.pop(), Some(Record(400, 0)));
        model.remove(&400);
        agrees(&queue, &model);
        assert_eq!(queue.push(Record(400, 2)), Some(5), "a popped key is free again");
    }

    #[test]
    fn any_order_of_keys_is_found_as_a_map_would_find_it() {
        // A fixed walk of keys up and down, with repeats and pops.
        let mut queue: KeyedQueue<Record> = KeyedQueue::default();
        let mut model = BTreeMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..2_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly ascending, as the engine queues, sometimes not.
            let key = if x % 10 < 8 { i64::from(step) * 4 } else { (x % 9_000) as i64 - 500 };
            if x.is_multiple_of(17) {
                if let Some(popped) = queue.pop() {
                    model.remove(&popped.0);
                }
                continue;
            }
            let expected = (!model.contains_key(&key)).then_some(model.len());
            assert_eq!(queue.push(Record(key, step)), expected, "step {step}, key {key}");
            if let Some(place) = expected {
                model.insert(key, place);
            }
        }
        assert!(queue.places.is_some(), "a key below the last switched to the map");
        agrees(&queue, &model);
    }
}
