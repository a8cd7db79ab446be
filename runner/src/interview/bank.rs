//! The interview question bank (`questions.toml`): its model, read and checked by serde
//! (each field's rule lives in a newtype's `TryFrom`, and toml reports the line, the column
//! and a caret), plus the rules that span entries (unique ids, known exercises) by hand.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::suggest::did_you_mean;

/// The `topic` field takes exactly one of these (the schema's list, in the course's order).
pub const TOPICS: &[&str] = &[
    "what async is for",
    "async/await",
    "futures and laziness",
    "running async code",
    "join vs select vs spawn",
    "errors",
    "semaphores",
    "events and conditions",
    "guards",
    "streams",
    "the runtime",
    "performance",
    "patterns",
    "debugging and monitoring",
    "Pin",
    "Waker",
    "Send bounds",
    "cancellation safety",
    "blocking in async",
];

/// The question bank, at the course's root.
pub const QUESTIONS_FILE: &str = "questions.toml";

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Level {
    Basic,
    Intermediate,
    Advanced,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Basic, Level::Intermediate, Level::Advanced];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Basic => "basic",
            Level::Intermediate => "intermediate",
            Level::Advanced => "advanced",
        }
    }

    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.as_str() == name)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl TryFrom<String> for Level {
    type Error = String;

    fn try_from(name: String) -> Result<Level, String> {
        Level::from_name(&name).ok_or_else(|| {
            let levels = Level::ALL.map(Level::as_str);
            format!(
                "{name:?} is not a level; levels are: {}.{}",
                levels.join(", "),
                did_you_mean(&name, levels)
            )
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub id: String,
    pub level: Level,
    /// One of [`TOPICS`].
    pub topic: String,
    pub question: String,
    pub answer: String,
    pub code: Option<String>,
    /// The code is meant not to compile (the answer says why).
    pub compile_fail: bool,
    /// Names of the exercises that practise it.
    pub exercises: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub practises: Vec<String>,
    pub steps: Vec<Step>,
}

/// One step of a practical task, and the exercise that practises it, where there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    pub exercise: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bank {
    pub questions: Vec<Question>,
    pub tasks: Vec<Task>,
}

// The file as written. Field rules are the newtypes' `TryFrom`s; serde and toml say where.

/// A kebab-case id: `futures-are-lazy`.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct Id(String);

impl TryFrom<String> for Id {
    type Error = String;

    fn try_from(id: String) -> Result<Id, String> {
        if is_kebab_case(&id) {
            Ok(Id(id))
        } else {
            Err(format!(
                "{id:?} is not a kebab-case id (like \"futures-are-lazy\")"
            ))
        }
    }
}

/// One of [`TOPICS`].
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct Topic(String);

impl TryFrom<String> for Topic {
    type Error = String;

    fn try_from(topic: String) -> Result<Topic, String> {
        if TOPICS.contains(&topic.as_str()) {
            return Ok(Topic(topic));
        }
        let list: Vec<String> = TOPICS.iter().map(|t| format!("{t:?}")).collect();
        Err(format!(
            "{topic:?} is not a topic; topics are: {}.{}",
            list.join(", "),
            did_you_mean(&topic, TOPICS.iter().copied())
        ))
    }
}

/// Text that is not blank.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct Text(String);

impl TryFrom<String> for Text {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Text, &'static str> {
        if text.trim().is_empty() {
            Err("must not be empty")
        } else {
            Ok(Text(text))
        }
    }
}

/// A list with at least one entry.
#[derive(Deserialize)]
#[serde(try_from = "Vec<RawStep>")]
struct Steps(Vec<RawStep>);

impl TryFrom<Vec<RawStep>> for Steps {
    type Error = &'static str;

    fn try_from(steps: Vec<RawStep>) -> Result<Steps, &'static str> {
        if steps.is_empty() {
            return Err("has no steps");
        }
        Ok(Steps(steps))
    }
}

/// A step: its text alone, or `{ text = "...", exercise = "name" }` when an exercise of the
/// course is that step. (Not `#[serde(untagged)]`: buffering the value would lose the spans
/// that errors point at.)
enum RawStep {
    Text(Text),
    Exercise(ExerciseStep),
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepVisitor;

        impl<'de> serde::de::Visitor<'de> for StepVisitor {
            type Value = RawStep;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"a string, or { text = "...", exercise = "name" }"#)
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawStep, E> {
                Text::try_from(text.to_owned())
                    .map(RawStep::Text)
                    .map_err(E::custom)
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<RawStep, M::Error> {
                let deserializer = serde::de::value::MapAccessDeserializer::new(map);
                ExerciseStep::deserialize(deserializer).map(RawStep::Exercise)
            }
        }

        deserializer.deserialize_any(StepVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExerciseStep {
    text: Text,
    exercise: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBank {
    #[serde(default)]
    questions: Vec<RawQuestion>,
    #[serde(default)]
    tasks: Vec<RawTask>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    id: Spanned<Id>,
    level: Level,
    topic: Topic,
    question: Text,
    answer: Text,
    code: Option<Text>,
    compile_fail: Option<Spanned<bool>>,
    #[serde(default)]
    exercises: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: Spanned<Id>,
    title: Text,
    summary: Text,
    #[serde(default)]
    practises: Vec<Text>,
    steps: Steps,
}

/// `questions.toml:LINE: question #N (id "x"), field `f`: problem`, for the rules serde
/// cannot see (they span entries or need info.toml).
fn located<T>(
    text: &str,
    value: &Spanned<T>,
    entry: &str,
    field: &str,
    problem: &str,
) -> anyhow::Error {
    let line = crate::info::line_of(text, value.span().start);
    anyhow::anyhow!("{QUESTIONS_FILE}:{line}: {entry}, field `{field}`: {problem}")
}

impl Bank {
    /// Reads and checks the question bank at `path`; `known_exercises` are the exercise names
    /// of `info.toml`, which each question's `exercises` must be among.
    pub fn load(path: impl AsRef<Path>, known_exercises: &[&str]) -> anyhow::Result<Bank> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Bank::parse(&text, known_exercises)
    }

    /// Parses and checks the text of a `questions.toml` (the messages name that file).
    pub fn parse(text: &str, known_exercises: &[&str]) -> anyhow::Result<Bank> {
        // toml's message names the line and column and shows them under a caret.
        let raw: RawBank =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{QUESTIONS_FILE}: {e}"))?;
        let mut ids: HashMap<String, (usize, usize)> = HashMap::new();
        let mut questions = Vec::with_capacity(raw.questions.len());
        for (index, raw) in raw.questions.into_iter().enumerate() {
            let number = index + 1;
            let id = raw.id.get_ref().0.clone();
            let entry = format!("question #{number} (id {id:?})");
            let line = crate::info::line_of(text, raw.id.span().start);
            if let Some((other, at)) = ids.insert(id.clone(), (number, line)) {
                let problem = format!("{id:?} is already the id of question #{other} (line {at})");
                return Err(located(text, &raw.id, &entry, "id", &problem));
            }
            if let (Some(flag), None) = (&raw.compile_fail, &raw.code)
                && *flag.get_ref()
            {
                let problem = "is true but the question has no `code`";
                return Err(located(text, flag, &entry, "compile_fail", problem));
            }
            let exercises = known(text, &raw.exercises, &entry, "exercises", known_exercises)?;
            questions.push(Question {
                id,
                level: raw.level,
                topic: raw.topic.0,
                question: raw.question.0,
                answer: raw.answer.0,
                code: raw.code.map(|c| c.0),
                compile_fail: raw.compile_fail.is_some_and(|c| *c.get_ref()),
                exercises,
            });
        }
        let tasks = tasks(text, raw.tasks, known_exercises)?;
        Ok(Bank { questions, tasks })
    }

    /// The question with this id, or an error naming the closest ids.
    pub fn question(&self, id: &str) -> anyhow::Result<&Question> {
        if let Some(question) = self.questions.iter().find(|q| q.id == id) {
            return Ok(question);
        }
        bail!(
            "there is no question {id:?}.{} `{}` lists them all.",
            did_you_mean(id, self.questions.iter().map(|q| q.id.as_str())),
            crate::runner!("questions")
        )
    }

    /// The questions of one level, or all of them, in the bank's order.
    pub fn select(&self, level: Option<Level>) -> Vec<&Question> {
        self.questions
            .iter()
            .filter(|q| level.is_none_or(|level| q.level == level))
            .collect()
    }
}

/// The exercise names a question lists: each in info.toml, none twice.
fn known(
    text: &str,
    names: &[Spanned<String>],
    entry: &str,
    field: &str,
    known_exercises: &[&str],
) -> anyhow::Result<Vec<String>> {
    let mut exercises: Vec<String> = Vec::new();
    for name in names {
        let exercise = name.get_ref();
        let problem = if !known_exercises.contains(&exercise.as_str()) {
            format!(
                "there is no exercise {exercise:?} in info.toml.{}",
                did_you_mean(exercise, known_exercises.iter().copied())
            )
        } else if exercises.contains(exercise) {
            format!("{exercise:?} is listed twice")
        } else {
            exercises.push(exercise.clone());
            continue;
        };
        return Err(located(text, name, entry, field, &problem));
    }
    Ok(exercises)
}

/// The tasks, with unique ids.
fn tasks(text: &str, raw: Vec<RawTask>, known_exercises: &[&str]) -> anyhow::Result<Vec<Task>> {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut tasks = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let id = raw.id.get_ref().0.clone();
        if let Some(other) = ids.insert(id.clone(), index + 1) {
            let entry = format!("task #{} (id {id:?})", index + 1);
            let problem = format!("{id:?} is already the id of task #{other}");
            return Err(located(text, &raw.id, &entry, "id", &problem));
        }
        let entry = format!("task #{} (id {id:?})", index + 1);
        let steps = steps(text, raw.steps.0, &entry, known_exercises)?;
        tasks.push(Task {
            id,
            title: raw.title.0,
            summary: raw.summary.0,
            practises: raw.practises.into_iter().map(|p| p.0).collect(),
            steps,
        });
    }
    Ok(tasks)
}

/// A task's steps, each naming an exercise of info.toml (once at most) or none.
fn steps(
    text: &str,
    raw: Vec<RawStep>,
    entry: &str,
    known_exercises: &[&str],
) -> anyhow::Result<Vec<Step>> {
    let named: Vec<Spanned<String>> = raw
        .iter()
        .filter_map(|step| match step {
            RawStep::Exercise(step) => Some(step.exercise.clone()),
            RawStep::Text(_) => None,
        })
        .collect();
    known(text, &named, entry, "steps", known_exercises)?;
    Ok(raw
        .into_iter()
        .map(|step| match step {
            RawStep::Text(text) => Step {
                text: text.0,
                exercise: None,
            },
            RawStep::Exercise(step) => Step {
                text: step.text.0,
                exercise: Some(step.exercise.into_inner()),
            },
        })
        .collect())
}

/// `futures-are-lazy`: lowercase ASCII letters and digits in words joined by single hyphens.
fn is_kebab_case(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interview::fixtures::{EXERCISES, GOOD, bank};

    /// The error message of parsing `text`.
    fn error(text: &str) -> String {
        format!("{:#}", Bank::parse(text, EXERCISES).unwrap_err())
    }

    /// `GOOD` with the first occurrence of `from` replaced by `to`.
    fn good_with(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "GOOD has no {from:?}");
        GOOD.replacen(from, to, 1)
    }

    /// The 1-based line of the first occurrence of `needle` in `text`.
    fn line_of(text: &str, needle: &str) -> usize {
        text[..text.find(needle).unwrap()].matches('\n').count() + 1
    }

    #[test]
    fn parses_a_good_bank() {
        let bank = bank();
        assert_eq!(bank.questions.len(), 4);
        let lazy = &bank.questions[0];
        assert_eq!(lazy.id, "futures-are-lazy");
        assert_eq!(lazy.level, Level::Basic);
        assert_eq!(lazy.topic, "futures and laziness");
        assert_eq!(
            lazy.code.as_deref(),
            Some("async fn hello() -> u32 { 1 }\n")
        );
        assert!(!lazy.compile_fail);
        assert_eq!(lazy.exercises, ["lazy_futures"]);
        assert!(bank.questions[2].compile_fail);
        assert_eq!(bank.questions[3].code, None);
        assert!(bank.questions[3].exercises.is_empty());
        assert_eq!(
            bank.tasks,
            [Task {
                id: "web-scraper".into(),
                title: "Web scraper".into(),
                summary: "Fetch many pages.".into(),
                practises: vec!["semaphore".into(), "retry with backoff".into()],
                steps: vec![
                    Step {
                        text: "Fetch one page.".into(),
                        exercise: None
                    },
                    Step {
                        text: "Fetch many.".into(),
                        exercise: Some("join_concurrently".into())
                    },
                ],
            }]
        );
        assert_eq!(bank.select(Some(Level::Basic)).len(), 2);
        assert_eq!(bank.select(None).len(), 4);
    }

    #[test]
    fn the_course_files_parse() {
        // The repository's own questions.toml, against the real exercise names of info.toml.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let info: toml::Table =
            toml::from_str(&std::fs::read_to_string(root.join("info.toml")).unwrap()).unwrap();
        let names: Vec<&str> = info["exercises"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        let bank = Bank::load(root.join("questions.toml"), &names).unwrap();
        assert!(!bank.questions.is_empty());
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let text = good_with("level = \"basic\"", "level = basic");
        let message = error(&text);
        let line = line_of(&text, "level = basic");
        assert!(message.starts_with("questions.toml: "), "{message}");
        assert!(message.contains(&format!("line {line}")), "{message}");
    }

    #[test]
    fn a_bad_level_is_rejected_with_a_suggestion() {
        let text = good_with("level = \"intermediate\"", "level = \"intermediat\"");
        let line = line_of(&text, "\"intermediat\"");
        // toml's caret display, line breaks kept, then the newtype's message.
        assert_eq!(
            error(&text),
            format!(
                "questions.toml: TOML parse error at line {line}, column 9\n   |\n{line} | level = \
                 \"intermediat\"\n   |         ^^^^^^^^^^^^^\n\"intermediat\" is not a level; \
                 levels are: basic, intermediate, advanced. Did you mean `intermediate`?\n"
            )
        );
    }

    #[test]
    fn an_unknown_topic_is_rejected_with_the_list() {
        let text = good_with("topic = \"Pin\"", "topic = \"pinning\"");
        let message = error(&text);
        let line = line_of(&text, "\"pinning\"");
        assert!(
            message.contains(&format!("at line {line}, column 9")),
            "{message}"
        );
        assert!(
            message.contains("\"pinning\" is not a topic; topics are: \"what async is for\","),
            "{message}"
        );
        assert!(
            message.contains("\"blocking in async\". Did you mean `Pin`?"),
            "{message}"
        );
    }

    #[test]
    fn a_duplicate_id_names_both_entries() {
        let text = good_with("id = \"pin-why\"", "id = \"join-vs-select\"");
        let message = error(&text);
        assert_eq!(
            message,
            format!(
                "questions.toml:{}: question #4 (id \"join-vs-select\"), field `id`: \
                 \"join-vs-select\" is already the id of question #2 (line {})",
                text[..text.rfind("id = \"join-vs-select\"").unwrap()]
                    .matches('\n')
                    .count()
                    + 1,
                line_of(&text, "id = \"join-vs-select\"")
            )
        );
    }

    #[test]
    fn an_unknown_exercise_is_rejected_with_a_suggestion() {
        let text = good_with("\"select_race\"]", "\"select_rase\"]");
        let message = error(&text);
        assert_eq!(
            message,
            format!(
                "questions.toml:{}: question #2 (id \"join-vs-select\"), field `exercises`: \
                 there is no exercise \"select_rase\" in info.toml. Did you mean `select_race`?",
                line_of(&text, "\"select_rase\"")
            )
        );
    }

    #[test]
    fn a_missing_field_is_rejected_with_its_line() {
        let text = good_with("answer = \"Self-references.\"\n", "");
        let message = error(&text);
        assert!(message.starts_with("questions.toml: "), "{message}");
        assert!(message.contains("missing field `answer`"), "{message}");
        let entry = line_of(&text, "\"pin-why\"") - 1; // the `[[questions]]` of that entry
        assert!(message.contains(&format!("line {entry}")), "{message}");
    }

    #[test]
    fn other_mistakes_are_rejected() {
        let cases = [
            (
                good_with("answer = \"Self-references.\"", "answer = \"  \""),
                "answer = \"  \"\n   |          ^^^^\nmust not be empty",
            ),
            (
                good_with("id = \"pin-why\"", "id = \"Pin_Why\""),
                "is not a kebab-case id",
            ),
            (
                good_with(
                    "exercises = [\"lazy_futures\"]",
                    "exercises = [\"lazy_futures\", \"lazy_futures\"]",
                ),
                "is listed twice",
            ),
            (
                good_with(
                    "answer = \"Self-references.\"",
                    "answer = \"x\"\ncompile_fail = true",
                ),
                "is true but the question has no `code`",
            ),
            (
                good_with(
                    "answer = \"Self-references.\"",
                    "answer = \"x\"\nanwser = \"y\"",
                ),
                "unknown field `anwser`",
            ),
            (
                good_with(
                    "steps = [\"Fetch one page.\", { text = \"Fetch many.\", exercise = \"join_concurrently\" }]",
                    "steps = []",
                ),
                "steps = []\n   |         ^^\nhas no steps",
            ),
            (
                good_with(
                    "exercise = \"join_concurrently\" }",
                    "exercise = \"join_concurently\" }",
                ),
                "task #1 (id \"web-scraper\"), field `steps`: there is no exercise \"join_concurently\" in info.toml. Did you mean `join_concurrently`?",
            ),
        ];
        for (text, expected) in cases {
            let message = error(&text);
            assert!(
                message.contains(expected),
                "{expected:?} not in {message:?}"
            );
        }
    }

    #[test]
    fn an_unknown_id_suggests_the_closest() {
        let bank = bank();
        assert_eq!(bank.question("pin-why").unwrap().topic, "Pin");
        let message = bank.question("futures-are-lazzy").unwrap_err().to_string();
        assert_eq!(
            message,
            "there is no question \"futures-are-lazzy\". Did you mean `futures-are-lazy`? \
             `cargo run -p runner -- questions` lists them all."
        );
    }
}
