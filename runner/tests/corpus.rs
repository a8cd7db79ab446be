//! The corpus runner (`runner dev corpus`): every mismatch names its exercise and entry.

use std::path::{Path, PathBuf};

use runner::dev::corpus::{self, Corpus, Edit, Entry, Kind, Problem};
use runner::info::Course;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn edit(find: &str, replace: &str) -> Edit {
    Edit {
        find: find.to_owned(),
        replace: replace.to_owned(),
    }
}

fn entry(what: &str, edits: Vec<Edit>) -> Entry {
    Entry {
        what: what.to_owned(),
        edits,
    }
}

const SOURCE: &str = "fn a() {}\nfn b() {}\nfn b() {}\n#[cfg(test)]\nmod tests { fn c() {} }\n";

#[test]
fn an_edit_applies_when_its_text_occurs_once_before_the_checks() {
    let edited = corpus::apply(SOURCE, &[edit("fn a() {}", "fn a() { todo!() }")]).unwrap();
    assert!(edited.starts_with("fn a() { todo!() }\nfn b() {}"));
    assert!(
        edited.ends_with("mod tests { fn c() {} }\n"),
        "the checks are kept as they were"
    );
}

#[test]
fn an_edit_whose_text_is_missing_repeated_or_only_in_the_checks_does_not_apply() {
    let missing = corpus::apply(SOURCE, &[edit("fn z() {}", "")]).unwrap_err();
    assert!(missing.contains("not found"), "{missing}");
    let twice = corpus::apply(SOURCE, &[edit("fn b() {}", "")]).unwrap_err();
    assert!(twice.contains("2 times"), "{twice}");
    let in_checks = corpus::apply(SOURCE, &[edit("fn c() {}", "")]).unwrap_err();
    assert!(
        in_checks.contains("not found before the checks"),
        "{in_checks}"
    );
}

#[test]
fn every_corpus_file_parses_and_names_an_exercise() {
    let root = root();
    let course = Course::load(&root).unwrap();
    for exercise in &course.exercises {
        let path = corpus::corpus_file(&root, exercise);
        if path.is_file() {
            let corpus = corpus::load(&path).unwrap();
            for entry in corpus.wrong.iter().chain(&corpus.right) {
                assert!(
                    !entry.what.trim().is_empty(),
                    "{}: an entry without `what`",
                    exercise.name
                );
            }
        }
    }
}

/// Builds real entries against `lazy_futures` in a scratch package of its own.
#[test]
fn mismatches_name_the_exercise_and_the_entry() {
    let root = root();
    let course = Course::load(&root).unwrap();
    let (_, exercise) = course.find("lazy_futures").unwrap();
    let corpus = Corpus {
        wrong: vec![
            // Only a comment changes: the checks pass, so this "wrong" entry is a mismatch.
            entry(
                "a wrong entry that is in fact right",
                vec![edit("// Each step depends", "// Every step depends")],
            ),
            entry(
                "an edit that does not apply",
                vec![edit("no such code", "")],
            ),
            entry(
                "an entry that does not compile",
                vec![edit("charge(shop, cents).await;", "charge(shop).await;")],
            ),
            entry(
                "a wrong entry that is rejected",
                vec![edit("charge(shop, cents).await;", "")],
            ),
        ],
        right: vec![entry(
            "a right entry that fails",
            vec![edit("send_receipt(shop, item).await;", "")],
        )],
    };
    let outcome = corpus::check(&root, &[(exercise, &corpus)], "runner-test").unwrap();
    assert_eq!(outcome.entries, 5);
    let found: Vec<(Kind, &str, &Problem)> = outcome
        .mismatches
        .iter()
        .map(|m| {
            assert_eq!(m.exercise, "lazy_futures");
            (m.kind, m.what.as_str(), &m.problem)
        })
        .collect();
    assert_eq!(found.len(), 4, "{:#?}", outcome.mismatches);
    let found_text = format!("{:#?}", outcome.mismatches);
    assert!(
        found.contains(&(
            Kind::Wrong,
            "a wrong entry that is in fact right",
            &Problem::WrongPassed
        )),
        "{found_text}"
    );
    assert!(found.iter().any(|(k, w, p)| *k == Kind::Wrong
        && *w == "an edit that does not apply"
        && matches!(p, Problem::EditDoesNotApply(_))));
    assert!(found.iter().any(|(k, w, p)| *k == Kind::Wrong
        && *w == "an entry that does not compile"
        && matches!(p, Problem::DoesNotCompile(e) if e.contains("E0061"))));
    assert!(found.iter().any(|(k, w, p)| *k == Kind::Right
        && *w == "a right entry that fails"
        && matches!(p, Problem::RightFailed(_))));
}
