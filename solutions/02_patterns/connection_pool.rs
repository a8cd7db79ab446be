//! # A connection pool: bounded, waiting, returned on drop
//!
//! Opening a database connection costs a round trip or three (TCP, TLS, authentication), and
//! the database accepts only so many. A pool keeps a few connections open and lends them out:
//! `get().await` hands over an idle connection, opens a new one while the pool is below its
//! size, and otherwise *waits*, first come first served, until someone gives one back. Giving
//! back is not a method the caller may forget: the loan is a guard, and dropping it returns the
//! connection, also when the task using it is cancelled or panics. A connection that broke
//! while lent out is closed instead of returned (its slot opens a fresh one), and a connection
//! idle for longer than `idle_timeout` is closed, so a quiet service does not hold the
//! database's connections forever.
//! (Python: `async with pool.acquire() as conn:` in asyncpg or aiomysql.)
//!
//! The pieces are chapter 1's. A `Semaphore` with `size` permits is the bound and the fair
//! queue: `acquire_owned` waits in arrival order, and a released permit goes straight to the
//! longest waiter. The idle connections sit in a `Mutex<Vec<_>>` (a `std` mutex: it is never
//! held across an `.await`). The guard owns the connection and the permit; its `Drop` puts
//! the connection back *before* the permit is released (fields drop after `drop` runs), so
//! the waiter woken by the permit finds the connection waiting. Each returned connection
//! spawns a timer task that, `idle_timeout` later, closes the connections idle since then.
//!
//! ## Your job
//! Write `Pool::get`, `Pool::close_expired` and the `Drop` of `PooledConn`: at most `size`
//! connections open, waiters served in arrival order, a connection back in the pool as soon
//! as its guard is dropped (broken ones closed), idle ones closed after `idle_timeout`.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Semaphore.html#method.acquire_owned>
//! - <https://docs.rs/tokio/latest/tokio/time/struct.Instant.html>
//! - <https://doc.rust-lang.org/std/ops/trait.Drop.html>
//! - A real service uses its driver's pool or a generic one:
//!   <https://docs.rs/deadpool/latest/deadpool/>, <https://docs.rs/bb8/latest/bb8/>.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use timeline::{SpanGuard, Timeline};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep};

/// Opening a connection takes this long.
pub const CONNECT_TIME: Duration = Duration::from_millis(10);

/// A pretend database. It counts the connections open to it, and draws each one on a
/// timeline from the moment it opens to the moment it closes.
#[derive(Clone, Default)]
pub struct Database {
    opened: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    timeline: Timeline,
}

impl Database {
    /// A database drawing its connections on `timeline`.
    pub fn new(timeline: Timeline) -> Self {
        Database {
            timeline,
            ..Database::default()
        }
    }

    /// Opens a connection (takes `CONNECT_TIME`).
    pub async fn connect(&self) -> Connection {
        sleep(CONNECT_TIME).await;
        let id = self.opened.fetch_add(1, Ordering::SeqCst) + 1;
        self.open.fetch_add(1, Ordering::SeqCst);
        Connection {
            id,
            broken: false,
            open: Arc::clone(&self.open),
            _span: self.timeline.span(format!("connection {id}")),
        }
    }

    /// How many connections were ever opened.
    pub fn connections_opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// How many connections are open now.
    pub fn connections_open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// An open connection; dropping it closes it.
pub struct Connection {
    id: usize,
    broken: bool,
    open: Arc<AtomicUsize>,
    _span: SpanGuard,
}

impl Connection {
    /// 1 for the first connection the database opened, 2 for the second...
    pub fn id(&self) -> usize {
        self.id
    }

    /// Runs a query; a broken connection fails.
    pub async fn query(&mut self, sql: &str) -> Result<String, String> {
        sleep(Duration::from_millis(1)).await;
        if self.broken {
            Err(format!("connection {} is broken", self.id))
        } else {
            Ok(format!("{sql}: ok"))
        }
    }

    /// What a network failure does: every later query fails.
    pub fn break_it(&mut self) {
        self.broken = true;
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A pool of at most `size` connections to one database. Clones share the pool.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    database: Database,
    /// One permit per connection that may be lent out; waiters queue here in order.
    permits: Arc<Semaphore>,
    /// Connections back from a loan, with when they came back. The last one is the
    /// most recently used.
    idle: Mutex<Vec<Idle>>,
    idle_timeout: Duration,
}

struct Idle {
    connection: Connection,
    since: Instant,
}

/// A connection on loan. Derefs to the `Connection`; dropping it gives it back.
pub struct PooledConn {
    // An `Option` only so that `drop` can move the connection out.
    connection: Option<Connection>,
    pool: Arc<Shared>,
    // Released after `drop` has put the connection back: fields drop after `Drop::drop`.
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(database: Database, size: usize, idle_timeout: Duration) -> Self {
        assert!(size > 0, "a pool of 0 connections would never lend one");
        Pool {
            shared: Arc::new(Shared {
                database,
                permits: Arc::new(Semaphore::new(size)),
                idle: Mutex::new(Vec::new()),
                idle_timeout,
            }),
        }
    }

    /// Lends a connection: an idle one, else a new one; waits (in arrival order) while
    /// `size` are on loan.
    pub async fn get(&self) -> PooledConn {
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .expect("the pool never closes its semaphore");
        let idle = self.shared.lock_idle().pop();
        let connection = match idle {
            Some(idle) => idle.connection,
            None => self.shared.database.connect().await,
        };
        PooledConn {
            connection: Some(connection),
            pool: Arc::clone(&self.shared),
            _permit: permit,
        }
    }

    /// Connections waiting in the pool, not on loan.
    pub fn idle_count(&self) -> usize {
        self.shared.lock_idle().len()
    }
}

impl Shared {
    fn lock_idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes (drops) every connection idle for `idle_timeout` or longer.
    fn close_expired(&self) {
        let idle_timeout = self.idle_timeout;
        self.lock_idle()
            .retain(|idle| idle.since.elapsed() < idle_timeout);
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if connection.is_broken() {
            // Dropping it closes it; the permit released next lets a new one open.
            return;
        }
        self.pool.lock_idle().push(Idle {
            connection,
            since: Instant::now(),
        });
        // A weak handle: a timer must not keep a dropped pool's connections open.
        let pool = Arc::downgrade(&self.pool);
        let idle_timeout = self.pool.idle_timeout;
        tokio::spawn(async move {
            sleep(idle_timeout).await;
            if let Some(pool) = pool.upgrade() {
                pool.close_expired();
            }
        });
    }
}

impl Deref for PooledConn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection.as_ref().expect("present until dropped")
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut Connection {
        self.connection.as_mut().expect("present until dropped")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let database = Database::default();
    let pool = Pool::new(database.clone(), 2, Duration::from_secs(30));
    let start = Instant::now();
    let users: Vec<_> = (1..=5)
        .map(|user| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.get().await;
                let answer = conn.query(&format!("SELECT {user}")).await;
                sleep(Duration::from_millis(100)).await;
                println!(
                    "user {user} on connection {} at {:?}: {answer:?}",
                    conn.id(),
                    start.elapsed()
                );
            })
        })
        .collect();
    for user in users {
        user.await.expect("a user task panicked");
    }
    println!(
        "{} connections opened for 5 users, {} idle in the pool",
        database.connections_opened(),
        pool.idle_count()
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/connection_pool.toml tries each):
    // - no bound (a new connection per `get`, or a semaphore never acquired): more than
    //   `size` connections open;
    // - no reuse (the connection closed on drop instead of put back): one connect per `get`;
    // - a pool that never waits (an error or a new connection when all are lent out);
    // - waiting by polling (`try_acquire` in a loop with a sleep): late, and a busy user
    //   takes a connection back before an earlier waiter;
    // - the permit released before the connection is back (a waiter opens a new one);
    // - broken connections put back into the pool;
    // - no idle timeout, a timer that is not reset when a connection is reused, or
    //   connections closed at the first checkout after the timeout instead of on time.
    use super::*;
    use proptest::prelude::*;

    const SIZE: usize = 2;
    const IDLE: Duration = Duration::from_millis(1000);
    /// An idle timeout longer than any gap in the property check's workloads.
    const QUIET: Duration = Duration::from_millis(60_000);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn pool_of(size: usize) -> (Pool, Database, Timeline) {
        let timeline = Timeline::new();
        let database = Database::new(timeline.clone());
        (Pool::new(database.clone(), size, IDLE), database, timeline)
    }

    /// Waits until `when`, then lets the tasks due then run before looking.
    async fn at(when: Instant) {
        tokio::time::sleep_until(when).await;
        settle().await;
    }

    /// Lets spawned tasks run up to their next wait without moving the clock.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// `users` tasks, user i asks for a connection at i ms and holds it for `hold`.
    /// Returns, per user, when it got its connection and which one.
    async fn crowd(
        pool: &Pool,
        timeline: &Timeline,
        users: u64,
        hold: Duration,
    ) -> Vec<(Duration, usize)> {
        let start = Instant::now();
        let tasks: Vec<_> = (0..users)
            .map(|user| {
                let pool = pool.clone();
                let timeline = timeline.clone();
                tokio::spawn(async move {
                    sleep(ms(user)).await;
                    let conn = tokio::time::timeout(ms(60_000), pool.get())
                        .await
                        .expect("a user waited a minute for a connection");
                    let _span = timeline.span(format!("user {user}"));
                    let got = (start.elapsed(), conn.id());
                    sleep(hold).await;
                    got
                })
            })
            .collect();
        let mut got = Vec::new();
        for task in tasks {
            got.push(task.await.expect("a user task panicked"));
        }
        got
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_connections_than_the_size_and_each_one_reused() {
        let (pool, database, timeline) = pool_of(SIZE);
        let start = Instant::now();
        crowd(&pool, &timeline, 6, ms(100)).await;
        let picture = timeline.picture("2 connections, each lent to 3 users in turn");
        assert_eq!(
            database.connections_opened(),
            SIZE,
            "6 users of a pool of 2 should share 2 connections: is a dropped connection put \
             back and lent again?\n{picture}"
        );
        assert!(
            database.connections_open() <= SIZE,
            "more connections open than the pool's size\n{picture}"
        );
        // Users 0 and 1 connect (10 ms) and hold until 110 / 111; the others wait their turn.
        assert_eq!(
            start.elapsed(),
            ms(10 + 100 + 100 + 100 + 1),
            "6 users holding a connection 100 ms each, 2 at a time, should be done at 311 ms\n{picture}"
        );
        assert_eq!(
            pool.idle_count(),
            SIZE,
            "both connections should be back in the pool"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_get_connections_in_arrival_order_as_soon_as_one_is_back() {
        let (pool, _database, timeline) = pool_of(1);
        let got = crowd(&pool, &timeline, 5, ms(100)).await;
        let expected: Vec<_> = (0..5).map(|user| (ms(10 + 100 * user), 1)).collect();
        assert_eq!(
            got,
            expected,
            "(when, which connection) per user: with one connection, user i should get \
             connection 1 at 10 + 100·i ms, right when user i-1 gives it back\n{}",
            timeline.picture("users 0..4 one after another, no gaps")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_user_cannot_take_the_connection_back_before_a_waiter() {
        let (pool, _database, timeline) = pool_of(1);
        let busy = {
            let (pool, timeline) = (pool.clone(), timeline.clone());
            tokio::spawn(async move {
                for _ in 0..3 {
                    let _conn = pool.get().await;
                    let _span = timeline.span("busy user");
                    sleep(ms(50)).await;
                }
            })
        };
        sleep(ms(20)).await;
        let start = Instant::now();
        let conn = pool.get().await;
        let waited = start.elapsed();
        let _span = timeline.span("waiter");
        drop(conn);
        busy.await.expect("the busy user panicked");
        assert_eq!(
            waited,
            ms(40),
            "the waiter asked at 20 ms, while the busy user held the connection until 60 ms: \
             it should get it then, before the busy user's next `get`\n{}",
            timeline.picture("waiter gets the connection at 60 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_connection_is_lent_again_without_reconnecting() {
        let (pool, database, _timeline) = pool_of(SIZE);
        let first = pool.get().await;
        let id = first.id();
        drop(first);
        assert_eq!(
            pool.idle_count(),
            1,
            "a dropped connection should be back in the pool at once"
        );
        let start = Instant::now();
        let again = pool.get().await;
        assert_eq!(again.id(), id, "the idle connection should be lent again");
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "an idle connection needs no connect time"
        );
        assert_eq!(database.connections_opened(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_user_gives_its_connection_back() {
        let (pool, database, timeline) = pool_of(1);
        let holder = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let _conn = pool.get().await;
                std::future::pending::<()>().await;
            })
        };
        sleep(ms(50)).await;
        holder.abort();
        let start = Instant::now();
        let conn = tokio::time::timeout(ms(1000), pool.get())
            .await
            .expect("the connection of a cancelled task never came back to the pool");
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the connection should be back when the task is cancelled"
        );
        assert_eq!(
            conn.id(),
            1,
            "the cancelled task's connection should be reused"
        );
        assert_eq!(
            database.connections_opened(),
            1,
            "{}",
            timeline.picture("one connection")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_leaves_the_queue() {
        let (pool, _database, _timeline) = pool_of(1);
        let held = pool.get().await;
        let gave_up = tokio::time::timeout(ms(20), pool.get()).await;
        assert!(
            gave_up.is_err(),
            "with its one connection lent out, the pool should make `get` wait"
        );
        drop(held);
        let start = Instant::now();
        let _conn = tokio::time::timeout(ms(1000), pool.get())
            .await
            .expect("a waiter that gave up kept its place (or the connection) in the pool");
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_connection_is_closed_and_replaced() {
        let (pool, database, timeline) = pool_of(1);
        let mut conn = pool.get().await;
        conn.break_it();
        assert!(conn.query("SELECT 1").await.is_err());
        drop(conn);
        assert_eq!(
            database.connections_open(),
            0,
            "a broken connection should be closed when it comes back, not kept in the pool"
        );
        let start = Instant::now();
        let mut fresh = pool.get().await;
        assert_eq!(fresh.id(), 2, "the next user should get a new connection");
        assert_eq!(
            start.elapsed(),
            CONNECT_TIME,
            "a new connection takes the connect time"
        );
        assert_eq!(
            fresh.query("SELECT 1").await,
            Ok("SELECT 1: ok".to_string())
        );
        assert_eq!(
            database.connections_open(),
            1,
            "{}",
            timeline.picture("connection 1, then 2")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_after_the_idle_timeout() {
        let (pool, database, timeline) = pool_of(SIZE);
        let start = Instant::now();
        drop(pool.get().await); // back in the pool at 10 ms
        at(start + ms(1009)).await;
        assert_eq!(
            database.connections_open(),
            1,
            "closed before its idle timeout"
        );
        at(start + ms(1010)).await;
        assert_eq!(
            database.connections_open(),
            0,
            "a connection idle for `idle_timeout` should be closed then, without waiting for \
             another `get`\n{}",
            timeline.picture("connection 1 open from 0 to 1010 ms")
        );
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(
            pool.get().await.id(),
            2,
            "after the timeout, `get` opens a new connection"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reusing_a_connection_restarts_its_idle_timer() {
        let (pool, database, timeline) = pool_of(SIZE);
        let start = Instant::now();
        drop(pool.get().await); // idle from 10 ms
        at(start + ms(500)).await;
        let conn = pool.get().await;
        at(start + ms(600)).await;
        drop(conn); // idle from 600 ms
        at(start + ms(1599)).await; // the timer of the first idle time (1010 ms) has fired
        assert_eq!(
            database.connections_open(),
            1,
            "a connection idle since 600 ms was closed before 1600 ms: the timer of its \
             earlier idle time must not count\n{}",
            timeline.picture("connection 1 open until 1600 ms")
        );
        at(start + ms(1600)).await;
        assert_eq!(
            database.connections_open(),
            0,
            "idle since 600 ms, it should close at 1600 ms"
        );
    }

    fn run_paused<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
            .block_on(future)
    }

    /// One user: arrives at `at` ms, holds the connection `hold` ms, maybe breaks it.
    #[derive(Debug, Clone)]
    struct User {
        at: u64,
        hold: u64,
        breaks: bool,
    }

    fn users() -> impl Strategy<Value = Vec<User>> {
        prop::collection::vec((0u64..400, 1u64..200, prop::bool::weighted(0.2)), 1..16).prop_map(
            |raw| {
                let mut at = 0;
                raw.into_iter()
                    .map(|(gap, hold, breaks)| {
                        at += gap + 1; // distinct arrival times
                        User { at, hold, breaks }
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any users: never more than `size` open, every user served when a fair queue would
        /// serve it, a connection opened only when no idle one was there, all closed once idle.
        #[test]
        fn any_users_are_all_served_in_order_within_the_size(users in users(), size in 1usize..4) {
            let (got, opened, open_peak, open_after) = run_paused(async {
                let timeline = Timeline::new();
                let database = Database::new(timeline.clone());
                let pool = Pool::new(database.clone(), size, QUIET);
                let start = Instant::now();
                let tasks: Vec<_> = users.iter().cloned().map(|user| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        sleep(ms(user.at)).await;
                        let mut conn = pool.get().await;
                        let got = start.elapsed();
                        sleep(ms(user.hold)).await;
                        if user.breaks {
                            conn.break_it();
                        }
                        got
                    })
                }).collect();
                let mut got = Vec::new();
                for task in tasks {
                    got.push(task.await.expect("a user panicked"));
                }
                let open_peak = timeline.peak_in_flight();
                let opened = database.connections_opened();
                at(Instant::now() + QUIET).await;
                (got, opened, open_peak, database.connections_open())
            });
            prop_assert!(open_peak <= size, "{} connections open at once, pool size {}", open_peak, size);
            let (model_got, model_opened, tie) = model_schedule(&users, size);
            // When a user arrives at the very instant another gives a connection back,
            // either may run first: the model only speaks when that never happens.
            if !tie {
                prop_assert_eq!(&got, &model_got, "when each user got its connection");
                prop_assert_eq!(opened, model_opened, "connections opened");
            }
            prop_assert_eq!(open_after, 0, "connections still open `idle_timeout` after the last user");
        }
    }

    /// The model: users in arrival order take the slot that frees first; each takes the
    /// most recent healthy idle connection, else connects. Returns when each user got its
    /// connection, how many were opened, and whether an arrival coincided with a return.
    /// (Idle timeouts never fire in between: `QUIET` is longer than any workload.)
    fn model_schedule(users: &[User], size: usize) -> (Vec<Duration>, usize, bool) {
        // Per slot: when it frees, and whether a healthy connection comes back then.
        let mut slots: Vec<(u64, bool)> = vec![(0, false); size];
        let mut idle_healthy = 0usize;
        let mut returned: Vec<(u64, bool)> = Vec::new(); // (at, healthy), not yet counted
        let mut opened = 0;
        let mut got = Vec::new();
        let mut dones = Vec::new();
        for user in users {
            let slot = (0..size).min_by_key(|&i| slots[i].0).expect("size >= 1");
            let free_at = slots[slot].0;
            let start = user.at.max(free_at);
            // Every connection given back by `start` is idle now (the permit is released
            // after the connection is back).
            returned.retain(|&(at, healthy)| {
                if at <= start {
                    idle_healthy += usize::from(healthy);
                    false
                } else {
                    true
                }
            });
            let ready = if idle_healthy > 0 {
                idle_healthy -= 1;
                start
            } else {
                opened += 1;
                start + CONNECT_TIME.as_millis() as u64
            };
            got.push(ms(ready));
            let done = ready + user.hold;
            slots[slot] = (done, !user.breaks);
            returned.push((done, !user.breaks));
            dones.push(done);
        }
        let tie = users.iter().any(|user| dones.contains(&user.at));
        (got, opened, tie)
    }
}
