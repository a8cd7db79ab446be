//! Building an exercise's test binary with cargo, and clippy's verdict on it.
//!
//! Cargo's JSON messages say, per target, where the executable is and what the compiler
//! said (already rendered, in colour when the learner's terminal has it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;
use serde::Deserialize;

use super::process::Runs;
use super::stream::{self, Line, Stop};
use super::{Cancel, Package};
use crate::info::Exercise;

/// Compiler messages for one target, errors first.
#[derive(Default)]
pub struct Diagnostics {
    pub errors: Vec<String>,
    warnings: Vec<String>,
}

impl Diagnostics {
    pub fn text(&self) -> String {
        self.errors
            .iter()
            .chain(&self.warnings)
            .map(String::as_str)
            .collect()
    }
}

#[derive(Default)]
pub struct Build {
    pub executables: HashMap<String, PathBuf>,
    pub diagnostics: HashMap<String, Diagnostics>,
    /// What cargo itself said that was not progress (a broken manifest, a missing target…).
    pub cargo_said: String,
    pub cancelled: bool,
}

/// What cargo prints to say where it is; everything else on its stderr is worth showing.
const PROGRESS_WORDS: [&str; 14] = [
    "Compiling",
    "Checking",
    "Finished",
    "Blocking",
    "Updating",
    "Downloading",
    "Downloaded",
    "Locking",
    "Adding",
    "Fresh",
    "Running",
    "Executable",
    "Building",
    "Packaging",
];

pub fn colour() -> bool {
    colored::control::SHOULD_COLORIZE.should_colorize()
}

/// JSON messages for the runner to read, with the compiler's own rendering (in colour when
/// the learner's terminal has it) to show as cargo would.
fn message_format() -> &'static str {
    if colour() {
        "json-diagnostic-rendered-ansi"
    } else {
        "json"
    }
}

fn cargo_command(root: &Path) -> Command {
    // Under `cargo run`, $CARGO names the very cargo (and toolchain) the learner used.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .stdin(Stdio::null());
    command
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    target: Option<Target>,
    message: Option<CompilerMessage>,
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

#[derive(Deserialize)]
struct CompilerMessage {
    level: String,
    rendered: Option<String>,
}

/// Builds the test binaries of `bins`, targets of `packages`, in one cargo invocation
/// (cargo compiles them in parallel and carries on past a target that does not compile).
pub fn build(
    root: &Path,
    packages: &[String],
    bins: &[String],
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Build> {
    let format = message_format();
    let mut command = cargo_command(root);
    command.args([
        "test",
        "--no-run",
        "--no-fail-fast",
        "--message-format",
        format,
    ]);
    for package in packages {
        command.args(["-p", package]);
    }
    for bin in bins {
        command.args(["--bin", bin]);
    }
    let (mut job, rx) = stream::spawn(command, Runs::Tools)?;
    let mut build = Build::default();
    let mut progress = Progress::default();
    let stop = stream::pump(
        &rx,
        None,
        cancel,
        || None,
        |line| match line {
            Line::Out(json) => build.record(&json),
            Line::Err(text) => match progress.update(&text) {
                Some(status) => on_status(&status),
                None if !is_noise(&text) => build.cargo_said.push_str(&text),
                None => {}
            },
        },
    );
    if let Stop::Cancelled = stop {
        job.kill();
        build.cancelled = true;
    }
    job.wait();
    Ok(build)
}

impl Build {
    fn record(&mut self, json: &str) {
        let Ok(message) = serde_json::from_str::<Message>(json) else {
            return;
        };
        let Some(target) = message.target else { return };
        match (message.reason.as_str(), message.message, message.executable) {
            ("compiler-artifact", _, Some(executable)) => {
                self.executables.insert(target.name, executable);
            }
            (
                "compiler-message",
                Some(CompilerMessage {
                    level,
                    rendered: Some(text),
                }),
                _,
            ) => {
                let diagnostics = self.diagnostics.entry(target.name).or_default();
                match level.as_str() {
                    "error" | "error: internal compiler error" => diagnostics.errors.push(text),
                    _ => diagnostics.warnings.push(text),
                }
            }
            _ => {}
        }
    }
}

/// Turns cargo's "Compiling tokio v1.48.0" lines into a status the learner can follow
/// through the first, slow build of the dependencies.
#[derive(Default)]
struct Progress {
    compiled: usize,
}

impl Progress {
    fn update(&mut self, line: &str) -> Option<String> {
        let line = line.trim();
        let word = line.split_whitespace().next()?;
        if !PROGRESS_WORDS.contains(&word) {
            return None;
        }
        if word == "Compiling" {
            self.compiled += 1;
            let what = line.trim_start_matches("Compiling").trim();
            let crate_name = what.split(" (").next().unwrap_or(what);
            return Some(if self.compiled > 3 {
                format!(
                    "Building ({} crates so far; the first build takes a minute): {crate_name}",
                    self.compiled
                )
            } else {
                format!("Building: {crate_name}")
            });
        }
        Some(line.to_owned())
    }
}

/// Cargo's own summaries of what the compiler already said.
fn is_noise(line: &str) -> bool {
    let line = line.trim();
    line.is_empty()
        || line.starts_with("error: could not compile")
        || line.starts_with("warning: build failed, waiting")
        || (line.starts_with("warning: `") && line.contains("generated"))
        || line.starts_with("error: aborting due to")
}

/// Runs clippy with only the exercise's lints as errors; returns what they found.
pub fn clippy(
    root: &Path,
    exercise: &Exercise,
    package: Package,
    cancel: &Cancel,
) -> Result<Option<String>> {
    let format = message_format();
    let mut command = cargo_command(root);
    command.args([
        "clippy",
        "--message-format",
        format,
        "-p",
        &package.cargo_name(exercise),
        "--bin",
        &package.bin(exercise),
    ]);
    command.args(["--", "-A", "clippy::all"]);
    for lint in &exercise.clippy {
        command.args(["-D", lint]);
    }
    let (mut job, rx) = stream::spawn(command, Runs::Tools)?;
    let mut build = Build::default();
    let stop = stream::pump(
        &rx,
        None,
        cancel,
        || None,
        |line| {
            if let Line::Out(json) = line {
                build.record(&json);
            }
        },
    );
    if let Stop::Cancelled = stop {
        job.kill();
    }
    job.wait();
    let errors: String = build
        .diagnostics
        .values()
        .flat_map(|d| &d.errors)
        .map(String::as_str)
        .collect();
    Ok((!errors.is_empty()).then_some(errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_compiled_crates() {
        let mut progress = Progress::default();
        assert_eq!(
            progress.update("   Compiling libc v0.2.1\n").unwrap(),
            "Building: libc v0.2.1"
        );
        for _ in 0..3 {
            progress.update("   Compiling mio v1.0.0");
        }
        let status = progress
            .update("   Compiling exercises v0.0.0 (/x/exercises)")
            .unwrap();
        assert!(status.contains("5 crates so far"), "{status}");
        assert!(status.ends_with("exercises v0.0.0"), "{status}");
        assert!(progress.update("error: no bin target named `x`").is_none());
    }

    #[test]
    fn cargo_summaries_are_noise_but_real_errors_are_not() {
        assert!(is_noise(
            "error: could not compile `exercises` (bin \"a\" test) due to 1 previous error"
        ));
        assert!(is_noise(
            "warning: `exercises` (bin \"a\" test) generated 1 warning"
        ));
        assert!(!is_noise(
            "error: no bin target named `nope` in `exercises` package"
        ));
    }

    #[test]
    fn compiler_messages_are_sorted_by_target_and_level() {
        let mut build = Build::default();
        build.record(r#"{"reason":"compiler-message","target":{"name":"a"},"message":{"level":"warning","rendered":"w\n"}}"#);
        build.record(r#"{"reason":"compiler-message","target":{"name":"a"},"message":{"level":"error","rendered":"e\n"}}"#);
        build.record(
            r#"{"reason":"compiler-artifact","target":{"name":"b"},"executable":"/t/b-123"}"#,
        );
        build.record("not json");
        assert_eq!(build.diagnostics["a"].text(), "e\nw\n");
        assert_eq!(build.executables["b"], PathBuf::from("/t/b-123"));
    }
}
