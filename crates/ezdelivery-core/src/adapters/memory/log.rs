//! The event log, as kept in memory: each event's id as the 16 bytes of
//! its UUID rather than its 36 characters on the heap, its time, and where
//! its data is in one vector of bytes, end to end (`event_codec`). No
//! sequence number: an event's is its place in the log, from 1.
//!
//! An entry is 40 bytes: an id that is not a UUID goes into the data, not
//! beside the UUID in an enum that made the entry 48 with its padding (an
//! in-memory lifecycle's eight events kept 64 bytes more, and every byte a
//! lifecycle keeps costs time: BENCHMARKS.md). The time stays in the entry:
//! written as bytes, the calendar arithmetic of writing it and of reading
//! it back for each message about the event cost more than the 8 bytes a
//! lifecycle it saved.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::event_codec;
use crate::domain::Event;
use crate::ports::storage::StoredEvent;
use crate::{Error, Result};

/// The events, in order.
#[derive(Default)]
#[cfg_attr(test, derive(Clone, Debug, PartialEq))]
pub(super) struct Log {
    entries: Vec<Entry>,
    /// Every event's data, end to end.
    data: Vec<u8>,
}

/// One event: its id, its time, and where its data starts (it ends where
/// the next event's starts).
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Entry {
    /// The id, if it is a UUID written as the engine writes them
    /// (hyphenated, in lower case); else the nil UUID, and the id as it
    /// was given starts the data.
    id: Uuid,
    at: DateTime<Utc>,
    start: usize,
}

/// One event of the log, borrowed from it.
pub(super) struct LoggedEvent<'l> {
    id: Uuid,
    at: DateTime<Utc>,
    data: &'l [u8],
}

impl Log {
    /// How many events there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends `event`, with the UUID `id`, at `at`; its sequence number.
    pub fn push_uuid(&mut self, id: Uuid, at: DateTime<Utc>, event: &Event) -> i64 {
        match id.is_nil() {
            false => self.push(id, None, at, event),
            true => self.push(Uuid::nil(), Some(id.hyphenated().encode_lower(&mut Uuid::encode_buffer())), at, event),
        }
    }

    /// Appends `event`, with id `id`, at `at`; its sequence number.
    pub fn push_text(&mut self, id: &str, at: DateTime<Utc>, event: &Event) -> i64 {
        // Only the hyphenated form is 36 characters long; in lower case it
        // is written back exactly as given.
        let uuid =
            (id.len() == 36 && !id.bytes().any(|b| b.is_ascii_uppercase())).then(|| Uuid::try_parse(id).ok()).flatten();
        match uuid {
            Some(uuid) if !uuid.is_nil() => self.push(uuid, None, at, event),
            _ => self.push(Uuid::nil(), Some(id), at, event),
        }
    }

    fn push(&mut self, id: Uuid, own_id: Option<&str>, at: DateTime<Utc>, event: &Event) -> i64 {
        let start = self.data.len();
        if let Some(own) = own_id {
            event_codec::encode_text(own, &mut self.data);
        }
        event_codec::encode(event, &mut self.data);
        self.entries.push(Entry { id, at, start });
        self.entries.len() as i64
    }

    /// Takes the last event back (a rolled-back append's).
    pub fn pop(&mut self) {
        if let Some(entry) = self.entries.pop() {
            self.data.truncate(entry.start);
        }
    }

    /// The event at `index` (its sequence number less one).
    pub fn get(&self, index: usize) -> Option<LoggedEvent<'_>> {
        let entry = self.entries.get(index)?;
        let end = self.entries.get(index + 1).map_or(self.data.len(), |next| next.start);
        Some(LoggedEvent { id: entry.id, at: entry.at, data: self.data.get(entry.start..end)? })
    }
}

impl LoggedEvent<'_> {
    /// The event as the log hands it out, numbered `seq`.
    pub fn stored(&self, seq: i64) -> Result<StoredEvent> {
        let unreadable = || Error::Internal(format!("event {seq} of the in-memory log cannot be read back"));
        let (_, event) = self.parts().ok_or_else(unreadable)?;
        let event = event_codec::decode(event).ok_or_else(unreadable)?;
        Ok(StoredEvent { seq, id: self.with_id(str::to_string), at: self.at, event })
    }

    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The id it was given when that is not its UUID, and the event's bytes.
    fn parts(&self) -> Option<(Option<&str>, &[u8])> {
        let mut data = self.data;
        let own_id = if self.id.is_nil() { Some(event_codec::decode_text(&mut data)?) } else { None };
        Some((own_id, data))
    }

    /// Whether this event's id is the UUID `id` (an id given as text is
    /// kept as a UUID whenever it is one written as the engine writes them,
    /// so no other is).
    pub fn has_uuid(&self, id: Uuid) -> bool {
        self.id == id && !id.is_nil()
    }

    /// What follows this event's id and `:` in `text`, if `text` starts so.
    pub fn after_id<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.with_id(|id| text.strip_prefix(id))?.strip_prefix(':')
    }

    /// Runs `f` on the id written out (on the stack, for a UUID).
    pub fn with_id<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self.id.is_nil() {
            false => f(self.id.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            true => f(self.parts().and_then(|(own, _)| own).unwrap_or_default()),
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
        let mut log = Log::default();
        for id in [
            "0192f0c4-7b1a-7abc-8def-0123456789ab",
            "0192F0C4-7B1A-7ABC-8DEF-0123456789AB",
            "0192f0c47b1a7abc8def0123456789ab",
            "{0192f0c4-7b1a-7abc-8def-0123456789ab}",
            "e-1",
            "",
            "00000000-0000-0000-0000-000000000000",
        ] {
            let seq = log.push_text(id, at(), &event);
            let logged = log.get(log.len() - 1).expect("just appended");
            let stored = logged.stored(seq).expect("readable");
            assert_eq!((stored.seq, stored.id.as_str(), stored.at), (seq, id, at()));
            assert_eq!(stored.event, event);
            assert_eq!(logged.after_id(&format!("{id}:owner")), Some("owner"));
            assert_eq!(logged.after_id(&format!("{id}owner")), None);
        }
        assert!(!log.entries[0].id.is_nil(), "a lower-case hyphenated UUID is kept as 16 bytes");
        assert!(log.entries[1..].iter().all(|e| e.id.is_nil()), "any other id is kept as given");
        let uuid = Uuid::from_u128(0x0192_F0C4_7B1A_7ABC_8DEF_0123_4567_89AB);
        let seq = log.push_uuid(uuid, at(), &event);
        let given = log.get(log.len() - 1).expect("just appended");
        assert_eq!(given.stored(seq).map(|s| s.id).ok().as_deref(), Some("0192f0c4-7b1a-7abc-8def-0123456789ab"));
        assert!(given.has_uuid(uuid) && log.get(0).is_some_and(|first| first.has_uuid(uuid)));
        assert_eq!(given.after_id("0192f0c4-7b1a-7abc-8def-0123456789ab:owner"), Some("owner"));
        let seq = log.push_uuid(Uuid::nil(), at(), &event);
        let nil = log.get(log.len() - 1).expect("just appended");
        assert_eq!(nil.stored(seq).map(|s| s.id).ok().as_deref(), Some("00000000-0000-0000-0000-000000000000"));
        assert!(!nil.has_uuid(Uuid::nil()), "the nil UUID is kept as text, as it marks an id kept so");
    }

    #[test]
    fn a_popped_event_takes_its_data_with_it() {
        let mut log = Log::default();
        let placed = Event::OrderCancelled { order_id: 7, reason: "고객 요청".into() };
        let second = Event::CookingStarted { order_id: 8 };
        log.push_text("a", at(), &placed);
        let before = log.clone();
        log.push_text("b", at(), &second);
        assert_eq!(log.get(1).map(|e| e.stored(2).map(|s| s.event)).transpose().ok().flatten(), Some(second));
        log.pop();
        assert_eq!(log, before, "as it was before the append");
        assert!(log.get(1).is_none());
        assert_eq!(log.get(0).map(|e| e.stored(1).map(|s| s.event)).transpose().ok().flatten(), Some(placed));
        log.pop();
        log.pop();
        assert_eq!(log, Log::default(), "popping an empty log leaves it empty");
    }
}
