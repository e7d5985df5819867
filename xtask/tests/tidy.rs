#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Cheap rules about the tree, checked on every test run (rust-analyzer's `tidy`).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn crates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn opens_with_doc_comment(file: &Path) -> bool {
    std::fs::read_to_string(file).is_ok_and(|text| text.trim_start().starts_with("//!"))
}

#[test]
fn every_provider_crate_has_readme_header_and_conformance_test() {
    let mut problems = Vec::new();
    let providers: Vec<PathBuf> = crates()
        .into_iter()
        .filter(|dir| dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("providers-")))
        .collect();
    assert!(!providers.is_empty(), "no providers-* crates found under {}", root().display());
    for dir in &providers {
        let name = dir.file_name().unwrap().to_string_lossy();
        if !dir.join("README.md").is_file() {
            problems.push(format!("{name}: no README.md"));
        }
        if !opens_with_doc_comment(&dir.join("src/lib.rs")) {
            problems.push(format!("{name}: src/lib.rs does not open with a `//!` paragraph"));
        }
        if !dir.join("tests/conformance.rs").is_file() {
            problems.push(format!("{name}: no tests/conformance.rs running its conformance kit"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_crate_root_opens_with_what_it_is_for() {
    let mut problems = Vec::new();
    for dir in crates().into_iter().chain([root().join("xtask")]) {
        let roots: Vec<PathBuf> =
            ["src/lib.rs", "src/main.rs"].iter().map(|f| dir.join(f)).filter(|p| p.is_file()).collect();
        for file in roots {
            if !opens_with_doc_comment(&file) {
                problems.push(format!("{} does not open with a `//!` paragraph", file.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_crate_uses_the_workspace_lints_and_package_fields() {
    let mut problems = Vec::new();
    for dir in crates().into_iter().chain([root().join("xtask")]) {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        for needle in ["[lints]\nworkspace = true", "edition.workspace = true", "rust-version.workspace = true"] {
            if !manifest.contains(needle) {
                problems.push(format!("{}: missing `{}`", dir.join("Cargo.toml").display(), needle.replace('\n', " ")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
