//! # The same with the ecosystem: a `tower::Service` stack
//!
//! Every pattern of this chapter exists as a ready-made layer in `tower`, the library under
//! hyper, axum, tonic and most of the Rust services you will meet. A `Service` is an async
//! function with a readiness check in front: `poll_ready` says "I can take a request now"
//! (or "not yet": a limit is reached), then `call(request)` returns the response's future.
//! A layer wraps a service in another service, and `ServiceBuilder` stacks layers, the first
//! one listed the outermost:
//!
//! | your exercise                  | tower                                           |
//! | ------------------------------ | ----------------------------------------------- |
//! | `retry_backoff`                | `retry(policy)`, with your own `retry::Policy`  |
//! | `timeout_scope`                | `timeout(duration)`                             |
//! | `token_bucket`                 | `rate_limit(num, per)`                          |
//! | `semaphore_fetcher`            | `concurrency_limit(n)`                          |
//! | `work_queue`, the actor        | `buffer(n)`: a channel and one worker task      |
//! | `circuit_breaker_*`            | not in tower: a crate, or a layer of your own   |
//!
//! The order is the design, as in `resilient_call`. **Retry** is the outermost: each attempt
//! must go through everything below it, so that each attempt gets its own **timeout**, and
//! the **rate** and **concurrency** limits count attempts (they protect the backend, which
//! sees every attempt) while a request sleeping out its backoff holds no slot. `RateLimit`
//! keeps its window in the service itself and is not `Clone`, while `Retry` needs to clone
//! what it wraps (to send the request again), and every task needs its own clone of the
//! stack: so a **buffer** sits between them. `Buffer` is the actor pattern: the one
//! `RateLimit` lives in a worker task, and every clone of the stack sends it requests through
//! a bounded channel. That bound is where `poll_ready` shows: when the channel is full,
//! `poll_ready` stays pending and the caller waits, which is backpressure all the way up.
//! Hence the rule: call `ready()` before `call` (`ServiceExt::oneshot` does both); a
//! `Buffer` or a `RateLimit` called without it panics.
//! (Python has no standard equivalent: `tenacity` for retries, `aiolimiter` for rates and an
//! `asyncio.Semaphore`, each wrapped around the call by hand.)
//!
//! ## Your job
//! - `RetryPolicy`, tower's `retry::Policy`: retry a timed-out attempt
//!   (`tower::timeout::error::Elapsed`) or a `BackendError::Unavailable`, never a
//!   `BadRequest`; at most `limits.attempts` attempts in all; before each retry pause
//!   `backoff`, then twice as long each time (the future `retry` returns is that pause).
//! - `resilient`: the stack over `backend`, from the outside in: retry, buffer, rate limit,
//!   concurrency limit, timeout, each set from `limits`.
//! - `call_all`: send every request at once, each through its own clone of the stack, and
//!   return the answers in the order of the requests.
//!
//! ## Read
//! - <https://docs.rs/tower/latest/tower/trait.Service.html> (`poll_ready`, then `call`)
//! - <https://docs.rs/tower/latest/tower/builder/struct.ServiceBuilder.html> (the order of layers)
//! - <https://docs.rs/tower/latest/tower/retry/trait.Policy.html>
//! - <https://docs.rs/tower/latest/tower/buffer/struct.Buffer.html>
//! - <https://docs.rs/tower/latest/tower/trait.ServiceExt.html#method.oneshot>
//! - <https://tokio.rs/blog/2021-05-14-inventing-the-service-trait>

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::{Instant, Sleep, sleep};
use tower::retry::Policy;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// One request to the backend. `Clone`, so that a retry can send it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u32,
}

/// The backend's own errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendError {
    /// A 503: overloaded or restarting; worth another try.
    Unavailable,
    /// A 400: the request itself is wrong, and will be wrong again.
    BadRequest,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendError::Unavailable => "503 service unavailable",
            BackendError::BadRequest => "400 bad request",
        })
    }
}

impl std::error::Error for BackendError {}

/// What the pretend backend does with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Answer {
        after_ms: u64,
    },
    Fail {
        after_ms: u64,
        error: BackendError,
    },
    /// Never answers (a hung connection).
    Hang,
}

/// One attempt the backend received: which request, its attempt number (from 1), and
/// when it arrived, counted from the backend's creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub id: u32,
    pub attempt: u32,
    pub at: Duration,
}

type Script = dyn Fn(u32, u32) -> Reply + Send + Sync;

/// A pretend backend: answers attempt `n` of request `id` as `script(id, n)` says, and
/// records every attempt and how many were in flight at once.
#[derive(Clone)]
pub struct Backend {
    script: Arc<Script>,
    log: Arc<Mutex<Log>>,
    created: Instant,
}

#[derive(Default)]
struct Log {
    calls: Vec<Call>,
    in_flight: usize,
    peak: usize,
}

impl Backend {
    pub fn new(script: impl Fn(u32, u32) -> Reply + Send + Sync + 'static) -> Self {
        Backend {
            script: Arc::new(script),
            log: Arc::default(),
            created: Instant::now(),
        }
    }

    /// Every attempt received so far, in the order they arrived.
    pub fn calls(&self) -> Vec<Call> {
        self.log().calls.clone()
    }

    /// The most attempts that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.log().peak
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts an attempt in flight until its future ends or is dropped (a timeout drops it).
struct InFlight(Arc<Mutex<Log>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_flight -= 1;
    }
}

impl Service<Request> for Backend {
    type Response = String;
    type Error = BackendError;
    type Future = BoxFuture<'static, Result<String, BackendError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BackendError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = request.id;
        let attempt = {
            let mut log = self.log();
            let attempt = 1 + log.calls.iter().filter(|call| call.id == id).count() as u32;
            let at = self.created.elapsed();
            log.calls.push(Call { id, attempt, at });
            log.in_flight += 1;
            log.peak = log.peak.max(log.in_flight);
            attempt
        };
        let reply = (self.script)(id, attempt);
        let in_flight = InFlight(Arc::clone(&self.log));
        // Draws the attempt on the check's timeline (a failing check shows what ran when).
        let span = timeline::span(format!("#{id} try {attempt}"));
        Box::pin(async move {
            let (_in_flight, _span) = (in_flight, span);
            match reply {
                Reply::Answer { after_ms } => {
                    sleep(Duration::from_millis(after_ms)).await;
                    Ok(format!("answer to #{id}"))
                }
                Reply::Fail { after_ms, error } => {
                    sleep(Duration::from_millis(after_ms)).await;
                    Err(error)
                }
                Reply::Hang => std::future::pending().await,
            }
        })
    }
}

/// How hard, how fast and how wide the stack may use the backend.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Attempts per request in all, the first one included (`>= 1`).
    pub attempts: u32,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// The pause before the first retry; it doubles before each further one.
    pub backoff: Duration,
    /// Attempts in flight at once, across every clone of the stack.
    pub concurrency: usize,
    /// At most `rate.0` attempts per `rate.1`, across every clone of the stack.
    pub rate: (u64, Duration),
    /// Requests that may wait in the buffer for the limits below it.
    pub buffer: usize,
}

/// The stack as the callers see it: a service that can be cloned for each task.
pub type Resilient = BoxCloneService<Request, String, BoxError>;

/// Which failures to retry, how many times, after what pause. Tower clones the policy for
/// each request, so this state is per request.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    retries_left: u32,
    pause: Duration,
}

impl RetryPolicy {
    pub fn new(limits: &Limits) -> Self {
        RetryPolicy {
            retries_left: limits.attempts.saturating_sub(1),
            pause: limits.backoff,
        }
    }
}

impl Policy<Request, String, BoxError> for RetryPolicy {
    type Future = Sleep;

    /// Called after each attempt with its result: `None` ends the request with that
    /// result, `Some(pause)` sends the request again once `pause` is over.
    fn retry(
        &mut self,
        _request: &mut Request,
        _result: &mut Result<String, BoxError>,
    ) -> Option<Self::Future> {
        // TODO: retry a timeout or a 503, at most `attempts` attempts in all, after a
        // pause that doubles each time.
        None
    }

    /// The copy of the request that a retry would send (`None`: no retry possible).
    fn clone_request(&mut self, _request: &Request) -> Option<Request> {
        // TODO
        None
    }
}

/// The resilient stack over `backend`. Must be called inside a tokio runtime (the buffer
/// starts its worker task).
pub fn resilient(backend: Backend, limits: &Limits) -> Resilient {
    // TODO: from the outside in: retry, buffer, rate limit, concurrency limit, timeout.
    ServiceBuilder::new()
        .timeout(limits.attempt_timeout)
        .service(backend)
        .boxed_clone()
}

/// Sends every request at once, each through its own clone of `service` (`oneshot` waits
/// for `ready` and then calls); the answers come back in the order of the requests.
pub async fn call_all(
    service: &Resilient,
    requests: Vec<Request>,
) -> Vec<Result<String, BoxError>> {
    // TODO: all at once, not one after another.
    let mut answers = Vec::new();
    for request in requests {
        answers.push(service.clone().oneshot(request).await);
    }
    answers
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    // Request 3 is malformed; every first attempt of the others finds the backend busy,
    // and request 5's second attempt hangs.
    let backend = Backend::new(|id, attempt| match (id, attempt) {
        (3, _) => Reply::Fail {
            after_ms: 5,
            error: BackendError::BadRequest,
        },
        (_, 1) => Reply::Fail {
            after_ms: 20,
            error: BackendError::Unavailable,
        },
        (5, 2) => Reply::Hang,
        _ => Reply::Answer { after_ms: 30 },
    });
    let limits = Limits {
        attempts: 3,
        attempt_timeout: Duration::from_millis(200),
        backoff: Duration::from_millis(100),
        concurrency: 2,
        rate: (4, Duration::from_secs(1)),
        buffer: 8,
    };
    let service = resilient(backend.clone(), &limits);
    let start = Instant::now();
    let requests = (1..=5).map(|id| Request { id }).collect();
    for (id, answer) in (1..).zip(call_all(&service, requests).await) {
        println!("request {id}: {answer:?}");
    }
    println!("done after {:?}; the backend saw:", start.elapsed());
    for call in backend.calls() {
        println!("  #{} try {} at {:?}", call.id, call.attempt, call.at);
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - one timeout around the retries (`timeout` outside `retry`): the first hung attempt
    //   takes the whole budget;
    // - a policy that retries a `BadRequest`, does not retry a timed-out attempt, retries
    //   without a pause or with a pause that does not double, or counts attempts wrong;
    // - a limit outside `retry`: a request sleeping out its backoff holds a concurrency
    //   slot, and retries escape the rate limit;
    // - no concurrency limit, no rate limit, or the buffer's bound not passed on;
    // - `call_all` one request after another, or `call` without `ready` (a `Buffer` panics).
    use super::*;
    use timeline::Timeline;
    use tokio_test::{assert_pending, assert_ready, task};

    /// Generous limits: each check tightens the one it is about.
    fn limits() -> Limits {
        Limits {
            attempts: 3,
            attempt_timeout: Duration::from_millis(200),
            backoff: Duration::from_millis(100),
            concurrency: 100,
            rate: (1_000, Duration::from_secs(1)),
            buffer: 100,
        }
    }

    fn call(id: u32, attempt: u32, at_ms: u64) -> Call {
        Call {
            id,
            attempt,
            at: Duration::from_millis(at_ms),
        }
    }

    fn requests(ids: std::ops::RangeInclusive<u32>) -> Vec<Request> {
        ids.map(|id| Request { id }).collect()
    }

    /// What a failed request's error is, in words the messages can use.
    fn kind(error: &BoxError) -> String {
        if error.is::<tower::timeout::error::Elapsed>() {
            "a timeout".into()
        } else if let Some(error) = error.downcast_ref::<BackendError>() {
            format!("the backend's {error}")
        } else {
            format!("another error: {error}")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_time_goes_through_once() {
        let backend = Backend::new(|_, _| Reply::Answer { after_ms: 50 });
        let service = resilient(backend.clone(), &limits());
        let start = Instant::now();
        let answers = call_all(&service, requests(1..=1)).await;
        assert_eq!(answers.len(), 1, "one request, one answer");
        assert_eq!(
            answers[0].as_ref().map_err(kind),
            Ok(&"answer to #1".to_string())
        );
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        assert_eq!(backend.calls(), [call(1, 1, 0)], "one attempt is enough");
    }

    #[tokio::test(start_paused = true)]
    async fn each_attempt_has_its_own_timeout_and_a_timed_out_attempt_is_retried() {
        let timeline = Timeline::new();
        let _recording = timeline.install();
        // The first attempt hangs; the second answers after 50 ms.
        let backend = Backend::new(|_, attempt| match attempt {
            1 => Reply::Hang,
            _ => Reply::Answer { after_ms: 50 },
        });
        let service = resilient(backend.clone(), &limits());
        let start = Instant::now();
        let answer = call_all(&service, requests(1..=1)).await.remove(0);
        let expected = "try 1 hangs and times out at 200 ms; after a 100 ms pause try 2 \
                        starts at 300 ms and answers at 350 ms";
        assert_eq!(
            answer.as_ref().map_err(kind),
            Ok(&"answer to #1".to_string()),
            "a timed-out attempt should be retried, each attempt under its own timeout: is \
             the timeout inside the retry, and is `Elapsed` retryable?\n{}",
            timeline.picture(expected)
        );
        assert_eq!(
            backend.calls(),
            [call(1, 1, 0), call(1, 2, 300)],
            "attempts at 0 ms and at 300 ms (200 ms timeout + 100 ms pause)\n{}",
            timeline.picture(expected)
        );
        assert_eq!(start.elapsed(), Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_backend_is_retried_with_doubling_pauses_up_to_the_attempts() {
        let timeline = Timeline::new();
        let _recording = timeline.install();
        let backend = Backend::new(|_, _| Reply::Fail {
            after_ms: 10,
            error: BackendError::Unavailable,
        });
        let service = resilient(
            backend.clone(),
            &Limits {
                attempts: 4,
                ..limits()
            },
        );
        let start = Instant::now();
        let answer = call_all(&service, requests(1..=1)).await.remove(0);
        let expected = "4 attempts of 10 ms, with pauses of 100, 200 and 400 ms between them";
        assert_eq!(
            backend.calls(),
            [
                call(1, 1, 0),
                call(1, 2, 110),
                call(1, 3, 320),
                call(1, 4, 730)
            ],
            "4 attempts in all, paused 100, 200, then 400 ms after each failure\n{}",
            timeline.picture(expected)
        );
        assert_eq!(
            answer.as_ref().map(String::as_str).map_err(kind),
            Err("the backend's 503 service unavailable".to_string()),
            "after the last attempt, its error comes back"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(740),
            "no pause after the last attempt"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bad_request_is_not_retried() {
        let backend = Backend::new(|_, _| Reply::Fail {
            after_ms: 10,
            error: BackendError::BadRequest,
        });
        let service = resilient(backend.clone(), &limits());
        let start = Instant::now();
        let answer = call_all(&service, requests(1..=1)).await.remove(0);
        assert_eq!(
            answer.as_ref().map(String::as_str).map_err(kind),
            Err("the backend's 400 bad request".to_string())
        );
        assert_eq!(
            backend.calls(),
            [call(1, 1, 0)],
            "a 400 will be a 400 again: it must not be retried"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_concurrency_limit_holds_across_clones_and_is_reached() {
        let timeline = Timeline::new();
        let _recording = timeline.install();
        let backend = Backend::new(|_, _| Reply::Answer { after_ms: 100 });
        let service = resilient(
            backend.clone(),
            &Limits {
                concurrency: 3,
                ..limits()
            },
        );
        let start = Instant::now();
        let answers = call_all(&service, requests(1..=7)).await;
        let expected = "3 at once: #1-#3 at 0 ms, #4-#6 at 100 ms, #7 at 200 ms";
        assert!(
            answers.iter().all(Result::is_ok),
            "every request should be answered"
        );
        assert_eq!(
            backend.peak_in_flight(),
            3,
            "7 requests sent at once, at most 3 attempts in flight: the peak should be \
             exactly 3\n{}",
            timeline.picture(expected)
        );
        let starts: Vec<u128> = backend.calls().iter().map(|c| c.at.as_millis()).collect();
        assert_eq!(
            starts,
            [0, 0, 0, 100, 100, 100, 200],
            "each attempt should start as soon as a slot is free\n{}",
            timeline.picture(expected)
        );
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        let answers: Vec<String> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            answers,
            (1..=7)
                .map(|id| format!("answer to #{id}"))
                .collect::<Vec<_>>(),
            "the answers in the order of the requests"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_sleeping_out_its_backoff_holds_no_slot() {
        let timeline = Timeline::new();
        let _recording = timeline.install();
        // Every first attempt fails after 10 ms; every second one answers after 10 ms.
        let backend = Backend::new(|_, attempt| match attempt {
            1 => Reply::Fail {
                after_ms: 10,
                error: BackendError::Unavailable,
            },
            _ => Reply::Answer { after_ms: 10 },
        });
        let service = resilient(
            backend.clone(),
            &Limits {
                concurrency: 2,
                ..limits()
            },
        );
        let answers = call_all(&service, requests(1..=3)).await;
        assert!(answers.iter().all(Result::is_ok));
        let expected = "#1 and #2 try at 0 ms; while they pause, #3 tries at 10 ms; the \
                        retries at 110, 110 and 120 ms";
        assert_eq!(
            backend.calls(),
            [
                call(1, 1, 0),
                call(2, 1, 0),
                call(3, 1, 10),
                call(1, 2, 110),
                call(2, 2, 110),
                call(3, 2, 120)
            ],
            "the concurrency limit counts attempts in flight: a request pausing before its \
             retry must leave its slot to the next one (the limit goes inside the retry)\n{}",
            timeline.picture(expected)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_counts_every_attempt_retries_included() {
        let timeline = Timeline::new();
        let _recording = timeline.install();
        let backend = Backend::new(|_, attempt| match attempt {
            1 | 2 => Reply::Fail {
                after_ms: 10,
                error: BackendError::Unavailable,
            },
            _ => Reply::Answer { after_ms: 10 },
        });
        let service = resilient(
            backend.clone(),
            &Limits {
                rate: (2, Duration::from_secs(1)),
                ..limits()
            },
        );
        let answer = call_all(&service, requests(1..=1)).await.remove(0);
        assert!(answer.is_ok(), "the third attempt answers");
        assert_eq!(
            backend.calls(),
            [call(1, 1, 0), call(1, 2, 110), call(1, 3, 1_000)],
            "2 attempts per second: the third waits for the next second, retries count \
             against the rate too (the rate limit goes inside the retry)\n{}",
            timeline.picture("tries at 0 and 110 ms use the first second; try 3 at 1000 ms")
        );

        // Five requests at once, 2 per second.
        let backend = Backend::new(|_, _| Reply::Answer { after_ms: 10 });
        let service = resilient(
            backend.clone(),
            &Limits {
                rate: (2, Duration::from_secs(1)),
                ..limits()
            },
        );
        let start = Instant::now();
        let answers = call_all(&service, requests(1..=5)).await;
        assert!(answers.iter().all(Result::is_ok));
        let starts: Vec<u128> = backend.calls().iter().map(|c| c.at.as_millis()).collect();
        assert_eq!(
            starts,
            [0, 0, 1_000, 1_000, 2_000],
            "5 requests at 2 per second, across the clones of one stack"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(2_010));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_buffer_holds_callers_back_in_poll_ready() {
        // One attempt at a time, the backend hangs, and the buffer holds 2 requests.
        let backend = Backend::new(|_, _| Reply::Hang);
        let service = resilient(
            backend.clone(),
            &Limits {
                attempts: 1,
                attempt_timeout: Duration::from_secs(10),
                concurrency: 1,
                buffer: 2,
                ..limits()
            },
        );
        // Request 1 is in flight, request 2 is in the buffer's worker, waiting for the
        // concurrency limit, and requests 3 and 4 fill the buffer.
        let mut sent = Vec::new();
        for id in 1..=4 {
            let mut caller = service.clone();
            let mut ready = task::spawn(caller.ready());
            assert_ready!(ready.poll(), "request {id}: there is room in the buffer")
                .expect("the stack is up");
            drop(ready);
            let mut response = task::spawn(caller.call(Request { id }));
            assert_pending!(response.poll(), "the backend hangs");
            sent.push(response);
            // Lets the buffer's worker take what it can.
            tokio::task::yield_now().await;
        }
        assert_eq!(
            backend.calls(),
            [call(1, 1, 0)],
            "one attempt at a time: only request 1 reaches the backend"
        );
        let mut fifth = service.clone();
        let mut ready = task::spawn(fifth.ready());
        assert_pending!(
            ready.poll(),
            "the buffer of 2 is full (request 1 in flight, request 2 waiting for the \
             concurrency limit in the buffer's worker, requests 3 and 4 in the buffer): a \
             fifth caller's `ready()` should wait. Is `limits.buffer` the buffer's bound?"
        );
        // Request 1 times out: request 2 goes to the backend, request 3 leaves the buffer.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let timed_out = assert_ready!(sent[0].poll(), "request 1's attempt has timed out");
        assert_eq!(
            timed_out.map_err(|error| kind(&error)),
            Err("a timeout".into())
        );
        drop(sent.remove(0));
        tokio::task::yield_now().await;
        assert!(
            ready.is_woken(),
            "once the buffer has room again, the waiting caller should be woken"
        );
        assert_ready!(ready.poll()).expect("the stack is up");
        assert_eq!(backend.calls(), [call(1, 1, 0), call(2, 1, 10_000)]);
        drop(sent);
    }
}
