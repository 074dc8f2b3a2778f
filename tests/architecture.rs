//! The shape of `ezdelivery-core`, checked (ARCHITECTURE.md): the layers
//! depend on each other in one direction only, and no module imports one
//! that imports it back.
//!
//! It parses the crate's sources with `syn`, starting at `lib.rs` and
//! following the `mod` declarations (a `#[cfg(test)]` module, or one named
//! `tests`, is test code and skipped, with every `#[cfg(test)]` item). A
//! module is a file. In each file it collects:
//!
//! - every `use` tree, groups, renames and globs included;
//! - every path in the code (`syn::visit` over `syn::Path`: types,
//!   expressions, patterns, trait bounds, macro names);
//! - every path written in a macro's tokens, `macro_rules!` bodies included:
//!   a `$crate::…` path there counts for the module that defines the macro.
//!
//! A path is made absolute: `crate::…` from the root, `super::…` and
//! `self::…` from the module the code is in (a `mod.rs` file is the module
//! of its folder; an inline `mod` is a module within its file), a path
//! starting with a child module's name from that module, and a name
//! brought in by a `use` of the same file by what it names. It is then
//! mapped to the longest prefix that is a module: an edge from the file's
//! module to that one. So `pub use child::X` in a parent is an edge parent →
//! child, and a child naming `super::X` (or `crate::parent::X`) an edge child
//! → parent: a child has to take what its siblings define from the sibling
//! itself, never through the parent's re-exports.
//!
//! The crate root is no layer: it is the public face of the crate, and a
//! path through one of its `pub use` re-exports (`crate::Error`) counts as a
//! path to the module it re-exports from (`error`). Doc comments are text,
//! not paths: they are not read.
//!
//! `cargo test -p ezdelivery-core --test architecture` runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::buffer::{Cursor, TokenBuffer};
use syn::visit::Visit;

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
    // The JSON contract: what the records and events look like on the wire.
    // Nothing but the crate root uses it.
    ("json", &["ports", "domain"]),
];

/// A module's absolute path from the crate root (`[]` is the root).
type ModPath = Vec<String>;

/// The name the reports give a module: `app::engine`, `lib` for the root.
fn name(module: &[String]) -> String {
    if module.is_empty() {
        "lib".to_string()
    } else {
        module.join("::")
    }
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// True for `#[cfg(test)]`.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && matches!(&a.meta, syn::Meta::List(list) if list.tokens.to_string().trim() == "test")
    })
}

/// The test code a crate build leaves out: `#[cfg(test)]` items and `mod tests`.
fn is_test_item(item: &syn::Item) -> bool {
    let attrs = match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => {
            if i.ident == "tests" {
                return true;
            }
            &i.attrs
        }
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => return false,
    };
    is_test(attrs)
}

/// One leaf of a `use` tree: the path as written, and the name it binds
/// (`None` for a glob).
#[derive(Debug)]
struct UseLeaf {
    scope: ModPath,
    path: Vec<String>,
    binds: Option<String>,
}

/// What one file says, before resolution.
#[derive(Debug, Default)]
struct Collected {
    uses: Vec<UseLeaf>,
    /// Paths in code and in macro tokens, each with the module it is in.
    paths: Vec<(ModPath, Vec<String>)>,
    /// Inline modules (`mod stored_time { … }`), which are not files.
    inline: BTreeSet<ModPath>,
}

struct Collector {
    scope: ModPath,
    out: Collected,
}

impl Collector {
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let ident = n.ident.to_string();
                self.leaf(prefix, &ident, &ident);
            }
            syn::UseTree::Rename(r) => self.leaf(prefix, &r.ident.to_string(), &r.rename.to_string()),
            syn::UseTree::Glob(_) => {
                self.out.uses.push(UseLeaf { scope: self.scope.clone(), path: prefix.clone(), binds: None })
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    /// `use a::b::{self}` binds `b` to `a::b`; `use a::b::c as d` binds `d`.
    fn leaf(&mut self, prefix: &[String], ident: &str, binds: &str) {
        let mut path = prefix.to_vec();
        let binds = if ident == "self" {
            if binds == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                binds.to_string()
            }
        } else {
            path.push(ident.to_string());
            binds.to_string()
        };
        if binds != "_" {
            self.out.uses.push(UseLeaf { scope: self.scope.clone(), path, binds: Some(binds) });
        } else {
            self.out.uses.push(UseLeaf { scope: self.scope.clone(), path, binds: None });
        }
    }

    /// Every `a::b::c` (and `$crate::a::b`) in a macro's tokens.
    fn tokens(&mut self, mut cursor: Cursor) {
        while !cursor.eof() {
            if let Some((inside, _, _, next)) = cursor.any_group() {
                self.tokens(inside);
                cursor = next;
            } else if let Some((first, mut next)) = cursor.ident() {
                let mut path = vec![first.to_string()];
                while let Some((a, after)) = next.punct() {
                    let Some((b, after)) = after.punct() else { break };
                    let Some((segment, after)) = after.ident() else { break };
                    if a.as_char() != ':' || b.as_char() != ':' {
                        break;
                    }
                    path.push(segment.to_string());
                    next = after;
                }
                if path.len() > 1 {
                    self.out.paths.push((self.scope.clone(), path));
                }
                cursor = next;
            } else if let Some((_, next)) = cursor.token_tree() {
                cursor = next;
            } else {
                break;
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_test_item(item) {
            return;
        }
        match item {
            syn::Item::Mod(m) if m.content.is_some() => {
                self.scope.push(m.ident.to_string());
                self.out.inline.insert(self.scope.clone());
                syn::visit::visit_item_mod(self, m);
                self.scope.pop();
            }
            _ => syn::visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => return syn::visit::visit_impl_item(self, item),
        };
        if !is_test(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_field(&mut self, field: &'ast syn::Field) {
        if !is_test(&field.attrs) {
            syn::visit::visit_field(self, field);
        }
    }

    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {
        // Doc comments, derives and lints name no module of this crate.
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(crate)`, `pub(super)` say who may see an item, not what it uses.
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.out.paths.push((self.scope.clone(), segments));
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        let buffer = TokenBuffer::new2(mac.tokens.clone());
        self.tokens(buffer.begin());
    }
}

fn collect(module: &[String], text: &str) -> Collected {
    let file = syn::parse_file(text).unwrap_or_else(|e| panic!("{}: {e}", name(module)));
    let mut collector = Collector { scope: module.to_vec(), out: Collected::default() };
    collector.visit_file(&file);
    collector.out
}

/// The crate's modules, read from `lib.rs` down its `mod` declarations.
struct Crate {
    /// Each module (a file) and its text.
    files: BTreeMap<ModPath, String>,
    /// Files only a test build compiles (`#[cfg(test)] mod contract_tests;`).
    test_files: BTreeSet<PathBuf>,
}

fn read_crate(root: &Path) -> Crate {
    let mut krate = Crate { files: BTreeMap::new(), test_files: BTreeSet::new() };
    read_module(&mut krate, Vec::new(), &root.join("lib.rs"), root, false);
    krate
}

/// Reads one module's file and the files of the modules it declares; `dir`
/// is where its children's files are.
fn read_module(krate: &mut Crate, module: ModPath, file: &Path, dir: &Path, test: bool) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    for item in &parsed.items {
        let syn::Item::Mod(m) = item else { continue };
        if m.content.is_some() {
            continue;
        }
        let ident = m.ident.to_string();
        let flat = dir.join(format!("{ident}.rs"));
        let (child_file, child_dir) =
            if flat.exists() { (flat, dir.join(&ident)) } else { (dir.join(&ident).join("mod.rs"), dir.join(&ident)) };
        let mut child = module.clone();
        child.push(ident);
        read_module(krate, child, &child_file, &child_dir, test || is_test_item(item));
    }
    if test {
        krate.test_files.insert(file.to_path_buf());
    } else {
        krate.files.insert(module, text);
    }
}

/// The modules each module uses, by name.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Resolves every file's paths to modules.
fn graph_of(files: &BTreeMap<ModPath, String>) -> Graph {
    let collected: BTreeMap<&ModPath, Collected> = files.iter().map(|(m, text)| (m, collect(m, text))).collect();
    let mut modules: BTreeSet<ModPath> = files.keys().cloned().collect();
    for c in collected.values() {
        modules.extend(c.inline.iter().cloned());
    }
    let known: BTreeSet<&ModPath> = files.keys().collect();
    let root_aliases = collected.get(&Vec::new()).map(|c| aliases(c, &modules)).unwrap_or_default();

    let mut graph = Graph::new();
    for (module, c) in &collected {
        let aliases = aliases(c, &modules);
        let mut targets: Vec<ModPath> = Vec::new();
        for leaf in &c.uses {
            targets.extend(absolute(&leaf.scope, &leaf.path, &aliases, &modules));
        }
        for (scope, path) in &c.paths {
            targets.extend(absolute(scope, path, &aliases, &modules));
        }
        let mut refs = BTreeSet::new();
        for target in targets {
            let mut to = file_of(&target, &known);
            // Through the root's re-exports to where they come from.
            if to.is_empty() && !module.is_empty() {
                if let Some(real) = target.first().and_then(|first| root_aliases.get(first)) {
                    let mut through = real.clone();
                    through.extend(target[1..].iter().cloned());
                    to = file_of(&through, &known);
                }
            }
            if &to != *module {
                refs.insert(name(&to));
            }
        }
        graph.insert(name(module), refs);
    }
    graph
}

/// The names a file's `use`s bind, made absolute (in the file's order, so a
/// `use` may build on an earlier one).
fn aliases(c: &Collected, modules: &BTreeSet<ModPath>) -> BTreeMap<String, ModPath> {
    let mut aliases = BTreeMap::new();
    for leaf in &c.uses {
        let Some(binds) = &leaf.binds else { continue };
        if let Some(path) = absolute(&leaf.scope, &leaf.path, &aliases, modules) {
            aliases.insert(binds.clone(), path);
        }
    }
    aliases
}

/// A path made absolute from the module it is written in; `None` for a
/// path outside the crate (`std::…`, `serde::…`) or a local name.
fn absolute(
    scope: &[String],
    path: &[String],
    aliases: &BTreeMap<String, ModPath>,
    modules: &BTreeSet<ModPath>,
) -> Option<ModPath> {
    let first = path.first()?;
    let (mut base, mut rest): (ModPath, &[String]) = match first.as_str() {
        "crate" | "$crate" => (Vec::new(), &path[1..]),
        "self" => (scope.to_vec(), &path[1..]),
        "super" => (scope.to_vec(), path),
        _ => {
            let mut child = scope.to_vec();
            child.push(first.clone());
            if modules.contains(&child) {
                (child, &path[1..])
            } else {
                (aliases.get(first)?.clone(), &path[1..])
            }
        }
    };
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The longest prefix of `path` that is a module's file.
fn file_of(path: &[String], known: &BTreeSet<&ModPath>) -> ModPath {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| known.contains(p)).unwrap_or_default()
}

fn graph() -> Graph {
    let root = Path::new(SRC);
    let krate = read_crate(root);
    // Every source file is a module of the crate or test code: none is
    // missed (a `#[path]` or a file nobody declares).
    let mut all = Vec::new();
    sources(root, &mut all);
    let read: usize = krate.files.len() + krate.test_files.len();
    assert_eq!(read, all.len(), "some source files are not reached from lib.rs");
    graph_of(&krate.files)
}

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

/// The first cycle found by a depth-first search, as a path back to its start.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
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
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
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
    assert!(graph["app::relay"].contains("app::engine"), "the check sees edges");
    // Every cycle, one at a time: report them all, not only the first.
    let mut graph = graph;
    let mut cycles = Vec::new();
    while let Some(found) = cycle(&graph) {
        let (from, to) = (&found[found.len() - 2], &found[found.len() - 1]);
        graph.get_mut(from).expect("a module").remove(to);
        cycles.push(found.join(" → "));
    }
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

/// A crate of a few modules, given as text, and the edges the check sees.
fn edges_of(files: &[(&str, &str)]) -> Graph {
    let files = files
        .iter()
        .map(|(m, text)| {
            let module: ModPath = if m.is_empty() { Vec::new() } else { m.split("::").map(String::from).collect() };
            (module, text.to_string())
        })
        .collect();
    graph_of(&files)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_parser_skips_test_code_and_doc_comments() {
    let g = edges_of(&[
        ("", "pub mod app; pub mod adapters;"),
        ("app", "pub mod engine;"),
        ("app::engine", ""),
        ("adapters", "pub mod memory;"),
        ("adapters::memory", ""),
        (
            "app::x",
            "//! [`crate::adapters`]\nuse crate::app::engine::Engine;\n/// crate::adapters::memory in a comment\nfn f() {}\n#[cfg(test)]\nmod t {\n    use crate::adapters::memory::MemoryStorage;\n}\nmod tests { fn g() { crate::adapters::memory::f(); } }\n",
        ),
    ]);
    assert_eq!(g["app::x"], set(&["app::engine"]));
}

#[test]
fn the_parser_follows_super_self_groups_renames_and_re_exports() {
    let g = edges_of(&[
        ("", "pub mod domain; pub mod error; pub use error::{Error, Result};"),
        ("error", ""),
        ("domain", "pub mod order; pub mod ids; pub mod event; pub mod time; pub use order::Order; fn f() { event::Event::new(); }"),
        ("domain::order", "use super::{ids::OrderId, Won as Money};"),
        ("domain::ids", "use self::inner::X; mod inner { use super::super::time::T; }"),
        ("domain::time", ""),
        ("domain::event", "use crate::Result; fn f(id: crate::domain::ids::Id) -> crate::domain::ids::Id { id }"),
    ]);
    assert_eq!(g["lib"], set(&["error"]), "a `mod` declaration is no edge, a re-export is");
    assert_eq!(g["domain"], set(&["domain::order", "domain::event"]));
    assert_eq!(g["domain::order"], set(&["domain::ids", "domain"]));
    assert_eq!(g["domain::ids"], set(&["domain::time"]), "`self::` and an inline module's `super::`");
    assert_eq!(g["domain::event"], set(&["error", "domain::ids"]), "the root's re-exports, where they come from");
    assert_eq!(cycle(&g), Some(vec!["domain".into(), "domain::order".into(), "domain".into()]));
}

#[test]
fn the_parser_reads_paths_in_macros_and_through_use_aliases() {
    let g = edges_of(&[
        ("", "pub mod domain; pub mod ports;"),
        ("domain", "pub mod strings; pub mod order;"),
        ("domain::strings", "macro_rules! s { () => { $crate::ports::X }; }"),
        (
            "domain::order",
            "use super::strings; fn f() { let _ = strings::inner::f(); assert!(matches!(x, crate::ports::Y)); }",
        ),
        ("ports", "use crate::domain::*;"),
    ]);
    assert_eq!(g["domain::strings"], set(&["ports"]), "a macro's `$crate` paths count where it is defined");
    assert_eq!(g["domain::order"], set(&["domain::strings", "ports"]));
    assert_eq!(g["ports"], set(&["domain"]), "a glob");
}
