//! Reading what libtest (the standard test harness) prints: its list of tests, a line per
//! finished test and the summary that alone says whether every test passed.

/// Every test of a test binary, from `--list --format terse` (`name: test` per line).
pub fn parse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// `test tests::name ... ok` → `tests::name`.
pub fn finished_test(line: &str) -> Option<String> {
    let plain = super::strip_ansi(line);
    let rest = plain.strip_prefix("test ")?;
    let (name, _) = rest.split_once(" ... ")?;
    Some(name.to_owned())
}

/// `test tests::name ... FAILED` → `tests::name`.
pub fn failed_test(line: &str) -> Option<String> {
    let plain = super::strip_ansi(line);
    plain
        .trim_end()
        .ends_with(" ... FAILED")
        .then(|| finished_test(&plain))
        .flatten()
}

/// libtest's last word: `test result: ok. 5 passed; 0 failed; 0 ignored; …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub ok: bool,
    pub passed: usize,
    pub failed: usize,
}

impl Summary {
    pub fn parse(line: &str) -> Option<Summary> {
        let plain = super::strip_ansi(line);
        let rest = plain.trim().strip_prefix("test result: ")?;
        let (status, counts) = rest.split_once(". ")?;
        let count = |what: &str| {
            counts.split("; ").find_map(|part| {
                let (n, word) = part.split_once(' ')?;
                (word == what).then(|| n.parse().ok()).flatten()
            })
        };
        Some(Summary {
            ok: status == "ok",
            passed: count("passed")?,
            failed: count("failed")?,
        })
    }

    /// Every one of the `listed` tests ran and passed.
    pub fn all_passed(&self, listed: usize) -> bool {
        self.ok && self.failed == 0 && self.passed == listed && listed > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_tests_are_read_through_colours() {
        assert_eq!(
            finished_test("test tests::a ... \x1b[32mok\x1b[0m\n").as_deref(),
            Some("tests::a")
        );
        assert_eq!(finished_test("running 3 tests\n"), None);
        assert_eq!(
            failed_test("test tests::b ... \x1b[31mFAILED\x1b[0m\n").as_deref(),
            Some("tests::b")
        );
        assert_eq!(failed_test("test tests::a ... ok\n"), None);
        // xterm-256color's terminfo resets with `ESC ( B ESC [ m`.
        assert_eq!(
            failed_test("test tests::b ... \x1b[31mFAILED\x1b(B\x1b[m\n").as_deref(),
            Some("tests::b")
        );
    }

    #[test]
    fn the_summary_counts_what_ran() {
        let line = "test result: \x1b[32mok\x1b[0m. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        let summary = Summary::parse(line).unwrap();
        assert_eq!(
            summary,
            Summary {
                ok: true,
                passed: 5,
                failed: 0
            }
        );
        assert!(summary.all_passed(5));
        assert!(
            !summary.all_passed(6),
            "a listed test that never ran is no pass"
        );
        let failed = Summary::parse("test result: FAILED. 4 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s").unwrap();
        assert!(!failed.all_passed(5));
        assert_eq!(Summary::parse("running 5 tests"), None);
        let terminfo = "test result: \x1b[32mok\x1b(B\x1b[m. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        assert!(
            Summary::parse(terminfo).unwrap().all_passed(5),
            "a pass printed through xterm-256color's terminfo is a pass"
        );
    }

    #[test]
    fn stripping_escapes_keeps_tabs_and_line_ends() {
        assert_eq!(
            super::super::strip_ansi("a\r\n\tb \x1b[1;31mred\x1b(B\x1b[m\n"),
            "a\r\n\tb red\n"
        );
    }

    #[test]
    fn the_list_names_each_test() {
        assert_eq!(
            parse_list("tests::a: test\ntests::b: test\n\n2 tests, 0 benchmarks\n"),
            ["tests::a", "tests::b"]
        );
    }
}
