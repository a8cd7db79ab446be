//! The course's integrity, checked by `cargo test` at the root: every exercise in
//! `info.toml` is complete, its stub as shipped fails, its reference solution passes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use runner::cargo::{self, Cancel, Package, Verdict};
use runner::info::Course;
use runner::verdict::checks_section;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn course() -> Course {
    Course::load(&root()).expect("info.toml loads")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `(name, path)` of every `[[bin]]` in a package's manifest.
fn bins(package: &str) -> BTreeSet<(String, String)> {
    let manifest: toml::Table =
        toml::from_str(&read(&root().join(package).join("Cargo.toml"))).unwrap();
    let bins = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .cloned()
        .unwrap_or_default();
    bins.iter()
        .map(|bin| {
            let field = |key: &str| {
                bin.get(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("name"), field("path"))
        })
        .collect()
}

/// Every `.rs` file below `dir`, relative to it.
fn rust_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found
}

#[test]
fn every_exercise_has_a_stub_a_solution_an_original_and_the_same_checks() {
    let root = root();
    let mut problems = Vec::new();
    for exercise in &course().exercises {
        let (stub_path, solution_path, original_path) = (
            exercise.exercise_file(&root),
            exercise.solution_file(&root),
            exercise.original_file(&root),
        );
        for path in [&stub_path, &solution_path, &original_path] {
            if !path.is_file() {
                problems.push(format!("{}: {} is missing", exercise.name, path.display()));
            }
        }
        if problems
            .iter()
            .any(|p| p.starts_with(&format!("{}:", exercise.name)))
        {
            continue;
        }
        let (stub, solution) = (read(&stub_path), read(&solution_path));
        if read(&original_path) != stub {
            problems.push(format!(
                "{}: runner/originals/{} differs from the stub: copy the stub there (`runner reset` restores it)",
                exercise.name,
                exercise.path.display()
            ));
        }
        match (checks_section(&stub), checks_section(&solution)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => problems.push(format!(
                "{}: the checks differ between stub and solution",
                exercise.name
            )),
            _ => problems.push(format!(
                "{}: no `#[cfg(test)]` checks at the end of the file",
                exercise.name
            )),
        }
        let header: String = stub
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        if header.is_empty() {
            problems.push(format!(
                "{}: the stub does not open with its `//!` explanation",
                exercise.name
            ));
        }
        for (needed, what) in [
            ("Python", "the asyncio equivalent (a `(Python: ...)` line)"),
            ("## Your job", "a `## Your job` section"),
            ("<https://", "links to the docs"),
        ] {
            if !header.is_empty() && !header.contains(needed) {
                problems.push(format!("{}: the header lacks {what}", exercise.name));
            }
        }
        if exercise.hints.iter().any(|hint| hint.contains("TODO")) {
            problems.push(format!("{}: a hint is still a TODO", exercise.name));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_cargo_targets_are_exactly_the_exercises() {
    let course = course();
    let path = |e: &runner::info::Exercise| e.path.to_string_lossy().into_owned();
    let expected: BTreeSet<_> = course
        .exercises
        .iter()
        .map(|e| (e.name.clone(), path(e)))
        .collect();
    assert_eq!(
        bins("exercises"),
        expected,
        "exercises/Cargo.toml [[bin]]s must match info.toml"
    );
    let expected: BTreeSet<_> = course
        .exercises
        .iter()
        .map(|e| (e.solution_bin(), path(e)))
        .collect();
    assert_eq!(
        bins("solutions"),
        expected,
        "solutions/Cargo.toml [[bin]]s must match info.toml"
    );
    let files: BTreeSet<PathBuf> = course.exercises.iter().map(|e| e.path.clone()).collect();
    for dir in ["exercises", "solutions", "runner/originals"] {
        assert_eq!(
            rust_files(&root().join(dir)),
            files,
            "{dir}/ must hold exactly the exercises of info.toml"
        );
    }
}

#[test]
fn every_reference_solution_passes() {
    let course = course();
    let exercises: Vec<_> = course.exercises.iter().collect();
    let reports = cargo::check_many(
        &root(),
        &exercises,
        Package::Solutions,
        &Cancel::default(),
        &mut |_| {},
    )
    .unwrap();
    let failed: Vec<String> = exercises
        .iter()
        .zip(&reports)
        .filter(|(_, r)| r.verdict != Verdict::Passed)
        .map(|(e, r)| {
            format!(
                "{} ({:?}):\n{}",
                e.solution_bin(),
                r.verdict,
                cargo::strip_ansi(&r.output)
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "reference solutions that do not pass:\n{}",
        failed.join("\n")
    );
}

#[test]
fn every_stub_as_shipped_fails_without_timing_out() {
    let course = course();
    let exercises: Vec<_> = course.exercises.iter().collect();
    let reports = cargo::check_many(
        &root(),
        &exercises,
        Package::Exercises,
        &Cancel::default(),
        &mut |_| {},
    )
    .unwrap();
    let wrong: Vec<String> = exercises
        .iter()
        .zip(&reports)
        .filter(|(_, r)| !matches!(r.verdict, Verdict::CompileError | Verdict::ChecksFailed))
        .map(|(e, r)| {
            format!(
                "{}: {:?} (a stub must fail to compile or fail its checks)",
                e.name, r.verdict
            )
        })
        .collect();
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
