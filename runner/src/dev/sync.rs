//! `runner dev sync`: regenerates what is derived. The `[[bin]]` blocks of both manifests
//! come from `info.toml`; `runner/originals/` is a copy of `exercises/` (the stubs as
//! shipped, which `reset` puts back and the tests use).

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::manifest;
use crate::info::Course;
use crate::state::PROGRESS_FILE;

/// What `sync` changed, relative to the root, for the author to review with `git diff`.
pub fn run(root: &Path, course: &Course, force: bool) -> Result<Vec<String>> {
    if root.join(PROGRESS_FILE).exists() && !force {
        bail!(
            "{PROGRESS_FILE} exists, so these may be a learner's exercises: syncing would make \
             them the stubs as shipped. If you are writing the course, run `{}`.",
            crate::runner!("dev sync --force")
        );
    }
    let mut changed = manifests(root, course)?;
    changed.extend(originals(root, course)?);
    Ok(changed)
}

/// Regenerates the `[[bin]]` blocks of every manifest; returns the files it changed.
pub fn manifests(root: &Path, course: &Course) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for manifest in manifest::all(course) {
        let dir = manifest.dir();
        let current = manifest::read(root, &dir)?;
        let wanted = manifest::render(&current, course, &manifest);
        if wanted != current {
            write(&root.join(&dir).join("Cargo.toml"), &wanted)?;
            changed.push(format!("{dir}/Cargo.toml"));
        }
    }
    Ok(changed)
}

/// Copies every stub of `exercises/` to `runner/originals/`; returns the files it changed.
fn originals(root: &Path, course: &Course) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for exercise in &course.exercises {
        let stub = exercise.exercise_file(root);
        let text = std::fs::read_to_string(&stub)
            .with_context(|| format!("cannot read {}", stub.display()))?;
        let original = exercise.original_file(root);
        if std::fs::read_to_string(&original).ok().as_deref() != Some(text.as_str()) {
            write(&original, &text)?;
            changed.push(crate::relative(root, &original).display().to_string());
        }
    }
    Ok(changed)
}

pub(super) fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
