//! Progressive hints: each call shows one more, and the runner remembers how far you got.

use anyhow::Result;
use colored::Colorize;

use crate::info::Exercise;
use crate::state::State;

/// The next hint not yet seen (or the last one again), and remembers it was seen.
pub fn next(state: &mut State, exercise: &Exercise) -> Result<String> {
    let seen = state
        .progress
        .hints
        .get(&exercise.name)
        .copied()
        .unwrap_or(0);
    let total = exercise.hints.len();
    let shown = (seen + 1).min(total);
    if shown > seen {
        state.progress.hints.insert(exercise.name.clone(), shown);
        state.save()?;
    }
    let mut text = format_hint(exercise, shown);
    text.push_str(&if shown < total {
        format!("{}\n", "Still stuck? The next hint goes further.".dimmed())
    } else {
        format!(
            "{}\n",
            format!(
                "That was the last hint. `cargo run -p runner -- compare {} --spoil` shows the reference solution.",
                exercise.name
            )
            .dimmed()
        )
    });
    Ok(text)
}

/// Every hint of the exercise.
pub fn all(exercise: &Exercise) -> String {
    (1..=exercise.hints.len())
        .map(|n| format_hint(exercise, n))
        .collect()
}

fn format_hint(exercise: &Exercise, n: usize) -> String {
    let title = format!("Hint {n}/{} for {}:", exercise.hints.len(), exercise.name);
    format!(
        "{}\n{}\n\n",
        title.cyan().bold(),
        exercise.hints[n - 1].trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::Course;

    #[test]
    fn hints_come_one_at_a_time_and_stop_at_the_last() {
        colored::control::set_override(false);
        let course = Course::parse(
            "[[exercises]]\nname = \"a\"\npath = \"a.rs\"\nchapter = \"c\"\nhints = [\"first\", \"second\"]\n",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::load(dir.path(), &course);
        let exercise = &course.exercises[0];
        assert!(
            next(&mut state, exercise)
                .unwrap()
                .contains("Hint 1/2 for a:\nfirst")
        );
        assert!(
            next(&mut state, exercise)
                .unwrap()
                .contains("Hint 2/2 for a:\nsecond")
        );
        let last = next(&mut state, exercise).unwrap();
        assert!(
            last.contains("Hint 2/2") && last.contains("last hint"),
            "{last}"
        );
        assert_eq!(State::load(dir.path(), &course).progress.hints["a"], 2);
        assert!(all(exercise).contains("first") && all(exercise).contains("second"));
    }
}
