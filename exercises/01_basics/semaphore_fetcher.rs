//! # Limit concurrency with a `Semaphore`
//!
//! Firing every request at once is fast until the other side falls over: a crawler that
//! opens 10 000 connections gets rate-limited, a service that sends 500 queries at once
//! exhausts its database pool. The fix is a *bound*: at most `limit` requests in flight,
//! and — just as important — always `limit` in flight while work is waiting, so the bound
//! is never under-used.
//! (Python: `sem = asyncio.Semaphore(limit)` and `async with sem:` around each request.)
//!
//! A `tokio::sync::Semaphore` holds `limit` permits. `acquire_owned` waits for a free one
//! and returns an `OwnedSemaphorePermit`; dropping the permit gives it back. Holding the
//! permit in a variable for exactly as long as the request runs is the whole pattern (RAII,
//! like `async with`). Mind `let _ = sem.acquire_owned().await;`: `_` binds nothing, so the
//! permit is dropped on the spot — write `let _permit = ...` instead. Wrap the semaphore in
//! an `Arc` so that each spawned task can own a handle to it (`acquire_owned` takes
//! `self: Arc<Semaphore>`). Permits are handed out in the order they were asked for, so a
//! freed permit goes straight to the next waiting request.
//!
//! ## Your job
//! `fetch_all` sends one request after another. Make it run up to `limit` requests at once
//! — never more, and never fewer while requests are waiting — starting them in the order
//! of `requests`, and return the pages in that order. The checks look at what the server
//! sees (how many requests at once, when each one starts), not at how you bound them: a
//! `Semaphore` is the tool this exercise teaches, and a pool of `limit` workers taking the
//! next request as soon as they are free passes as well.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Semaphore.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Semaphore.html#method.acquire_owned>
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.OwnedSemaphorePermit.html>

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::sleep;

/// A pretend remote server. It counts the requests it is serving at once: the number a
/// concurrency limit exists to protect.
#[derive(Clone, Default)]
pub struct Server {
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// Counts a request as finished when dropped, even if the request is cancelled.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    /// Serves `path` after `delay_ms`.
    pub async fn get(&self, path: &str, delay_ms: u64) -> String {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let _in_flight = InFlight(Arc::clone(&self.in_flight));
        sleep(Duration::from_millis(delay_ms)).await;
        format!("{path}: 200 OK")
    }

    /// The most requests this server has served at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Fetches every `(path, delay_ms)` from `server`, at most `limit` at a time (`limit >= 1`).
/// The pages come back in the order of `requests`.
pub async fn fetch_all(server: &Server, requests: Vec<(String, u64)>, limit: usize) -> Vec<String> {
    assert!(limit > 0, "a limit of 0 would never let a request through");
    // TODO: run up to `limit` requests at once. Give each request its own task holding a
    // permit from an `Arc<Semaphore>` for as long as the request runs, then collect the
    // pages in input order.
    let mut pages = Vec::with_capacity(requests.len());
    for (path, delay_ms) in requests {
        pages.push(server.get(&path, delay_ms).await);
    }
    pages
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = Server::default();
    let requests = (1..=7).map(|i| (format!("/item/{i}"), 100 * i)).collect();
    let start = tokio::time::Instant::now();
    for page in fetch_all(&server, requests, 3).await {
        println!("{page}");
    }
    println!(
        "at most {} requests at once, {:?} in all",
        server.peak_in_flight(),
        start.elapsed()
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/01_basics/semaphore_fetcher.toml`
    // (no limit, one at a time, a permit dropped before the request runs or never given back,
    // fixed chunks or a fixed split between workers, `buffered`, a limit capped at a fixed
    // value, pages in completion order, an answer made up without asking the server).
    use super::*;
    use proptest::prelude::*;
    use tokio::time::Instant;

    /// The learner's `fetch_all`, bounded: a permit that is never given back (forgotten,
    /// leaked) leaves the requests behind it waiting forever; this fails instead of hanging.
    async fn fetch_all(server: &Server, requests: Vec<(String, u64)>, limit: usize) -> Vec<String> {
        tokio::time::timeout(
            Duration::from_secs(3600),
            super::fetch_all(server, requests, limit),
        )
        .await
        .expect("fetch_all never finished: is every permit given back when its request ends?")
    }

    /// Requests `/page/0`, `/page/1`, ... with the given delays.
    fn requests(delays: &[u64]) -> Vec<(String, u64)> {
        delays
            .iter()
            .enumerate()
            .map(|(i, &delay)| (format!("/page/{i}"), delay))
            .collect()
    }

    fn expected_pages(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("/page/{i}: 200 OK")).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_never_exceeds_the_limit() {
        let server = Server::default();
        let reqs = requests(&[100; 10]);
        fetch_all(&server, reqs, 3).await;
        assert!(
            server.peak_in_flight() <= 3,
            "the server saw {} requests at once, but the limit is 3: is every request \
             holding a permit for as long as it runs?",
            server.peak_in_flight()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_reaches_the_limit() {
        let server = Server::default();
        let reqs = requests(&[100; 10]);
        fetch_all(&server, reqs, 3).await;
        assert_eq!(
            server.peak_in_flight(),
            3,
            "with 10 requests and a limit of 3, three requests should run at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn equal_delays_take_ceil_n_over_limit_rounds() {
        let server = Server::default();
        let reqs = requests(&[100; 10]);
        let start = Instant::now();
        fetch_all(&server, reqs, 3).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(400),
            "10 requests of 100 ms, 3 at a time, take ceil(10 / 3) = 4 rounds = 400 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_freed_permit_starts_the_next_request_at_once() {
        // One slow request and nine quick ones, two at a time: while the slow one runs,
        // the other permit serves all nine quick ones (9 x 100 ms < 1000 ms).
        // Chunks of two would take 1000 + 4 x 100 = 1400 ms.
        let server = Server::default();
        let mut delays = vec![1000];
        delays.extend([100; 9]);
        let reqs = requests(&delays);
        let start = Instant::now();
        let pages = fetch_all(&server, reqs, 2).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(1000),
            "a request should start as soon as a permit is free, not when a whole batch is done"
        );
        assert_eq!(pages, expected_pages(10));
    }

    #[tokio::test(start_paused = true)]
    async fn pages_come_back_in_input_order() {
        let server = Server::default();
        let reqs = requests(&[300, 200, 100, 50]);
        let pages = fetch_all(&server, reqs, 4).await;
        assert_eq!(
            pages,
            expected_pages(4),
            "page i must be the answer to request i, whichever finished first"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_limit_is_used_in_full() {
        for (n, limit, rounds) in [(40, 16, 3), (10, 50, 1)] {
            let server = Server::default();
            let start = Instant::now();
            let pages = fetch_all(&server, requests(&vec![100; n]), limit).await;
            assert_eq!(
                (server.peak_in_flight(), start.elapsed()),
                (limit.min(n), Duration::from_millis(100 * rounds)),
                "{n} requests of 100 ms with a limit of {limit}: {} should run at once, \
                 in {rounds} rounds (is the limit the one asked for?)",
                limit.min(n)
            );
            assert_eq!(pages, expected_pages(n));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_requests_no_wait() {
        let server = Server::default();
        let start = Instant::now();
        assert!(fetch_all(&server, Vec::new(), 4).await.is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(server.peak_in_flight(), 0);
    }

    /// The schedule a fair semaphore gives: each request, in input order, takes the
    /// permit that frees up first. Returns when the last request finishes.
    fn pool_finish_time(delays: &[u64], limit: usize) -> u64 {
        let mut free_at = vec![0u64; limit];
        for &delay in delays {
            let earliest = free_at.iter_mut().min().expect("limit >= 1");
            *earliest += delay;
        }
        free_at.into_iter().max().unwrap_or(0)
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

        /// Any delays: the bound holds, is reached, pages keep input order, and the time
        /// is that of `limit` workers each taking the next request as soon as they are free.
        #[test]
        fn uneven_delays_respect_and_use_the_limit(
            delays in prop::collection::vec(1u64..1_000, 0..24),
            limit in 1usize..6,
        ) {
            let reqs = requests(&delays);
            let server = Server::default();
            let (elapsed, pages) = run_paused(async {
                let start = Instant::now();
                let pages = fetch_all(&server, reqs, limit).await;
                (start.elapsed(), pages)
            });
            prop_assert!(server.peak_in_flight() <= limit, "more than `limit` requests at once");
            prop_assert_eq!(server.peak_in_flight(), limit.min(delays.len()), "the limit was not used");
            prop_assert_eq!(
                elapsed,
                Duration::from_millis(pool_finish_time(&delays, limit)),
                "a freed permit should go to the next request at once"
            );
            prop_assert_eq!(pages, expected_pages(delays.len()));
        }

        /// Equal delays: exactly ceil(n / limit) rounds.
        #[test]
        fn equal_delays_take_exactly_ceil_n_over_limit_rounds(
            n in 0usize..40,
            limit in 1usize..8,
            delay in 1u64..1_000,
        ) {
            let reqs = requests(&vec![delay; n]);
            let server = Server::default();
            let elapsed = run_paused(async {
                let start = Instant::now();
                fetch_all(&server, reqs, limit).await;
                start.elapsed()
            });
            let rounds = n.div_ceil(limit) as u64;
            prop_assert_eq!(elapsed, Duration::from_millis(rounds * delay), "not ceil(n / limit) rounds");
            prop_assert!(server.peak_in_flight() <= limit, "more than `limit` requests at once");
        }
    }
}
