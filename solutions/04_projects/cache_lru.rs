//! # TTL + LRU cache, step 1 of 3: LRU eviction and statistics
//!
//! A cache keeps the answers of slow calls (a database row, a rendered page, a token check) so
//! the next caller gets them at once. Memory is finite, so a cache has a capacity, and when it
//! is full something must go. *Least recently used* (LRU) eviction throws out the entry nobody
//! has touched for the longest time: recently used entries are the likeliest to be used again.
//! Every production cache also counts hits, misses and evictions: a hit rate that drops, or
//! evictions that climb, is how you learn the capacity is too small.
//! (Python: `functools.cache_lru(maxsize=n)` and its `cache_info()`; `cachetools.LRUCache`.)
//!
//! This project builds one cache in three steps: LRU and statistics (here), expiry on tokio's
//! clock, then a background cleanup task and concurrent access from many tasks. This step is
//! plain synchronous Rust on purpose: a cache's work is a few map operations, and it will be
//! done inside a short lock, never across an `.await`.
//!
//! Both `get` and `insert` count as a use. Finding an entry by key and finding the least
//! recently used one must both be fast: a `HashMap` for the first, and for the second an
//! ordered index of uses (a `BTreeMap` from a use counter to the key) whose first entry is the
//! one to evict. `contains_key` only looks: it changes neither the order nor the statistics.
//!
//! ## Your job
//! Give `Cache` the fields it needs and implement `new`, `get`, `insert`, `contains_key`,
//! `len` and `stats`.
//!
//! ## Read
//! - <https://doc.rust-lang.org/std/collections/struct.HashMap.html>
//! - <https://doc.rust-lang.org/std/collections/struct.BTreeMap.html#method.pop_first>
//! - <https://en.wikipedia.org/wiki/Cache_replacement_policies#LRU>

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// What the cache has done since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `get`s that found their key.
    pub hits: u64,
    /// `get`s that did not.
    pub misses: u64,
    /// Entries removed to make room for a new key.
    pub evictions: u64,
}

/// A cache of at most `capacity` entries that evicts the least recently used one.
pub struct Cache<K, V> {
    capacity: usize,
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
}

impl<K: Hash + Eq + Clone, V: Clone> Cache<K, V> {
    /// An empty cache that holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a cache must hold at least one entry");
        Cache {
            capacity,
            entries: HashMap::with_capacity(capacity),
            by_use: BTreeMap::new(),
            uses: 0,
            stats: Stats::default(),
        }
    }

    /// The value of `key`, if cached: a hit, and now its most recent use. Otherwise a miss.
    pub fn get(&mut self, key: &K) -> Option<V> {
        let now = self.next_use();
        let Some(entry) = self.entries.get_mut(key) else {
            self.stats.misses += 1;
            return None;
        };
        self.by_use.remove(&entry.last_use);
        self.by_use.insert(now, key.clone());
        entry.last_use = now;
        self.stats.hits += 1;
        Some(entry.value.clone())
    }

    /// Caches `value` under `key` as its most recent use. A new key in a full cache first
    /// evicts the least recently used entry; a key already cached only gets the new value.
    pub fn insert(&mut self, key: K, value: V) {
        let now = self.next_use();
        if let Some(entry) = self.entries.get_mut(&key) {
            self.by_use.remove(&entry.last_use);
            self.by_use.insert(now, key);
            *entry = Entry {
                value,
                last_use: now,
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
            },
        );
    }

    /// Whether `key` is cached, without using it: no change to the order or the statistics.
    pub fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// How many entries are cached.
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

fn main() {
    let mut cache = Cache::new(2);
    cache.insert("alice", "Alice Liddell");
    cache.insert("bob", "Bob Cratchit");
    println!("alice -> {:?}", cache.get(&"alice"));
    println!("inserting carol into a full cache: bob is the least recently used");
    cache.insert("carol", "Carol Danvers");
    println!("bob -> {:?}", cache.get(&"bob"));
    println!("alice -> {:?}", cache.get(&"alice"));
    println!("{:?}", cache.stats());
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/cache_lru.toml`
    // (evicting the most recent entry, first-in-first-out eviction, an update that evicts,
    // a get that does not refresh, one entry too many, uncounted evictions, a miss counted
    // as a hit, `contains_key` that counts as a use).
    use super::*;
    use proptest::prelude::*;

    fn stats(hits: u64, misses: u64, evictions: u64) -> Stats {
        Stats {
            hits,
            misses,
            evictions,
        }
    }

    fn keys(cache: &Cache<&'static str, u32>, candidates: &[&'static str]) -> Vec<&'static str> {
        candidates
            .iter()
            .copied()
            .filter(|key| cache.contains_key(key))
            .collect()
    }

    #[test]
    fn a_get_finds_what_was_inserted_and_counts_hits_and_misses() {
        let mut cache = Cache::new(3);
        assert_eq!(cache.get(&"a"), None);
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        assert_eq!(cache.get(&"a"), Some(1));
        assert_eq!(cache.get(&"b"), None);
        assert_eq!(
            cache.stats(),
            stats(2, 2, 0),
            "2 hits, 2 misses, no eviction"
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_evicts_the_least_recently_used_entry() {
        let mut cache = Cache::new(3);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("c", 3);
        assert_eq!(
            cache.get(&"a"),
            Some(1),
            "`a` is now the most recently used"
        );
        cache.insert("d", 4);
        assert_eq!(
            keys(&cache, &["a", "b", "c", "d"]),
            ["a", "c", "d"],
            "`b` was the least recently used (inserted before `c`, never read since), \
             so `b` should have been evicted"
        );
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.stats().evictions, 1);
    }

    #[test]
    fn an_insert_counts_as_a_use() {
        let mut cache = Cache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("a", 10);
        cache.insert("c", 3);
        assert_eq!(
            keys(&cache, &["a", "b", "c"]),
            ["a", "c"],
            "`a` was written again after `b`: `b` is the least recently used"
        );
        assert_eq!(cache.get(&"a"), Some(10));
    }

    #[test]
    fn updating_a_cached_key_in_a_full_cache_evicts_nothing() {
        let mut cache = Cache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("b", 20);
        assert_eq!(
            keys(&cache, &["a", "b"]),
            ["a", "b"],
            "`b` was already cached: the cache holds the same keys, nothing is evicted"
        );
        assert_eq!(cache.stats().evictions, 0);
        assert_eq!(
            cache.get(&"b"),
            Some(20),
            "the new value replaces the old one"
        );
    }

    #[test]
    fn contains_key_only_looks() {
        let mut cache = Cache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert!(cache.contains_key(&"a"));
        assert!(!cache.contains_key(&"z"));
        cache.insert("c", 3);
        assert_eq!(
            keys(&cache, &["a", "b", "c"]),
            ["b", "c"],
            "`contains_key` is not a use: `a` was still the least recently used"
        );
        assert_eq!(
            cache.stats(),
            stats(0, 0, 1),
            "`contains_key` is neither a hit nor a miss"
        );
    }

    #[test]
    fn a_cache_of_one_keeps_the_last_key() {
        let mut cache = Cache::new(1);
        for (value, key) in ["a", "b", "c"].into_iter().enumerate() {
            cache.insert(key, value as u32);
        }
        assert_eq!(keys(&cache, &["a", "b", "c"]), ["c"]);
        assert_eq!(cache.stats().evictions, 2);
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Get(u8),
        Insert(u8, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6).prop_map(Op::Get),
            (0u8..6, any::<u32>()).prop_map(|(key, value)| Op::Insert(key, value)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any operations, any capacity: the cache behaves like a list kept in order of use.
        #[test]
        fn the_cache_agrees_with_a_list_in_order_of_use(
            capacity in 1usize..5,
            ops in prop::collection::vec(op(), 0..60),
        ) {
            let mut cache = Cache::new(capacity);
            // The model: (key, value), least recently used first.
            let mut model: Vec<(u8, u32)> = Vec::new();
            let mut expected = Stats::default();
            for op in ops {
                match op {
                    Op::Get(key) => {
                        let found = model.iter().position(|&(k, _)| k == key).map(|i| model.remove(i));
                        match found {
                            Some(entry) => {
                                model.push(entry);
                                expected.hits += 1;
                            }
                            None => expected.misses += 1,
                        }
                        prop_assert_eq!(cache.get(&key), found.map(|(_, v)| v), "get({})", key);
                    }
                    Op::Insert(key, value) => {
                        if let Some(i) = model.iter().position(|&(k, _)| k == key) {
                            model.remove(i);
                        } else if model.len() == capacity {
                            model.remove(0);
                            expected.evictions += 1;
                        }
                        model.push((key, value));
                        cache.insert(key, value);
                    }
                }
                prop_assert_eq!(cache.stats(), expected);
                prop_assert_eq!(cache.len(), model.len());
                for key in 0..6 {
                    prop_assert_eq!(
                        cache.contains_key(&key),
                        model.iter().any(|&(k, _)| k == key),
                        "key {} after {:?}", key, op
                    );
                }
            }
        }
    }
}
