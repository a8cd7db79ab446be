//! Drawing a timeline as text, and the data line that carries it to the runner.
//!
//! ```text
//! virtual ms  0         100       200       300
//! /page/0     ██████████
//! /page/1               ██████████
//! /page/2                         ██████████
//! in flight   1                             0     peak 1
//! expected    up to 3 at once, 300 ms → 100 ms
//! ```
//!
//! Rows keep the order they first appear in. Past [`MAX_ROWS`] rows, rows that differ only
//! in a trailing number (`/page/0`, `/page/1`, ...) fold into one (`/page/* ×10`) whose bar
//! shows how many were running at once; if that is still too many, the last rows fold
//! into `… N more`. A mark (zero-length event) is a `│`, a span still open when the picture
//! was taken runs to the right edge and ends in `▸`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Event;

/// How to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Block characters: `██████`.
    Unicode,
    /// Plain ASCII for terminals that cannot show more (`TERM=dumb`): `######`.
    Ascii,
    /// Block characters in colour (ANSI): for a terminal without `NO_COLOR`.
    Colour,
}

impl Style {
    fn bar(self) -> char {
        match self {
            Style::Unicode | Style::Colour => '█',
            Style::Ascii => '#',
        }
    }

    fn mark(self) -> char {
        match self {
            Style::Unicode | Style::Colour => '│',
            Style::Ascii => '|',
        }
    }

    fn open_end(self) -> char {
        match self {
            Style::Unicode | Style::Colour => '▸',
            Style::Ascii => '>',
        }
    }

    fn ellipsis(self) -> &'static str {
        match self {
            Style::Unicode | Style::Colour => "…",
            Style::Ascii => "~",
        }
    }

    fn times(self) -> char {
        match self {
            Style::Unicode | Style::Colour => '×',
            Style::Ascii => 'x',
        }
    }

    /// Wraps `text` in an ANSI colour (only for [`Style::Colour`]).
    fn paint(self, code: &str, text: &str) -> String {
        if self == Style::Colour && !text.trim().is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The line prefix that marks the data line in a check's output.
pub const DATA_PREFIX: &str = "@@timeline v1 ";

/// More rows than this are folded.
pub const MAX_ROWS: usize = 12;
/// The narrowest and widest pictures drawn.
pub const MIN_WIDTH: usize = 40;
pub const MAX_WIDTH: usize = 200;

const LABEL_MAX: usize = 20;
const AXIS_LABEL: &str = "virtual ms";
const FLIGHT_LABEL: &str = "in flight";
const EXPECTED_LABEL: &str = "expected";

fn is_mark(event: &Event) -> bool {
    event.end == Some(event.start)
}

pub(crate) fn peak_in_flight(events: &[Event]) -> usize {
    // +1 at each start, -1 at each end; ends sort before starts at the same instant, so a
    // request that starts as another ends does not count as overlapping it.
    let mut edges: Vec<(Duration, i64)> = Vec::new();
    for event in events.iter().filter(|e| !is_mark(e)) {
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

/// The most spans open at once within `[from, to)` (or at `from` when the range is empty).
fn in_flight_during(events: &[&Event], from: Duration, to: Duration) -> usize {
    let to = to.max(from);
    let running: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| !is_mark(e))
        .filter(|e| e.start <= from || e.start < to)
        .filter(|e| e.end.is_none_or(|end| end > from))
        .collect();
    // The peak inside the window: at the window's start or at a start inside it.
    let probes = std::iter::once(from).chain(running.iter().map(|e| e.start).filter(|s| *s > from));
    probes
        .map(|at| {
            running
                .iter()
                .filter(|e| e.start <= at && e.end.is_none_or(|end| at < end))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// A row of the picture: a name and its events (several rows when folded).
struct Row<'a> {
    name: String,
    events: Vec<&'a Event>,
    /// How many recorded rows it stands for.
    count: usize,
}

/// Rows in order of first appearance, each with its events.
fn rows(events: &[Event]) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = Vec::new();
    for event in events {
        match rows.iter_mut().find(|row| row.name == event.row) {
            Some(row) => row.events.push(event),
            None => rows.push(Row {
                name: event.row.clone(),
                events: vec![event],
                count: 1,
            }),
        }
    }
    rows
}

/// `/page/12` → `/page/`; names with no trailing number have no family.
fn family(name: &str) -> Option<&str> {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    (stem.len() < name.len()).then_some(stem)
}

/// Folds rows so that at most [`MAX_ROWS`] are left.
fn fold(rows: Vec<Row<'_>>, style: Style) -> Vec<Row<'_>> {
    if rows.len() <= MAX_ROWS {
        return rows;
    }
    // First: rows that differ only in a trailing number.
    let mut folded: Vec<Row<'_>> = Vec::new();
    let mut families: Vec<Option<String>> = Vec::new();
    for row in rows {
        let key = family(&row.name).map(str::to_owned);
        match key
            .as_ref()
            .and_then(|k| families.iter().position(|f| f.as_ref() == Some(k)))
        {
            Some(index) => {
                folded[index].events.extend(row.events);
                folded[index].count += row.count;
            }
            None => {
                families.push(key);
                folded.push(row);
            }
        }
    }
    for (row, key) in folded.iter_mut().zip(&families) {
        if let (Some(stem), true) = (key, row.count > 1) {
            row.name = format!("{stem}* {}{}", style.times(), row.count);
        }
    }
    // Then: whatever is still too many goes into one last row.
    if folded.len() > MAX_ROWS {
        let rest = folded.split_off(MAX_ROWS - 1);
        let count = rest.iter().map(|r| r.count).sum::<usize>();
        folded.push(Row {
            name: format!("{} {count} more", style.ellipsis()),
            events: rest.into_iter().flat_map(|r| r.events).collect(),
            count,
        });
    }
    folded
}

fn truncate(label: &str, width: usize, style: Style) -> String {
    if label.chars().count() <= width {
        format!("{label:width$}")
    } else {
        let kept: String = label.chars().take(width.saturating_sub(1)).collect();
        let cut = if style == Style::Ascii { "~" } else { "…" };
        format!("{kept}{cut}")
    }
}

/// A round step (1, 2 or 5 × 10ⁿ ms) so that labels `label_room` columns apart fit.
fn tick_step(end_ms: u64, chart: usize) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step * factor;
            let last = end_ms.div_ceil(candidate) * candidate;
            let label_room = last.to_string().len() + 2;
            let ticks = usize::try_from(last / candidate).unwrap_or(usize::MAX);
            let plot = chart.saturating_sub(last.to_string().len());
            if ticks.saturating_mul(label_room) <= plot {
                return candidate;
            }
        }
        step *= 10;
    }
}

/// Writes `text` into `line` at `col` if it fits and does not touch what is there.
fn place(line: &mut [char], col: usize, text: &str) -> bool {
    let len = text.chars().count();
    let free = |c: usize| line.get(c).is_some_and(|ch| *ch == ' ');
    if col + len > line.len() || (col..col + len).any(|c| !free(c)) || (col > 0 && !free(col - 1)) {
        return false;
    }
    for (i, ch) in text.chars().enumerate() {
        line[col + i] = ch;
    }
    true
}

/// The picture, `width` columns wide at most (`width` is kept within 40..=200).
pub fn draw(events: &[Event], expected: &str, width: usize, style: Style) -> String {
    let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
    let rows = fold(rows(events), style);
    let label_width = rows
        .iter()
        .map(|row| row.name.chars().count())
        .chain([AXIS_LABEL.len()])
        .max()
        .unwrap_or(0)
        .min(LABEL_MAX)
        + 2;
    let chart = width - label_width;
    let end_ms = events
        .iter()
        .map(|e| e.end.unwrap_or(e.start).max(e.start).as_millis())
        .max()
        .map_or(0, |ms| u64::try_from(ms).unwrap_or(u64::MAX));
    let step = tick_step(end_ms.max(1), chart);
    let axis_end = end_ms.max(1).div_ceil(step) * step;
    // Column of a time (in µs, so sub-millisecond spans still land somewhere): the axis
    // end is the last column whose label still fits.
    let last_col = chart - axis_end.to_string().len();
    let column = |t: Duration| -> usize {
        let c = t.as_micros() * last_col as u128 / (u128::from(axis_end) * 1000);
        usize::try_from(c).unwrap_or(last_col).min(last_col)
    };
    let time_of = |col: usize| -> Duration {
        Duration::from_micros(
            u64::try_from(col as u128 * u128::from(axis_end) * 1000 / last_col as u128)
                .unwrap_or(u64::MAX),
        )
    };
    let label = |text: &str| truncate(text, label_width, style);
    let mut out = String::new();

    let mut axis = vec![' '; chart];
    let mut tick = 0;
    while tick <= axis_end {
        place(
            &mut axis,
            column(Duration::from_millis(tick)),
            &tick.to_string(),
        );
        tick += step;
    }
    let axis: String = axis.into_iter().collect();
    let _ = writeln!(
        out,
        "{}",
        style.paint("2", &format!("{}{}", label(AXIS_LABEL), axis.trim_end()))
    );

    for row in &rows {
        let _ = writeln!(
            out,
            "{}{}",
            label(&row.name),
            draw_row(row, chart, style, &column, &time_of)
        );
    }

    let all: Vec<&Event> = events.iter().collect();
    let mut flight = vec![' '; chart];
    let mut previous = None;
    for col in 0..column(Duration::from_millis(end_ms)) {
        let count = in_flight_during(&all, time_of(col), time_of(col + 1));
        if previous != Some(count) && place(&mut flight, col, &count.to_string()) {
            previous = Some(count);
        }
    }
    let flight: String = flight.into_iter().collect();
    let peak = format!("peak {}", peak_in_flight(events));
    let flight = flight.trim_end();
    let gap = if flight.chars().count() + peak.len() + 2 <= chart {
        "  "
    } else {
        "\n"
    };
    let peak_line = if gap == "\n" {
        format!("{}{peak}", label(""))
    } else {
        peak
    };
    let _ = writeln!(
        out,
        "{}{flight}{gap}{}",
        label(FLIGHT_LABEL),
        style.paint("1", &peak_line)
    );
    for (i, text) in expected.lines().enumerate() {
        let name = if i == 0 { EXPECTED_LABEL } else { "" };
        let _ = writeln!(out, "{}{}", label(name), style.paint("32", text));
    }
    out
}

/// One row's bars and marks, `chart` columns (trailing spaces trimmed).
fn draw_row(
    row: &Row<'_>,
    chart: usize,
    style: Style,
    column: &dyn Fn(Duration) -> usize,
    time_of: &dyn Fn(usize) -> Duration,
) -> String {
    let mut line = vec![' '; chart];
    for event in &row.events {
        let from = column(event.start);
        match event.end {
            Some(end) if end == event.start => {}
            Some(end) => {
                let to = column(end).max(from + 1).min(chart);
                line[from..to].fill(style.bar());
            }
            None => {
                line[from..].fill(style.bar());
                line[chart - 1] = style.open_end();
            }
        }
    }
    // A folded row says how many ran at once where more than one did.
    if row.count > 1 {
        for (col, cell) in line.iter_mut().enumerate() {
            let count = in_flight_during(&row.events, time_of(col), time_of(col + 1));
            if count > 1 && *cell == style.bar() {
                *cell = if count < 10 {
                    char::from_digit(u32::try_from(count).unwrap_or(9), 10).unwrap_or('+')
                } else {
                    '+'
                };
            }
        }
    }
    // Marks last, so that they show on top of bars.
    for event in row.events.iter().filter(|e| is_mark(e)) {
        line[column(event.start)] = style.mark();
    }
    let text: String = line.into_iter().collect();
    let text = text.trim_end();
    let mut painted = String::new();
    let mut run = String::new();
    let mut run_kind = None;
    for ch in text.chars() {
        let kind = if ch == style.mark() {
            Some("33")
        } else if ch == ' ' {
            None
        } else {
            Some("36")
        };
        if kind != run_kind && !run.is_empty() {
            painted.push_str(&run_kind.map_or(run.clone(), |code| style.paint(code, &run)));
            run.clear();
        }
        run_kind = kind;
        run.push(ch);
    }
    painted.push_str(&run_kind.map_or(run.clone(), |code| style.paint(code, &run)));
    painted
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

/// One line the runner finds in a check's output to redraw the picture. Times are in
/// whole milliseconds when they are (`100`), else in ms with a fraction (`0.25`).
pub fn encode(events: &[Event], expected: &str) -> String {
    fn time(t: Duration) -> String {
        let micros = t.as_micros();
        if micros.is_multiple_of(1000) {
            (micros / 1000).to_string()
        } else {
            format!("{}.{:03}", micros / 1000, micros % 1000)
                .trim_end_matches('0')
                .to_owned()
        }
    }
    let mut line = format!("{DATA_PREFIX}{}", escape(expected));
    for event in events {
        let end = event.end.map_or_else(|| "-".to_owned(), time);
        let _ = write!(
            line,
            ";{},{},{}",
            time(event.start),
            end,
            escape(&event.row)
        );
    }
    line.push('\n');
    line
}

/// Reads a line made by [`encode`]: the events and what was expected.
pub fn decode(line: &str) -> Option<(Vec<Event>, String)> {
    fn time(text: &str) -> Option<Duration> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if fraction.len() > 3 {
            return None;
        }
        let micros = format!("{fraction:0<3}").parse::<u64>().ok()?;
        Some(Duration::from_millis(whole.parse().ok()?) + Duration::from_micros(micros))
    }
    let body = line.trim_end().strip_prefix(DATA_PREFIX)?;
    let mut parts = body.split(';');
    let expected = unescape(parts.next()?);
    let mut events = Vec::new();
    for part in parts {
        let mut fields = part.splitn(3, ',');
        let start = time(fields.next()?)?;
        let end = match fields.next()? {
            "-" => None,
            text => Some(time(text)?),
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

    fn mark(row: &str, at: u64) -> Event {
        span(row, at, at)
    }

    fn open(row: &str, start: u64) -> Event {
        Event {
            end: None,
            ..span(row, start, start)
        }
    }

    fn sequential(n: u64) -> Vec<Event> {
        (0..n)
            .map(|i| span(&format!("/page/{i}"), i * 100, (i + 1) * 100))
            .collect()
    }

    fn widths(picture: &str) -> impl Iterator<Item = usize> + '_ {
        picture.lines().map(|l| l.chars().count())
    }

    fn line<'a>(picture: &'a str, label: &str) -> &'a str {
        picture
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in\n{picture}"))
    }

    #[test]
    fn back_to_back_spans_never_overlap() {
        assert_eq!(peak_in_flight(&sequential(3)), 1);
    }

    #[test]
    fn overlapping_spans_count_together() {
        let events = [span("a", 0, 100), span("b", 0, 100), span("c", 50, 300)];
        assert_eq!(peak_in_flight(&events), 3);
    }

    #[test]
    fn a_sequential_run_draws_a_staircase() {
        let picture = draw(&sequential(3), "up to 3 at once", 60, Style::Ascii);
        let lines: Vec<&str> = picture.lines().collect();
        assert!(lines[0].starts_with("virtual ms"));
        let starts: Vec<usize> = lines[1..4].iter().map(|l| l.find('#').unwrap()).collect();
        assert!(starts[0] < starts[1] && starts[1] < starts[2], "{picture}");
        assert!(line(&picture, "in flight").contains("peak 1"), "{picture}");
        assert!(line(&picture, "expected").contains("up to 3 at once"));
    }

    #[test]
    fn ticks_are_round_and_fit_every_width() {
        for width in MIN_WIDTH..=MAX_WIDTH {
            for end in [1, 7, 99, 100, 300, 1000, 1400, 12_345, 3_600_000] {
                let events = [
                    span("a", 0, end),
                    span("a longer row name than fits", end / 2, end),
                ];
                let picture = draw(&events, "something", width, Style::Unicode);
                assert!(
                    widths(&picture).all(|w| w <= width),
                    "width {width}:\n{picture}"
                );
                let axis = line(&picture, "virtual ms");
                let ticks: Vec<u64> = axis["virtual ms".len()..]
                    .split_whitespace()
                    .map(|t| t.parse().unwrap())
                    .collect();
                assert!(
                    ticks.len() >= 2 && ticks[0] == 0,
                    "width {width}:\n{picture}"
                );
                let step = ticks[1];
                let leading = step.to_string().trim_start_matches(|c| c != '0').len();
                let digits = step / 10u64.pow(u32::try_from(leading).unwrap());
                assert!([1, 2, 5].contains(&digits), "step {step} at width {width}");
                assert!(ticks.windows(2).all(|w| w[1] - w[0] == step), "{axis}");
                assert!(
                    *ticks.last().unwrap() + step > end,
                    "the axis stops short: {axis}"
                );
            }
        }
    }

    #[test]
    fn a_tick_sits_above_the_start_of_its_time() {
        let picture = draw(&sequential(3), "", 80, Style::Ascii);
        let axis = line(&picture, "virtual ms");
        let bar = line(&picture, "/page/1").find('#').unwrap();
        assert_eq!(axis.find("100"), Some(bar), "{picture}");
    }

    #[test]
    fn many_rows_fold_by_their_name() {
        let picture = draw(&sequential(30), "", 80, Style::Ascii);
        assert!(picture.contains("/page/* x30"), "{picture}");
        assert_eq!(picture.lines().count(), 3, "{picture}");

        let parallel: Vec<Event> = (0..20)
            .map(|i| span(&format!("task {i}"), 0, 100))
            .collect();
        let picture = draw(&parallel, "", 80, Style::Ascii);
        assert!(line(&picture, "task * x20").contains('+'), "{picture}");

        let mixed: Vec<Event> = (0..20)
            .map(|i| {
                span(
                    &["alpha", "beta", "gamma", "delta"][i % 4].repeat(i + 1),
                    0,
                    10,
                )
            })
            .collect();
        let picture = draw(&mixed, "", 80, Style::Ascii);
        assert!(picture.lines().count() <= MAX_ROWS + 2, "{picture}");
        assert!(picture.contains("~ 9 more"), "{picture}");
    }

    #[test]
    fn a_folded_row_shows_how_many_ran_at_once() {
        let events: Vec<Event> = (0..13)
            .map(|i| span(&format!("/p/{i}"), (i % 2) * 100, 200))
            .collect();
        let picture = draw(&events, "", 60, Style::Ascii);
        let row = line(&picture, "/p/* x13");
        assert!(row.contains('7') && row.contains("+"), "{picture}");
    }

    #[test]
    fn zero_length_events_and_open_spans_show() {
        let events = [
            span("work", 0, 100),
            mark("timer", 50),
            mark("at zero", 0),
            open("stuck", 20),
        ];
        let picture = draw(&events, "", 60, Style::Ascii);
        assert!(
            line(&picture, "timer").trim_end().ends_with('|'),
            "{picture}"
        );
        assert!(line(&picture, "at zero").contains('|'), "{picture}");
        assert!(line(&picture, "stuck").ends_with('>'), "{picture}");
        assert_eq!(line(&picture, "stuck").chars().count(), 60);
        // Only marks: a timeline that is all instants still draws.
        let picture = draw(&[mark("a", 0), mark("b", 0)], "", 40, Style::Ascii);
        assert!(line(&picture, "b ").contains('|'), "{picture}");
        assert!(draw(&[], "nothing ran", 40, Style::Ascii).contains("peak 0"));
    }

    #[test]
    fn in_flight_follows_the_spans() {
        let events = [span("a", 0, 100), span("b", 0, 200), span("c", 0, 100)];
        let picture = draw(&events, "", 80, Style::Ascii);
        let flight = line(&picture, "in flight");
        let counts: Vec<&str> = flight["in flight".len()..].split_whitespace().collect();
        assert_eq!(counts, ["3", "1", "peak", "3"], "{picture}");
    }

    #[test]
    fn ascii_is_plain_and_colour_is_only_in_colour() {
        let events = [span("a", 0, 100), mark("m", 50), open("o", 10)];
        let ascii = draw(&events, "expected → more", 80, Style::Ascii);
        assert!(
            ascii
                .lines()
                .filter(|l| !l.starts_with("expected"))
                .all(|l| l.is_ascii()),
            "{ascii}"
        );
        assert!(!draw(&events, "", 80, Style::Unicode).contains('\x1b'));
        let colour = draw(&events, "", 80, Style::Colour);
        assert!(colour.contains("\x1b[36m"), "{colour}");
        let stripped = colour
            .replace("\x1b[36m", "")
            .replace("\x1b[33m", "")
            .replace("\x1b[32m", "")
            .replace("\x1b[2m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[0m", "");
        assert_eq!(stripped, draw(&events, "", 80, Style::Unicode));
    }

    #[test]
    fn long_labels_are_cut_and_widths_out_of_range_are_clamped() {
        let events = [span("a very long row name that goes on and on", 0, 100)];
        let picture = draw(&events, "", 10, Style::Unicode);
        assert!(picture.contains('…'), "{picture}");
        assert!(widths(&picture).all(|w| w <= MIN_WIDTH), "{picture}");
        assert!(widths(&draw(&events, "", 1000, Style::Unicode)).all(|w| w <= MAX_WIDTH));
    }

    #[test]
    fn the_data_line_round_trips() {
        let events = vec![
            span("a;b%c\nd", 0, 5),
            mark("mark", 7),
            open("open", 3),
            Event {
                row: "µs".into(),
                start: Duration::from_micros(1250),
                end: Some(Duration::from_micros(1_000_001)),
            },
        ];
        let line = encode(&events, "50%; done");
        assert_eq!(decode(&line), Some((events, "50%; done".to_owned())));
        assert!(encode(&sequential(2), "").contains(";0,100,/page/0;100,200,/page/1"));
        assert_eq!(decode("@@timeline v1 x;1,2"), None);
        assert_eq!(decode("something else"), None);
    }
}
