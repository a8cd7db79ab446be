//! # Spawning tasks: `tokio::spawn`, `JoinHandle`, `'static + Send`, `Arc`
//!
//! `join!` polls several futures inside the current task. `tokio::spawn` hands a future to
//! the runtime as a task of its own: it starts running at once (on any worker thread of a
//! multi-thread runtime), it may outlive the function that spawned it, and you get back a
//! `JoinHandle` to await its output. That independence has a price, checked by the compiler:
//! the future must be `'static` (it owns what it uses, it borrows nothing from the caller's
//! locals) and `Send` (what it holds can move to another thread).
//!
//! In a service, shared read-mostly state (a config, a price catalogue, a client) goes behind
//! an `Arc` once, and each task gets its own `Arc::clone`: a pointer copy and a reference-count
//! bump, never a copy of the data. Small per-task values are cloned or moved in with
//! `async move`. Shared counters are atomics, not `Cell`s: a `Cell` is not `Sync`, so an
//! `Arc` of a struct holding one is not `Send` and cannot go into a task.
//! (Python: `asyncio.create_task(coro)`, where any task may touch any object; Rust makes the
//! sharing explicit.)
//!
//! ## Your job
//! `quote_all` does not compile. Fix it so that each order is quoted in its own task, all of
//! them at once, sharing the one catalogue (an `Arc::clone` per task, no copies of the
//! catalogue), with the quotes in the orders' order. Keep the signatures as they are.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn.html>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinHandle.html>
//! - <https://tokio.rs/tokio/tutorial/spawning> (the `'static` and `Send` bounds)
//! - <https://doc.rust-lang.org/std/sync/struct.Arc.html>
//! - <https://doc.rust-lang.org/std/sync/atomic/struct.AtomicU64.html>

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::sleep;

/// How long the pretend price service takes to say it does not know an item.
pub const NOT_FOUND_MS: u64 = 50;

struct Entry {
    price_cents: u64,
    latency_ms: u64,
}

/// The price list shared by every task that quotes an order. Imagine thousands of entries:
/// it is built once and shared, never copied.
pub struct Catalogue {
    entries: HashMap<String, Entry>,
    // TODO: a `Cell` is not `Sync`, so an `Arc<Catalogue>` cannot be sent to another task.
    lookups: Cell<u64>,
    /// The task each lookup ran in (`None`: not in a spawned task), for the checks.
    lookup_tasks: std::sync::Mutex<Vec<Option<tokio::task::Id>>>,
}

impl Catalogue {
    /// `entries` are `(item, price in cents, lookup latency in ms)`.
    pub fn new(entries: &[(&str, u64, u64)]) -> Self {
        let entries = entries
            .iter()
            .map(|&(item, price_cents, latency_ms)| {
                let entry = Entry {
                    price_cents,
                    latency_ms,
                };
                (item.to_string(), entry)
            })
            .collect();
        Catalogue {
            entries,
            lookups: Cell::new(0),
            lookup_tasks: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// How many lookups this catalogue has served.
    pub fn lookups(&self) -> u64 {
        self.lookups.get()
    }

    /// The price of one `item` in cents: a pretend remote lookup that answers after the
    /// item's latency, or `None` after `NOT_FOUND_MS` for an unknown item.
    pub async fn price(&self, item: &str) -> Option<u64> {
        self.lookups.set(self.lookups.get() + 1);
        self.lookup_tasks
            .lock()
            .unwrap()
            .push(tokio::task::try_id());
        match self.entries.get(item) {
            Some(entry) => {
                sleep(Duration::from_millis(entry.latency_ms)).await;
                Some(entry.price_cents)
            }
            None => {
                sleep(Duration::from_millis(NOT_FOUND_MS)).await;
                None
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Order {
    pub item: String,
    pub quantity: u64,
}

/// Quotes every order (price × quantity in cents, `None` for an unknown item), each in its
/// own task. The quotes come back in the orders' order.
pub async fn quote_all(catalogue: Arc<Catalogue>, orders: &[Order]) -> Vec<Option<u64>> {
    let mut handles = Vec::with_capacity(orders.len());
    for order in orders {
        // TODO: this task borrows `catalogue` and `order` from this function, but a spawned
        // task may outlive the function that spawned it.
        handles.push(tokio::spawn(async {
            let price = catalogue.price(&order.item).await?;
            Some(price * order.quantity)
        }));
    }
    // Every task is already running; awaiting the handles in order keeps the input order.
    let mut quotes = Vec::with_capacity(handles.len());
    for handle in handles {
        // A JoinHandle yields Err(JoinError) if its task panicked: see `task_errors`.
        quotes.push(handle.await.expect("a quote task panicked"));
    }
    quotes
}

#[tokio::main]
async fn main() {
    let catalogue = Arc::new(Catalogue::new(&[
        ("apple", 30, 300),
        ("pear", 50, 200),
        ("plum", 20, 100),
    ]));
    let orders = [("apple", 2), ("kiwi", 1), ("plum", 5)].map(|(item, quantity)| Order {
        item: item.to_string(),
        quantity,
    });
    let start = std::time::Instant::now();
    let quotes = quote_all(Arc::clone(&catalogue), &orders).await;
    for (order, quote) in orders.iter().zip(&quotes) {
        println!("{} x {}: {quote:?} cents", order.quantity, order.item);
    }
    println!("{} lookups in {:?}", catalogue.lookups(), start.elapsed());
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - awaiting each JoinHandle right after spawning it: the orders are quoted one after
    //   another and virtual time is the sum, not the longest;
    // - not spawning at all (join_all in the calling task, which needs no `'static`): no
    //   quote task is alive while the quotes are running;
    // - fire-and-forget (spawning without awaiting the handles, collecting into a shared Vec):
    //   quotes are missing and the tasks still hold the catalogue after `quote_all` returns;
    // - a copy of the catalogue per task (derive Clone and move a clone in): the lookups are
    //   counted on the copies, the shared catalogue's statistics stay at zero;
    // - quotes in completion order: the slowest order comes first and ends up last;
    // - idle decoy tasks alive while the caller does the lookups: each lookup's task is
    //   recorded.
    // More in corpus/01_basics/spawn_tasks.toml.
    use super::*;
    use proptest::prelude::*;
    use tokio::time::Instant;

    fn catalogue() -> Arc<Catalogue> {
        Arc::new(Catalogue::new(&[
            ("apple", 30, 300),
            ("pear", 50, 200),
            ("plum", 20, 100),
        ]))
    }

    fn order(item: &str, quantity: u64) -> Order {
        Order {
            item: item.to_string(),
            quantity,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn quotes_come_back_in_the_orders_order() {
        let orders = [
            order("apple", 2),
            order("pear", 1),
            order("kiwi", 5),
            order("plum", 3),
        ];
        let quotes = quote_all(catalogue(), &orders).await;
        assert_eq!(
            quotes,
            [Some(60), Some(50), None, Some(60)],
            "quote i must be the price of order i times its quantity, None for an unknown item"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn orders_are_quoted_concurrently() {
        let orders = [order("apple", 1), order("pear", 1), order("plum", 1)];
        let start = Instant::now();
        quote_all(catalogue(), &orders).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "lookups of 300, 200 and 100 ms running at once should take 300 ms: \
             spawn every task first, then await the handles"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_order_is_quoted_in_its_own_task() {
        let orders = [order("apple", 1), order("pear", 1), order("plum", 1)];
        let metrics = tokio::runtime::Handle::current().metrics();
        let (_, alive_while_quoting) = tokio::join!(quote_all(catalogue(), &orders), async {
            sleep(Duration::from_millis(50)).await;
            metrics.num_alive_tasks()
        });
        assert_eq!(
            alive_while_quoting, 3,
            "three orders should be quoted by three tasks alive at once: tokio::spawn one per order"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_lookup_runs_in_the_task_of_its_order() {
        let orders = [order("apple", 1), order("pear", 1), order("kiwi", 1)];
        let shared = catalogue();
        quote_all(Arc::clone(&shared), &orders).await;
        let tasks = shared.lookup_tasks.lock().unwrap().clone();
        assert!(
            tasks.iter().all(Option::is_some),
            "every lookup should run inside a spawned task, not in the caller (tasks that only \
             wait alongside do not count)"
        );
        let mut distinct = tasks.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            (tasks.len(), distinct.len()),
            (3, 3),
            "three orders: three lookups, each in a task of its own"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn all_tasks_share_the_one_catalogue_and_are_done_on_return() {
        let catalogue = catalogue();
        let orders = [order("apple", 1), order("kiwi", 1), order("plum", 1)];
        quote_all(Arc::clone(&catalogue), &orders).await;
        assert_eq!(
            catalogue.lookups(),
            3,
            "the shared catalogue did not count every lookup: did each task get a copy of the \
             catalogue instead of an Arc::clone of it?"
        );
        assert_eq!(
            Arc::strong_count(&catalogue),
            1,
            "tasks still hold the catalogue after quote_all returned: await every JoinHandle"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_orders_no_wait() {
        let start = Instant::now();
        assert!(quote_all(catalogue(), &[]).await.is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any catalogue and orders: the right quotes in order, in the longest lookup's
        /// time, every lookup counted on the one shared catalogue.
        #[test]
        fn quotes_match_a_simple_model(
            entries in prop::collection::vec((1u64..1_000, 0u64..5_000), 0..8),
            picks in prop::collection::vec((0usize..10, 1u64..100), 0..16),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let names: Vec<String> = (0..entries.len()).map(|i| format!("item{i}")).collect();
            let table: Vec<(&str, u64, u64)> = names
                .iter()
                .zip(&entries)
                .map(|(name, &(price, latency))| (name.as_str(), price, latency))
                .collect();
            let catalogue = Arc::new(Catalogue::new(&table));
            // Picks past the end of the table are unknown items.
            let orders: Vec<Order> = picks
                .iter()
                .map(|&(i, quantity)| order(&format!("item{i}"), quantity))
                .collect();
            let (elapsed, quotes) = runtime.block_on(async {
                let start = Instant::now();
                let quotes = quote_all(Arc::clone(&catalogue), &orders).await;
                (start.elapsed(), quotes)
            });
            let expected: Vec<Option<u64>> = picks
                .iter()
                .map(|&(i, quantity)| entries.get(i).map(|&(price, _)| price * quantity))
                .collect();
            let longest = picks
                .iter()
                .map(|&(i, _)| entries.get(i).map_or(NOT_FOUND_MS, |&(_, latency)| latency))
                .max()
                .unwrap_or(0);
            prop_assert_eq!(quotes, expected);
            prop_assert_eq!(elapsed, Duration::from_millis(longest));
            prop_assert_eq!(catalogue.lookups(), orders.len() as u64);
            prop_assert_eq!(Arc::strong_count(&catalogue), 1);
        }
    }
}
