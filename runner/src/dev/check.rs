//! `runner dev check`: the course's whole integrity, as one report naming each offending
//! exercise. Cheap rules first (files, headers, hints, manifests, pristine copies), then
//! every stub as shipped is built and must fail, every reference solution must pass.
//!
//! Each step is a function from the course to a list of problems; `STEPS` is the one place
//! that lists them. The corpus of wrong and right solutions (`dev/corpus/`) joins as one
//! more step there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Problem, manifest};
use crate::check::{self, Cancel, Package, Verdict};
use crate::info::{Course, Exercise};
use crate::verdict::checks_section;

/// What a step sees: the course's root, the course, and the exercises to look at.
pub struct Scope<'a> {
    pub root: &'a Path,
    pub course: &'a Course,
    /// Every exercise, or the one `dev check NAME` names.
    pub exercises: Vec<&'a Exercise>,
    /// The name given to `dev check NAME`, if any.
    pub only: Option<&'a str>,
    /// Which of the slow steps run.
    pub steps: Steps,
}

/// The slow steps a run includes; the cheap rules always run.
#[derive(Clone, Copy, Debug)]
pub struct Steps {
    /// Build every stub and solution: stubs fail, solutions pass.
    pub builds: bool,
    /// Build and run the corpus of wrong and right solutions (the slowest step).
    pub corpus: bool,
}

type Step = fn(&Scope, &mut dyn FnMut(&str)) -> Result<Vec<Problem>>;

/// Every rule, cheapest first; the corpus, the slowest, goes last.
const STEPS: &[Step] = &[
    |scope, _| Ok(files_and_headers(scope)),
    |scope, _| manifests(scope),
    |scope, status| stubs_fail(scope, status),
    |scope, status| solutions_pass(scope, status),
    |scope, status| corpus(scope, status),
];

/// The fewest wrong and right solutions an exercise's corpus holds (CONTRIBUTING.md).
const MIN_WRONG: usize = 5;
const MIN_RIGHT: usize = 2;

/// Every exercise has a corpus of at least `MIN_WRONG` wrong and `MIN_RIGHT` right
/// solutions, and the checks judge every entry right.
fn corpus(scope: &Scope, status: &mut dyn FnMut(&str)) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    if !scope.steps.corpus {
        return Ok(problems);
    }
    for exercise in &scope.exercises {
        let path = super::corpus::corpus_file(scope.root, exercise);
        if !path.is_file() {
            problems.push(Problem::new(
                &exercise.name,
                format!("no corpus: write {} (see corpus/README.md)", path.display()),
            ));
            continue;
        }
        match super::corpus::load(&path) {
            Ok(corpus) if corpus.wrong.len() < MIN_WRONG || corpus.right.len() < MIN_RIGHT => {
                problems.push(Problem::new(
                    &exercise.name,
                    format!(
                        "the corpus holds {} wrong and {} right solutions; at least {MIN_WRONG} \
                         and {MIN_RIGHT} are needed",
                        corpus.wrong.len(),
                        corpus.right.len()
                    ),
                ));
            }
            Ok(_) => {}
            Err(error) => problems.push(Problem::new(&exercise.name, format!("{error:#}"))),
        }
    }
    status("Building and running the corpus of wrong and right solutions…");
    let outcome = super::corpus::run(scope.root, scope.course, scope.only)?;
    problems.extend(
        outcome
            .mismatches
            .iter()
            .map(|mismatch| Problem::new(&mismatch.exercise, mismatch.to_string())),
    );
    Ok(problems)
}

/// Runs every step on the course at `root` (or on one exercise) and returns what is wrong.
pub fn run(
    root: &Path,
    only: Option<&str>,
    steps: Steps,
    status: &mut dyn FnMut(&str),
) -> Result<Vec<Problem>> {
    let course = match Course::load(root) {
        Ok(course) => course,
        Err(error) => {
            return Ok(vec![Problem::new(
                crate::info::INFO_FILE,
                format!("{error:#}"),
            )]);
        }
    };
    let exercises = match only {
        Some(name) => vec![course.find(name)?.1],
        None => course.exercises.iter().collect(),
    };
    let scope = Scope {
        root,
        course: &course,
        exercises,
        only,
        steps,
    };
    let mut problems = Vec::new();
    for step in STEPS {
        problems.extend(step(&scope, status)?);
    }
    Ok(problems)
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn files_and_headers(scope: &Scope) -> Vec<Problem> {
    let mut problems = Vec::new();
    for exercise in &scope.exercises {
        let mut at = |what: String| problems.push(Problem::new(&exercise.name, what));
        let files = [
            exercise.exercise_file(scope.root),
            exercise.solution_file(scope.root),
            exercise.original_file(scope.root),
        ];
        let [stub, solution, original] = files.clone().map(|path| read(&path));
        let (Some(stub), Some(solution), Some(original)) = (stub, solution, original) else {
            for path in files.iter().filter(|p| !p.is_file()) {
                at(format!(
                    "{} is missing",
                    crate::relative(scope.root, path).display()
                ));
            }
            continue;
        };
        if original != stub {
            at(format!(
                "runner/originals/{0} differs from exercises/{0}: `{1}` copies the stub there",
                exercise.path.display(),
                crate::runner!("dev sync")
            ));
        }
        match (checks_section(&original), checks_section(&solution)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => at("the checks differ between stub and solution".into()),
            _ => at("no `#[cfg(test)]` checks at the end of the file".into()),
        }
        header_problems(&original).into_iter().for_each(&mut at);
        if exercise.hints.iter().any(|hint| hint.contains("TODO")) {
            at("a hint is still a TODO".into());
        }
    }
    problems
}

/// What the stub's `//!` header lacks (see CONTRIBUTING.md, "The shape of a file").
fn header_problems(stub: &str) -> Vec<String> {
    let header: Vec<&str> = stub.lines().take_while(|l| l.starts_with("//!")).collect();
    if header.is_empty() {
        return vec!["the stub does not open with its `//!` explanation".into()];
    }
    let header = header.join("\n");
    [
        ("Python", "the asyncio equivalent (a `(Python: ...)` line)"),
        ("## Your job", "a `## Your job` section"),
        ("<https://", "links to the docs"),
    ]
    .into_iter()
    .filter(|(needed, _)| !header.contains(needed))
    .map(|(_, what)| format!("the header lacks {what}"))
    .collect()
}

/// The `[[bin]]`s of both manifests and the files of the three folders match `info.toml`.
fn manifests(scope: &Scope) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for manifest in manifest::all(scope.course) {
        let package = manifest.dir();
        let found = bins(&manifest::read(scope.root, &package)?);
        let expected: BTreeSet<(String, String)> = scope
            .course
            .exercises
            .iter()
            .filter(|e| manifest.holds(e))
            .map(|e| manifest.target(e))
            .collect();
        for (name, path) in expected.difference(&found) {
            let what = format!(
                "{package}/Cargo.toml lacks the [[bin]] {name} ({path}): run `{}`",
                crate::runner!("dev sync")
            );
            problems.push(Problem::new(name.trim_end_matches("_solution"), what));
        }
        for (name, path) in found.difference(&expected) {
            let what = format!(
                "{package}/Cargo.toml has a [[bin]] {name} ({path}) that info.toml does not list"
            );
            problems.push(Problem::new(format!("{package}/Cargo.toml"), what));
        }
    }
    let listed: BTreeSet<PathBuf> = scope
        .course
        .exercises
        .iter()
        .map(|e| e.path.clone())
        .collect();
    for dir in ["solutions", "runner/originals"] {
        for extra in rust_files(&scope.root.join(dir)).difference(&listed) {
            let what = format!("{dir}/{} is not an exercise of info.toml", extra.display());
            problems.push(Problem::new(dir, what));
        }
    }
    Ok(problems)
}

/// `(name, path)` of every `[[bin]]` in a manifest.
fn bins(text: &str) -> BTreeSet<(String, String)> {
    let manifest: toml::Table = toml::from_str(text).unwrap_or_default();
    let field = |bin: &toml::Value, key: &str| {
        bin.get(key)
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    manifest
        .get("bin")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .map(|bin| (field(bin, "name"), field(bin, "path")))
        .collect()
}

/// Every `.rs` file below `dir`, relative to it.
fn rust_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && let Ok(relative) = path.strip_prefix(dir)
            {
                found.insert(relative.to_path_buf());
            }
        }
    }
    found
}

/// Every stub as shipped fails: a compile error or a failing check, never a pass or a hang.
/// Only stubs identical to their pristine copy are built (a difference is reported above).
fn stubs_fail(scope: &Scope, status: &mut dyn FnMut(&str)) -> Result<Vec<Problem>> {
    if !scope.steps.builds {
        return Ok(Vec::new());
    }
    let shipped: Vec<&Exercise> = scope
        .exercises
        .iter()
        .copied()
        .filter(|e| {
            let stub = read(&e.exercise_file(scope.root));
            stub.is_some() && stub == read(&e.original_file(scope.root))
        })
        .collect();
    if shipped.is_empty() {
        return Ok(Vec::new());
    }
    let reports = check::check_many(
        scope.root,
        &shipped,
        Package::Exercises,
        &Cancel::default(),
        status,
    )?;
    Ok(shipped
        .iter()
        .zip(reports)
        .filter(|(_, r)| !matches!(r.verdict, Verdict::CompileError | Verdict::ChecksFailed))
        .map(|(e, r)| {
            Problem::new(
                &e.name,
                format!(
                    "the stub as shipped must fail to compile or fail its checks, but: {:?}",
                    r.verdict
                ),
            )
        })
        .collect())
}

/// Every reference solution passes its checks.
fn solutions_pass(scope: &Scope, status: &mut dyn FnMut(&str)) -> Result<Vec<Problem>> {
    if !scope.steps.builds {
        return Ok(Vec::new());
    }
    let present: Vec<&Exercise> = scope
        .exercises
        .iter()
        .copied()
        .filter(|e| e.solution_file(scope.root).is_file())
        .collect();
    if present.is_empty() {
        return Ok(Vec::new());
    }
    let reports = check::check_many(
        scope.root,
        &present,
        Package::Solutions,
        &Cancel::default(),
        status,
    )?;
    Ok(present
        .iter()
        .zip(reports)
        .filter(|(_, r)| r.verdict != Verdict::Passed)
        .map(|(e, r)| {
            let output = check::strip_ansi(&r.output);
            let tail: Vec<&str> = output.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Problem::new(
                &e.name,
                format!(
                    "the reference solution does not pass ({:?}):\n{}",
                    r.verdict,
                    tail.join("\n")
                ),
            )
        })
        .collect())
}
