//! `runner list`: every exercise with its chapter and status.

use colored::Colorize;

use crate::info::Course;
use crate::state::{State, Status};
use crate::term;

pub fn render(course: &Course, state: &State) -> String {
    let width = course.names().map(str::len).max().unwrap_or(0);
    let mut out = format!(
        "{}\n",
        format!("  #  {:width$}  {:10}  status", "exercise", "chapter").bold()
    );
    for (index, exercise) in course.exercises.iter().enumerate() {
        let status = match state.status(course, index) {
            Status::Done => "✓ done".green(),
            Status::Skipped => "» skipped".yellow(),
            Status::Current => "▶ current".cyan().bold(),
            Status::Locked => "· locked".dimmed(),
        };
        out.push_str(&format!(
            "{:>3}  {:width$}  {:10}  {status}\n",
            index + 1,
            exercise.name,
            exercise.chapter
        ));
    }
    out.push_str(&format!(
        "\n{}\n",
        term::progress_bar(state.done_count(), course.exercises.len())
    ));
    out
}
