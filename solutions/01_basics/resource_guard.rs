//! # A guard that always releases, plus an explicit async `close`
//!
//! A pooled connection must go back to its pool on *every* way out of a handler: the happy
//! path, an early `?`, a panic, and cancellation (a `timeout` or a `select!` that drops the
//! future half-way). Rust gets all of these from one place: `Drop`. The value that owns the
//! resource is the guard; when it goes out of scope, however that happens, `drop` runs.
//! A leaked connection is the classic slow outage: the pool empties one error at a time.
//!
//! `Drop` cannot `.await`, though, so it cannot flush buffered writes. Real clients therefore
//! pair the guard with an explicit `async fn close(self)`: it does the async part (flush),
//! then gives the connection back *clean*. A connection that is merely dropped may hold
//! half-written data, so the pool discards it instead of reusing it. Either way it is given
//! back exactly once: `close` consumes `self`, and when `close` ends `self` is dropped, so
//! `Drop` must know that `close` already did the job (an `Option` you `take()`, or a flag).
//! (Python: `async with pool.acquire() as conn:` — `__aexit__` becomes `Drop` + `close().await`.)
//!
//! ## Your job
//! Implement `Drop for Connection` and `Connection::close` so that every checked-out
//! connection is given back exactly once: `Clean` after a finished `close`, `Discarded` on any
//! other way out (error, panic, cancellation, even a `close` cancelled mid-flush). You may
//! change `Connection`'s fields and `Pool::checkout`.
//!
//! ## Read
//! - <https://doc.rust-lang.org/std/ops/trait.Drop.html>
//! - <https://doc.rust-lang.org/std/option/enum.Option.html#method.take>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout.html> (cancellation drops the future)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::sleep;

/// How long a flush takes on the wire.
pub const FLUSH: Duration = Duration::from_millis(20);
/// How long the slow part of `place_order` takes.
pub const WORK: Duration = Duration::from_millis(100);

/// How a connection came back to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Flushed and closed properly: the pool may hand it out again.
    Clean,
    /// Dropped without a finished `close`: it may hold half-written data, so it is thrown away.
    Discarded,
}

/// What the pool has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub checked_out: usize,
    pub clean: usize,
    pub discarded: usize,
}

#[derive(Default)]
struct Inner {
    stats: Stats,
    /// Everything that reached the server, in order.
    sent: Vec<String>,
}

/// A pretend connection pool that only keeps score.
#[derive(Clone, Default)]
pub struct Pool {
    inner: Arc<Mutex<Inner>>,
}

impl Pool {
    pub fn checkout(&self) -> Connection {
        self.inner.lock().unwrap().stats.checked_out += 1;
        Connection {
            pool: Some(self.clone()),
            buffer: Vec::new(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().unwrap().stats.clone()
    }

    /// Connections checked out and not yet given back.
    pub fn in_use(&self) -> usize {
        let s = self.stats();
        s.checked_out - s.clean - s.discarded
    }

    /// What reached the server.
    pub fn sent(&self) -> Vec<String> {
        self.inner.lock().unwrap().sent.clone()
    }

    fn give_back(&self, how: Returned) {
        let stats = &mut self.inner.lock().unwrap().stats;
        match how {
            Returned::Clean => stats.clean += 1,
            Returned::Discarded => stats.discarded += 1,
        }
    }

    async fn flush(&self, lines: Vec<String>) {
        sleep(FLUSH).await;
        self.inner.lock().unwrap().sent.extend(lines);
    }
}

/// A checked-out connection: the guard. Writes are buffered until `close` flushes them.
pub struct Connection {
    /// `Some` while checked out; `take()`n by whoever gives it back, so that happens once.
    pool: Option<Pool>,
    buffer: Vec<String>,
}

impl Connection {
    pub fn send(&mut self, line: impl Into<String>) {
        self.buffer.push(line.into());
    }

    /// Flushes the buffered writes, then gives the connection back clean.
    pub async fn close(mut self) {
        let pool = self.pool.as_ref().expect("only Drop takes the pool out");
        pool.flush(std::mem::take(&mut self.buffer)).await;
        // Taken only after the flush: if this future is dropped mid-flush, `Drop` still
        // finds the pool and discards the connection. Taken here, `Drop` (which runs when
        // `self` goes out of scope at the end of `close`) finds `None` and does nothing.
        if let Some(pool) = self.pool.take() {
            pool.give_back(Returned::Clean);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(Returned::Discarded);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownItem(pub String);

fn price_of(item: &str) -> Result<u32, UnknownItem> {
    match item {
        "apple" => Ok(3),
        "pear" => Ok(4),
        _ => Err(UnknownItem(item.to_string())),
    }
}

/// A handler: the connection is held across all the work and closed only on success.
pub async fn place_order(pool: &Pool, item: &str, qty: u32) -> Result<u32, UnknownItem> {
    let mut conn = pool.checkout();
    conn.send("BEGIN");
    let price = price_of(item)?;
    sleep(WORK).await;
    conn.send(format!("{qty} x {item} @ {price}"));
    conn.send("COMMIT");
    conn.close().await;
    Ok(price * qty)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let pool = Pool::default();
    println!("apple: {:?}", place_order(&pool, "apple", 2).await);
    println!("kiwi:  {:?}", place_order(&pool, "kiwi", 1).await);
    let cancelled = tokio::time::timeout(WORK / 2, place_order(&pool, "pear", 1)).await;
    println!("pear with a short timeout: {cancelled:?}");
    println!("{:?}, sent {:?}", pool.stats(), pool.sent());
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - giving the connection back only at the end of the happy path (in `close`, no `Drop`):
    //   the error, panic and cancellation checks find it still checked out;
    // - giving it back in `close` AND in `Drop` (no `Option`/flag): counted twice;
    // - a flag set before the flush: a `close` cancelled mid-flush is never given back;
    // - giving it back before the flush finishes (the guard not held across the work):
    //   the pool sees it returned while `close` is still pending;
    // - `Drop` that returns it `Clean` (or `close` that returns it `Discarded`): compared.
    use super::*;
    use proptest::prelude::*;
    use tokio::time::{Instant, timeout};
    use tokio_test::{assert_pending, assert_ready};

    fn stats(checked_out: usize, clean: usize, discarded: usize) -> Stats {
        Stats {
            checked_out,
            clean,
            discarded,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn close_flushes_then_gives_back_clean_exactly_once() {
        let pool = Pool::default();
        let mut conn = pool.checkout();
        conn.send("a");
        conn.send("b");
        let start = Instant::now();
        conn.close().await;
        assert_eq!(start.elapsed(), FLUSH, "close should await one flush");
        assert_eq!(
            pool.sent(),
            ["a", "b"],
            "close should flush the buffered writes"
        );
        assert_eq!(
            pool.stats(),
            stats(1, 1, 0),
            "close should give the connection back once, as Clean (and Drop must not count it again)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn connection_stays_checked_out_while_close_flushes() {
        let pool = Pool::default();
        let mut conn = pool.checkout();
        conn.send("x");
        let mut closing = tokio_test::task::spawn(conn.close());
        assert_pending!(closing.poll(), "close should be waiting for the flush");
        assert_eq!(
            pool.in_use(),
            1,
            "the connection was given back before its flush finished"
        );
        tokio::time::advance(FLUSH).await;
        assert_ready!(closing.poll());
        assert_eq!(pool.stats(), stats(1, 1, 0));
        assert_eq!(pool.in_use(), 0, "the connection was not given back");
    }

    #[tokio::test(start_paused = true)]
    async fn successful_handler_gives_back_clean() {
        let pool = Pool::default();
        assert_eq!(place_order(&pool, "apple", 2).await, Ok(6));
        assert_eq!(pool.stats(), stats(1, 1, 0));
        assert_eq!(pool.sent(), ["BEGIN", "2 x apple @ 3", "COMMIT"]);
    }

    #[tokio::test(start_paused = true)]
    async fn early_question_mark_error_discards_the_connection() {
        let pool = Pool::default();
        assert_eq!(
            place_order(&pool, "kiwi", 1).await,
            Err(UnknownItem("kiwi".into()))
        );
        assert_eq!(
            pool.stats(),
            stats(1, 0, 1),
            "a connection dropped by an early `?` must be given back (Discarded) by Drop"
        );
        assert!(pool.sent().is_empty(), "nothing should be flushed on error");
    }

    #[tokio::test(start_paused = true)]
    async fn panic_in_a_spawned_task_still_gives_the_connection_back() {
        let pool = Pool::default();
        let task_pool = pool.clone();
        let handle = tokio::spawn(async move {
            let mut conn = task_pool.checkout();
            conn.send("half");
            sleep(WORK).await;
            panic!("the handler crashed");
        });
        let err = handle.await.expect_err("the task should have panicked");
        assert!(err.is_panic());
        assert_eq!(
            pool.stats(),
            stats(1, 0, 1),
            "unwinding drops the connection: Drop must give it back"
        );
        assert!(pool.sent().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_by_timeout_gives_the_connection_back() {
        let pool = Pool::default();
        let start = Instant::now();
        let result = timeout(WORK / 2, place_order(&pool, "pear", 1)).await;
        assert!(result.is_err(), "the order should have timed out");
        assert_eq!(start.elapsed(), WORK / 2);
        assert_eq!(
            pool.stats(),
            stats(1, 0, 1),
            "a cancelled (dropped) handler must give its connection back through Drop"
        );
        assert_eq!(
            pool.in_use(),
            0,
            "the cancelled handler's connection is still out"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn close_cancelled_mid_flush_is_given_back_once_as_discarded() {
        let pool = Pool::default();
        let mut conn = pool.checkout();
        conn.send("x");
        assert!(timeout(FLUSH / 2, conn.close()).await.is_err());
        assert_eq!(
            pool.stats(),
            stats(1, 0, 1),
            "a close that never finished its flush must still give the connection back, once, as Discarded"
        );
        assert!(pool.sent().is_empty());
    }

    #[derive(Debug, Clone, Copy)]
    enum Ending {
        Close,
        Drop,
        EarlyError,
        Timeout,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// However connections end, each is given back exactly once, Clean only after close.
        #[test]
        fn every_checkout_is_given_back_exactly_once(endings in prop::collection::vec(
            prop_oneof![Just(Ending::Close), Just(Ending::Drop), Just(Ending::EarlyError), Just(Ending::Timeout)],
            0..20,
        )) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let pool = Pool::default();
            runtime.block_on(async {
                for ending in &endings {
                    match ending {
                        Ending::Close => pool.checkout().close().await,
                        Ending::Drop => drop(pool.checkout()),
                        Ending::EarlyError => { let _ = place_order(&pool, "kiwi", 1).await; }
                        Ending::Timeout => { let _ = timeout(WORK, place_order(&pool, "apple", 1)).await; }
                    }
                }
            });
            let closes = endings.iter().filter(|e| matches!(e, Ending::Close)).count();
            prop_assert_eq!(pool.stats(), stats(endings.len(), closes, endings.len() - closes));
        }
    }
}
