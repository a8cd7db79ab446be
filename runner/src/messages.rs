//! The runner's long texts, and the command a learner types, written once.

/// `runner!("hint")` is `"cargo run -p runner -- hint"`: the one place that spells the prefix.
#[macro_export]
macro_rules! runner {
    () => {
        "cargo run -p runner --"
    };
    ($args:literal) => {
        concat!($crate::runner!(), " ", $args)
    };
}

/// The prefix alone, for commands built at run time (`format!("{RUNNER} run {name}")`).
pub const RUNNER: &str = runner!();

pub const PROGRESS_HEADER: &str = concat!(
    "# Your asynclings progress. Safe to edit by hand, or to delete:\n",
    "# `",
    runner!("verify"),
    "` rebuilds it from what passes.\n"
);

pub const WELCOME: &str = "Each exercise is a small async program with failing checks. Open the \
file shown below in your editor and make the checks pass: every time you save, the runner \
rebuilds it and runs its checks, and when they pass the next exercise unlocks. The checks run on \
tokio's paused clock, so they prove timing and concurrency without waiting. Stuck? Press h for a \
hint, as often as you need.";

pub const WATCH_KEYS: &str =
    "n next · h hint · s skip · w warnings · l list · c compare · r re-run · q quit";

pub const WATCH_WITHOUT_TERMINAL: &str = "Watching exercises/ for changes (no terminal: no keys). \
Stop with Ctrl-C.";

/// Said once when the progress file cannot be written; `{file}` and `{error}` are filled in.
pub fn cannot_save(file: &str, error: &str) -> String {
    format!(
        "Your progress cannot be saved to {file} ({error}). The runner goes on, but what you do \
         now is forgotten when it stops. Check that the folder is writable."
    )
}

/// Where the learner is: at the shell, or in watch mode (whose messages name its keys).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Keys {
    Cli,
    Watch,
}

/// After the last hint: how to see the reference solution.
pub fn after_last_hint(keys: Keys, name: &str) -> String {
    match keys {
        Keys::Cli => format!(
            "That was the last hint. `{RUNNER} compare {name} --spoil` shows the reference solution."
        ),
        Keys::Watch => {
            "That was the last hint. Press c twice to see the reference solution.".to_owned()
        }
    }
}
