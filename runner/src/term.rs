//! Terminal output: raw mode that is always undone, line endings that survive it, a
//! progress bar, and long output cut to a readable size.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use colored::Colorize;

/// In raw mode the terminal no longer turns `\n` into `\r\n`; `print` does it instead.
static RAW: AtomicBool = AtomicBool::new(false);

/// The output a learner sees before a note says the rest was cut.
pub const MAX_LINES: usize = 160;

/// Raw mode (single key presses, no echo) for as long as the guard lives. Dropping it, a
/// panic anywhere, or Ctrl-C (which arrives as a key in raw mode) gives the terminal back.
pub struct RawMode(());

impl RawMode {
    pub fn enable() -> std::io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        RAW.store(true, Ordering::SeqCst);
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    if RAW.swap(false, Ordering::SeqCst) {
        let _ = crossterm::terminal::disable_raw_mode();
        if !dumb() {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
        }
    }
}

/// A panic (on any thread) restores the terminal before the message is printed.
pub fn restore_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        default(info);
    }));
}

/// Whether escape codes may be written: a terminal that is not `TERM=dumb`.
pub fn ansi() -> bool {
    std::io::stdout().is_terminal() && !dumb()
}

/// `TERM=dumb`: no colours, no cursor movement, no escape codes at all.
pub fn dumb() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// Turns colours off where the terminal cannot show them (`colored` already honours
/// `NO_COLOR` and `CLICOLOR`, not `TERM=dumb`).
pub fn honour_dumb_terminal() {
    if dumb() {
        colored::control::set_override(false);
    }
}

pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Prints `text` as is, with line endings fixed for raw mode.
pub fn print(text: &str) {
    let out = std::io::stdout().lock();
    let _ = if RAW.load(Ordering::SeqCst) {
        let mut out = CrLf(out);
        out.write_all(text.replace("\r\n", "\n").as_bytes())
            .and_then(|()| out.flush())
    } else {
        let mut out = out;
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
}

/// Raw mode does not turn "\n" into "\r\n": this writer does.
pub struct CrLf<W: Write>(pub W);

impl<W: Write> Write for CrLf<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for (index, line) in buf.split(|b| *b == b'\n').enumerate() {
            if index > 0 {
                self.0.write_all(b"\r\n")?;
            }
            self.0.write_all(line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

pub fn println(text: &str) {
    print(text);
    print("\n");
}

/// A one-line status that the next status or output overwrites (terminals only).
pub fn status(text: &str) {
    if ansi() {
        let width = crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w));
        let line: String = text.chars().take(width.saturating_sub(1)).collect();
        print(&format!("\r\x1b[2K{}", line.dimmed()));
    }
}

pub fn clear_status() {
    if ansi() {
        print("\r\x1b[2K");
    }
}

pub fn clear_screen() {
    if ansi() {
        print("\x1b[2J\x1b[3J\x1b[H");
    } else {
        print("\n");
    }
}

/// The width to wrap prose at: the terminal's, at most 100 columns (80 when unknown).
pub fn width() -> usize {
    crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w).clamp(40, 100))
}

/// Prose wrapped at word boundaries to the terminal's width.
pub fn wrap(text: &str) -> String {
    textwrap::fill(text, width() - 1)
}

/// Each line wrapped at word boundaries, its continuation indented like a list item.
pub fn wrap_indented(text: &str) -> String {
    text.lines()
        .map(|line| {
            let indent = " ".repeat(line.len() - line.trim_start().len() + 2);
            let options = textwrap::Options::new(width() - 1).subsequent_indent(&indent);
            format!("{}\n", textwrap::fill(line, &options))
        })
        .collect()
}

/// `[#####---------------] 5/21`
pub fn progress_bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(0).min(WIDTH);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled).green(),
        "-".repeat(WIDTH - filled).dimmed()
    )
}

/// Keeps the head and the tail of long output (compiler errors come first, the failed
/// checks' summary last) and says how much was cut and where to see all of it.
pub fn cut_long(text: &str, max_lines: usize, full_command: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= max_lines {
        return text.to_owned();
    }
    let head = max_lines * 2 / 3;
    let tail = max_lines - head;
    let cut = lines.len() - head - tail;
    let note = format!(
        "… {cut} lines cut here to keep the screen readable; `{full_command}` shows everything …"
    );
    let mut out = lines[..head].join("\n");
    out.push_str(&format!("\n\n{}\n\n", note.yellow()));
    out.push_str(&lines[lines.len() - tail..].join("\n"));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_untouched() {
        assert_eq!(cut_long("a\nb\n", 10, "cmd"), "a\nb\n");
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_says_so() {
        colored::control::set_override(false);
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let cut = cut_long(&text, 30, "cargo test");
        assert!(cut.starts_with("line 0\n"));
        assert!(cut.ends_with("line 999\n"));
        assert!(cut.contains("970 lines cut"), "{cut}");
        assert!(cut.contains("`cargo test` shows everything"));
        assert!(cut.lines().count() < 40);
    }

    #[test]
    fn the_bar_fills_with_progress() {
        colored::control::set_override(false);
        assert_eq!(progress_bar(0, 3), format!("[{}] 0/3", "-".repeat(30)));
        assert_eq!(progress_bar(3, 3), format!("[{}] 3/3", "#".repeat(30)));
        assert_eq!(progress_bar(0, 0), format!("[{}] 0/0", "-".repeat(30)));
    }
}
