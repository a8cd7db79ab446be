//! A failing concurrency check's timeline, end to end: drawn by the check, redrawn by the
//! runner for the terminal it runs in.

mod support;

use std::time::Duration;

use support::{CourseCopy, Pty, text};

const JOIN: &str = "exercises/01_basics/join_concurrently.rs";
const JOIN_SOLUTION: &str = "solutions/01_basics/join_concurrently.rs";

fn axis_line(screen: &str) -> &str {
    screen
        .lines()
        .find(|l| l.starts_with("virtual ms"))
        .unwrap_or_else(|| panic!("no timeline on screen:\n{screen}"))
}

#[test]
fn watch_draws_the_sequential_stub_at_the_terminal_width_and_none_once_it_passes() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    let mut pty = Pty::spawn(course.command(&["watch"]));
    let minute = Duration::from_secs(60);
    pty.wait_for("some checks fail", 0, minute);
    pty.wait_for("n next · h hint", 0, minute);

    let screen = pty.screen();
    assert!(
        !screen.contains("@@timeline"),
        "the data line was shown:\n{screen}"
    );
    // The pty is 140 columns wide: the axis uses more than the 80 of the text version.
    let axis = axis_line(&screen);
    assert!(
        axis.chars().count() > 100,
        "not redrawn to the width: {axis:?}"
    );
    // Every line of the picture fits (the status line above it is redrawn in place with
    // carriage returns, so the raw pty text joins its updates into one long line).
    let picture = screen
        .lines()
        .skip_while(|l| !l.starts_with("virtual ms"))
        .take_while(|l| !l.trim().is_empty());
    for line in picture {
        assert!(line.chars().count() <= 140, "too wide: {line:?}\n{screen}");
    }
    // The sequential stub: three rows, each starting where the one before ended.
    let starts: Vec<usize> = ["user", "orders", "recommendations"]
        .iter()
        .map(|row| {
            let line = screen.lines().find(|l| l.starts_with(row)).unwrap();
            line.find('█').unwrap()
        })
        .collect();
    assert!(starts[0] < starts[1] && starts[1] < starts[2], "{screen}");
    assert!(screen.contains("peak 1"), "{screen}");

    let saved = pty.mark();
    course.write_by_rename(JOIN, &course.read(JOIN_SOLUTION));
    pty.wait_for("join_concurrently passes every check", saved, minute);
    let after = pty.screen();
    let after = &after[after.rfind("join_concurrently passes").unwrap()..];
    assert!(
        !after.contains("virtual ms"),
        "a timeline for a pass:\n{after}"
    );
    pty.type_keys("q");
    assert!(
        pty.wait_for_exit(Duration::from_secs(10)),
        "q did not quit cleanly"
    );
}

#[test]
fn run_without_a_terminal_draws_80_columns_and_ascii_for_a_dumb_terminal() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    let output = course
        .command(&["run", "join_concurrently"])
        .env("TERM", "dumb")
        .output()
        .unwrap();
    let out = text(&output);
    assert!(!out.contains("@@timeline"), "{out}");
    let axis = axis_line(&out);
    assert!(
        axis.chars().count() <= 80 && axis.chars().count() > 60,
        "{axis:?}"
    );
    let user = out.lines().find(|l| l.starts_with("user ")).unwrap();
    assert!(user.contains('#') && !out.contains('█'), "{out}");
    assert!(!out.contains('\x1b'), "colour with NO_COLOR set:\n{out}");
}
