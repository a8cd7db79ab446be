//! # Timeouts and deadlines: `timeout`, `timeout_at`, one deadline over many steps
//!
//! A call to another service that never answers must not hold your caller forever.
//! `tokio::time::timeout(limit, fut)` polls `fut` until it is ready or `limit` has passed;
//! on time-out it returns `Err(Elapsed)` and *drops* `fut`, which cancels the work in it.
//! (Python: `asyncio.wait_for(call(), timeout=0.5)` / `asyncio.timeout(...)`.)
//!
//! A request made of several steps (connect, send, read) usually has one budget for the
//! whole thing: the caller said "answer within 300 ms", not "within 300 ms per step".
//! A fresh `timeout(total, step)` per step lets three slow steps take three times the
//! budget. Compute the deadline once, as an `Instant`, and give each step only what
//! remains: `timeout_at(deadline, step)`. Deadlines also compose: a handler can pass the
//! deadline it received on to the calls it makes.
//!
//! ## Your job
//! Implement `read_within` (one call, one limit) and `request` (three steps, one
//! deadline). Both return `TimedOut(step)` naming the step that ran out of time. A step
//! that completes exactly at the limit or the deadline is in time: its result counts.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout.html>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout_at.html>
//! - <https://docs.rs/tokio/latest/tokio/time/struct.Instant.html>

use std::fmt;
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout, timeout_at};

/// The steps of a request, to say which one ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    Send,
    Read,
}

/// The error: this step was still running when time was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut(pub Step);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} timed out", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// A connection to a server, one async method per step. (Implementations write them as
/// `async fn`.)
pub trait Transport {
    fn connect(&mut self) -> impl Future<Output = ()>;
    fn send(&mut self, request: &str) -> impl Future<Output = ()>;
    fn read(&mut self) -> impl Future<Output = String>;
}

/// Reads one reply, giving up after `limit`.
pub async fn read_within(conn: &mut impl Transport, limit: Duration) -> Result<String, TimedOut> {
    timeout(limit, conn.read())
        .await
        .map_err(|_| TimedOut(Step::Read))
}

/// Connects, sends `request` and reads the reply, all before `deadline`.
pub async fn request(
    conn: &mut impl Transport,
    request: &str,
    deadline: Instant,
) -> Result<String, TimedOut> {
    timeout_at(deadline, conn.connect())
        .await
        .map_err(|_| TimedOut(Step::Connect))?;
    timeout_at(deadline, conn.send(request))
        .await
        .map_err(|_| TimedOut(Step::Send))?;
    timeout_at(deadline, conn.read())
        .await
        .map_err(|_| TimedOut(Step::Read))
}

/// A pretend server whose steps take a fixed time each.
struct SlowServer {
    connect_ms: u64,
    send_ms: u64,
    read_ms: u64,
    last_request: String,
}

impl Transport for SlowServer {
    async fn connect(&mut self) {
        sleep(Duration::from_millis(self.connect_ms)).await;
    }
    async fn send(&mut self, request: &str) {
        sleep(Duration::from_millis(self.send_ms)).await;
        self.last_request = request.to_string();
    }
    async fn read(&mut self) -> String {
        sleep(Duration::from_millis(self.read_ms)).await;
        format!("reply to {}", self.last_request)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut server = SlowServer {
        connect_ms: 40,
        send_ms: 20,
        read_ms: 60,
        last_request: String::new(),
    };
    let budget = Duration::from_millis(150);
    println!(
        "with 150 ms: {:?}",
        request(&mut server, "GET /", Instant::now() + budget).await
    );
    let budget = Duration::from_millis(100);
    println!(
        "with 100 ms: {:?}",
        request(&mut server, "GET /", Instant::now() + budget).await
    );
    println!(
        "read within 50 ms: {:?}",
        read_within(&mut server, Duration::from_millis(50)).await
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - no timeout at all: a server that never answers would hang the call (the checks
    //   bound it and fail instead), and a slow one answers late;
    // - a fresh `timeout(total)` per step: three slow steps take up to three times the
    //   budget and may even succeed after the deadline;
    // - a deadline computed too late (e.g. from `Instant::now()` at each step) — same thing;
    // - racing the step against `sleep` but keeping the step alive (spawning it, or
    //   awaiting it after the race): the timed-out step must be dropped at once;
    // - an error that names the wrong step;
    // - a step completing exactly at the limit or deadline treated as late.
    // More in corpus/01_basics/timeouts_deadlines.toml.
    use super::*;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use std::future::pending;
    use timeline::Timeline;

    /// A server whose step latencies the checks choose (`None`: never answers), and
    /// which logs when each step starts, finishes, or is dropped before finishing.
    struct FakeServer {
        latency_ms: [Option<u64>; 3],
        log: RefCell<Vec<String>>,
        last_request: String,
        timeline: Timeline,
    }

    /// Logs "<step> dropped" if the step's future is dropped before it finished.
    struct StepProbe<'a> {
        log: &'a RefCell<Vec<String>>,
        step: &'static str,
        finished: bool,
    }

    impl Drop for StepProbe<'_> {
        fn drop(&mut self) {
            if !self.finished {
                self.log.borrow_mut().push(format!("{} dropped", self.step));
            }
        }
    }

    impl FakeServer {
        fn new(connect: Option<u64>, send: Option<u64>, read: Option<u64>) -> Self {
            FakeServer {
                latency_ms: [connect, send, read],
                log: RefCell::new(Vec::new()),
                last_request: String::new(),
                timeline: Timeline::new(),
            }
        }

        async fn step(&self, index: usize, step: &'static str) {
            self.log.borrow_mut().push(format!("{step} started"));
            let mut probe = StepProbe {
                log: &self.log,
                step,
                finished: false,
            };
            let _span = self.timeline.span(step);
            match self.latency_ms[index] {
                Some(ms) => sleep(Duration::from_millis(ms)).await,
                None => pending::<()>().await,
            }
            probe.finished = true;
            self.log.borrow_mut().push(format!("{step} done"));
        }

        fn log(&self) -> Vec<String> {
            self.log.borrow().clone()
        }
    }

    impl Transport for FakeServer {
        async fn connect(&mut self) {
            self.step(0, "connect").await;
        }
        async fn send(&mut self, request: &str) {
            self.step(1, "send").await;
            self.last_request = request.to_string();
        }
        async fn read(&mut self) -> String {
            self.step(2, "read").await;
            format!("reply to {}", self.last_request)
        }
    }

    /// Fails (instead of hanging) when the call never returns.
    async fn bounded<T>(call: impl Future<Output = T>) -> T {
        timeout(Duration::from_secs(3600), call)
            .await
            .expect("the call never returned: a server that does not answer must not hold the caller forever")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn read_answers_when_the_server_is_faster_than_the_limit() {
        let mut server = FakeServer::new(None, None, Some(100));
        server.last_request = "GET /".into();
        let start = Instant::now();
        let reply = bounded(read_within(&mut server, ms(150))).await;
        assert_eq!(reply, Ok("reply to GET /".to_string()));
        assert_eq!(
            start.elapsed(),
            ms(100),
            "a reply in 100 ms should come back at 100 ms\n{}",
            server.timeline.picture("done by 100 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_completes_exactly_at_the_limit_or_the_deadline_counts() {
        let mut server = FakeServer::new(None, None, Some(50));
        server.last_request = "GET /".into();
        assert_eq!(
            bounded(read_within(&mut server, ms(50))).await,
            Ok("reply to GET /".to_string()),
            "a read that answers exactly at its 50 ms limit is in time"
        );

        let mut server = FakeServer::new(Some(40), Some(20), Some(40));
        let start = Instant::now();
        let reply = bounded(request(&mut server, "GET /", start + ms(100))).await;
        assert_eq!(
            reply,
            Ok("reply to GET /".to_string()),
            "steps of 40 + 20 + 40 ms end exactly at the 100 ms deadline: that is in time"
        );
        assert_eq!(start.elapsed(), ms(100));

        let mut server = FakeServer::new(Some(40), Some(60), Some(1));
        let start = Instant::now();
        let reply = bounded(request(&mut server, "GET /", start + ms(100))).await;
        assert_eq!(
            reply,
            Err(TimedOut(Step::Read)),
            "connect and send end exactly at the deadline: they count, and the read, which \
             has no time left, is the step that times out"
        );
        assert_eq!(start.elapsed(), ms(100));

        let mut server = FakeServer::new(Some(100), Some(1), Some(1));
        let start = Instant::now();
        let reply = bounded(request(&mut server, "GET /", start + ms(100))).await;
        assert_eq!(
            reply,
            Err(TimedOut(Step::Send)),
            "a connect that ends exactly at the deadline is in time; the send after it is not"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn read_gives_up_at_exactly_the_limit_and_drops_the_read() {
        let mut server = FakeServer::new(None, None, Some(500));
        let start = Instant::now();
        let reply = bounded(read_within(&mut server, ms(150))).await;
        assert_eq!(
            reply,
            Err(TimedOut(Step::Read)),
            "a 500 ms read with a 150 ms limit must time out"
        );
        assert_eq!(
            start.elapsed(),
            ms(150),
            "the read should give up at exactly the limit\n{}",
            server.timeline.picture("done by 150 ms")
        );
        assert_eq!(
            server.log(),
            ["read started", "read dropped"],
            "the timed-out read must be dropped, not left running"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn read_from_a_server_that_never_answers_times_out() {
        let mut server = FakeServer::new(None, None, None);
        let start = Instant::now();
        let reply = bounded(read_within(&mut server, ms(150))).await;
        assert_eq!(reply, Err(TimedOut(Step::Read)));
        assert_eq!(start.elapsed(), ms(150));
    }

    #[tokio::test(start_paused = true)]
    async fn request_succeeds_before_the_deadline() {
        let mut server = FakeServer::new(Some(100), Some(50), Some(100));
        let start = Instant::now();
        let reply = bounded(request(&mut server, "GET /", start + ms(300))).await;
        assert_eq!(reply, Ok("reply to GET /".to_string()));
        assert_eq!(
            start.elapsed(),
            ms(250),
            "three steps of 100, 50 and 100 ms take 250 ms\n{}",
            server.timeline.picture("done by 250 ms")
        );
        assert_eq!(
            server.log(),
            [
                "connect started",
                "connect done",
                "send started",
                "send done",
                "read started",
                "read done"
            ],
            "the steps run once each, in order"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn request_times_out_at_the_deadline_not_after_each_step_s_own_limit() {
        let mut server = FakeServer::new(Some(200), Some(200), Some(200));
        let start = Instant::now();
        let reply = bounded(request(&mut server, "GET /", start + ms(300))).await;
        assert_eq!(
            reply,
            Err(TimedOut(Step::Send)),
            "connect ends at 200 ms, so send has only 100 ms left and must time out \
             (a fresh 300 ms timeout per step lets the whole request take 600 ms)"
        );
        assert_eq!(
            start.elapsed(),
            ms(300),
            "the request must give up at the deadline, 300 ms\n{}",
            server.timeline.picture("done by 300 ms")
        );
        assert_eq!(
            server.log(),
            [
                "connect started",
                "connect done",
                "send started",
                "send dropped"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_timed_out_step_is_dropped_at_once_and_never_finishes() {
        let mut server = FakeServer::new(Some(100), Some(100), Some(250));
        let start = Instant::now();
        let reply = bounded(request(&mut server, "GET /", start + ms(300))).await;
        assert_eq!(reply, Err(TimedOut(Step::Read)));
        assert_eq!(start.elapsed(), ms(300));
        let expected = [
            "connect started",
            "connect done",
            "send started",
            "send done",
            "read started",
            "read dropped",
        ];
        assert_eq!(
            server.log(),
            expected,
            "when the request returns, the read must already be dropped"
        );
        sleep(ms(1_000)).await;
        assert_eq!(
            server.log(),
            expected,
            "the timed-out read went on running after the request returned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_error_names_the_step_that_ran_out_of_time() {
        for (latencies, step) in [
            ([None, Some(1), Some(1)], Step::Connect),
            ([Some(10), None, Some(1)], Step::Send),
            ([Some(10), Some(10), None], Step::Read),
        ] {
            let [c, s, r] = latencies;
            let mut server = FakeServer::new(c, s, r);
            let start = Instant::now();
            let reply = bounded(request(&mut server, "GET /", start + ms(100))).await;
            assert_eq!(
                reply,
                Err(TimedOut(step)),
                "the deadline passed during {step:?}"
            );
            assert_eq!(
                start.elapsed(),
                ms(100),
                "a server that never answers times out at the deadline\n{}",
                server.timeline.picture("done by 100 ms")
            );
            assert_eq!(TimedOut(step).to_string(), format!("{step:?} timed out"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_past_fails_at_once_in_connect() {
        let mut server = FakeServer::new(Some(10), Some(10), Some(10));
        let deadline = Instant::now();
        sleep(ms(5)).await;
        let start = Instant::now();
        let reply = bounded(request(&mut server, "GET /", deadline)).await;
        assert_eq!(reply, Err(TimedOut(Step::Connect)));
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "a deadline in the past leaves no time at all"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any step latencies and budget: the request ends at min(sum, budget), succeeds
        /// exactly when the steps fit in the budget, and otherwise names the step that
        /// was running when the budget ran out.
        #[test]
        fn the_request_never_outlives_its_budget(
            latencies in prop::array::uniform3(0u64..400),
            budget in 0u64..1_000,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let [c, s, r] = latencies;
            let mut server = FakeServer::new(Some(c), Some(s), Some(r));
            let (elapsed, reply) = runtime.block_on(async {
                let start = Instant::now();
                let reply = bounded(request(&mut server, "x", start + ms(budget))).await;
                (start.elapsed(), reply)
            });
            let total = c + s + r;
            prop_assert_eq!(elapsed, ms(total.min(budget)));
            let expected = if total <= budget {
                Ok("reply to x".to_string())
            } else if c > budget {
                Err(TimedOut(Step::Connect))
            } else if c + s > budget {
                Err(TimedOut(Step::Send))
            } else {
                Err(TimedOut(Step::Read))
            };
            prop_assert_eq!(reply, expected);
        }
    }
}
