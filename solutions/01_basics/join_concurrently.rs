//! # Concurrency with `join!` and `join_all`
//!
//! A handler that awaits three independent calls one after the other waits for the *sum*
//! of their latencies; awaiting them together waits for the *longest*. That difference is
//! most of why services are written async at all.
//! (Python: `asyncio.gather(a(), b(), c())`.)
//!
//! `tokio::join!` polls a fixed set of futures concurrently and returns all their outputs
//! as a tuple. `futures::future::join_all` does the same for any number of futures of one
//! type and keeps the input order. Neither spawns a task: one task polls several futures
//! in turn, so there is concurrency without parallelism and no `'static` bound.
//!
//! ## Your job
//! `load_dashboard` and `fetch_prices` await one call after the other. Make both
//! concurrent without changing what they return.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/macro.join.html>
//! - <https://docs.rs/futures/latest/futures/future/fn.join_all.html>

use std::time::Duration;

use futures::future::join_all;
use tokio::time::sleep;

/// A pretend network call that answers after `latency_ms`.
async fn fetch(what: &str, latency_ms: u64) -> String {
    // Records the call on the check's timeline: the checks read what ran when from it, and
    // a failing check draws it.
    let _span = timeline::span(what);
    sleep(Duration::from_millis(latency_ms)).await;
    format!("{what}: ok")
}

#[derive(Debug, PartialEq, Eq)]
pub struct Dashboard {
    pub user: String,
    pub orders: String,
    pub recommendations: String,
}

/// Loads the three parts of a dashboard. They do not depend on each other.
pub async fn load_dashboard() -> Dashboard {
    let (user, orders, recommendations) = tokio::join!(
        fetch("user", 300),
        fetch("orders", 200),
        fetch("recommendations", 100),
    );
    Dashboard {
        user,
        orders,
        recommendations,
    }
}

/// Fetches the price of every `(item, latency_ms)`; the answers come back in input order.
pub async fn fetch_prices(items: &[(&str, u64)]) -> Vec<String> {
    join_all(items.iter().map(|&(item, latency)| fetch(item, latency))).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("{:?}", load_dashboard().await);
    println!("{:?}", fetch_prices(&[("apple", 30), ("pear", 10)]).await);
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - awaiting one call after another: virtual time is the sum, not the longest;
    // - answers in completion order (FuturesUnordered, a channel) or sorted afterwards: the
    //   slow-first input is in neither order;
    // - mixing up the dashboard's fields: the values are compared;
    // - answers written by hand after sleeping the longest latency: the calls `fetch`
    //   recorded on the timeline are checked.
    // More in corpus/01_basics/join_concurrently.toml.
    use super::*;
    use proptest::prelude::*;
    use timeline::{Event, Timeline};
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn dashboard_waits_for_the_longest_call_not_the_sum() {
        let timeline = Timeline::new();
        let _recording = timeline.install();
        let start = Instant::now();
        let dashboard = load_dashboard().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "three calls of 300, 200 and 100 ms run together should take 300 ms\n{}",
            timeline.picture("all three start at 0 ms: 300 ms in all, not 600")
        );
        assert_eq!(
            dashboard,
            Dashboard {
                user: "user: ok".into(),
                orders: "orders: ok".into(),
                recommendations: "recommendations: ok".into(),
            }
        );
    }

    /// A call the server answered: `what`, from `start_ms` to `end_ms` on the check's clock.
    fn call(what: &str, start_ms: u64, end_ms: u64) -> Event {
        Event {
            row: what.to_owned(),
            start: Duration::from_millis(start_ms),
            end: Some(Duration::from_millis(end_ms)),
        }
    }

    /// The calls `fetch` recorded on `timeline`, sorted by name.
    fn calls(timeline: &Timeline) -> Vec<Event> {
        let mut calls = timeline.events();
        calls.sort_by(|a, b| a.row.cmp(&b.row));
        calls
    }

    #[tokio::test(start_paused = true)]
    async fn every_part_is_really_fetched_and_the_calls_start_together() {
        let timeline = Timeline::new();
        let recording = timeline.install();
        load_dashboard().await;
        drop(recording);
        assert_eq!(
            calls(&timeline),
            [
                call("orders", 0, 200),
                call("recommendations", 0, 100),
                call("user", 0, 300),
            ],
            "the server should have answered one call per part, all started at once: the \
             dashboard's values must come from `fetch`, not be written by hand\n{}",
            timeline.picture("user, orders and recommendations each fetched once, all from 0 ms")
        );

        let timeline = Timeline::new();
        let _recording = timeline.install();
        fetch_prices(&[("apple", 30), ("pear", 10)]).await;
        assert_eq!(
            calls(&timeline),
            [call("apple", 0, 30), call("pear", 0, 10)],
            "one `fetch` per item, all started at once: the prices must come from the server\n{}",
            timeline.picture("apple and pear each fetched once, both from 0 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn prices_keep_input_order_even_when_the_first_is_slowest() {
        let timeline = Timeline::new();
        let _recording = timeline.install();
        let start = Instant::now();
        let prices = fetch_prices(&[("pear", 300), ("apple", 200), ("plum", 100)]).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "three prices of 300, 200 and 100 ms fetched together should take 300 ms\n{}",
            timeline.picture("all three start at 0 ms: 300 ms in all, not 600")
        );
        assert_eq!(
            prices,
            ["pear: ok", "apple: ok", "plum: ok"],
            "the prices should come back in the order of the items asked for, not in the \
             order they arrive nor sorted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_items_no_wait() {
        let start = Instant::now();
        assert!(fetch_prices(&[]).await.is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any latencies: elapsed virtual time is the longest one, answers in input order.
        #[test]
        fn prices_take_the_longest_latency(latencies in prop::collection::vec(0u64..5_000, 0..16)) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let names: Vec<String> = (0..latencies.len()).map(|i| format!("item{i}")).collect();
            let items: Vec<(&str, u64)> = names.iter().map(String::as_str).zip(latencies.iter().copied()).collect();
            let (elapsed, prices) = runtime.block_on(async {
                let start = Instant::now();
                let prices = fetch_prices(&items).await;
                (start.elapsed(), prices)
            });
            let longest = latencies.iter().copied().max().unwrap_or(0);
            prop_assert_eq!(elapsed, Duration::from_millis(longest));
            let expected: Vec<String> = names.iter().map(|n| format!("{n}: ok")).collect();
            prop_assert_eq!(prices, expected);
        }
    }
}
