//! What a check's verdict means and what it leaves behind (issue 7: items 1–4, 7, 8, 12),
//! through the real `runner` binary on a temporary copy of the course.

mod support;

use std::time::Duration;

use support::{CourseCopy, Pty, text};

const JOIN: &str = "exercises/01_basics/join_concurrently.rs";
const JOIN_SOLUTION: &str = "solutions/01_basics/join_concurrently.rs";
const FETCH_BODY: &str = "    sleep(Duration::from_millis(latency_ms)).await;";

/// The solution of join_concurrently with `fetch`'s body replaced, as the current exercise.
fn join_with_fetch(course: &CourseCopy, body: &str, timeout_secs: u64) {
    course.progress_up_to("join_concurrently");
    let info = course.read("info.toml").replace(
        "name = \"join_concurrently\"\n",
        &format!("name = \"join_concurrently\"\ntimeout_secs = {timeout_secs}\n"),
    );
    course.write("info.toml", &info);
    let solution = course.read(JOIN_SOLUTION);
    assert!(solution.contains(FETCH_BODY), "the solution changed");
    course.write(JOIN, &solution.replace(FETCH_BODY, body));
}

/// Live (not zombie) processes whose command line contains `needle`.
fn running(needle: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|s| !s.starts_with(" Z"))
            })
        })
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| match needle.strip_suffix(' ') {
            // A path prefix: the program itself, not an argument naming it.
            Some(program) => cmdline.starts_with(program),
            None => cmdline.contains(needle),
        })
        .collect()
}

#[test]
fn process_exit_in_the_code_is_not_a_pass() {
    let course = CourseCopy::new();
    join_with_fetch(
        &course,
        "    let _ = latency_ms;\n    std::process::exit(0);",
        10,
    );
    let output = course.run(&["run"]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("the checks stopped after"), "{said}");
    assert!(said.contains("of 5 tests"), "{said}");
    assert!(said.contains("process::exit"), "{said}");
    assert!(
        !course
            .read(".asynclings-progress.toml")
            .contains("\"join_concurrently\"")
    );
}

#[test]
fn a_child_holding_the_output_pipe_does_not_make_a_pass_a_hang() {
    let course = CourseCopy::new();
    join_with_fetch(
        &course,
        &format!(
            "    let _ = std::process::Command::new(\"sleep\").arg(\"300.031\").spawn();\n{FETCH_BODY}"
        ),
        10,
    );
    let output = course.run(&["run"]);
    let said = text(&output);
    assert!(
        said.contains("join_concurrently passes every check"),
        "{said}"
    );
    assert!(
        running("sleep 300.031").is_empty(),
        "the check's children live on"
    );
}

/// libtest colours through the terminal's terminfo: on xterm-256color every coloured word
/// ends in `ESC ( B ESC [ m`, and a pass must still read as a pass (it once read as a
/// failure in every colour terminal).
#[test]
fn a_pass_in_a_colour_terminal_is_a_pass() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    course.write(JOIN, &course.read(JOIN_SOLUTION));
    let output = course
        .command(&["run"])
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .env("TERM", "xterm-256color")
        .output()
        .unwrap();
    let said = runner::check::strip_ansi(&text(&output));
    assert!(
        said.contains("join_concurrently passes every check"),
        "{said}"
    );
    assert_eq!(output.status.code(), Some(0), "{said}");
}

/// The scraper lives in a package pair of its own (`exercises-web`), so that chapter 1 never
/// builds the HTTP stack: `run` builds and runs it there, stub and solution alike.
#[test]
fn an_exercise_of_another_package_pair_is_checked_in_its_package() {
    const SCRAPER: &str = "exercises/04_projects/scraper_fetch.rs";
    let course = CourseCopy::new();
    course.progress_up_to("scraper_fetch");
    let said = text(&course.run(&["run"]));
    assert!(
        said.contains("scraper_fetch compiles, but some checks fail"),
        "{said}"
    );
    course.write(
        SCRAPER,
        &course.read("solutions/04_projects/scraper_fetch.rs"),
    );
    let output = course.run(&["run"]);
    let said = text(&output);
    assert!(said.contains("scraper_fetch passes every check"), "{said}");
    assert_eq!(output.status.code(), Some(0), "{said}");
}

#[test]
fn a_flood_of_output_is_cut_and_memory_stays_bounded() {
    let course = CourseCopy::new();
    join_with_fetch(
        &course,
        "    let _ = latency_ms;\n    let line = format!(\"{}\\n\", \"x\".repeat(4095));\n    \
         loop {\n        let _ = std::io::Write::write_all(&mut std::io::stdout(), line.as_bytes());\n    }",
        3,
    );
    assert!(course.run(&["run"]).status.code().is_some(), "warm build");
    let child = course
        .command(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let peak_kb = max_rss_kb(child);
    assert!(
        peak_kb < 300 * 1024,
        "the runner grew to {} MB",
        peak_kb / 1024
    );
    let said = text(&course.run(&["run"]));
    assert!(said.contains("lines cut"), "{said}");
}

/// Waits for `child`; the peak resident size of it and what it waited for, in KB.
fn max_rss_kb(child: std::process::Child) -> i64 {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: wait4 fills the plain-data rusage for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4 failed");
    usage.ru_maxrss
}

#[test]
fn quitting_watch_during_a_check_leaves_nothing_running() {
    let course = CourseCopy::new();
    join_with_fetch(
        &course,
        "    let _ = latency_ms;\n    \
         let _ = std::process::Command::new(\"setsid\").args([\"sleep\", \"301.047\"]).spawn();\n    \
         let _ = std::process::Command::new(\"sleep\").arg(\"302.047\").spawn();\n    \
         std::future::pending::<()>().await;",
        60,
    );
    let mut pty = Pty::spawn(course.command(&["watch"]));
    pty.wait_for("Running checks… 1 s of 60", 0, Duration::from_secs(120));
    pty.type_keys("q");
    // This copy's test binary, as its command line starts (not a linker naming its objects).
    let binary = format!(
        "{} ",
        support::target_dir()
            .join("debug/deps/join_concurrently-")
            .display()
    );
    assert!(
        pty.wait_for_exit(Duration::from_secs(10)),
        "q did not quit cleanly"
    );
    let left = [running("301.047"), running("302.047"), running(&binary)];
    assert!(left.iter().all(Vec::is_empty), "left running: {left:?}");
}

#[test]
fn a_failing_pty_test_still_ends_its_runner() {
    let course = CourseCopy::new();
    let dir = course.root().display().to_string();
    let command = course.command(&["watch", "--poll"]);
    let pid = std::thread::spawn(move || {
        let pty = Pty::spawn(command);
        let pid = pty.child.id();
        std::panic::panic_any(pid)
    })
    .join()
    .unwrap_err();
    let pid = *pid.downcast::<u32>().unwrap();
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").starts_with(" Z"));
    assert!(!alive, "runner watch in {dir} outlived its failed test");
}

#[test]
fn verify_judges_each_exercise_alone_and_rebuilds_progress_from_what_passes() {
    let course = CourseCopy::new();
    for (exercise, solution) in [
        (JOIN, JOIN_SOLUTION),
        (
            "exercises/01_basics/lazy_futures.rs",
            "solutions/01_basics/lazy_futures.rs",
        ),
    ] {
        course.write(exercise, &course.read(solution));
    }
    course.write(
        "exercises/01_basics/try_join_first_error.rs",
        "fn main() { this does not compile }\n",
    );
    let info: toml::Table = toml::from_str(&course.read("info.toml")).unwrap();
    let all: Vec<&str> = info["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    course.write(
        ".asynclings-progress.toml",
        &format!("welcomed = true\ndone = {all:?}\n"),
    );
    let said = text(&course.run(&["verify"]));
    assert!(said.contains("✓ join_concurrently\n"), "{said}");
    assert!(said.contains("✓ lazy_futures\n"), "{said}");
    assert!(
        said.contains("✗ try_join_first_error (does not compile)"),
        "{said}"
    );
    let progress: toml::Table = toml::from_str(&course.read(".asynclings-progress.toml")).unwrap();
    let done: Vec<&str> = progress["done"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert_eq!(done, ["join_concurrently", "lazy_futures"], "{said}");
}

#[test]
fn a_timeout_names_only_the_running_tests_and_keeps_the_failures() {
    let course = CourseCopy::new();
    join_with_fetch(
        &course,
        "    let _ = latency_ms;\n    \
         if [\"user\", \"orders\", \"recommendations\"].contains(&what) {\n        std::future::pending::<()>().await;\n    }\n    \
         panic!(\"fetch broke for {what}\");",
        2,
    );
    let output = course.run(&["run"]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("still running after 2 s"), "{said}");
    assert!(
        said.contains(
            "Still running when stopped: tests::dashboard_waits_for_the_longest_call_not_the_sum, \
             tests::every_part_is_really_fetched_and_the_calls_start_together.\n"
        ),
        "only the hanging tests (the two that load the dashboard) are named:\n{said}"
    );
    assert!(
        said.contains("fetch broke for"),
        "the failed tests' panics are kept:\n{said}"
    );
}
