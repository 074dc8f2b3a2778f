//! The JSON-lines notifier: appends each message as one JSON object per line
//! to a file, `{"id", "orderId", "event", "status", "recipient", "message",
//! "at"}` (the webhook's body), for another program to tail.
//!
//! The file is opened for each message in append mode and the line goes out
//! in one write, so several `ezdelivery` processes can share the file
//! without interleaving lines, and a file moved away (log rotation) is
//! simply created again. On unix a file it creates is readable by its owner
//! only (0600) and a folder it creates is the owner's only (0700), since
//! messages name customers.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::MessageJson;
use crate::domain::ChannelName;
use crate::ports::{Message, Notifier};

/// Appends messages to a JSON-lines file.
#[derive(Debug)]
pub struct JsonlNotifier {
    channel: ChannelName,
    path: PathBuf,
    /// Keeps this process's writes in order.
    lock: Mutex<()>,
}

impl JsonlNotifier {
    /// Appends to `path`, created (with its parent folder) on the first
    /// message; the channel is named `jsonl`.
    pub fn new(path: impl Into<PathBuf>) -> JsonlNotifier {
        JsonlNotifier { channel: ChannelName::known("jsonl"), path: path.into(), lock: Mutex::new(()) }
    }

    /// Names the channel `name` instead (to tell two files apart).
    pub fn named(mut self, name: ChannelName) -> JsonlNotifier {
        self.channel = name;
        self
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, line: &[u8], within: Duration) -> std::io::Result<()> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            let mut builder = DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(parent)?;
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Without it, opening a FIFO no one reads waits for a reader,
            // and a write to a full pipe for room: either held the command.
            // Nonblocking, the open fails at once (ENXIO) and so does such
            // a write, and the message is tried again later. A regular
            // file or a device such as /dev/stdout behaves as before.
            options.mode(0o600).custom_flags(libc::O_NONBLOCK);
        }
        let mut file = options.open(&self.path)?;
        // One writer at a time, across processes too (`relay` and commands
        // append to the same file), so that the file's length before the
        // line is the line's start.
        lock_within(&file, within)?;
        let start = file.metadata()?.len();
        let written = file.write_all(line).and_then(|()| file.flush());
        if written.is_err() {
            // A line cut short (the disk full, a file-size limit) is taken
            // back: left there, the next line (the message's retry, say)
            // was glued to it, and the file no longer held one object per
            // line. Best effort: the error is the write's.
            let _ = file.set_len(start);
        }
        written
    }
}

/// Takes `file`'s exclusive lock, waiting at most `within` for another
/// holder (a process of ours holds it for one line; any other holder, such
/// as `flock FILE sleep 60`, must not hold a command).
fn lock_within(file: &std::fs::File, within: Duration) -> std::io::Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
            Err(std::fs::TryLockError::WouldBlock) => {}
        }
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("another process has held its lock for {} ms", within.as_millis()),
            ));
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The longest a message waits for the file's lock, whatever its budget
/// (`relay` gives it no bound): its message is then left for a later try.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(2);

impl Notifier for JsonlNotifier {
    fn channel(&self) -> &ChannelName {
        &self.channel
    }

    fn send(&self, message: &Message) -> Result<(), String> {
        self.send_within(message, LOCK_PATIENCE)
    }

    fn send_within(&self, message: &Message, within: Duration) -> Result<(), String> {
        let mut line = serde_json::to_vec(&MessageJson::from(message)).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let _guard = self.lock.lock().map_err(|_| "the jsonl writer is poisoned".to_string())?;
        self.append(&line, within.min(LOCK_PATIENCE))
            .map_err(|e| format!("cannot append to {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::adapters::sample_message;

    #[test]
    fn appends_one_object_per_line_to_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/folder/messages.jsonl");
        let notifier = JsonlNotifier::new(&path);
        assert_eq!(notifier.channel().as_str(), "jsonl");
        let first = sample_message();
        let second = Message { id: "8:owner".into(), recipient: "park".into(), ..sample_message() };
        notifier.send(&first).unwrap();
        notifier.send(&second).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            json!({"id": "7:customer", "orderId": 3, "event": "PaymentApproved", "status": "paid",
                   "recipient": "kim", "message": first.text, "at": "2026-11-23T12:00:00Z"})
        );
        let keys: Vec<&str> = lines[0].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "orderId", "event", "status", "recipient", "message", "at"]);
        assert_eq!(lines[1]["id"], "8:owner");
        assert_eq!(lines[1]["recipient"], "park");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600, "the file");
            assert_eq!(mode(path.parent().unwrap()), 0o700, "the folder it created");
        }
    }

    /// Another process's lock on the file holds a message for its budget
    /// at most, and a FIFO no one reads not at all: the message fails, to
    /// be tried again, and the command goes on.
    #[test]
    fn a_locked_file_or_a_fifo_fails_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let notifier = JsonlNotifier::new(&path);
        notifier.send(&sample_message()).unwrap();
        let holder = std::fs::File::open(&path).unwrap();
        holder.lock().unwrap();
        let error = notifier.send_within(&sample_message(), Duration::from_millis(30)).unwrap_err();
        assert!(error.contains("held its lock"), "{error}");
        drop(holder);
        notifier.send_within(&sample_message(), Duration::from_millis(30)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);

        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                let error = JsonlNotifier::new(&fifo).send(&sample_message()).unwrap_err();
                assert!(error.starts_with("cannot append to"), "{error}");
            }
        }
    }

    #[test]
    fn an_unwritable_path_is_an_error_and_a_name_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let notifier = JsonlNotifier::new(dir.path()).named(ChannelName::new("audit").unwrap());
        assert_eq!(notifier.channel().as_str(), "audit");
        let error = notifier.send(&sample_message()).unwrap_err();
        assert!(error.starts_with("cannot append to"), "{error}");
    }
}
