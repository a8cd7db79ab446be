//! # A `Future` by hand: `poll`, `Pin`, `Context`, `Waker`
//!
//! `.await` is sugar over one method: `Future::poll(self: Pin<&mut Self>, cx: &mut Context)`.
//! The runtime calls `poll`; the future answers `Poll::Ready(value)` or `Poll::Pending`. The
//! contract behind `Pending` is the whole trick: before returning it, the future must arrange
//! for `cx.waker()` to be woken when progress is possible, or the task sleeps forever (a lost
//! wake-up). The runtime never polls "just in case". Waking on every poll to be safe is the
//! opposite bug: a busy loop that burns a core while nothing changes.
//!
//! A future may be polled again with a *different* waker, so it keeps the *latest* one; the
//! one it stored before may be stale. Not because its task moved to another worker (a tokio
//! waker belongs to the task) nor because of `select!` (it passes the task's own `Context`
//! down), but when the future itself moves to another task, or sits under a combinator that
//! gives each child its own waker (`FuturesUnordered`). `Waker::will_wake` says whether a
//! clone is needed.
//! This is the classic senior interview question: "write a future by hand".
//! (Python: `fut = loop.create_future()`, awaited until someone calls `fut.set_result(...)`,
//! which wakes the awaiters through the future's done-callbacks.)
//!
//! ## Your job
//! Implement `Signal::set` and `Future for Flag`: `Flag` is pending until `set` is called
//! (from any task or thread), then ready. Store the latest waker; wake it once, on `set`.
//!
//! ## Read
//! - <https://doc.rust-lang.org/std/future/trait.Future.html>
//! - <https://doc.rust-lang.org/std/task/struct.Waker.html> (`wake`, `will_wake`)
//! - <https://doc.rust-lang.org/std/task/struct.Context.html>
//! - <https://tokio.rs/tokio/tutorial/async> (Async in depth: wakers)

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Default)]
struct State {
    set: bool,
    /// The waker of the last poll that returned `Pending`.
    waker: Option<Waker>,
}

/// The sending half: `set` it once, from anywhere. Cheap to clone.
#[derive(Clone)]
pub struct Signal {
    state: Arc<Mutex<State>>,
}

/// The receiving half: a future that completes once the signal is set.
pub struct Flag {
    state: Arc<Mutex<State>>,
}

/// A one-shot signal and the future that waits for it.
pub fn flag() -> (Signal, Flag) {
    let state = Arc::new(Mutex::new(State::default()));
    (
        Signal {
            state: state.clone(),
        },
        Flag { state },
    )
}

impl Signal {
    pub fn set(&self) {
        let waker = {
            let mut state = self.state.lock().unwrap();
            state.set = true;
            state.waker.take()
        };
        // Woken outside the lock: the woken task may be polled at once, on another thread,
        // and its first move is to take this same lock.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for Flag {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap();
        if state.set {
            return Poll::Ready(());
        }
        // Checked and stored under one lock, so a `set` cannot slip in between. Skipping the
        // clone when the waker is the same one only saves work: no check can tell (it is the
        // one mutant cargo-mutants reports as missed here, on purpose).
        match &state.waker {
            Some(stored) if stored.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (signal, flag) = flag();
    let waiter = tokio::spawn(async move {
        flag.await;
        println!("flag: the signal arrived");
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("main: setting the signal");
    signal.set();
    waiter.await.unwrap();
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - returning `Pending` without storing the waker (a lost wake-up): the waker is not
    //   kept, and `set` wakes nobody;
    // - `cx.waker().wake_by_ref()` before `Pending` (a busy loop): woken with no `set`;
    // - storing only the first waker (`if waker.is_none()`): after a re-poll with a new
    //   waker, `set` wakes the stale one;
    // - waking on `set` without taking the waker: a second `set` wakes it again;
    // - a `Flag` that waits for a wake even though the signal is already set.
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use tokio::time::{Instant, timeout};
    use tokio_test::{assert_pending, assert_ready};

    /// A waker that counts how often it was woken.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter::default());
        (counter.clone(), Waker::from(counter))
    }

    fn wakes(counter: &Counter) -> usize {
        counter.0.load(Ordering::SeqCst)
    }

    fn poll_with(flag: &mut Flag, waker: &Waker) -> Poll<()> {
        Pin::new(flag).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn pending_before_set_and_keeps_the_waker() {
        let (_signal, flag) = flag();
        let mut task = tokio_test::task::spawn(flag);
        assert_pending!(task.poll());
        assert!(
            !task.is_woken(),
            "woken although nothing happened: that is a busy loop"
        );
        assert_eq!(
            task.waker_ref_count(),
            2,
            "Pending without keeping a clone of cx.waker(): nobody can wake this task (lost wake-up)"
        );
    }

    #[test]
    fn set_wakes_the_waiting_flag_exactly_once() {
        let (signal, mut flag) = flag();
        let (counter, waker) = counting_waker();
        assert_eq!(poll_with(&mut flag, &waker), Poll::Pending);
        assert_eq!(wakes(&counter), 0, "woken before set: a busy loop");
        signal.set();
        assert_eq!(wakes(&counter), 1, "set should wake the stored waker");
        signal.set();
        assert_eq!(
            wakes(&counter),
            1,
            "a second set woke it again: take the waker out when waking it"
        );
        assert_eq!(poll_with(&mut flag, &waker), Poll::Ready(()));
        assert_eq!(wakes(&counter), 1);
    }

    #[test]
    fn a_repoll_with_a_new_waker_replaces_the_old_one() {
        let (signal, mut flag) = flag();
        let (old, old_waker) = counting_waker();
        let (new, new_waker) = counting_waker();
        assert_eq!(poll_with(&mut flag, &old_waker), Poll::Pending);
        assert_eq!(poll_with(&mut flag, &new_waker), Poll::Pending);
        signal.set();
        assert_eq!(
            wakes(&new),
            1,
            "the latest poll's waker must be the one woken"
        );
        assert_eq!(
            wakes(&old),
            0,
            "a stale waker from an earlier poll was woken"
        );
    }

    #[test]
    fn repolling_with_the_same_waker_still_wakes_once() {
        let (signal, mut flag) = flag();
        let (counter, waker) = counting_waker();
        for _ in 0..3 {
            assert_eq!(poll_with(&mut flag, &waker), Poll::Pending);
        }
        assert_eq!(wakes(&counter), 0);
        signal.set();
        assert_eq!(wakes(&counter), 1);
    }

    #[test]
    fn already_set_is_ready_on_the_first_poll_without_a_wake() {
        let (signal, flag) = flag();
        signal.set();
        let mut task = tokio_test::task::spawn(flag);
        assert_ready!(task.poll(), "the signal was already set");
        assert!(!task.is_woken());
    }

    #[test]
    fn set_from_another_thread_wakes_it() {
        let (signal, mut flag) = flag();
        let (counter, waker) = counting_waker();
        assert_eq!(poll_with(&mut flag, &waker), Poll::Pending);
        std::thread::spawn(move || signal.set()).join().unwrap();
        assert_eq!(wakes(&counter), 1);
        assert_eq!(poll_with(&mut flag, &waker), Poll::Ready(()));
    }

    #[tokio::test(start_paused = true)]
    async fn awaiting_task_finishes_when_another_task_sets_it() {
        let (signal, flag) = flag();
        let start = Instant::now();
        tokio::spawn(async move {
            // Yields, not a sleep: a busy-looping flag would keep the paused clock from
            // ever advancing, and this check would hang instead of failing.
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            signal.set();
        });
        // A lost wake-up leaves the runtime idle: the paused clock jumps to the timeout.
        timeout(Duration::from_secs(1), flag)
            .await
            .expect("the flag was set by another task but the awaiting task was never woken");
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the flag only finished when the timeout fired and polled it: set() did not wake it"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// After any number of polls with fresh wakers, `set` wakes the last one exactly once.
        #[test]
        fn only_the_latest_waker_is_woken(polls in 1usize..8, sets in 1usize..4) {
            let (signal, mut flag) = flag();
            let wakers: Vec<_> = (0..polls).map(|_| counting_waker()).collect();
            for (_, waker) in &wakers {
                prop_assert_eq!(poll_with(&mut flag, waker), Poll::Pending);
            }
            for _ in 0..sets {
                signal.set();
            }
            for (i, (counter, _)) in wakers.iter().enumerate() {
                prop_assert_eq!(wakes(counter), usize::from(i == polls - 1));
            }
            prop_assert_eq!(poll_with(&mut flag, &wakers[0].1), Poll::Ready(()));
        }
    }
}
