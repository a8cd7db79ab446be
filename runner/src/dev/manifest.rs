//! The `[[bin]]` blocks of `exercises/Cargo.toml` and `solutions/Cargo.toml`: derived from
//! `info.toml`, one target per exercise.

use std::path::Path;

use anyhow::{Context, Result};

use crate::info::{Course, Exercise};

/// How an exercise's target is named in one package.
pub type TargetName = fn(&Exercise) -> String;

/// The two packages whose manifests list the exercises, and each one's target name.
pub const PACKAGES: [(&str, TargetName); 2] = [
    ("exercises", |e| e.bin().to_owned()),
    ("solutions", Exercise::solution_bin),
];

/// What is written above the `[[bin]]` blocks is the author's; the blocks are generated.
const FIRST_BIN: &str = "\n[[bin]]\n";

/// The manifest as it should be: its hand-written head, then one block per exercise.
pub fn render(current: &str, course: &Course, bin: TargetName) -> String {
    let head = current
        .find(FIRST_BIN)
        .map_or(current.trim_end(), |at| current[..at].trim_end());
    let blocks: String = course
        .exercises
        .iter()
        .map(|e| {
            format!(
                "\n[[bin]]\nname = \"{}\"\npath = \"{}\"\n",
                bin(e),
                e.path.to_string_lossy().replace('\\', "/")
            )
        })
        .collect();
    format!("{head}\n{blocks}")
}

/// `package/Cargo.toml`'s text.
pub fn read(root: &Path, package: &str) -> Result<String> {
    let path = root.join(package).join("Cargo.toml");
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}
