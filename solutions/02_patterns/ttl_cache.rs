//! # A TTL cache with single flight
//!
//! A cache in front of a slow origin (a database, another service) answers from memory for
//! a while, `ttl`, then loads again so that answers are never older than that. Two details
//! make it production-grade. *Single flight*: when a popular key expires, a hundred requests
//! miss it at the same moment; they must share one load instead of sending a hundred to the
//! origin (the "thundering herd" or "cache stampede"). And *errors are not cached*: a failed
//! load goes back to its caller, and the next caller tries again.
//! (Python: `aiocache` with a lock per key, or `async-lru`'s `alru_cache(ttl=...)`.)
//!
//! `tokio::sync::OnceCell` is single flight for one value: `get_or_try_init(load)` runs
//! `load` in the first caller only; the others wait for it and get its value. If the load
//! fails (or its caller is cancelled), the cell stays empty and a waiting caller runs its own
//! load. So the cache maps each key to an `Arc<OnceCell<Entry>>`: take the key's cell out of
//! the map under a `std` mutex (held for a moment, never across an `.await`), replacing it
//! with a fresh cell when its entry has expired, then await the cell outside the lock, so
//! that loads of different keys run at the same time.
//!
//! ## Your job
//! Write `Cache::get`: a fresh entry is returned without calling the origin; otherwise one
//! load per key at a time, shared by every caller waiting for that key; a value expires
//! `ttl` after its load finished (on tokio's clock); an error is returned, never cached.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.OnceCell.html#method.get_or_try_init>
//! - <https://docs.rs/tokio/latest/tokio/time/struct.Instant.html>
//! - <https://doc.rust-lang.org/std/collections/hash_map/enum.Entry.html>
//! - A real service uses <https://docs.rs/moka/latest/moka/future/struct.Cache.html>
//!   (`time_to_live`, and `try_get_with` for single flight).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use timeline::Timeline;
use tokio::sync::OnceCell;
use tokio::time::{Instant, sleep};

/// A load takes this long.
pub const LOAD_TIME: Duration = Duration::from_millis(100);

/// A pretend slow origin. It counts its loads per key and answers `"{key} v{n}"` for the
/// n-th load of a key, so a stale answer shows. Keys starting with `bad` always fail, and
/// `fail_next` makes the next load of a key fail.
#[derive(Clone, Default)]
pub struct Origin {
    loads: Arc<Mutex<HashMap<String, u32>>>,
    failing: Arc<Mutex<Vec<String>>>,
    timeline: Timeline,
}

impl Origin {
    pub fn new(timeline: Timeline) -> Self {
        Origin {
            timeline,
            ..Origin::default()
        }
    }

    pub async fn load(&self, key: &str) -> Result<String, String> {
        let _span = self.timeline.span(format!("load {key}"));
        sleep(LOAD_TIME).await;
        let n = {
            let mut loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
            let n = loads.entry(key.to_string()).or_default();
            *n += 1;
            *n
        };
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = failing.iter().position(|k| k == key) {
            failing.remove(at);
            return Err(format!("{key}: origin unavailable"));
        }
        if key.starts_with("bad") {
            return Err(format!("{key}: no such key"));
        }
        Ok(format!("{key} v{n}"))
    }

    /// The next load of `key` fails.
    pub fn fail_next(&self, key: &str) {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key.to_string());
    }

    /// How many times `key` was loaded.
    pub fn loads(&self, key: &str) -> u32 {
        let loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
        loads.get(key).copied().unwrap_or(0)
    }
}

/// A cached value and when it stops being fresh.
struct Entry {
    value: String,
    expires: Instant,
}

/// Values of `origin`, each fresh for `ttl` after its load finished.
pub struct Cache {
    origin: Origin,
    ttl: Duration,
    cells: Mutex<HashMap<String, Arc<OnceCell<Entry>>>>,
}

impl Cache {
    pub fn new(origin: Origin, ttl: Duration) -> Self {
        Cache {
            origin,
            ttl,
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key`: from the cache while fresh, else loaded once for every caller
    /// waiting for it. A failed load is returned to its caller and not kept.
    pub async fn get(&self, key: &str) -> Result<String, String> {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            let cell = cells.entry(key.to_string()).or_default();
            let now = Instant::now();
            let expired = cell.get().is_some_and(|entry| entry.expires <= now);
            if expired {
                // Expired: the next load goes into a fresh cell. Callers still holding the
                // old one got its value before it expired.
                *cell = Arc::default();
            }
            Arc::clone(cell)
        };
        let entry = cell
            .get_or_try_init(|| async {
                let value = self.origin.load(key).await?;
                Ok::<_, String>(Entry {
                    value,
                    expires: Instant::now() + self.ttl,
                })
            })
            .await?;
        Ok(entry.value.clone())
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let cache = Arc::new(Cache::new(Origin::default(), Duration::from_secs(60)));
    let start = Instant::now();
    let requests: Vec<_> = (0..5)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.get("user:42").await })
        })
        .collect();
    for request in requests {
        println!("{:?}", request.await.expect("a request panicked"));
    }
    println!(
        "5 requests, {} load(s), {:?}",
        cache.origin.loads("user:42"),
        start.elapsed()
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/ttl_cache.toml tries each):
    // - no single flight (each missing caller loads, or a check-then-load race);
    // - one lock held across the load (loads of different keys wait for each other);
    // - no expiry, expiry measured from the first request instead of the end of the load,
    //   an off-by-one at the boundary, or a stale value served while a new one loads;
    // - errors cached (the next caller gets the old error without a new load);
    // - a cancelled loader leaving its waiters stuck.
    use super::*;
    use proptest::prelude::*;

    const TTL: Duration = Duration::from_millis(1000);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn cache() -> (Arc<Cache>, Origin, Timeline) {
        let timeline = Timeline::new();
        let origin = Origin::new(timeline.clone());
        (Arc::new(Cache::new(origin.clone(), TTL)), origin, timeline)
    }

    /// `callers` concurrent gets of each key; returns the answers and how long they took.
    async fn together(
        cache: &Arc<Cache>,
        keys: &[&str],
        callers: usize,
    ) -> (Vec<Result<String, String>>, Duration) {
        let start = Instant::now();
        let tasks: Vec<_> = keys
            .iter()
            .flat_map(|&key| std::iter::repeat_n(key, callers))
            .map(|key| {
                let (cache, key) = (Arc::clone(cache), key.to_string());
                tokio::spawn(async move { cache.get(&key).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("a get panicked"));
        }
        (answers, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_value_comes_from_the_cache() {
        let (cache, origin, _) = cache();
        assert_eq!(cache.get("a").await, Ok("a v1".to_string()));
        let start = Instant::now();
        assert_eq!(cache.get("a").await, Ok("a v1".to_string()));
        assert_eq!(
            origin.loads("a"),
            1,
            "a fresh value should not be loaded again"
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "a hit should not wait");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_load() {
        let (cache, origin, timeline) = cache();
        let (answers, elapsed) = together(&cache, &["a"], 10).await;
        assert_eq!(
            origin.loads("a"),
            1,
            "10 callers missed \"a\" at once: they should share one load\n{}",
            timeline.picture("one load of a")
        );
        assert_eq!(answers, vec![Ok("a v1".to_string()); 10]);
        assert_eq!(
            elapsed, LOAD_TIME,
            "every caller should get the value when the one load ends"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_load_at_the_same_time() {
        let (cache, origin, timeline) = cache();
        let (answers, elapsed) = together(&cache, &["a", "b", "c"], 2).await;
        assert_eq!(
            elapsed,
            LOAD_TIME,
            "loads of different keys should not wait for each other: is a lock held across \
             the load?\n{}",
            timeline.picture("a, b and c loading at once")
        );
        assert_eq!(
            (origin.loads("a"), origin.loads("b"), origin.loads("c")),
            (1, 1, 1)
        );
        assert_eq!(answers[4], Ok("c v1".to_string()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_expires_ttl_after_its_load_finished() {
        let (cache, origin, timeline) = cache();
        let start = Instant::now();
        cache.get("a").await.expect("loads"); // loaded at 100 ms
        tokio::time::sleep_until(start + LOAD_TIME + TTL - ms(1)).await;
        assert_eq!(
            cache.get("a").await,
            Ok("a v1".to_string()),
            "still fresh 1 ms before its ttl ends"
        );
        tokio::time::sleep_until(start + LOAD_TIME + TTL).await;
        assert_eq!(
            cache.get("a").await,
            Ok("a v2".to_string()),
            "loaded at 100 ms with a ttl of 1000 ms, the value is stale at 1100 ms: the next \
             get should load it again and return the new value\n{}",
            timeline.picture("loads of a at 0 and 1100 ms")
        );
        assert_eq!(origin.loads("a"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn callers_of_an_expired_key_share_one_reload() {
        let (cache, origin, _) = cache();
        cache.get("a").await.expect("loads");
        tokio::time::sleep(TTL).await;
        let (answers, elapsed) = together(&cache, &["a"], 5).await;
        assert_eq!(
            origin.loads("a"),
            2,
            "5 callers of an expired key should share one reload"
        );
        assert_eq!(
            answers,
            vec![Ok("a v2".to_string()); 5],
            "no caller should get the stale value"
        );
        assert_eq!(elapsed, LOAD_TIME);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_is_not_cached() {
        let (cache, origin, _) = cache();
        origin.fail_next("a");
        assert_eq!(
            cache.get("a").await,
            Err("a: origin unavailable".to_string())
        );
        assert_eq!(
            cache.get("a").await,
            Ok("a v2".to_string()),
            "after a failed load, the next get should load again"
        );
        assert_eq!(origin.loads("a"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_load_lets_a_waiting_caller_load() {
        let (cache, origin, timeline) = cache();
        let first = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.get("a").await })
        };
        tokio::task::yield_now().await; // the first caller is loading
        let second = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.get("a").await })
        };
        sleep(ms(50)).await;
        first.abort();
        let start = Instant::now();
        let answer = tokio::time::timeout(ms(10_000), second)
            .await
            .expect("a caller waiting for a cancelled load waited forever")
            .expect("the second caller panicked");
        assert_eq!(answer, Ok("a v1".to_string()));
        assert_eq!(
            start.elapsed(),
            LOAD_TIME,
            "the waiting caller should start its own load when the first is cancelled\n{}",
            timeline.picture("load of a cancelled at 50 ms, then a second load")
        );
        assert_eq!(origin.loads("a"), 1, "the cancelled load never finished");
    }

    fn run_paused<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
            .block_on(future)
    }

    /// One step: wait `gap` ms, then `callers` concurrent gets of `key`.
    fn steps() -> impl Strategy<Value = Vec<(u64, &'static str, usize)>> {
        prop::collection::vec(
            (
                0u64..1_500,
                prop::sample::select(vec!["a", "b", "bad"]),
                1usize..4,
            ),
            1..20,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any sequence of (gap, key, concurrent callers) against a model map of
        /// key -> (version, expiry): the same answers, loads and times.
        #[test]
        fn the_cache_agrees_with_a_model_map(steps in steps()) {
            let observed = run_paused(async {
                let (cache, origin, _) = cache();
                let mut observed = Vec::new();
                for &(gap, key, callers) in &steps {
                    sleep(ms(gap)).await;
                    let (answers, elapsed) = together(&cache, &[key], callers).await;
                    observed.push((answers, elapsed, origin.loads(key)));
                }
                observed
            });
            // The model: fresh values by key, with their expiry in ms since the start.
            let mut model: HashMap<&str, (u32, u64)> = HashMap::new();
            let mut loads: HashMap<&str, u32> = HashMap::new();
            let mut now = 0;
            for (&(gap, key, callers), (answers, elapsed, origin_loads)) in steps.iter().zip(&observed) {
                now += gap;
                let loads = loads.entry(key).or_default();
                if key == "bad" {
                    // Every caller fails; none of it is kept. (Waiting callers may retry.)
                    prop_assert!(answers.iter().all(Result::is_err), "a failing key gave a value");
                    prop_assert!(*origin_loads > *loads, "an error was served from the cache");
                    *loads = *origin_loads;
                    now += elapsed.as_millis() as u64;
                    continue;
                }
                let (version, took) = match model.get(key) {
                    Some(&(version, expires)) if now < expires => (version, 0),
                    _ => {
                        *loads += 1;
                        let took = LOAD_TIME.as_millis() as u64;
                        model.insert(key, (*loads, now + took + TTL.as_millis() as u64));
                        (*loads, took)
                    }
                };
                let expected = vec![Ok(format!("{key} v{version}")); callers];
                prop_assert_eq!(answers, &expected, "at {} ms, {} callers of {}", now, callers, key);
                prop_assert_eq!(*elapsed, ms(took), "how long the gets took at {} ms", now);
                prop_assert_eq!(*origin_loads, *loads, "loads of {} by {} ms", key, now);
                now += took;
            }
        }
    }
}
