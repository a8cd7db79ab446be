//! The corpus (`corpus/<chapter>/<name>.toml`, see `corpus/README.md`): wrong solutions the
//! checks must reject and other right solutions they must accept, each a list of edits to the
//! reference solution.
//!
//! Every entry becomes one `[[bin]]` of a scratch cargo package under
//! `target/asynclings-corpus/`, which shares the workspace's target folder, lock file, profiles
//! and dependencies, so one `cargo build --tests --keep-going` builds them all and reuses what
//! the workspace already built. Compile errors are attributed to their entry through cargo's
//! JSON messages. The test binaries then run in parallel from a work queue, each under the
//! exercise's time limit; a run stopped by the limit counts as a rejection.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::info::{Course, Exercise};

/// One exercise's corpus file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Corpus {
    #[serde(default)]
    pub wrong: Vec<Entry>,
    #[serde(default)]
    pub right: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// One line saying what this solution does.
    pub what: String,
    pub edits: Vec<Edit>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    pub find: String,
    pub replace: String,
}

/// Whether an entry must be rejected or accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Wrong,
    Right,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Wrong => "wrong",
            Kind::Right => "right",
        })
    }
}

/// What went wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A wrong solution passed every check.
    WrongPassed,
    /// A right solution failed a check (or was stopped by the time limit); what it printed.
    RightFailed(String),
    /// An edit's `find` does not occur exactly once before the checks.
    EditDoesNotApply(String),
    /// The edited solution does not compile; the compiler's errors.
    DoesNotCompile(String),
}

#[derive(Debug, Clone)]
pub struct Mismatch {
    pub exercise: String,
    pub kind: Kind,
    pub what: String,
    pub problem: Problem,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Mismatch {
            exercise,
            kind,
            what,
            problem,
        } = self;
        write!(f, "{exercise}, {kind} entry \"{what}\": ")?;
        match problem {
            Problem::WrongPassed => write!(f, "this wrong solution passed every check"),
            Problem::RightFailed(output) => {
                write!(
                    f,
                    "this right solution failed its checks:\n{}",
                    indent(output)
                )
            }
            Problem::EditDoesNotApply(why) => write!(f, "an edit does not apply: {why}"),
            Problem::DoesNotCompile(errors) => {
                write!(f, "does not compile:\n{}", indent(errors))
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// The result of running (part of) the corpus.
#[derive(Debug, Default)]
pub struct Outcome {
    /// How many entries were built and run (or found not to apply).
    pub entries: usize,
    /// Wrong entries stopped by the time limit (a rejection, listed to keep an eye on).
    pub stopped_by_time_limit: Vec<(String, String)>,
    pub mismatches: Vec<Mismatch>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// The corpus file of an exercise: `corpus/<chapter>/<name>.toml`.
pub fn corpus_file(root: &Path, exercise: &Exercise) -> PathBuf {
    root.join("corpus")
        .join(exercise.path.with_extension("toml"))
}

pub fn load(path: &Path) -> Result<Corpus> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not a valid corpus file", path.display()))
}

/// Applies `edits` to the reference solution `source`: each `find` must occur exactly once
/// before the checks (`#[cfg(test)]`).
pub fn apply(source: &str, edits: &[Edit]) -> std::result::Result<String, String> {
    let mut code = source.to_owned();
    for edit in edits {
        let checks = code.find("#[cfg(test)]").unwrap_or(code.len());
        let (before, after) = code.split_at(checks);
        let found: Vec<usize> = before.match_indices(&edit.find).map(|(i, _)| i).collect();
        let at = match found.as_slice() {
            [at] => *at,
            [] => {
                return Err(format!(
                    "not found before the checks: {}",
                    first_line(&edit.find)
                ));
            }
            many => {
                return Err(format!(
                    "found {} times, it must be exactly once: {}",
                    many.len(),
                    first_line(&edit.find)
                ));
            }
        };
        code = format!(
            "{}{}{}{after}",
            &before[..at],
            edit.replace,
            &before[at + edit.find.len()..]
        );
    }
    Ok(code)
}

fn first_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    format!("`{line}`")
}

/// Runs the corpus of every exercise that has one, or of the one named.
pub fn run(root: &Path, course: &Course, only: Option<&str>) -> Result<Outcome> {
    let exercises: Vec<&Exercise> = match only {
        Some(name) => vec![course.find(name)?.1],
        None => course.exercises.iter().collect(),
    };
    let mut corpora = Vec::new();
    for exercise in exercises {
        let path = corpus_file(root, exercise);
        if path.is_file() {
            corpora.push((exercise, load(&path)?));
        } else if only.is_some() {
            bail!("{} has no corpus file {}", exercise.name, path.display());
        }
    }
    let corpora: Vec<(&Exercise, &Corpus)> = corpora.iter().map(|(e, c)| (*e, c)).collect();
    check(root, &corpora, only.unwrap_or("all"))
}

/// One entry turned into a bin of the scratch package.
struct Job<'a> {
    exercise: &'a Exercise,
    kind: Kind,
    what: String,
    bin: String,
}

/// Builds and runs the given corpora; `label` names the scratch package (so that two runs at
/// once, e.g. a test and the command, do not write the same folder).
pub fn check(root: &Path, corpora: &[(&Exercise, &Corpus)], label: &str) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let scratch = target_dir(root).join("asynclings-corpus").join(label);
    let src = scratch.join("src");
    fs::create_dir_all(&src)?;
    let mut jobs = Vec::new();
    for (exercise, corpus) in corpora {
        let solution_path = exercise.solution_file(root);
        let solution = fs::read_to_string(&solution_path)
            .with_context(|| format!("cannot read {}", solution_path.display()))?;
        let entries = corpus
            .wrong
            .iter()
            .map(|e| (Kind::Wrong, e))
            .chain(corpus.right.iter().map(|e| (Kind::Right, e)));
        for (index, (kind, entry)) in entries.enumerate() {
            outcome.entries += 1;
            match apply(&solution, &entry.edits) {
                Ok(code) => {
                    let bin = format!("{}__{kind}_{index}", exercise.name);
                    write_if_changed(&src.join(format!("{bin}.rs")), &code)?;
                    jobs.push(Job {
                        exercise,
                        kind,
                        what: entry.what.clone(),
                        bin,
                    });
                }
                Err(why) => outcome.mismatches.push(Mismatch {
                    exercise: exercise.name.clone(),
                    kind,
                    what: entry.what.clone(),
                    problem: Problem::EditDoesNotApply(why),
                }),
            }
        }
    }
    if jobs.is_empty() {
        return Ok(outcome);
    }
    // Sources from entries that are gone would only confuse a reader of the folder.
    for file in fs::read_dir(&src)? {
        let path = file?.path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if !jobs.iter().any(|j| j.bin == stem) {
            fs::remove_file(&path)?;
        }
    }
    let manifest = scratch.join("Cargo.toml");
    let bins: Vec<&str> = jobs.iter().map(|j| j.bin.as_str()).collect();
    write_if_changed(&manifest, &scratch_manifest(root, label, &bins)?)?;
    write_if_changed(
        &scratch.join("Cargo.lock"),
        &fs::read_to_string(root.join("Cargo.lock")).context("cannot read Cargo.lock")?,
    )?;
    // A first build (or one after many edits) takes minutes: say what is going on.
    eprintln!(
        "corpus: building {} entries in {}…",
        jobs.len(),
        crate::relative(root, &scratch).display()
    );
    let built = build(root, &manifest)?;
    eprintln!("corpus: running their checks…");

    let mut queue = VecDeque::new();
    for job in &jobs {
        match built.executables.get(&job.bin) {
            Some(executable) => queue.push_back((job, executable.clone())),
            None => {
                let errors = built.errors.get(&job.bin).cloned().unwrap_or_else(|| {
                    format!(
                        "cargo built no test binary for it; cargo said:\n{}",
                        built.cargo_said
                    )
                });
                outcome.mismatches.push(Mismatch {
                    exercise: job.exercise.name.clone(),
                    kind: job.kind,
                    what: job.what.clone(),
                    problem: Problem::DoesNotCompile(errors),
                });
            }
        }
    }
    let queue = Mutex::new(queue);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let solutions_dir = root.join("solutions");
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let Some((job, executable)) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let ran = run_one(&executable, &solutions_dir, job.exercise.timeout);
                    results.lock().unwrap().push((job, ran));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(job, _)| jobs.iter().position(|j| j.bin == job.bin));
    for (job, ran) in results {
        let ran = ran?;
        let mismatch = |problem| Mismatch {
            exercise: job.exercise.name.clone(),
            kind: job.kind,
            what: job.what.clone(),
            problem,
        };
        match (job.kind, ran) {
            (Kind::Wrong, Ran::Passed) => outcome.mismatches.push(mismatch(Problem::WrongPassed)),
            (Kind::Wrong, Ran::Failed(_)) => {}
            (Kind::Wrong, Ran::StoppedByTimeLimit(_)) => outcome
                .stopped_by_time_limit
                .push((job.exercise.name.clone(), job.what.clone())),
            (Kind::Right, Ran::Passed) => {}
            (Kind::Right, Ran::Failed(output)) => {
                outcome
                    .mismatches
                    .push(mismatch(Problem::RightFailed(failures(&output))));
            }
            (Kind::Right, Ran::StoppedByTimeLimit(limit)) => {
                outcome
                    .mismatches
                    .push(mismatch(Problem::RightFailed(format!(
                        "stopped by the time limit ({} s)",
                        limit.as_secs_f64()
                    ))));
            }
        }
    }
    Ok(outcome)
}

/// Writes only what changed, so that cargo rebuilds only the entries that did.
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The workspace's target folder (honouring `CARGO_TARGET_DIR`).
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// A manifest with the same dependencies (path dependencies made absolute) and profiles as
/// the `solutions` package in its workspace, and one bin per entry.
fn scratch_manifest(root: &Path, label: &str, bins: &[&str]) -> Result<String> {
    let read = |path: PathBuf| -> Result<toml::Table> {
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
    };
    let workspace = read(root.join("Cargo.toml"))?;
    let solutions = read(root.join("solutions").join("Cargo.toml"))?;
    let shared = workspace
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    let resolve = |deps: Option<&toml::Value>| -> toml::Table {
        let mut out = toml::Table::new();
        for (name, spec) in deps.and_then(toml::Value::as_table).into_iter().flatten() {
            let inherits = spec.get("workspace").and_then(toml::Value::as_bool) == Some(true);
            let mut spec = if inherits {
                let mut base = shared.get(name).cloned().unwrap_or(toml::Value::from("*"));
                if let toml::Value::String(version) = base {
                    base = toml::Value::Table(toml::Table::from_iter([(
                        "version".to_owned(),
                        toml::Value::String(version),
                    )]));
                }
                // Extra features and `optional` from the member's own entry.
                if let (Some(table), Some(extra)) = (base.as_table_mut(), spec.as_table()) {
                    for (key, value) in extra {
                        if key != "workspace" {
                            table.insert(key.clone(), value.clone());
                        }
                    }
                }
                base
            } else {
                spec.clone()
            };
            if let Some(path) = spec.get("path").and_then(toml::Value::as_str) {
                let base = if inherits {
                    root.to_path_buf()
                } else {
                    root.join("solutions")
                };
                let absolute = base.join(path).display().to_string();
                spec.as_table_mut()
                    .expect("a path dependency is a table")
                    .insert("path".to_owned(), toml::Value::String(absolute));
            }
            out.insert(name.clone(), spec);
        }
        out
    };
    let edition = workspace
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("edition"))
        .cloned()
        .unwrap_or(toml::Value::from("2024"));
    let mut manifest = toml::Table::new();
    manifest.insert(
        "package".to_owned(),
        toml::Value::Table(toml::Table::from_iter([
            (
                "name".to_owned(),
                toml::Value::from(format!("asynclings-corpus-{label}")),
            ),
            ("version".to_owned(), toml::Value::from("0.0.0")),
            ("edition".to_owned(), edition),
            ("publish".to_owned(), toml::Value::from(false)),
            ("autobins".to_owned(), toml::Value::from(false)),
        ])),
    );
    manifest.insert(
        "workspace".to_owned(),
        toml::Value::Table(toml::Table::new()),
    );
    manifest.insert(
        "dependencies".to_owned(),
        toml::Value::Table(resolve(solutions.get("dependencies"))),
    );
    manifest.insert(
        "dev-dependencies".to_owned(),
        toml::Value::Table(resolve(solutions.get("dev-dependencies"))),
    );
    if let Some(profile) = workspace.get("profile") {
        manifest.insert("profile".to_owned(), profile.clone());
    }
    let bins = bins
        .iter()
        .map(|bin| {
            toml::Value::Table(toml::Table::from_iter([
                ("name".to_owned(), toml::Value::from(*bin)),
                (
                    "path".to_owned(),
                    toml::Value::from(format!("src/{bin}.rs")),
                ),
            ]))
        })
        .collect();
    manifest.insert("bin".to_owned(), toml::Value::Array(bins));
    Ok(toml::to_string(&manifest)?)
}

#[derive(Default)]
struct Built {
    executables: HashMap<String, PathBuf>,
    errors: HashMap<String, String>,
    cargo_said: String,
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    target: Option<Target>,
    executable: Option<PathBuf>,
    profile: Option<Profile>,
    message: Option<CompilerMessage>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

#[derive(Deserialize)]
struct CompilerMessage {
    level: String,
    rendered: Option<String>,
}

fn build(root: &Path, manifest: &Path) -> Result<Built> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        // `cargo test --no-run` stops at the first entry that does not compile.
        .args([
            "build",
            "--tests",
            "--keep-going",
            "--message-format",
            "json",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target_dir(root))
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .stdin(Stdio::null())
        .output()
        .context("cannot start cargo")?;
    let mut built = Built {
        cargo_said: String::from_utf8_lossy(&output.stderr).into_owned(),
        ..Built::default()
    };
    for line in output.stdout.lines() {
        let Ok(message) = serde_json::from_str::<Message>(&line?) else {
            continue;
        };
        let Some(target) = message.target else {
            continue;
        };
        match message.reason.as_str() {
            "compiler-artifact" if message.profile.is_some_and(|p| p.test) => {
                if let Some(executable) = message.executable {
                    built.executables.insert(target.name, executable);
                }
            }
            "compiler-message" => {
                if let Some(m) = message.message.filter(|m| m.level == "error") {
                    let errors = built.errors.entry(target.name).or_default();
                    errors.push_str(m.rendered.as_deref().unwrap_or("an error"));
                }
            }
            _ => {}
        }
    }
    Ok(built)
}

enum Ran {
    Passed,
    Failed(String),
    StoppedByTimeLimit(Duration),
}

/// Runs one test binary in its own process group, killed with all it started at `limit`.
fn run_one(executable: &Path, dir: &Path, limit: Duration) -> Result<Ran> {
    let log = tempfile_path(executable);
    let file = fs::File::create(&log)?;
    let mut command = Command::new(executable);
    command
        .args(["--color", "never"])
        .current_dir(dir)
        .env("CARGO_MANIFEST_DIR", dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", executable.display()))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            #[cfg(unix)]
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) has no memory-safety preconditions; the negative pid names
                // the process group the child leads (spawned with process_group(0)).
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    Ok(match status {
        None => Ran::StoppedByTimeLimit(limit),
        Some(status) if status.success() => Ran::Passed,
        Some(_) => Ran::Failed(output),
    })
}

fn tempfile_path(executable: &Path) -> PathBuf {
    executable.with_extension("corpus-log")
}

/// The failing checks' messages, without the list of those that passed.
fn failures(output: &str) -> String {
    let kept: Vec<&str> = output
        .lines()
        .filter(|l| !(l.starts_with("test ") && l.ends_with(" ok")))
        .filter(|l| !l.trim().is_empty())
        .collect();
    kept.join("\n")
}

/// Prints the outcome; `true` when the corpus is judged right in full.
pub fn report(outcome: &Outcome, took: Duration) -> bool {
    for (exercise, what) in &outcome.stopped_by_time_limit {
        println!("{exercise}, wrong entry \"{what}\": rejected (stopped by the time limit)");
    }
    for mismatch in &outcome.mismatches {
        println!("MISMATCH {mismatch}");
    }
    println!(
        "corpus: {} entries, {} mismatches, {:.1} s",
        outcome.entries,
        outcome.mismatches.len(),
        took.as_secs_f64()
    );
    outcome.passed()
}
