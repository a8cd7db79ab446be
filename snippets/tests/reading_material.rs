//! Checks on the prose of the reading material (`questions.toml`, `CHEATSHEET.md`, `info.toml`'s
//! hints and the exercises' headers) that compiling its snippets cannot make.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file a learner reads, as plain text (the `//!` headers of the exercises, whole files
/// otherwise), with runs of whitespace and `//!` markers collapsed so a phrase split over two
/// lines still reads as one.
fn reading_material() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut files: Vec<PathBuf> = ["questions.toml", "CHEATSHEET.md", "info.toml"]
        .iter()
        .map(|name| root.join(name))
        .collect();
    let exercises = root.join("exercises");
    for chapter in std::fs::read_dir(&exercises).expect("exercises/") {
        let chapter = chapter.expect("a directory entry").path();
        if chapter.is_dir() {
            for file in std::fs::read_dir(&chapter).expect("a chapter directory") {
                let file = file.expect("a directory entry").path();
                if file.extension().is_some_and(|e| e == "rs") {
                    files.push(file);
                }
            }
        }
    }
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let text = if path.extension().is_some_and(|e| e == "rs") {
                text.lines()
                    .filter_map(|line| line.strip_prefix("//!"))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                text
            };
            (path, text.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// The `code` spans of a text with the text just before and just after each.
fn code_spans(text: &str) -> Vec<(&str, &str, &str)> {
    let pieces: Vec<&str> = text.split('`').collect();
    (1..pieces.len().saturating_sub(1))
        .step_by(2)
        .map(|i| (pieces[i - 1], pieces[i], pieces[i + 1]))
        .collect()
}

fn lint_list(program: &str) -> Option<BTreeSet<String>> {
    let output = Command::new(program).args(["-W", "help"]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let listed = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| name.replace('-', "_"))
        .collect();
    Some(listed)
}

/// A lint named in prose (`the `foo_bar` lint`, `clippy's `foo_bar``, `clippy::foo_bar`) exists
/// in rustc or clippy: a misspelt or renamed lint sends the reader to nothing.
#[test]
fn the_lints_the_material_names_exist() {
    let mut named = BTreeSet::new();
    for (path, text) in reading_material() {
        for (before, span, after) in code_spans(&text) {
            let name = span.strip_prefix("clippy::").unwrap_or(span);
            let is_identifier = name.contains('_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            let said_to_be_a_lint = after.starts_with(" lint")
                || before.to_lowercase().ends_with("clippy's ")
                || span.starts_with("clippy::");
            if is_identifier && said_to_be_a_lint {
                let clippy =
                    span.starts_with("clippy::") || before.to_lowercase().ends_with("clippy's ");
                named.insert((name.to_owned(), clippy, path.clone()));
            }
        }
    }
    assert!(
        named.len() >= 3,
        "the scan found only {named:?}: has the way lints are named in the material changed?"
    );

    let rustc = lint_list(&std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .expect("`rustc -W help` lists rustc's lints");
    let clippy = lint_list("clippy-driver");
    let mut unknown = Vec::new();
    for (name, is_clippy, path) in &named {
        let known = if *is_clippy {
            match &clippy {
                Some(lints) => lints.contains(&format!("clippy::{name}")),
                None => {
                    eprintln!("clippy-driver is not installed: `clippy::{name}` is not checked");
                    true
                }
            }
        } else {
            rustc.contains(name)
                || clippy
                    .as_ref()
                    .is_some_and(|l| l.contains(&format!("clippy::{name}")))
        };
        if !known {
            unknown.push(format!("`{name}` in {}", path.display()));
        }
    }
    assert!(unknown.is_empty(), "no such lint: {}", unknown.join(", "));
}

/// The paths tokio keeps only as `#[deprecated]` re-exports (`tokio::task::consume_budget`,
/// moved to `tokio::task::coop` in 1.44). rustc does not warn about a deprecated re-export
/// (rust-lang/rust#30827), so `deny(deprecated)` in the snippets cannot catch these: read them
/// out of the tokio sources the workspace builds against.
fn deprecated_tokio_reexports() -> BTreeSet<String> {
    let metadata = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        metadata.status.success(),
        "{}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).expect("cargo metadata prints JSON");
    let manifest = metadata["packages"]
        .as_array()
        .expect("a package list")
        .iter()
        .find(|p| p["name"] == "tokio")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("tokio is a dependency");
    let src = Path::new(manifest)
        .parent()
        .expect("tokio's folder")
        .join("src");

    let mut found = BTreeSet::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("tokio's sources") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src");
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("a tokio source file");
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for (i, line) in lines.iter().enumerate() {
                if !line.starts_with("#[deprecated") {
                    continue;
                }
                let Some(reexport) = lines[i + 1..]
                    .iter()
                    .find(|l| !l.starts_with("#["))
                    .and_then(|l| l.strip_prefix("pub use "))
                else {
                    continue;
                };
                let item = reexport
                    .trim_end_matches(';')
                    .rsplit("::")
                    .next()
                    .unwrap_or("");
                if !item.is_empty() && item.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    let mut full = vec!["tokio".to_owned()];
                    full.extend(module.iter().cloned());
                    full.push(item.to_owned());
                    found.insert(full.join("::"));
                }
            }
        }
    }
    found
}

#[test]
fn no_deprecated_tokio_paths() {
    let deprecated = deprecated_tokio_reexports();
    eprintln!("tokio's deprecated re-exports: {deprecated:?}");
    let mut uses = Vec::new();
    for (path, text) in reading_material() {
        for old in &deprecated {
            let used = text.match_indices(old.as_str()).any(|(at, _)| {
                !text[at + old.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if used {
                uses.push(format!("`{old}` in {}", path.display()));
            }
        }
    }
    assert!(
        uses.is_empty(),
        "deprecated tokio paths: {}",
        uses.join(", ")
    );
}
