//! `runner dev`: the course authors' tools. `check` holds every rule of the course's
//! integrity, `sync` regenerates what is derived from `info.toml` and the stubs, `new`
//! scaffolds an exercise.

pub mod check;
pub mod corpus;
pub mod manifest;
pub mod new;
pub mod sync;

use std::fmt;

/// One thing wrong with the course, named by the exercise it concerns (or the file, for
/// problems of the whole course).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub exercise: String,
    pub what: String,
}

impl Problem {
    pub fn new(exercise: impl Into<String>, what: impl Into<String>) -> Problem {
        Problem {
            exercise: exercise.into(),
            what: what.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.exercise, self.what)
    }
}

/// The report `dev check` prints: each offending exercise with its problems, and a count.
pub fn report(problems: &[Problem]) -> String {
    if problems.is_empty() {
        return "The course is sound: every check of `dev check` passes.\n".to_owned();
    }
    let mut by_exercise: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for problem in problems {
        by_exercise
            .entry(&problem.exercise)
            .or_default()
            .push(&problem.what);
    }
    let mut text = String::new();
    for (exercise, whats) in &by_exercise {
        text.push_str(&format!("✗ {exercise}\n"));
        for what in whats {
            text.push_str(&format!("  - {}\n", what.replace('\n', "\n    ")));
        }
    }
    text.push_str(&format!(
        "\n{} problem(s) in {} place(s).\n",
        problems.len(),
        by_exercise.len()
    ));
    text
}
