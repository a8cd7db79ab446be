//! The corpus (`corpus/<chapter>/<name>.toml`, see `corpus/README.md`): wrong solutions the
//! checks must reject and other right solutions they must accept, each a list of edits to the
//! reference solution.
//!
//! Every entry becomes a module of a scratch cargo package (`scratch.rs`), one test binary
//! per exercise, built by one `cargo build --tests --keep-going` (`build.rs`) that reuses what
//! the workspace already built. Each entry's checks then run alone from that binary, in
//! parallel from a work queue, under the exercise's time limit (`judge.rs`); a run stopped by
//! the limit counts as a rejection.

mod build;
mod judge;
mod scratch;

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::info::{Course, Exercise};
use scratch::Scratch;

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
    /// None of its checks ran: the filter selecting its module's tests matched nothing.
    NoChecksRan(String),
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
            Problem::NoChecksRan(module) => write!(
                f,
                "none of its checks ran (no test under `{module}::` in its test binary)"
            ),
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

/// One entry to judge: a module of its exercise's test binary.
struct Job<'a> {
    exercise: &'a Exercise,
    kind: Kind,
    what: String,
    /// The module its code is, e.g. `wrong_3`; its checks are the tests under `wrong_3::`.
    module: String,
}

impl Job<'_> {
    fn mismatch(&self, problem: Problem) -> Mismatch {
        Mismatch {
            exercise: self.exercise.name.clone(),
            kind: self.kind,
            what: self.what.clone(),
            problem,
        }
    }

    /// The bin that holds this entry alone (when its exercise's bin does not compile).
    fn own_bin(&self) -> String {
        format!("{}__{}", self.exercise.name, self.module)
    }
}

/// Builds and runs the given corpora; `label` names the scratch package (so that two runs at
/// once, e.g. a test and the command, do not write the same folder).
/// The exercises of each package pair (see `info.toml`'s `package`) get a scratch package
/// of their own, so that the main pair's corpus never builds the HTTP stack.
pub fn check(root: &Path, corpora: &[(&Exercise, &Corpus)], label: &str) -> Result<Outcome> {
    let mut groups: Vec<Option<&str>> = Vec::new();
    for (exercise, _) in corpora {
        if !groups.contains(&exercise.package.as_deref()) {
            groups.push(exercise.package.as_deref());
        }
    }
    let mut outcome = Outcome::default();
    for group in groups {
        let mine: Vec<(&Exercise, &Corpus)> = corpora
            .iter()
            .filter(|(e, _)| e.package.as_deref() == group)
            .copied()
            .collect();
        let label = match group {
            None => label.to_owned(),
            Some(group) => format!("{label}-{group}"),
        };
        let part = check_group(root, &mine, &label, group)?;
        outcome.entries += part.entries;
        outcome
            .stopped_by_time_limit
            .extend(part.stopped_by_time_limit);
        outcome.mismatches.extend(part.mismatches);
    }
    Ok(outcome)
}

fn check_group(
    root: &Path,
    corpora: &[(&Exercise, &Corpus)],
    label: &str,
    group: Option<&str>,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut scratch = Scratch::new(
        target_dir(root).join("asynclings-corpus").join(label),
        group,
    )?;
    let jobs = write_entries(root, corpora, &mut scratch, &mut outcome)?;
    if jobs.is_empty() {
        return Ok(outcome);
    }
    // A first build (or one after many edits) takes minutes: say what is going on.
    eprintln!(
        "corpus: building {} entries in {}…",
        jobs.len(),
        crate::relative(root, &scratch.dir).display()
    );
    let executables = build_all(root, label, &mut scratch, &jobs, &mut outcome)?;
    scratch.remove_stale()?;
    eprintln!("corpus: running their checks…");
    let ran = run_all(root, &executables)?;
    for (job, ran) in ran {
        judge(job, ran, &mut outcome);
    }
    Ok(outcome)
}

/// Applies every entry's edits and writes the result as a module of the scratch package.
fn write_entries<'a>(
    root: &Path,
    corpora: &[(&'a Exercise, &Corpus)],
    scratch: &mut Scratch,
    outcome: &mut Outcome,
) -> Result<Vec<Job<'a>>> {
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
            let job = Job {
                exercise,
                kind,
                what: entry.what.clone(),
                module: format!("{kind}_{index}"),
            };
            match apply(&solution, &entry.edits) {
                Ok(code) => {
                    scratch.write_entry(&exercise.name, &job.module, &code)?;
                    jobs.push(job);
                }
                Err(why) => outcome
                    .mismatches
                    .push(job.mismatch(Problem::EditDoesNotApply(why))),
            }
        }
    }
    Ok(jobs)
}

/// Builds one test binary per exercise, holding all its entries: one link per exercise, not
/// per entry. An exercise whose binary does not compile is built again one entry per binary,
/// so that the compile errors name their entry and the other entries still run.
fn build_all<'j, 'a>(
    root: &Path,
    label: &str,
    scratch: &mut Scratch,
    jobs: &'j [Job<'a>],
    outcome: &mut Outcome,
) -> Result<Vec<(&'j Job<'a>, PathBuf)>> {
    let mut by_exercise: Vec<(&str, Vec<&Job>)> = Vec::new();
    for job in jobs {
        match by_exercise.last_mut() {
            Some((name, group)) if *name == job.exercise.name => group.push(job),
            _ => by_exercise.push((&job.exercise.name, vec![job])),
        }
    }
    for (name, group) in &by_exercise {
        let modules: Vec<&str> = group.iter().map(|j| j.module.as_str()).collect();
        scratch.write_bin(name, name, &modules)?;
    }
    let bins: Vec<&str> = by_exercise.iter().map(|(name, _)| *name).collect();
    let built = build::build(
        &scratch.write_manifest(root, label, &bins)?,
        &target_dir(root),
    )?;
    let mut executables = Vec::new();
    let mut alone = Vec::new();
    for (name, group) in &by_exercise {
        match built.executables.get(*name) {
            Some(executable) => executables.extend(group.iter().map(|j| (*j, executable.clone()))),
            None => alone.extend(group.iter().copied()),
        }
    }
    if alone.is_empty() {
        return Ok(executables);
    }
    let own_bins: Vec<String> = alone.iter().map(|j| j.own_bin()).collect();
    for (job, bin) in alone.iter().zip(&own_bins) {
        scratch.write_bin(bin, &job.exercise.name, &[&job.module])?;
    }
    let bins: Vec<&str> = own_bins.iter().map(String::as_str).collect();
    let built = build::build(
        &scratch.write_manifest(root, label, &bins)?,
        &target_dir(root),
    )?;
    for (job, bin) in alone.into_iter().zip(&own_bins) {
        match built.executables.get(bin) {
            Some(executable) => executables.push((job, executable.clone())),
            None => {
                let errors = built.errors.get(bin).cloned().unwrap_or_else(|| {
                    format!(
                        "cargo built no test binary for it; cargo said:\n{}",
                        built.cargo_said
                    )
                });
                outcome
                    .mismatches
                    .push(job.mismatch(Problem::DoesNotCompile(errors)));
            }
        }
    }
    Ok(executables)
}

/// Runs every entry's checks from a work queue, one per core; results in the jobs' order.
fn run_all<'j, 'a>(
    root: &Path,
    executables: &[(&'j Job<'a>, PathBuf)],
) -> Result<Vec<(&'j Job<'a>, judge::Ran)>> {
    let queue = Mutex::new(executables.iter().enumerate().collect::<VecDeque<_>>());
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let dir = root.join("solutions");
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some((order, (job, executable))) = pop(&queue) {
                    let ran = judge::run(&judge::Run {
                        executable,
                        module: &job.module,
                        dir: &dir,
                        limit: job.exercise.timeout,
                    });
                    lock(&results).push((order, *job, ran));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(order, _, _)| *order);
    results
        .into_iter()
        .map(|(_, job, ran)| Ok((job, ran?)))
        .collect()
}

fn pop<T>(queue: &Mutex<VecDeque<T>>) -> Option<T> {
    lock(queue).pop_front()
}

/// A worker that panicked leaves its data as it was: keep going with it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records what one entry's run means for the corpus.
fn judge(job: &Job, ran: judge::Ran, outcome: &mut Outcome) {
    use judge::Ran;
    let problem = match (job.kind, ran) {
        (_, Ran::NoChecks) => Some(Problem::NoChecksRan(job.module.clone())),
        (Kind::Wrong, Ran::Passed) => Some(Problem::WrongPassed),
        (Kind::Wrong, Ran::Failed(_)) | (Kind::Right, Ran::Passed) => None,
        (Kind::Wrong, Ran::StoppedByTimeLimit(_)) => {
            outcome
                .stopped_by_time_limit
                .push((job.exercise.name.clone(), job.what.clone()));
            None
        }
        (Kind::Right, Ran::Failed(output)) => Some(Problem::RightFailed(judge::failures(&output))),
        (Kind::Right, Ran::StoppedByTimeLimit(limit)) => Some(Problem::RightFailed(format!(
            "stopped by the time limit ({} s)",
            limit.as_secs_f64()
        ))),
    };
    if let Some(problem) = problem {
        outcome.mismatches.push(job.mismatch(problem));
    }
}

/// The workspace's target folder (honouring `CARGO_TARGET_DIR`).
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
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
