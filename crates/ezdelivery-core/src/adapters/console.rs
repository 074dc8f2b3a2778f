//! The console notifier: prints each message as one line on standard error
//! (standard output belongs to the command's own result, which `--json`
//! keeps to exactly one object).

use std::io::Write;
use std::sync::Mutex;

use crate::domain::ChannelName;
use crate::ports::{Message, Notifier};

/// Prints messages to a writer (standard error by default).
pub struct ConsoleNotifier {
    channel: ChannelName,
    out: Mutex<Box<dyn Write + Send>>,
}

impl ConsoleNotifier {
    /// Prints to standard error.
    pub fn stderr() -> ConsoleNotifier {
        ConsoleNotifier::to(Box::new(std::io::stderr()))
    }

    /// Prints to `out`; a sink such as `std::io::sink()` silences it while
    /// still marking messages delivered (for `-q`).
    pub fn to(out: Box<dyn Write + Send>) -> ConsoleNotifier {
        ConsoleNotifier { channel: ChannelName::known("console"), out: Mutex::new(out) }
    }

    /// Names the channel `name` instead of `console`.
    pub fn named(mut self, name: ChannelName) -> ConsoleNotifier {
        self.channel = name;
        self
    }
}

impl Notifier for ConsoleNotifier {
    fn channel(&self) -> &ChannelName {
        &self.channel
    }

    fn send(&self, message: &Message) -> Result<(), String> {
        let mut out = self.out.lock().map_err(|_| "console writer poisoned".to_string())?;
        writeln!(out, "[알림 → {}] {}", message.recipient, message.text).map_err(|e| e.to_string())
    }
}
