//! Inside each crate, the modules that are files depend on each other without cycles: a
//! module that names another (`use crate::a::B`, `super::B`, `crate::a::f(..)`) depends on
//! it, and no chain of such dependencies comes back to where it started. A cycle means two
//! files that can only be understood, tested and changed together; the fix is to move what
//! both need into a module of its own.
//!
//! Read from the sources with a small parser (comments and strings removed, `use` groups
//! expanded, `pub use` re-exports followed to the module that defines the item). Unit tests
//! at the end of a file (`#[cfg(test)]`) and `*_tests.rs` files are not counted: tests may
//! reach anywhere. A parent's `mod` lines and re-exports are not dependencies either.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose library sources are checked.
const CRATES: &[&str] = &["io", "wire", "shard", "node", "bench", "perf", "tests"];

/// A module path inside a crate (`["log", "tablet"]`; the crate root is `[]`).
type ModulePath = Vec<String>;

#[derive(Debug)]
struct SourceFile {
    /// The code outside `use` items, with comments, strings and trailing unit tests
    /// removed.
    code: String,
    /// `use` paths (expanded), each with whether it was a re-export (`pub use`).
    uses: Vec<(ModulePath, bool)>,
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let root = Path::new(&manifest_dir).parent().unwrap().to_path_buf();
    let mut report = Vec::new();
    for folder in CRATES {
        let modules = read_crate(&root.join(folder).join("src"));
        let graph = dependencies(&modules);
        for (parent, cycle) in cycles_by_level(&graph) {
            let names: Vec<String> = cycle.iter().map(|module| display(folder, module)).collect();
            report.push(format!("under {}: {}", display(folder, &parent), names.join(" ⇄ ")));
            // Which file names which, so the message says where to cut.
            let part = |module: &ModulePath| {
                cycle.iter().find(|member| {
                    module.starts_with(member)
                        && (module.len() == member.len() || member.len() > parent.len())
                })
            };
            for (from, targets) in &graph {
                for target in targets {
                    if let (Some(a), Some(b)) = (part(from), part(target)) {
                        if a != b {
                            report.push(format!(
                                "    {} → {}",
                                display(folder, from),
                                display(folder, target)
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        report.is_empty(),
        "modules that depend on each other in a cycle (move what both need into a module of \
         its own):\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn the_parser_sees_a_cycle_through_a_re_export_and_a_super_path() {
    let mut modules = BTreeMap::new();
    modules.insert(vec![], source("pub mod a; pub mod b; pub use b::Thing;"));
    modules.insert(path(&["a"]), source("use crate::Thing; fn f() -> Thing { todo!() }"));
    modules.insert(path(&["b"]), source("pub struct Thing; fn g() { super::a::h(); }"));
    let cycles = cycles_by_level(&dependencies(&modules));
    assert_eq!(cycles, vec![(vec![], vec![path(&["a"]), path(&["b"])])]);
}

#[test]
fn the_parser_ignores_comments_strings_tests_and_a_parents_mod_lines() {
    let mut modules = BTreeMap::new();
    modules.insert(vec![], source("pub mod a; pub mod b; pub use a::A;"));
    modules.insert(
        path(&["a"]),
        source(
            "// crate::b::B in a comment\n/// and crate::b::B in docs\npub struct A;\n\
             fn f() -> &'static str { \"crate::b::B\" }\n\
             #[cfg(test)]\nmod tests { use crate::b::B; }\n",
        ),
    );
    modules.insert(path(&["b"]), source("use crate::{a::{self, A}}; pub struct B(A);"));
    assert!(cycles_by_level(&dependencies(&modules)).is_empty());
}

#[test]
fn the_parser_sees_a_cycle_between_a_file_and_a_folder_of_modules() {
    let mut modules = BTreeMap::new();
    modules.insert(vec![], source("pub mod a; pub mod b;"));
    modules.insert(path(&["a"]), source("use crate::b::inner::X;"));
    modules.insert(path(&["b"]), source("pub mod inner; pub mod other;"));
    modules.insert(path(&["b", "inner"]), source("pub struct X;"));
    modules.insert(path(&["b", "other"]), source("fn f() { crate::a::g() }"));
    let cycles = cycles_by_level(&dependencies(&modules));
    assert_eq!(cycles, vec![(vec![], vec![path(&["a"]), path(&["b"])])]);
}

#[test]
fn the_parser_sees_a_cycle_between_a_folder_s_own_file_and_its_child() {
    let mut modules = BTreeMap::new();
    modules.insert(vec![], source("pub mod a;"));
    modules.insert(path(&["a"]), source("mod part; use part::P; pub struct Whole(P);"));
    modules.insert(path(&["a", "part"]), source("pub struct P; fn f(_: super::Whole) {}"));
    let cycles = cycles_by_level(&dependencies(&modules));
    assert_eq!(cycles, vec![(path(&["a"]), vec![path(&["a"]), path(&["a", "part"])])]);
}

fn path(segments: &[&str]) -> ModulePath {
    segments.iter().map(|segment| segment.to_string()).collect()
}

fn display(folder: &str, module: &ModulePath) -> String {
    if module.is_empty() {
        format!("{folder}::(root)")
    } else {
        format!("{folder}::{}", module.join("::"))
    }
}

/// Every library module of a crate that is a file of its own.
fn read_crate(src: &Path) -> BTreeMap<ModulePath, SourceFile> {
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let parts: Vec<String> =
            relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
        // Binaries are crates of their own; `*_tests.rs` files are unit tests.
        if parts.first().is_some_and(|first| first == "bin")
            || parts.last().is_some_and(|last| last.ends_with("_tests.rs"))
        {
            continue;
        }
        let mut module: ModulePath = parts.clone();
        let last = module.pop().unwrap();
        match last.as_str() {
            "lib.rs" | "main.rs" if module.is_empty() => {}
            "mod.rs" => {}
            other => module.push(other.trim_end_matches(".rs").to_string()),
        }
        // A crate with both lib.rs and main.rs: the library is what the others use.
        if module.is_empty() && last == "main.rs" && src.join("lib.rs").exists() {
            continue;
        }
        modules.insert(module, source(&std::fs::read_to_string(&file).unwrap()));
    }
    modules
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn source(text: &str) -> SourceFile {
    let mut code = without_tests(&strip_comments_and_strings(text));
    let (uses, spans) = use_paths(&code);
    for (start, end) in spans {
        code.replace_range(start..end, &" ".repeat(end - start));
    }
    SourceFile { code, uses }
}

/// Blanks comments, string and char literals (keeping line breaks), so that paths in them
/// are not taken for dependencies.
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = blank_block_comment(&chars, i, &mut out);
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && is_raw_string(&chars, i) {
            i = blank_raw_string(&chars, i, &mut out);
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                } else if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Blanks the (possibly nested) block comment that starts at `chars[i]`, keeping its line
/// breaks in `out`; returns where it ends.
fn blank_block_comment(chars: &[char], mut i: usize, out: &mut String) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            if chars[i] == '\n' {
                out.push('\n');
            }
            i += 1;
        }
    }
    i
}

/// Blanks the raw string literal that starts at `chars[i]` (its `r`) to `""`, keeping its
/// line breaks in `out`; returns where it ends.
fn blank_raw_string(chars: &[char], mut i: usize, out: &mut String) -> usize {
    i += 1;
    let mut hashes = 0;
    while chars[i] == '#' {
        hashes += 1;
        i += 1;
    }
    i += 1;
    out.push_str("\"\"");
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            i += 1 + hashes;
            break;
        }
        if chars[i] == '\n' {
            out.push('\n');
        }
        i += 1;
    }
    i
}

fn is_raw_string(chars: &[char], at: usize) -> bool {
    let before_is_ident = at > 0 && (chars[at - 1].is_alphanumeric() || chars[at - 1] == '_');
    if before_is_ident {
        return false;
    }
    let mut i = at + 1;
    while chars.get(i) == Some(&'#') {
        i += 1;
    }
    chars.get(i) == Some(&'"')
}

/// A `'` that opens a char literal rather than a lifetime or a label.
fn is_char_literal(chars: &[char], at: usize) -> bool {
    matches!((chars.get(at + 1), chars.get(at + 2)), (Some('\\'), _) | (Some(_), Some('\'')))
}

/// The code before the first `#[cfg(test)]`: unit tests sit at the end of a file.
fn without_tests(code: &str) -> String {
    match code.find("#[cfg(test)]") {
        Some(at) => code[..at].to_string(),
        None => code.to_string(),
    }
}

/// Every `use` item's paths, braces expanded (`self` inside braces names the group's
/// path), and where each item is in the code.
type UseItems = (Vec<(ModulePath, bool)>, Vec<(usize, usize)>);
fn use_paths(code: &str) -> UseItems {
    let mut paths = Vec::new();
    let mut spans = Vec::new();
    let bytes = code.as_bytes();
    let mut search_from = 0;
    while let Some(found) = code[search_from..].find("use ") {
        let at = search_from + found;
        search_from = at + 4;
        let starts_item = at == 0 || matches!(bytes[at - 1], b'\n' | b' ' | b';' | b'{' | b'}');
        if !starts_item {
            continue;
        }
        let prefix = code[..at].trim_end();
        let re_export = prefix.ends_with("pub") || prefix.ends_with(')') && prefix.contains("pub(");
        let Some(end) = code[at..].find(';') else { break };
        spans.push((at, at + end));
        let tree: String = code[at + 4..at + end].chars().filter(|c| !c.is_whitespace()).collect();
        for expanded in expand(&tree) {
            let segments: ModulePath = expanded
                .split("::")
                .filter(|segment| !segment.is_empty())
                .map(|segment| segment.split(" as ").next().unwrap_or(segment).to_string())
                .collect();
            paths.push((segments, re_export));
        }
    }
    (paths, spans)
}

/// `a::{b, c::{d, self}}` → `a::b`, `a::c::d`, `a::c`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        let tree = tree.split("as").next().unwrap_or(tree);
        return vec![tree.trim_end_matches("::").to_string()];
    };
    let head = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    let mut out = Vec::new();
    for part in parts.into_iter().filter(|part| !part.is_empty()) {
        for tail in expand(part) {
            if tail == "self" {
                out.push(head.to_string());
            } else if head.is_empty() {
                out.push(tail);
            } else {
                out.push(format!("{head}::{tail}"));
            }
        }
    }
    out
}

/// Paths written in the code outside `use` items: `crate::a::f(..)`, `super::B`, and
/// `child::f(..)` for each of `children` (the module's own child modules).
fn inline_paths(code: &str, children: &[String]) -> Vec<ModulePath> {
    let mut paths = Vec::new();
    let starts = ["crate", "super", "self"].into_iter().map(str::to_string);
    for start in starts.chain(children.iter().cloned()).map(|name| format!("{name}::")) {
        let start = start.as_str();
        let mut search_from = 0;
        while let Some(found) = code[search_from..].find(start) {
            let at = search_from + found;
            search_from = at + start.len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[at..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let segments: ModulePath = rest[..end]
                .split("::")
                .filter(|segment| !segment.is_empty())
                .map(str::to_string)
                .collect();
            paths.push(segments);
        }
    }
    paths
}

/// A path inside the crate (`crate::`, `super::`, `self::`, or a child module's name) made
/// absolute from `module`; other paths (other crates, `std`) give `None`.
fn absolute(
    modules: &BTreeMap<ModulePath, SourceFile>,
    module: &ModulePath,
    path: &ModulePath,
) -> Option<ModulePath> {
    let mut segments = path.iter().peekable();
    let mut base = match segments.peek().map(|segment| segment.as_str()) {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("super") | Some("self") => module.clone(),
        Some(child)
            if modules.contains_key(&[module.as_slice(), &[child.to_string()]].concat()) =>
        {
            module.clone()
        }
        _ => return None,
    };
    while let Some(segment) = segments.peek() {
        match segment.as_str() {
            "super" => {
                base.pop()?;
            }
            "self" => {}
            _ => break,
        }
        segments.next();
    }
    base.extend(segments.cloned());
    Some(base)
}

/// The file module that defines what `path` names: its longest prefix that is a file module,
/// followed through that module's re-exports.
fn defining_module(
    modules: &BTreeMap<ModulePath, SourceFile>,
    path: &ModulePath,
    depth: usize,
) -> Option<ModulePath> {
    let length = (0..=path.len()).rev().find(|length| modules.contains_key(&path[..*length]))?;
    let module = path[..length].to_vec();
    let Some(name) = path.get(length) else { return Some(module) };
    if depth > 8 {
        return Some(module);
    }
    for (used, re_export) in &modules[&module].uses {
        if !re_export {
            continue;
        }
        let Some(target) = absolute(modules, &module, used) else { continue };
        if target.last() == Some(name) {
            return defining_module(modules, &target, depth + 1);
        }
        if target.last().is_some_and(|last| last == "*") {
            let mut through = target[..target.len() - 1].to_vec();
            through.extend(path[length..].iter().cloned());
            if let Some(found) = defining_module(modules, &through, depth + 1) {
                if found != module {
                    return Some(found);
                }
            }
        }
    }
    Some(module)
}

/// Who depends on whom, between file modules.
fn dependencies(
    modules: &BTreeMap<ModulePath, SourceFile>,
) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let mut graph: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
    for (module, file) in modules {
        let mut named: Vec<ModulePath> = file
            .uses
            .iter()
            .filter(|(_, re_export)| !re_export)
            .map(|(path, _)| path.clone())
            .collect();
        let children: Vec<String> = modules
            .keys()
            .filter(|child| child.len() == module.len() + 1 && child.starts_with(module))
            .filter_map(|child| child.last().cloned())
            .collect();
        named.extend(inline_paths(&file.code, &children));
        let edges = graph.entry(module.clone()).or_default();
        for path in named {
            let Some(target) = absolute(modules, module, &path) else { continue };
            let Some(defined_in) = defining_module(modules, &target, 0) else { continue };
            if defined_in != *module {
                edges.insert(defined_in);
            }
        }
    }
    graph
}

/// The cycles seen at each level of the module tree: under each module, between its own
/// file and each of its child subtrees, a dependency of anything in one on anything in
/// another counts. A cycle between files shows at the level where their paths part; a
/// cycle between folders of modules shows even when no two files form one.
fn cycles_by_level(
    graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>,
) -> Vec<(ModulePath, Vec<ModulePath>)> {
    let mut found = Vec::new();
    for parent in graph.keys() {
        // Where a module below `parent` sits at this level: `parent` itself or a child.
        let part = |module: &ModulePath| -> Option<ModulePath> {
            if !module.starts_with(parent) {
                return None;
            }
            Some(module[..(parent.len() + 1).min(module.len())].to_vec())
        };
        let mut projected: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
        for (from, targets) in graph {
            let Some(from) = part(from) else { continue };
            projected.entry(from.clone()).or_default();
            for target in targets {
                if let Some(target) = part(target) {
                    if target != from {
                        projected.entry(from.clone()).or_default().insert(target);
                    }
                }
            }
        }
        found.extend(cycles(&projected).into_iter().map(|cycle| (parent.clone(), cycle)));
    }
    found
}

/// Strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>) -> Vec<Vec<ModulePath>> {
    struct State<'a> {
        graph: &'a BTreeMap<ModulePath, BTreeSet<ModulePath>>,
        index: BTreeMap<&'a ModulePath, usize>,
        low: BTreeMap<&'a ModulePath, usize>,
        stack: Vec<&'a ModulePath>,
        on_stack: BTreeSet<&'a ModulePath>,
        found: Vec<Vec<ModulePath>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a ModulePath) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        let graph = state.graph;
        for target in graph.get(node).into_iter().flatten() {
            let Some((target, _)) = graph.get_key_value(target) else { continue };
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            loop {
                let member = state.stack.pop().unwrap();
                state.on_stack.remove(member);
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.found.sort();
    state.found
}
