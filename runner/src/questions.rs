//! The interview question bank (`questions.toml`): loading and checking it, and printing its
//! questions, answers and practical tasks.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context as _, bail};
use colored::Colorize as _;
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

/// How the learner lists the questions, shows one, and runs an exercise (for the messages).
const LIST_COMMAND: &str = "cargo run -p runner -- questions";
const SHOW_COMMAND: &str = "cargo run -p runner -- questions show";
const RUN_COMMAND: &str = "cargo run -p runner -- run";

/// Printed text is wrapped to this many columns (code is printed as written).
pub(crate) const WIDTH: usize = 78;

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
#[serde(rename_all = "lowercase")]
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

    fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.as_str() == name)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
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
    pub steps: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bank {
    pub questions: Vec<Question>,
    pub tasks: Vec<Task>,
}

// The file as written, with the position of every field for the error messages.

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
    id: Spanned<String>,
    level: Spanned<String>,
    topic: Spanned<String>,
    question: Spanned<String>,
    answer: Spanned<String>,
    code: Option<Spanned<String>>,
    compile_fail: Option<Spanned<bool>>,
    exercises: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: Spanned<String>,
    title: Spanned<String>,
    summary: Spanned<String>,
    #[serde(default)]
    practises: Vec<Spanned<String>>,
    steps: Spanned<Vec<Spanned<String>>>,
}

/// Says which entry and field of which file, and on which line, a problem is.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
    /// `question #12 (id "pin-basics")`
    entry: String,
}

impl Locator<'_> {
    fn line<T>(&self, value: &Spanned<T>) -> usize {
        crate::info::line_of(self.text, value.span().start)
    }

    fn error<T>(
        &self,
        value: &Spanned<T>,
        field: &str,
        message: impl fmt::Display,
    ) -> anyhow::Error {
        anyhow::anyhow!(
            "{}:{}: {}, field `{field}`: {message}",
            self.file,
            self.line(value),
            self.entry
        )
    }

    fn non_empty(&self, value: &Spanned<String>, field: &str) -> anyhow::Result<String> {
        if value.get_ref().trim().is_empty() {
            return Err(self.error(value, field, "is empty"));
        }
        Ok(value.get_ref().clone())
    }
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
        let file = "questions.toml";
        // toml's message already names the line and column, and shows it.
        let raw: RawBank = toml::from_str(text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        let mut bank = Bank::default();

        let mut ids: HashMap<String, (usize, usize)> = HashMap::new();
        for (index, raw) in raw.questions.iter().enumerate() {
            let number = index + 1;
            let at = Locator {
                file,
                text,
                entry: format!("question #{number} (id {:?})", raw.id.get_ref()),
            };
            let id = raw.id.get_ref();
            if !is_kebab_case(id) {
                return Err(at.error(
                    &raw.id,
                    "id",
                    format!("{id:?} is not a kebab-case id (like \"futures-are-lazy\")"),
                ));
            }
            if let Some((other, line)) = ids.insert(id.clone(), (number, at.line(&raw.id))) {
                return Err(at.error(
                    &raw.id,
                    "id",
                    format!("{id:?} is already the id of question #{other} (line {line})"),
                ));
            }

            let name = raw.level.get_ref();
            let Some(level) = Level::from_name(name) else {
                let levels = Level::ALL.map(Level::as_str);
                return Err(at.error(
                    &raw.level,
                    "level",
                    format!(
                        "{name:?} is not a level; levels are: {}.{}",
                        levels.join(", "),
                        did_you_mean(name, levels)
                    ),
                ));
            };

            let topic = raw.topic.get_ref();
            if !TOPICS.contains(&topic.as_str()) {
                return Err(at.error(
                    &raw.topic,
                    "topic",
                    format!(
                        "{topic:?} is not a topic; topics are: {}.{}",
                        TOPICS
                            .iter()
                            .map(|t| format!("{t:?}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        did_you_mean(topic, TOPICS.iter().copied())
                    ),
                ));
            }

            let question = at.non_empty(&raw.question, "question")?;
            let answer = at.non_empty(&raw.answer, "answer")?;
            let code = match &raw.code {
                Some(code) => Some(at.non_empty(code, "code")?),
                None => None,
            };
            let compile_fail = raw.compile_fail.as_ref().is_some_and(|c| *c.get_ref());
            if let (Some(flag), true, None) = (&raw.compile_fail, compile_fail, &code) {
                return Err(at.error(
                    flag,
                    "compile_fail",
                    "is true but the question has no `code`",
                ));
            }

            let mut exercises = Vec::new();
            for name in raw.exercises.iter().flat_map(|list| list.get_ref()) {
                let exercise = name.get_ref();
                if !known_exercises.contains(&exercise.as_str()) {
                    return Err(at.error(
                        name,
                        "exercises",
                        format!(
                            "there is no exercise {exercise:?} in info.toml.{}",
                            did_you_mean(exercise, known_exercises.iter().copied())
                        ),
                    ));
                }
                if exercises.contains(exercise) {
                    return Err(at.error(
                        name,
                        "exercises",
                        format!("{exercise:?} is listed twice"),
                    ));
                }
                exercises.push(exercise.clone());
            }

            bank.questions.push(Question {
                id: id.clone(),
                level,
                topic: topic.clone(),
                question,
                answer,
                code,
                compile_fail,
                exercises,
            });
        }

        let mut task_ids: HashMap<String, usize> = HashMap::new();
        for (index, raw) in raw.tasks.iter().enumerate() {
            let number = index + 1;
            let at = Locator {
                file,
                text,
                entry: format!("task #{number} (id {:?})", raw.id.get_ref()),
            };
            let id = raw.id.get_ref();
            if !is_kebab_case(id) {
                return Err(at.error(
                    &raw.id,
                    "id",
                    format!("{id:?} is not a kebab-case id (like \"web-scraper\")"),
                ));
            }
            if let Some(other) = task_ids.insert(id.clone(), number) {
                return Err(at.error(
                    &raw.id,
                    "id",
                    format!("{id:?} is already the id of task #{other}"),
                ));
            }
            let title = at.non_empty(&raw.title, "title")?;
            let summary = at.non_empty(&raw.summary, "summary")?;
            let practises = raw
                .practises
                .iter()
                .map(|p| at.non_empty(p, "practises"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if raw.steps.get_ref().is_empty() {
                return Err(at.error(&raw.steps, "steps", "has no steps"));
            }
            let steps = raw
                .steps
                .get_ref()
                .iter()
                .map(|s| at.non_empty(s, "steps"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            bank.tasks.push(Task {
                id: id.clone(),
                title,
                summary,
                practises,
                steps,
            });
        }

        Ok(bank)
    }

    /// The question with this id, or an error naming the closest ids.
    pub fn question(&self, id: &str) -> anyhow::Result<&Question> {
        if let Some(question) = self.questions.iter().find(|q| q.id == id) {
            return Ok(question);
        }
        bail!(
            "there is no question {id:?}.{} `{LIST_COMMAND}` lists them all.",
            did_you_mean(id, self.questions.iter().map(|q| q.id.as_str()))
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

// ---------------------------------------------------------------------------------------------
// Printing. Each `print_*` writes to stdout through a `write_*` that tests can point elsewhere.
// A closed stdout (`runner questions | head`) is not an error worth reporting.

/// Every question (or those of one level), grouped by level: id, topic and the question.
pub fn print_list(bank: &Bank, level: Option<Level>) {
    let _ = write_list(&mut io::stdout().lock(), bank, level);
}

/// One question in full: the question, the answer, the code, and the exercises that practise it.
pub fn print_question(question: &Question) {
    let _ = write_question(&mut io::stdout().lock(), question);
}

/// The course's practical projects and their steps.
pub fn print_tasks(bank: &Bank) {
    let _ = write_tasks(&mut io::stdout().lock(), bank);
}

pub(crate) fn write_list(out: &mut dyn Write, bank: &Bank, level: Option<Level>) -> io::Result<()> {
    let levels: Vec<Level> = match level {
        Some(level) => vec![level],
        None => Level::ALL.to_vec(),
    };
    for level in levels {
        let questions: Vec<&Question> = bank.select(Some(level));
        let count = match questions.len() {
            1 => "1 question".to_string(),
            n => format!("{n} questions"),
        };
        writeln!(
            out,
            "{} {}",
            capitalized(level.as_str()).bold().underline(),
            format!("({count})").dimmed()
        )?;
        for question in questions {
            writeln!(
                out,
                "  {} {}",
                question.id.yellow().bold(),
                format!("· {}", question.topic).cyan()
            )?;
            for line in wrap(&question.question, WIDTH, "    ") {
                writeln!(out, "{line}")?;
            }
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Show one with `{SHOW_COMMAND} ID`; quiz yourself with `cargo run -p runner -- quiz`."
    )?;
    Ok(())
}

/// The question's heading and text: what the quiz shows before the answer.
pub(crate) fn write_question_head(out: &mut dyn Write, question: &Question) -> io::Result<()> {
    writeln!(
        out,
        "{} {}",
        question.id.yellow().bold(),
        format!("· {} · {}", question.level, question.topic).cyan()
    )?;
    writeln!(out)?;
    for line in wrap(&question.question, WIDTH, "") {
        writeln!(out, "{}", line.bold())?;
    }
    Ok(())
}

/// The answer, the code and the exercises.
pub(crate) fn write_question_answer(out: &mut dyn Write, question: &Question) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{}", "Answer".green().bold())?;
    for line in wrap(&question.answer, WIDTH, "  ") {
        writeln!(out, "{line}")?;
    }
    if let Some(code) = &question.code {
        writeln!(out)?;
        if question.compile_fail {
            writeln!(
                out,
                "{} {}",
                "Code".green().bold(),
                "(does not compile — on purpose: the answer says why)"
                    .red()
                    .bold()
            )?;
        } else {
            writeln!(out, "{}", "Code".green().bold())?;
        }
        for line in code.trim_matches('\n').lines() {
            if line.trim().is_empty() {
                writeln!(out)?;
            } else {
                writeln!(out, "    {line}")?;
            }
        }
    }
    if !question.exercises.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", "Practise it".green().bold())?;
        for exercise in &question.exercises {
            writeln!(out, "  {RUN_COMMAND} {exercise}")?;
        }
    }
    Ok(())
}

pub(crate) fn write_question(out: &mut dyn Write, question: &Question) -> io::Result<()> {
    write_question_head(out, question)?;
    write_question_answer(out, question)
}

pub(crate) fn write_tasks(out: &mut dyn Write, bank: &Bank) -> io::Result<()> {
    for (number, task) in bank.tasks.iter().enumerate() {
        if number > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{} {}",
            format!("{}. {}", number + 1, task.title).bold().underline(),
            format!("({})", task.id).dimmed()
        )?;
        for line in wrap(&task.summary, WIDTH, "  ") {
            writeln!(out, "{line}")?;
        }
        if !task.practises.is_empty() {
            let practises = format!("Practises: {}.", task.practises.join(", "));
            for line in wrap(&practises, WIDTH, "  ") {
                writeln!(out, "{}", line.cyan())?;
            }
        }
        writeln!(out, "  {}", "Steps".green().bold())?;
        for (step, text) in task.steps.iter().enumerate() {
            let item = format!("{}. {text}", step + 1);
            for line in wrap(&item, WIDTH, "    ") {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Reflows `text` into lines of at most `width` columns (a longer word gets a line of its own),
/// each starting with `indent`. Blank lines separate paragraphs and are kept; a line starting
/// with `- `, `* ` or `1. ` starts a list item, whose next lines hang under its text.
pub(crate) fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text
        .trim()
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        // (marker, words) per item; a paragraph that is no list is one item without a marker.
        let mut items: Vec<(String, String)> = Vec::new();
        for line in paragraph.lines().map(str::trim) {
            match list_marker(line) {
                Some(marker) => items.push((marker.to_string(), line[marker.len()..].to_string())),
                None => match items.last_mut() {
                    Some((_, words)) => {
                        words.push(' ');
                        words.push_str(line);
                    }
                    None => items.push((String::new(), line.to_string())),
                },
            }
        }
        for (marker, words) in items {
            let hanging = format!("{indent}{}", " ".repeat(marker.chars().count()));
            let mut line = format!("{indent}{marker}");
            let mut empty = true;
            for word in words.split_whitespace() {
                if !empty && line.chars().count() + 1 + word.chars().count() > width {
                    lines.push(std::mem::replace(&mut line, hanging.clone()));
                    empty = true;
                }
                if !empty {
                    line.push(' ');
                }
                line.push_str(word);
                empty = false;
            }
            lines.push(line);
        }
    }
    lines
}

/// `- `, `* ` or `12. ` at the start of a line.
fn list_marker(line: &str) -> Option<&str> {
    if line.starts_with("- ") || line.starts_with("* ") {
        return Some(&line[..2]);
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    (digits > 0 && line[digits..].starts_with(". ")).then(|| &line[..digits + 2])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const EXERCISES: &[&str] = &[
        "lazy_futures",
        "join_concurrently",
        "select_race",
        "mutex_across_await",
    ];

    pub(crate) const GOOD: &str = r#"
[[questions]]
id = "futures-are-lazy"
level = "basic"
topic = "futures and laziness"
question = "What happens when you call an async fn and never .await the result?"
answer = """
Nothing runs: calling it only builds a future.

- It does nothing until polled.
- Dropping it means the body never starts.
"""
code = """
async fn hello() -> u32 { 1 }
"""
exercises = ["lazy_futures"]

[[questions]]
id = "join-vs-select"
level = "basic"
topic = "join vs select vs spawn"
question = "join! or select!?"
answer = "join! waits for all, select! for the first."
exercises = ["join_concurrently", "select_race"]

[[questions]]
id = "std-mutex-across-await"
level = "intermediate"
topic = "Send bounds"
question = "Why does a std MutexGuard across .await not compile in tokio::spawn?"
answer = "The guard is not Send."
code = "fn main() { let x: u32 = \"no\"; }"
compile_fail = true
exercises = ["mutex_across_await"]

[[questions]]
id = "pin-why"
level = "advanced"
topic = "Pin"
question = "Why do futures need Pin?"
answer = "Self-references."

[[tasks]]
id = "web-scraper"
title = "Web scraper"
summary = "Fetch many pages."
practises = ["semaphore", "retry with backoff"]
steps = ["Fetch one page.", "Fetch many."]
"#;

    pub(crate) fn bank() -> Bank {
        Bank::parse(GOOD, EXERCISES).unwrap()
    }

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

    /// Output without the colour escapes.
    pub(crate) fn plain(bytes: Vec<u8>) -> String {
        let text = String::from_utf8(bytes).unwrap();
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
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
                steps: vec!["Fetch one page.".into(), "Fetch many.".into()],
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
        let message = error(&text);
        assert_eq!(
            message,
            format!(
                "questions.toml:{}: question #3 (id \"std-mutex-across-await\"), field `level`: \
                 \"intermediat\" is not a level; levels are: basic, intermediate, advanced. \
                 Did you mean `intermediate`?",
                line_of(&text, "\"intermediat\"")
            )
        );
    }

    #[test]
    fn an_unknown_topic_is_rejected_with_the_list() {
        let text = good_with("topic = \"Pin\"", "topic = \"pinning\"");
        let message = error(&text);
        let expected = format!(
            "questions.toml:{}: question #4 (id \"pin-why\"), field `topic`: \"pinning\" is not a topic; topics are: \"what async is for\",",
            line_of(&text, "\"pinning\"")
        );
        assert!(message.starts_with(&expected), "{message}");
        assert!(message.contains("\"blocking in async\"."), "{message}");
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
                "field `answer`: is empty",
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
                    "steps = [\"Fetch one page.\", \"Fetch many.\"]",
                    "steps = []",
                ),
                "task #1 (id \"web-scraper\"), field `steps`: has no steps",
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

    #[test]
    fn the_list_groups_by_level() {
        let mut out = Vec::new();
        write_list(&mut out, &bank(), None).unwrap();
        let out = plain(out);
        let basic = out.find("Basic (2 questions)").unwrap();
        let intermediate = out.find("Intermediate (1 question)").unwrap();
        let advanced = out.find("Advanced (1 question)").unwrap();
        assert!(basic < intermediate && intermediate < advanced, "{out}");
        assert!(
            out.contains("  futures-are-lazy · futures and laziness\n    What happens"),
            "{out}"
        );

        let mut out = Vec::new();
        write_list(&mut out, &bank(), Some(Level::Advanced)).unwrap();
        let out = plain(out);
        assert!(
            out.contains("pin-why") && !out.contains("futures-are-lazy"),
            "{out}"
        );
    }

    #[test]
    fn a_question_shows_answer_code_and_exercises() {
        let bank = bank();
        let mut out = Vec::new();
        write_question(&mut out, &bank.questions[0]).unwrap();
        let out = plain(out);
        assert!(
            out.contains("Nothing runs: calling it only builds a future."),
            "{out}"
        );
        assert!(out.contains("  - It does nothing until polled.\n"), "{out}");
        assert!(out.contains("    async fn hello() -> u32 { 1 }\n"), "{out}");
        assert!(
            out.contains("cargo run -p runner -- run lazy_futures"),
            "{out}"
        );
        assert!(!out.contains("does not compile"), "{out}");

        let mut out = Vec::new();
        write_question(&mut out, &bank.questions[2]).unwrap();
        assert!(plain(out).contains("does not compile — on purpose"));
    }

    #[test]
    fn tasks_list_their_steps() {
        let mut out = Vec::new();
        write_tasks(&mut out, &bank()).unwrap();
        let out = plain(out);
        assert!(out.starts_with("1. Web scraper (web-scraper)\n"), "{out}");
        assert!(
            out.contains("Practises: semaphore, retry with backoff."),
            "{out}"
        );
        assert!(
            out.contains("    1. Fetch one page.\n    2. Fetch many.\n"),
            "{out}"
        );
    }

    #[test]
    fn text_wraps_within_the_width() {
        let text = "word ".repeat(40)
            + "\n\n- an item that is long enough to need a second line of text here\n1. one";
        let lines = wrap(&text, 30, "  ");
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:#?}");
        assert!(
            lines.iter().all(|l| l.is_empty() || l.starts_with("  ")),
            "{lines:#?}"
        );
        let item = lines
            .iter()
            .position(|l| l.starts_with("  - an item"))
            .unwrap();
        assert!(lines[item + 1].starts_with("    "), "{lines:#?}");
        assert_eq!(lines.last().unwrap(), "  1. one");
        assert_eq!(lines.iter().filter(|l| l.is_empty()).count(), 1);
    }
}
