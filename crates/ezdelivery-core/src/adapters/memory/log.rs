//! The event log's entries, as kept in memory: an event's id as the 16
//! bytes of its UUID rather than its 36 characters on the heap (a block of
//! 48 bytes, eight per lifecycle), and no sequence number (an entry's is
//! its place in the log).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Event;
use crate::ports::storage::StoredEvent;

/// One event of the log.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct LoggedEvent {
    id: EventIdForm,
    at: DateTime<Utc>,
    event: Event,
}

/// How an event's id is kept.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
enum EventIdForm {
    /// A UUID, whose text is hyphenated and in lower case (as the
    /// engine's ids are).
    Uuid(Uuid),
    /// Any other id, as it was given.
    Own(Box<str>),
}

impl LoggedEvent {
    /// The entry for `event`, appended with the UUID `id` at `at`.
    pub fn with_uuid(id: Uuid, at: DateTime<Utc>, event: Event) -> LoggedEvent {
        LoggedEvent { id: EventIdForm::Uuid(id), at, event }
    }

    /// The entry for `event`, appended with id `id` at `at`.
    pub fn new(id: &str, at: DateTime<Utc>, event: Event) -> LoggedEvent {
        // Only the hyphenated form is 36 characters long; in lower case it
        // is written back exactly as given.
        let uuid =
            (id.len() == 36 && !id.bytes().any(|b| b.is_ascii_uppercase())).then(|| Uuid::try_parse(id).ok()).flatten();
        match uuid {
            Some(uuid) => LoggedEvent::with_uuid(uuid, at, event),
            None => LoggedEvent { id: EventIdForm::Own(id.into()), at, event },
        }
    }

    /// The event as the log hands it out, numbered `seq`.
    pub fn stored(&self, seq: i64) -> StoredEvent {
        StoredEvent { seq, id: self.with_id(str::to_string), at: self.at, event: self.event.clone() }
    }

    /// Whether this event's id is the UUID `id` (an id given as text is
    /// kept as a UUID whenever it is one written as the engine writes them,
    /// so no other is).
    pub fn has_uuid(&self, id: Uuid) -> bool {
        matches!(self.id, EventIdForm::Uuid(own) if own == id)
    }

    /// What follows this event's id and `:` in `text`, if `text` starts so.
    pub fn after_id<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.with_id(|id| text.strip_prefix(id))?.strip_prefix(':')
    }

    /// Runs `f` on the id written out (on the stack, for a UUID).
    pub fn with_id<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match &self.id {
            EventIdForm::Uuid(uuid) => f(uuid.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            EventIdForm::Own(id) => f(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("a time")
    }

    #[test]
    fn any_id_comes_back_as_it_was_given() {
        let event = Event::RiderRegistered { rider_id: 1, name: "lee".into() };
        for id in [
            "0192f0c4-7b1a-7abc-8def-0123456789ab",
            "0192F0C4-7B1A-7ABC-8DEF-0123456789AB",
            "0192f0c47b1a7abc8def0123456789ab",
            "{0192f0c4-7b1a-7abc-8def-0123456789ab}",
            "e-1",
            "",
        ] {
            let logged = LoggedEvent::new(id, at(), event.clone());
            let stored = logged.stored(7);
            assert_eq!((stored.seq, stored.id.as_str(), stored.at), (7, id, at()));
            assert_eq!(stored.event, event);
            assert_eq!(logged.after_id(&format!("{id}:owner")), Some("owner"));
            assert_eq!(logged.after_id(&format!("{id}owner")), None);
        }
        let uuid = LoggedEvent::new("0192f0c4-7b1a-7abc-8def-0123456789ab", at(), event.clone());
        assert!(matches!(uuid.id, EventIdForm::Uuid(_)), "a lower-case hyphenated UUID is kept as 16 bytes");
        let given = LoggedEvent::with_uuid(Uuid::from_u128(0x0192_F0C4_7B1A_7ABC_8DEF_0123_4567_89AB), at(), event);
        assert_eq!(given, uuid, "a UUID given as such is kept as its text would be");
        assert_eq!(given.stored(7), uuid.stored(7));
        assert_eq!(given.after_id("0192f0c4-7b1a-7abc-8def-0123456789ab:owner"), Some("owner"));
    }
}
