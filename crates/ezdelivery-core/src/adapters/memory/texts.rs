//! The texts of queued messages, kept end to end in one string.
//!
//! A message's text was a heap block of its own: the engine writes it with
//! room to spare, so a text of about 95 bytes took a block of 160, and the
//! seven of a lifecycle were a quarter of the memory an in-memory lifecycle
//! keeps (each new page of it faulted in, BENCHMARKS.md). Here each costs
//! its length, and the block the engine wrote it in goes back to the
//! allocator at once, for the next message to reuse.

/// Where one text is in [`Texts`].
#[derive(Clone, Copy)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct TextSpan {
    start: usize,
    len: usize,
}

/// The texts, end to end.
#[derive(Default)]
#[cfg_attr(test, derive(Clone, Debug, PartialEq))]
pub(super) struct Texts {
    all: String,
}

impl Texts {
    /// Keeps `text`; where it is.
    pub fn push(&mut self, text: &str) -> TextSpan {
        let start = self.all.len();
        self.all.push_str(text);
        TextSpan { start, len: text.len() }
    }

    /// The text at `span`: "" for a span this never handed out (which
    /// debug builds assert never happens).
    pub fn get(&self, span: TextSpan) -> &str {
        let text = span.start.checked_add(span.len).and_then(|end| self.all.get(span.start..end));
        debug_assert!(text.is_some(), "a text span that was never handed out");
        text.unwrap_or_default()
    }

    /// Forgets the text at `span` and every one kept after it (a
    /// rolled-back write's, newest first).
    pub fn truncate(&mut self, span: TextSpan) {
        if self.all.is_char_boundary(span.start) {
            self.all.truncate(span.start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_come_back_as_kept_and_a_truncated_one_is_gone() {
        let mut texts = Texts::default();
        let first = texts.push("[교촌치킨] 주문 #1이 접수되었습니다.");
        let empty = texts.push("");
        let second = texts.push("order #2 is cooked");
        assert_eq!(texts.get(first), "[교촌치킨] 주문 #1이 접수되었습니다.");
        assert_eq!(texts.get(empty), "");
        assert_eq!(texts.get(second), "order #2 is cooked");
        texts.truncate(second);
        let again = texts.push("order #2 was delivered");
        assert_eq!(again, second.clone_with_len("order #2 was delivered".len()));
        assert_eq!(texts.get(first), "[교촌치킨] 주문 #1이 접수되었습니다.");
        assert_eq!(texts.get(again), "order #2 was delivered");
    }

    impl TextSpan {
        fn clone_with_len(self, len: usize) -> TextSpan {
            TextSpan { len, ..self }
        }
    }
}
