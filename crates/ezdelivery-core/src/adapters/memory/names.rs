//! Names kept once, for the strings that repeat from record to record: a
//! message's recipient (a customer or a store owner, hundreds of messages
//! each) and the recipient part of its id. A queued message keeps a number
//! instead of a string of its own, which was a heap block of at
//! least 32 bytes per message.

use std::collections::HashMap;
use std::sync::Arc;

/// A name's number in [`Names`].
pub(super) type NameId = usize;

/// The names seen so far, each with its number.
#[derive(Default)]
#[cfg_attr(test, derive(Clone, Debug, PartialEq))]
pub(super) struct Names {
    /// By number.
    names: Vec<Arc<str>>,
    /// Name → number.
    numbers: HashMap<Arc<str>, NameId>,
}

impl Names {
    /// The number of `name`, and whether it was new (then [`Names::pop`]
    /// takes it back).
    pub fn intern(&mut self, name: &str) -> (NameId, bool) {
        if let Some(&id) = self.numbers.get(name) {
            return (id, false);
        }
        let id = self.names.len();
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.numbers.insert(name, id);
        (id, true)
    }

    /// The name numbered `id` ("" for a number never handed out).
    pub fn get(&self, id: NameId) -> &str {
        debug_assert!(id < self.names.len(), "name {id} was never handed out");
        self.names.get(id).map_or("", |name| name)
    }

    /// Forgets the newest name (a rolled-back write's).
    pub fn pop(&mut self) {
        if let Some(name) = self.names.pop() {
            self.numbers.remove(&name);
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
}
