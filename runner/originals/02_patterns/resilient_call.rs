//! # A resilient call: timeout, retry and circuit breaker, composed
//!
//! Each of the three guards against one failure; together they only work in the right
//! order, from the outside in:
//!
//! 1. **retry** — a few attempts, with a growing pause between them (`backoff`, doubled
//!    after each failure);
//! 2. **circuit breaker** — around *each attempt*, so it sees every failure, and a retry
//!    loop asks it before each attempt: once it opens, retrying stops at once (the whole
//!    point of a breaker is to stop hammering a backend that is down);
//! 3. **timeout** — around *each attempt*, so that one hung attempt costs `attempt_timeout`
//!    and the next attempt still gets its own chance. A timed-out attempt is a failure for
//!    the breaker and for the retry loop alike.
//!
//! The usual mistakes are order mistakes: one timeout around all the retries (the first hung
//! attempt eats the whole budget), or a breaker around the retry loop (it sees one failure
//! where the backend saw five, and retries go on while it should be open).
//!
//! The breaker is the one from the two previous exercises, given here in full.
//! (Python: `tenacity`'s `@retry(stop=stop_after_attempt(n), wait=wait_exponential())` over
//! an `asyncio.wait_for(...)`, inside an `aiobreaker` breaker.)
//!
//! ## Your job
//! Write `resilient_call`.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout.html>
//! - <https://learn.microsoft.com/en-us/azure/architecture/patterns/retry>
//! - A real service would compose library layers: `tower`'s `Retry`, `Timeout` and a breaker
//!   layer, or `backon`/`tokio-retry` for the loop. The next exercise does it with `tower`.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

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

    pub fn is_open(&self) -> bool {
        matches!(self.state(), State::Open { .. })
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
        self.lock()
            .try_call()
            .map_err(|Rejected| CallError::Rejected)?;
        // The lock is released: other calls go on while this one awaits the backend.
        let mut outcome = Outcome {
            guarded: self,
            succeeded: false,
        };
        let result = request().await;
        outcome.succeeded = result.is_ok();
        result.map_err(CallError::Failed)
    }
}

/// Reports one call to the breaker when dropped: when the call finished, or when the caller
/// gave up on it (then it counts as a failure).
struct Outcome<'a> {
    guarded: &'a Guarded,
    succeeded: bool,
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        let mut breaker = self.guarded.lock();
        if self.succeeded {
            breaker.record_success();
        } else {
            breaker.record_failure();
        }
    }
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts in all, the first one included (`>= 1`).
    pub attempts: u32,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// The pause after the first failed attempt; it doubles after each failure.
    pub backoff: Duration,
}

/// Why a resilient call gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<E> {
    /// The breaker was open: the backend was not called.
    Rejected,
    /// The last attempt took longer than `attempt_timeout`.
    TimedOut,
    /// The last attempt failed.
    Failed(E),
}

/// Calls `attempt()` up to `policy.attempts` times, each attempt through the breaker and
/// under its own timeout, pausing `backoff`, `2 * backoff`, ... between attempts. Stops at
/// the first success, or as soon as the breaker is open.
pub async fn resilient_call<T, E, F, Fut>(
    guarded: &Guarded,
    policy: Policy,
    mut attempt: F,
) -> Result<T, Failure<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    // TODO: up to `policy.attempts` attempts. Each one goes through `guarded.call`, and
    // inside it, `attempt()` runs under its own `timeout` (a timeout is a failure too).
    // Between attempts pause `backoff`, then twice as long each time; stop at the first
    // success, after the last attempt, or as soon as the breaker is open.
    todo!()
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let start = Instant::now();
    let guarded = Guarded::new(CircuitBreaker::new(4, Duration::from_secs(10)));
    let policy = Policy {
        attempts: 3,
        attempt_timeout: Duration::from_millis(200),
        backoff: Duration::from_millis(100),
    };
    let mut calls = 0;
    let flaky = || {
        calls += 1;
        let n = calls;
        async move {
            // Hangs twice, then fails, then answers.
            let hangs = n <= 2;
            sleep(Duration::from_millis(if hangs { 60_000 } else { 50 })).await;
            if n == 3 {
                Err("503")
            } else {
                Ok(format!("answered on call {n}"))
            }
        }
    };
    let result = resilient_call(&guarded, policy, flaky).await;
    println!(
        "{result:?} after {:?}; breaker {:?}",
        start.elapsed(),
        guarded.state()
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/resilient_call.toml tries each):
    // - one timeout around all the attempts instead of one per attempt;
    // - the breaker around the retry loop (it sees one failure per call, not per attempt);
    // - retrying on after the breaker opened (or sleeping before giving up);
    // - no backoff, or a backoff that does not double;
    // - one attempt too many or too few;
    // - calling the backend while the breaker is open.
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use timeline::Timeline;

    const LATENCY: Duration = Duration::from_millis(50);
    const POLICY: Policy = Policy {
        attempts: 4,
        attempt_timeout: Duration::from_millis(200),
        backoff: Duration::from_millis(100),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Answer {
        Ok,
        Fail,
        Hang,
    }

    /// A pretend backend that gives the scripted answers in turn (then keeps failing), each
    /// after 50 ms (a hang never ends), and draws every attempt on the timeline.
    #[derive(Clone)]
    struct Backend {
        script: Arc<Mutex<VecDeque<Answer>>>,
        timeline: Timeline,
    }

    impl Backend {
        fn new(script: &[Answer]) -> Self {
            Backend {
                script: Arc::new(Mutex::new(script.iter().copied().collect())),
                timeline: Timeline::new(),
            }
        }

        async fn request(&self) -> Result<&'static str, &'static str> {
            let answer = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Answer::Fail);
            let _span = self.timeline.span(format!("attempt {}", self.calls() + 1));
            match answer {
                Answer::Ok => {
                    sleep(LATENCY).await;
                    Ok("200")
                }
                Answer::Fail => {
                    sleep(LATENCY).await;
                    Err("503")
                }
                Answer::Hang => std::future::pending().await,
            }
        }

        fn calls(&self) -> usize {
            self.timeline.events().len()
        }

        /// When each attempt started.
        fn starts(&self) -> Vec<Duration> {
            self.timeline
                .events()
                .iter()
                .map(|event| event.start)
                .collect()
        }
    }

    fn guarded(threshold: u32) -> Guarded {
        Guarded::new(CircuitBreaker::new(threshold, Duration::from_secs(60)))
    }

    async fn run(
        guarded: &Guarded,
        backend: &Backend,
        policy: Policy,
    ) -> (Result<&'static str, Failure<&'static str>>, Duration) {
        let start = Instant::now();
        let result = resilient_call(guarded, policy, || backend.request()).await;
        (result, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_success_is_returned_at_once() {
        let backend = Backend::new(&[Answer::Ok]);
        let result = run(&guarded(3), &backend, POLICY).await;
        assert_eq!(result, (Ok("200"), LATENCY));
        assert_eq!(backend.calls(), 1, "one attempt was enough");
    }

    #[tokio::test(start_paused = true)]
    async fn each_attempt_has_its_own_timeout_and_the_pause_doubles() {
        let backend = Backend::new(&[Answer::Hang, Answer::Fail, Answer::Hang, Answer::Ok]);
        let (result, elapsed) = run(&guarded(10), &backend, POLICY).await;
        let expected = [0, 300, 550, 1_150].map(ms).to_vec();
        assert_eq!(
            backend.starts(),
            expected,
            "hang (timed out at 200) + 100 pause, fail (at 350) + 200 pause, hang (timed \
             out at 750) + 400 pause: attempts start at 0, 300, 550 and 1150 ms\n{}",
            backend.timeline.picture("attempts at 0, 300, 550, 1150 ms")
        );
        assert_eq!((result, elapsed), (Ok("200"), ms(1_200)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_failure_is_returned_after_the_last_attempt() {
        let backend = Backend::new(&[Answer::Fail, Answer::Fail, Answer::Fail, Answer::Hang]);
        let (result, elapsed) = run(&guarded(10), &backend, POLICY).await;
        assert_eq!(backend.calls(), 4, "4 attempts, no more, no less");
        assert_eq!(
            (result, elapsed),
            (
                Err(Failure::TimedOut),
                ms(50 + 100 + 50 + 200 + 50 + 400 + 200)
            ),
            "the 4th attempt timed out: report that, with no pause after the last attempt"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_sees_every_attempt_and_retries_stop_when_it_opens() {
        let backend = Backend::new(&[Answer::Fail, Answer::Hang, Answer::Fail]);
        let guarded = guarded(3);
        let (result, elapsed) = run(&guarded, &backend, POLICY).await;
        assert!(
            backend.calls() == 3 && guarded.is_open(),
            "3 failed attempts in a row open a breaker with threshold 3: the breaker must see \
             each attempt (timeouts too), and the 4th attempt must not reach the backend; \
             {} attempts, breaker {:?}\n{}",
            backend.calls(),
            guarded.state(),
            backend.timeline.picture("3 attempts, then stop")
        );
        assert_eq!(
            (result, elapsed),
            (Err(Failure::Failed("503")), ms(50 + 100 + 200 + 200 + 50)),
            "once the breaker is open, give up at once with the last failure (no pause)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_rejects_without_calling_or_waiting() {
        let backend = Backend::new(&[Answer::Fail, Answer::Ok]);
        let guarded = guarded(1);
        let (first, _) = run(&guarded, &backend, POLICY).await;
        assert_eq!(
            first,
            Err(Failure::Failed("503")),
            "the first call fails and opens it"
        );
        let (result, elapsed) = run(&guarded, &backend, POLICY).await;
        assert_eq!((result, elapsed), (Err(Failure::Rejected), Duration::ZERO));
        assert_eq!(
            backend.calls(),
            1,
            "an open breaker lets no attempt through"
        );
    }

    fn answer() -> impl Strategy<Value = Answer> {
        prop_oneof![Just(Answer::Ok), Just(Answer::Fail), Just(Answer::Hang)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any answers, threshold and attempts: the attempts start when the policy says,
        /// and the result is the one the composition gives.
        #[test]
        fn attempts_follow_the_policy_and_the_breaker(
            script in prop::collection::vec(answer(), 0..6),
            threshold in 1u32..6,
            attempts in 1u32..6,
        ) {
            let policy = Policy { attempts, ..POLICY };
            // The model: one attempt after another, a breaker counting failures in a row.
            let (mut now, mut pause, mut in_a_row) = (0u64, 100u64, 0u32);
            let mut starts = Vec::new();
            let mut expected = Err(Failure::Failed("503"));
            for n in 0..attempts {
                starts.push(ms(now));
                let answer = script.get(n as usize).copied().unwrap_or(Answer::Fail);
                match answer {
                    Answer::Ok => { now += 50; expected = Ok("200"); break; }
                    Answer::Fail => { now += 50; expected = Err(Failure::Failed("503")); }
                    Answer::Hang => { now += 200; expected = Err(Failure::TimedOut); }
                }
                in_a_row += 1;
                if in_a_row == threshold || n + 1 == attempts {
                    break;
                }
                now += pause;
                pause *= 2;
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let (got, backend) = runtime.block_on(async {
                let backend = Backend::new(&script);
                let got = run(&guarded(threshold), &backend, policy).await;
                (got, backend)
            });
            prop_assert_eq!(&backend.starts(), &starts, "when the attempts started");
            prop_assert_eq!(got, (expected, ms(now)));
        }
    }
}
