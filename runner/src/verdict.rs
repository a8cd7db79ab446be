//! Checking the learner's file, telling them what happened, and recording a pass.

use std::path::Path;

use anyhow::{Context, Result};
use colored::Colorize;

use crate::cargo::{self, Cancel, Package, Report, Verdict};
use crate::info::{Course, Exercise};
use crate::state::State;
use crate::term;

/// The checks are everything from the `#[cfg(test)]` line to the end of the file.
pub fn checks_section(source: &str) -> Option<&str> {
    let start = source.rfind("#[cfg(test)]")?;
    Some(&source[start..])
}

/// Compares two checks sections, ignoring trailing spaces and line endings.
fn same_checks(a: &str, b: &str) -> bool {
    fn normal(s: &str) -> impl Iterator<Item = &str> {
        s.lines().map(str::trim_end).filter(|l| !l.is_empty())
    }
    normal(a).eq(normal(b))
}

/// Whether the learner's checks differ from the reference solution's.
pub fn checks_edited(root: &Path, exercise: &Exercise) -> Result<bool> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let learner = read(&exercise.exercise_file(root))?;
    let reference = read(&exercise.solution_file(root))?;
    Ok(
        match (checks_section(&learner), checks_section(&reference)) {
            (Some(mine), Some(theirs)) => !same_checks(mine, theirs),
            (None, Some(_)) => true,
            _ => false,
        },
    )
}

pub struct Checked {
    pub report: Report,
    pub edited_checks: bool,
}

impl Checked {
    /// A pass that counts: the checks passed and they are the course's checks.
    pub fn passed(&self) -> bool {
        self.report.verdict == Verdict::Passed && !self.edited_checks
    }
}

pub fn check_exercise(
    root: &Path,
    exercise: &Exercise,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Checked> {
    let file = exercise.exercise_file(root);
    if !file.exists() {
        anyhow::bail!(
            "{} is missing. `cargo run -p runner -- reset {}` puts the original back.",
            exercise.display_path(),
            exercise.name
        );
    }
    let edited_checks = checks_edited(root, exercise)?;
    let report = cargo::check(root, exercise, Package::Exercises, cancel, on_status)?;
    Ok(Checked {
        report,
        edited_checks,
    })
}

/// The output (cut when long) and a verdict line with what to do next.
pub fn render(exercise: &Exercise, checked: &Checked) -> String {
    let name = exercise.name.bold();
    let full = Package::Exercises.test_command(exercise);
    let mut text = term::cut_long(&checked.report.output, term::MAX_LINES, &full);
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    let line = match &checked.report.verdict {
        Verdict::Passed if checked.edited_checks => format!(
            "{} {name}'s checks pass, but they are not the course's checks: you edited them.\n  \
             This pass does not count. `cargo run -p runner -- reset {} --checks` puts the original \
             checks back and keeps your code (and a backup).",
            "!".yellow().bold(),
            exercise.name
        ),
        Verdict::Passed => format!("{} {name} passes every check.", "✓".green().bold()),
        Verdict::CompileError => format!(
            "{} {name} does not compile yet. Start with the first error above: it usually says what to do.",
            "✗".red().bold()
        ),
        Verdict::ChecksFailed => format!(
            "{} {name} compiles, but some checks fail. Each failure above says what it expected.",
            "✗".red().bold()
        ),
        Verdict::ClippyFailed => format!(
            "{} {name} passes its checks, but clippy flags the pattern this exercise is about ({}).",
            "✗".red().bold(),
            exercise.clippy.join(", ")
        ),
        Verdict::TimedOut { limit, unfinished } => timed_out(exercise, *limit, unfinished),
        Verdict::Cancelled => format!("{} {name}: the check was stopped.", "·".dimmed()),
    };
    text.push_str(&line);
    text.push('\n');
    if checked.edited_checks && checked.report.verdict != Verdict::Passed {
        text.push_str(&format!(
            "{} You edited this exercise's checks; `cargo run -p runner -- reset {} --checks` restores them.\n",
            "!".yellow().bold(),
            exercise.name
        ));
    }
    text
}

fn timed_out(exercise: &Exercise, limit: std::time::Duration, unfinished: &[String]) -> String {
    let still = if unfinished.is_empty() {
        String::new()
    } else {
        format!("\n  Still running when stopped: {}.", unfinished.join(", "))
    };
    format!(
        "{} {}: the checks were still running after {} s of real time and were stopped.{still}\n  \
         The checks run on tokio's paused clock, so sleeps cost no real time: a real-time hang is \
         almost always\n  \
         - a lost wake-up: a future returned Poll::Pending without storing the waker it was given;\n  \
         - a deadlock: awaiting a lock, a channel or a JoinHandle that only this task could release;\n  \
         - waiting for a channel to close while a Sender (perhaps a clone you kept) is still alive;\n  \
         - blocking code (std::thread::sleep, a busy loop, a blocking lock) that starves the runtime.",
        "⏱".yellow().bold(),
        exercise.name.bold(),
        limit.as_secs()
    )
}

/// Marks `index` done and says what comes next. Returns the message.
pub fn record_pass(course: &Course, state: &mut State, index: usize) -> String {
    let exercise = &course.exercises[index];
    let first_time = state.mark_done(&exercise.name);
    if let Some((_, next)) = state.current(course) {
        let verb = if first_time { "unlocked" } else { "is next" };
        return format!(
            "{} {} {verb}: {}",
            "→".green().bold(),
            next.name.bold(),
            next.display_path()
        );
    }
    finished_course(course)
}

pub fn finished_course(course: &Course) -> String {
    format!(
        "\n{}\n\nYou have done all {} exercises of asynclings. You can now write, test and reason \
         about async Rust\nthe way real services need it. Keep going with the interview questions: \
         `cargo run -p runner -- quiz`.\n",
        "🎉 Course complete!".green().bold(),
        course.exercises.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "fn main() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn a() {}\n}\n";

    #[test]
    fn the_checks_are_the_tail_of_the_file() {
        assert_eq!(
            checks_section(FILE).unwrap(),
            "#[cfg(test)]\nmod tests {\n    #[test]\n    fn a() {}\n}\n"
        );
        assert!(checks_section("fn main() {}").is_none());
    }

    #[test]
    fn whitespace_is_not_an_edit_but_code_is() {
        let reference = checks_section(FILE).unwrap();
        assert!(same_checks(reference, &reference.replace('\n', "  \r\n")));
        assert!(!same_checks(reference, &reference.replace("fn a", "fn b")));
    }
}
