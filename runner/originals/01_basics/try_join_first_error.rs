//! # `try_join!`: all must succeed, and the first error wins
//!
//! A checkout needs a price, a stock reservation and a fraud verdict, and cannot go on
//! unless all three succeed. Asking for them one after the other waits for the sum of their
//! latencies, and learns of a failure only when its turn comes. `tokio::try_join!` polls
//! them concurrently like `join!` and returns `Ok` with every value (in argument order) once
//! all have succeeded — or returns the first `Err` *as soon as it happens*. "First" means
//! first in time, not first in the argument list. The futures still running at that moment
//! are dropped, and a dropped future is cancelled: it never runs again, so its remaining
//! work (and side effects) never happen. `futures::future::try_join_all` does the same for
//! a `Vec` of futures.
//!
//! (Python: `asyncio.gather(...)` raises the first exception but leaves the others running;
//! an `asyncio.TaskGroup` is closer: it cancels the rest.)
//!
//! ## Your job
//! `checkout` makes its three calls one after the other. Make them concurrent, so that a
//! checkout takes as long as its slowest call, and fails as soon as any call fails.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/macro.try_join.html>
//! - <https://docs.rs/futures/latest/futures/future/fn.try_join_all.html>
//! - <https://tokio.rs/tokio/tutorial/select#cancellation>

use std::sync::Mutex;
use std::time::Duration;

use timeline::Timeline;
use tokio::time::sleep;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutError {
    PricingDown,
    OutOfStock,
    FraudSuspected,
}

/// What a fake backend does when called: answer after `after_ms`, with success or failure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub after_ms: u64,
    pub fails: bool,
}

impl Plan {
    pub fn ok(after_ms: u64) -> Self {
        Plan {
            after_ms,
            fails: false,
        }
    }

    pub fn fail(after_ms: u64) -> Self {
        Plan {
            after_ms,
            fails: true,
        }
    }
}

/// The three backends a checkout calls, each following its plan. They keep a log of what
/// every call did: "pricing started", then "pricing ok", "pricing failed", or — when the
/// call was dropped before it answered — "pricing dropped".
pub struct Backends {
    pricing: Plan,
    stock: Plan,
    fraud: Plan,
    log: Mutex<Vec<String>>,
    /// What ran when: a failing check draws it.
    timeline: Timeline,
}

impl Backends {
    pub fn new(pricing: Plan, stock: Plan, fraud: Plan) -> Self {
        Backends {
            pricing,
            stock,
            fraud,
            log: Mutex::new(Vec::new()),
            timeline: Timeline::new(),
        }
    }

    /// Everything the calls did so far, oldest first.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The cart's total, in cents.
    pub async fn price(&self) -> Result<u64, CheckoutError> {
        self.call("pricing", self.pricing, 4_200, CheckoutError::PricingDown)
            .await
    }

    /// Reserves the cart's items; answers with the reservation number.
    pub async fn reserve(&self) -> Result<u32, CheckoutError> {
        self.call("stock", self.stock, 77, CheckoutError::OutOfStock)
            .await
    }

    /// The order's fraud score (0 is spotless).
    pub async fn fraud_score(&self) -> Result<u8, CheckoutError> {
        self.call("fraud", self.fraud, 3, CheckoutError::FraudSuspected)
            .await
    }

    async fn call<T>(
        &self,
        name: &'static str,
        plan: Plan,
        answer: T,
        error: CheckoutError,
    ) -> Result<T, CheckoutError> {
        let mut call = Call::start(self, name);
        let _span = self.timeline.span(name);
        sleep(Duration::from_millis(plan.after_ms)).await;
        if plan.fails {
            call.end("failed");
            Err(error)
        } else {
            call.end("ok");
            Ok(answer)
        }
    }

    fn record(&self, event: String) {
        self.log.lock().unwrap().push(event);
    }
}

/// One call in flight. Dropped before it ends, it logs that it was cancelled.
struct Call<'a> {
    backends: &'a Backends,
    name: &'static str,
    ended: bool,
}

impl<'a> Call<'a> {
    fn start(backends: &'a Backends, name: &'static str) -> Self {
        backends.record(format!("{name} started"));
        Call {
            backends,
            name,
            ended: false,
        }
    }

    fn end(&mut self, how: &str) {
        self.ended = true;
        self.backends.record(format!("{} {how}", self.name));
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.backends.record(format!("{} dropped", self.name));
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Order {
    pub total_cents: u64,
    pub reservation: u32,
    pub fraud_score: u8,
}

/// Prices the cart, reserves its items and scores it for fraud. Fails with the first
/// error to happen, as soon as it happens.
pub async fn checkout(backends: &Backends) -> Result<Order, CheckoutError> {
    // TODO: these calls do not depend on each other, yet each waits for the one before —
    // and a failure is only noticed once the calls before it are done.
    let total_cents = backends.price().await?;
    let reservation = backends.reserve().await?;
    let fraud_score = backends.fraud_score().await?;
    Ok(Order {
        total_cents,
        reservation,
        fraud_score,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let start = tokio::time::Instant::now();
    let happy = Backends::new(Plan::ok(300), Plan::ok(200), Plan::ok(100));
    println!("{:?} after {:?}", checkout(&happy).await, start.elapsed());
    println!("  {:?}", happy.log());

    let start = tokio::time::Instant::now();
    let sad = Backends::new(Plan::fail(300), Plan::ok(200), Plan::fail(100));
    println!("{:?} after {:?}", checkout(&sad).await, start.elapsed());
    println!("  {:?}", sad.log());
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - awaiting the calls one after the other with `?`: a checkout takes the sum of the
    //   latencies, and a later call that fails sooner is reported late, or not at all;
    // - `join!` and then checking the results: it waits for every call, even after one has
    //   failed, and the calls it should have cancelled finish;
    // - returning the first error in argument order (`join!` then `a?; b?; c?`): the wrong
    //   error, at the wrong time;
    // - mixing up the values of the order: they are compared.
    use super::*;
    use proptest::prelude::*;
    use tokio::time::{Instant, advance};

    /// How the call to `service` ended, according to the backends' log.
    fn ending(backends: &Backends, service: &str) -> Option<String> {
        backends
            .log()
            .into_iter()
            .filter_map(|event| {
                event
                    .strip_prefix(&format!("{service} "))
                    .map(str::to_owned)
            })
            .find(|how| how != "started")
    }

    #[tokio::test(start_paused = true)]
    async fn success_returns_every_value_after_the_slowest_call() {
        let backends = Backends::new(Plan::ok(300), Plan::ok(200), Plan::ok(100));
        let start = Instant::now();
        let order = checkout(&backends).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "calls of 300, 200 and 100 ms run together should take 300 ms\n{}",
            backends
                .timeline
                .picture("all three start at 0 ms: 300 ms in all")
        );
        assert_eq!(
            order,
            Ok(Order {
                total_cents: 4_200,
                reservation: 77,
                fraud_score: 3
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_error_in_time_wins_not_the_first_argument() {
        // Pricing fails last, fraud fails first.
        let backends = Backends::new(Plan::fail(300), Plan::ok(200), Plan::fail(100));
        let start = Instant::now();
        let result = checkout(&backends).await;
        assert_eq!(
            result,
            Err(CheckoutError::FraudSuspected),
            "the fraud check failed first (at 100 ms), so its error must be the one returned"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "the checkout must fail as soon as the first call fails, at 100 ms\n{}",
            backends.timeline.picture(
                "all three start at 0 ms; fraud fails at 100 ms, the others are dropped then"
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_calls_still_running_are_dropped_when_one_fails() {
        let backends = Backends::new(Plan::ok(300), Plan::fail(50), Plan::ok(100));
        let start = Instant::now();
        let result = checkout(&backends).await;
        assert_eq!(result, Err(CheckoutError::OutOfStock));
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(50),
            "the checkout must fail as soon as the stock call fails, at 50 ms\n{}",
            backends.timeline.picture(
                "all three start at 0 ms; stock fails at 50 ms, the others are dropped then"
            )
        );
        assert_eq!(
            ending(&backends, "stock").as_deref(),
            Some("failed"),
            "{:?}",
            backends.log()
        );
        for service in ["pricing", "fraud"] {
            assert_eq!(
                ending(&backends, service).as_deref(),
                Some("dropped"),
                "the {service} call was still running when the stock call failed: it must \
                 have been started at once, and dropped (cancelled) when the checkout failed; \
                 log: {:?}\n{}",
                backends.log(),
                backends.timeline.picture(
                    "all three start at 0 ms; stock fails at 50 ms, the others are dropped then"
                )
            );
        }

        // Cancelled means gone: nothing is left running to finish later.
        let log = backends.log();
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            backends.log(),
            log,
            "nothing may still run after checkout returned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_failure_still_fails_the_checkout() {
        let backends = Backends::new(Plan::ok(100), Plan::ok(200), Plan::fail(300));
        let start = Instant::now();
        assert_eq!(
            checkout(&backends).await,
            Err(CheckoutError::FraudSuspected)
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "calls of 100, 200 and 300 ms run together, the last one failing, take 300 ms\n{}",
            backends
                .timeline
                .picture("all three start at 0 ms; fraud fails at 300 ms")
        );
        assert_eq!(ending(&backends, "pricing").as_deref(), Some("ok"));
        assert_eq!(ending(&backends, "stock").as_deref(), Some("ok"));
    }

    /// At least 1 ms: a call that fails at once, on its first poll, may stop the checkout
    /// before the later calls were ever polled (started).
    fn plan() -> impl Strategy<Value = Plan> {
        (1u64..1_000, any::<bool>()).prop_map(|(after_ms, fails)| Plan { after_ms, fails })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any plans (with distinct latencies): the result is the earliest failure, at
        /// its time, or every value at the slowest call's time; exactly the calls that had
        /// not answered by then were dropped.
        #[test]
        fn the_earliest_failure_decides(pricing in plan(), stock in plan(), fraud in plan()) {
            prop_assume!(
                pricing.after_ms != stock.after_ms
                    && stock.after_ms != fraud.after_ms
                    && pricing.after_ms != fraud.after_ms
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let backends = Backends::new(pricing, stock, fraud);
            let (elapsed, result) = runtime.block_on(async {
                let start = Instant::now();
                let result = checkout(&backends).await;
                (start.elapsed(), result)
            });

            let plans = [
                ("pricing", pricing, CheckoutError::PricingDown),
                ("stock", stock, CheckoutError::OutOfStock),
                ("fraud", fraud, CheckoutError::FraudSuspected),
            ];
            let first_failure = plans
                .iter()
                .filter(|(_, plan, _)| plan.fails)
                .min_by_key(|(_, plan, _)| plan.after_ms);
            let end_ms = match first_failure {
                Some(&(_, plan, error)) => {
                    prop_assert_eq!(result, Err(error));
                    plan.after_ms
                }
                None => {
                    prop_assert!(result.is_ok());
                    plans.iter().map(|(_, plan, _)| plan.after_ms).max().unwrap()
                }
            };
            prop_assert_eq!(elapsed, Duration::from_millis(end_ms), "time until checkout returned");
            for (service, plan, _) in plans {
                let expected = if plan.after_ms > end_ms {
                    "dropped"
                } else if plan.fails {
                    "failed"
                } else {
                    "ok"
                };
                let ended = ending(&backends, service);
                prop_assert_eq!(ended.as_deref(), Some(expected), "how the {} call ended", service);
            }
        }
    }
}
