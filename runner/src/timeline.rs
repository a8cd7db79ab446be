//! Timelines in a check's output, redrawn for the terminal.
//!
//! A failing concurrency check appends a picture of what ran when: an 80-column text
//! drawing (`virtual ms ...` down to `in flight`/`expected`) and one `@@timeline v1` data
//! line. Here both are replaced by a drawing of the same events that fits the terminal's
//! width (80 without a terminal), in colour unless `NO_COLOR` is set, and in plain ASCII
//! when `TERM=dumb`.

use std::io::IsTerminal;

use timeline::draw::{self, DATA_PREFIX, Style};

/// `output` with every timeline in it redrawn for this terminal.
pub fn redraw(output: &str) -> String {
    if !output.contains(DATA_PREFIX) {
        return output.to_owned();
    }
    let style = choose_style(
        std::env::var("TERM").ok().as_deref(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        colored::control::SHOULD_COLORIZE.should_colorize(),
    );
    redraw_with(output, width(), style)
}

/// The terminal's width, 80 without a terminal.
fn width() -> usize {
    if std::io::stdout().is_terminal() {
        crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w))
    } else {
        80
    }
}

/// ASCII for a dumb terminal; no colour when `NO_COLOR` is set or colour is off.
pub fn choose_style(term: Option<&str>, no_color: bool, colour_on: bool) -> Style {
    match term {
        Some("dumb") => Style::Ascii,
        _ if no_color || !colour_on => Style::Unicode,
        _ => Style::Colour,
    }
}

/// `output` with each text drawing and its data line replaced by a drawing `width` wide.
pub fn redraw_with(output: &str, width: usize, style: Style) -> String {
    let mut out: Vec<String> = Vec::new();
    // Where the text drawing the next data line belongs to starts, if it has been seen.
    let mut drawing_start = None;
    for line in output.lines() {
        if line.starts_with("virtual ms") {
            drawing_start = Some(out.len());
        }
        match draw::decode(line) {
            Some((events, expected)) => {
                out.truncate(drawing_start.take().unwrap_or(out.len()));
                let picture = draw::draw(&events, &expected, width, style);
                out.extend(picture.lines().map(str::to_owned));
            }
            None => out.push(line.to_owned()),
        }
    }
    let mut text = out.join("\n");
    if output.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use timeline::{Event, Picture};

    use super::*;

    fn output(width_hint: &str) -> String {
        let events = (0..3)
            .map(|i| Event {
                row: format!("/page/{i}"),
                start: Duration::from_millis(i * 100),
                end: Some(Duration::from_millis((i + 1) * 100)),
            })
            .collect();
        let picture = Picture {
            events,
            expected: "up to 3 at once".into(),
        };
        format!(
            "running 1 test\nthread 'x' panicked at src/main.rs:1:1:\n{width_hint}\n{picture}\
             note: run with `RUST_BACKTRACE=1`\n\ntest result: FAILED\n"
        )
    }

    #[test]
    fn the_drawing_and_its_data_line_become_one_drawing() {
        let text = output("only one request at a time");
        for width in [40, 80, 123, 200] {
            let redrawn = redraw_with(&text, width, Style::Ascii);
            assert!(!redrawn.contains(DATA_PREFIX), "{redrawn}");
            assert_eq!(redrawn.matches("virtual ms").count(), 1, "{redrawn}");
            assert!(redrawn.contains("only one request at a time\nvirtual ms"));
            assert!(redrawn.contains("expected    up to 3 at once\nnote: run with"));
            assert!(
                redrawn.lines().all(|l| l.chars().count() <= width),
                "{redrawn}"
            );
            assert!(
                redrawn.contains("##") && !redrawn.contains('█'),
                "{redrawn}"
            );
        }
    }

    #[test]
    fn output_without_a_timeline_is_untouched() {
        let text = "test a ... FAILED\nassertion failed\n";
        assert_eq!(redraw_with(text, 80, Style::Colour), text);
        assert_eq!(redraw(text), text);
    }

    #[test]
    fn two_failures_keep_their_own_timelines() {
        let text = format!("{}{}", output("first"), output("second"));
        let redrawn = redraw_with(&text, 60, Style::Unicode);
        assert_eq!(redrawn.matches("virtual ms").count(), 2, "{redrawn}");
        assert!(redrawn.contains("first\nvirtual ms") && redrawn.contains("second\nvirtual ms"));
    }

    #[test]
    fn the_style_follows_term_and_no_color() {
        assert_eq!(choose_style(Some("dumb"), false, true), Style::Ascii);
        assert_eq!(choose_style(Some("dumb"), true, false), Style::Ascii);
        assert_eq!(
            choose_style(Some("xterm-256color"), true, true),
            Style::Unicode
        );
        assert_eq!(choose_style(None, false, false), Style::Unicode);
        assert_eq!(choose_style(Some("xterm"), false, true), Style::Colour);
    }

    #[test]
    fn colour_is_only_added_in_colour_style() {
        let text = output("x");
        assert!(!redraw_with(&text, 80, Style::Unicode).contains('\x1b'));
        assert!(redraw_with(&text, 80, Style::Colour).contains("\x1b["));
    }
}
