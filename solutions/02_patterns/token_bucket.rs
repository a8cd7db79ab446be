//! # A token-bucket rate limiter shared by many tasks
//!
//! A semaphore limits how many calls run *at once*; a rate limiter limits how many *start
//! per second*, which is what an API quota ("100 requests per second, bursts of 20") or a
//! polite crawler needs. The token bucket is the classic answer: a bucket holds up to
//! `burst` tokens and gains one every `every`; each call takes a token, and when the bucket
//! is empty the caller waits for the next one. A full bucket lets a burst through at once;
//! after that, calls pass at the refill rate. Over any stretch of time `t`, at most
//! `burst + t / every` calls pass.
//!
//! Two details make it exact and fair:
//! - **Keep the fraction.** Refill from the time the last token was *earned*, not from the
//!   last time you looked: advancing `refilled_at` by whole tokens keeps the part of the
//!   next token already earned. (When the bucket is full, nothing more is earned: restart
//!   the clock from now.)
//! - **Wait in line.** `tokio::sync::Mutex` hands its lock out in the order it was asked
//!   for. The first caller in line holds the lock while it sleeps until the next token;
//!   everyone else queues behind it, first come, first served. A caller that gives up
//!   (its future is dropped) leaves the line without taking a token.
//!
//! (Python: `aiolimiter.AsyncLimiter(rate, period)` and `async with limiter:`.)
//!
//! ## Your job
//! Write `Bucket::refill` and `TokenBucket::acquire`.
//!
//! ## Read
//! - <https://en.wikipedia.org/wiki/Token_bucket>
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Mutex.html> (fairness: "FIFO order")
//! - <https://docs.rs/tokio/latest/tokio/time/fn.sleep_until.html>
//! - A real service would use the `governor` crate, or `tower::limit::RateLimitLayer`.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::{Instant, sleep_until};

/// The tokens in the bucket and when they were last counted.
#[derive(Debug)]
struct Bucket {
    tokens: u32,
    /// The instant the last counted token was earned (or now, if the bucket is full).
    refilled_at: Instant,
}

impl Bucket {
    /// Adds the whole tokens earned since `refilled_at`, at most up to `burst`.
    fn refill(&mut self, now: Instant, burst: u32, every: Duration) {
        let earned = now.duration_since(self.refilled_at).as_nanos() / every.as_nanos();
        if u128::from(self.tokens) + earned >= u128::from(burst) {
            self.tokens = burst;
            self.refilled_at = now;
        } else {
            // `earned < burst` here, so it fits in a u32.
            let earned = earned as u32;
            self.tokens += earned;
            self.refilled_at += every * earned;
        }
    }
}

/// A rate limiter: bursts of up to `burst` calls, then one call every `every`.
/// Share it between tasks with an `Arc`.
#[derive(Debug)]
pub struct TokenBucket {
    burst: u32,
    every: Duration,
    bucket: Mutex<Bucket>,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (`burst >= 1`), one more every `every` (`every > 0`).
    pub fn new(burst: u32, every: Duration) -> Self {
        assert!(
            burst > 0,
            "a bucket that holds no token lets nobody through"
        );
        assert!(
            !every.is_zero(),
            "a bucket that refills in no time limits nothing"
        );
        TokenBucket {
            burst,
            every,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Waits for a token, first come first served, and takes it.
    pub async fn acquire(&self) {
        // The lock is the line: whoever holds it is the next caller to pass.
        let mut bucket = self.bucket.lock().await;
        bucket.refill(Instant::now(), self.burst, self.every);
        if bucket.tokens == 0 {
            let next_token = bucket.refilled_at + self.every;
            sleep_until(next_token).await;
            bucket.refill(next_token, self.burst, self.every);
        }
        bucket.tokens -= 1;
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let limiter = std::sync::Arc::new(TokenBucket::new(3, Duration::from_millis(250)));
    let start = Instant::now();
    let tasks: Vec<_> = (1..=8)
        .map(|i| {
            let limiter = std::sync::Arc::clone(&limiter);
            tokio::spawn(async move {
                limiter.acquire().await;
                println!(
                    "request {i} passes at {:>4} ms",
                    start.elapsed().as_millis()
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a request panicked");
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/token_bucket.toml tries each):
    // - a limiter that sleeps a fixed time per call (no burst, or no waiting);
    // - refilling from "now" instead of from when the last token was earned (loses the
    //   fraction of a token: callers pass late);
    // - no cap on the bucket (a long idle lets more than `burst` through at once);
    // - polling for a token in a loop with a fixed sleep (callers pass late);
    // - waiters that are not served first come, first served;
    // - a caller that gives up still taking a token.
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use timeline::Timeline;
    use tokio::time::{advance, sleep, timeout};

    const EVERY: Duration = Duration::from_millis(37);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Acquires `n` tokens one after another; returns when each passed, since `start`.
    async fn pass_times(limiter: &TokenBucket, n: usize, start: Instant) -> Vec<Duration> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_lets_a_burst_through_at_once() {
        let start = Instant::now();
        let limiter = TokenBucket::new(5, EVERY);
        assert_eq!(
            pass_times(&limiter, 5, start).await,
            vec![Duration::ZERO; 5],
            "a bucket of 5 starts full: 5 calls pass at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_burst_one_call_passes_per_refill() {
        let start = Instant::now();
        let limiter = TokenBucket::new(3, EVERY);
        assert_eq!(
            pass_times(&limiter, 6, start).await,
            vec![ms(0), ms(0), ms(0), ms(37), ms(74), ms(111)],
            "burst 3, a token every 37 ms: 3 at once, then one each time a token is earned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_idle_fills_the_bucket_only_up_to_the_burst() {
        let limiter = TokenBucket::new(2, EVERY);
        pass_times(&limiter, 2, Instant::now()).await;
        advance(Duration::from_secs(10)).await;
        let start = Instant::now();
        assert_eq!(
            pass_times(&limiter, 4, start).await,
            vec![ms(0), ms(0), ms(37), ms(74)],
            "10 s idle earns many tokens, but the bucket holds 2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_partly_earned_token_is_not_lost() {
        let start = Instant::now();
        let limiter = TokenBucket::new(2, ms(100));
        pass_times(&limiter, 2, start).await;
        advance(ms(150)).await;
        pass_times(&limiter, 2, start).await;
        assert_eq!(
            start.elapsed(),
            ms(200),
            "burst 2, a token every 100 ms, emptied at 0 ms: at 150 ms one token is there and \
             half of the next is earned, so the 4th call passes at 200 ms, not 250 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_tasks_pass_first_come_first_served_as_tokens_arrive() {
        let start = Instant::now();
        let timeline = Timeline::new();
        let limiter = Arc::new(TokenBucket::new(2, EVERY));
        let tasks: Vec<_> = (0..6u64)
            .map(|i| {
                let (limiter, timeline) = (Arc::clone(&limiter), timeline.clone());
                tokio::spawn(async move {
                    // Task i joins the line at i ms, in order.
                    sleep(ms(i)).await;
                    limiter.acquire().await;
                    timeline.mark(format!("task {i} passes"));
                    start.elapsed()
                })
            })
            .collect();
        let mut passed = Vec::new();
        for task in tasks {
            passed.push(task.await.expect("a task panicked"));
        }
        assert_eq!(
            passed,
            vec![ms(0), ms(1), ms(37), ms(74), ms(111), ms(148)],
            "burst 2, a token every 37 ms, tasks arriving at 0, 1, 2... ms: each waiting \
             task passes, in arrival order, the moment a token exists\n{}",
            timeline.picture("tasks 0..6 at 0, 1, 37, 74, 111, 148 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_takes_no_token() {
        let start = Instant::now();
        let limiter = TokenBucket::new(1, ms(100));
        limiter.acquire().await;
        let gave_up = timeout(ms(50), limiter.acquire()).await;
        assert!(
            gave_up.is_err(),
            "no token before 100 ms: the caller gives up at 50 ms"
        );
        limiter.acquire().await;
        assert_eq!(
            start.elapsed(),
            ms(100),
            "the caller who gave up took nothing: the next caller gets the 100 ms token"
        );
    }

    /// The rate limit as a schedule (GCRA, the "virtual scheduling" form of a token
    /// bucket): callers, in arrival order, each pass at the earliest instant that keeps the
    /// bucket from going below zero.
    fn model_pass_times(arrivals: &[u64], burst: u64, every: u64) -> Vec<u64> {
        let tolerance = (burst - 1) * every;
        let (mut theoretical, mut last_pass) = (0u64, 0u64);
        arrivals
            .iter()
            .map(|&arrival| {
                let pass = arrival
                    .max(last_pass)
                    .max(theoretical.saturating_sub(tolerance));
                theoretical = theoretical.max(pass) + every;
                last_pass = pass;
                pass
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Callers arriving at any times: each passes exactly when the model says, and no
        /// window of length t ever holds more than burst + t / every passes.
        #[test]
        fn callers_pass_as_the_token_bucket_allows(
            burst in 1u32..5,
            every in 1u64..120,
            gaps in prop::collection::vec(1u64..150, 1..30),
        ) {
            let arrivals: Vec<u64> = gaps
                .iter()
                .scan(0, |at, gap| { *at += gap; Some(*at) })
                .collect();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let passed: Vec<u64> = runtime.block_on(async {
                let start = Instant::now();
                let limiter = Arc::new(TokenBucket::new(burst, ms(every)));
                let tasks: Vec<_> = arrivals
                    .iter()
                    .map(|&at| {
                        let limiter = Arc::clone(&limiter);
                        tokio::spawn(async move {
                            sleep_until(start + ms(at)).await;
                            limiter.acquire().await;
                            start.elapsed().as_millis() as u64
                        })
                    })
                    .collect();
                let mut passed = Vec::new();
                for task in tasks {
                    passed.push(task.await.expect("a caller panicked"));
                }
                passed
            });
            for (i, &from) in passed.iter().enumerate() {
                for (j, &to) in passed.iter().enumerate().skip(i) {
                    let allowed = u64::from(burst) + (to - from) / every;
                    prop_assert!(
                        (j - i + 1) as u64 <= allowed,
                        "{} calls passed between {} ms and {} ms; burst {} and one token every \
                         {} ms allow {}", j - i + 1, from, to, burst, every, allowed
                    );
                }
            }
            prop_assert_eq!(
                passed,
                model_pass_times(&arrivals, u64::from(burst), every),
                "callers arriving at {:?} ms should pass as soon as a token exists",
                arrivals
            );
        }
    }
}
