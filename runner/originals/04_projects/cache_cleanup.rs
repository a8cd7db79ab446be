//! # TTL + LRU cache, step 3 of 3: a background cleanup task, and many tasks at once
//!
//! *This step adds:* sharing and sweeping. Step 2's `Cache` is here, solved and unchanged.
//! `SharedCache` wraps it for a real service: any number of tasks use one cache at once
//! (`Arc<SharedCache>`, methods on `&self`), and a background task purges expired entries
//! every `cleanup_every`, so entries nobody asks for again do not sit in memory until LRU
//! pushes them out.
//!
//! The lock is a `std::sync::Mutex`: every operation is a few map operations with no `.await`
//! inside, so a short blocking lock is cheaper than `tokio::sync::Mutex` (whose point is to
//! be held *across* an `.await`). Lock, work, unlock; never hold the guard across an `.await`
//! (it is not `Send`, and a task on another thread would block on it).
//!
//! A spawned task lives until it returns or is aborted, whoever owns its `JoinHandle`;
//! dropping the handle does **not** stop it. A background task that holds an `Arc` of the
//! cache keeps the cache alive and runs forever, once per `cleanup_every`, for nothing: a
//! leak that grows with every cache made. Tie its life to the owner's: the task holds only a
//! `Weak` (it never keeps the cache alive, and ends at its next round once the cache is gone),
//! and/or `SharedCache`'s `Drop` aborts it (it stops at once). `tokio-util`'s
//! `AbortOnDropHandle` packages the second idea.
//! (Python: `asyncio.create_task(sweeper())` kept in the object and `task.cancel()` in its
//! `close()`; `weakref.ref(cache)` in the sweeper.)
//!
//! ## Your job
//! Implement `SharedCache::new` (it spawns the sweeper), `get`, `insert`, and stop the sweeper
//! when the `SharedCache` is dropped.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/time/fn.interval_at.html>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinHandle.html#method.abort>
//! - <https://doc.rust-lang.org/std/sync/struct.Weak.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Mutex.html#which-kind-of-mutex-should-you-use>
//! - <https://docs.rs/tokio-util/latest/tokio_util/task/struct.AbortOnDropHandle.html>

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// What the cache has done since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `get`s that found their key alive.
    pub hits: u64,
    /// `get`s that did not (absent or expired).
    pub misses: u64,
    /// Entries removed to make room for a new key.
    pub evictions: u64,
    /// Expired entries removed, by `get` or by `purge_expired`.
    pub expirations: u64,
}

/// A cache of at most `capacity` entries, each alive for `ttl` after it was written, that
/// evicts the least recently used one.
pub struct Cache<K, V> {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<K, Entry<V>>,
    /// Every key by its last use, oldest first: the first one is the next to evict.
    by_use: BTreeMap<u64, K>,
    /// Counts uses, so that a later use has a larger number.
    uses: u64,
    stats: Stats,
}

struct Entry<V> {
    value: V,
    last_use: u64,
    expires_at: Instant,
}

impl<K: Hash + Eq + Clone, V: Clone> Cache<K, V> {
    /// An empty cache that holds at most `capacity` entries (at least one), each for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        assert!(capacity > 0, "a cache must hold at least one entry");
        Cache {
            capacity,
            ttl,
            entries: HashMap::with_capacity(capacity),
            by_use: BTreeMap::new(),
            uses: 0,
            stats: Stats::default(),
        }
    }

    /// The value of `key`, if cached and alive: a hit, and now its most recent use. Otherwise
    /// a miss; an expired entry is removed (an expiration).
    pub fn get(&mut self, key: &K) -> Option<V> {
        let now = self.next_use();
        let Some(entry) = self.entries.get_mut(key) else {
            self.stats.misses += 1;
            return None;
        };
        if entry.expires_at <= Instant::now() {
            let last_use = entry.last_use;
            self.entries.remove(key);
            self.by_use.remove(&last_use);
            self.stats.expirations += 1;
            self.stats.misses += 1;
            return None;
        }
        self.by_use.remove(&entry.last_use);
        self.by_use.insert(now, key.clone());
        entry.last_use = now;
        self.stats.hits += 1;
        Some(entry.value.clone())
    }

    /// Caches `value` under `key` as its most recent use, alive for `ttl` from now. A new key
    /// in a full cache first evicts the least recently used entry; a key already cached only
    /// gets the new value and a new expiry.
    pub fn insert(&mut self, key: K, value: V) {
        let now = self.next_use();
        let expires_at = Instant::now() + self.ttl;
        if let Some(entry) = self.entries.get_mut(&key) {
            self.by_use.remove(&entry.last_use);
            self.by_use.insert(now, key);
            *entry = Entry {
                value,
                last_use: now,
                expires_at,
            };
            return;
        }
        if self.entries.len() == self.capacity
            && let Some((_, oldest)) = self.by_use.pop_first()
        {
            self.entries.remove(&oldest);
            self.stats.evictions += 1;
        }
        self.by_use.insert(now, key.clone());
        self.entries.insert(
            key,
            Entry {
                value,
                last_use: now,
                expires_at,
            },
        );
    }

    /// Removes every expired entry (each one an expiration); returns how many.
    pub fn purge_expired(&mut self) -> usize {
        let now = Instant::now();
        let before = self.entries.len();
        let by_use = &mut self.by_use;
        self.entries.retain(|_, entry| {
            let alive = now < entry.expires_at;
            if !alive {
                by_use.remove(&entry.last_use);
            }
            alive
        });
        let purged = before - self.entries.len();
        self.stats.expirations += purged as u64;
        purged
    }

    /// Whether `key` is cached, expired or not, without using it: no change to the order or
    /// the statistics.
    pub fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// How many entries are cached, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn next_use(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }
}

/// A cache for many tasks at once, swept of expired entries every `cleanup_every`.
pub struct SharedCache<K, V> {
    cache: Arc<Mutex<Cache<K, V>>>,
    // TODO: what you need to stop the sweeper when the cache is dropped.
}

impl<K, V> SharedCache<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// A cache of `capacity` entries alive for `ttl`, and its sweeper, whose first round is
    /// `cleanup_every` from now. Call it inside a tokio runtime.
    pub fn new(capacity: usize, ttl: Duration, cleanup_every: Duration) -> Self {
        // TODO: make the shared cache and spawn its sweeper: every `cleanup_every`, it purges
        // the expired entries, and it stops once the cache is dropped.
        let _ = (capacity, ttl, cleanup_every);
        todo!()
    }

    pub fn get(&self, key: &K) -> Option<V> {
        // TODO
        let _ = key;
        todo!()
    }

    pub fn insert(&self, key: K, value: V) {
        // TODO
        let _ = (key, value);
        todo!()
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.lock().contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats()
    }

    /// The cache, for one short synchronous operation: never keep the guard across an
    /// `.await`.
    fn lock(&self) -> MutexGuard<'_, Cache<K, V>> {
        self.cache
            .lock()
            .expect("a thread panicked while using the cache")
    }
}

// TODO: stop the sweeper when the `SharedCache` is dropped.

#[tokio::main]
async fn main() {
    let cache = Arc::new(SharedCache::new(
        100,
        Duration::from_millis(300),
        Duration::from_millis(100),
    ));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                for round in 0..5 {
                    let key = format!("user:{}", (worker + round) % 6);
                    if cache.get(&key).is_none() {
                        cache.insert(key, format!("profile loaded by worker {worker}"));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    println!(
        "after the workers: {} entries, {:?}",
        cache.len(),
        cache.stats()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    println!(
        "400 ms later, swept: {} entries, {:?}",
        cache.len(),
        cache.stats()
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/cache_cleanup.toml`
    // (a sweeper that holds an `Arc` and outlives the cache, a `Weak` upgraded once for good,
    // a sweeper that runs once, sweeps before its first period or never, a `tokio::sync::Mutex`
    // locked with `blocking_lock`, a `get` that does not go through the shared cache), and
    // steps 1 and 2's (see `cache_lru`, `cache_expiry`).
    use super::*;
    use tokio::runtime::Handle;
    use tokio::time::sleep;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn alive_tasks() -> usize {
        Handle::current().metrics().num_alive_tasks()
    }

    #[test]
    fn a_shared_cache_can_be_shared_between_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<SharedCache<String, String>>();
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_purges_expired_entries_every_period() {
        // TTL 100 ms, a round every 30 ms: rounds at 30, 60, 90, 120, 150 … ms.
        let cache = SharedCache::new(8, ms(100), ms(30));
        let start = Instant::now();
        cache.insert("a", 1);
        sleep(ms(95)).await;
        assert_eq!(
            cache.len(),
            1,
            "at 95 ms `a` is alive: no round may remove it"
        );
        sleep(ms(15)).await;
        assert_eq!(
            cache.len(),
            1,
            "`a` expired at 100 ms but no round has run since (rounds at 90 and 120 ms): \
             only a round or a `get` removes it"
        );
        sleep(ms(15)).await;
        assert_eq!(
            cache.len(),
            0,
            "the round at 120 ms should have purged `a` (is the sweeper running every 30 ms?)"
        );
        assert_eq!(cache.stats().expirations, 1);

        cache.insert("b", 2); // at 125 ms: expires at 225 ms, purged by the round at 240 ms
        sleep_until(start + ms(239)).await;
        assert_eq!(cache.len(), 1, "`b` is only purged by the round at 240 ms");
        sleep_until(start + ms(241)).await;
        assert_eq!(
            cache.len(),
            0,
            "the round at 240 ms should have purged `b`: the sweeper must go on round after round"
        );
        assert_eq!(
            cache.stats(),
            Stats {
                expirations: 2,
                ..Stats::default()
            }
        );
    }

    async fn sleep_until(deadline: Instant) {
        tokio::time::sleep_until(deadline).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_stops_when_the_cache_is_dropped() {
        let value = Arc::new("a big value");
        let cache = SharedCache::new(8, ms(100), ms(30));
        assert_eq!(alive_tasks(), 1, "`new` should spawn the sweeper");
        cache.insert("key", Arc::clone(&value));
        sleep(ms(70)).await;
        assert_eq!(
            alive_tasks(),
            1,
            "the sweeper runs as long as the cache exists"
        );
        drop(cache);
        // A sweeper holding a `Weak` notices at its next round (90 ms); an aborted one at once.
        sleep(ms(30)).await;
        assert_eq!(
            alive_tasks(),
            0,
            "the cache was dropped at 70 ms: its sweeper should be gone by its next round \
             (does it hold an `Arc` of the cache, or run forever?)"
        );
        assert_eq!(
            Arc::strong_count(&value),
            1,
            "the cache is gone: nothing may keep its entries in memory"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_tasks_use_one_cache_at_once() {
        // Room for every key and a TTL longer than the test: every insert must stay visible.
        let cache = Arc::new(SharedCache::new(1000, Duration::from_secs(3600), ms(1)));
        let tasks: Vec<_> = (0..50u32)
            .map(|task| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move {
                    for round in 0..20u32 {
                        let key = task * 100 + round;
                        assert_eq!(cache.get(&key), None, "key {key} was never inserted");
                        cache.insert(key, key * 2);
                        tokio::task::yield_now().await;
                        assert_eq!(
                            cache.get(&key),
                            Some(key * 2),
                            "task {task} inserted key {key}: it must find it"
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a task using the cache panicked");
        }
        assert_eq!(cache.len(), 1000);
        assert_eq!(
            cache.stats(),
            Stats {
                hits: 1000,
                misses: 1000,
                ..Stats::default()
            },
            "every get counted once, whichever task made it"
        );
    }
}
