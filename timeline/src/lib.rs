//! What ran when: a recording of virtual time for the course's checks.
//!
//! A check about concurrency or timing fails with a sentence ("the server saw 1 request at
//! once, but the limit is 3"). Concurrency is easier to see than to read, so the pretend
//! services record each request, permit, message or timer on tokio's clock, and a failing
//! check adds a picture of it to its message:
//!
//! ```text
//! virtual ms  0         100       200       300
//! /page/0     ██████████
//! /page/1               ██████████
//! /page/2                         ██████████
//! in flight   1                             peak 1
//! expected    up to 3 at once: 300 ms → 100 ms
//! ```
//!
//! Recording takes a lock and reads the clock: it never awaits, so it never changes timing.
//!
//! A pretend service with state keeps a `Timeline` (`let _span = self.timeline.span(path);`).
//! A free function that has nowhere to keep one records with [`span`] and [`mark`] into the
//! timeline the check [installed](Timeline::install) on its thread (the checks' runtimes are
//! current-thread, so every task of the check runs there); with none installed they do nothing.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let timeline = timeline::Timeline::new();
//! {
//!     let _span = timeline.span("/page/0"); // ends when dropped, also on cancellation
//!     tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//! }
//! timeline.mark("shutdown"); // a zero-length event
//! assert_eq!(timeline.peak_in_flight(), 1);
//! let message = format!("too slow\n{}", timeline.picture("done by 50 ms"));
//! assert!(message.contains("/page/0"));
//!
//! // A free function records into the timeline installed on this thread, if any.
//! async fn fetch(what: &str) {
//!     let _span = timeline::span(what);
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! let check = timeline::Timeline::new();
//! let _installed = check.install();
//! fetch("user").await;
//! assert_eq!(check.events().len(), 1);
//! # }
//! ```

#[cfg(feature = "record")]
use std::cell::RefCell;
use std::fmt;
#[cfg(feature = "record")]
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

#[cfg(feature = "record")]
use tokio::time::Instant;

pub mod draw;

pub use draw::Style;

/// One row's interval, in virtual time since the timeline was created. A mark has
/// `start == end`; a span still running when the picture is taken has `end == None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub row: String,
    pub start: Duration,
    pub end: Option<Duration>,
}

#[cfg(feature = "record")]
/// A shared recording; clones record into the same timeline.
#[derive(Clone)]
pub struct Timeline {
    inner: Arc<Mutex<Recording>>,
}

#[cfg(feature = "record")]
struct Recording {
    origin: Instant,
    events: Vec<Event>,
}

#[cfg(feature = "record")]
impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "record")]
impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeline")
            .field("events", &self.events())
            .finish()
    }
}

#[cfg(feature = "record")]
impl Timeline {
    /// A timeline whose zero is now, on tokio's clock (the paused clock in the checks).
    pub fn new() -> Self {
        Timeline {
            inner: Arc::new(Mutex::new(Recording {
                origin: Instant::now(),
                events: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        // A check that panicked while recording must still be able to draw.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes this the timeline that [`span`] and [`mark`] record into on this thread, until
    /// the guard is dropped.
    pub fn install(&self) -> Installed {
        let previous = CURRENT.with(|current| current.replace(Some(self.clone())));
        Installed { previous }
    }

    /// Starts an interval on `row`; it ends when the guard is dropped (also when the future
    /// holding it is cancelled).
    pub fn span(&self, row: impl Into<String>) -> SpanGuard {
        let mut recording = self.lock();
        let start = recording.origin.elapsed();
        recording.events.push(Event {
            row: row.into(),
            start,
            end: None,
        });
        SpanGuard {
            timeline: Some(self.clone()),
            index: recording.events.len() - 1,
        }
    }

    /// A zero-length event on `row` (a timer fired, a message sent).
    pub fn mark(&self, row: impl Into<String>) {
        let mut recording = self.lock();
        let now = recording.origin.elapsed();
        recording.events.push(Event {
            row: row.into(),
            start: now,
            end: Some(now),
        });
    }

    /// Everything recorded so far, in the order it started.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// The most spans that were open at the same instant (marks do not count).
    pub fn peak_in_flight(&self) -> usize {
        draw::peak_in_flight(&self.events())
    }

    /// The picture to append to a failing check's message, with what the check expected.
    pub fn picture(&self, expected: impl fmt::Display) -> Picture {
        Picture {
            events: self.events(),
            expected: expected.to_string(),
        }
    }
}

#[cfg(feature = "record")]
/// Ends its span when dropped.
#[must_use = "the span ends when this guard is dropped: bind it with `let _span = ...`"]
pub struct SpanGuard {
    timeline: Option<Timeline>,
    index: usize,
}

#[cfg(feature = "record")]
impl Drop for SpanGuard {
    fn drop(&mut self) {
        let Some(timeline) = &self.timeline else {
            return;
        };
        let mut recording = timeline.lock();
        let now = recording.origin.elapsed();
        if let Some(event) = recording.events.get_mut(self.index) {
            event.end = Some(now);
        }
    }
}

#[cfg(feature = "record")]
thread_local! {
    static CURRENT: RefCell<Option<Timeline>> = const { RefCell::new(None) };
}

#[cfg(feature = "record")]
/// Puts back the previously installed timeline when dropped.
#[must_use = "the timeline is uninstalled when this guard is dropped: bind it with `let _installed = ...`"]
pub struct Installed {
    previous: Option<Timeline>,
}

#[cfg(feature = "record")]
impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| current.replace(previous));
    }
}

#[cfg(feature = "record")]
fn current() -> Option<Timeline> {
    CURRENT.with(|current| current.borrow().clone())
}

#[cfg(feature = "record")]
/// Starts an interval on `row` in the timeline installed on this thread (see
/// [`Timeline::install`]); with none installed, records nothing.
pub fn span(row: impl Into<String>) -> SpanGuard {
    match current() {
        Some(timeline) => timeline.span(row),
        None => SpanGuard {
            timeline: None,
            index: 0,
        },
    }
}

#[cfg(feature = "record")]
/// A zero-length event on `row` in the timeline installed on this thread, if any.
pub fn mark(row: impl Into<String>) {
    if let Some(timeline) = current() {
        timeline.mark(row);
    }
}

/// A timeline ready to print: as text at 80 columns under plain `cargo test`, and with a
/// data line the runner reads to redraw it at the terminal's width and in colour.
#[derive(Debug, Clone)]
pub struct Picture {
    pub events: Vec<Event>,
    pub expected: String,
}

impl fmt::Display for Picture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&draw::draw(
            &self.events,
            &self.expected,
            80,
            Style::Unicode,
        ))?;
        f.write_str(&draw::encode(&self.events, &self.expected))
    }
}
