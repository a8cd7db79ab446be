//! The interview-preparation commands, driven through the real `runner` binary on a copy of
//! the course: `questions`, `questions show`, `tasks` and `quiz`.

mod support;

use std::time::Duration;

use support::{CourseCopy, Pty, text};

const PROGRESS: &str = ".asynclings-progress.toml";

#[test]
fn questions_list_by_level_and_show_one_with_its_answer() {
    let course = CourseCopy::new();
    let advanced = course.run(&["questions", "--level", "advanced"]);
    assert!(advanced.status.success(), "{}", text(&advanced));
    let listed = text(&advanced);
    assert!(listed.contains("Advanced ("), "{listed}");
    assert!(
        !listed.contains("Basic (") && !listed.contains("futures-are-lazy"),
        "{listed}"
    );

    let everything = text(&course.run(&["questions"]));
    for level in ["Basic (", "Intermediate (", "Advanced ("] {
        assert!(everything.contains(level), "{everything}");
    }

    let shown = course.run(&["questions", "show", "futures-are-lazy"]);
    assert!(shown.status.success(), "{}", text(&shown));
    let said = text(&shown);
    assert!(
        said.contains("Answer") && said.contains("lazy_futures"),
        "{said}"
    );
}

#[test]
fn an_unknown_question_or_level_gets_the_valid_choices() {
    let course = CourseCopy::new();
    let unknown = course.run(&["questions", "show", "futures-are-lazzy"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown).contains("Did you mean `futures-are-lazy`"),
        "{}",
        text(&unknown)
    );

    let level = course.run(&["quiz", "--level", "expert"]);
    assert!(!level.status.success());
    assert!(
        text(&level).contains("basic, intermediate, advanced"),
        "{}",
        text(&level)
    );
}

#[test]
fn tasks_list_the_practical_projects_with_what_they_practise() {
    let course = CourseCopy::new();
    let output = course.run(&["tasks"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("Practises") && said.contains("Steps"),
        "{said}"
    );
}

#[test]
fn a_malformed_question_file_shows_the_line_under_a_caret() {
    let course = CourseCopy::new();
    let bank = course.read("questions.toml");
    let line = bank[..bank.find("level = \"basic\"").unwrap()]
        .matches('\n')
        .count()
        + 1;
    course.write(
        "questions.toml",
        &bank.replacen("level = \"basic\"", "level = \"easy\"", 1),
    );
    let output = course.run(&["questions"]);
    assert_eq!(output.status.code(), Some(1));
    let said = text(&output);
    let gutter = " ".repeat(line.to_string().len() + 1);
    let caret = format!(
        "at line {line}, column 9\n{gutter}|\n{line} | level = \"easy\"\n{gutter}|         ^^^^^^\n"
    );
    assert!(said.contains(&caret), "{said}");
    assert!(
        said.contains("\"easy\" is not a level; levels are: basic"),
        "{said}"
    );
}

#[test]
fn quiz_without_a_terminal_prints_questions_and_answers_in_order() {
    let course = CourseCopy::new();
    let output = course.run(&["quiz", "--level", "basic"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    let first = said
        .find("async-vs-threads")
        .expect("the first basic question");
    let second = said
        .find("concurrency-vs-parallelism")
        .expect("the second basic question");
    assert!(first < second, "{said}");
    assert!(said.contains("Answer"), "{said}");
    assert!(
        !course.file(PROGRESS).exists() || !course.read(PROGRESS).contains("[quiz"),
        "printing the bank is not answering it"
    );
}

#[test]
fn quiz_in_a_terminal_remembers_what_you_did_not_know() {
    let course = CourseCopy::new();
    let mut pty = Pty::spawn(course.command(&["quiz", "--level", "basic"]));
    let wait = Duration::from_secs(30);
    pty.wait_for("Question 1 of", 0, wait);
    pty.wait_for("press a key to see it", 0, wait);
    let pressed = pty.mark();
    pty.type_keys(" ");
    pty.wait_for("Did you know it?", pressed, wait);
    let pressed = pty.mark();
    pty.type_keys("n");
    pty.wait_for("Question 2 of", pressed, wait);
    pty.type_keys("q");
    assert!(
        pty.wait_for_exit(Duration::from_secs(10)),
        "q did not quit cleanly"
    );
    assert!(
        pty.terminal_is_cooked(),
        "the terminal was left in raw mode"
    );
    assert!(pty.screen().contains("You knew 0 of 1"), "{}", pty.screen());

    let progress = course.read(PROGRESS);
    assert!(
        progress.contains("[quiz") && progress.contains("unknown = 1"),
        "{progress}"
    );
    // The course's own progress still loads beside the quiz's.
    let list = course.run(&["list"]);
    assert!(
        list.status.success() && !text(&list).contains("damaged"),
        "{}",
        text(&list)
    );
}

/// Issue 7, item 13: every document questions.toml names (`COURSE.md`, `CHEATSHEET.md`…) is
/// in the repository, so a learner can open it.
#[test]
fn questions_cite_only_documents_in_the_repository() {
    let root = support::workspace();
    let text = std::fs::read_to_string(root.join("questions.toml")).unwrap();
    let missing: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || "._-/".contains(c)))
        .filter(|word| word.ends_with(".md") && word.len() > 3)
        .filter(|doc| !root.join(doc).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "questions.toml cites documents the repository lacks: {missing:?}"
    );
}
