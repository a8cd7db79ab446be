//! The course's integrity, checked by `cargo test` at the root: `runner dev check` on a copy
//! of the course *as shipped* (the stubs of `runner/originals/`), so a learner's solved or
//! half-written files in `exercises/` never make it fail, and nothing tracked is touched.
//! The corpus of wrong and right solutions is left to `.ci/run`, which runs the whole
//! `dev check`: it takes minutes, not seconds.

mod support;

use support::{CourseCopy, copy_as_shipped, text};

const JOIN: &str = "exercises/01_basics/join_concurrently.rs";

#[test]
fn the_course_as_shipped_passes_dev_check() {
    let course = CourseCopy::new();
    let output = course.run(&["dev", "check", "--no-corpus"]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("The course is sound"), "{said}");
}

#[test]
fn a_learners_work_never_reaches_the_copies_the_tests_use() {
    let learner = tempfile::tempdir().unwrap();
    copy_as_shipped(&support::workspace(), learner.path());
    let solved = std::fs::read_to_string(
        learner
            .path()
            .join("solutions/01_basics/join_concurrently.rs"),
    )
    .unwrap();
    std::fs::write(learner.path().join(JOIN), solved).unwrap();
    let half = learner.path().join("exercises/01_basics/lazy_futures.rs");
    std::fs::write(&half, "fn half_written( {\n").unwrap();
    std::fs::write(
        learner.path().join(".asynclings-progress.toml"),
        "done = [\"lazy_futures\"]\n",
    )
    .unwrap();

    let tested = tempfile::tempdir().unwrap();
    copy_as_shipped(learner.path(), tested.path());
    for file in [JOIN, "exercises/01_basics/lazy_futures.rs"] {
        let original = file.replace("exercises/", "runner/originals/");
        assert_eq!(
            std::fs::read_to_string(tested.path().join(file)).unwrap(),
            std::fs::read_to_string(learner.path().join(original)).unwrap(),
            "{file} is the stub as shipped"
        );
    }
    assert!(!tested.path().join(".asynclings-progress.toml").exists());
}

#[test]
fn dev_check_names_each_offending_exercise_and_fails() {
    let course = CourseCopy::new();
    let stub = course.read(JOIN);
    course.write(JOIN, &stub.replace("## Your job", "## Job"));
    course.write(
        "runner/originals/01_basics/join_concurrently.rs",
        &stub.replace("## Your job", "## Job"),
    );
    let manifest = course.read("exercises/Cargo.toml");
    course.write(
        "exercises/Cargo.toml",
        &manifest.replace(
            "name = \"lazy_futures\"\npath = \"01_basics/lazy_futures.rs\"\n\n",
            "",
        ),
    );
    let output = course.run(&["dev", "check", "join_concurrently", "--no-corpus"]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("✗ join_concurrently\n  - the header lacks a `## Your job` section"),
        "{said}"
    );
    assert!(
        said.contains("✗ lazy_futures\n  - exercises/Cargo.toml lacks the [[bin]] lazy_futures"),
        "{said}"
    );

    let synced = course.run(&["dev", "sync"]);
    assert!(synced.status.success(), "{}", text(&synced));
    assert_eq!(
        course.read("exercises/Cargo.toml"),
        manifest,
        "sync puts the block back"
    );
}

#[test]
fn dev_new_scaffolds_an_exercise_that_only_lacks_what_the_author_writes() {
    let course = CourseCopy::new();
    let output = course.run(&["dev", "new", "ping_pong", "--chapter", "basics"]);
    assert!(output.status.success(), "{}", text(&output));
    for file in [
        "exercises/01_basics/ping_pong.rs",
        "solutions/01_basics/ping_pong.rs",
        "runner/originals/01_basics/ping_pong.rs",
        "corpus/01_basics/ping_pong.toml",
    ] {
        assert!(course.file(file).is_file(), "{file}");
    }
    assert!(course.read("info.toml").contains("name = \"ping_pong\""));
    assert!(
        course
            .read("solutions/Cargo.toml")
            .contains("name = \"ping_pong_solution\"")
    );
    let checked = course.run(&["dev", "check", "ping_pong"]);
    let said = text(&checked);
    assert_eq!(checked.status.code(), Some(1), "{said}");
    assert!(
        said.contains("✗ ping_pong\n  - a hint is still a TODO"),
        "{said}"
    );
    assert!(said.contains("at least 5 and 2 are needed"), "{said}");
    assert_eq!(
        said.matches("  - ").count(),
        2,
        "only the hints and the corpus are left:\n{said}"
    );
}

#[test]
fn dev_sync_refuses_to_make_a_learners_files_the_pristine_stubs() {
    let course = CourseCopy::new();
    course.write(".asynclings-progress.toml", "done = []\n");
    course.write(JOIN, "// my half-written attempt\n");
    let output = course.run(&["dev", "sync"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("dev sync --force"),
        "{}",
        text(&output)
    );
    assert_ne!(
        course.read("runner/originals/01_basics/join_concurrently.rs"),
        "// my half-written attempt\n"
    );
}
