//! Input validation: values a user typed that can never be right, whatever
//! the state (exit code 2). Checked before anything is written.

use super::ids::{won, StoreId, Won};

/// The largest price of one menu item, in won. Keeps every total far from
/// integer overflow (999 items of 999 of the most expensive menu still fit).
pub const MAX_PRICE: Won = 100_000_000;
/// The largest quantity of one item in one order.
pub const MAX_QTY: u32 = 999;
/// The most distinct items in one order.
pub const MAX_ITEMS: usize = 100;
/// The longest name, address, reason or review text, in characters.
pub const MAX_TEXT: usize = 1000;
/// The longest name, in bytes of UTF-8: a name is a key the database
/// indexes (a rider's, a menu's within its store, a customer's orders), and
/// PostgreSQL refuses an index row over about 2,700 bytes, which 1,000
/// Korean characters (3,000 bytes) are. 2,000 bytes are 666 of them.
pub const MAX_NAME_BYTES: usize = 2000;

/// A value that is wrong whatever the state: exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A non-empty, trimmed, one-line name of at most [`MAX_TEXT`] characters
/// and [`MAX_NAME_BYTES`] bytes (see [`text`] for the characters refused).
///
/// ```
/// use ezdelivery_core::domain::validate::name;
/// assert_eq!(name("store name", "  BBQ ").unwrap(), "BBQ");
/// assert!(name("store name", " ").is_err());
/// assert!(name("customer", "kim\n[알림 → park] paid").is_err());
/// assert!(name("customer", "\u{200B}").is_err());
/// ```
pub fn name(what: &str, value: &str) -> Result<String, Invalid> {
    let text = text(what, value)?;
    if text.is_empty() {
        return Err(Invalid(format!("{what} must not be empty")));
    }
    if text.len() > MAX_NAME_BYTES {
        return Err(Invalid(format!(
            "{what} is longer than {MAX_NAME_BYTES} bytes ({} Korean characters, {MAX_TEXT} of most others)",
            MAX_NAME_BYTES / 3
        )));
    }
    Ok(text)
}

/// Free one-line text of at most [`MAX_TEXT`] characters, trimmed (may be
/// empty). Names, addresses, reasons and review texts are all one line of
/// printable text, so that they cannot forge or break a line of a table,
/// a notification or a log: control characters (newline and tab included),
/// line and paragraph separators and bidirectional-text controls are
/// refused, and so is text made only of invisible characters (zero-width
/// spaces, joiners, soft hyphens).
///
/// ```
/// use ezdelivery_core::domain::validate::text;
/// assert_eq!(text("reason", " changed my mind ").unwrap(), "changed my mind");
/// assert_eq!(text("reason", "").unwrap(), "");
/// assert!(text("reason", "line 1\nline 2").is_err());
/// assert!(text("address", "\u{202E}evil").is_err());
/// ```
pub fn text(what: &str, value: &str) -> Result<String, Invalid> {
    if value.chars().count() > MAX_TEXT {
        return Err(Invalid(format!("{what} is longer than {MAX_TEXT} characters")));
    }
    if let Some((c, kind)) = value.chars().find_map(|c| refused(c).map(|kind| (c, kind))) {
        return Err(Invalid(format!(
            "{what} `{}` contains {kind} ({}): names and texts are one line of printable text",
            shown(value),
            escaped(c)
        )));
    }
    let trimmed = value.trim();
    if !trimmed.is_empty() && trimmed.chars().all(invisible) {
        return Err(Invalid(format!(
            "{what} `{}` has only invisible characters: give some visible text",
            shown(value)
        )));
    }
    Ok(trimmed.to_string())
}

/// Why `c` is never allowed in a name or text, if it is not.
fn refused(c: char) -> Option<&'static str> {
    match c {
        '\n' | '\r' | '\u{0085}' | '\u{2028}' | '\u{2029}' => Some("a line break"),
        '\t' => Some("a tab"),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' => {
            Some("a bidirectional-text control")
        }
        c if c.is_control() => Some("a control character"),
        _ => None,
    }
}

/// Whitespace, and the characters that take no room on screen.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// How many characters of a value [`shown`] keeps.
pub const SHOWN_CHARS: usize = 40;

/// `value` as an error message may show it: on one line, with control,
/// bidirectional and invisible characters escaped (`\n`, `\u{1b}`), and
/// at most [`SHOWN_CHARS`] characters of it, then `…`.
///
/// ```
/// use ezdelivery_core::domain::validate::shown;
/// assert_eq!(shown("kim\n\u{1b}[31m"), "kim\\n\\u{1b}[31m");
/// assert_eq!(shown(&"a".repeat(10_000)), format!("{}…", "a".repeat(40)));
/// assert_eq!(shown("후라이드 2"), "후라이드 2");
/// ```
pub fn shown(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push('…');
            break;
        }
        if refused(c).is_some() || (invisible(c) && c != ' ') {
            out.push_str(&escaped(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// One character as Rust writes it in a string: `\n`, `\t`, `\u{200b}`.
fn escaped(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        c => format!("\\u{{{:x}}}", u32::from(c)),
    }
}

/// A price in whole won: 1 ..= [`MAX_PRICE`]; the error writes amounts as
/// messages do.
///
/// ```
/// use ezdelivery_core::domain::validate::price;
/// assert_eq!(price(18_000).unwrap(), 18_000);
/// assert_eq!(price(100_000_001).unwrap_err().0, "price 100,000,001원 is above the limit of 100,000,000원");
/// assert_eq!(price(-5).unwrap_err().0, "price must be at least 1원, got -5원");
/// ```
pub fn price(value: Won) -> Result<Won, Invalid> {
    if value <= 0 {
        return Err(Invalid(format!("price must be at least 1원, got {}원", won(value))));
    }
    if value > MAX_PRICE {
        return Err(Invalid(format!("price {}원 is above the limit of {}원", won(value), won(MAX_PRICE))));
    }
    Ok(value)
}

/// A delivery charge in whole won: 0 ..= [`MAX_PRICE`] (a store may deliver for free).
pub fn charge(value: Won) -> Result<Won, Invalid> {
    if !(0..=MAX_PRICE).contains(&value) {
        return Err(Invalid(format!(
            "delivery charge must be between 0원 and {}원, got {}원",
            won(MAX_PRICE),
            won(value)
        )));
    }
    Ok(value)
}

/// A quantity: 1 ..= [`MAX_QTY`].
pub fn qty(value: u32) -> Result<u32, Invalid> {
    if value == 0 || value > MAX_QTY {
        return Err(Invalid(format!("quantity must be between 1 and {MAX_QTY}, got {value}")));
    }
    Ok(value)
}

/// A review score: 1 ..= 5.
pub fn score(value: u8) -> Result<u8, Invalid> {
    if !(1..=5).contains(&value) {
        return Err(Invalid(format!("score must be between 1 and 5, got {value}")));
    }
    Ok(value)
}

/// What a second menu of the same name in one store is told.
pub fn menu_taken(store: StoreId, name: &str) -> String {
    format!("store {store} already has a menu named `{}`", shown(name))
}

/// What a second rider of the same name is told.
pub fn rider_taken(name: &str) -> String {
    format!("a rider named `{}` is already registered", shown(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_line_break_and_bidi_character_is_refused_everywhere() {
        let mut refused_chars: Vec<char> =
            (0u32..=0x9f).filter_map(char::from_u32).filter(|c| c.is_control()).collect();
        refused_chars.extend(['\u{2028}', '\u{2029}', '\u{200e}', '\u{200f}', '\u{061c}']);
        refused_chars.extend(('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}'));
        for c in refused_chars {
            for value in [format!("kim{c}"), format!("{c}kim"), format!("k{c}im")] {
                let e = name("customer", &value).unwrap_err().0;
                assert!(e.starts_with("customer `"), "{c:?}: {e}");
                assert!(!e.contains(c), "{c:?} is escaped in the message: {e:?}");
                assert!(text("reason", &value).is_err(), "{c:?}");
            }
        }
        for fine in ["교촌치킨", "BBQ & Co.", "kim (3F)", "🍗", "é", "k\u{200d}im", "ｋｉｍ"] {
            assert_eq!(name("store name", fine).unwrap(), fine);
        }
    }

    #[test]
    fn a_name_is_at_most_1000_characters_and_2000_bytes_a_text_1000_characters() {
        let korean = |n: usize| "김".repeat(n);
        assert_eq!(name("rider", &korean(MAX_NAME_BYTES / 3)).map(|n| n.len()), Ok(1998));
        let e = name("rider", &korean(MAX_NAME_BYTES / 3 + 1)).unwrap_err().0;
        assert!(e.contains("2000 bytes") && e.contains("666 Korean"), "{e}");
        assert_eq!(
            name("rider", &"x".repeat(MAX_TEXT)).map(|n| n.len()),
            Ok(MAX_TEXT),
            "two bytes a character or less"
        );
        assert!(name("rider", &"x".repeat(MAX_TEXT + 1)).is_err());
        assert_eq!(text("reason", &korean(MAX_TEXT)).map(|t| t.chars().count()), Ok(MAX_TEXT), "texts are no keys");
        assert!(text("reason", &korean(MAX_TEXT + 1)).is_err());
    }

    #[test]
    fn invisible_only_names_are_refused_and_empty_texts_allowed() {
        for blank in ["\u{200b}", "\u{200c}\u{200d}", "\u{2060}", "\u{feff}", "\u{00ad}", "\u{3164}", " \u{fe0f} "] {
            let e = name("rider name", blank).unwrap_err().0;
            assert!(e.contains("only invisible characters"), "{blank:?}: {e}");
            assert!(text("review text", blank).is_err(), "{blank:?}");
        }
        assert!(name("rider name", " \u{3000} ").unwrap_err().0.contains("must not be empty"));
        assert_eq!(text("review text", "  ").unwrap(), "");
    }

    #[test]
    fn shown_escapes_and_cuts() {
        assert_eq!(shown("a\tb\r\n\u{1b}[0m\u{202e}\u{200b}"), "a\\tb\\r\\n\\u{1b}[0m\\u{202e}\\u{200b}");
        assert_eq!(shown(&"가".repeat(41)), format!("{}…", "가".repeat(40)));
        assert_eq!(shown(&"가".repeat(40)), "가".repeat(40));
        assert_eq!(shown("two words"), "two words");
        let e = name("owner", &format!("\u{1b}{}", "x".repeat(900))).unwrap_err().0;
        assert!(e.len() < 200, "{e}");
    }
}
