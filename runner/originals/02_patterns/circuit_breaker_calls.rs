//! # A circuit breaker, step 2: around real async calls
//!
//! Step 1 built the breaker's state machine. Now it guards a backend: `Guarded::call` asks
//! the breaker, makes the call if allowed, and reports how it went. Three things make this
//! harder than it looks:
//!
//! - **Fail fast.** A rejected call returns `CallError::Rejected` at once: it never touches
//!   the backend and never waits.
//! - **Never hold the lock across `.await`.** The breaker sits behind a `std::sync::Mutex`:
//!   lock, decide, unlock, *then* await the backend, then lock again to report. Calls while
//!   closed must run concurrently, not one after another behind the lock.
//! - **Cancellation is an outcome.** A caller may drop the future mid-call (a timeout, a
//!   `select!`). If that call was the half-open trial and nobody reports it, the breaker
//!   stays half-open and rejects everyone, forever. Report from a guard's `Drop`: a call
//!   that never finished counts as a failure.
//!
//! Only one trial runs in half-open even when many tasks call at once, because deciding and
//! switching to half-open happen in `try_call`, under one lock.
//! (Python: `aiobreaker`'s `@breaker` decorator on an `async def`; cancellation arrives as
//! `CancelledError`, caught with `try/finally`.)
//!
//! ## Your job
//! Write `Guarded::call`.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Mutex.html#which-kind-of-mutex-should-you-use>
//! - <https://doc.rust-lang.org/std/ops/trait.Drop.html>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout.html> (one way a call gets dropped)
//! - A real service would use a library (`failsafe`) or a `tower` layer; the shape is the same.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through; the last `failures` calls failed in a row.
    Closed { failures: u32 },
    /// Calls are rejected until `until`.
    Open { until: Instant },
    /// The cool-down is over and the one trial call is out; other calls are rejected.
    HalfOpen,
}

/// A call the breaker refused to let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_down: Duration,
    state: State,
}

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` failures in a row (`threshold >= 1`)
    /// and stays open for `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        assert!(threshold > 0, "a threshold of 0 would open before any call");
        CircuitBreaker {
            threshold,
            cool_down,
            state: State::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Asks to make a call now. `Ok(())` means: make it, then report how it went with
    /// `record_success` or `record_failure`.
    pub fn try_call(&mut self) -> Result<(), Rejected> {
        match self.state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if Instant::now() >= until => {
                // This caller becomes the trial; everyone after it is rejected.
                self.state = State::HalfOpen;
                Ok(())
            }
            State::Open { .. } | State::HalfOpen => Err(Rejected),
        }
    }

    /// The call let through by `try_call` succeeded.
    pub fn record_success(&mut self) {
        match self.state {
            State::Closed { .. } | State::HalfOpen => self.state = State::Closed { failures: 0 },
            State::Open { .. } => {}
        }
    }

    /// The call let through by `try_call` failed.
    pub fn record_failure(&mut self) {
        match self.state {
            State::Closed { failures } if failures + 1 < self.threshold => {
                self.state = State::Closed {
                    failures: failures + 1,
                };
            }
            State::Closed { .. } | State::HalfOpen => self.open(),
            State::Open { .. } => {}
        }
    }

    fn open(&mut self) {
        self.state = State::Open {
            until: Instant::now() + self.cool_down,
        };
    }
}

/// Why a guarded call did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker is open (or half-open with its trial out): the backend was not called.
    Rejected,
    /// The backend was called and failed.
    Failed(E),
}

/// A backend guarded by a circuit breaker. Share it between tasks with an `Arc`.
#[derive(Debug)]
pub struct Guarded {
    breaker: Mutex<CircuitBreaker>,
}

impl Guarded {
    pub fn new(breaker: CircuitBreaker) -> Self {
        Guarded {
            breaker: Mutex::new(breaker),
        }
    }

    pub fn state(&self) -> State {
        self.lock().state()
    }

    fn lock(&self) -> MutexGuard<'_, CircuitBreaker> {
        // The breaker's state is valid after any panic: its methods never panic halfway.
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the call `request()` if the breaker lets it through, and tells the breaker how
    /// it went (a call dropped before it finished counts as a failure).
    pub async fn call<T, E, F>(&self, request: impl FnOnce() -> F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        // TODO: ask the breaker (`try_call`) and return `CallError::Rejected` at once if it
        // says no. Release the lock, await `request()`, then report the outcome to the
        // breaker, also when this future is dropped before the backend answers.
        todo!()
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let start = Instant::now();
    let guarded = Guarded::new(CircuitBreaker::new(2, Duration::from_secs(5)));
    let flaky = |at: Duration| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if at >= Duration::from_secs(9) {
            Ok("200 OK")
        } else {
            Err("503")
        }
    };
    for _ in 0..8 {
        let at = start.elapsed();
        let result = guarded.call(|| flaky(at)).await;
        println!(
            "{:>5} ms  {result:?}, now {:?}",
            at.as_millis(),
            guarded.state()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/circuit_breaker_calls.toml tries each):
    // - a breaker that never calls the backend, or calls it even when open;
    // - the lock held across the backend call (calls while closed run one at a time);
    // - reading `state()` and deciding by hand instead of `try_call` (half-open lets every
    //   concurrent caller through);
    // - outcomes not reported, or reported the wrong way round;
    // - a dropped call never reported: the breaker stays half-open and rejects forever.
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use timeline::Timeline;
    use tokio::time::{advance, sleep, timeout};

    const COOL_DOWN: Duration = Duration::from_millis(1_000);
    const CALL: Duration = Duration::from_millis(100);

    /// A pretend backend: each request takes `CALL` and answers as told. It counts the
    /// requests it really served and draws them on a timeline.
    #[derive(Clone, Default)]
    struct Backend {
        calls: Arc<AtomicUsize>,
        timeline: Timeline,
    }

    impl Backend {
        async fn request(&self, ok: bool) -> Result<u32, &'static str> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let _span = self.timeline.span(format!("backend call {n}"));
            sleep(CALL).await;
            if ok { Ok(200) } else { Err("503") }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn guarded(threshold: u32) -> Arc<Guarded> {
        Arc::new(Guarded::new(CircuitBreaker::new(threshold, COOL_DOWN)))
    }

    async fn open(guarded: &Guarded, backend: &Backend, threshold: u32) {
        for _ in 0..threshold {
            let result = guarded.call(|| backend.request(false)).await;
            assert_eq!(
                result,
                Err(CallError::Failed("503")),
                "a closed breaker calls the backend"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_breaker_calls_the_backend_and_returns_its_answer() {
        let (guarded, backend) = (guarded(3), Backend::default());
        assert_eq!(guarded.call(|| backend.request(true)).await, Ok(200));
        assert_eq!(
            guarded.call(|| backend.request(false)).await,
            Err(CallError::Failed("503"))
        );
        assert_eq!(backend.calls(), 2, "both calls must reach the backend");
        assert_eq!(
            guarded.state(),
            State::Closed { failures: 1 },
            "the failure was not reported"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calls_while_closed_run_concurrently() {
        let (guarded, backend) = (guarded(3), Backend::default());
        let start = Instant::now();
        let calls = (0..4).map(|_| guarded.call(|| backend.request(true)));
        let results = futures::future::join_all(calls).await;
        assert!(results.iter().all(|r| *r == Ok(200)));
        assert!(
            start.elapsed() == CALL && backend.timeline.peak_in_flight() == 4,
            "4 calls at once should overlap and take 100 ms in all, not {:?}: is the lock \
             held while the backend answers?\n{}",
            start.elapsed(),
            backend.timeline.picture("4 calls at once, 100 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_fails_fast_without_calling_the_backend() {
        let (guarded, backend) = (guarded(2), Backend::default());
        open(&guarded, &backend, 2).await;
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(
                guarded.call(|| backend.request(true)).await,
                Err(CallError::Rejected),
                "2 failures in a row (threshold 2) open the breaker: calls are rejected"
            );
        }
        assert_eq!(
            backend.calls(),
            2,
            "an open breaker must not call the backend"
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "a rejection must not wait");
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_one_trial_through_even_under_concurrency() {
        let (guarded, backend) = (guarded(1), Backend::default());
        open(&guarded, &backend, 1).await;
        advance(COOL_DOWN).await;
        let calls = (0..5).map(|_| {
            let (guarded, backend) = (Arc::clone(&guarded), backend.clone());
            tokio::spawn(async move { guarded.call(|| backend.request(true)).await })
        });
        let results: Vec<_> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|joined| joined.expect("a call panicked"))
            .collect();
        let through = results.iter().filter(|r| **r == Ok(200)).count();
        assert!(
            through == 1 && backend.calls() == 2,
            "after the cool-down, 5 tasks call at once: exactly one (the trial) may reach \
             the backend, the others are rejected; got {results:?}\n{}",
            backend.timeline.picture("one trial call")
        );
        assert_eq!(
            guarded.state(),
            State::Closed { failures: 0 },
            "a good trial closes it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_opens_the_breaker_again() {
        let (guarded, backend) = (guarded(1), Backend::default());
        open(&guarded, &backend, 1).await;
        advance(COOL_DOWN).await;
        let trial = guarded.call(|| backend.request(false)).await;
        assert_eq!(trial, Err(CallError::Failed("503")));
        assert_eq!(
            guarded.call(|| backend.request(true)).await,
            Err(CallError::Rejected),
            "after a failed trial the breaker is open again"
        );
        assert_eq!(backend.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trial_counts_as_a_failure() {
        let (guarded, backend) = (guarded(1), Backend::default());
        open(&guarded, &backend, 1).await;
        advance(COOL_DOWN).await;
        let gave_up = timeout(CALL / 2, guarded.call(|| backend.request(true))).await;
        assert!(
            gave_up.is_err(),
            "the caller gives up on the trial after 50 ms"
        );
        assert!(
            matches!(guarded.state(), State::Open { .. }),
            "the trial was dropped before it answered: report it as a failure, or the \
             breaker stays half-open for ever; the state is {:?}",
            guarded.state()
        );
        advance(COOL_DOWN).await;
        assert_eq!(
            guarded.call(|| backend.request(true)).await,
            Ok(200),
            "one cool-down after the dropped trial, a new trial goes through"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Calls one after another, with any outcomes and gaps: the backend sees exactly the
        /// calls the breaker's own state machine lets through, and each caller gets the
        /// backend's answer or `Rejected`.
        #[test]
        fn the_backend_sees_exactly_the_calls_the_breaker_allows(
            threshold in 1u32..4,
            calls in prop::collection::vec((any::<bool>(), 0u64..1_500), 1..40),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async {
                let (guarded, backend) = (guarded(threshold), Backend::default());
                let mut model = CircuitBreaker::new(threshold, COOL_DOWN);
                let mut expected_calls = 0;
                for (i, &(ok, gap_ms)) in calls.iter().enumerate() {
                    advance(Duration::from_millis(gap_ms)).await;
                    let allowed = model.try_call().is_ok();
                    let got = guarded.call(|| backend.request(ok)).await;
                    let expected = match (allowed, ok) {
                        (false, _) => Err(CallError::Rejected),
                        (true, true) => Ok(200),
                        (true, false) => Err(CallError::Failed("503")),
                    };
                    prop_assert_eq!(&got, &expected, "call {}", i);
                    if allowed {
                        expected_calls += 1;
                        if ok { model.record_success() } else { model.record_failure() }
                    }
                    prop_assert_eq!(backend.calls(), expected_calls, "backend calls after call {}", i);
                    prop_assert_eq!(guarded.state(), model.state(), "state after call {}", i);
                }
                Ok(())
            })?;
        }
    }
}
