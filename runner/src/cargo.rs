//! Building an exercise with cargo and running its checks under a real-time watchdog.
//!
//! One `cargo test --no-run` builds every requested target (compile errors come back as
//! JSON, already rendered); then each test binary runs on its own, in its own process
//! group, so a learner's deadlock can be killed with everything it started. The time
//! limit covers only the checks, never the (first, slow) build.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::info::Exercise;

/// Which copy of an exercise to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    Exercises,
    Solutions,
}

impl Package {
    pub fn name(self) -> &'static str {
        match self {
            Package::Exercises => "exercises",
            Package::Solutions => "solutions",
        }
    }

    pub fn bin(self, exercise: &Exercise) -> String {
        match self {
            Package::Exercises => exercise.bin().to_owned(),
            Package::Solutions => exercise.solution_bin(),
        }
    }

    /// The plain cargo command that checks the same thing, for the learner to run by hand.
    pub fn test_command(self, exercise: &Exercise) -> String {
        format!("cargo test -p {} --bin {}", self.name(), self.bin(exercise))
    }
}

/// Set it to stop a build or a run early (the watcher does when the file is saved again).
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    CompileError,
    ChecksFailed,
    /// The checks passed but clippy found one of the lints the exercise asks about.
    ClippyFailed,
    /// The checks were still running at the real-time limit and were killed.
    TimedOut {
        limit: Duration,
        unfinished: Vec<String>,
    },
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub verdict: Verdict,
    /// What the compiler and the checks printed, in reading order.
    pub output: String,
}

/// Compiler messages for one target, errors first.
#[derive(Default)]
struct Diagnostics {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Diagnostics {
    fn text(&self) -> String {
        self.errors
            .iter()
            .chain(&self.warnings)
            .map(String::as_str)
            .collect()
    }
}

#[derive(Default)]
struct Build {
    executables: HashMap<String, PathBuf>,
    diagnostics: HashMap<String, Diagnostics>,
    /// What cargo itself said that was not progress (a broken manifest, a missing target…).
    cargo_said: String,
    cancelled: bool,
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

fn colour() -> bool {
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    own_process_group(&mut command);
    command
}

#[cfg(unix)]
fn own_process_group(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(not(unix))]
fn own_process_group(_command: &mut Command) {}

/// A child in its own process group, registered so that Ctrl-C or a termination signal
/// takes down its whole tree too (it would not get the terminal's signal by itself).
struct Group {
    child: Child,
    slot: Option<usize>,
}

impl Group {
    fn new(child: Child) -> Group {
        let slot = interrupt::register(child.id());
        Group { child, slot }
    }

    /// Kills the child and everything it started (compilers, a test's own children).
    fn kill_tree(&mut self) {
        #[cfg(unix)]
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names the
            // process group the child leads (it was spawned with process_group(0)).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
    }

    fn wait(&mut self) -> bool {
        self.child.wait().is_ok_and(|status| status.success())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        interrupt::unregister(self.slot);
    }
}

/// The process groups running now, in a fixed table a signal handler can read safely.
mod interrupt {
    use std::sync::Once;
    use std::sync::atomic::{AtomicI32, Ordering};

    static GROUPS: [AtomicI32; 64] = [const { AtomicI32::new(0) }; 64];
    static INSTALL: Once = Once::new();

    pub fn register(pid: u32) -> Option<usize> {
        INSTALL.call_once(install);
        let pid = i32::try_from(pid).ok()?;
        GROUPS.iter().position(|g| {
            g.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        })
    }

    pub fn unregister(slot: Option<usize>) {
        if let Some(slot) = slot {
            GROUPS[slot].store(0, Ordering::SeqCst);
        }
    }

    #[cfg(unix)]
    fn install() {
        extern "C" fn on_signal(signal: libc::c_int) {
            for group in &GROUPS {
                let pid = group.load(Ordering::SeqCst);
                if pid > 0 {
                    // SAFETY: kill(2) is async-signal-safe.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
            }
            // SAFETY: signal(2) and raise(3) are async-signal-safe: die as the signal would have.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                libc::raise(signal);
            }
        }
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the handler only calls async-signal-safe functions and reads atomics.
            unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
        }
    }

    #[cfg(not(unix))]
    fn install() {}
}

enum Line {
    Out(String),
    Err(String),
}

/// Runs `command`, sending every line of its output to the returned channel. The
/// channel closes when both pipes do.
fn spawn_lines(mut command: Command) -> Result<(Group, mpsc::Receiver<Line>)> {
    let mut child = command
        .spawn()
        .context("cannot start cargo: is the Rust toolchain installed?")?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    forward(stdout, tx.clone(), Line::Out);
    forward(stderr, tx, Line::Err);
    Ok((Group::new(child), rx))
}

fn forward(pipe: impl Read + Send + 'static, tx: mpsc::Sender<Line>, wrap: fn(String) -> Line) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            if tx
                .send(wrap(String::from_utf8_lossy(&buf).into_owned()))
                .is_err()
            {
                break;
            }
            buf.clear();
        }
    });
}

/// Receives lines until the channel closes, the deadline passes or `cancel` is set.
/// Returns why it stopped.
enum Stop {
    Finished,
    Deadline,
    Cancelled,
}

fn pump(
    rx: &mpsc::Receiver<Line>,
    deadline: Option<Instant>,
    cancel: &Cancel,
    mut on_line: impl FnMut(Line),
) -> Stop {
    const TICK: Duration = Duration::from_millis(25);
    loop {
        if cancel.is_cancelled() {
            return Stop::Cancelled;
        }
        let wait = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) => left.min(TICK),
                None => return Stop::Deadline,
            },
            None => TICK,
        };
        match rx.recv_timeout(wait) {
            Ok(line) => on_line(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Stop::Finished,
        }
    }
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

/// Builds the test binaries of `bins` in one cargo invocation (cargo compiles them in
/// parallel and carries on past a target that does not compile).
fn build(
    root: &Path,
    package: Package,
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
        "-p",
        package.name(),
    ]);
    for bin in bins {
        command.args(["--bin", bin]);
    }
    let (mut child, rx) = spawn_lines(command)?;
    let mut build = Build::default();
    let mut progress = Progress::default();
    let stop = pump(&rx, None, cancel, |line| match line {
        Line::Out(json) => build.record(&json),
        Line::Err(text) => match progress.update(&text) {
            Some(status) => on_status(&status),
            None if !is_noise(&text) => build.cargo_said.push_str(&text),
            None => {}
        },
    });
    if let Stop::Cancelled = stop {
        child.kill_tree();
        build.cancelled = true;
    }
    child.wait();
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

/// The result of running one test binary.
struct Run {
    stop: Stop,
    success: bool,
    output: String,
    finished: Vec<String>,
}

fn run_checks(
    root: &Path,
    package: Package,
    executable: &Path,
    limit: Duration,
    cancel: &Cancel,
) -> Result<Run> {
    let mut command = Command::new(executable);
    command
        .arg("--color")
        .arg(if colour() { "always" } else { "never" })
        .current_dir(root.join(package.name()))
        .env("CARGO_MANIFEST_DIR", root.join(package.name()))
        // Panic messages say what failed; backtraces through the runtime only bury them.
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    own_process_group(&mut command);
    let (mut child, rx) =
        spawn_lines(command).with_context(|| format!("cannot run {}", executable.display()))?;
    let mut output = String::new();
    let mut finished = Vec::new();
    let stop = pump(&rx, Some(Instant::now() + limit), cancel, |line| {
        let (Line::Out(text) | Line::Err(text)) = line;
        if let Some(name) = finished_test(&text) {
            finished.push(name);
        }
        output.push_str(&text);
    });
    if !matches!(stop, Stop::Finished) {
        child.kill_tree();
    }
    let success = child.wait();
    Ok(Run {
        stop,
        success,
        output,
        finished,
    })
}

/// `test tests::name ... ok` → `tests::name`.
fn finished_test(line: &str) -> Option<String> {
    let plain = strip_ansi(line);
    let rest = plain.strip_prefix("test ")?;
    let (name, _) = rest.split_once(" ... ")?;
    Some(name.to_owned())
}

/// Every check of a test binary (`--list` runs nothing).
fn list_tests(executable: &Path) -> Vec<String> {
    let Ok(output) = Command::new(executable)
        .args(["--list", "--format", "terse"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Builds and checks one exercise.
pub fn check(
    root: &Path,
    exercise: &Exercise,
    package: Package,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Report> {
    let reports = check_many(root, &[exercise], package, cancel, on_status)?;
    reports.into_iter().next().context("cargo reported nothing")
}

/// Builds all `exercises` at once, then runs their checks, two at a time on two cores.
pub fn check_many(
    root: &Path,
    exercises: &[&Exercise],
    package: Package,
    cancel: &Cancel,
    on_status: &mut dyn FnMut(&str),
) -> Result<Vec<Report>> {
    let bins: Vec<String> = exercises.iter().map(|e| package.bin(e)).collect();
    let build = build(root, package, &bins, cancel, on_status)?;
    if build.cancelled {
        return Ok(exercises.iter().map(|_| cancelled()).collect());
    }
    let parallel = std::thread::available_parallelism().map_or(1, usize::from);
    let mut reports = Vec::with_capacity(exercises.len());
    for chunk in exercises.chunks(parallel) {
        let chunk_reports: Vec<Result<Report>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|exercise| scope.spawn(|| verdict(root, exercise, package, &build, cancel)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("checking thread panicked")))
                })
                .collect()
        });
        for report in chunk_reports {
            reports.push(report?);
        }
    }
    Ok(reports)
}

fn cancelled() -> Report {
    Report {
        verdict: Verdict::Cancelled,
        output: String::new(),
    }
}

fn verdict(
    root: &Path,
    exercise: &Exercise,
    package: Package,
    build: &Build,
    cancel: &Cancel,
) -> Result<Report> {
    let bin = package.bin(exercise);
    let compiler = build
        .diagnostics
        .get(&bin)
        .map(Diagnostics::text)
        .unwrap_or_default();
    let Some(executable) = build.executables.get(&bin) else {
        let mut output = compiler;
        output.push_str(&build.cargo_said);
        return Ok(Report {
            verdict: Verdict::CompileError,
            output,
        });
    };
    let run = run_checks(root, package, executable, exercise.timeout, cancel)?;
    let mut output = compiler;
    output.push_str(&run.output);
    let verdict = match run.stop {
        Stop::Cancelled => return Ok(cancelled()),
        Stop::Deadline => {
            let unfinished = list_tests(executable)
                .into_iter()
                .filter(|t| !run.finished.contains(t))
                .collect();
            Verdict::TimedOut {
                limit: exercise.timeout,
                unfinished,
            }
        }
        Stop::Finished if !run.success => Verdict::ChecksFailed,
        Stop::Finished if exercise.clippy.is_empty() => Verdict::Passed,
        Stop::Finished => match clippy(root, exercise, package, cancel)? {
            None => Verdict::Passed,
            Some(lints) => {
                output.push_str(&lints);
                Verdict::ClippyFailed
            }
        },
    };
    Ok(Report { verdict, output })
}

/// Runs clippy with only the exercise's lints as errors; returns what they found.
fn clippy(
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
        package.name(),
        "--bin",
        &package.bin(exercise),
    ]);
    command.args(["--", "-A", "clippy::all"]);
    for lint in &exercise.clippy {
        command.args(["-D", lint]);
    }
    let (mut child, rx) = spawn_lines(command)?;
    let mut build = Build::default();
    let stop = pump(&rx, None, cancel, |line| {
        if let Line::Out(json) = line {
            build.record(&json);
        }
    });
    if let Stop::Cancelled = stop {
        child.kill_tree();
    }
    child.wait();
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

    #[test]
    fn finished_tests_are_read_through_colours() {
        assert_eq!(
            finished_test("test tests::a ... \x1b[32mok\x1b[0m\n").as_deref(),
            Some("tests::a")
        );
        assert_eq!(finished_test("running 3 tests\n"), None);
    }
}
