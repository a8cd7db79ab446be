//! Output kept within a fixed size: the head and the tail, and a note of what was cut.

use std::collections::VecDeque;

/// Bytes kept at each end.
const KEEP: usize = 64 * 1024;

/// Collects lines; memory stays under `2 × KEEP` (plus one line) whatever is pushed.
#[derive(Default)]
pub struct Capped {
    head: String,
    tail: VecDeque<String>,
    tail_bytes: usize,
    cut_lines: usize,
    cut_bytes: usize,
}

impl Capped {
    pub fn push(&mut self, line: &str) {
        if self.tail.is_empty() && self.head.len() + line.len() <= KEEP {
            self.head.push_str(line);
            return;
        }
        self.tail_bytes += line.len();
        self.tail.push_back(line.to_owned());
        while self.tail_bytes > KEEP && self.tail.len() > 1 {
            if let Some(dropped) = self.tail.pop_front() {
                self.tail_bytes -= dropped.len();
                self.cut_lines += 1;
                self.cut_bytes += dropped.len();
            }
        }
    }

    /// The head, a line saying what was cut (if anything), the tail.
    pub fn into_text(self) -> String {
        let mut text = self.head;
        if self.cut_lines > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&crate::check::text::cut_note(
                self.cut_lines,
                self.cut_bytes,
            ));
        }
        text.extend(self.tail);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_keeps_head_and_tail_and_says_what_was_cut() {
        let mut capped = Capped::default();
        let line = format!("{}\n", "x".repeat(4095));
        capped.push("first\n");
        for _ in 0..10_000 {
            capped.push(&line);
        }
        capped.push("last\n");
        assert!(capped.head.len() + capped.tail_bytes <= 2 * KEEP + line.len());
        let text = capped.into_text();
        assert!(text.starts_with("first\n"), "the head is kept");
        assert!(text.ends_with("last\n"), "the tail is kept");
        assert!(text.contains("lines cut"), "the cut is announced");
    }

    #[test]
    fn short_output_is_kept_whole() {
        let mut capped = Capped::default();
        capped.push("a\n");
        capped.push("b\n");
        assert_eq!(capped.into_text(), "a\nb\n");
    }
}
