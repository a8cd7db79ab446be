//! # Events: a start signal with `watch` (and what `Notify` does and does not remember)
//!
//! Tasks often wait for something to *become true*: "the config is loaded", "the server is
//! listening", "go!". The waiting must be free (no polling), must release every waiter, and
//! must not miss a signal that came *before* a task started waiting — the classic lost
//! wake-up, which turns into a task that hangs forever, only sometimes.
//! (Python: `asyncio.Event` with `set()`, `is_set()` and `await event.wait()`.)
//!
//! `tokio::sync::Notify` wakes tasks but keeps almost no state: `notify_waiters()` wakes the
//! tasks waiting *right now* and forgets it ever happened; `notify_one()` stores a single
//! permit, so one late waiter gets through — but only one. Neither is a flag. A flag that
//! many tasks wait on is what `tokio::sync::watch` is for: the channel keeps the current
//! value, `Sender::send_replace` changes it and wakes every receiver, and
//! `Receiver::wait_for(|value| ...)` returns at once when the value already matches, or
//! sleeps until it does. (`Notify` is still the right tool for "wake a worker, there is new
//! work": a permit that is stored is exactly what a worker that is busy right now needs.)
//!
//! ## Your job
//! `Gate` is built on `Notify::notify_waiters`, and a task that calls `wait` after `open`
//! waits forever. Rebuild `Gate` so that `open` is remembered: every waiter, early or late,
//! goes through, and none of them polls.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/watch/index.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/watch/struct.Receiver.html#method.wait_for>
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Notify.html>

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// A one-way gate, closed at first and open for good once `open` is called.
// TODO: `notify_waiters` wakes the tasks waiting right now and forgets it ever happened,
// so a task that calls `wait` after `open` waits forever, and `is_open` has nothing to
// look at. Keep the gate's state in something that remembers it.
pub struct Gate {
    notify: Notify,
}

impl Gate {
    pub fn new() -> Self {
        Gate {
            notify: Notify::new(),
        }
    }

    /// Opens the gate and releases every task waiting on it, now and later.
    pub fn open(&self) {
        self.notify.notify_waiters();
    }

    pub fn is_open(&self) -> bool {
        false
    }

    /// Waits until the gate is open; returns at once if it already is.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let start = Arc::new(Gate::new());
    let runners: Vec<_> = (1..=3)
        .map(|runner| {
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                println!("runner {runner} on the line");
                start.wait().await;
                println!("runner {runner} off!");
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("ready... set... go!");
    start.open();
    for runner in runners {
        runner.await.expect("a runner panicked");
    }
    // Opening is remembered: a latecomer goes straight through.
    start.wait().await;
    println!(
        "the latecomer went straight through: is_open = {}",
        start.is_open()
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/01_basics/notify_events.toml`
    // (`notify_waiters` with no state, `notify_one`, a flag polled with `sleep` or `yield_now`,
    // watch's `send` with nobody subscribed, a late `changed()`, an `is_open` that lies, and a
    // flag checked *before* the `Notified` is created, so that an `open` in between is missed).
    //
    // That last race sits between two adjacent statements of the learner's code, on std
    // atomics and tokio's `Notify`: loom explores only code written against loom's own types
    // (and cannot model tokio's `Notify`), and no check can stop the learner's code between
    // those two statements to run `open` there. So `open_on_another_thread_releases_the_waiter`
    // races `open` against the first poll on two threads tens of thousands of times, shifting
    // one against the other by a few nanoseconds each round so that `open` sweeps across the
    // waiter's first poll, and asserts only what every correct gate guarantees whatever the
    // interleaving: once `open` has returned, a waiter that is not ready has been woken, and
    // is ready when polled again. A correct solution can never fail it; the racy one is caught
    // when the two threads meet in that window, which the sweep makes happen in every run on
    // an idle machine, but only by chance on a loaded one (so it is no corpus entry). The
    // header steers to `watch`, whose `wait_for` has no such window.
    use super::*;
    use tokio::time::{Instant, advance};
    use tokio_test::task::spawn;
    use tokio_test::{assert_pending, assert_ready};

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_comes_after_open_goes_straight_through() {
        let gate = Gate::new();
        gate.open();
        let mut late = spawn(gate.wait());
        assert_ready!(
            late.poll(),
            "the gate was opened before this task waited: it must not wait (a lost wake-up)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_gate_keeps_its_waiter_asleep() {
        let gate = Gate::new();
        let mut waiter = spawn(gate.wait());
        assert_pending!(waiter.poll(), "the gate is closed: the waiter must wait");
        advance(Duration::from_secs(60)).await;
        assert!(
            !waiter.is_woken(),
            "the waiter woke up although nobody opened the gate: is it polling with a sleep?"
        );
        assert_pending!(waiter.poll());
    }

    #[tokio::test(start_paused = true)]
    async fn open_wakes_every_waiter() {
        let gate = Gate::new();
        let mut waiters: Vec<_> = (0..5).map(|_| spawn(gate.wait())).collect();
        for waiter in &mut waiters {
            assert_pending!(waiter.poll());
        }
        gate.open();
        for (i, waiter) in waiters.iter_mut().enumerate() {
            assert!(
                waiter.is_woken(),
                "waiter {i} was not woken by `open`: one signal must release every waiter"
            );
            assert_ready!(waiter.poll(), "waiter {i} is still waiting after `open`");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_stays_open() {
        let gate = Gate::new();
        assert!(!gate.is_open(), "a new gate is closed");
        gate.open();
        assert!(gate.is_open(), "`is_open` should be true after `open`");
        for _ in 0..3 {
            assert_ready!(
                spawn(gate.wait()).poll(),
                "an open gate lets every waiter through"
            );
        }
        gate.open(); // opening twice is harmless
        assert!(gate.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn every_task_starts_the_moment_the_gate_opens() {
        let gate = Arc::new(Gate::new());
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let gate = Arc::clone(&gate);
                tokio::spawn(async move {
                    gate.wait().await;
                    start.elapsed()
                })
            })
            .collect();
        // `advance`, not `sleep`: a busy-waiting gate keeps the runtime busy, so the paused
        // clock would never move on its own.
        advance(Duration::from_millis(105)).await;
        gate.open();
        let late = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                gate.wait().await;
                start.elapsed()
            })
        };
        for task in tasks.into_iter().chain([late]) {
            let released_at = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("a task was never released by `open`")
                .expect("a task panicked");
            assert_eq!(
                released_at,
                Duration::from_millis(105),
                "every task should go the very moment the gate opens"
            );
        }
    }

    /// Burns about `n` loop turns: shifts one thread's step against the other's by a few
    /// nanoseconds at a time.
    fn delay(n: usize) {
        for i in 0..n {
            std::hint::black_box(i);
        }
    }

    /// Spins until `counter` reaches `value`, letting other threads run now and then (the
    /// machine may have fewer free cores than the check has threads).
    fn spin_until(counter: &std::sync::atomic::AtomicUsize, value: usize) {
        let mut spins = 0u32;
        while counter.load(std::sync::atomic::Ordering::SeqCst) < value {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    #[test]
    fn open_on_another_thread_releases_the_waiter() {
        use std::panic::AssertUnwindSafe;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        // In each round a fresh gate's waiter is polled for the first time on this thread
        // while another thread opens the gate, the two released together by spinning (a
        // `Barrier` puts the threads to sleep and they wake microseconds apart, too far apart
        // to ever meet in a window of a few nanoseconds). Each round shifts one thread
        // against the other by a few loop turns, sweeping `open` across the waiter's first
        // poll. Tens of thousands of rounds take a few hundred milliseconds at most.
        const ROUNDS: usize = 60_000;
        const BATCH: usize = 4_096;
        const BUDGET: std::time::Duration = std::time::Duration::from_millis(400);
        // Shift of round `r`: the waiter starts 0..64 turns late, or `open` 1..16 turns late.
        let shift = |round: usize| match round % 80 {
            late_waiter @ 0..64 => (late_waiter, 0),
            late_open => (0, late_open - 63),
        };
        // A runtime to be inside of, for gates that use tokio's timers.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime");
        let _inside = runtime.enter();
        let began = std::time::Instant::now();
        // Every round of a batch runs to the end (a panic here would leave the other thread
        // spinning); the first failure is reported after both threads are done.
        let mut failure = None;
        let mut round = 0;
        while round < ROUNDS && failure.is_none() && began.elapsed() < BUDGET {
            let first_round = round;
            let gates: Vec<Gate> = (0..BATCH.min(ROUNDS - round))
                .map(|_| Gate::new())
                .collect();
            // Round `i` of the batch starts when `go` reaches `i + 1`, and `open` has returned
            // when `opened` does; `quit` ends the batch early.
            let (go, opened, quit) = (
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicBool::new(false),
            );
            std::thread::scope(|threads| {
                threads.spawn(|| {
                    for (i, gate) in gates.iter().enumerate() {
                        spin_until(&go, i + 1);
                        if quit.load(SeqCst) {
                            return;
                        }
                        delay(shift(first_round + i).1);
                        gate.open();
                        opened.store(i + 1, SeqCst);
                    }
                });
                for (i, gate) in gates.iter().enumerate() {
                    if failure.is_some() || began.elapsed() >= BUDGET {
                        quit.store(true, SeqCst);
                        go.store(usize::MAX, SeqCst);
                        return;
                    }
                    round = first_round + i + 1;
                    let mut waiter = spawn(gate.wait());
                    go.store(i + 1, SeqCst);
                    delay(shift(first_round + i).0);
                    // Races with `open` on the other thread.
                    let first = std::panic::catch_unwind(AssertUnwindSafe(|| waiter.poll()));
                    spin_until(&opened, i + 1);
                    let Ok(first) = first else {
                        failure = Some(format!("round {round}: `wait` panicked"));
                        continue;
                    };
                    if first.is_pending() {
                        if !waiter.is_woken() {
                            failure = Some(format!(
                                "round {round}: `open` ran on another thread while the waiter \
                                 was getting ready to wait, and the waiter was never woken (a \
                                 lost wake-up: is the flag checked before the waiter is \
                                 registered?)"
                            ));
                        } else if waiter.poll().is_pending() {
                            failure =
                                Some(format!("round {round}: woken by `open`, but still waiting"));
                        }
                    }
                }
            });
        }
        if let Some(failure) = failure {
            panic!("{failure}");
        }
    }
}
