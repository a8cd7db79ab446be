//! # `select!`: the first to finish wins, the others are dropped
//!
//! `tokio::select!` polls several futures in the current task and runs the branch of the
//! first one to complete. The other futures are dropped on the spot: that is how Rust
//! cancels async work. There is no cancel message and no exception; the loser just never
//! gets polled again, and its destructors run (a pending request is abandoned, a guard is
//! released). The two places you meet it in every service:
//!
//! - a race: ask a primary and a replica and take whichever answers first (a hedged
//!   request), or a call against a timer;
//! - an event loop: wait for the next message *or* the shutdown signal, whichever comes first.
//!
//! When several branches are ready at the same poll, `select!` picks one **at random** (so
//! that no branch starves). When the order matters, write `biased;` first: the branches are
//! then tried top to bottom. Shutdown must beat a busy inbox, or a loaded service never stops.
//!
//! What `serve` needs of pinning (`hand_written_future`, later, shows why it exists): a
//! future written in a branch (`inbox.recv()`) is made afresh on every pass of the loop,
//! which is fine for a cancel-safe call. The shutdown future must instead survive from one
//! pass to the next, so make it once before the loop and pin it there,
//! `let mut shutdown = std::pin::pin!(shutdown);` (a future must stay at one address once
//! polled, and `pin!` promises that), then write the branch as `() = &mut shutdown`: the
//! `&mut` lends the future to this `select!` instead of moving it in and dropping it at the
//! end of the pass. `mpsc::Receiver::recv` is cancel-safe: when another branch wins, no
//! message is lost.
//! (Python: `asyncio.wait({a, b}, return_when=FIRST_COMPLETED)` then `cancel()` the pending
//! ones; `select!` does both.)
//!
//! ## Your job
//! Implement `first_answer` (the primary wins a tie) and `serve` (shutdown wins over waiting
//! messages). `inbox.recv().await` gives `Some(message)`, or `None` once every sender is gone.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/macro.select.html> (see "Fairness" and `biased;`)
//! - <https://tokio.rs/tokio/tutorial/select>
//! - <https://doc.rust-lang.org/std/pin/macro.pin.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/struct.Receiver.html#method.recv>

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::sleep;

/// Who answered first.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<T> {
    Primary(T),
    Replica(T),
}

/// Why `serve` stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    Shutdown,
    InboxClosed,
}

/// Races `primary` against `replica` and returns the first answer; the other request is
/// dropped at once. If both are ready at the same time, the primary wins.
pub async fn first_answer<T>(
    primary: impl Future<Output = T>,
    replica: impl Future<Output = T>,
) -> Answer<T> {
    // TODO: race the two with tokio::select!; a tie goes to the primary.
    todo!()
}

/// Handles messages from `inbox` until `shutdown` completes or the inbox is closed, and
/// returns the messages handled, in order. Shutdown wins over messages that are waiting.
pub async fn serve(
    mut inbox: mpsc::Receiver<String>,
    shutdown: impl Future<Output = ()>,
) -> (Vec<String>, Stop) {
    // TODO: loop, selecting between `shutdown` and `inbox.recv()`; shutdown goes first.
    todo!()
}

async fn reply(from: &str, ms: u64) -> String {
    sleep(Duration::from_millis(ms)).await;
    format!("answer from {from} after {ms} ms")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!(
        "{:?}",
        first_answer(reply("primary", 80), reply("replica", 30)).await
    );

    let (sender, inbox) = mpsc::channel(8);
    tokio::spawn(async move {
        for n in 1..=5 {
            sleep(Duration::from_millis(10)).await;
            if sender.send(format!("message {n}")).await.is_err() {
                println!("the server has stopped; message {n} not sent");
                return;
            }
        }
    });
    println!("{:?}", serve(inbox, sleep(Duration::from_millis(35))).await);
    // Give the sender a moment to notice.
    sleep(Duration::from_millis(20)).await;
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - `join!` (or awaiting the primary, then the replica): it waits for both, the virtual
    //   time is the slower one and the faster replica never wins;
    // - spawning the requests and selecting on their JoinHandles: dropping a JoinHandle
    //   does not stop its task, so the loser is not dropped and finishes later;
    // - `select!` without `biased;`: a tie, or a shutdown with messages waiting, goes to a
    //   random branch; over 100 rounds that fails with near certainty;
    // - draining the inbox before looking at shutdown, or awaiting `recv()` alone in the
    //   loop: waiting messages are handled after shutdown, or shutdown waits for a message;
    // - not stopping when the inbox closes: `serve` never returns.
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::time::Instant;

    /// Sets its flag when dropped: proof that a future was really dropped.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    struct Tracked {
        dropped: Arc<AtomicBool>,
        finished: Arc<AtomicBool>,
    }

    /// A request that answers `value` after `ms`, and says whether it was dropped or finished.
    fn request(
        ms: u64,
        value: &'static str,
    ) -> (impl Future<Output = &'static str> + Send + 'static, Tracked) {
        let tracked = Tracked {
            dropped: Arc::new(AtomicBool::new(false)),
            finished: Arc::new(AtomicBool::new(false)),
        };
        let flag = DropFlag(Arc::clone(&tracked.dropped));
        let finished = Arc::clone(&tracked.finished);
        let future = async move {
            let _flag = flag;
            sleep(Duration::from_millis(ms)).await;
            finished.store(true, Ordering::SeqCst);
            value
        };
        (future, tracked)
    }

    #[tokio::test(start_paused = true)]
    async fn the_faster_replica_wins_and_the_primary_is_dropped_at_once() {
        let (primary, primary_state) = request(300, "primary");
        let (replica, _) = request(100, "replica");
        let start = Instant::now();
        let answer = first_answer(primary, replica).await;
        assert_eq!(answer, Answer::Replica("replica"));
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "the race should end when the replica answers at 100 ms, not wait for the primary"
        );
        assert!(
            primary_state.dropped.load(Ordering::SeqCst),
            "the losing primary request must be dropped by the time first_answer returns"
        );
        sleep(Duration::from_secs(1)).await;
        assert!(
            !primary_state.finished.load(Ordering::SeqCst),
            "the losing primary request kept running and finished later: it must be cancelled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_faster_primary_wins_and_the_replica_is_dropped_at_once() {
        let (primary, _) = request(40, "primary");
        let (replica, replica_state) = request(250, "replica");
        let start = Instant::now();
        assert_eq!(
            first_answer(primary, replica).await,
            Answer::Primary("primary")
        );
        assert_eq!(start.elapsed(), Duration::from_millis(40));
        assert!(
            replica_state.dropped.load(Ordering::SeqCst),
            "the losing replica request must be dropped by the time first_answer returns"
        );
        sleep(Duration::from_secs(1)).await;
        assert!(!replica_state.finished.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn on_a_tie_the_primary_always_wins() {
        for round in 0..100 {
            let (primary, _) = request(100, "primary");
            let (replica, _) = request(100, "replica");
            assert_eq!(
                first_answer(primary, replica).await,
                Answer::Primary("primary"),
                "round {round}: both answered at once and the replica won; select! picks a \
                 random ready branch unless it is `biased;`"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn serve_handles_messages_until_shutdown() {
        let (sender, inbox) = mpsc::channel(8);
        let start = Instant::now();
        tokio::spawn(async move {
            for (at, message) in [(0, "a"), (10, "b"), (30, "c")] {
                tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                let _ = sender.send(message.to_string()).await;
            }
        });
        let (handled, stop) = serve(inbox, sleep(Duration::from_millis(20))).await;
        assert_eq!(
            (handled, stop),
            (vec!["a".to_string(), "b".to_string()], Stop::Shutdown),
            "the messages sent before the shutdown at 20 ms are handled, then serve stops"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(20),
            "serve should stop when shutdown fires at 20 ms, not wait for another message"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn serve_stops_when_the_inbox_closes() {
        let (sender, inbox) = mpsc::channel(8);
        tokio::spawn(async move {
            for message in ["x", "y"] {
                sleep(Duration::from_millis(10)).await;
                let _ = sender.send(message.to_string()).await;
            }
            // The sender is dropped here: the inbox closes.
        });
        let start = Instant::now();
        // A shutdown long after the inbox closes, so a serve that misses the close still ends.
        let (handled, stop) = serve(inbox, sleep(Duration::from_secs(60))).await;
        assert_eq!(
            (handled, stop),
            (vec!["x".to_string(), "y".to_string()], Stop::InboxClosed),
            "serve should stop as soon as recv() gives None (every sender is gone)"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_wins_over_waiting_messages() {
        for round in 0..100 {
            let (sender, inbox) = mpsc::channel(8);
            for n in 0..5 {
                sender
                    .try_send(format!("m{n}"))
                    .expect("room in the channel");
            }
            let (handled, stop) = serve(inbox, std::future::ready(())).await;
            assert_eq!(
                (handled.len(), stop),
                (0, Stop::Shutdown),
                "round {round}: shutdown was already signalled but serve handled messages \
                 first; put the shutdown branch first in a `biased;` select!"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any two latencies: the faster wins (the primary on a tie) at its own time, and
        /// the loser is dropped at once and never finishes.
        #[test]
        fn the_faster_request_wins_and_the_loser_never_finishes(
            primary_ms in 0u64..5_000,
            replica_ms in 0u64..5_000,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let (primary, primary_state) = request(primary_ms, "primary");
            let (replica, replica_state) = request(replica_ms, "replica");
            let (answer, elapsed) = runtime.block_on(async {
                let start = Instant::now();
                let answer = first_answer(primary, replica).await;
                (answer, start.elapsed())
            });
            let loser = if primary_ms <= replica_ms {
                prop_assert_eq!(answer, Answer::Primary("primary"));
                replica_state
            } else {
                prop_assert_eq!(answer, Answer::Replica("replica"));
                primary_state
            };
            prop_assert_eq!(elapsed, Duration::from_millis(primary_ms.min(replica_ms)));
            prop_assert!(loser.dropped.load(Ordering::SeqCst));
            runtime.block_on(async { sleep(Duration::from_secs(10)).await });
            prop_assert!(!loser.finished.load(Ordering::SeqCst));
        }
    }
}
