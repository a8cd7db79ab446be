//! What watch mode shows after a check, laid out for a small terminal (80×24): compiler
//! warnings folded into one line while the checks fail, and last, where the eye lands, the
//! verdict, the failing check's message and the file to open.

use colored::Colorize;

use crate::cargo::{self, Verdict};
use crate::info::Exercise;
use crate::term;
use crate::verdict::{self, Checked};

/// The screen below the header for this result. `warnings` shows compiler warnings in full.
pub fn compose(exercise: &Exercise, checked: &Checked, warnings: bool) -> String {
    let failing = checked.report.verdict != Verdict::Passed;
    let mut shown = Checked {
        report: checked.report.clone(),
        edited_checks: checked.edited_checks,
    };
    let mut folded = 0;
    if failing && !warnings {
        (shown.report.output, folded) = fold_warnings(&checked.report.output);
    }
    if !term::ansi() {
        shown.report.output = cargo::strip_ansi(&shown.report.output);
    }
    let rendered = verdict::render(exercise, &shown);
    let (output, verdict) = split_verdict(&rendered);
    let mut text = output.to_owned();
    if folded > 0 {
        let note = format!(
            "{folded} compiler warning{} hidden while the checks fail: press w to see them.",
            if folded == 1 { "" } else { "s" }
        );
        text.push_str(&format!("{}\n\n", note.dimmed()));
    }
    text.push_str(&term::wrap_indented(verdict));
    if let Some(message) = failing
        .then(|| first_failure(&checked.report.output))
        .flatten()
    {
        text.push_str(&term::wrap_indented(&format!("  {message}")));
    }
    text.push_str(&format!(
        "{} {}\n",
        "▶".cyan().bold(),
        exercise.display_path()
    ));
    text
}

/// `render`'s text is the output, a blank line, then the verdict lines.
fn split_verdict(rendered: &str) -> (&str, &str) {
    let body = rendered.trim_end_matches('\n');
    match body.rfind("\n\n") {
        Some(at) => rendered.split_at(at + 2),
        None => ("", rendered),
    }
}

/// The output without its compiler warnings, and how many there were. A warning is a block
/// (up to a blank line) that starts with `warning`; cargo's "generated N warnings" lines go too.
pub fn fold_warnings(output: &str) -> (String, usize) {
    let mut kept = Vec::new();
    let mut count = 0;
    for block in output.split("\n\n") {
        let plain = cargo::strip_ansi(block);
        let first = plain.trim_start_matches('\n').lines().next().unwrap_or("");
        if first.starts_with("warning") {
            count += usize::from(!first.contains(" generated "));
        } else {
            kept.push(block);
        }
    }
    (kept.join("\n\n"), count)
}

/// The first failing check's name and message, from libtest's output.
pub fn first_failure(output: &str) -> Option<String> {
    let plain = cargo::strip_ansi(output);
    let mut lines = plain.lines().skip_while(|l| !l.starts_with("---- "));
    let name = lines
        .next()?
        .trim_start_matches("---- ")
        .split(' ')
        .next()?
        .to_owned();
    let message: Vec<&str> = lines
        .skip_while(|l| !l.contains("panicked at"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("note: run with"))
        .take(3)
        .map(str::trim)
        .collect();
    let name = name.rsplit("::").next().unwrap_or(&name).to_owned();
    (!message.is_empty()).then(|| format!("first failing check, {name}: {}", message.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "warning: unused variable: `a`\n  --> x.rs:1:1\n   |\n\nwarning: unused variable: `b`\n  --> x.rs:2:1\n\nwarning: `exercises` (bin \"x\" test) generated 2 warnings\n\nrunning 1 test\ntest tests::adds ... FAILED\n\nfailures:\n\n---- tests::adds stdout ----\n\nthread 'tests::adds' (1) panicked at x.rs:9:5:\nassertion failed: one plus one should be two\n  left: 3\n\nnote: run with `RUST_BACKTRACE=1`\n\ntest result: FAILED. 0 passed; 1 failed\n";

    #[test]
    fn warnings_fold_into_a_count() {
        let (kept, count) = fold_warnings(OUTPUT);
        assert_eq!(count, 2);
        assert!(!kept.contains("unused variable"), "{kept}");
        assert!(kept.starts_with("running 1 test"), "{kept}");
    }

    #[test]
    fn the_first_failure_is_named_with_its_message() {
        assert_eq!(
            first_failure(OUTPUT).unwrap(),
            "first failing check, adds: assertion failed: one plus one should be two left: 3"
        );
        assert!(first_failure("running 1 test\ntest result: ok.").is_none());
    }
}
