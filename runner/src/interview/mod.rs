//! The interview preparation: the question bank (`bank`), printing it (`print`) and the
//! spaced-repetition quiz (`quiz`).

pub mod bank;
pub mod print;
pub mod quiz;

pub use bank::{Bank, Level, QUESTIONS_FILE, Question, Step, TOPICS, Task};
pub use print::Locked;

/// A small bank and helpers shared by the tests of the three modules.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::Bank;

    pub(crate) const EXERCISES: &[&str] = &[
        "lazy_futures",
        "join_concurrently",
        "select_race",
        "mutex_across_await",
    ];

    pub(crate) const GOOD: &str = r#"
[[questions]]
id = "futures-are-lazy"
level = "basic"
topic = "futures and laziness"
question = "What happens when you call an async fn and never .await the result?"
answer = """
Nothing runs: calling it only builds a future.

- It does nothing until polled.
- Dropping it means the body never starts.
"""
code = """
async fn hello() -> u32 { 1 }
"""
exercises = ["lazy_futures"]

[[questions]]
id = "join-vs-select"
level = "basic"
topic = "join vs select vs spawn"
question = "join! or select!?"
answer = "join! waits for all, select! for the first."
exercises = ["join_concurrently", "select_race"]

[[questions]]
id = "std-mutex-across-await"
level = "intermediate"
topic = "Send bounds"
question = "Why does a std MutexGuard across .await not compile in tokio::spawn?"
answer = "The guard is not Send."
code = "fn main() { let x: u32 = \"no\"; }"
compile_fail = true
exercises = ["mutex_across_await"]

[[questions]]
id = "pin-why"
level = "advanced"
topic = "Pin"
question = "Why do futures need Pin?"
answer = "Self-references."

[[tasks]]
id = "web-scraper"
title = "Web scraper"
summary = "Fetch many pages."
practises = ["semaphore", "retry with backoff"]
steps = ["Fetch one page.", { text = "Fetch many.", exercise = "join_concurrently" }]
"#;

    pub(crate) fn bank() -> Bank {
        Bank::parse(GOOD, EXERCISES).unwrap()
    }

    /// Output without the colour escapes.
    pub(crate) fn plain(bytes: Vec<u8>) -> String {
        let text = String::from_utf8(bytes).unwrap();
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
