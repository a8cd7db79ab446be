//! # Futures are lazy: nothing happens until `.await`
//!
//! Calling an `async fn` runs none of its body, not even its first line. It returns a
//! future: a value that describes the work and does it only when something polls it — in
//! practice, when you `.await` it. A future dropped without being awaited has done nothing
//! at all, and the order of the effects is the order of the `.await`s, not the order in
//! which the futures were created.
//!
//! In a service this is the order that was "placed" but never charged, or the audit line
//! that was never written, with no error anywhere. rustc warns "futures do nothing unless
//! you `.await` or poll them" only for a future left as an unused expression: one stored in
//! a variable, or thrown away with `let _ =`, gets no such warning.
//! (Python: a coroutine that is never awaited — asyncio at least warns "coroutine ... was
//! never awaited". The eager `asyncio.create_task` is `tokio::spawn`: a later exercise.)
//!
//! ## Your job
//! `place_order` and `place_orders` create futures and never await them, so most of the
//! work never happens. Make every step happen, in the documented order, before they return.
//!
//! ## Read
//! - <https://doc.rust-lang.org/std/keyword.async.html>
//! - <https://doc.rust-lang.org/std/keyword.await.html>
//! - <https://doc.rust-lang.org/std/future/trait.Future.html>
//! - <https://tokio.rs/tokio/tutorial/async>

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::sleep;

/// The shop's record of what really happened. Clones share one record.
#[derive(Clone, Default)]
pub struct Shop {
    events: Arc<Mutex<Vec<String>>>,
}

impl Shop {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything that has happened so far, oldest first.
    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn record(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }
}

/// Holds one `item` for this order. Takes 10 ms.
async fn reserve_stock(shop: &Shop, item: &str) {
    sleep(Duration::from_millis(10)).await;
    shop.record(format!("reserved {item}"));
}

/// Charges the customer's card. Takes 20 ms.
async fn charge(shop: &Shop, cents: u32) {
    sleep(Duration::from_millis(20)).await;
    shop.record(format!("charged {cents} cents"));
}

/// Emails the receipt. Takes 5 ms.
async fn send_receipt(shop: &Shop, item: &str) {
    sleep(Duration::from_millis(5)).await;
    shop.record(format!("receipt for {item}"));
}

/// Places one order: reserve the stock, then charge the card, then send the receipt. Never
/// charge for stock that is not reserved, never send a receipt for a charge that has not
/// gone through. All three are done when it returns.
pub async fn place_order(shop: &Shop, item: &str, cents: u32) {
    // TODO: fix. "Kick off all three right away, then wait for the receipt."
    let reserving = reserve_stock(shop, item);
    let charging = charge(shop, cents);
    send_receipt(shop, item).await;
}

/// Places `orders` one after the other, in the given order.
pub async fn place_orders(shop: &Shop, orders: &[(&str, u32)]) {
    for &(item, cents) in orders {
        // TODO: fix. "Hand each order to the shop and move on to the next."
        let _ = place_order(shop, item, cents);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let shop = Shop::new();
    let order = place_order(&shop, "teapot", 2500);
    println!("order future created; events so far: {:?}", shop.events());
    order.await;
    println!("order awaited;        events so far: {:?}", shop.events());

    place_orders(&shop, &[("mug", 900), ("tea", 450)]).await;
    println!("after two more orders:");
    for event in shop.events() {
        println!("  {event}");
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - awaiting only some of the steps (or none): their events are missing;
    // - awaiting the steps in another order than reserve, charge, receipt: the events are
    //   compared in order;
    // - running the steps together (`join!`): the receipt comes first, and an order takes
    //   20 ms instead of 10 + 20 + 5;
    // - `tokio::spawn`ing an order or a step without waiting for it (fire-and-forget): its
    //   events are not there when `place_order`/`place_orders` returns;
    // - starting the work when the future is created (a plain `fn` that spawns and returns
    //   the handle): events appear before the future is awaited;
    // - placing the orders of `place_orders` together or out of order: the events interleave;
    // - sleeping the total time and writing the records at the end: each step's event is
    //   looked for at its own time.
    // More in corpus/01_basics/lazy_futures.toml.
    use super::*;
    use proptest::prelude::*;
    use tokio::time::{Instant, advance};

    fn one_order(item: &str, cents: u32) -> Vec<String> {
        vec![
            format!("reserved {item}"),
            format!("charged {cents} cents"),
            format!("receipt for {item}"),
        ]
    }

    #[tokio::test(start_paused = true)]
    async fn creating_an_order_does_nothing_until_it_is_awaited() {
        let shop = Shop::new();
        let order = place_order(&shop, "book", 1200);
        // Give anything that might have been started behind our back a full second to run.
        tokio::task::yield_now().await;
        advance(Duration::from_secs(1)).await;
        assert!(
            shop.events().is_empty(),
            "creating the future must not start the order, yet these happened: {:?}",
            shop.events()
        );

        let start = Instant::now();
        order.await;
        assert_eq!(shop.events(), one_order("book", 1200));
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(35),
            "the order's work (10 + 20 + 5 ms) should start when it is awaited, not before"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_reserves_then_charges_then_sends_the_receipt() {
        let shop = Shop::new();
        let start = Instant::now();
        place_order(&shop, "book", 1200).await;
        assert_eq!(
            shop.events(),
            one_order("book", 1200),
            "when place_order returns, the stock must be reserved, then the card charged, \
             then the receipt sent — every step awaited, in that order"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(35),
            "each step must wait for the one before: 10 + 20 + 5 ms"
        );

        advance(Duration::from_secs(1)).await;
        assert_eq!(
            shop.events(),
            one_order("book", 1200),
            "nothing may still be running after place_order returned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_step_happens_when_the_step_before_it_is_done() {
        let shop = Shop::new();
        let start = Instant::now();
        let (_, seen) = tokio::join!(place_order(&shop, "book", 1200), async {
            let mut seen = Vec::new();
            for at_ms in [5, 15, 32, 36] {
                tokio::time::sleep_until(start + Duration::from_millis(at_ms)).await;
                seen.push(shop.events().len());
            }
            seen
        });
        assert_eq!(
            seen,
            [0, 1, 2, 3],
            "events seen at 5, 15, 32 and 36 ms: the stock is reserved at 10 ms, the card \
             charged at 30 ms, the receipt sent at 35 ms — each step does its own work when \
             it runs, not all of it at the end"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn orders_are_placed_one_after_the_other_in_the_given_order() {
        let shop = Shop::new();
        let start = Instant::now();
        place_orders(&shop, &[("book", 1200), ("pen", 300), ("ink", 750)]).await;
        let expected: Vec<String> = [("book", 1200), ("pen", 300), ("ink", 750)]
            .into_iter()
            .flat_map(|(item, cents)| one_order(item, cents))
            .collect();
        assert_eq!(
            shop.events(),
            expected,
            "every order must be fully placed, one after the other, before place_orders returns"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(3 * 35));

        advance(Duration::from_secs(1)).await;
        assert_eq!(
            shop.events(),
            expected,
            "nothing may still be running after place_orders returned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_orders_nothing_happens() {
        let shop = Shop::new();
        let start = Instant::now();
        place_orders(&shop, &[]).await;
        assert!(shop.events().is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any list of orders: all of them happen, in order, each step after the last.
        #[test]
        fn any_orders_happen_in_order(orders in prop::collection::vec((0usize..4, 1u32..10_000), 0..8)) {
            const ITEMS: [&str; 4] = ["book", "pen", "ink", "lamp"];
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let orders: Vec<(&str, u32)> = orders.iter().map(|&(i, cents)| (ITEMS[i], cents)).collect();
            let shop = Shop::new();
            let elapsed = runtime.block_on(async {
                let start = Instant::now();
                place_orders(&shop, &orders).await;
                start.elapsed()
            });
            let expected: Vec<String> = orders.iter().flat_map(|&(item, cents)| one_order(item, cents)).collect();
            prop_assert_eq!(shop.events(), expected);
            prop_assert_eq!(elapsed, Duration::from_millis(35 * orders.len() as u64));
        }
    }
}
