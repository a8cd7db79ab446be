//! `info.toml`: the course, its exercises in order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use toml::Spanned;

use crate::suggest;

pub const INFO_FILE: &str = "info.toml";
/// The real-time limit for an exercise's checks when `info.toml` does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCourse {
    exercises: Vec<RawExercise>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExercise {
    name: Spanned<String>,
    path: String,
    chapter: String,
    hints: Vec<String>,
    timeout_secs: Option<u64>,
    #[serde(default)]
    clippy: Vec<String>,
    package: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exercise {
    pub name: String,
    /// Relative to both `exercises/` and `solutions/`.
    pub path: PathBuf,
    pub chapter: String,
    pub hints: Vec<String>,
    pub timeout: Duration,
    /// Clippy lints that are part of the verdict, e.g. `clippy::await_holding_lock`.
    pub clippy: Vec<String>,
    /// The extra package pair that builds this exercise (`web`: `exercises/web`, package
    /// `exercises-web`, and `solutions/web`), for exercises whose dependencies (an HTTP
    /// stack) the earlier chapters must not wait for; `None`: `exercises` and `solutions`.
    pub package: Option<String>,
}

impl Exercise {
    /// The cargo target of the learner's file (package `exercises`).
    pub fn bin(&self) -> &str {
        &self.name
    }

    /// The cargo target of the reference solution (package `solutions`).
    pub fn solution_bin(&self) -> String {
        format!("{}_solution", self.name)
    }

    pub fn exercise_file(&self, root: &Path) -> PathBuf {
        root.join("exercises").join(&self.path)
    }

    pub fn solution_file(&self, root: &Path) -> PathBuf {
        root.join("solutions").join(&self.path)
    }

    /// The stub as shipped, which `runner reset` puts back.
    pub fn original_file(&self, root: &Path) -> PathBuf {
        root.join("runner").join("originals").join(&self.path)
    }

    /// `exercises/01_basics/foo.rs`, for messages.
    pub fn display_path(&self) -> String {
        format!("exercises/{}", self.path.display())
    }
}

#[derive(Debug)]
pub struct Course {
    pub exercises: Vec<Exercise>,
}

impl Course {
    pub fn load(root: &Path) -> Result<Course> {
        let path = root.join(INFO_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the course file {}", path.display()))?;
        Course::parse(&text).with_context(|| format!("{INFO_FILE} is not a valid course file"))
    }

    pub fn parse(text: &str) -> Result<Course> {
        let raw: RawCourse = toml::from_str(text)?;
        let mut seen = HashSet::new();
        let mut exercises = Vec::with_capacity(raw.exercises.len());
        for entry in raw.exercises {
            let line = line_of(text, entry.name.span().start);
            let name = entry.name.into_inner();
            let at = |field: &str, problem: String| {
                anyhow::anyhow!("line {line}, exercise `{name}`, field `{field}`: {problem}")
            };
            if !is_snake_case(&name) {
                bail!(at("name", "must be snake_case (a-z, 0-9, _)".into()));
            }
            if !seen.insert(name.clone()) {
                bail!(at("name", "another exercise already has this name".into()));
            }
            if !entry.path.ends_with(".rs")
                || entry.path.starts_with('/')
                || entry.path.contains("..")
            {
                bail!(at(
                    "path",
                    format!("`{}` must be a relative path to a .rs file", entry.path)
                ));
            }
            if entry.chapter.trim().is_empty() {
                bail!(at("chapter", "must not be empty".into()));
            }
            if entry.hints.len() < 2 || entry.hints.iter().any(|h| h.trim().is_empty()) {
                bail!(at(
                    "hints",
                    format!(
                        "needs two or more non-empty hints (found {})",
                        entry.hints.len()
                    )
                ));
            }
            if entry.timeout_secs == Some(0) {
                bail!(at("timeout_secs", "must be at least 1".into()));
            }
            if let Some(lint) = entry.clippy.iter().find(|l| !l.starts_with("clippy::")) {
                bail!(at(
                    "clippy",
                    format!("`{lint}` is not a clippy lint (clippy::...)")
                ));
            }
            if let Some(package) = &entry.package
                && !is_snake_case(package)
            {
                bail!(at(
                    "package",
                    format!("`{package}` must be snake_case (a-z, 0-9, _)")
                ));
            }
            exercises.push(Exercise {
                name,
                path: PathBuf::from(entry.path),
                chapter: entry.chapter,
                hints: entry.hints,
                timeout: entry
                    .timeout_secs
                    .map_or(DEFAULT_TIMEOUT, Duration::from_secs),
                clippy: entry.clippy,
                package: entry.package,
            });
        }
        if exercises.is_empty() {
            bail!("the course has no exercises");
        }
        Ok(Course { exercises })
    }

    /// The exercise called `name`, or an error naming the closest names.
    pub fn find(&self, name: &str) -> Result<(usize, &Exercise)> {
        self.exercises
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == name)
            .with_context(|| {
                format!(
                    "there is no exercise called `{name}`.{} `{}` shows them all.",
                    suggest::did_you_mean(name, self.names()),
                    crate::runner!("list")
                )
            })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.exercises.iter().map(|e| e.name.as_str())
    }
}

pub(crate) fn is_snake_case(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The 1-based line of `text` on which byte offset `byte` stands (for a value's span).
pub(crate) fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[exercises]]
name = "join_concurrently"
path = "01_basics/join_concurrently.rs"
chapter = "basics"
hints = ["one", "two"]

[[exercises]]
name = "mutex_across_await"
path = "01_basics/mutex_across_await.rs"
chapter = "basics"
hints = ["one", "two", "three"]
timeout_secs = 3
clippy = ["clippy::await_holding_lock"]
"#;

    fn error_of(text: &str) -> String {
        format!("{:#}", Course::parse(text).expect_err("should be refused"))
    }

    #[test]
    fn parses_a_good_course() {
        let course = Course::parse(GOOD).unwrap();
        assert_eq!(course.exercises.len(), 2);
        let first = &course.exercises[0];
        assert_eq!(first.timeout, DEFAULT_TIMEOUT);
        assert_eq!(first.solution_bin(), "join_concurrently_solution");
        assert_eq!(
            first.display_path(),
            "exercises/01_basics/join_concurrently.rs"
        );
        let second = &course.exercises[1];
        assert_eq!(second.timeout, Duration::from_secs(3));
        assert_eq!(second.clippy, ["clippy::await_holding_lock"]);
    }

    #[test]
    fn too_few_hints_names_line_and_field() {
        let text = GOOD.replace(r#"["one", "two"]"#, r#"["one"]"#);
        let error = error_of(&text);
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("`join_concurrently`"), "{error}");
        assert!(error.contains("field `hints`"), "{error}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = GOOD.replace("mutex_across_await\"", "join_concurrently\"");
        let error = error_of(&text);
        assert!(error.contains("line 9"), "{error}");
        assert!(error.contains("already has this name"), "{error}");
    }

    #[test]
    fn a_missing_field_names_it() {
        let text = GOOD.replace(
            "chapter = \"basics\"\nhints = [\"one\", \"two\"]",
            "hints = [\"one\", \"two\"]",
        );
        let error = error_of(&text);
        assert!(error.contains("missing field `chapter`"), "{error}");
        assert!(error.contains("line"), "{error}");
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let error = error_of(&GOOD.replace("timeout_secs = 3", "timeout = 3"));
        assert!(error.contains("unknown field `timeout`"), "{error}");
    }

    #[test]
    fn an_exercise_may_name_its_package_pair() {
        let text = GOOD.replace(
            "name = \"mutex_across_await\"\n",
            "name = \"mutex_across_await\"\npackage = \"web\"\n",
        );
        let course = Course::parse(&text).unwrap();
        assert_eq!(course.exercises[0].package, None);
        assert_eq!(course.exercises[1].package.as_deref(), Some("web"));
        let error = error_of(&text.replace("\"web\"", "\"Web Stack\""));
        assert!(error.contains("field `package`"), "{error}");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let error =
            error_of(&GOOD.replace("chapter = \"basics\"\nhints", "chapter = basics\nhints"));
        assert!(error.contains("line 5"), "{error}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(
            error_of(&GOOD.replace("name = \"join_concurrently\"", "name = \"Join\""))
                .contains("snake_case")
        );
        assert!(
            error_of(&GOOD.replace("join_concurrently.rs", "join.txt")).contains("field `path`")
        );
        assert!(
            error_of(&GOOD.replace("timeout_secs = 3", "timeout_secs = 0")).contains("at least 1")
        );
        assert!(error_of(&GOOD.replace("clippy::await", "await")).contains("not a clippy lint"));
        assert!(error_of("exercises = []").contains("no exercises"));
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let course = Course::parse(GOOD).unwrap();
        let error = course.find("join_concurently").unwrap_err().to_string();
        assert!(
            error.contains("Did you mean `join_concurrently`?"),
            "{error}"
        );
        assert_eq!(course.find("mutex_across_await").unwrap().0, 1);
    }
}
