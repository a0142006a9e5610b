//! ARCHITECTURE.md's codemap stays true: every source file of every crate is named in it, and
//! every file or folder it names exists.
//!
//! The codemap is the part of ARCHITECTURE.md under `## Codemap`; each `### \`FOLDER\``
//! heading starts the list for one source folder, and each bullet names files or folders of
//! it in backticks before its ` — ` (`- \`kv/sst.rs\`, \`kv/block.rs\` — sorted files`; a
//! list of names may go on in the next indented lines until the ` — `).
//! Every `.rs` file below a mapped folder must be named, except `lib.rs` and `mod.rs` (the
//! crate's or the folder's own overview, which its parent's line describes) and unit-test
//! files (`*_tests.rs`). Integration tests (`*/tests/`) are named by their file names and
//! are not listed.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The source folders every one of whose files the codemap names.
const MAPPED_FOLDERS: &[&str] = &[
    "io/src",
    "wire/src",
    "shard/src",
    "node/src",
    "bench/src",
    "perf/src",
    "perf/benches",
    "tests/src",
];

#[test]
fn the_codemap_names_every_source_file_and_nothing_else() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let root = Path::new(&manifest_dir).parent().unwrap().to_path_buf();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let named = codemap_entries(&architecture);
    let mut problems = Vec::new();
    for folder in named.keys() {
        if !MAPPED_FOLDERS.contains(&folder.as_str()) {
            problems.push(format!("the codemap has a section for {folder}, which is not mapped"));
        }
    }
    for folder in MAPPED_FOLDERS {
        let entries = named.get(*folder).cloned().unwrap_or_default();
        problems.extend(check_folder(&root.join(folder), folder, &entries));
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's codemap is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_file_missing_from_the_codemap_and_an_entry_without_a_file_are_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src/kv")).unwrap();
    for file in ["lib.rs", "a.rs", "kv/mod.rs", "kv/sst.rs", "kv/block.rs", "kv/x_tests.rs"] {
        std::fs::write(dir.path().join("src").join(file), "").unwrap();
    }
    let architecture = "# x\n## Codemap\n### `src`\n- `a.rs`,\n  `kv/sst.rs` — a.\n- \
                        `gone.rs` — sorted files.\n  More about `kv/block.rs` here.\n## Next\n";
    let named = codemap_entries(architecture);
    let problems = check_folder(&dir.path().join("src"), "src", &named["src"]);
    assert_eq!(
        problems,
        vec![
            "src/kv/block.rs is not in ARCHITECTURE.md's codemap".to_string(),
            "the codemap names src/gone.rs, which does not exist".to_string(),
        ]
    );
}

/// The paths each codemap section names, by section folder.
fn codemap_entries(architecture: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut in_codemap = false;
    let mut folder: Option<String> = None;
    // A bullet whose ` — ` has not come yet: its head goes on in the next indented line.
    let mut open_head = false;
    for line in architecture.lines() {
        if open_head && line.starts_with("  ") {
            let head = line.split(" — ").next().unwrap_or(line);
            open_head = !line.contains(" — ");
            if let Some(folder) = &folder {
                named.get_mut(folder).unwrap().extend(backticked(head));
            }
            continue;
        }
        open_head = false;
        if line.starts_with("## ") {
            in_codemap = line.trim() == "## Codemap";
            folder = None;
            continue;
        }
        if !in_codemap {
            continue;
        }
        if let Some(heading) = line.strip_prefix("### ") {
            folder = backticked(heading).into_iter().next();
            if let Some(folder) = &folder {
                named.entry(folder.clone()).or_default();
            }
            continue;
        }
        let (Some(folder), Some(bullet)) = (&folder, line.strip_prefix("- ")) else { continue };
        let head = bullet.split(" — ").next().unwrap_or(bullet);
        open_head = !bullet.contains(" — ");
        named.get_mut(folder).unwrap().extend(backticked(head));
    }
    named
}

/// The texts between backticks.
fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// What is wrong between `folder`'s files and the codemap `entries` for it.
fn check_folder(folder: &Path, name: &str, entries: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    walk(folder, &mut files);
    for file in files {
        let relative = file.strip_prefix(folder).unwrap().to_string_lossy().into_owned();
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        let exempt =
            matches!(file_name.as_str(), "lib.rs" | "mod.rs") || file_name.ends_with("_tests.rs");
        if !exempt && !entries.contains(&relative) {
            problems.push(format!("{name}/{relative} is not in ARCHITECTURE.md's codemap"));
        }
    }
    for entry in entries {
        if !folder.join(entry).exists() {
            problems.push(format!("the codemap names {name}/{entry}, which does not exist"));
        }
    }
    problems
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}
