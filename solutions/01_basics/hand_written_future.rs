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
    // What these checks reject: the wrong solutions of `corpus/01_basics/hand_written_future.toml`
    // (a waker not kept, a busy loop, only the first waker kept, a waker woken twice, a flag
    // that waits although set, and two races: `set` slipping in between `poll`'s check and the
    // storing of the waker, and a task re-polled between `set`'s wake and its marking the
    // signal set).
    //
    // Why not loom: loom explores only code written against its own `Mutex`, atomics and
    // wakers, and the learner writes against `std`'s (switching the imports under `cfg(loom)`
    // would put that switch in the code the learner reads). The two races are forced instead,
    // deterministically in the order of events, with a waker the checks write themselves: the
    // learner's code calls it exactly inside the race window (a `poll` clones the waker it is
    // about to store; a `set` wakes it). Its hook then runs the other side on another thread
    // and gives it a bounded time (100 ms) to finish. A correct solution that holds its lock
    // there just makes the other side wait for the lock, and the outcome is correct whatever
    // the timing; a racy one loses the wake-up unless that thread was not scheduled within
    // 100 ms, which on a loaded machine can only let a wrong solution through, never fail a
    // right one.
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
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

    /// What a hooked waker does the first time it is cloned or woken.
    type Hook = Box<dyn FnOnce() + Send>;

    /// A waker that counts its wakes and runs a hook on another thread the first time it is
    /// cloned (`on_clone`) or woken (`on_wake`), waiting up to 100 ms for that thread.
    #[derive(Default)]
    struct Hooked {
        wakes: AtomicUsize,
        on_clone: Mutex<Option<Hook>>,
        on_wake: Mutex<Option<Hook>>,
        helper: Mutex<Option<std::thread::JoinHandle<()>>>,
    }

    impl Hooked {
        fn run(&self, hook: &Mutex<Option<Hook>>) {
            let Some(hook) = hook.lock().unwrap().take() else {
                return;
            };
            let (done, finished) = std::sync::mpsc::channel();
            let helper = std::thread::spawn(move || {
                hook();
                let _ = done.send(());
            });
            let _ = finished.recv_timeout(Duration::from_millis(100));
            *self.helper.lock().unwrap() = Some(helper);
        }

        /// Waits for the hook's thread, if it ran.
        fn join(&self) {
            if let Some(helper) = self.helper.lock().unwrap().take() {
                helper.join().expect("the other side panicked");
            }
        }
    }

    fn hooked_waker(hooked: Arc<Hooked>) -> Waker {
        use std::task::{RawWaker, RawWakerVTable};
        unsafe fn clone(data: *const ()) -> RawWaker {
            // SAFETY: `data` comes from `Arc::into_raw` of a live `Arc<Hooked>`.
            let hooked = unsafe {
                Arc::increment_strong_count(data.cast::<Hooked>());
                &*data.cast::<Hooked>()
            };
            hooked.run(&hooked.on_clone);
            RawWaker::new(data, &VTABLE)
        }
        unsafe fn wake_by_ref(data: *const ()) {
            // SAFETY: as above.
            let hooked = unsafe { &*data.cast::<Hooked>() };
            hooked.run(&hooked.on_wake);
            hooked.wakes.fetch_add(1, Ordering::SeqCst);
        }
        unsafe fn wake(data: *const ()) {
            // SAFETY: `wake` consumes the waker: one strong count is released.
            unsafe {
                wake_by_ref(data);
                drop_waker(data);
            }
        }
        unsafe fn drop_waker(data: *const ()) {
            // SAFETY: every `RawWaker` of this vtable owns one strong count.
            unsafe { Arc::decrement_strong_count(data.cast::<Hooked>()) };
        }
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);
        let data = Arc::into_raw(hooked).cast::<()>();
        // SAFETY: the vtable's functions keep the `Arc` counts balanced.
        unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
    }

    #[test]
    fn a_set_while_poll_stores_its_waker_is_not_lost() {
        // The hook runs `set` on another thread at the moment `poll` clones the waker: after
        // its check of the signal, before its Pending.
        let (signal, mut flag) = flag();
        let hooked = Arc::new(Hooked::default());
        *hooked.on_clone.lock().unwrap() = Some(Box::new(move || signal.set()));
        let waker = hooked_waker(hooked.clone());
        let first = poll_with(&mut flag, &waker);
        hooked.join();
        assert!(
            first.is_ready() || hooked.wakes.load(Ordering::SeqCst) == 1,
            "`set` ran on another thread while `poll` was storing the waker, and the task was \
             never woken: check the signal and store the waker under one lock, so that `set` \
             cannot slip in between"
        );
        assert_eq!(poll_with(&mut flag, &waker), Poll::Ready(()));
    }

    #[test]
    fn a_task_polled_as_soon_as_it_is_woken_sees_the_signal_set() {
        // The hook polls the flag on another thread as soon as `set` wakes it, as a runtime
        // with several threads may do.
        let (signal, flag) = flag();
        let flag = Arc::new(Mutex::new(flag));
        let (counter, plain) = counting_waker();
        let repoll = Arc::new(Mutex::new(None));
        let hooked = Arc::new(Hooked::default());
        *hooked.on_wake.lock().unwrap() = Some(Box::new({
            let (flag, repoll) = (flag.clone(), repoll.clone());
            move || *repoll.lock().unwrap() = Some(poll_with(&mut flag.lock().unwrap(), &plain))
        }));
        let waker = hooked_waker(hooked.clone());
        assert_eq!(poll_with(&mut flag.lock().unwrap(), &waker), Poll::Pending);
        drop(waker);
        signal.set();
        hooked.join();
        let repoll = repoll.lock().unwrap().take();
        assert_eq!(
            hooked.wakes.load(Ordering::SeqCst),
            1,
            "set should wake the stored waker"
        );
        assert!(
            repoll == Some(Poll::Ready(())) || wakes(&counter) == 1,
            "the task was polled again as soon as `set` woke it, found the signal not yet set, \
             and was never woken again: mark the signal set before waking"
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
