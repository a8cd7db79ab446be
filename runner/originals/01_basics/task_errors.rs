//! # Errors in tasks: a panic becomes a `JoinError`
//!
//! A spawned task that panics does not take the process down: tokio catches the panic,
//! ends that task, and hands the panic to whoever awaits its `JoinHandle`, as
//! `Err(JoinError)`. The other tasks, and the task that awaits the handle, keep running.
//! `JoinError::is_panic()` tells a panic from a cancellation (an aborted task), and
//! `JoinError::into_panic()` gives back the panic's payload, a `Box<dyn Any + Send>`: the
//! message is in there as a `&'static str` (`panic!("literal")`) or a `String`
//! (`panic!("formatted {x}")`).
//!
//! A batch job that runs many jobs side by side usually wants every outcome, not the first
//! failure: which jobs succeeded, which returned an error, which crashed and why. Calling
//! `unwrap()` on a `JoinHandle`'s result raises a *new* panic in the caller (about the
//! `JoinError`; `std::panic::resume_unwind(e.into_panic())` would re-raise the original) and
//! throws away the other results; `?` on the first error gives up on them more politely.
//! (Python: `await asyncio.gather(*tasks, return_exceptions=True)`.)
//!
//! ## Your job
//! Implement `run_all`: run each job in its own task, all at once, and return one entry per
//! job, in the jobs' order: `Ok(value)`, `Err(TaskFailure::Failed(message))` for a job that
//! returned an error, `Err(TaskFailure::Panicked(message))` for a job that panicked (its
//! panic message, or `UNKNOWN_PANIC` when the payload is not a string), and
//! `Err(TaskFailure::Cancelled)` for a task cancelled before it finished (its runtime shut
//! down). `panic_message` is there to help.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinError.html>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinHandle.html>
//! - <https://doc.rust-lang.org/std/any/trait.Any.html#method.downcast_ref-1>
//! - <https://doc.rust-lang.org/std/macro.panic.html> (what a panic's payload is)

use std::any::Any;
use std::time::Duration;

use tokio::time::sleep;

/// The message recorded for a panic whose payload is neither a `&str` nor a `String`.
pub const UNKNOWN_PANIC: &str = "panic with a non-string payload";

/// Why a job has no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskFailure {
    /// The job ran to its end and returned `Err(message)`.
    Failed(String),
    /// The job panicked with this message.
    Panicked(String),
    /// The task was cancelled before it finished: aborted, or its runtime shut down. A
    /// `JoinError` is either a panic or a cancellation.
    Cancelled,
}

/// The message inside a panic's payload, or `UNKNOWN_PANIC`.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    // TODO: try `downcast_ref::<&'static str>()`, then `String`.
    todo!()
}

/// Runs every job in its own task, all at once, and returns every outcome in the jobs' order.
pub async fn run_all<T, F>(jobs: Vec<F>) -> Vec<Result<T, TaskFailure>>
where
    F: Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    // TODO: spawn every job, then turn each `JoinHandle`'s result into an entry.
    todo!()
}

/// A pretend job: sleeps `ms`, then succeeds, fails or panics.
async fn job(name: &'static str, ms: u64) -> Result<String, String> {
    sleep(Duration::from_millis(ms)).await;
    match name {
        "resize" => Ok("resized 12 images".to_string()),
        "upload" => Err("bucket is full".to_string()),
        other => panic!("{other}: index out of bounds"),
    }
}

#[tokio::main]
async fn main() {
    let jobs = vec![job("resize", 30), job("upload", 10), job("thumbnail", 20)];
    // The panic is printed by the panic hook, but the program carries on.
    for outcome in run_all(jobs).await {
        println!("{outcome:?}");
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - `handle.await.unwrap()`: the job's panic is re-raised in the caller, the test
    //   panics and every other result is lost;
    // - stopping at the first failure (`?`, `break`, `return`): results are missing;
    // - results in completion order (JoinSet::join_next, FuturesUnordered): a fast failure
    //   ends up before the slow success that came first;
    // - losing the panic message: `err.to_string()` (that is "task 3 panicked with
    //   message ..."), or downcasting only to `&str` (a formatted `panic!` carries a String);
    // - no task per job (catch_unwind in the caller's task): no job task is alive meanwhile;
    // - spawning and awaiting one job at a time: virtual time is the sum, not the longest;
    // - `into_panic()` on every `JoinError`: a cancelled job makes the caller panic.
    use super::*;
    use proptest::prelude::*;
    use tokio::time::Instant;

    #[derive(Clone, Copy, Debug)]
    enum Outcome {
        Value(u32),
        Error(&'static str),
        PanicLiteral,
        PanicFormatted(u32),
        PanicOther,
    }

    async fn run(ms: u64, outcome: Outcome) -> Result<u32, String> {
        sleep(Duration::from_millis(ms)).await;
        match outcome {
            Outcome::Value(v) => Ok(v),
            Outcome::Error(e) => Err(e.to_string()),
            Outcome::PanicLiteral => panic!("disk on fire"),
            Outcome::PanicFormatted(n) => panic!("job {n} divided by zero"),
            Outcome::PanicOther => std::panic::panic_any(42_u8),
        }
    }

    fn expected(outcome: Outcome) -> Result<u32, TaskFailure> {
        match outcome {
            Outcome::Value(v) => Ok(v),
            Outcome::Error(e) => Err(TaskFailure::Failed(e.to_string())),
            Outcome::PanicLiteral => Err(TaskFailure::Panicked("disk on fire".to_string())),
            Outcome::PanicFormatted(n) => {
                Err(TaskFailure::Panicked(format!("job {n} divided by zero")))
            }
            Outcome::PanicOther => Err(TaskFailure::Panicked(UNKNOWN_PANIC.to_string())),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_outcome_is_kept_in_the_jobs_order() {
        let plan = [
            (300, Outcome::Value(1)),
            (100, Outcome::Error("out of stock")),
            (200, Outcome::PanicLiteral),
            (50, Outcome::Value(2)),
        ];
        let start = Instant::now();
        let results = run_all(plan.iter().map(|&(ms, o)| run(ms, o)).collect()).await;
        assert_eq!(
            results,
            [
                Ok(1),
                Err(TaskFailure::Failed("out of stock".to_string())),
                Err(TaskFailure::Panicked("disk on fire".to_string())),
                Ok(2),
            ],
            "one entry per job, in the jobs' order, whatever order they finished in"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "a failure must not stop the wait for the others, and the jobs run at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_keeps_its_message_whatever_its_payload() {
        let results = run_all(vec![
            run(10, Outcome::PanicLiteral),
            run(10, Outcome::PanicFormatted(7)),
            run(10, Outcome::PanicOther),
        ])
        .await;
        assert_eq!(
            results[0],
            Err(TaskFailure::Panicked("disk on fire".to_string())),
            "panic!(\"literal\") carries a &'static str: downcast the payload to &str"
        );
        assert_eq!(
            results[1],
            Err(TaskFailure::Panicked("job 7 divided by zero".to_string())),
            "panic!(\"{{n}}\") carries a String: downcast the payload to String too"
        );
        assert_eq!(
            results[2],
            Err(TaskFailure::Panicked(UNKNOWN_PANIC.to_string())),
            "a payload that is not a string is recorded as UNKNOWN_PANIC"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn early_failures_do_not_stop_the_slow_jobs() {
        let start = Instant::now();
        let results = run_all(vec![
            run(10, Outcome::Error("bad input")),
            run(20, Outcome::PanicLiteral),
            run(500, Outcome::Value(3)),
            run(400, Outcome::Value(4)),
        ])
        .await;
        assert_eq!(
            results.len(),
            4,
            "every job needs an entry, even after a failure"
        );
        assert_eq!(
            results[2..],
            [Ok(3), Ok(4)],
            "the slow jobs must still finish after the early failures"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn each_job_runs_in_its_own_task_all_at_once() {
        let metrics = tokio::runtime::Handle::current().metrics();
        let jobs: Vec<_> = (0..10).map(|i| run(100, Outcome::Value(i))).collect();
        let start = Instant::now();
        let (results, alive) = tokio::join!(run_all(jobs), async {
            sleep(Duration::from_millis(50)).await;
            metrics.num_alive_tasks()
        });
        assert_eq!(
            alive, 10,
            "ten jobs should be ten tasks alive at once: tokio::spawn each job"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "ten jobs of 100 ms at once take 100 ms"
        );
        assert_eq!(results, (0..10).map(Ok).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn no_jobs_no_wait() {
        let start = Instant::now();
        let none: Vec<std::future::Ready<Result<u32, String>>> = Vec::new();
        assert!(run_all(none).await.is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    /// A runtime that shuts down cancels the tasks still running: that `JoinError` is a
    /// cancellation, not a panic (`into_panic` on it would panic in the caller).
    #[test]
    fn a_job_cancelled_by_a_shutdown_is_reported_as_cancelled() {
        use futures::future::{BoxFuture, FutureExt};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("a runtime");
        let (running, job_ran) = std::sync::mpsc::channel();
        let finished = running.clone();
        let jobs: Vec<BoxFuture<'static, Result<u32, String>>> = vec![
            async move {
                finished.send(()).expect("the test is waiting");
                Ok(1)
            }
            .boxed(),
            async move {
                running.send(()).expect("the test is waiting");
                std::future::pending().await
            }
            .boxed(),
        ];
        let handle = runtime.handle().clone();
        let caller = std::thread::spawn(move || handle.block_on(run_all(jobs)));
        for _ in 0..2 {
            job_ran.recv().expect("both jobs should start");
        }
        runtime.shutdown_background();
        let outcomes = caller
            .join()
            .expect("run_all panicked on a cancelled job: check `is_panic()` first");
        assert_eq!(outcomes, [Ok(1), Err(TaskFailure::Cancelled)]);
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            any::<u32>().prop_map(Outcome::Value),
            Just(Outcome::Error("nope")),
            Just(Outcome::PanicLiteral),
            any::<u32>().prop_map(Outcome::PanicFormatted),
            Just(Outcome::PanicOther),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any mix of successes, errors and panics: every outcome, in the jobs' order,
        /// in the longest job's time.
        #[test]
        fn outcomes_match_the_plan(plan in prop::collection::vec((0u64..5_000, outcome()), 0..12)) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let (elapsed, results) = runtime.block_on(async {
                let start = Instant::now();
                let results = run_all(plan.iter().map(|&(ms, o)| run(ms, o)).collect()).await;
                (start.elapsed(), results)
            });
            let want: Vec<_> = plan.iter().map(|&(_, o)| expected(o)).collect();
            prop_assert_eq!(results, want);
            let longest = plan.iter().map(|&(ms, _)| ms).max().unwrap_or(0);
            prop_assert_eq!(elapsed, Duration::from_millis(longest));
        }
    }
}
