//! # Batching a stream: when full, or when the oldest item has waited long enough
//!
//! Writing rows to a database, metrics to a collector or messages to Kafka costs mostly per
//! call, not per item: one insert of 500 rows is far cheaper than 500 inserts. So services
//! batch. Batching by size alone is not enough: at night, when items trickle in, the first
//! item of a batch would wait for hours until 499 others join it. So a batch also leaves
//! when its *oldest* item has waited `max_wait`, full or not. Those two rules bound both the
//! cost (at most one call per `max_size` items under load) and the latency (no item waits
//! longer than `max_wait`). When the input ends, what is left goes out at once.
//! (Python: a loop around `asyncio.wait_for(queue.get(), timeout=deadline - now)`.)
//!
//! `futures::stream::unfold` turns an async function of a state into a stream: here the
//! state is the input, and each call gathers one batch. Wait for the first item with no time
//! limit (an empty batch is never sent), note the deadline it starts, then race the next item
//! against `sleep_until(deadline)` with `tokio::select!` until the batch is full or the timer
//! wins. `StreamExt::next` is cancel-safe: when the timer wins, no item is lost in the
//! dropped `next()` future. `biased;` tries the input first, so an item that arrives exactly
//! at the deadline still makes it into the batch.
//!
//! Once you have written it, meet the library version: `tokio_stream::StreamExt::chunks_timeout`
//! does exactly this.
//!
//! ## Your job
//! Write `batches`: every input item exactly once, in order, in batches of at most
//! `max_size`; a batch goes out as soon as it is full, when its first item has waited
//! `max_wait`, or when the input ends.
//!
//! ## Read
//! - <https://docs.rs/futures/latest/futures/stream/fn.unfold.html>
//! - <https://docs.rs/tokio/latest/tokio/macro.select.html> (cancellation safety)
//! - <https://docs.rs/tokio/latest/tokio/time/fn.sleep_until.html>
//! - A real service uses
//!   <https://docs.rs/tokio-stream/latest/tokio_stream/trait.StreamExt.html#method.chunks_timeout>.

use std::time::Duration;

use futures::stream::{self, Stream, StreamExt};
use tokio::time::{Instant, sleep_until};

/// Groups the items of `input` into batches of at most `max_size` (`max_size >= 1`). A
/// batch is emitted when full, when its first item has waited `max_wait`, or when `input`
/// ends.
pub fn batches<S>(input: S, max_size: usize, max_wait: Duration) -> impl Stream<Item = Vec<S::Item>>
where
    S: Stream + Unpin,
{
    assert!(max_size > 0, "a batch of 0 items would never be full");
    // The state is the input, or `None` once it has ended (after the last batch).
    stream::unfold(Some(input), move |input| async move {
        // TODO: one batch per call. Wait for a first item (none: the batches end), then
        // add items until the batch is full or `max_wait` has passed since the first one.
        // Return the batch with the input to keep going, or with `None` if it ended.
        let _ = (input, max_size, max_wait);
        todo!()
    })
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let start = Instant::now();
    // A burst of 7 events, then a trickle.
    let arrivals = [0, 0, 0, 0, 0, 0, 0, 120, 300, 320, 900];
    let events = stream::iter(arrivals.into_iter().enumerate()).then(|(i, at)| async move {
        sleep_until(start + Duration::from_millis(at)).await;
        format!("event {i}")
    });
    let mut out = std::pin::pin!(batches(Box::pin(events), 4, Duration::from_millis(100)));
    while let Some(batch) = out.next().await {
        println!("{:>5?}  {batch:?}", start.elapsed());
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/batch_stream.toml tries each):
    // - flushing only when full or only at the end of the input;
    // - a timer restarted by every item (a debounce: a steady trickle never flushes);
    // - a fixed `interval` instead of a deadline set by the batch's first item, and empty
    //   batches sent on its ticks;
    // - the partial batch dropped at the end of the input, or batches over `max_size`;
    // - a `timeout` around each `next()` (the oldest item waits up to n · max_wait).
    use super::*;
    use proptest::prelude::*;
    use timeline::Timeline;
    use tokio::sync::mpsc;
    use tokio::time::sleep;

    const MAX_WAIT: Duration = Duration::from_millis(100);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// An input whose item i arrives at `arrivals[i]` ms whether or not anyone is reading
    /// (a producer task sends it), and which ends at `end` ms. Items are their indices.
    fn input(
        arrivals: &[u64],
        end: u64,
        timeline: &Timeline,
    ) -> impl Stream<Item = usize> + Unpin + use<> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (arrivals, timeline) = (arrivals.to_vec(), timeline.clone());
        let start = Instant::now();
        tokio::spawn(async move {
            for (i, at) in arrivals.into_iter().enumerate() {
                sleep_until(start + ms(at)).await;
                timeline.mark("items in");
                let _ = sender.send(i);
            }
            sleep_until(start + ms(end)).await;
            timeline.mark("input ends");
        });
        Box::pin(stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        }))
    }

    /// Reads every batch; returns each with the ms at which it came out.
    async fn collect(
        arrivals: &[u64],
        end: u64,
        max_size: usize,
        timeline: &Timeline,
    ) -> Vec<(Vec<usize>, u64)> {
        let start = Instant::now();
        let out = batches(input(arrivals, end, timeline), max_size, MAX_WAIT);
        let mut out = std::pin::pin!(out);
        let mut got = Vec::new();
        while let Some(batch) = tokio::time::timeout(ms(60_000), out.next())
            .await
            .expect("no batch and no end for a minute")
        {
            timeline.mark("batches out");
            got.push((batch, start.elapsed().as_millis() as u64));
        }
        got
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_out_at_once() {
        let timeline = Timeline::new();
        let got = collect(&[0; 10], 500, 4, &timeline).await;
        assert_eq!(
            got,
            vec![
                (vec![0, 1, 2, 3], 0),
                (vec![4, 5, 6, 7], 0),
                (vec![8, 9], 100)
            ],
            "(batch, ms it came out): full batches at once, the rest when item 8 has waited 100 ms\n{}",
            timeline.picture("batches out at 0, 0 and 100 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_batch_leaves_when_its_oldest_item_has_waited() {
        let timeline = Timeline::new();
        let got = collect(&[0, 30, 60, 90, 120], 1000, 10, &timeline).await;
        assert_eq!(
            got,
            vec![(vec![0, 1, 2, 3], 100), (vec![4], 220)],
            "item 0 arrived at 0 ms: its batch should leave at 100 ms, however many items \
             joined it since (a timer reset by each item makes the first one wait longer)\n{}",
            timeline.picture("batches out at 100 and 220 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_starts_with_the_first_item_of_each_batch() {
        let timeline = Timeline::new();
        let got = collect(&[0, 150, 170], 1000, 10, &timeline).await;
        assert_eq!(
            got,
            vec![(vec![0], 100), (vec![1, 2], 250)],
            "item 1 arrived at 150 ms, so its batch leaves at 250 ms, not on a fixed 100 ms tick\n{}",
            timeline.picture("batches out at 100 and 250 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_the_input_sends_what_is_left_at_once() {
        let timeline = Timeline::new();
        let got = collect(&[0, 10], 20, 10, &timeline).await;
        assert_eq!(
            got,
            vec![(vec![0, 1], 20)],
            "when the input ends at 20 ms, the last batch should go out then, and the batches end\n{}",
            timeline.picture("one batch at 20 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_sends_no_empty_batch() {
        let timeline = Timeline::new();
        let got = collect(&[0, 1000], 1500, 10, &timeline).await;
        assert_eq!(
            got,
            vec![(vec![0], 100), (vec![1], 1100)],
            "nothing arrived between 100 and 1000 ms: no batch then\n{}",
            timeline.picture("batches out at 100 and 1100 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_input_gives_no_batch() {
        let timeline = Timeline::new();
        assert_eq!(collect(&[], 50, 3, &timeline).await, vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn batches_are_produced_while_the_input_is_still_open() {
        // A consumer sees each batch when it leaves, not all of them at the end.
        let timeline = Timeline::new();
        let out = batches(input(&[0, 200], 10_000, &timeline), 5, MAX_WAIT);
        let mut out = std::pin::pin!(out);
        let start = Instant::now();
        assert_eq!(out.next().await, Some(vec![0]));
        assert_eq!(
            start.elapsed(),
            ms(100),
            "the first batch should leave at 100 ms"
        );
        sleep(ms(1)).await;
        assert_eq!(out.next().await, Some(vec![1]));
        assert_eq!(start.elapsed(), ms(300));
    }

    fn run_paused<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
            .block_on(future)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any arrivals: every item once and in order, no batch over `max_size`, each batch
        /// out exactly when it is full, its first item has waited `MAX_WAIT`, or the input
        /// ended, and never one that could still have taken an item that had arrived.
        #[test]
        fn batches_follow_the_two_rules(
            gaps in prop::collection::vec(prop_oneof![Just(0u64), 1u64..250], 0..40),
            tail in 0u64..300,
            max_size in 1usize..6,
        ) {
            let arrivals: Vec<u64> = gaps.iter().scan(0, |at, gap| { *at += gap; Some(*at) }).collect();
            let end = arrivals.last().copied().unwrap_or(0) + tail;
            let got = run_paused(async { collect(&arrivals, end, max_size, &Timeline::new()).await });
            let items: Vec<usize> = got.iter().flat_map(|(batch, _)| batch.clone()).collect();
            prop_assert_eq!(items, (0..arrivals.len()).collect::<Vec<_>>(), "every item once, in order");
            let wait = MAX_WAIT.as_millis() as u64;
            for (k, (batch, out)) in got.iter().enumerate() {
                prop_assert!(!batch.is_empty() && batch.len() <= max_size, "batch {} has {} items", k, batch.len());
                let first = arrivals[batch[0]];
                let last = arrivals[batch[batch.len() - 1]];
                let is_last_batch = k + 1 == got.len();
                let expected = if batch.len() == max_size {
                    last
                } else if is_last_batch {
                    end.min(first + wait)
                } else {
                    first + wait
                };
                prop_assert_eq!(*out, expected, "when batch {} ({:?}) came out", k, batch);
                if let Some((next, _)) = got.get(k + 1) {
                    prop_assert!(
                        arrivals[next[0]] >= *out,
                        "batch {} left at {} ms without item {}, which had arrived at {} ms",
                        k, out, next[0], arrivals[next[0]]
                    );
                }
            }
        }
    }
}
