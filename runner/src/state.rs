//! The learner's progress: a small TOML file at the repository root, ignored by git.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::info::{Course, Exercise};

pub const PROGRESS_FILE: &str = ".asynclings-progress.toml";
const VERSION: u32 = 1;
const HEADER: &str = "# Your asynclings progress. Safe to edit by hand, or to delete:\n\
                      # `cargo run -p runner -- verify` rebuilds it from what passes.\n";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    #[serde(default)]
    pub version: u32,
    /// The welcome has been shown.
    #[serde(default)]
    pub welcomed: bool,
    /// Exercises whose checks passed.
    #[serde(default)]
    pub done: BTreeSet<String>,
    /// Exercises the learner chose to skip: they unlock the next one but are not done.
    #[serde(default)]
    pub skipped: BTreeSet<String>,
    /// How many hints of each exercise the learner has seen.
    #[serde(default)]
    pub hints: BTreeMap<String, usize>,
    /// The interview quiz's spaced repetition.
    #[serde(default)]
    pub quiz: crate::quiz::QuizState,
}

/// The progress file and what was wrong with it, if anything.
pub struct State {
    path: PathBuf,
    pub progress: Progress,
    /// Set when the file could not be read: the runner goes on from scratch, tells the
    /// learner, and keeps the damaged file as a backup before writing a new one.
    pub damaged: Option<String>,
    /// Names in the file that the course no longer has (an outdated file).
    pub unknown: Vec<String>,
}

pub enum Status {
    Done,
    Skipped,
    Current,
    Locked,
}

impl State {
    pub fn load(root: &Path, course: &Course) -> State {
        let path = root.join(PROGRESS_FILE);
        let mut state = State {
            path,
            progress: Progress::default(),
            damaged: None,
            unknown: Vec::new(),
        };
        match std::fs::read_to_string(&state.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => state.damaged = Some(format!("it cannot be read ({e})")),
            Ok(text) => match parse(&text) {
                Ok(progress) => state.progress = progress,
                Err(problem) => state.damaged = Some(problem),
            },
        }
        state.forget_unknown(course);
        state
    }

    /// Drops names the course does not have (renamed or removed exercises), remembering them
    /// so the learner is told.
    fn forget_unknown(&mut self, course: &Course) {
        let known: BTreeSet<&str> = course.names().collect();
        let p = &mut self.progress;
        let mut unknown: BTreeSet<String> = BTreeSet::new();
        let mut keep = |name: &String| {
            let known = known.contains(name.as_str());
            if !known {
                unknown.insert(name.clone());
            }
            known
        };
        p.done.retain(&mut keep);
        p.skipped.retain(&mut keep);
        p.hints.retain(|name, _| keep(name));
        self.unknown = unknown.into_iter().collect();
    }

    /// A warning for the learner when the file was damaged or outdated, with the way out.
    pub fn warning(&self) -> Option<String> {
        let file = PROGRESS_FILE;
        if let Some(problem) = &self.damaged {
            return Some(format!(
                "Your progress file {file} is damaged: {problem}\n\
                 Your exercise files are untouched. Run `cargo run -p runner -- verify` to rebuild \
                 your progress from what passes now; the damaged file will be kept as {file}.damaged."
            ));
        }
        (!self.unknown.is_empty()).then(|| {
            format!(
                "Your progress file {file} names exercises this course no longer has: {}. \
                 They are ignored. Run `cargo run -p runner -- verify` to re-check everything.",
                self.unknown.join(", ")
            )
        })
    }

    pub fn save(&mut self) -> Result<()> {
        if self.damaged.take().is_some() && self.path.exists() {
            let backup = self.path.with_extension("toml.damaged");
            std::fs::rename(&self.path, &backup).with_context(|| {
                format!(
                    "cannot keep the damaged progress file as {}",
                    backup.display()
                )
            })?;
        }
        self.progress.version = VERSION;
        let text = format!("{HEADER}{}", toml::to_string(&self.progress)?);
        // Write a sibling and rename it over, so a crash never leaves half a file.
        let tmp = self.path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    pub fn is_done(&self, name: &str) -> bool {
        self.progress.done.contains(name)
    }

    /// Done or skipped: either way, the next exercise is unlocked.
    fn is_passed(&self, name: &str) -> bool {
        self.is_done(name) || self.progress.skipped.contains(name)
    }

    /// The first exercise neither done nor skipped; `None` when the course is finished.
    pub fn current<'c>(&self, course: &'c Course) -> Option<(usize, &'c Exercise)> {
        course
            .exercises
            .iter()
            .enumerate()
            .find(|(_, e)| !self.is_passed(&e.name))
    }

    pub fn status(&self, course: &Course, index: usize) -> Status {
        let name = &course.exercises[index].name;
        if self.is_done(name) {
            Status::Done
        } else if self.progress.skipped.contains(name) {
            Status::Skipped
        } else if self.current(course).is_some_and(|(i, _)| i == index) {
            Status::Current
        } else {
            Status::Locked
        }
    }

    /// An error saying which exercise to finish first when `index` is still locked.
    pub fn ensure_unlocked(&self, course: &Course, index: usize) -> Result<()> {
        if let Status::Locked = self.status(course, index) {
            let name = &course.exercises[index].name;
            let first = self.current(course).map_or("", |(_, e)| e.name.as_str());
            anyhow::bail!(
                "`{name}` is locked: finish `{first}` first (`cargo run -p runner -- run {first}`).\n\
                 To move on without finishing it, run `cargo run -p runner -- skip`."
            );
        }
        Ok(())
    }

    pub fn done_count(&self) -> usize {
        self.progress.done.len()
    }

    /// Records a pass. Returns true when this is the first time.
    pub fn mark_done(&mut self, name: &str) -> bool {
        self.progress.skipped.remove(name);
        self.progress.done.insert(name.to_owned())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn parse(text: &str) -> std::result::Result<Progress, String> {
    let progress: Progress =
        toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))?;
    if progress.version > VERSION {
        return Err(format!(
            "it was written by a newer runner (format {}, this one reads {VERSION})",
            progress.version
        ));
    }
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course() -> Course {
        let entry = |name: &str| {
            format!(
                "[[exercises]]\nname = \"{name}\"\npath = \"b/{name}.rs\"\nchapter = \"b\"\nhints = [\"a\", \"b\"]\n"
            )
        };
        Course::parse(&["one", "two", "three"].map(entry).concat()).unwrap()
    }

    fn state_with(text: Option<&str>) -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = text {
            std::fs::write(dir.path().join(PROGRESS_FILE), text).unwrap();
        }
        let state = State::load(dir.path(), &course());
        (dir, state)
    }

    #[test]
    fn a_missing_file_is_a_fresh_start() {
        let (_dir, state) = state_with(None);
        assert!(state.warning().is_none());
        assert_eq!(state.current(&course()).unwrap().1.name, "one");
    }

    #[test]
    fn progress_round_trips_and_stays_readable() {
        let (dir, mut state) = state_with(None);
        state.mark_done("one");
        state.progress.hints.insert("two".into(), 1);
        state.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join(PROGRESS_FILE)).unwrap();
        assert!(text.starts_with("# Your asynclings progress"), "{text}");
        assert!(text.contains("done = [\"one\"]"), "{text}");
        let again = State::load(dir.path(), &course());
        assert_eq!(again.progress, state.progress);
        assert_eq!(again.current(&course()).unwrap().1.name, "two");
    }

    #[test]
    fn locking_follows_the_course_order() {
        let (_dir, mut state) = state_with(None);
        let course = course();
        assert!(state.ensure_unlocked(&course, 0).is_ok());
        let error = state.ensure_unlocked(&course, 2).unwrap_err().to_string();
        assert!(error.contains("finish `one` first"), "{error}");
        state.progress.skipped.insert("one".into());
        assert!(state.ensure_unlocked(&course, 1).is_ok());
        assert!(matches!(state.status(&course, 0), Status::Skipped));
        assert!(state.mark_done("one"));
        assert!(!state.mark_done("one"));
        assert!(matches!(state.status(&course, 0), Status::Done));
    }

    #[test]
    fn a_damaged_file_is_reported_and_kept_as_a_backup() {
        let (dir, mut state) = state_with(Some("done = [\"one\"\nthis is not toml"));
        let warning = state.warning().unwrap();
        assert!(warning.contains("damaged"), "{warning}");
        assert!(warning.contains("verify"), "{warning}");
        assert_eq!(state.progress, Progress::default());
        state.mark_done("one");
        state.save().unwrap();
        let backup = dir.path().join(format!("{PROGRESS_FILE}.damaged"));
        assert!(
            std::fs::read_to_string(backup)
                .unwrap()
                .contains("this is not toml")
        );
        assert!(State::load(dir.path(), &course()).warning().is_none());
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_damage_not_a_crash() {
        for text in [
            "done = 3",
            "welcomed = \"yes\"",
            "colour = \"blue\"",
            "[hints]\none = -1",
        ] {
            let (_dir, state) = state_with(Some(text));
            assert!(
                state.damaged.is_some(),
                "{text} should be reported as damaged"
            );
        }
    }

    #[test]
    fn a_newer_format_is_refused_politely() {
        let (_dir, state) = state_with(Some("version = 99"));
        assert!(state.warning().unwrap().contains("newer runner"));
    }

    #[test]
    fn an_outdated_file_forgets_removed_exercises() {
        let (_dir, state) = state_with(Some("done = [\"one\", \"gone\"]\n[hints]\nold = 2"));
        assert_eq!(state.progress.done, BTreeSet::from(["one".to_string()]));
        assert_eq!(state.unknown, ["gone", "old"]);
        assert!(state.warning().unwrap().contains("gone, old"));
    }
}
