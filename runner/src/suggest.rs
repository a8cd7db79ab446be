//! "Did you mean…": the closest known names to a mistyped one.

/// The candidates closest to `name`, best first: at most three, and only those near enough
/// to be a plausible typo (or that contain `name`, so `sem` finds `semaphore_fetcher`).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let name = name.to_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let score = if lower.contains(&name) && !name.is_empty() {
                1.0
            } else {
                strsim::jaro_winkler(&name, &lower)
            };
            (score >= 0.8).then_some((score, candidate))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// " Did you mean `a` or `b`?" (with a leading space), or nothing when no name is close.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let close = closest(name, candidates);
    match close.as_slice() {
        [] => String::new(),
        [one] => format!(" Did you mean `{one}`?"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|c| format!("`{c}`")).collect();
            format!(" Did you mean {} or `{last}`?", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 4] = [
        "join_concurrently",
        "try_join_first_error",
        "semaphore_fetcher",
        "select_race",
    ];

    #[test]
    fn a_typo_finds_the_name() {
        assert_eq!(closest("join_concurently", NAMES), ["join_concurrently"]);
    }

    #[test]
    fn a_fragment_finds_the_names_containing_it() {
        assert_eq!(
            closest("join", NAMES)[..2],
            ["join_concurrently", "try_join_first_error"]
        );
    }

    #[test]
    fn nothing_close_suggests_nothing() {
        assert!(closest("zzzz", NAMES).is_empty());
        assert_eq!(did_you_mean("zzzz", NAMES), "");
    }

    #[test]
    fn the_sentence_lists_the_choices() {
        assert_eq!(
            did_you_mean("semaphor", NAMES),
            " Did you mean `semaphore_fetcher`?"
        );
    }
}
