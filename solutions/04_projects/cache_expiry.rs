//! # TTL + LRU cache, step 2 of 3: expiry on tokio's clock
//!
//! *This step adds:* a time to live. The LRU cache of step 1 is here, solved; each entry now
//! also expires `ttl` after it was inserted (or last updated). A cached value is a copy, and
//! copies go stale: a price, a permission, a DNS answer must be fetched again after a while,
//! however often it is read. An expired entry is a miss, and `get` removes it on the way.
//! Expired entries nobody asks for stay until `purge_expired` sweeps them (step 3 runs it
//! in the background); meanwhile they take room like any other entry.
//! (Python: `cachetools.TTLCache(maxsize, ttl)`; `aiocache`'s `ttl=` argument.)
//!
//! Read the time from `tokio::time::Instant`, not `std::time::Instant`. It is the same clock
//! in production, but under `#[tokio::test(start_paused = true)]` it stands still until the
//! test advances it: the checks can say "at exactly 1 s the entry is gone" and run in
//! microseconds. A cache measured with `std::time` can only be tested by really waiting.
//! An entry inserted at `t` with a TTL of `ttl` is alive strictly before `t + ttl` and expired
//! from `t + ttl` on. A `get` does not extend the TTL (only an `insert` does); it still counts
//! as a use for LRU.
//!
//! ## Your job
//! Store each entry's expiry time, make `get` treat an expired entry as a miss (and remove it,
//! counting an expiration), and implement `purge_expired`.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/time/struct.Instant.html>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.advance.html>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.pause.html>
//! - <https://doc.rust-lang.org/std/collections/struct.HashMap.html#method.retain>

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
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

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    // The paused clock: `advance` moves time forward at once, as in the checks.
    let mut cache = Cache::new(2, Duration::from_secs(60));
    cache.insert("EUR/USD", 1.08);
    println!("at 0 s:  EUR/USD -> {:?}", cache.get(&"EUR/USD"));
    tokio::time::advance(Duration::from_secs(59)).await;
    println!("at 59 s: EUR/USD -> {:?}", cache.get(&"EUR/USD"));
    tokio::time::advance(Duration::from_secs(1)).await;
    println!("at 60 s: EUR/USD -> {:?} (expired)", cache.get(&"EUR/USD"));
    println!("{:?}", cache.stats());
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/cache_expiry.toml`
    // (expired values served, `std::time::Instant`, alive one tick too long, a `get` that
    // extends the TTL, an update that keeps the old expiry, an expired entry counted as a hit
    // or left in place, a purge that removes live entries or forgets the use order), and
    // step 1's (see `cache_lru`).
    use super::*;
    use proptest::prelude::*;
    use tokio::time::advance;

    const TTL: Duration = Duration::from_millis(1000);

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_is_alive_until_its_ttl_and_a_miss_from_then_on() {
        let mut cache = Cache::new(4, TTL);
        cache.insert("a", 1);
        advance(ms(999)).await;
        assert_eq!(
            cache.get(&"a"),
            Some(1),
            "999 ms after insertion, a 1 s TTL is not over"
        );
        advance(ms(1)).await;
        assert_eq!(
            cache.get(&"a"),
            None,
            "exactly 1 s after insertion the entry has expired (read the time with \
             tokio::time::Instant, which follows the paused clock)"
        );
        assert!(
            !cache.contains_key(&"a"),
            "`get` removes the expired entry it finds"
        );
        assert_eq!(
            cache.stats(),
            Stats {
                hits: 1,
                misses: 1,
                evictions: 0,
                expirations: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reading_does_not_extend_the_ttl_but_writing_does() {
        let mut cache = Cache::new(4, TTL);
        cache.insert("read", 1);
        cache.insert("written", 2);
        advance(ms(600)).await;
        assert_eq!(cache.get(&"read"), Some(1));
        cache.insert("written", 20);
        advance(ms(400)).await;
        assert_eq!(
            cache.get(&"read"),
            None,
            "a read at 600 ms does not extend the TTL: the entry expires at 1000 ms"
        );
        assert_eq!(
            cache.get(&"written"),
            Some(20),
            "written again at 600 ms, the entry lives until 1600 ms"
        );
        advance(ms(600)).await;
        assert_eq!(cache.get(&"written"), None, "expired at 1600 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn purge_removes_exactly_the_expired_entries() {
        let mut cache = Cache::new(4, TTL);
        cache.insert("old", 1);
        advance(ms(500)).await;
        cache.insert("new", 2);
        assert_eq!(cache.purge_expired(), 0, "nothing has expired at 500 ms");
        advance(ms(500)).await;
        assert_eq!(
            cache.purge_expired(),
            1,
            "at 1000 ms only `old` has expired"
        );
        assert!(!cache.contains_key(&"old"));
        assert_eq!(cache.get(&"new"), Some(2));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.stats().expirations, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_entries_take_room_until_removed() {
        let mut cache = Cache::new(2, TTL);
        cache.insert("a", 1);
        cache.insert("b", 2);
        advance(TTL).await;
        assert_eq!(
            cache.len(),
            2,
            "expired entries stay until `get` or a purge removes them"
        );
        assert_eq!(cache.purge_expired(), 2);
        cache.insert("c", 3);
        cache.insert("d", 4);
        assert_eq!(
            cache.stats().evictions,
            0,
            "the purge made room: inserting 2 keys in an empty cache of 2 evicts nothing \
             (did the purge leave the removed keys in the use order?)"
        );
        cache.insert("e", 5);
        assert!(!cache.contains_key(&"c"), "`c` is the least recently used");
        assert_eq!(cache.stats().evictions, 1);
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Get(u8),
        Insert(u8, u32),
        Advance(u64),
        Purge,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..6).prop_map(Op::Get),
            3 => (0u8..6, any::<u32>()).prop_map(|(key, value)| Op::Insert(key, value)),
            2 => (0u64..700).prop_map(Op::Advance),
            1 => Just(Op::Purge),
        ]
    }

    /// A simple model: (key, value, expires at in ms), least recently used first.
    #[derive(Default)]
    struct Model {
        now: u64,
        entries: Vec<(u8, u32, u64)>,
        stats: Stats,
    }

    impl Model {
        fn get(&mut self, key: u8) -> Option<u32> {
            let Some(i) = self.entries.iter().position(|e| e.0 == key) else {
                self.stats.misses += 1;
                return None;
            };
            let entry = self.entries.remove(i);
            if entry.2 <= self.now {
                self.stats.misses += 1;
                self.stats.expirations += 1;
                return None;
            }
            self.entries.push(entry);
            self.stats.hits += 1;
            Some(entry.1)
        }

        fn insert(&mut self, key: u8, value: u32, capacity: usize, ttl: u64) {
            if let Some(i) = self.entries.iter().position(|e| e.0 == key) {
                self.entries.remove(i);
            } else if self.entries.len() == capacity {
                self.entries.remove(0);
                self.stats.evictions += 1;
            }
            self.entries.push((key, value, self.now + ttl));
        }

        fn purge(&mut self) -> usize {
            let before = self.entries.len();
            self.entries.retain(|e| self.now < e.2);
            let purged = before - self.entries.len();
            self.stats.expirations += purged as u64;
            purged
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any operations and clock advances: the cache agrees with the model.
        #[test]
        fn the_cache_agrees_with_a_model_on_the_paused_clock(
            capacity in 1usize..5,
            ttl in 1u64..1500,
            ops in prop::collection::vec(op(), 0..60),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async {
                let mut cache = Cache::new(capacity, ms(ttl));
                let mut model = Model::default();
                for op in ops {
                    match op {
                        Op::Get(key) => prop_assert_eq!(
                            cache.get(&key), model.get(key), "get({}) at {} ms", key, model.now
                        ),
                        Op::Insert(key, value) => {
                            cache.insert(key, value);
                            model.insert(key, value, capacity, ttl);
                        }
                        Op::Advance(by) => {
                            advance(ms(by)).await;
                            model.now += by;
                        }
                        Op::Purge => prop_assert_eq!(
                            cache.purge_expired(), model.purge(), "purge at {} ms", model.now
                        ),
                    }
                    prop_assert_eq!(cache.stats(), model.stats, "after {:?} at {} ms", op, model.now);
                    prop_assert_eq!(cache.len(), model.entries.len());
                    for key in 0..6 {
                        prop_assert_eq!(
                            cache.contains_key(&key),
                            model.entries.iter().any(|e| e.0 == key),
                            "key {} after {:?} at {} ms", key, op, model.now
                        );
                    }
                }
                Ok(())
            })?;
        }
    }
}
