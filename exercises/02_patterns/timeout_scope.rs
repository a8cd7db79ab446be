//! # One deadline over a block of work, with cleanup that still runs
//!
//! A request has one budget, not one per step: "answer within 2 s" means reserving the
//! stock, charging the card and writing the order must *together* fit in 2 s. Giving each
//! step its own timeout lets three slow steps take three times the budget. The fix is a
//! *scope*: one deadline, computed once, over a block of several steps. When the deadline
//! passes, the step in progress is cancelled (its future dropped) and the ones after it
//! never start. Then comes the part a scope must not skip: what the finished steps did has
//! to be undone — the stock reserved so far released — and that cleanup is itself async.
//! (Python: `async with asyncio.timeout(2):` around the steps, and `except TimeoutError:`
//! for the cleanup.)
//!
//! `tokio::time::timeout_at(deadline, async { ... })` is the scope: it polls the block and
//! gives `Err(Elapsed)` once the deadline is reached (a step that ends exactly at the
//! deadline still counts). A dropped future cannot run async code, so the cleanup runs
//! *after* the scope, from state that outlives it: the block pushes each reserved item to a
//! `Vec` declared before it (borrowed mutably inside), and once `timeout_at` returns, the
//! borrow is over and the `Vec` says exactly what to release.
//!
//! ## Your job
//! Write `checkout`: reserve each item, then charge, all within one `budget`; on time, the
//! receipt; past the deadline, release what was reserved (and only that) with one
//! `release_all`, await it, and return `TimedOut` with the released items.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout_at.html>
//! - <https://docs.rs/tokio/latest/tokio/time/error/struct.Elapsed.html>
//! - <https://docs.python.org/3/library/asyncio-task.html#asyncio.timeout> (the model)
//! - A real service passes the deadline down with the request (gRPC deadlines, tower's
//!   <https://docs.rs/tower/latest/tower/timeout/index.html> around the whole handler).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use timeline::Timeline;
use tokio::time::{Instant, sleep};

/// What one item costs.
pub const PRICE_CENTS: u64 = 100;
/// How long `release_all` takes, however many items.
pub const RELEASE_TIME: Duration = Duration::from_millis(10);

/// A pretend shop. A reservation or a charge takes effect when its call completes: a call
/// cancelled half-way did nothing.
#[derive(Clone, Default)]
pub struct Shop {
    reserve_time: Duration,
    charge_time: Duration,
    state: Arc<Mutex<State>>,
    timeline: Timeline,
}

#[derive(Default)]
struct State {
    held: Vec<String>,
    charges: Vec<u64>,
    unknown_releases: Vec<String>,
}

impl Shop {
    pub fn new(reserve_time: Duration, charge_time: Duration, timeline: Timeline) -> Self {
        Shop {
            reserve_time,
            charge_time,
            timeline,
            ..Shop::default()
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub async fn reserve(&self, item: &str) {
        let _span = self.timeline.span(format!("reserve {item}"));
        sleep(self.reserve_time).await;
        self.state().held.push(item.to_string());
    }

    pub async fn charge(&self, cents: u64) {
        let _span = self.timeline.span("charge");
        sleep(self.charge_time).await;
        self.state().charges.push(cents);
    }

    /// Gives back reserved items (takes `RELEASE_TIME`).
    pub async fn release_all(&self, items: &[String]) {
        let _span = self.timeline.span("release");
        sleep(RELEASE_TIME).await;
        let mut state = self.state();
        for item in items {
            match state.held.iter().position(|held| held == item) {
                Some(at) => {
                    state.held.remove(at);
                }
                None => state.unknown_releases.push(item.clone()),
            }
        }
    }

    /// The items reserved and not released.
    pub fn held(&self) -> Vec<String> {
        self.state().held.clone()
    }

    pub fn charges(&self) -> Vec<u64> {
        self.state().charges.clone()
    }

    /// Items released that were not reserved.
    pub fn unknown_releases(&self) -> Vec<String> {
        self.state().unknown_releases.clone()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub items: Vec<String>,
    pub cents: u64,
}

/// The deadline passed; these reserved items were released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    pub released: Vec<String>,
}

/// Reserves every item then charges for them, all within `budget`. Past the deadline,
/// releases what was reserved before returning.
pub async fn checkout(shop: &Shop, items: &[&str], budget: Duration) -> Result<Receipt, TimedOut> {
    // TODO: one deadline for every step: reserve each item (remembering which ones were
    // reserved), then charge `PRICE_CENTS` per item. Past the deadline, release what was
    // reserved with `shop.release_all`, await it, and return `TimedOut`.
    todo!()
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let timeline = Timeline::new();
    let shop = Shop::new(
        Duration::from_millis(100),
        Duration::from_millis(200),
        timeline.clone(),
    );
    let items = ["book", "lamp", "mug"];
    println!(
        "{:?}",
        checkout(&shop, &items, Duration::from_secs(1)).await
    );
    println!(
        "{:?}",
        checkout(&shop, &items, Duration::from_millis(250)).await
    );
    println!("still held: {:?}", shop.held());
    println!(
        "{}",
        timeline.picture("the second checkout stops at 250 ms")
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/timeout_scope.toml tries each):
    // - a timeout per step (each step gets the whole budget), or on the charge only;
    // - a deadline taken after the first step instead of before it;
    // - no cleanup, or cleanup spawned and not awaited (still held when `checkout` returns);
    // - releasing every item, also those never reserved (the one cancelled half-way);
    // - cleanup on success too;
    // - racing the block against a sleep with an unbiased `select!` at the boundary.
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const ITEMS: [&str; 3] = ["book", "lamp", "mug"];

    fn shop() -> (Shop, Timeline) {
        let timeline = Timeline::new();
        (Shop::new(ms(100), ms(200), timeline.clone()), timeline)
    }

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn on_time_every_step_runs_and_nothing_is_released() {
        let (shop, timeline) = shop();
        let start = Instant::now();
        let receipt = checkout(&shop, &ITEMS, ms(1000)).await;
        assert_eq!(
            receipt,
            Ok(Receipt {
                items: names(&ITEMS),
                cents: 300
            })
        );
        assert_eq!(
            start.elapsed(),
            ms(500),
            "3 reservations of 100 ms and a charge of 200 ms\n{}",
            timeline.picture("reserve, reserve, reserve, charge")
        );
        assert_eq!(
            shop.held(),
            names(&ITEMS),
            "a successful checkout keeps its items"
        );
        assert_eq!(shop.charges(), vec![300]);
    }

    #[tokio::test(start_paused = true)]
    async fn one_deadline_covers_all_the_steps() {
        // Each step fits in 450 ms; all of them (500 ms) do not.
        let (shop, timeline) = shop();
        let start = Instant::now();
        let outcome = checkout(&shop, &ITEMS, ms(450)).await;
        let picture = timeline.picture("charge cancelled at 450 ms, release until 460 ms");
        assert_eq!(
            outcome,
            Err(TimedOut {
                released: names(&ITEMS)
            }),
            "the budget is for the whole checkout, not for each step\n{picture}"
        );
        assert!(
            shop.charges().is_empty(),
            "the charge was cancelled at the deadline\n{picture}"
        );
        assert_eq!(
            start.elapsed(),
            ms(450) + RELEASE_TIME,
            "the checkout should stop at the deadline, then release\n{picture}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_what_was_reserved_is_released() {
        // At 150 ms, "book" is reserved and "lamp" is half-way: it was never reserved.
        let (shop, timeline) = shop();
        let outcome = checkout(&shop, &ITEMS, ms(150)).await;
        assert_eq!(
            outcome,
            Err(TimedOut {
                released: names(&["book"])
            })
        );
        assert_eq!(
            shop.unknown_releases(),
            Vec::<String>::new(),
            "released items that were never reserved\n{}",
            timeline.picture("book reserved, lamp cancelled at 150 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_cleanup_is_done_before_checkout_returns() {
        let (shop, timeline) = shop();
        let start = Instant::now();
        let _ = checkout(&shop, &ITEMS, ms(250)).await;
        assert_eq!(
            shop.held(),
            Vec::<String>::new(),
            "when checkout returns, the reserved items should be released already: await the \
             cleanup\n{}",
            timeline.picture("release from 250 to 260 ms")
        );
        assert_eq!(start.elapsed(), ms(260));
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_ending_exactly_at_the_deadline_counts() {
        let (shop, _) = shop();
        let receipt = checkout(&shop, &ITEMS, ms(500)).await;
        assert_eq!(
            receipt,
            Ok(Receipt {
                items: names(&ITEMS),
                cents: 300
            }),
            "the charge ends exactly at the deadline: the checkout made it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_budget_no_work() {
        let (shop, _) = shop();
        let start = Instant::now();
        let outcome = checkout(&shop, &ITEMS, Duration::ZERO).await;
        assert_eq!(
            outcome,
            Err(TimedOut {
                released: Vec::new()
            })
        );
        assert!(shop.held().is_empty() && shop.charges().is_empty());
        assert_eq!(start.elapsed(), RELEASE_TIME);
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

        /// Any step times and budget: the steps that end by the deadline happen, the rest
        /// do not, exactly those reserved are released, and the end time is the model's.
        #[test]
        fn the_deadline_cuts_the_steps_where_the_model_says(
            n in 0usize..5,
            reserve in 1u64..100,
            charge in 1u64..100,
            budget in 0u64..600,
        ) {
            let items: Vec<&str> = ITEMS.iter().chain(&["pen", "cup"]).copied().take(n).collect();
            let (outcome, elapsed, held, charges, unknown) = run_paused(async {
                let shop = Shop::new(ms(reserve), ms(charge), Timeline::new());
                let start = Instant::now();
                let outcome = checkout(&shop, &items, ms(budget)).await;
                (outcome, start.elapsed(), shop.held(), shop.charges(), shop.unknown_releases())
            });
            prop_assert!(unknown.is_empty(), "released items never reserved: {:?}", unknown);
            let total = reserve * n as u64 + charge;
            if total <= budget {
                prop_assert_eq!(outcome, Ok(Receipt { items: names(&items), cents: PRICE_CENTS * n as u64 }));
                prop_assert_eq!(elapsed, ms(total));
                prop_assert_eq!(held, names(&items));
                prop_assert_eq!(charges, vec![PRICE_CENTS * n as u64]);
            } else {
                let done = ((budget / reserve) as usize).min(n);
                prop_assert_eq!(outcome, Err(TimedOut { released: names(&items[..done]) }));
                prop_assert_eq!(elapsed, ms(budget) + RELEASE_TIME);
                prop_assert!(held.is_empty(), "still held: {:?}", held);
                prop_assert!(charges.is_empty(), "charged past the deadline");
            }
        }
    }
}
