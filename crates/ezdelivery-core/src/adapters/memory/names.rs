//! Names kept once, for the strings that repeat from record to record: a
//! message's recipient (a customer or a store owner, hundreds of messages
//! each) and the recipient part of its id. A queued message keeps a number
//! instead of a string of its own, which was a heap block of at
//! least 32 bytes per message.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::SmolStr;

/// A name's number in [`Names`].
pub(super) type NameId = usize;

/// The names seen so far, each with its number.
#[derive(Default)]
#[cfg_attr(test, derive(Clone, Debug))]
pub(super) struct Names {
    /// By number.
    names: Vec<Arc<str>>,
    /// Name → number.
    numbers: HashMap<Arc<str>, NameId>,
    /// The numbers of the last few names asked for, found by comparing
    /// strings rather than hashing them: an event's messages go to names
    /// asked for a moment ago (its customer, the store's owner, and the
    /// `customer`, `owner` and `rider` of their ids), and two SipHash
    /// lookups per message were 4 % of an in-memory lifecycle.
    recent: Vec<NameId>,
    /// Where in `recent` the next name goes once it is full.
    next: usize,
}

/// Two are equal when they number the same names the same: which were
/// asked for lately is no part of what is kept (a rolled-back write may
/// have asked).
#[cfg(test)]
impl PartialEq for Names {
    fn eq(&self, other: &Names) -> bool {
        self.names == other.names
    }
}

/// How many names [`Names::recent`] keeps.
const RECENT: usize = 8;

impl Names {
    /// The number of `name`, and whether it was new (then [`Names::pop`]
    /// takes it back).
    pub fn intern(&mut self, name: &str) -> (NameId, bool) {
        let names = &self.names;
        if let Some(&id) = self.recent.iter().find(|&&id| names.get(id).is_some_and(|n| **n == *name)) {
            return (id, false);
        }
        let (id, new) = match self.numbers.get(name) {
            Some(&id) => (id, false),
            None => {
                let id = self.names.len();
                let name: Arc<str> = Arc::from(name);
                self.names.push(name.clone());
                self.numbers.insert(name, id);
                (id, true)
            }
        };
        if self.recent.len() < RECENT {
            self.recent.push(id);
        } else if let Some(slot) = self.recent.get_mut(self.next) {
            *slot = id;
        }
        self.next = (self.next + 1) % RECENT;
        (id, new)
    }

    /// The name numbered `id` ("" for a number never handed out).
    pub fn get(&self, id: NameId) -> &str {
        debug_assert!(id < self.names.len(), "name {id} was never handed out");
        self.names.get(id).map_or("", |name| name)
    }

    /// The name numbered `id` as a [`SmolStr`]: a long one shares this
    /// block rather than copying it.
    pub fn shared(&self, id: NameId) -> SmolStr {
        debug_assert!(id < self.names.len(), "name {id} was never handed out");
        self.names.get(id).map_or_else(SmolStr::default, |name| SmolStr::from(Arc::clone(name)))
    }

    /// Forgets the newest name (a rolled-back write's).
    pub fn pop(&mut self) {
        if let Some(name) = self.names.pop() {
            self.numbers.remove(&name);
            let gone = self.names.len();
            self.recent.retain(|&id| id != gone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_kept_once_and_popped_back() {
        let mut names = Names::default();
        assert_eq!(names.intern("kim"), (0, true));
        assert_eq!(names.intern("park"), (1, true));
        assert_eq!(names.intern("kim"), (0, false));
        assert_eq!((names.get(0), names.get(1)), ("kim", "park"));
        names.pop();
        assert_eq!(names.intern("kim"), (0, false));
        assert_eq!(names.intern("park"), (1, true));
    }

    #[test]
    fn a_name_comes_back_shared_short_or_long() {
        let mut names = Names::default();
        let long = "서울 강남구 테헤란로 7 김철수"; // past 23 bytes: kept on the heap
        let (short_id, long_id) = (names.intern("kim").0, names.intern(long).0);
        assert_eq!(names.shared(short_id), "kim");
        assert!(!names.shared(short_id).is_heap_allocated());
        assert_eq!(names.shared(long_id), long);
        assert!(names.shared(long_id).is_heap_allocated());
    }

    #[test]
    fn a_name_is_found_past_the_recent_ones_and_a_popped_one_is_new_again() {
        let mut names = Names::default();
        let many: Vec<String> = (0..3 * RECENT).map(|i| format!("c{i}")).collect();
        for (i, name) in many.iter().enumerate() {
            assert_eq!(names.intern(name), (i, true));
        }
        // Every name again, recent or long gone, keeps its number.
        for (i, name) in many.iter().enumerate().rev() {
            assert_eq!(names.intern(name), (i, false));
            assert_eq!(names.get(i), name);
        }
        names.pop();
        let last = many.len() - 1;
        assert_eq!(names.intern("new"), (last, true), "the popped number is handed out again");
        assert_eq!(names.get(last), "new");
        assert_eq!(names.intern(&many[last]), (last + 1, true), "a popped name is new again");
    }
}
