//! # `JoinSet`: results as they complete, abort the rest on the first failure
//!
//! A `JoinSet` owns a group of spawned tasks. `join_next().await` gives the output of
//! whichever task finishes next, so results arrive in *completion* order, and the fast ones
//! can be used while the slow ones still run. And the set owns its tasks: `abort_all()`
//! cancels them, `shutdown().await` cancels them and waits until they are gone, and
//! dropping the set aborts every task still in it.
//!
//! That last point is the difference with a `Vec<JoinHandle>`. Dropping a `JoinHandle`
//! *detaches* its task: it keeps running, unobserved, after the function that spawned it has
//! given up on it. When a batch fails on its first error, the rest of the batch should stop
//! doing work (and stop holding connections), not carry on in the background.
//! (Python: `asyncio.as_completed(tasks)`, and `asyncio.wait(tasks,
//! return_when=FIRST_EXCEPTION)` followed by `task.cancel()` for the pending ones.)
//!
//! ## Your job
//! Implement `as_completed` (wait for every job, outputs in completion order) and
//! `until_first_failure` (outputs in completion order while all goes well; on the first
//! `Err`, stop every other job and return that error at once). Both spawn their jobs into a
//! `JoinSet`. A job that panics is a bug: let the panic propagate
//! (`std::panic::resume_unwind(err.into_panic())`).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinSet.html>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinSet.html#method.join_next>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinSet.html#method.shutdown>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinHandle.html> (dropping one detaches)

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::sleep;

/// Runs every job in its own task and returns all their outputs, in the order they finished.
pub async fn as_completed<T, F>(jobs: Vec<F>) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let set: JoinSet<T> = jobs.into_iter().collect();
    // Completion order; a panicking job panics here too.
    set.join_all().await
}

/// Runs every job in its own task. Returns all outputs in completion order if every job
/// succeeds; otherwise returns the first error as soon as it happens, with every other job
/// stopped.
pub async fn until_first_failure<T, E, F>(jobs: Vec<F>) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let mut set: JoinSet<Result<T, E>> = jobs.into_iter().collect();
    let mut outputs = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(output)) => outputs.push(output),
            Ok(Err(err)) => {
                // Abort the others and wait until they are really gone.
                set.shutdown().await;
                return Err(err);
            }
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        }
    }
    Ok(outputs)
}

async fn download(file: &'static str, ms: u64) -> Result<&'static str, String> {
    sleep(Duration::from_millis(ms)).await;
    if file.ends_with(".missing") {
        Err(format!("{file}: not found"))
    } else {
        println!("  downloaded {file}");
        Ok(file)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let files = [("big.iso", 300), ("small.txt", 10), ("medium.png", 100)];
    let jobs = files.map(|(file, ms)| download(file, ms)).into();
    println!("as completed: {:?}", as_completed(jobs).await);

    let files = [("a.txt", 10), ("b.missing", 50), ("c.iso", 300)];
    let jobs = files.map(|(file, ms)| download(file, ms)).into();
    println!(
        "until the first failure: {:?}",
        until_first_failure(jobs).await
    );
    // c.iso would print "downloaded" here if it had not been aborted.
    sleep(Duration::from_millis(400)).await;
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - a Vec of JoinHandles awaited in spawn order (or join_all): outputs come in spawn
    //   order, and a failure is seen only when the jobs spawned before it are done;
    // - returning the first error but leaving the other tasks running (a Vec<JoinHandle>
    //   dropped, `detach_all`): the other jobs finish later and bump the counter;
    // - waiting for every job before returning the error: it returns late;
    // - `until_first_failure` that ignores errors or returns the last one: the error and
    //   its time are checked;
    // - a job's panic skipped or re-wrapped, in either function: a job panics.
    // More in corpus/01_basics/joinset_completion.toml.
    // Returning with `?` and letting the JoinSet drop passes: dropping a JoinSet aborts.
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use timeline::Timeline;
    use tokio::time::Instant;

    /// Counts jobs that ran to their end, and job futures that were dropped (finished or not).
    #[derive(Clone, Default)]
    struct Tally {
        finished: Arc<AtomicUsize>,
        dropped: Arc<AtomicUsize>,
        timeline: Timeline,
    }

    struct DropCount(Arc<AtomicUsize>);

    impl Drop for DropCount {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Tally {
        fn finished(&self) -> usize {
            self.finished.load(Ordering::SeqCst)
        }
        fn dropped(&self) -> usize {
            self.dropped.load(Ordering::SeqCst)
        }

        /// A job that takes `ms`, then returns `Ok(ms)`, or `Err(ms)` if `fails`.
        fn job(
            &self,
            ms: u64,
            fails: bool,
        ) -> impl Future<Output = Result<u64, u64>> + Send + 'static {
            let finished = Arc::clone(&self.finished);
            let guard = DropCount(Arc::clone(&self.dropped));
            let timeline = self.timeline.clone();
            async move {
                let _guard = guard;
                let _span = timeline.span(format!("job {ms} ms"));
                sleep(Duration::from_millis(ms)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                if fails { Err(ms) } else { Ok(ms) }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn as_completed_gives_outputs_in_completion_order() {
        let tally = Tally::default();
        let jobs: Vec<_> = [300, 100, 200, 50].map(|ms| tally.job(ms, false)).into();
        let start = Instant::now();
        let outputs = as_completed(jobs).await;
        assert_eq!(
            outputs,
            [Ok(50), Ok(100), Ok(200), Ok(300)],
            "outputs must come in the order the jobs finished, not the order they were spawned"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "the jobs run at once: 300 ms\n{}",
            tally.timeline.picture("all four start at 0 ms: 300 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn as_completed_waits_for_every_job_even_failed_ones() {
        let tally = Tally::default();
        let jobs = vec![
            tally.job(30, true),
            tally.job(10, false),
            tally.job(20, true),
        ];
        let outputs = as_completed(jobs).await;
        assert_eq!(outputs, [Ok(10), Err(20), Err(30)]);
        assert_eq!(tally.finished(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn until_first_failure_returns_the_error_at_once_and_stops_the_rest() {
        const EXPECTED: &str =
            "all five start at 0 ms; at 200 ms one fails and the rest are stopped";
        let tally = Tally::default();
        let jobs = vec![
            tally.job(500, false),
            tally.job(300, false),
            tally.job(200, true),
            tally.job(100, false),
            tally.job(400, true),
        ];
        let start = Instant::now();
        let result = until_first_failure(jobs).await;
        assert_eq!(
            result,
            Err(200),
            "the first error to happen (at 200 ms) must be returned"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(200),
            "return as soon as the first error happens, at 200 ms, not after the other jobs\n{}",
            tally.timeline.picture(EXPECTED)
        );
        assert_eq!(
            tally.finished(),
            2,
            "only the 100 ms and 200 ms jobs had finished"
        );
        sleep(Duration::from_secs(10)).await;
        assert_eq!(
            tally.finished(),
            2,
            "jobs kept running after the failure and finished later: abort them (a dropped \
             JoinHandle does not stop its task; a JoinSet's abort_all or shutdown does)\n{}",
            tally.timeline.picture(EXPECTED)
        );
        assert_eq!(
            tally.dropped(),
            5,
            "every job's future should be dropped by now"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn until_first_failure_gives_every_output_when_all_succeed() {
        let tally = Tally::default();
        let jobs = vec![
            tally.job(300, false),
            tally.job(100, false),
            tally.job(200, false),
        ];
        let start = Instant::now();
        let result = until_first_failure(jobs).await;
        assert_eq!(
            result,
            Ok(vec![100, 200, 300]),
            "with no failure, every output, in completion order"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn no_jobs_no_wait() {
        let start = Instant::now();
        let none: Vec<std::future::Ready<u8>> = Vec::new();
        assert!(as_completed(none).await.is_empty());
        let none: Vec<std::future::Ready<Result<u8, u8>>> = Vec::new();
        assert_eq!(until_first_failure(none).await, Ok(vec![]));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    /// The payload of the panic that ended `run`, which must panic.
    async fn panic_of<T: Send + 'static>(run: impl Future<Output = T> + Send + 'static) -> String {
        match tokio::spawn(run).await {
            Ok(_) => {
                panic!("a job panicked, yet the call returned normally: let the panic propagate")
            }
            Err(err) => {
                let payload = err.into_panic();
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            }
        }
    }

    async fn panicking_job<T>(ms: u64) -> T {
        sleep(Duration::from_millis(ms)).await;
        panic!("job exploded")
    }

    /// Jobs of different kinds in one list.
    type BoxedJob<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

    #[tokio::test(start_paused = true)]
    async fn as_completed_lets_a_jobs_panic_propagate_unchanged() {
        let jobs: Vec<BoxedJob<u64>> = vec![
            Box::pin(async { 1 }),
            Box::pin(panicking_job(10)),
            Box::pin(async { 3 }),
        ];
        assert_eq!(
            panic_of(as_completed(jobs)).await,
            "job exploded",
            "a job's panic must come out of as_completed with its own message \
             (std::panic::resume_unwind(err.into_panic())), not be skipped or re-wrapped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn until_first_failure_lets_a_jobs_panic_propagate_unchanged() {
        let tally = Tally::default();
        let jobs: Vec<BoxedJob<Result<u64, u64>>> = vec![
            Box::pin(tally.job(50, false)),
            Box::pin(panicking_job(10)),
            Box::pin(tally.job(30, false)),
        ];
        assert_eq!(
            panic_of(until_first_failure(jobs)).await,
            "job exploded",
            "a job's panic must come out of until_first_failure with its own message \
             (std::panic::resume_unwind(err.into_panic())), not be skipped or re-wrapped"
        );
    }

    /// Distinct latencies (ties would finish in either order), in a random order.
    fn latencies() -> impl Strategy<Value = Vec<u64>> {
        prop::collection::btree_set(1u64..5_000, 0..12)
            .prop_map(|set| set.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any jobs: the first failure in time is returned at its time and nothing else
        /// finishes afterwards; with no failure, every output sorted by completion time.
        #[test]
        fn until_first_failure_matches_a_model(
            (latencies, fails) in latencies().prop_flat_map(|l| {
                let n = l.len();
                (Just(l), prop::collection::vec(prop::bool::weighted(0.2), n))
            })
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let tally = Tally::default();
            let jobs: Vec<_> = latencies.iter().zip(&fails).map(|(&ms, &f)| tally.job(ms, f)).collect();
            let (result, elapsed, finished_then) = runtime.block_on(async {
                let start = Instant::now();
                let result = until_first_failure(jobs).await;
                (result, start.elapsed(), tally.finished())
            });
            runtime.block_on(async { sleep(Duration::from_secs(10)).await });
            let first_failure = latencies.iter().zip(&fails).filter(|(_, f)| **f).map(|(&ms, _)| ms).min();
            let mut sorted = latencies.clone();
            sorted.sort_unstable();
            match first_failure {
                Some(at) => {
                    prop_assert_eq!(result, Err(at));
                    prop_assert_eq!(elapsed, Duration::from_millis(at));
                    let done = latencies.iter().filter(|&&ms| ms <= at).count();
                    prop_assert_eq!(finished_then, done);
                    prop_assert_eq!(tally.finished(), done, "aborted jobs must never finish");
                }
                None => {
                    prop_assert_eq!(result, Ok(sorted.clone()));
                    prop_assert_eq!(elapsed, Duration::from_millis(sorted.last().copied().unwrap_or(0)));
                }
            }
            prop_assert_eq!(tally.dropped(), latencies.len());
        }
    }
}
