//! Running one test binary under a real-time limit, and reading what libtest reported.
//!
//! The binary runs as a [`Job`](super::process::Job): when it exits, whatever it left
//! behind (a child still holding the output pipe) is killed at once, so the verdict never
//! waits for a pipe to close; at the limit, or on cancel, the whole job is killed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::build::colour;
use super::capped::Capped;
use super::libtest::{self, Summary};
use super::process::Runs;
use super::stream::{self, Line, Stop};
use super::{Cancel, text};

/// After the test binary exits (and what it left in its job is killed), how long the rest
/// of its output may take to arrive. The pipe normally closes at once; the bound only
/// matters when a process that escaped the job still holds it. It must stay generous: on a
/// loaded machine the threads that read the pipe can wait hundreds of milliseconds for a
/// core, and a verdict read before they run sees no output at all.
const DRAIN: Duration = Duration::from_secs(5);

/// How long the failed tests may take, run again for their messages after a timeout.
const FAILURES_LIMIT: Duration = Duration::from_secs(5);

/// More threads than an exercise has tests (libtest starts no more than it needs).
const ALL_AT_ONCE: &str = "256";

/// What one run of a test binary showed.
pub struct Run {
    pub stop: Stop,
    /// The binary's exit status said success.
    pub exit_ok: bool,
    pub output: String,
    /// Every test the binary holds.
    pub listed: Vec<String>,
    /// The tests libtest reported as finished (passed or failed).
    pub finished: Vec<String>,
    /// Those of them that failed.
    pub failed: Vec<String>,
    pub summary: Option<Summary>,
    /// Processes other than the test binary that were still running when it was stopped.
    pub leftovers: usize,
}

/// `executable` run as `cargo test` would: from its package's folder `dir`.
fn test_binary(dir: &Path, executable: &Path) -> Command {
    let mut command = Command::new(executable);
    command
        .current_dir(dir)
        .env("CARGO_MANIFEST_DIR", dir)
        // Panic messages say what failed; backtraces through the runtime only bury them.
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    command
}

/// Every test in `executable` (`--list` runs none).
fn list(dir: &Path, executable: &Path, cancel: &Cancel) -> Result<Vec<String>> {
    let mut command = test_binary(dir, executable);
    command.args(["--list", "--format", "terse"]);
    let (mut job, rx) = stream::spawn(command, Runs::Tools)
        .with_context(|| format!("cannot run {}", executable.display()))?;
    let mut stdout = String::new();
    stream::pump(
        &rx,
        None,
        cancel,
        || None,
        |line| {
            if let Line::Out(text) = line {
                stdout.push_str(&text);
            }
        },
    );
    job.wait();
    Ok(libtest::parse_list(&stdout))
}

pub fn run_tests(
    dir: &Path,
    executable: &Path,
    limit: Duration,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Run> {
    std::thread::scope(|scope| {
        // The list is needed only for the verdict: it is read while the tests run.
        let listed = scope.spawn(|| list(dir, executable, cancel));
        let run = run_listed(dir, executable, limit, cancel, on_status)?;
        let listed = listed
            .join()
            .map_err(|_| anyhow::anyhow!("listing the tests failed"))??;
        Ok(Run { listed, ..run })
    })
}

/// The run, without the list of tests yet.
fn run_listed(
    dir: &Path,
    executable: &Path,
    limit: Duration,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Run> {
    let mut command = test_binary(dir, executable);
    command
        .arg("--color")
        .arg(if colour() { "always" } else { "never" })
        // Every test starts at once, so at the limit the unfinished ones are the running ones.
        .args(["--test-threads", ALL_AT_ONCE]);
    let (mut job, rx) = stream::spawn(command, Runs::LearnerCode)
        .with_context(|| format!("cannot run {}", executable.display()))?;
    let start = Instant::now();
    let (mut shown, mut exited, mut leftovers) = (0, None, 0);
    let mut output = Capped::default();
    let (mut finished, mut failed, mut summary) = (Vec::new(), Vec::new(), None);
    let stop = stream::pump(
        &rx,
        Some(start + limit),
        cancel,
        || {
            let secs = start.elapsed().as_secs();
            if secs > shown {
                shown = secs;
                on_status(&text::running(secs, limit.as_secs()));
            }
            match exited {
                None => {
                    let status = job.exited()?;
                    // Whatever the binary left behind may hold the pipe: it goes now.
                    leftovers = job.kill();
                    exited = Some((status.success(), Instant::now()));
                    None
                }
                Some((_, at)) => (at.elapsed() > DRAIN).then_some(Stop::Finished),
            }
        },
        |line| {
            let (Line::Out(text) | Line::Err(text)) = line;
            if let Some(name) = libtest::finished_test(&text) {
                finished.push(name);
            }
            failed.extend(libtest::failed_test(&text));
            summary = summary.or_else(|| Summary::parse(&text));
            output.push(&text);
        },
    );
    if exited.is_none() && stop != Stop::Finished {
        leftovers = job.kill();
    }
    let exit_ok = match exited {
        Some((ok, _)) => ok,
        None => job.wait(),
    };
    Ok(Run {
        stop,
        exit_ok,
        output: output.into_text(),
        listed: Vec::new(),
        finished,
        failed,
        summary,
        leftovers,
    })
}

/// What the `failed` tests said (their panics), from a run of those tests alone: when the
/// limit stops the checks, libtest never gets to print the failures it held back.
pub fn failures(
    dir: &Path,
    executable: &Path,
    failed: &[String],
    cancel: &Cancel,
) -> Result<String> {
    let mut command = test_binary(dir, executable);
    command
        .arg("--color")
        .arg(if colour() { "always" } else { "never" })
        .arg("--exact")
        .args(failed);
    let (mut job, rx) = stream::spawn(command, Runs::LearnerCode)
        .with_context(|| format!("cannot run {}", executable.display()))?;
    let mut output = Capped::default();
    let stop = stream::pump(
        &rx,
        Some(Instant::now() + FAILURES_LIMIT),
        cancel,
        || None,
        |line| {
            let (Line::Out(text) | Line::Err(text)) = line;
            output.push(&text);
        },
    );
    if stop != Stop::Finished {
        job.kill();
    }
    job.wait();
    Ok(output.into_text())
}
