//! # `broadcast`: every subscriber gets every message
//!
//! A price feed, a chat room, a config reload: one publisher, many subscribers, and each
//! subscriber must see every message (unlike `mpsc`, where each message goes to exactly
//! one receiver). `tokio::sync::broadcast` keeps the last `capacity` messages in a ring;
//! each `Receiver` has its own position in it. More receivers come from
//! `Sender::subscribe()` (a `Receiver` is not `Clone`), and a new one sees only what is
//! sent *after* it subscribed.
//! (Python: no built-in; one `asyncio.Queue` per subscriber and a loop that puts to each.)
//!
//! The publisher never waits for slow subscribers: `send` is not even async. A
//! subscriber that falls more than `capacity` messages behind has lost the oldest ones;
//! its next `recv` returns `Err(RecvError::Lagged(n))` with how many it missed, and the
//! `recv` after that goes on from the oldest message still kept. A lag is news, not an
//! error to die of. When every `Sender` is gone and the receiver has read all that is
//! kept, `recv` returns `Err(RecvError::Closed)`: that is the end of the feed.
//!
//! ## Your job
//! Implement `follow` (a subscriber's loop), `publish` (the paced publisher) and
//! `fan_out` (wire them together).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/broadcast/index.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/broadcast/struct.Receiver.html#method.recv>
//! - <https://docs.rs/tokio/latest/tokio/sync/broadcast/error/enum.RecvError.html>

use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::sleep;

pub type Tick = u64;

/// The publisher sends one tick every `PERIOD`, the first one after one `PERIOD`.
pub const PERIOD: Duration = Duration::from_millis(10);

/// How many ticks the feed keeps for subscribers that fall behind.
pub const CAPACITY: usize = 16;

/// What one subscriber saw: the ticks, in order, and how many it missed by lagging.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    pub ticks: Vec<Tick>,
    pub missed: u64,
}

/// Reads the feed until it closes.
pub async fn follow(mut rx: broadcast::Receiver<Tick>) -> Seen {
    // TODO: receive until the feed closes. Keep every tick, in order; when you lagged,
    // add up how many you missed and keep reading.
    todo!()
}

/// Sends `ticks` one every `PERIOD` and returns how many subscribers each one reached.
/// Taking the sender by value means the feed closes when publishing is done.
pub async fn publish(tx: broadcast::Sender<Tick>, ticks: &[Tick]) -> Vec<usize> {
    // TODO: wait a PERIOD before each tick, send it, and note how many subscribers it
    // reached. Nobody listening is not an error.
    todo!()
}

/// Starts `subscribers` subscribers, publishes `ticks` to them and returns what each one
/// saw, in subscriber order.
pub async fn fan_out(ticks: &[Tick], subscribers: usize) -> Vec<Seen> {
    // TODO: make a feed of CAPACITY, give each subscriber a receiver of its own and run
    // `follow` on it in a task, publish, then collect what each one saw.
    todo!()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("three subscribers: {:?}", fan_out(&[1, 2, 3], 3).await);

    let (tx, early) = broadcast::channel(4);
    for tick in 0..10 {
        tx.send(tick).expect("one subscriber is listening");
    }
    let late = tx.subscribe();
    tx.send(10).expect("two subscribers are listening");
    drop(tx);
    println!("early, capacity 4: {:?}", follow(early).await);
    println!("late: {:?}", follow(late).await);
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - treating `Lagged` as fatal (`while let Ok(tick) = rx.recv().await`): the lagging
    //   subscriber stops early and reports nothing missed;
    // - ignoring `Closed` (`Err(_) => continue`): `follow` spins forever; the checks count
    //   its polls and fail instead of hanging;
    // - subscribing inside the spawned task, or keeping a `Sender` alive after publishing:
    //   subscribers miss ticks or never see the feed close (bounded, fails);
    // - `tx.send(tick).unwrap()`: panics when nobody is subscribed;
    // - publishing everything at once, or waiting for subscribers: the timing is exact.
    // (Cloning a `Receiver` does not compile: new receivers come from `subscribe()`.)
    use super::*;
    use proptest::prelude::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::time::{Instant, timeout};
    use tokio_test::{assert_pending, assert_ready, task};

    /// Fails instead of hanging: too many polls means `follow` is spinning on a closed
    /// feed (tokio's cooperative budget makes a spinning `recv` loop yield now and then);
    /// the outer timeout catches a subscriber that waits forever.
    struct PollLimit<F> {
        fut: Pin<Box<F>>,
        polls: u32,
    }

    impl<F: Future> Future for PollLimit<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.polls += 1;
            assert!(
                self.polls <= 1_000,
                "follow keeps calling recv after the feed closed: stop on RecvError::Closed"
            );
            self.fut.as_mut().poll(cx)
        }
    }

    async fn bounded<T>(fut: impl Future<Output = T>) -> T {
        let limited = PollLimit {
            fut: Box::pin(fut),
            polls: 0,
        };
        timeout(Duration::from_secs(3600), limited)
            .await
            .expect("never finished: does every subscriber stop when the last Sender is dropped?")
    }

    /// Run first by the checks that spawn subscribers, so that a `follow` spinning on a
    /// closed feed fails here instead of hanging the runtime.
    async fn follow_must_stop_when_the_feed_closes() {
        let (tx, rx) = broadcast::channel(4);
        tx.send(1).unwrap();
        drop(tx);
        assert_eq!(
            bounded(follow(rx)).await,
            Seen {
                ticks: vec![1],
                missed: 0
            }
        );
    }

    fn seen(ticks: &[Tick], missed: u64) -> Seen {
        Seen {
            ticks: ticks.to_vec(),
            missed,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_stops_when_the_feed_closes() {
        follow_must_stop_when_the_feed_closes().await;
        let (tx, rx) = broadcast::channel::<Tick>(4);
        drop(tx);
        assert_eq!(
            bounded(follow(rx)).await,
            seen(&[], 0),
            "a feed closed before any tick"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_subscriber_gets_every_tick_in_order() {
        follow_must_stop_when_the_feed_closes().await;
        let start = Instant::now();
        let all = bounded(fan_out(&[5, 3, 8, 1, 9], 3)).await;
        assert_eq!(
            all,
            vec![seen(&[5, 3, 8, 1, 9], 0); 3],
            "each of the 3 subscribers should see all 5 ticks, in the order they were sent"
        );
        assert_eq!(
            start.elapsed(),
            5 * PERIOD,
            "5 ticks one PERIOD apart take 5 PERIODs; the publisher never waits for subscribers"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fan_out_to_nobody_is_not_an_error() {
        follow_must_stop_when_the_feed_closes().await;
        let start = Instant::now();
        assert_eq!(bounded(fan_out(&[1, 2], 0)).await, vec![]);
        assert_eq!(start.elapsed(), 2 * PERIOD);
    }

    #[tokio::test(start_paused = true)]
    async fn publish_counts_listeners_and_a_late_subscriber_sees_only_later_ticks() {
        let (tx, early) = broadcast::channel(CAPACITY);
        let leaving = tx.subscribe();
        let watcher = async {
            sleep(Duration::from_millis(15)).await;
            drop(leaving);
            sleep(Duration::from_millis(10)).await;
            // Joins at 25 ms, between the second and the third tick.
            early.resubscribe()
        };
        let start = Instant::now();
        let (reached, late) = tokio::join!(bounded(publish(tx, &[10, 20, 30, 40])), watcher);
        assert_eq!(start.elapsed(), 4 * PERIOD, "4 ticks, one every PERIOD");
        assert_eq!(
            reached,
            [2, 1, 2, 2],
            "publish should return how many subscribers each tick reached"
        );
        assert_eq!(bounded(follow(early)).await, seen(&[10, 20, 30, 40], 0));
        assert_eq!(
            bounded(follow(late)).await,
            seen(&[30, 40], 0),
            "a subscriber that joined at 25 ms sees only the ticks sent after it joined"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn publishing_to_nobody_is_not_an_error() {
        let (tx, rx) = broadcast::channel(4);
        drop(rx);
        let start = Instant::now();
        assert_eq!(
            bounded(publish(tx, &[1, 2, 3])).await,
            [0, 0, 0],
            "with nobody subscribed, send returns Err; that means 0 listeners, not a crash"
        );
        assert_eq!(start.elapsed(), 3 * PERIOD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_subscriber_counts_what_it_missed_and_carries_on() {
        let (tx, rx) = broadcast::channel(4);
        for tick in 0..10 {
            tx.send(tick).unwrap();
        }
        drop(tx);
        assert_eq!(
            bounded(follow(rx)).await,
            seen(&[6, 7, 8, 9], 6),
            "with capacity 4, a subscriber that read none of 10 ticks missed 6 \
             and must go on with the 4 that are kept"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_lag_it_resumes_from_the_oldest_tick_still_kept() {
        let (tx, rx) = broadcast::channel(4);
        let mut subscriber = task::spawn(follow(rx));
        tx.send(0).unwrap();
        tx.send(1).unwrap();
        assert_pending!(subscriber.poll(), "the feed is still open");
        for tick in 2..12 {
            tx.send(tick).unwrap();
        }
        assert_pending!(
            subscriber.poll(),
            "a lag is not the end of the feed: keep reading"
        );
        drop(tx);
        assert!(
            subscriber.is_woken(),
            "dropping the last Sender wakes the subscriber"
        );
        let got = assert_ready!(
            subscriber.poll(),
            "the feed closed: follow should have returned"
        );
        assert_eq!(
            got,
            seen(&[0, 1, 8, 9, 10, 11], 6),
            "after 0 and 1, ticks 2..=7 fell out of the 4-tick buffer; 8..=11 must still arrive"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any number of ticks and subscribers: everybody sees everything, in order, and
        /// publishing takes one PERIOD per tick.
        #[test]
        fn fan_out_delivers_everything_to_everybody(
            ticks in prop::collection::vec(any::<Tick>(), 0..40),
            subscribers in 0usize..6,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let (elapsed, all) = runtime.block_on(async {
                follow_must_stop_when_the_feed_closes().await;
                let start = Instant::now();
                let all = bounded(fan_out(&ticks, subscribers)).await;
                (start.elapsed(), all)
            });
            prop_assert_eq!(elapsed, PERIOD * ticks.len() as u32);
            prop_assert_eq!(all, vec![seen(&ticks, 0); subscribers]);
        }

        /// A subscriber that reads nothing until `sent` ticks are in a feed of `capacity`
        /// (rounded up to a power of two) gets the newest ones and counts the rest as missed.
        #[test]
        fn a_lagging_subscriber_keeps_the_newest_and_counts_the_rest(
            capacity in 1usize..9,
            sent in 0u64..40,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let got = runtime.block_on(async {
                let (tx, rx) = broadcast::channel(capacity);
                for tick in 0..sent {
                    tx.send(tick).unwrap();
                }
                drop(tx);
                bounded(follow(rx)).await
            });
            let kept = sent.min(capacity.next_power_of_two() as u64);
            let expected: Vec<Tick> = (sent - kept..sent).collect();
            prop_assert_eq!(got, seen(&expected, sent - kept));
        }
    }
}
