//! Drawing a timeline as text, and the data line that carries it to the runner.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Event;

/// The characters to draw with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Block characters: `██████`.
    Unicode,
    /// Plain ASCII for terminals that cannot show more (`TERM=dumb`): `######`.
    Ascii,
}

impl Style {
    fn bar(self) -> char {
        match self {
            Style::Unicode => '█',
            Style::Ascii => '#',
        }
    }

    fn mark(self) -> char {
        match self {
            Style::Unicode => '│',
            Style::Ascii => '|',
        }
    }
}

/// The line prefix that marks the data line in a check's output.
pub const DATA_PREFIX: &str = "@@timeline v1 ";

const LABEL_MAX: usize = 20;
const AXIS_LABEL: &str = "virtual ms";

pub(crate) fn peak_in_flight(events: &[Event]) -> usize {
    // +1 at each start, -1 at each end; ends sort before starts at the same instant, so a
    // request that starts as another ends does not count as overlapping it.
    let mut edges: Vec<(Duration, i64)> = Vec::new();
    for event in events.iter().filter(|e| e.end != Some(e.start)) {
        edges.push((event.start, 1));
        if let Some(end) = event.end {
            edges.push((end, -1));
        }
    }
    edges.sort();
    let (mut now, mut peak) = (0i64, 0i64);
    for (_, step) in edges {
        now += step;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or(0)
}

fn in_flight_at(events: &[Event], at: Duration) -> usize {
    events
        .iter()
        .filter(|e| e.end != Some(e.start))
        .filter(|e| e.start <= at && e.end.is_none_or(|end| at < end))
        .count()
}

/// Rows in order of first appearance, each with its events.
fn rows(events: &[Event]) -> Vec<(&str, Vec<&Event>)> {
    let mut rows: Vec<(&str, Vec<&Event>)> = Vec::new();
    for event in events {
        match rows.iter_mut().find(|(name, _)| *name == event.row) {
            Some((_, list)) => list.push(event),
            None => rows.push((&event.row, vec![event])),
        }
    }
    rows
}

fn ms(duration: Duration) -> u128 {
    duration.as_millis()
}

fn truncate(label: &str, width: usize) -> String {
    if label.chars().count() <= width {
        format!("{label:width$}")
    } else {
        let kept: String = label.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// The picture, `width` columns wide at most.
pub fn draw(events: &[Event], expected: &str, width: usize, style: Style) -> String {
    let rows = rows(events);
    let label_width = rows
        .iter()
        .map(|(name, _)| name.chars().count())
        .chain([AXIS_LABEL.len(), "in flight".len()])
        .max()
        .unwrap_or(0)
        .min(LABEL_MAX)
        + 2;
    let chart = width.saturating_sub(label_width).max(10);
    let end = events
        .iter()
        .map(|e| ms(e.end.unwrap_or(e.start)).max(ms(e.start)))
        .max()
        .unwrap_or(0)
        .max(1);
    // Column of a time: the last column is the end.
    let column = |t: Duration| -> usize {
        let c = ms(t) * (chart as u128 - 1) / end;
        usize::try_from(c).unwrap_or(chart - 1)
    };
    let tick_every = 10usize;
    let mut out = String::new();

    let mut axis = vec![' '; chart];
    for col in (0..chart).step_by(tick_every) {
        let label = (col as u128 * end / (chart as u128 - 1)).to_string();
        if col + label.len() <= chart {
            for (i, ch) in label.chars().enumerate() {
                axis[col + i] = ch;
            }
        }
    }
    let _ = writeln!(
        out,
        "{}{}",
        truncate(AXIS_LABEL, label_width),
        axis.iter().collect::<String>().trim_end()
    );

    for (name, list) in &rows {
        let mut line = vec![' '; chart];
        for event in list {
            let from = column(event.start);
            match event.end {
                Some(end) if end == event.start => line[from] = style.mark(),
                Some(end) => {
                    let to = column(end).max(from + 1).min(chart);
                    line[from..to].fill(style.bar());
                }
                None => line[from..].fill(style.bar()),
            }
        }
        let _ = writeln!(
            out,
            "{}{}",
            truncate(name, label_width.saturating_sub(2)) + "  ",
            line.iter().collect::<String>().trim_end()
        );
    }

    let mut flight = vec![' '; chart];
    for col in (0..chart).step_by(tick_every) {
        let at = Duration::from_millis(
            u64::try_from(col as u128 * end / (chart as u128 - 1)).unwrap_or(0),
        );
        let count = in_flight_at(events, at).to_string();
        if col + count.len() <= chart {
            for (i, ch) in count.chars().enumerate() {
                flight[col + i] = ch;
            }
        }
    }
    let _ = writeln!(
        out,
        "{}{}",
        truncate("in flight", label_width),
        flight.iter().collect::<String>().trim_end()
    );
    if !expected.is_empty() {
        let _ = writeln!(out, "{}{}", truncate("expected", label_width), expected);
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace(';', "%3B")
        .replace('\n', "%0A")
}

fn unescape(text: &str) -> String {
    text.replace("%0A", "\n")
        .replace("%3B", ";")
        .replace("%25", "%")
}

/// One line the runner finds in a check's output to redraw the picture.
pub fn encode(events: &[Event], expected: &str) -> String {
    let mut line = format!("{DATA_PREFIX}{}", escape(expected));
    for event in events {
        let end = event
            .end
            .map_or_else(|| "-".to_owned(), |e| e.as_micros().to_string());
        let _ = write!(
            line,
            ";{},{},{}",
            event.start.as_micros(),
            end,
            escape(&event.row)
        );
    }
    line.push('\n');
    line
}

/// Reads a line made by [`encode`]: the events and what was expected.
pub fn decode(line: &str) -> Option<(Vec<Event>, String)> {
    let body = line.trim_end().strip_prefix(DATA_PREFIX)?;
    let mut parts = body.split(';');
    let expected = unescape(parts.next()?);
    let mut events = Vec::new();
    for part in parts {
        let mut fields = part.splitn(3, ',');
        let start = Duration::from_micros(fields.next()?.parse().ok()?);
        let end = match fields.next()? {
            "-" => None,
            micros => Some(Duration::from_micros(micros.parse().ok()?)),
        };
        let row = unescape(fields.next()?);
        events.push(Event { row, start, end });
    }
    Some((events, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(row: &str, start: u64, end: u64) -> Event {
        Event {
            row: row.to_owned(),
            start: Duration::from_millis(start),
            end: Some(Duration::from_millis(end)),
        }
    }

    #[test]
    fn back_to_back_spans_never_overlap() {
        let events = [span("a", 0, 100), span("b", 100, 200), span("c", 200, 300)];
        assert_eq!(peak_in_flight(&events), 1);
    }

    #[test]
    fn overlapping_spans_count_together() {
        let events = [span("a", 0, 100), span("b", 0, 100), span("c", 50, 300)];
        assert_eq!(peak_in_flight(&events), 3);
    }

    #[test]
    fn a_sequential_run_draws_a_staircase() {
        let events = [span("/page/0", 0, 100), span("/page/1", 100, 200)];
        let picture = draw(&events, "up to 2 at once", 60, Style::Ascii);
        let lines: Vec<&str> = picture.lines().collect();
        assert!(lines[0].starts_with("virtual ms"));
        let first = lines[1].find('#').expect("a bar for /page/0");
        let second = lines[2].find('#').expect("a bar for /page/1");
        assert!(second > first, "{picture}");
        assert!(
            picture.lines().all(|l| l.chars().count() <= 60),
            "{picture}"
        );
        assert!(lines.last().is_some_and(|l| l.contains("up to 2 at once")));
    }

    #[test]
    fn the_data_line_round_trips() {
        let mut events = vec![span("a;b%c\nd", 0, 5), span("mark", 7, 7)];
        events.push(Event {
            row: "open".into(),
            start: Duration::from_millis(3),
            end: None,
        });
        let line = encode(&events, "50%; done");
        assert_eq!(decode(&line), Some((events, "50%; done".to_owned())));
    }
}
