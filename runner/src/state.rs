//! The learner's progress: a small TOML file at the repository root, ignored by git.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::io::Write as _;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::info::{Course, Exercise};

pub const PROGRESS_FILE: &str = ".asynclings-progress.toml";
const VERSION: u32 = 1;

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
    pub quiz: crate::interview::quiz::QuizState,
}

/// The learner's progress. Callers say what happened (`mark_done`, `skip`, `hint_seen`…);
/// the state decides what to write. Every write first reloads the file, so a change made
/// elsewhere (`runner skip` in another terminal while watch runs) is kept, never overwritten.
/// A write that fails never stops the learner: they are told once, and the runner goes on.
pub struct State {
    path: PathBuf,
    /// The course's exercise names: anything else in the file is dropped (and reported).
    known: BTreeSet<String>,
    progress: Progress,
    /// Set when the file could not be read: the runner goes on from scratch, tells the
    /// learner, and keeps the damaged file as a backup before writing a new one.
    damaged: Option<String>,
    /// Names in the file that the course no longer has (an outdated file).
    unknown: Vec<String>,
    save_problem: SaveProblem,
}

/// Whether a write failed, and whether the learner has been told.
enum SaveProblem {
    None,
    Untold(String),
    Told,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Done,
    Skipped,
    Current,
    Locked,
}

impl State {
    pub fn load(root: &Path, course: &Course) -> State {
        let mut state = State {
            path: root.join(PROGRESS_FILE),
            known: course.names().map(str::to_owned).collect(),
            progress: Progress::default(),
            damaged: None,
            unknown: Vec::new(),
            save_problem: SaveProblem::None,
        };
        state.reload();
        state
    }

    /// Reads the file again (what another command changed). A missing file keeps what this
    /// state holds; a damaged one is reported and replaced on the next write.
    pub fn reload(&mut self) {
        match std::fs::read_to_string(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => self.damaged = Some(format!("it cannot be read ({e})")),
            Ok(text) => match parse(&text) {
                Ok(progress) => {
                    self.progress = progress;
                    self.damaged = None;
                }
                Err(problem) => self.damaged = Some(problem),
            },
        }
        self.forget_unknown();
    }

    /// Drops names the course does not have (renamed or removed exercises), remembering them
    /// so the learner is told.
    fn forget_unknown(&mut self) {
        let known = &self.known;
        let p = &mut self.progress;
        let mut unknown: BTreeSet<String> = BTreeSet::new();
        let mut keep = |name: &String| {
            let known = known.contains(name);
            if !known {
                unknown.insert(name.clone());
            }
            known
        };
        p.done.retain(&mut keep);
        p.skipped.retain(&mut keep);
        p.hints.retain(|name, _| keep(name));
        self.unknown.extend(unknown);
        self.unknown.sort();
        self.unknown.dedup();
    }

    /// A warning for the learner when the file was damaged or outdated, with the way out.
    pub fn warning(&self) -> Option<String> {
        let file = PROGRESS_FILE;
        if let Some(problem) = &self.damaged {
            return Some(format!(
                "Your progress file {file} is damaged: {problem}\n\n\
                 Your exercise files are untouched. Run `{}` to rebuild \
                 your progress from what passes now; the damaged file will be kept as {file}.damaged.",
                crate::runner!("verify")
            ));
        }
        (!self.unknown.is_empty()).then(|| {
            format!(
                "Your progress file {file} names exercises this course no longer has: {}. \
                 They are ignored. Run `{}` to re-check everything.",
                self.unknown.join(", "),
                crate::runner!("verify")
            )
        })
    }

    /// The first time a write failed, what to tell the learner; afterwards `None`.
    pub fn take_save_warning(&mut self) -> Option<String> {
        match std::mem::replace(&mut self.save_problem, SaveProblem::Told) {
            SaveProblem::Untold(message) => Some(message),
            SaveProblem::None => {
                self.save_problem = SaveProblem::None;
                None
            }
            SaveProblem::Told => None,
        }
    }

    /// Records a pass. Returns true when this is the first time.
    pub fn mark_done(&mut self, name: &str) -> bool {
        let mut first = false;
        self.change(|p| {
            p.skipped.remove(name);
            first = p.done.insert(name.to_owned());
        });
        first
    }

    /// Moves past `name` without finishing it (it stays not done).
    pub fn skip(&mut self, name: &str) {
        self.change(|p| {
            if !p.done.contains(name) {
                p.skipped.insert(name.to_owned());
            }
        });
    }

    /// The learner has now seen `count` hints of `name` (never fewer than before).
    pub fn hint_seen(&mut self, name: &str, count: usize) {
        self.change(|p| {
            let seen = p.hints.entry(name.to_owned()).or_default();
            *seen = (*seen).max(count);
        });
    }

    /// The welcome has been shown.
    pub fn welcomed(&mut self) {
        self.change(|p| p.welcomed = true);
    }

    /// `verify`'s result: exactly the exercises that pass now are done.
    pub fn rebuild_from<'n>(&mut self, passing: impl IntoIterator<Item = &'n str>) {
        let passing: BTreeSet<String> = passing.into_iter().map(str::to_owned).collect();
        self.change(|p| {
            p.skipped.retain(|name| !passing.contains(name));
            p.done.clone_from(&passing);
        });
    }

    /// The quiz after one more answer.
    pub fn record_quiz(&mut self, quiz: &crate::interview::quiz::QuizState) {
        self.change(|p| p.quiz.clone_from(quiz));
    }

    /// Reloads, applies the change, writes. A failed write is kept for `take_save_warning`.
    fn change(&mut self, apply: impl FnOnce(&mut Progress)) {
        self.reload();
        apply(&mut self.progress);
        if let Err(error) = self.write()
            && let SaveProblem::None = self.save_problem
        {
            let error = format!("{error:#}");
            self.save_problem =
                SaveProblem::Untold(crate::messages::cannot_save(PROGRESS_FILE, &error));
        }
    }

    fn write(&mut self) -> Result<()> {
        if self.damaged.take().is_some() && self.path.is_file() {
            let backup = self.path.with_extension("toml.damaged");
            std::fs::rename(&self.path, &backup).with_context(|| {
                format!(
                    "cannot keep the damaged progress file as {}",
                    backup.display()
                )
            })?;
        }
        self.progress.version = VERSION;
        let text = format!(
            "{}{}",
            crate::messages::PROGRESS_HEADER,
            toml::to_string(&self.progress)?
        );
        // Write a sibling and rename it over, so a crash never leaves half a file; the
        // sibling is removed when anything fails.
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!("{PROGRESS_FILE}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        tmp.write_all(text.as_bytes())?;
        tmp.persist(&self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        Ok(())
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn is_done(&self, name: &str) -> bool {
        self.progress.done.contains(name)
    }

    /// How many hints of `name` the learner has seen.
    pub fn hints_seen(&self, name: &str) -> usize {
        self.progress.hints.get(name).copied().unwrap_or(0)
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

    /// The names of the exercises not yet unlocked.
    pub fn locked<'c>(&self, course: &'c Course) -> impl Iterator<Item = &'c str> {
        (0..course.exercises.len())
            .filter(|&index| matches!(self.status(course, index), Status::Locked))
            .map(|index| course.exercises[index].name.as_str())
    }

    /// An error saying which exercise to finish first when `index` is still locked.
    pub fn ensure_unlocked(&self, course: &Course, index: usize) -> Result<()> {
        if let Status::Locked = self.status(course, index) {
            let name = &course.exercises[index].name;
            let first = self.current(course).map_or("", |(_, e)| e.name.as_str());
            anyhow::bail!(
                "`{name}` is locked: finish `{first}` first (`{}`).\n\
                 To move on without finishing it, run `{}`.",
                format_args!("{} run {first}", crate::messages::RUNNER),
                crate::runner!("skip")
            );
        }
        Ok(())
    }

    pub fn done_count(&self) -> usize {
        self.progress.done.len()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn parse(text: &str) -> std::result::Result<Progress, String> {
    let progress: Progress =
        toml::from_str(text).map_err(|e| format!("\n{}", e.to_string().trim_end()))?;
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
        state.hint_seen("two", 1);
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
        state.skip("one");
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
        // toml's caret display keeps its lines: the caret stands under the mistake.
        assert!(
            warning.contains("\n  |\n2 | this is not toml\n  |"),
            "{warning}"
        );
        assert!(warning.contains("verify"), "{warning}");
        assert_eq!(state.progress, Progress::default());
        state.mark_done("one");
        assert!(state.take_save_warning().is_none());
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

    #[test]
    fn a_change_made_elsewhere_is_kept_by_the_next_write() {
        let (dir, mut watch) = state_with(None);
        watch.hint_seen("one", 1);
        let mut elsewhere = State::load(dir.path(), &course());
        elsewhere.skip("one");
        watch.hint_seen("one", 2);
        let again = State::load(dir.path(), &course());
        assert!(again.progress.skipped.contains("one"), "the skip was lost");
        assert_eq!(again.hints_seen("one"), 2);
        assert_eq!(watch.current(&course()).unwrap().1.name, "two");
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_warns_once() {
        let (dir, mut state) = state_with(None);
        // A folder where the file should be: every rename over it fails, even for root.
        std::fs::create_dir_all(dir.path().join(PROGRESS_FILE).join("inside")).unwrap();
        state.mark_done("one");
        state.skip("two");
        assert!(
            state
                .take_save_warning()
                .unwrap()
                .contains("cannot be saved")
        );
        assert!(state.take_save_warning().is_none());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            [PROGRESS_FILE],
            "only the (unwritable) progress path remains"
        );
        assert!(
            state.is_done("one"),
            "the runner goes on with what it knows"
        );
    }

    #[test]
    fn rebuilding_from_what_passes_forgets_stale_claims() {
        let (_dir, mut state) =
            state_with(Some("done = [\"one\", \"two\"]\nskipped = [\"three\"]"));
        state.rebuild_from(["three"]);
        assert_eq!(state.progress.done, BTreeSet::from(["three".to_string()]));
        assert!(state.progress.skipped.is_empty());
    }
}
