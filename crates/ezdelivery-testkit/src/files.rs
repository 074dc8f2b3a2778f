//! Looking at files the way the "leave it untouched" tests need.

use std::collections::BTreeMap;
use std::path::Path;

/// Every file in `dir` (not below it) with its bytes: a refused open must
/// leave this as it was, no file changed and none left beside the database.
///
/// Panics when the folder or a file cannot be read: it is a test's own.
pub fn folder(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("listed")
        .map(|e| {
            let e = e.expect("an entry");
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).expect("read"))
        })
        .collect()
}
