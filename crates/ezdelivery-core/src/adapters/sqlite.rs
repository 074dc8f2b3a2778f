//! SQLite storage (the default): to be written.
