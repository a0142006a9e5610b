//! The crates depend on each other only in the direction DESIGN.md fixes: `io` and `wire`
//! on no ufer crate, `shard` on `io` and `wire`, `node` on those three, `bench` on `wire` and
//! `node`, `perf` on `io`, `wire` and `shard`. Checked from each crate's manifest.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

const ALLOWED: &[(&str, &[&str])] = &[
    ("io", &[]),
    ("wire", &[]),
    ("shard", &["ufer-io", "ufer-wire"]),
    ("node", &["ufer-io", "ufer-wire", "ufer-shard"]),
    ("bench", &["ufer-wire", "ufer-node"]),
    ("perf", &["ufer-io", "ufer-wire", "ufer-shard"]),
];

#[test]
fn crates_depend_only_on_crates_below_them() {
    // Read at run time: a test binary reused from a build in another clone (CI shares one
    // target directory) would otherwise look in that clone, which may be gone.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let root = Path::new(&manifest_dir).parent().unwrap();
    for (folder, allowed) in ALLOWED {
        let manifest = std::fs::read_to_string(root.join(folder).join("Cargo.toml")).unwrap();
        // Every section that lists dependencies: normal, dev and build.
        let mut in_dependencies = false;
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_dependencies = line.contains("dependencies");
                continue;
            }
            let Some(name) = line.split(['=', '.', ' ']).next() else { continue };
            if in_dependencies && name.starts_with("ufer-") {
                assert!(
                    allowed.contains(&name),
                    "{folder}/Cargo.toml depends on {name}; allowed: {allowed:?} (see DESIGN.md)"
                );
            }
        }
    }
}
