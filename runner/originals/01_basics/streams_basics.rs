//! # Streams: lazy producers, `StreamExt` consumers
//!
//! A `Stream` is the async `Iterator`: `next().await` yields the next item or `None` at the
//! end. Like futures, streams are lazy: `stream::unfold(state, |state| async { .. })` runs its
//! closure only when someone asks for the next item. That is what makes "walk every page of
//! this API" safe to write as one stream: a consumer that `take`s five items fetches only the
//! pages that hold them, never the whole collection into memory first.
//!
//! `StreamExt` gives streams the iterator vocabulary (`map`, `filter`, `take`, `flat_map`,
//! `collect`) plus one thing iterators cannot do: `buffer_unordered(k)` turns a stream of
//! futures into a stream of their outputs, running at most `k` at once and yielding each as it
//! finishes. It is the everyday way to say "fetch these, at most 8 at a time". `buffered(k)`
//! does the same but yields in input order, so one slow head holds up the slots behind it;
//! `then` runs them one by one; `join_all` has no limit at all.
//! (Python: an async generator with `yield`, consumed by `async for`; a bounded `gather`.)
//!
//! ## Your job
//! Implement `item_ids` (with `stream::unfold`: fetch a page only when its items are needed),
//! `first_even_squares` (with `filter`, `map`, `take`) and `fetch_details` (with
//! `stream::iter` and `buffer_unordered(limit)`).
//!
//! ## Read
//! - <https://docs.rs/futures/latest/futures/stream/fn.unfold.html>
//! - <https://docs.rs/futures/latest/futures/stream/fn.iter.html>
//! - <https://docs.rs/futures/latest/futures/stream/trait.StreamExt.html>
//! - <https://docs.rs/futures/latest/futures/stream/trait.StreamExt.html#method.buffer_unordered>

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt};
use tokio::time::sleep;

/// Latency of one page request.
pub const PAGE_LATENCY: Duration = Duration::from_millis(10);
/// Latency of one detail request (a slow id takes three times as long).
pub const DETAIL_LATENCY: Duration = Duration::from_millis(100);

/// One page of ids and where the next page starts (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Page {
    pub ids: Vec<u32>,
    pub next: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub id: u32,
    pub name: String,
}

#[derive(Default)]
struct Counters {
    pages_fetched: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A pretend paginated API serving ids `1..=total`, `page_size` per page. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    total: u32,
    page_size: usize,
    slow: Arc<HashSet<u32>>,
    counters: Arc<Counters>,
}

impl Api {
    pub fn new(total: u32, page_size: usize) -> Self {
        assert!(page_size > 0);
        Api {
            total,
            page_size,
            slow: Arc::default(),
            counters: Arc::default(),
        }
    }

    /// Makes the detail requests for these ids three times slower.
    pub fn with_slow(mut self, ids: &[u32]) -> Self {
        self.slow = Arc::new(ids.iter().copied().collect());
        self
    }

    /// The page starting at `start` (an index into the ids; the first page starts at 0).
    pub async fn fetch_page(&self, start: usize) -> Page {
        self.counters.pages_fetched.fetch_add(1, Ordering::SeqCst);
        sleep(PAGE_LATENCY).await;
        let end = (start + self.page_size).min(self.total as usize);
        let ids = (start..end).map(|i| i as u32 + 1).collect();
        let next = (end < self.total as usize).then_some(end);
        Page { ids, next }
    }

    pub async fn fetch_detail(&self, id: u32) -> Detail {
        let now = self.counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let latency = if self.slow.contains(&id) {
            DETAIL_LATENCY * 3
        } else {
            DETAIL_LATENCY
        };
        sleep(latency).await;
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        Detail {
            id,
            name: format!("item #{id}"),
        }
    }

    pub fn pages_fetched(&self) -> usize {
        self.counters.pages_fetched.load(Ordering::SeqCst)
    }

    /// The most detail requests that were ever running at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.counters.max_in_flight.load(Ordering::SeqCst)
    }
}

/// Every id the API serves, in order, fetching each page only when its ids are pulled.
pub fn item_ids(api: Api) -> impl Stream<Item = u32> {
    // TODO: `stream::unfold` over "where the next page starts" (`Some(0)` at first, `None`
    // after the last page), yielding each page's ids; then flatten the pages into ids.
    // (This empty stream is only a placeholder, so that the file compiles.)
    let _ = api;
    stream::empty()
}

/// The squares of the first `n` even ids.
pub async fn first_even_squares(api: Api, n: usize) -> Vec<u32> {
    // TODO: `item_ids`, keep the even ids, square them, stop after `n`.
    todo!()
}

/// The details of all `ids`, with `limit` requests in flight while any are waiting (never
/// more); any order.
pub async fn fetch_details(api: Api, ids: Vec<u32>, limit: usize) -> Vec<Detail> {
    // TODO: a stream of `fetch_detail` futures, run at most `limit` at a time.
    todo!()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let api = Api::new(25, 10);
    println!(
        "first 3 even squares: {:?}",
        first_even_squares(api.clone(), 3).await
    );
    println!("pages fetched for them: {}", api.pages_fetched());
    let ids: Vec<u32> = item_ids(api.clone()).take(5).collect().await;
    for detail in fetch_details(api.clone(), ids, 2).await {
        println!("{detail:?}");
    }
    println!("most detail requests at once: {}", api.max_in_flight());
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/01_basics/streams_basics.toml`
    // (every page fetched up front or one page ahead, a page skipped, repeated or fetched past
    // the end, `take` before `filter`, `then`, `join_all`, `buffered`, a limit capped at a
    // fixed value, details made up without asking the api).
    use super::*;
    use proptest::prelude::*;
    use tokio::time::{Instant, timeout};

    async fn all_ids(api: Api) -> Vec<u32> {
        timeout(Duration::from_secs(3600), item_ids(api).collect())
            .await
            .expect("item_ids never ended: return None after the last page")
    }

    #[tokio::test(start_paused = true)]
    async fn item_ids_yields_every_id_in_order_one_fetch_per_page() {
        let api = Api::new(25, 10);
        let start = Instant::now();
        assert_eq!(all_ids(api.clone()).await, (1..=25).collect::<Vec<_>>());
        assert_eq!(api.pages_fetched(), 3, "25 ids, 10 per page: 3 pages");
        assert_eq!(start.elapsed(), PAGE_LATENCY * 3);
    }

    #[tokio::test(start_paused = true)]
    async fn item_ids_fetches_nothing_until_polled() {
        let api = Api::new(25, 10);
        let ids = item_ids(api.clone());
        assert_eq!(
            api.pages_fetched(),
            0,
            "creating the stream fetched a page: streams should be lazy"
        );
        drop(ids);
    }

    #[tokio::test(start_paused = true)]
    async fn take_fetches_only_the_pages_it_needs() {
        let api = Api::new(1000, 10);
        let ids: Vec<u32> = item_ids(api.clone()).take(25).collect().await;
        assert_eq!(ids, (1..=25).collect::<Vec<_>>());
        assert_eq!(
            api.pages_fetched(),
            3,
            "25 ids need 3 pages of 10; fetching more means the stream is not lazy"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn empty_api_ends_after_one_page() {
        let api = Api::new(0, 10);
        assert!(all_ids(api.clone()).await.is_empty());
        assert_eq!(api.pages_fetched(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn first_even_squares_filters_maps_and_stops_early() {
        let api = Api::new(1000, 10);
        let start = Instant::now();
        assert_eq!(first_even_squares(api.clone(), 3).await, [4, 16, 36]);
        assert_eq!(
            api.pages_fetched(),
            1,
            "the first 3 even ids are on page 1: no other page should be fetched"
        );
        assert_eq!(start.elapsed(), PAGE_LATENCY);
        assert_eq!(first_even_squares(Api::new(5, 2), 10).await, [4, 16]);
    }

    #[tokio::test(start_paused = true)]
    async fn details_run_exactly_limit_at_a_time() {
        let api = Api::new(0, 1);
        let start = Instant::now();
        let mut details = fetch_details(api.clone(), (1..=10).collect(), 4).await;
        assert_eq!(
            api.max_in_flight(),
            4,
            "at most (and at best) `limit` detail requests should run at once"
        );
        assert_eq!(
            start.elapsed(),
            DETAIL_LATENCY * 3,
            "10 requests, 4 at a time, 100 ms each: 3 rounds"
        );
        details.sort_by_key(|d| d.id);
        let ids: Vec<u32> = details.iter().map(|d| d.id).collect();
        assert_eq!(ids, (1..=10).collect::<Vec<_>>());
        assert_eq!(details[0].name, "item #1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_detail_does_not_hold_up_the_other_slot() {
        // Id 1 takes 300 ms, the others 100 ms. With 2 slots, one slot works on id 1 while
        // the other gets through ids 2..=5 one after the other: 400 ms in all.
        let api = Api::new(0, 1).with_slow(&[1]);
        let start = Instant::now();
        let details = fetch_details(api.clone(), (1..=5).collect(), 2).await;
        assert_eq!(details.len(), 5);
        assert_eq!(
            start.elapsed(),
            DETAIL_LATENCY * 4,
            "2 slots: id 1 (300 ms) in one, ids 2..=5 one after another in the other = 400 ms; longer means a free slot waited for the slow first id (buffered), shorter means no limit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_limit_is_used_in_full() {
        for (n, limit, rounds) in [(40, 16, 3), (10, 50, 1)] {
            let api = Api::new(0, 1);
            let start = Instant::now();
            let details = fetch_details(api.clone(), (1..=n).collect(), limit).await;
            assert_eq!(details.len(), n as usize);
            assert_eq!(
                (api.max_in_flight(), start.elapsed()),
                ((n as usize).min(limit), DETAIL_LATENCY * rounds),
                "{n} requests with a limit of {limit}: {} should run at once, in {rounds} \
                 rounds (is the limit the one asked for?)",
                (n as usize).min(limit)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any n and limit: high-water mark min(n, limit), time ceil(n / limit) rounds.
        #[test]
        fn details_take_ceil_n_over_limit_rounds(n in 0u32..40, limit in 1usize..10) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let api = Api::new(0, 1);
            let (elapsed, got) = runtime.block_on(async {
                let start = Instant::now();
                let got = fetch_details(api.clone(), (1..=n).collect(), limit).await;
                (start.elapsed(), got.len())
            });
            prop_assert_eq!(got, n as usize);
            prop_assert_eq!(api.max_in_flight(), (n as usize).min(limit));
            let rounds = (n as usize).div_ceil(limit) as u32;
            prop_assert_eq!(elapsed, DETAIL_LATENCY * rounds);
        }

        /// For any size and page size: every id once, in order, one fetch per page.
        #[test]
        fn item_ids_walks_every_page_once(total in 0u32..60, page_size in 1usize..12) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let api = Api::new(total, page_size);
            let ids = runtime.block_on(all_ids(api.clone()));
            prop_assert_eq!(ids, (1..=total).collect::<Vec<_>>());
            prop_assert_eq!(api.pages_fetched(), (total as usize).div_ceil(page_size).max(1));
        }
    }
}
