//! The shape of `ezdelivery-core`, checked (ARCHITECTURE.md): the layers
//! depend on each other in one direction only, and no module imports one
//! that imports it back.
//!
//! It reads the crate's sources as text: every `crate::layer::module` path
//! outside test code (`#[cfg(test)]` items are skipped) is an edge from the
//! file's module to that module. `cargo test -p ezdelivery-core --test
//! architecture` runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// The layers, and the layers each may use. `wiring` is the composition
/// root; `lib` is the crate root's own re-exports.
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("error", &["domain"]),
    ("ports", &["domain", "error"]),
    ("app", &["ports", "domain", "error"]),
    ("adapters", &["ports", "domain", "error"]),
    ("wiring", &["app", "adapters", "ports", "domain", "error"]),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `app/engine.rs` → `app::engine`; `ports/mod.rs` → `ports`; `lib.rs` → `lib`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(SRC).expect("under src").with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).filter(|p| *p != "mod").collect();
    parts.join("::")
}

/// The text of a file without its `#[cfg(test)]` items.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        // Skip the item: one line ending in `;`, or a block to its matching brace.
        let mut depth = 0i32;
        for item in lines.by_ref() {
            depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
            if depth <= 0 && (item.trim_end().ends_with(';') || item.trim_end().ends_with('}')) {
                break;
            }
        }
    }
    out
}

/// The modules a file refers to by `crate::…` paths (two levels deep at
/// most: `crate::app::engine::Engine` → `app::engine`), and through
/// `use crate::{a, b}` groups.
fn references(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let text = without_tests(text);
    // Doc comments mention modules without depending on them.
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let Some(first) = segments.first() else { continue };
        // The crate root's re-exports, by where they live.
        let alias = match *first {
            "Error" | "Result" => Some("error"),
            "Engine" | "EngineBuilder" | "ItemPick" => Some("app::engine"),
            "OrderView" => Some("domain::view"),
            _ => None,
        };
        if let Some(alias) = alias {
            found.insert(alias.to_string());
            continue;
        }
        let two = segments.get(1).map(|s| format!("{first}::{s}"));
        match two {
            Some(two) if known.contains(&two) => found.insert(two),
            _ if known.contains(*first) => found.insert(first.to_string()),
            _ => false,
        };
    }
    found
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(Path::new(SRC), &mut files);
    let known: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    files
        .iter()
        .map(|f| {
            let module = module_of(f);
            let text = std::fs::read_to_string(f).expect("a source file");
            let mut refs = references(&text, &known);
            refs.remove(&module);
            (module, refs)
        })
        .collect()
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, refs) in graph() {
        let from = layer(&module);
        if from == "lib" {
            continue;
        }
        let Some(may) = allowed.get(from) else {
            wrong.push(format!("{module}: its layer `{from}` is not in ALLOWED"));
            continue;
        };
        for to in refs {
            let to_layer = layer(&to);
            if to_layer != from && !may.contains(&to_layer) {
                wrong.push(format!("{module} uses {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering of ARCHITECTURE.md:\n{}", wrong.join("\n"));
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    assert!(graph.contains_key("app::engine") && graph["app::relay"].contains("app::engine"), "the check sees edges");
    // Depth-first search for a cycle, reporting the first one found.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("a module cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_parser_skips_test_code_and_comments() {
    let known: BTreeSet<String> =
        ["app", "app::engine", "adapters", "adapters::memory"].iter().map(|s| s.to_string()).collect();
    let text = "use crate::app::engine::Engine;\n// crate::adapters::memory in a comment\n#[cfg(test)]\nmod tests {\n    use crate::adapters::memory::MemoryStorage;\n}\n";
    assert_eq!(references(text, &known), ["app::engine".to_string()].into_iter().collect());
}
