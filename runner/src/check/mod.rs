//! Checking an exercise: building its test binary with cargo, running its tests under a
//! real-time limit, and the verdict.
//!
//! - [`build`]: one `cargo test --no-run` for the requested targets; compiler messages are
//!   attributed to their target by cargo's JSON, and a target that produced neither a
//!   binary nor an error of its own is rebuilt alone, so one exercise's verdict never
//!   depends on another's.
//! - [`run`]: the test binary, listed first (`--list`), then run; a pass means libtest's
//!   summary reported every listed test as passed, never an exit code alone.
//! - [`process`]: every process runs as a job in its own session; what is guaranteed about
//!   leaving nothing running is written there.
//! - [`stream`], [`capped`], [`libtest`]: reading output without waiting on a pipe forever,
//!   keeping it bounded, and understanding libtest.
//!
//! The time limit covers only the tests, never the (first, slow) build.

mod build;
mod cancel;
mod capped;
pub(crate) mod libtest;
mod package;
pub mod process;
mod run;
mod stream;
mod text;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context, Result};

pub use cancel::Cancel;
pub use package::Package;

use crate::info::Exercise;
use build::{Build, Diagnostics};
use run::Run;
use stream::Stop;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    CompileError,
    ChecksFailed,
    /// The test binary ended before libtest reported on every test (`process::exit`, an
    /// abort): `finished` of `total` tests had reported.
    Incomplete {
        finished: usize,
        total: usize,
    },
    /// The checks passed but clippy found one of the lints the exercise asks about.
    ClippyFailed,
    /// The checks were still running at the real-time limit and were killed.
    TimedOut {
        limit: Duration,
        /// The tests that had not reported when the limit came.
        unfinished: Vec<String>,
        /// Processes the tests started that were still running then.
        child_processes: usize,
    },
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub verdict: Verdict,
    /// What the compiler and the checks printed, in reading order (bounded: see `capped`).
    pub output: String,
}

/// Builds and checks one exercise; `on_status` hears the build's progress and the seconds
/// the tests have been running.
pub fn check(
    root: &Path,
    exercise: &Exercise,
    package: Package,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Report> {
    let bin = package.bin(exercise);
    let packages = [package.cargo_name(exercise)];
    let built = build::build(
        root,
        &packages,
        std::slice::from_ref(&bin),
        cancel,
        on_status,
    )?;
    if built.cancelled {
        return Ok(cancelled());
    }
    outcome(root, exercise, package, &built, cancel, on_status)
}

/// Builds all `exercises`, then runs their checks on a work queue, one worker per core.
/// Reports come back in the order of `exercises`.
pub fn check_many(
    root: &Path,
    exercises: &[&Exercise],
    package: Package,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Vec<Report>> {
    let bins: Vec<String> = exercises.iter().map(|e| package.bin(e)).collect();
    let mut packages: Vec<String> = exercises.iter().map(|e| package.cargo_name(e)).collect();
    packages.sort();
    packages.dedup();
    let mut built = build::build(root, &packages, &bins, cancel, on_status)?;
    rebuild_unattributed(root, package, exercises, &mut built, cancel, on_status)?;
    if built.cancelled {
        return Ok(exercises.iter().map(|_| cancelled()).collect());
    }
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::from_iter(exercises.iter().map(|_| None)));
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..workers.min(exercises.len()) {
            let done_tx = done_tx.clone();
            let (next, reports, built) = (&next, &reports, &built);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(exercise) = exercises.get(index) else {
                        break;
                    };
                    let report = outcome(root, exercise, package, built, cancel, &mut |_| {});
                    lock(reports)[index] = Some(report);
                    let _ = done_tx.send(());
                }
            });
        }
        drop(done_tx);
        for (done, ()) in done_rx.iter().enumerate() {
            on_status(&format!("Checked {} of {}", done + 1, exercises.len()));
        }
    });
    reports
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .into_iter()
        .map(|report| report.context("a checking worker stopped early")?)
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A target with no binary and no error of its own was stopped by another target's
/// failure: build it alone, so that its verdict is its own.
fn rebuild_unattributed(
    root: &Path,
    package: Package,
    exercises: &[&Exercise],
    built: &mut Build,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<()> {
    for exercise in exercises {
        let bin = package.bin(exercise);
        let has_errors = built
            .diagnostics
            .get(&bin)
            .is_some_and(|d| !d.errors.is_empty());
        if built.cancelled || built.executables.contains_key(&bin) || has_errors {
            continue;
        }
        let packages = [package.cargo_name(exercise)];
        let alone = build::build(root, &packages, &[bin], cancel, on_status)?;
        built.cancelled |= alone.cancelled;
        built.executables.extend(alone.executables);
        built.diagnostics.extend(alone.diagnostics);
    }
    Ok(())
}

fn cancelled() -> Report {
    Report {
        verdict: Verdict::Cancelled,
        output: String::new(),
    }
}

/// The one place a check's outcome is assembled: the compiler's messages, the tests'
/// output, and the verdict.
fn outcome(
    root: &Path,
    exercise: &Exercise,
    package: Package,
    built: &Build,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Report> {
    let bin = package.bin(exercise);
    let mut output = built
        .diagnostics
        .get(&bin)
        .map(Diagnostics::text)
        .unwrap_or_default();
    let Some(executable) = built.executables.get(&bin) else {
        output.push_str(&built.cargo_said);
        return Ok(Report {
            verdict: Verdict::CompileError,
            output,
        });
    };
    let dir = package.dir(root, exercise);
    let run = run::run_tests(&dir, executable, exercise.timeout, cancel, on_status)?;
    output.push_str(&run.output);
    if run.stop == Stop::Deadline && !run.failed.is_empty() {
        output.push_str(text::FAILED_BEFORE_THE_LIMIT);
        output.push_str(&run::failures(&dir, executable, &run.failed, cancel)?);
    }
    let verdict = match tests_verdict(exercise, run) {
        Some(verdict) => verdict,
        None if cancel.is_cancelled() => return Ok(cancelled()),
        None if exercise.clippy.is_empty() => Verdict::Passed,
        None => match build::clippy(root, exercise, package, cancel)? {
            None => Verdict::Passed,
            Some(lints) => {
                output.push_str(&lints);
                Verdict::ClippyFailed
            }
        },
    };
    if verdict == Verdict::Cancelled {
        return Ok(cancelled());
    }
    Ok(Report { verdict, output })
}

/// What the run says; `None` when every listed test passed.
fn tests_verdict(exercise: &Exercise, run: Run) -> Option<Verdict> {
    let total = run.listed.len();
    match (run.stop, run.summary) {
        (Stop::Cancelled, _) => Some(Verdict::Cancelled),
        (Stop::Deadline, _) => Some(Verdict::TimedOut {
            limit: exercise.timeout,
            unfinished: run
                .listed
                .into_iter()
                .filter(|t| !run.finished.contains(t))
                .collect(),
            child_processes: run.leftovers,
        }),
        (Stop::Finished, Some(summary)) if summary.all_passed(total) && run.exit_ok => None,
        (Stop::Finished, Some(_)) => Some(Verdict::ChecksFailed),
        (Stop::Finished, None) => Some(Verdict::Incomplete {
            finished: run.finished.len(),
            total,
        }),
    }
}

/// `text` without its terminal escapes: colours (`ESC [ … m`), and also the character-set
/// switches a terminfo `sgr0` adds (`ESC ( B` on xterm-256color), which libtest prints
/// after every coloured word when the terminal's `TERM` has them.
pub fn strip_ansi(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}
