//! Printing the interview material: the list of questions, one question with its answer,
//! the practical tasks. Each `print_*` writes to stdout through a `write_*` that tests can
//! point elsewhere; a closed stdout (`runner questions | head`) is not an error worth
//! reporting.

use std::collections::BTreeSet;
use std::io::{self, Write};

use colored::{ColoredString, Colorize as _};

use super::bank::{Bank, Level, Question, Task};
use crate::messages::RUNNER;
use crate::state::Status;

/// Printed text is wrapped to this many columns (code is printed as written).
pub(crate) const WIDTH: usize = 78;

/// The exercises the learner has not reached yet: "practise it" says so instead of giving a
/// command that would refuse to run.
#[derive(Default, Debug, Clone)]
pub struct Locked(pub BTreeSet<String>);

/// Every question (or those of one level), grouped by level: id, topic and the question.
pub fn print_list(bank: &Bank, level: Option<Level>) {
    let _ = write_list(&mut io::stdout().lock(), bank, level);
}

/// One question in full: the question, the answer, the code, and the exercises that practise it.
pub fn print_question(question: &Question, locked: &Locked) {
    let _ = write_question(&mut io::stdout().lock(), question, locked);
}

/// The course's practical projects, their steps and the learner's progress on them.
pub fn print_tasks(bank: &Bank, progress: Progress) {
    let _ = write_tasks(&mut io::stdout().lock(), bank, progress);
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
        "Show one with `{RUNNER} questions show ID`; quiz yourself with `{RUNNER} quiz`."
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
pub(crate) fn write_question_answer(
    out: &mut dyn Write,
    question: &Question,
    locked: &Locked,
) -> io::Result<()> {
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
            if locked.0.contains(exercise) {
                let note =
                    format!("  {exercise} (locked: it opens when you reach it in the course)");
                writeln!(out, "{}", note.dimmed())?;
            } else {
                writeln!(out, "  {RUNNER} run {exercise}")?;
            }
        }
    }
    Ok(())
}

pub(crate) fn write_question(
    out: &mut dyn Write,
    question: &Question,
    locked: &Locked,
) -> io::Result<()> {
    write_question_head(out, question)?;
    write_question_answer(out, question, locked)
}

/// Where the learner is on each exercise (`State::status` by name).
pub type Progress<'a> = &'a dyn Fn(&str) -> Option<Status>;

pub(crate) fn write_tasks(out: &mut dyn Write, bank: &Bank, progress: Progress) -> io::Result<()> {
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
        writeln!(out, "  {}", steps_heading(task, progress))?;
        for (number, step) in task.steps.iter().enumerate() {
            let item = format!("{}. {}", number + 1, step.text);
            for line in wrap(&item, WIDTH, "    ") {
                writeln!(out, "{line}")?;
            }
            if let Some(exercise) = &step.exercise {
                let status = step_status(progress(exercise));
                writeln!(out, "       {status}  {}", exercise.dimmed())?;
            }
        }
    }
    Ok(())
}

/// "Steps" and, when exercises practise them, how many of those are done.
fn steps_heading(task: &Task, progress: Progress) -> String {
    let exercises: Vec<&str> = task
        .steps
        .iter()
        .filter_map(|step| step.exercise.as_deref())
        .collect();
    let heading = "Steps".green().bold();
    if exercises.is_empty() {
        return heading.to_string();
    }
    let done = exercises
        .iter()
        .filter(|name| progress(name) == Some(Status::Done))
        .count();
    format!(
        "{heading} {}",
        format!("({done} of {} exercises done)", exercises.len()).dimmed()
    )
}

/// The same marks as `runner list`.
fn step_status(status: Option<Status>) -> ColoredString {
    match status {
        Some(Status::Done) => "✓ done".green(),
        Some(Status::Skipped) => "» skipped".yellow(),
        Some(Status::Current) => "▶ current".cyan().bold(),
        Some(Status::Locked) | None => "· locked".dimmed(),
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Reflows `text` into lines of at most `width` columns at word boundaries (textwrap), each
/// starting with `indent`. Blank lines separate paragraphs and are kept; a line starting
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
        for (marker, words) in items(paragraph) {
            let first = format!("{indent}{marker}");
            let hanging = format!("{indent}{}", " ".repeat(marker.chars().count()));
            let options = textwrap::Options::new(width)
                .initial_indent(&first)
                .subsequent_indent(&hanging)
                .break_words(false);
            lines.extend(
                textwrap::wrap(&words, options)
                    .into_iter()
                    .map(String::from),
            );
        }
    }
    lines
}

/// A paragraph's list items as (marker, words); a paragraph that is no list is one item
/// without a marker.
fn items(paragraph: &str) -> Vec<(&str, String)> {
    let mut items: Vec<(&str, String)> = Vec::new();
    for line in paragraph.lines().map(str::trim) {
        match (list_marker(line), items.last_mut()) {
            (Some(marker), _) => items.push((marker, line[marker.len()..].to_string())),
            (None, Some((_, words))) => {
                words.push(' ');
                words.push_str(line);
            }
            (None, None) => items.push(("", line.to_string())),
        }
    }
    items
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
mod tests {
    use super::*;
    use crate::interview::fixtures::{bank, plain};
    use crate::state::Status;

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
        write_question(&mut out, &bank.questions[0], &Locked::default()).unwrap();
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
        write_question(&mut out, &bank.questions[2], &Locked::default()).unwrap();
        assert!(plain(out).contains("does not compile — on purpose"));
    }

    #[test]
    fn tasks_list_their_steps() {
        let mut out = Vec::new();
        write_tasks(&mut out, &bank(), &|_| Some(Status::Locked)).unwrap();
        let out = plain(out);
        assert!(out.starts_with("1. Web scraper (web-scraper)\n"), "{out}");
        assert!(
            out.contains("Practises: semaphore, retry with backoff."),
            "{out}"
        );
        assert!(
            out.contains("  Steps (0 of 1 exercises done)\n    1. Fetch one page.\n    2. Fetch many.\n       · locked  join_concurrently\n"),
            "{out}"
        );
    }

    #[test]
    fn tasks_show_the_progress_of_their_steps() {
        let mut out = Vec::new();
        write_tasks(&mut out, &bank(), &|name| {
            (name == "join_concurrently").then_some(Status::Done)
        })
        .unwrap();
        let out = plain(out);
        assert!(out.contains("Steps (1 of 1 exercises done)"), "{out}");
        assert!(out.contains("       ✓ done  join_concurrently\n"), "{out}");
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

    #[test]
    fn practise_it_says_when_an_exercise_is_still_locked() {
        let bank = bank();
        let locked = Locked(["lazy_futures".to_owned()].into());
        let mut out = Vec::new();
        write_question(&mut out, &bank.questions[0], &locked).unwrap();
        let out = plain(out);
        assert!(
            out.contains("lazy_futures (locked: it opens when you reach it"),
            "{out}"
        );
        assert!(!out.contains("run lazy_futures"), "{out}");
    }
}
