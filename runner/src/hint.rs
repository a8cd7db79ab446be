//! Progressive hints: each call shows one more, and the runner remembers how far you got.

use colored::Colorize;

use crate::info::Exercise;
use crate::messages::{Keys, after_last_hint};
use crate::state::State;

/// The next hint not yet seen (or the last one again), and remembers it was seen.
pub fn next(state: &mut State, exercise: &Exercise, keys: Keys) -> String {
    let total = exercise.hints.len();
    let shown = (state.hints_seen(&exercise.name) + 1).min(total);
    state.hint_seen(&exercise.name, shown);
    let mut text = format_hint(exercise, shown);
    text.push_str(&if shown < total {
        format!("{}\n", "Still stuck? The next hint goes further.".dimmed())
    } else {
        format!("{}\n", after_last_hint(keys, &exercise.name).dimmed())
    });
    text
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
        assert!(next(&mut state, exercise, Keys::Cli).contains("Hint 1/2 for a:\nfirst"));
        assert!(next(&mut state, exercise, Keys::Cli).contains("Hint 2/2 for a:\nsecond"));
        let last = next(&mut state, exercise, Keys::Cli);
        assert!(
            last.contains("Hint 2/2") && last.contains("compare a --spoil"),
            "{last}"
        );
        let in_watch = next(&mut state, exercise, Keys::Watch);
        assert!(in_watch.contains("Press c twice"), "{in_watch}");
        assert_eq!(State::load(dir.path(), &course).hints_seen("a"), 2);
        assert!(all(exercise).contains("first") && all(exercise).contains("second"));
    }

    #[test]
    fn an_unwritable_progress_file_still_shows_the_hint_and_warns_once() {
        colored::control::set_override(false);
        let course = Course::parse(
            "[[exercises]]\nname = \"a\"\npath = \"a.rs\"\nchapter = \"c\"\nhints = [\"first\", \"second\"]\n",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        // A folder that does not exist cannot be written, even by root.
        let mut state = State::load(&dir.path().join("gone"), &course);
        let exercise = &course.exercises[0];
        assert!(next(&mut state, exercise, Keys::Cli).contains("first"));
        let warning = state.take_save_warning().expect("a warning");
        assert!(warning.contains("cannot be saved"), "{warning}");
        assert!(
            next(&mut state, exercise, Keys::Cli).contains("second"),
            "the count goes on in memory"
        );
        assert!(state.take_save_warning().is_none(), "warned once only");
    }
}
