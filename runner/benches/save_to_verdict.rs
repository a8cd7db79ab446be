//! Save-to-verdict, the learner's main wait. After a warm build, applies a one-line edit to
//! an exercise and times, 10 runs each (medians):
//!   (a) `runner run NAME`,
//!   (b) the bare cargo command the runner wraps, `cargo test -p exercises --bin NAME`,
//!   (c) watch mode: from the file write to the verdict on screen (through a pseudo-terminal).
//! Targets: (a) within 1.10 × (b); (c) within (b) + 100 ms.
//!
//! Run: `cargo bench -p runner --bench save_to_verdict`

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{CourseCopy, Pty};

const NAME: &str = "join_concurrently";
const FILE: &str = "exercises/01_basics/join_concurrently.rs";
const RUNS: usize = 10;

fn main() {
    let runner = dev_runner();
    let course = CourseCopy::new();
    course.progress_up_to(NAME);
    let solution = course.read("solutions/01_basics/join_concurrently.rs");
    // A one-line edit that changes the code, so cargo must rebuild the exercise each time.
    let edit = |i: usize| {
        let line =
            format!("    let prices = Vec::<String>::with_capacity({i});\n    let _ = prices;\n");
        solution.replacen(
            "async fn main() {\n",
            &format!("async fn main() {{\n{line}"),
            1,
        )
    };
    course.write(FILE, &edit(0));
    assert!(
        course
            .command_of(&runner, &["run"])
            .status()
            .unwrap()
            .success(),
        "warm-up run failed"
    );

    let mut runner_runs = Vec::new();
    let mut cargo_runs = Vec::new();
    for i in 1..=RUNS {
        course.write(FILE, &edit(2 * i));
        runner_runs.push(time(
            course
                .command_of(&runner, &["run", NAME])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
        course.write(FILE, &edit(2 * i + 1));
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["test", "-p", "exercises", "--bin", NAME])
            .current_dir(course.root())
            .env("CARGO_TARGET_DIR", support::target_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cargo_runs.push(time(&mut cargo));
    }

    course.progress_up_to(NAME);
    let mut pty = Pty::spawn(course.command_of(&runner, &["watch"]));
    pty.wait_for("n next · h hint", 0, Duration::from_secs(120));
    let mut watch_runs = Vec::new();
    for i in 1..=RUNS {
        let mark = pty.mark();
        let start = Instant::now();
        course.write(FILE, &edit(100 + i));
        let seen = pty.wait_for("passes every check", mark, Duration::from_secs(120));
        watch_runs.push(seen - start);
        pty.wait_for("n next · h hint", mark, Duration::from_secs(10));
    }
    pty.type_keys("q");
    let _ = pty.child.wait();

    let (a, b, c) = (
        median(&mut runner_runs),
        median(&mut cargo_runs),
        median(&mut watch_runs),
    );
    println!("save-to-verdict, {RUNS} runs each, medians (one-line edit of {NAME}):");
    println!("  (a) runner run {NAME:<28} {:>6.0} ms", ms(a));
    println!(
        "  (b) cargo test -p exercises --bin {NAME:<10} {:>6.0} ms",
        ms(b)
    );
    println!(
        "  (c) watch: file write -> verdict on screen   {:>6.0} ms",
        ms(c)
    );
    println!(
        "  (a)/(b) = {:.3}  (target <= 1.10: {})",
        ms(a) / ms(b),
        if ms(a) <= 1.10 * ms(b) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "  (c)-(b) = {:+.0} ms  (target <= +100 ms: {})",
        ms(c) - ms(b),
        if ms(c) <= ms(b) + 100.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// The runner as learners run it (`cargo run -p runner` builds the dev profile), not the
/// optimised build `cargo bench` makes.
fn dev_runner() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "runner"])
        .current_dir(support::workspace())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cannot build the runner");
    support::workspace().join("target/debug/runner")
}

fn time(command: &mut Command) -> Duration {
    let start = Instant::now();
    command.status().expect("the command runs");
    start.elapsed()
}

fn median(runs: &mut [Duration]) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
