//! # Blocking queries, many at once but never more than the database takes
//!
//! `spawn_blocking` does not limit anything: 10 000 requests make 10 000 closures, the pool
//! grows to 512 threads and queues the rest, and a database that takes 8 connections gets
//! 512 at once. The limit has to come from you: a `tokio::sync::Semaphore` with `limit`
//! permits, a permit taken (`acquire_owned`, awaited: that is the backpressure) before each
//! `spawn_blocking` and moved into the closure, so it is given back when the query ends, even
//! if it panics. Or a stream: `futures::stream::iter(queries).map(|q| spawn_blocking(..))
//! .buffer_unordered(limit)` polls at most `limit` of them at once, yielding results as
//! they complete (tag them with their index to put them back in order).
//! A limit has two sides: it must hold (never `limit + 1` at once) and it must be reached
//! whenever enough queries wait. A batch of `limit`, then the next batch, leaves slots idle
//! while the slowest query of each batch finishes; `buffered(limit)` (in input order) keeps
//! a finished query's slot until every earlier one has finished too, so one slow query
//! holds the rest back.
//! Why in real services: a report that runs 200 queries through a sync driver, a bulk
//! import through a sync SDK with a rate limit; the pool behind it is the real bound.
//! (Python: `asyncio.Semaphore(limit)` around `loop.run_in_executor(pool, query, q)`, or a
//! `ThreadPoolExecutor(max_workers=limit)`; Rust has no GIL, but the threads still are not
//! the limit you want: the database is.)
//!
//! ## Your job
//! `run_queries` runs every query one after another, on the runtime's thread. Run them on
//! the blocking pool with at most `limit` in flight at any moment, and as many as that
//! whenever enough are waiting; one result per query, in the order of the queries.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Semaphore.html#method.acquire_owned>
//! - <https://docs.rs/futures/latest/futures/stream/trait.StreamExt.html#method.buffer_unordered>
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html>
//! - CHEATSHEET.md, "5. Unbounded `spawn_blocking`"

use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::Semaphore;

/// A blocking database driver: each call holds its thread until the server answers.
pub trait Database: Send + Sync + 'static {
    fn query(&self, sql: &str) -> Result<String, String>;
}

/// Runs every query on the blocking pool, at most `limit` at once; results in query order.
pub async fn run_queries<D: Database>(
    db: Arc<D>,
    queries: Vec<String>,
    limit: usize,
) -> Vec<Result<String, String>> {
    let slots = Arc::new(Semaphore::new(limit));
    let running = queries.into_iter().map(|sql| {
        let (db, slots) = (Arc::clone(&db), Arc::clone(&slots));
        async move {
            let slot = slots
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            tokio::task::spawn_blocking(move || {
                let _slot = slot; // given back when the query ends, even by a panic
                db.query(&sql)
            })
            .await
            .expect("a query panicked")
        }
    });
    join_all(running).await
}

/// A database that takes 50 ms per query.
struct SlowDatabase;

impl Database for SlowDatabase {
    fn query(&self, sql: &str) -> Result<String, String> {
        std::thread::sleep(std::time::Duration::from_millis(50));
        Ok(format!("rows of {sql:?}"))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let queries: Vec<String> = (0..12).map(|i| format!("SELECT {i}")).collect();
    let started = std::time::Instant::now();
    let rows = run_queries(Arc::new(SlowDatabase), queries, 4).await;
    // 12 queries of 50 ms, 4 at a time: about 150 ms.
    println!("{} results in {:?}", rows.len(), started.elapsed());
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - the queries run one after another on the runtime's thread (as shipped), or inside
    //   `tokio::spawn`: blocking calls on the runtime;
    // - one `spawn_blocking` per query with no limit: more than `limit` at once;
    // - `let _ = semaphore.acquire().await`: `_` drops the permit on the spot, no limit;
    // - a permit held only around spawning, not until the query ends: no limit;
    // - batches of `limit` (`chunks(limit)` + `join_all`): the limit is not kept reached,
    //   slots stay idle while a batch finishes;
    // - `buffered(limit)`: a finished query keeps its slot while an earlier one runs, so
    //   fewer than `limit` run although more are waiting;
    // - a limit off by one, results in completion order (`buffer_unordered`), or an error
    //   that stops the others.
    //
    // How: every query waits until the check releases it, and reports when it starts. The
    // driver fails a query that starts while `limit` are already in flight. The check
    // releases one query (the newest) each time `limit` are in flight (or all the rest), so
    // a run that never gets `limit` in flight never moves on: a bound of 500 ms turns that
    // wait into a failure instead of a hang. Dropping the check's gates releases every
    // query still parked when a check fails.
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::mpsc as std_mpsc;
    use std::thread::{self, ThreadId};
    use std::time::Duration;
    use tokio::sync::mpsc;

    const STUCK: Duration = Duration::from_millis(500);

    #[derive(Default)]
    struct Load {
        in_flight: usize,
        most: usize,
    }

    /// A driver whose queries wait for the check, and that counts them in flight.
    struct ParkedDatabase {
        limit: usize,
        runtime_thread: ThreadId,
        started: mpsc::UnboundedSender<String>,
        gates: Mutex<HashMap<String, std_mpsc::Receiver<()>>>,
        load: Mutex<Load>,
    }

    impl Database for ParkedDatabase {
        fn query(&self, sql: &str) -> Result<String, String> {
            assert_ne!(
                thread::current().id(),
                self.runtime_thread,
                "{sql:?} ran on the runtime's own thread: a blocking query there stalls every task"
            );
            let gate = self
                .gates
                .lock()
                .unwrap()
                .remove(sql)
                .expect("each query runs once");
            {
                let mut load = self.load.lock().unwrap();
                load.in_flight += 1;
                load.most = load.most.max(load.in_flight);
                if load.in_flight > self.limit {
                    load.in_flight -= 1;
                    return Err(format!(
                        "{sql:?} started while {} queries were already in flight: the limit is {}",
                        self.limit, self.limit
                    ));
                }
            }
            let _ = self.started.send(sql.to_string());
            let released = gate.recv_timeout(STUCK);
            let in_flight = {
                let mut load = self.load.lock().unwrap();
                load.in_flight -= 1;
                load.in_flight + 1
            };
            if released == Err(std_mpsc::RecvTimeoutError::Timeout) {
                return Err(format!(
                    "{sql:?} waited for the other queries to fill the limit of {}, but only \
                     {in_flight} were in flight",
                    self.limit
                ));
            }
            match sql.strip_prefix("BROKEN ") {
                Some(_) => Err(format!("syntax error in {sql:?}")),
                None => Ok(format!("rows of {sql}")),
            }
        }
    }

    struct Run {
        db: Arc<ParkedDatabase>,
        starts: mpsc::UnboundedReceiver<String>,
        gates: HashMap<String, std_mpsc::Sender<()>>,
        queries: Vec<String>,
    }

    fn parked(queries: &[&str], limit: usize) -> Run {
        let (started, starts) = mpsc::unbounded_channel();
        let (mut senders, mut receivers) = (HashMap::new(), HashMap::new());
        for &sql in queries {
            let (release, gate) = std_mpsc::channel();
            senders.insert(sql.to_string(), release);
            receivers.insert(sql.to_string(), gate);
        }
        let db = ParkedDatabase {
            limit,
            runtime_thread: thread::current().id(),
            started,
            gates: Mutex::new(receivers),
            load: Mutex::new(Load::default()),
        };
        Run {
            db: Arc::new(db),
            starts,
            gates: senders,
            queries: queries.iter().map(|q| q.to_string()).collect(),
        }
    }

    /// Releases the newest started query each time `limit` (or all the rest) are in flight.
    async fn keep_the_limit_full(
        mut starts: mpsc::UnboundedReceiver<String>,
        gates: HashMap<String, std_mpsc::Sender<()>>,
        limit: usize,
    ) {
        let mut unfinished = gates.len();
        let mut parked = Vec::new();
        while unfinished > 0 {
            while parked.len() < limit.min(unfinished) {
                match starts.recv().await {
                    Some(sql) => parked.push(sql),
                    None => return,
                }
            }
            let newest = parked.pop().expect("a query in flight");
            let _ = gates[&newest].send(());
            unfinished -= 1;
        }
    }

    async fn run(queries: &[&str], limit: usize) -> (Vec<Result<String, String>>, usize) {
        let Run {
            db,
            starts,
            gates,
            queries,
        } = parked(queries, limit);
        // Aborted (and its gates dropped, releasing any query still parked) once the run ends.
        let releaser = tokio::spawn(keep_the_limit_full(starts, gates, limit));
        let results = run_queries(Arc::clone(&db), queries, limit).await;
        releaser.abort();
        let most = db.load.lock().unwrap().most;
        (results, most)
    }

    fn rows(queries: &[&str]) -> Vec<Result<String, String>> {
        queries.iter().map(|q| Ok(format!("rows of {q}"))).collect()
    }

    const TEN: [&str; 10] = ["q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9"];

    #[tokio::test(flavor = "current_thread")]
    async fn ten_queries_three_at_a_time_the_limit_holds_and_stays_reached() {
        let (results, most) = run(&TEN, 3).await;
        assert_eq!(
            results,
            rows(&TEN),
            "one result per query, in the order of the queries"
        );
        assert_eq!(
            most, 3,
            "3 queries should have been in flight at once, and never more"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_limit_of_one_runs_them_one_at_a_time() {
        let (results, most) = run(&TEN[..4], 1).await;
        assert_eq!(results, rows(&TEN[..4]));
        assert_eq!(most, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_limit_above_the_number_of_queries_runs_them_all_at_once() {
        let (results, most) = run(&TEN[..5], 8).await;
        assert_eq!(results, rows(&TEN[..5]));
        assert_eq!(most, 5, "all 5 queries should have been in flight at once");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_query_is_an_error_for_that_query_only() {
        let queries = ["q0", "BROKEN q1", "q2", "q3"];
        let (results, _) = run(&queries, 2).await;
        assert_eq!(
            results,
            vec![
                Ok("rows of q0".to_string()),
                Err("syntax error in \"BROKEN q1\"".to_string()),
                Ok("rows of q2".to_string()),
                Ok("rows of q3".to_string()),
            ]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_queries_no_results() {
        let (results, most) = run(&[], 3).await;
        assert!(results.is_empty());
        assert_eq!(most, 0);
    }
}
