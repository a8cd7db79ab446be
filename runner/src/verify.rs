//! `runner verify`: every exercise (or every reference solution) built at once and checked
//! in order, with a summary.

use std::path::Path;

use anyhow::Result;
use colored::Colorize;

use crate::cargo::{self, Cancel, Package, Report, Verdict};
use crate::info::Course;
use crate::state::State;
use crate::term;
use crate::verdict::{self, Checked};

/// Checks every exercise and records what passes. Returns true when all pass.
pub fn exercises(root: &Path, course: &Course, state: &mut State) -> Result<bool> {
    let reports = check_all(root, course, Package::Exercises)?;
    let mut all = true;
    let mut newly_done = 0;
    for (exercise, report) in course.exercises.iter().zip(reports) {
        let checked = Checked {
            edited_checks: verdict::checks_edited(root, exercise)?,
            report,
        };
        if checked.passed() && state.mark_done(&exercise.name) {
            newly_done += 1;
        }
        all &= checked.passed();
        let note = if checked.edited_checks && checked.report.verdict == Verdict::Passed {
            " (passes, but its checks were edited: not counted)".to_owned()
        } else {
            describe(&checked.report.verdict)
        };
        term::println(&format!(
            "{} {}{note}",
            mark(checked.passed(), &checked.report.verdict),
            exercise.name
        ));
    }
    term::println(&format!(
        "\n{}  {newly_done} newly marked done.",
        term::progress_bar(state.done_count(), course.exercises.len())
    ));
    if !all {
        term::println("`cargo run -p runner -- run NAME` shows why an exercise does not pass yet.");
    }
    Ok(all)
}

/// Checks every reference solution. Returns true when all pass; prints the output of those
/// that do not.
pub fn solutions(root: &Path, course: &Course) -> Result<bool> {
    let reports = check_all(root, course, Package::Solutions)?;
    let mut passing = 0;
    for (exercise, report) in course.exercises.iter().zip(&reports) {
        let passed = report.verdict == Verdict::Passed;
        passing += usize::from(passed);
        term::println(&format!(
            "{} {}{}",
            mark(passed, &report.verdict),
            exercise.solution_bin(),
            describe(&report.verdict)
        ));
        if !passed {
            term::print(&term::cut_long(
                &report.output,
                term::MAX_LINES,
                &Package::Solutions.test_command(exercise),
            ));
        }
    }
    term::println(&format!(
        "\n{passing} of {} reference solutions pass.",
        reports.len()
    ));
    Ok(passing == reports.len())
}

fn check_all(root: &Path, course: &Course, package: Package) -> Result<Vec<Report>> {
    let exercises: Vec<_> = course.exercises.iter().collect();
    let reports = cargo::check_many(root, &exercises, package, &Cancel::default(), &mut |s| {
        term::status(s)
    })?;
    term::clear_status();
    Ok(reports)
}

fn mark(passed: bool, verdict: &Verdict) -> colored::ColoredString {
    match verdict {
        _ if passed => "✓".green().bold(),
        Verdict::TimedOut { .. } => "⏱".yellow().bold(),
        _ => "✗".red().bold(),
    }
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Passed => String::new(),
        Verdict::CompileError => " (does not compile)".into(),
        Verdict::ChecksFailed => " (checks fail)".into(),
        Verdict::ClippyFailed => " (clippy)".into(),
        Verdict::TimedOut { limit, .. } => format!(" (timed out after {} s)", limit.as_secs()),
        Verdict::Cancelled => " (stopped)".into(),
    }
}
