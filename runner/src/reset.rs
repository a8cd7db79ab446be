//! Putting an exercise's original stub back, after keeping the learner's version.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::info::Exercise;
use crate::verdict::checks_section;

/// Where `runner reset` keeps the files it replaces.
pub const BACKUP_DIR: &str = ".asynclings/backups";

/// Restores the original stub (or, with `checks_only`, only its checks, keeping the
/// learner's code). Returns the backup of the learner's file, if there was one.
pub fn reset(root: &Path, exercise: &Exercise, checks_only: bool) -> Result<Option<PathBuf>> {
    let original_path = exercise.original_file(root);
    let original = std::fs::read_to_string(&original_path)
        .with_context(|| format!("cannot read the original stub {}", original_path.display()))?;
    let file = exercise.exercise_file(root);
    let mine = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let restored = match (&mine, checks_only) {
        (Some(mine), true) => {
            let code = checks_section(mine)
                .map_or(mine.as_str(), |checks| &mine[..mine.len() - checks.len()]);
            let checks = checks_section(&original).context("the original stub has no checks")?;
            format!("{code}{checks}")
        }
        _ => original,
    };
    let backup = match &mine {
        Some(text) if *text != restored => Some(backup(root, exercise, text)?),
        _ => None,
    };
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&file, restored).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(backup)
}

fn backup(root: &Path, exercise: &Exercise, text: &str) -> Result<PathBuf> {
    let dir = root.join(BACKUP_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut path = dir.join(format!("{}.{stamp}.rs", exercise.name));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{}.{stamp}-{n}.rs", exercise.name));
        n += 1;
    }
    std::fs::write(&path, text)
        .with_context(|| format!("cannot write the backup {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::Course;

    fn setup() -> (tempfile::TempDir, Exercise) {
        let dir = tempfile::tempdir().unwrap();
        let course = Course::parse("[[exercises]]\nname = \"a\"\npath = \"c/a.rs\"\nchapter = \"c\"\nhints = [\"1\", \"2\"]\n").unwrap();
        let exercise = course.exercises[0].clone();
        std::fs::create_dir_all(dir.path().join("runner/originals/c")).unwrap();
        std::fs::create_dir_all(dir.path().join("exercises/c")).unwrap();
        std::fs::write(
            exercise.original_file(dir.path()),
            "todo\n#[cfg(test)]\nchecks\n",
        )
        .unwrap();
        (dir, exercise)
    }

    #[test]
    fn reset_keeps_a_backup_and_restores_the_stub() {
        let (dir, exercise) = setup();
        let file = exercise.exercise_file(dir.path());
        std::fs::write(&file, "my work\n#[cfg(test)]\nchecks\n").unwrap();
        let backup = reset(dir.path(), &exercise, false).unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(&backup).unwrap(),
            "my work\n#[cfg(test)]\nchecks\n"
        );
        assert!(backup.starts_with(dir.path().join(BACKUP_DIR)));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "todo\n#[cfg(test)]\nchecks\n"
        );
        // Nothing to keep the second time: the file is the original already.
        assert!(reset(dir.path(), &exercise, false).unwrap().is_none());
    }

    #[test]
    fn reset_checks_keeps_the_code() {
        let (dir, exercise) = setup();
        let file = exercise.exercise_file(dir.path());
        std::fs::write(&file, "my work\n#[cfg(test)]\nweakened\n").unwrap();
        assert!(reset(dir.path(), &exercise, true).unwrap().is_some());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "my work\n#[cfg(test)]\nchecks\n"
        );
    }

    #[test]
    fn a_deleted_file_comes_back() {
        let (dir, exercise) = setup();
        assert!(reset(dir.path(), &exercise, false).unwrap().is_none());
        assert!(exercise.exercise_file(dir.path()).exists());
    }
}
