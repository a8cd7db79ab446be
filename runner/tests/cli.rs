//! The real `runner` binary, driven on a temporary copy of the course.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{CourseCopy, Pty, text};

const JOIN: &str = "exercises/01_basics/join_concurrently.rs";
const JOIN_SOLUTION: &str = "solutions/01_basics/join_concurrently.rs";

#[test]
fn run_exits_1_on_failing_checks_and_0_with_unlock_on_pass() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    let failing = course.run(&["run", "join_concurrently"]);
    assert_eq!(failing.status.code(), Some(1), "{}", text(&failing));
    assert!(
        text(&failing).contains("some checks fail"),
        "{}",
        text(&failing)
    );
    assert!(
        text(&failing).contains("should take 300 ms"),
        "the check's own message is shown:\n{}",
        text(&failing)
    );

    course.write(JOIN, &course.read(JOIN_SOLUTION));
    let passing = course.run(&["run"]);
    assert_eq!(passing.status.code(), Some(0), "{}", text(&passing));
    assert!(
        text(&passing).contains("join_concurrently passes every check"),
        "{}",
        text(&passing)
    );
    assert!(
        text(&passing).contains("try_join_first_error unlocked"),
        "{}",
        text(&passing)
    );
    assert!(
        course
            .read(".asynclings-progress.toml")
            .contains("\"join_concurrently\"")
    );
}

#[test]
fn a_compile_error_is_shown_as_the_compiler_prints_it() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    course.write(
        JOIN,
        &course.read(JOIN).replace(
            "let user = fetch(\"user\", 300).await;",
            "let user: u32 = fetch(\"user\", 300).await;",
        ),
    );
    let output = course.run(&["run"]);
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    assert!(out.contains("error[E0308]: mismatched types"), "{out}");
    assert!(out.contains("does not compile yet"), "{out}");
}

#[test]
fn hints_progress_one_at_a_time_and_are_remembered() {
    let course = CourseCopy::new();
    let first = text(&course.run(&["hint", "lazy_futures"]));
    assert!(first.contains("Hint 1/"), "{first}");
    let second = text(&course.run(&["hint"]));
    assert!(second.contains("Hint 2/"), "{second}");
    assert!(
        course
            .read(".asynclings-progress.toml")
            .contains("lazy_futures = 2")
    );
    let all = text(&course.run(&["hint", "lazy_futures", "--all"]));
    assert!(all.contains("Hint 1/") && all.contains("Hint 2/"), "{all}");
}

#[test]
fn reset_restores_the_stub_and_keeps_a_backup() {
    let course = CourseCopy::new();
    let original = course.read(JOIN);
    course.write(JOIN, "// my precious work\n");
    let output = course.run(&["reset", "join_concurrently"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(course.read(JOIN), original);
    let said = text(&output);
    let backup = said
        .split("kept in ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap();
    let backup = backup.trim_end_matches('.');
    assert_eq!(course.read(backup), "// my precious work\n", "{said}");
}

#[test]
fn edited_checks_do_not_count_and_reset_checks_restores_them() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    // The learner makes the checks pass by gutting them instead of fixing the code.
    let stub = course.read(JOIN);
    let code = &stub[..stub.rfind("#[cfg(test)]").unwrap()];
    course.write(
        JOIN,
        &format!("{code}#[cfg(test)]\nmod tests {{\n    #[test]\n    fn fine() {{}}\n}}\n"),
    );
    let output = course.run(&["run"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("not the course's checks: you edited them"),
        "{}",
        text(&output)
    );
    assert!(
        !course
            .read(".asynclings-progress.toml")
            .contains("join_concurrently")
    );
    assert!(
        course
            .run(&["reset", "join_concurrently", "--checks"])
            .status
            .success()
    );
    assert_eq!(
        course.read(JOIN),
        course.read("runner/originals/01_basics/join_concurrently.rs")
    );
}

#[test]
fn locked_exercises_say_what_to_finish_first_and_skip_is_explicit() {
    let course = CourseCopy::new();
    let output = course.run(&["run", "join_concurrently"]);
    assert_eq!(output.status.code(), Some(1));
    let said = text(&output);
    assert!(
        said.contains("`join_concurrently` is locked: finish `lazy_futures` first"),
        "{said}"
    );
    assert!(said.contains("skip"), "{said}");
    let compare = text(&course.run(&["compare", "join_concurrently", "--spoil"]));
    assert!(compare.contains("locked"), "{compare}");
    assert!(course.run(&["skip"]).status.success());
    assert!(course.run(&["skip"]).status.success());
    assert!(text(&course.run(&["hint", "join_concurrently"])).contains("Hint 1/"));
    let list = text(&course.run(&["list"]));
    assert!(
        list.contains("lazy_futures") && list.contains("skipped"),
        "{list}"
    );
}

#[test]
fn compare_needs_spoil_before_the_exercise_is_done() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    let refused = course.run(&["compare"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("--spoil"), "{}", text(&refused));
    let diff = text(&course.run(&["compare", "--spoil"]));
    assert!(
        diff.contains("+    let (user, orders, recommendations) = tokio::join!("),
        "{diff}"
    );
}

#[test]
fn unknown_names_get_the_closest_names() {
    let course = CourseCopy::new();
    let output = course.run(&["run", "join_concurently"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("Did you mean `join_concurrently`?"),
        "{}",
        text(&output)
    );
    let reset = text(&course.run(&["reset", "semaphore"]));
    assert!(reset.contains("`semaphore_fetcher`"), "{reset}");
}

#[test]
fn a_damaged_progress_file_is_explained_and_rebuildable() {
    let course = CourseCopy::new();
    course.write(
        ".asynclings-progress.toml",
        "done = [\"lazy_futures\"\n\u{0}garbage",
    );
    let output = course.run(&["list"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("is damaged") && said.contains("verify"),
        "{said}"
    );
    // Using the runner writes a fresh file and keeps the damaged one.
    assert!(course.run(&["hint", "lazy_futures"]).status.success());
    assert!(
        course
            .read(".asynclings-progress.toml.damaged")
            .contains("garbage")
    );
    assert!(!text(&course.run(&["list"])).contains("damaged"));
}

#[test]
fn a_malformed_info_toml_names_the_line_and_field() {
    let course = CourseCopy::new();
    let info = course.read("info.toml");
    let broken = info.replacen("chapter = \"basics\"\n", "", 1);
    course.write("info.toml", &broken);
    let said = text(&course.run(&["list"]));
    assert!(
        said.contains("missing field `chapter`") && said.contains("line"),
        "{said}"
    );
}

#[test]
fn the_watchdog_kills_a_deadlock_within_its_limit_and_explains() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    let info = course.read("info.toml").replace(
        "name = \"join_concurrently\"\n",
        "name = \"join_concurrently\"\ntimeout_secs = 2\n",
    );
    course.write("info.toml", &info);
    // A learner's future that never completes: no timer, nobody to wake it.
    let hang = course.read(JOIN_SOLUTION).replace(
        "    sleep(Duration::from_millis(latency_ms)).await;",
        "    let _ = latency_ms;\n    std::future::pending::<()>().await;",
    );
    course.write(JOIN, &hang.replace("use tokio::time::sleep;\n", ""));
    let executable = prebuild(&course);

    let start = Instant::now();
    let output = course.run(&["run"]);
    let elapsed = start.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        elapsed < Duration::from_secs(3),
        "killed after {elapsed:?}, the limit is 2 s"
    );
    let said = text(&output);
    assert!(said.contains("still running after 2 s"), "{said}");
    assert!(
        said.contains("tests::dashboard_waits_for_the_longest_call_not_the_sum"),
        "{said}"
    );
    assert!(said.contains("lost wake-up"), "{said}");
    #[cfg(target_os = "linux")]
    assert!(
        !process_running(&executable),
        "the hung check is still running"
    );
    let _ = executable;
}

/// Builds the exercise's checks so that timing `runner run` measures the run, not the build.
fn prebuild(course: &CourseCopy) -> String {
    let output = Command::new(env!("CARGO"))
        .args([
            "test",
            "--no-run",
            "-p",
            "exercises",
            "--bin",
            "join_concurrently",
            "--message-format=json",
        ])
        .current_dir(course.root())
        .env("CARGO_TARGET_DIR", support::target_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let executable = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|m| m["executable"].as_str().map(str::to_owned));
    executable.unwrap_or_else(|| {
        panic!(
            "no test binary built:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[cfg(target_os = "linux")]
fn process_running(executable: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).starts_with(executable))
    })
}

#[test]
fn watch_turns_green_on_save_unlocks_the_next_and_restores_the_terminal() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    let mut pty = Pty::spawn(course.command(&["watch"]));
    let minute = Duration::from_secs(60);
    pty.wait_for("some checks fail", 0, minute);
    pty.wait_for("n next · h hint", 0, minute);

    let saved = pty.mark();
    course.write_by_rename(JOIN, &course.read(JOIN_SOLUTION));
    pty.wait_for("join_concurrently passes every check", saved, minute);
    pty.wait_for("try_join_first_error unlocked", saved, minute);

    let pressed = pty.mark();
    pty.type_keys("n");
    pty.wait_for("▶ try_join_first_error", pressed, minute);
    let pressed = pty.mark();
    pty.type_keys("h");
    pty.wait_for("Hint 1/", pressed, minute);
    pty.type_keys("q");
    assert!(
        pty.wait_for_exit(Duration::from_secs(10)),
        "q did not quit cleanly"
    );
    assert!(
        pty.terminal_is_cooked(),
        "the terminal was left in raw mode"
    );
}

#[test]
fn watch_without_a_terminal_polls_and_moves_on_by_itself() {
    let course = CourseCopy::new();
    course.progress_up_to("join_concurrently");
    let mut child = course
        .command(&["watch", "--poll"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if line.contains(needle) {
                return;
            }
        }
        panic!("`{needle}` never appeared");
    };
    wait_for("Stop with Ctrl-C");
    wait_for("some checks fail");
    course.write(JOIN, &course.read(JOIN_SOLUTION));
    wait_for("join_concurrently passes every check");
    // No keys to press: it goes straight on to the next exercise.
    wait_for("▶ try_join_first_error");
    child.kill().unwrap();
    let _ = child.wait();
}

const LAZY: &str = "exercises/01_basics/lazy_futures.rs";
const PROGRESS: &str = ".asynclings-progress.toml";

/// Issue 7, items 5, 11 and 13: on a dumb 80×24 terminal, warnings fold into a count and the
/// failing check's message and the path come last; a skip made in another terminal survives
/// watch's next write; a save that moves the file away for a moment is not "missing"; the
/// header counts a pass that the screen reports.
#[test]
fn watch_on_a_small_dumb_terminal_keeps_what_matters_last_and_others_changes() {
    let course = CourseCopy::new();
    course.write(PROGRESS, "welcomed = true\n");
    let mut command = course.command(&["watch"]);
    command.env("TERM", "dumb");
    let mut pty = Pty::spawn_sized(command, 24, 80);
    let minute = Duration::from_secs(60);
    pty.wait_for("n next · h hint", 0, minute);
    let screen = pty.screen();
    assert!(screen.contains("2 compiler warnings hidden"), "{screen}");
    assert!(!screen.contains("unused variable"), "{screen}");
    let tail = &screen[screen.rfind("test result").unwrap()..];
    assert!(tail.contains("first failing check"), "{screen}");
    assert!(
        tail.contains("▶ exercises/01_basics/lazy_futures.rs"),
        "{tail}"
    );
    assert!(
        !pty.raw().contains('\x1b'),
        "TERM=dumb gets no escape codes:\n{:?}",
        pty.raw()
    );
    let long: Vec<&str> = tail
        .lines()
        .skip(1)
        .filter(|l| l.chars().count() > 80)
        .collect();
    assert!(long.is_empty(), "{long:?}");

    let pressed = pty.mark();
    pty.type_keys("w");
    pty.wait_for("unused variable", pressed, minute);

    let skipped = course.run(&["skip"]);
    assert!(skipped.status.success(), "{}", text(&skipped));
    let pressed = pty.mark();
    pty.type_keys("h");
    pty.wait_for("Hint 1/", pressed, minute);
    let progress = course.read(PROGRESS);
    assert!(
        progress.contains("skipped = [\"lazy_futures\"]"),
        "the skip was lost:\n{progress}"
    );
    assert!(progress.contains("lazy_futures = 1"), "{progress}");

    let saved = pty.mark();
    let solution = course.read("solutions/01_basics/lazy_futures.rs");
    std::fs::remove_file(course.file(LAZY)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    course.write(LAZY, &solution);
    pty.wait_for("lazy_futures passes every check", saved, minute);
    let screen = pty.screen();
    let after = &screen[screen.rfind("Hint 1/").unwrap()..];
    assert!(!after.contains("missing"), "{after}");
    let verdict = after.rfind("passes every check").unwrap();
    let header = after[..verdict].rfind("asynclings  ").unwrap();
    let total = course
        .read("info.toml")
        .lines()
        .filter(|line| *line == "[[exercises]]")
        .count();
    assert!(
        after[header..verdict].contains(&format!("1/{total}")),
        "{after}"
    );
    pty.type_keys("q");
    assert!(pty.wait_for_exit(Duration::from_secs(10)));
}

/// Issue 7, item 6: a progress file that cannot be written never hides the hint; the learner
/// is warned, the command succeeds, and no temporary file is left behind.
#[test]
fn an_unwritable_progress_file_still_gives_the_hint_and_leaves_no_temporary_file() {
    let course = CourseCopy::new();
    // A folder where the file should be: no write can replace it, even as root.
    std::fs::create_dir_all(course.file(".asynclings-progress.toml/inside")).unwrap();
    let output = course.run(&["hint"]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("Hint 1/"), "{said}");
    assert_eq!(said.matches("cannot be saved").count(), 1, "{said}");
    let left: Vec<String> = std::fs::read_dir(course.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".asynclings-progress"))
        .collect();
    assert_eq!(left, [".asynclings-progress.toml"], "{left:?}");
}
