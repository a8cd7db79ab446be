//! # Retry with exponential backoff and jitter
//!
//! Networks drop packets, replicas restart, a database fails over: many errors are gone a
//! moment later, so a client retries. Retrying at once hammers a service that is already in
//! trouble, so each wait doubles: `base`, `2·base`, `4·base`... And when a thousand clients
//! failed at the same instant, doubling alone makes them retry at the same instants again:
//! *jitter* shortens each wait by a random fraction (up to `jitter`, e.g. 0.5) so that they
//! spread out. Two limits keep a retry loop from turning a short outage into a long one: a
//! cap on attempts, and a time budget after which the caller gets the error rather than one
//! more wait. And only *retryable* errors are retried: a "503 unavailable" may pass next
//! time, a "400 bad request" never will.
//! (Python: the `tenacity` or `backoff` decorators, `@retry(wait=wait_random_exponential(...))`.)
//!
//! `retry` takes the operation as an async closure, `impl AsyncFnMut() -> Result<T, E>`:
//! calling it builds a fresh future for each attempt (a future runs once), and the closure
//! may borrow from its caller. The random numbers come from an `Rng` the caller passes in:
//! `fastrand::Rng::new()` in a service, `Rng::with_seed(..)` in a test, which then knows
//! every delay in advance.
//!
//! ## Your job
//! Write `Backoff::delay` (the wait before retry `n`, in whole milliseconds) and `retry`:
//! call the operation; on success or a non-retryable error return at once; otherwise wait
//! `delay` and call again, at most `max_attempts` calls, and never start a wait that would
//! end more than `budget` after the first call started.
//!
//! ## Read
//! - <https://docs.rs/fastrand/latest/fastrand/struct.Rng.html>
//! - <https://doc.rust-lang.org/std/ops/trait.AsyncFnMut.html>
//! - <https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/>
//! - A real service uses <https://docs.rs/backon/latest/backon/> or tower's retry layer with
//!   <https://docs.rs/tower/latest/tower/retry/backoff/struct.ExponentialBackoff.html>.

use std::time::Duration;

use fastrand::Rng;
use tokio::time::{Instant, sleep};

/// How to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The wait before the first retry; it doubles for each retry after.
    pub base: Duration,
    /// The most calls of the operation, the first one included.
    pub max_attempts: u32,
    /// No wait may end later than this after the first call started.
    pub budget: Duration,
    /// How much of each wait jitter may take off, from 0.0 (none) to 1.0.
    pub jitter: f64,
}

impl Backoff {
    /// The wait before retry `n` (0 for the first retry): a whole number of milliseconds
    /// drawn with one `rng.u64(low..=high)`, where `high` is `base · 2^n` and `low` is
    /// `high · (1 − jitter)` rounded up.
    pub fn delay(&self, n: u32, rng: &mut Rng) -> Duration {
        let high = (self.base.as_millis() as u64).saturating_mul(1 << n.min(32));
        let low = (high as f64 * (1.0 - self.jitter)).ceil() as u64;
        Duration::from_millis(rng.u64(low..=high))
    }
}

/// Calls `operation` until it succeeds, fails with an error `is_retryable` rejects, has been
/// called `backoff.max_attempts` times, or the next wait would end past `backoff.budget`.
/// Returns the last result.
pub async fn retry<T, E>(
    backoff: &Backoff,
    rng: &mut Rng,
    is_retryable: impl Fn(&E) -> bool,
    mut operation: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    let start = Instant::now();
    let mut attempt = 1;
    loop {
        let error = match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !is_retryable(&error) || attempt >= backoff.max_attempts {
            return Err(error);
        }
        let delay = backoff.delay(attempt - 1, rng);
        if start.elapsed() + delay > backoff.budget {
            return Err(error);
        }
        sleep(delay).await;
        attempt += 1;
    }
}

/// What a pretend remote service can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 503: try again later.
    Unavailable,
    /// 400: the request itself is wrong; it will fail every time.
    BadRequest,
}

impl Failure {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Unavailable)
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let backoff = Backoff {
        base: Duration::from_millis(100),
        max_attempts: 6,
        budget: Duration::from_secs(5),
        jitter: 0.5,
    };
    let mut rng = Rng::with_seed(2026);
    let start = Instant::now();
    let mut calls = 0;
    let answer = retry(&backoff, &mut rng, Failure::is_retryable, async || {
        calls += 1;
        println!("call {calls} at {:?}", start.elapsed());
        if calls < 4 {
            Err(Failure::Unavailable)
        } else {
            Ok("200 OK")
        }
    })
    .await;
    println!("{answer:?} after {calls} calls and {:?}", start.elapsed());
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/retry_backoff.toml tries each):
    // - a fixed wait (no doubling), or doubling without jitter, or jitter that lengthens
    //   the wait instead of shortening it;
    // - jitter from a fresh or global RNG instead of the one passed in (not reproducible);
    // - retrying every error, or giving up on retryable ones;
    // - one attempt too many or too few (`max_attempts` counts the first call);
    // - a budget that counts only the waits (not the time the calls took), that is
    //   checked after sleeping, or that is ignored;
    // - a deadline measured from the first failure instead of the first call.
    use super::*;
    use fastrand::Rng;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use timeline::Timeline;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn backoff(max_attempts: u32, budget_ms: u64, jitter: f64) -> Backoff {
        Backoff {
            base: ms(100),
            max_attempts,
            budget: ms(budget_ms),
            jitter,
        }
    }

    /// A pretend service answering from a script (then `Ok` forever); each call takes
    /// `latency` and is recorded with when it started.
    struct Service {
        script: RefCell<Vec<Result<u32, Failure>>>,
        latency: Duration,
        calls: RefCell<Vec<Duration>>,
        start: Instant,
        timeline: Timeline,
    }

    impl Service {
        fn new(script: &[Result<u32, Failure>], latency: Duration) -> Self {
            let mut script = script.to_vec();
            script.reverse();
            Service {
                script: RefCell::new(script),
                latency,
                calls: RefCell::new(Vec::new()),
                start: Instant::now(),
                timeline: Timeline::new(),
            }
        }

        async fn call(&self) -> Result<u32, Failure> {
            let n = self.calls.borrow().len() + 1;
            self.calls.borrow_mut().push(self.start.elapsed());
            let _span = self.timeline.span(format!("call {n}"));
            sleep(self.latency).await;
            self.script.borrow_mut().pop().unwrap_or(Ok(0))
        }

        fn calls(&self) -> Vec<Duration> {
            self.calls.borrow().clone()
        }
    }

    async fn run(service: &Service, backoff: &Backoff, seed: u64) -> Result<u32, Failure> {
        let mut rng = Rng::with_seed(seed);
        retry(backoff, &mut rng, Failure::is_retryable, async || {
            service.call().await
        })
        .await
    }

    const DOWN: Result<u32, Failure> = Err(Failure::Unavailable);

    #[tokio::test(start_paused = true)]
    async fn a_success_is_returned_at_once() {
        let service = Service::new(&[Ok(7)], Duration::ZERO);
        assert_eq!(run(&service, &backoff(5, 10_000, 0.0), 1).await, Ok(7));
        assert_eq!(service.calls(), vec![ms(0)], "one call, no wait");
    }

    #[tokio::test(start_paused = true)]
    async fn without_jitter_the_waits_double() {
        let service = Service::new(&[DOWN, DOWN, DOWN, Ok(7)], Duration::ZERO);
        assert_eq!(run(&service, &backoff(5, 10_000, 0.0), 1).await, Ok(7));
        assert_eq!(
            service.calls(),
            vec![ms(0), ms(100), ms(300), ms(700)],
            "calls should start at 0, then after waits of 100, 200 and 400 ms\n{}",
            service.timeline.picture("calls at 0, 100, 300, 700 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_shortens_each_wait_with_the_rng_passed_in() {
        let service = Service::new(&[DOWN, DOWN, DOWN, Ok(7)], Duration::ZERO);
        let policy = backoff(5, 10_000, 0.5);
        assert_eq!(run(&service, &policy, 42).await, Ok(7));
        // The same draws, in the same order, from the same seed.
        let mut rng = Rng::with_seed(42);
        let mut at = Duration::ZERO;
        let mut expected = vec![at];
        for high in [100, 200, 400] {
            at += ms(rng.u64(high / 2..=high));
            expected.push(at);
        }
        assert_eq!(
            service.calls(),
            expected,
            "wait n should be `rng.u64(low..=high)` ms with high = base·2^n and \
             low = high·(1 − jitter), one draw per wait from the `rng` argument\n{}",
            service.timeline.picture(format!("calls at {expected:?}"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_retryable_error_is_returned_at_once() {
        let service = Service::new(&[DOWN, Err(Failure::BadRequest), Ok(7)], Duration::ZERO);
        assert_eq!(
            run(&service, &backoff(5, 10_000, 0.0), 1).await,
            Err(Failure::BadRequest)
        );
        assert_eq!(
            service.calls(),
            vec![ms(0), ms(100)],
            "a bad request fails every time: it should end the retries"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_attempts_counts_every_call() {
        let service = Service::new(&[DOWN; 10], Duration::ZERO);
        let start = Instant::now();
        assert_eq!(
            run(&service, &backoff(4, 10_000, 0.0), 1).await,
            Err(Failure::Unavailable)
        );
        assert_eq!(
            service.calls(),
            vec![ms(0), ms(100), ms(300), ms(700)],
            "`max_attempts: 4` means 4 calls in all, the first one included"
        );
        assert_eq!(start.elapsed(), ms(700), "no wait after the last attempt");
    }

    #[tokio::test(start_paused = true)]
    async fn no_wait_starts_that_would_end_past_the_budget() {
        // Calls take 50 ms: 0-50, wait 100, 150-200, wait 200, 400-450; a wait of 400
        // would end at 850 ms, past the budget of 820 ms (but not past 50 + 820).
        let service = Service::new(&[DOWN; 10], ms(50));
        let start = Instant::now();
        assert_eq!(
            run(&service, &backoff(10, 820, 0.0), 1).await,
            Err(Failure::Unavailable)
        );
        assert_eq!(
            service.calls(),
            vec![ms(0), ms(150), ms(400)],
            "the budget counts the calls' own time too, from the start of the first call\n{}",
            service
                .timeline
                .picture("calls at 0, 150, 400 ms, then the error at 450 ms")
        );
        assert_eq!(
            start.elapsed(),
            ms(450),
            "the error should come back at once, without a last wait"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ending_exactly_at_the_budget_is_allowed() {
        let service = Service::new(&[DOWN; 10], Duration::ZERO);
        assert_eq!(
            run(&service, &backoff(10, 300, 0.0), 1).await,
            Err(Failure::Unavailable)
        );
        assert_eq!(
            service.calls(),
            vec![ms(0), ms(100), ms(300)],
            "a wait that ends exactly at the budget is within it"
        );
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

        /// Any policy and any answers: each wait within [base·2^n·(1−j), base·2^n] and equal
        /// to the seeded draw, no call after the budget, and retries stop exactly when they
        /// should.
        #[test]
        fn waits_stay_in_their_band_and_within_the_budget(
            base in 1u64..200,
            max_attempts in 1u32..8,
            budget in 0u64..5_000,
            jitter in 0.0f64..=1.0,
            latency in 0u64..50,
            script in prop::collection::vec(prop_oneof![4 => Just(DOWN), 1 => Just(Err(Failure::BadRequest)), 1 => Just(Ok(7))], 0..10),
            seed in any::<u64>(),
        ) {
            let policy = Backoff { base: ms(base), max_attempts, budget: ms(budget), jitter };
            let (result, calls, elapsed) = run_paused(async {
                let service = Service::new(&script, ms(latency));
                let start = Instant::now();
                let result = run(&service, &policy, seed).await;
                (result, service.calls(), start.elapsed())
            });
            // The model: the same loop, written as arithmetic.
            let mut rng = Rng::with_seed(seed);
            let mut at = 0;
            let mut expected = Vec::new();
            let mut outcome = Ok(0);
            for n in 0..max_attempts {
                expected.push(ms(at));
                outcome = script.get(n as usize).copied().unwrap_or(Ok(0));
                at += latency;
                if !matches!(outcome, Err(Failure::Unavailable)) || n + 1 == max_attempts {
                    break;
                }
                let high = base << n;
                let low = (high as f64 * (1.0 - jitter)).ceil() as u64;
                let wait = rng.u64(low..=high);
                prop_assert!(wait <= high && wait as f64 >= high as f64 * (1.0 - jitter));
                if at + wait > budget {
                    break;
                }
                at += wait;
            }
            prop_assert_eq!(&calls, &expected, "when each call started");
            prop_assert_eq!(result, outcome, "the result should be the last call's");
            prop_assert_eq!(elapsed, ms(at), "no wait after the last call");
            if let Some(last) = calls.last().filter(|_| calls.len() > 1) {
                prop_assert!(*last <= ms(budget), "a retry started after the budget");
            }
        }
    }
}
