//! A coloured diff between the learner's file and the reference solution.

use std::path::Path;

use anyhow::{Context, Result};
use colored::Colorize;
use similar::{ChangeTag, TextDiff};

use crate::info::Exercise;

pub fn diff(root: &Path, exercise: &Exercise) -> Result<String> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mine = read(&exercise.exercise_file(root))?;
    let reference = read(&exercise.solution_file(root))?;
    Ok(render(
        &mine,
        &reference,
        &exercise.display_path(),
        &format!("solutions/{}", exercise.path.display()),
    ))
}

fn render(mine: &str, reference: &str, mine_name: &str, reference_name: &str) -> String {
    let diff = TextDiff::from_lines(mine, reference);
    if diff.ratio() == 1.0 {
        return format!(
            "{}\n",
            "Your file is the same as the reference solution.".green()
        );
    }
    let mut out = format!(
        "{}\n{}\n",
        format!("--- {mine_name} (yours)").red(),
        format!("+++ {reference_name} (reference)").green()
    );
    for group in diff.grouped_ops(3) {
        let first = &group[0];
        let header = format!(
            "@@ yours line {}, reference line {} @@",
            first.old_range().start + 1,
            first.new_range().start + 1
        );
        out.push_str(&format!("{}\n", header.cyan()));
        for op in &group {
            for change in diff.iter_changes(op) {
                let line = change.to_string_lossy();
                let line = line.trim_end_matches('\n');
                out.push_str(&match change.tag() {
                    ChangeTag::Delete => format!("{}\n", format!("-{line}").red()),
                    ChangeTag::Insert => format!("{}\n", format!("+{line}").green()),
                    ChangeTag::Equal => format!(" {line}\n").dimmed().to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_what_differs_with_context() {
        colored::control::set_override(false);
        let out = render("a\nb\nc\n", "a\nB\nc\n", "mine.rs", "ref.rs");
        assert!(out.contains("--- mine.rs (yours)"), "{out}");
        assert!(out.contains("-b\n+B\n"), "{out}");
        assert!(out.contains(" a\n"), "{out}");
    }

    #[test]
    fn identical_files_say_so() {
        colored::control::set_override(false);
        assert!(render("a\n", "a\n", "m", "r").contains("same as the reference"));
    }
}
