//! The check module's messages, in one place.

/// Shown where a flood of output was cut.
pub fn cut_note(lines: usize, bytes: usize) -> String {
    format!(
        "\n[… {lines} lines cut ({} KB): the checks printed too much to keep; the start and the end are shown …]\n\n",
        bytes / 1024
    )
}

/// While the checks run.
pub fn running(elapsed_secs: u64, limit_secs: u64) -> String {
    format!("Running checks… {elapsed_secs} s of {limit_secs}")
}

pub const NO_TOOLCHAIN: &str = "cannot start cargo: is the Rust toolchain installed?";

/// Before the messages of the tests that failed before a timeout.
pub const FAILED_BEFORE_THE_LIMIT: &str =
    "\n── The checks that failed before the time ran out, run again for their messages: ──\n";
