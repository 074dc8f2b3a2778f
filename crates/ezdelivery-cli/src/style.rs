//! Colour in human output: a few ANSI codes of our own for statuses, used
//! only when standard output is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>). JSON, pipes and files never get escape codes.

use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, Ordering};

use comfy_table::{Attribute, Cell, Color};

/// Whether this process colours its human output; decided once in `main`.
static COLOUR: AtomicBool = AtomicBool::new(false);

/// The colour decision: a terminal on standard output, `NO_COLOR` unset or
/// empty, and a terminal that is not `dumb`.
pub fn wanted(stdout_is_terminal: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(OsStr::is_empty) && term.is_none_or(|t| t != "dumb")
}

/// Decides for this process from its standard output and environment.
pub fn decide() {
    use std::io::IsTerminal;
    let on = wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    );
    COLOUR.store(on, Ordering::Relaxed);
}

fn on() -> bool {
    COLOUR.load(Ordering::Relaxed)
}

/// How a piece of text is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Done, fine: green.
    Good,
    /// Under way: cyan.
    Busy,
    /// Waiting for something: yellow.
    Waiting,
    /// Stopped, refused, failed: red.
    Bad,
    /// Not (yet) happened, or moot: dim.
    Dim,
    /// Stands out: bold.
    Strong,
    /// As is.
    Plain,
}

impl Tone {
    /// The tone of a status string of any aggregate (order, payment,
    /// kitchen, delivery, charge, breaker).
    pub fn of(status: &str) -> Tone {
        match status {
            "delivered" | "approved" | "paid" | "refunded" | "closed" => Tone::Good,
            "cooking" | "cooked" | "delivering" | "preparing" | "received" => Tone::Busy,
            "pending_payment" | "pending" | "refund_pending" | "half_open" => Tone::Waiting,
            "cancelled" | "rejected" | "declined" | "open" => Tone::Bad,
            "voided" => Tone::Dim,
            _ => Tone::Plain,
        }
    }

    fn ansi(self) -> &'static str {
        match self {
            Tone::Good => "\x1b[32m",
            Tone::Busy => "\x1b[36m",
            Tone::Waiting => "\x1b[33m",
            Tone::Bad => "\x1b[31m",
            Tone::Dim => "\x1b[2m",
            Tone::Strong => "\x1b[1m",
            Tone::Plain => "",
        }
    }
}

/// `text` in `tone`, when colour is on.
pub fn paint(text: &str, tone: Tone) -> String {
    if on() && tone != Tone::Plain {
        format!("{}{text}\x1b[0m", tone.ansi())
    } else {
        text.to_string()
    }
}

/// A status, painted in its tone.
pub fn status(text: &str) -> String {
    paint(text, Tone::of(text))
}

/// A table cell in `tone`, when colour is on. comfy-table applies the style
/// after measuring the text, so columns stay aligned.
pub fn cell(text: &str, tone: Tone) -> Cell {
    let cell = Cell::new(text);
    if !on() {
        return cell;
    }
    match tone {
        Tone::Good => cell.fg(Color::Green),
        Tone::Busy => cell.fg(Color::Cyan),
        Tone::Waiting => cell.fg(Color::Yellow),
        Tone::Bad => cell.fg(Color::Red),
        Tone::Dim => cell.add_attribute(Attribute::Dim),
        Tone::Strong => cell.add_attribute(Attribute::Bold),
        Tone::Plain => cell,
    }
}

/// A status cell, in its tone.
pub fn status_cell(text: &str) -> Cell {
    cell(text, Tone::of(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert!(wanted(true, None, None));
        assert!(wanted(true, None, os("xterm-256color")));
        // no-color.org: set and not empty disables colour, whatever the value
        assert!(!wanted(true, os("1"), None));
        assert!(!wanted(true, os("0"), None));
        assert!(wanted(true, os(""), None), "an empty NO_COLOR is unset");
        // never into a pipe or a file
        assert!(!wanted(false, None, None));
        assert!(!wanted(false, None, os("xterm")));
        assert!(!wanted(true, None, os("dumb")));
    }

    // The only test that touches the process-wide switch.
    #[test]
    fn paint_adds_codes_only_when_colour_is_on() {
        COLOUR.store(true, Ordering::Relaxed);
        assert_eq!(paint("delivered", Tone::Good), "\x1b[32mdelivered\x1b[0m");
        assert_eq!(paint("as is", Tone::Plain), "as is");
        COLOUR.store(false, Ordering::Relaxed);
        assert_eq!(paint("delivered", Tone::Good), "delivered");
        assert_eq!(status("cancelled"), "cancelled");
        assert!(!status_cell("cancelled").content().contains('\x1b'));
        assert_eq!(Tone::of("cancelled"), Tone::Bad);
        assert_eq!(Tone::of("delivered"), Tone::Good);
        assert_eq!(Tone::of("pending_payment"), Tone::Waiting);
    }
}
