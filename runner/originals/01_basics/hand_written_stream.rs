//! # A `Stream` by hand: `poll_next`
//!
//! `Stream::poll_next(self: Pin<&mut Self>, cx)` is `Future::poll` for many values: it answers
//! `Ready(Some(item))`, `Ready(None)` (the end) or `Pending`. The same contract holds: return
//! `Pending` only after something has registered `cx.waker()`. Usually you do not store the
//! waker yourself: you poll an inner future (here a `tokio::time::Sleep`), and *it* registers
//! the waker with the timer. If it is `Pending`, so are you.
//!
//! The inner `Sleep` must live in the struct and be polled again and again, because a new
//! `Sleep` made on every poll starts its countdown afresh and never fires. `Sleep` is
//! `!Unpin`, so it is kept as `Pin<Box<Sleep>>`: then the stream itself is `Unpin` and works
//! with `StreamExt::next` and friends. After each tick, `Sleep::reset` moves the same timer to
//! the next deadline, counted from the previous *deadline* rather than from "now", so a slow
//! consumer does not push every later tick back (this is what `tokio::time::interval` does).
//! (Python: an async generator `async def ticker(): for i in ...: await asyncio.sleep(p); yield i`.)
//!
//! ## Your job
//! Implement `Stream for Ticker`: tick `n` (1, 2, ..., `count`) arrives at `start + n·period`,
//! then the stream ends with `None`, and keeps answering `None` if polled again. A consumer
//! that comes back late gets at once every tick whose time has passed, one per poll, and the
//! later ticks on their original schedule.
//!
//! ## Read
//! - <https://docs.rs/futures/latest/futures/stream/trait.Stream.html>
//! - <https://docs.rs/tokio/latest/tokio/time/struct.Sleep.html> (`deadline`, `reset`)
//! - <https://doc.rust-lang.org/std/task/macro.ready.html>
//! - <https://tokio.rs/tokio/tutorial/streams> (Implementing `Stream`)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::stream::{Stream, StreamExt};
use tokio::time::{Instant, Sleep, sleep_until};

/// Yields `1, 2, ..., count`, one every `period`, then ends.
pub struct Ticker {
    period: Duration,
    /// The next tick to yield.
    next: u32,
    count: u32,
    /// Fires at the next tick's deadline. Boxed so that `Ticker` is `Unpin`.
    sleep: Pin<Box<Sleep>>,
}

impl Ticker {
    /// Must be called inside a tokio runtime (the `Sleep` needs its timer).
    pub fn new(period: Duration, count: u32) -> Self {
        Ticker {
            period,
            next: 1,
            count,
            sleep: Box::pin(sleep_until(Instant::now() + period)),
        }
    }
}

impl Stream for Ticker {
    type Item = u32;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        // TODO: after `count` ticks, `None` (every time). Otherwise poll the stored Sleep:
        // if it is Pending, so are you; once it fires, move it on by one period
        // (`Sleep::reset`) and yield the tick.
        todo!()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let start = Instant::now();
    let mut ticks = Ticker::new(Duration::from_millis(250), 4).map(|n| n * 10);
    while let Some(tick) = ticks.next().await {
        println!("{:>4} ms: {tick}", start.elapsed().as_millis());
    }
    println!("done");
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/01_basics/hand_written_stream.toml`
    // (a new `Sleep` on every poll, `Pending` without polling the `Sleep`, a busy loop, the
    // next deadline counted from "now" always or only when late, a schedule that skips missed
    // ticks, ending early or late or not staying ended).
    // The streams are driven by hand on the paused clock (1 ms at a time, polled only when
    // woken), so every one of these fails quickly instead of hanging.
    use super::*;
    use proptest::prelude::*;
    use tokio::time::advance;
    use tokio_test::{assert_pending, assert_ready_eq};

    const MS: Duration = Duration::from_millis(1);

    /// Polls `stream` like a runtime would, only when woken, moving the paused clock on 1 ms
    /// at a time while it is pending, and `late` after the first item (a consumer that is
    /// busy once). Returns each item with the virtual time it arrived.
    async fn drive<S: Stream + Unpin>(stream: S, late: Duration) -> Vec<(S::Item, Duration)> {
        let start = Instant::now();
        let mut task = tokio_test::task::spawn(stream);
        let mut items = Vec::new();
        let mut polls = 0;
        loop {
            polls += 1;
            assert!(
                polls <= 100,
                "polled 100 times for {} items: the stream wakes itself without progress (a busy loop)",
                items.len()
            );
            match task.poll_next() {
                Poll::Ready(Some(item)) => {
                    items.push((item, start.elapsed()));
                    if items.len() == 1 {
                        advance(late).await;
                    }
                }
                Poll::Ready(None) => return items,
                Poll::Pending => {
                    while !task.is_woken() {
                        assert!(
                            start.elapsed() < Duration::from_secs(10),
                            "after {} items, pending and never woken for 10 s of virtual time: \
                             poll the stored Sleep so that it registers the waker, and keep the same Sleep",
                            items.len()
                        );
                        advance(MS).await;
                    }
                }
            }
        }
    }

    fn ticks_at(period_ms: u64, count: u32) -> Vec<(u32, Duration)> {
        (1..=count)
            .map(|n| (n, Duration::from_millis(period_ms * u64::from(n))))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_arrive_one_period_apart_then_end() {
        let ticks = drive(Ticker::new(100 * MS, 3), Duration::ZERO).await;
        assert_eq!(ticks, ticks_at(100, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn pending_until_the_deadline_woken_by_the_timer_not_before() {
        let mut task = tokio_test::task::spawn(Ticker::new(100 * MS, 2));
        assert_pending!(task.poll_next());
        assert!(!task.is_woken(), "woken at once: a busy loop");
        advance(99 * MS).await;
        assert!(!task.is_woken(), "woken before the deadline: a busy loop");
        advance(MS).await;
        assert!(
            task.is_woken(),
            "the deadline passed but nobody woke the task: poll the Sleep before returning Pending"
        );
        assert_ready_eq!(task.poll_next(), Some(1));
        assert_pending!(task.poll_next());
        assert!(!task.is_woken());
    }

    #[tokio::test(start_paused = true)]
    async fn stays_ended_after_none() {
        let mut task = tokio_test::task::spawn(Ticker::new(10 * MS, 1));
        assert_pending!(task.poll_next());
        advance(10 * MS).await;
        assert_ready_eq!(task.poll_next(), Some(1));
        assert_ready_eq!(task.poll_next(), None, "one tick, then the end");
        assert_ready_eq!(task.poll_next(), None, "after the end, None again");
        assert_ready_eq!(task.poll_next(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ticks_ends_at_once() {
        let mut task = tokio_test::task::spawn(Ticker::new(10 * MS, 0));
        assert_ready_eq!(task.poll_next(), None, "count 0: nothing to wait for");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_consumer_does_not_shift_later_ticks() {
        // The consumer comes back 150 ms after tick 1: tick 2 (due at 200) is ready at once,
        // at 250, and the schedule goes on at 300 and 400, like `tokio::time::interval`.
        let ticks = drive(Ticker::new(100 * MS, 4), 150 * MS).await;
        assert_eq!(
            ticks,
            [(1, 100 * MS), (2, 250 * MS), (3, 300 * MS), (4, 400 * MS)],
            "count each deadline from the previous deadline, not from when the tick was yielded or polled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_consumer_late_by_more_than_a_period_gets_the_missed_ticks_at_once() {
        // Back 250 ms after tick 1: ticks 2 (due at 200) and 3 (due at 300) are both ready at
        // 350, and tick 4 keeps its time, 400.
        let ticks = drive(Ticker::new(100 * MS, 4), 250 * MS).await;
        assert_eq!(
            ticks,
            [(1, 100 * MS), (2, 350 * MS), (3, 350 * MS), (4, 400 * MS)],
            "a tick whose time has passed is due at once: count each deadline from the previous \
             deadline, even when that one is already past"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn works_with_stream_combinators() {
        let stream = Ticker::new(10 * MS, 10)
            .filter(|n| std::future::ready(n % 2 == 0))
            .map(|n| n * 100)
            .take(2);
        let ticks = drive(stream, Duration::ZERO).await;
        assert_eq!(ticks, [(200, 20 * MS), (400, 40 * MS)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any period and count: tick n at n·period, exactly `count` ticks.
        #[test]
        fn tick_n_arrives_at_n_periods(period_ms in 1u64..50, count in 0u32..8) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let ticks = runtime.block_on(async {
                drive(Ticker::new(Duration::from_millis(period_ms), count), Duration::ZERO).await
            });
            prop_assert_eq!(ticks, ticks_at(period_ms, count));
        }
    }
}
