//! # Running async code from sync code: a runtime and `block_on`
//!
//! A future does nothing until something polls it, and that something is a runtime.
//! `#[tokio::main]` is shorthand: it builds a tokio runtime and calls `block_on` on your
//! async `main`. Where there is no async `main` — a sync library API, a CLI command, a plain
//! `#[test]`, a callback from C — you build the runtime yourself with
//! `tokio::runtime::Builder` and call `Runtime::block_on`, which runs one future to
//! completion on the calling thread and hands back its output.
//!
//! Pick the flavour. `Builder::new_current_thread()` runs everything — the future and every
//! task it spawns — on the thread that calls `block_on`: no extra threads, cheap to build,
//! the right tool to wrap a call. `Builder::new_multi_thread()` starts a pool of worker
//! threads (`worker_threads(n)`; one per core if you do not say) that run spawned tasks in
//! parallel; `thread_name` names them, which is what you see in a debugger or `top -H`.
//! The drivers are opt-in: without `enable_time()` (or `enable_all()`) the first
//! `tokio::time::sleep` panics. And `block_on` must never be called from inside a runtime:
//! it panics with "Cannot start a runtime from within a runtime".
//! (Python: `asyncio.run(main())`, or `loop.run_until_complete(...)` on a loop you made.)
//!
//! ## Your job
//! Implement `run_here` (a current-thread runtime) and `run_on_workers` (a multi-thread
//! runtime with the workers and the thread name asked for).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/runtime/struct.Builder.html>
//! - <https://docs.rs/tokio/latest/tokio/runtime/struct.Runtime.html#method.block_on>
//! - <https://docs.rs/tokio/latest/tokio/attr.main.html>
//! - <https://docs.rs/tokio/latest/tokio/runtime/index.html#runtime-configurations>

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Builder;
use tokio::time::sleep;

#[derive(Debug, PartialEq, Eq)]
pub struct Quote {
    pub symbol: String,
    pub cents: u64,
}

/// The async client call that the blocking API wraps. Answers after 2 ms.
async fn fetch_quote(symbol: &str) -> Quote {
    sleep(Duration::from_millis(2)).await;
    QUOTES_SERVED.set(QUOTES_SERVED.get() + 1);
    Quote {
        symbol: symbol.to_owned(),
        cents: 100 * symbol.len() as u64,
    }
}

thread_local! {
    /// How many quotes the client answered on this thread, for the checks.
    static QUOTES_SERVED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `future` to completion on the calling thread and returns its output, on a fresh
/// current-thread runtime with the time driver enabled. Call it from sync code only.
pub fn run_here<F: Future>(future: F) -> F::Output {
    Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}

/// The blocking API, for callers that have no runtime.
pub fn fetch_quote_blocking(symbol: &str) -> Quote {
    run_here(fetch_quote(symbol))
}

/// Runs every job as its own task on a fresh multi-thread runtime with exactly `workers`
/// worker threads, all named `thread_name`, with the time driver enabled, and returns the
/// jobs' outputs in the order of `jobs`. Call it from sync code only.
pub fn run_on_workers<F>(workers: usize, thread_name: &str, jobs: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(thread_name)
        .enable_time()
        .build()
        .expect("a multi-thread runtime")
        .block_on(spawn_all(jobs))
}

/// The async half of `run_on_workers`: one task per job, outputs in input order.
/// `tokio::spawn` gets its own exercise soon; here it hands each job to the workers.
async fn spawn_all<F>(jobs: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = jobs.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("a job panicked"));
    }
    outputs
}

/// The name of the thread running the caller, for `main` to print.
fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

fn main() {
    println!("main runs on {:?}", thread_name());
    println!("{:?}", fetch_quote_blocking("RUST"));
    let here = run_here(async { thread_name() });
    println!("run_here ran its future on {here:?}");

    let jobs: Vec<_> = (0..6)
        .map(|job| async move {
            sleep(Duration::from_millis(5)).await;
            format!(
                "job {job} on {} ({:?})",
                thread_name(),
                std::thread::current().id()
            )
        })
        .collect();
    for line in run_on_workers(2, "quote-worker", jobs) {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - a runtime without the time driver (no `enable_time`/`enable_all`): the first
    //   `sleep` panics "timers are disabled";
    // - `run_here` on a multi-thread runtime (`Runtime::new()`, `#[tokio::main]` without
    //   `flavor = "current_thread"`): the flavour is checked, and its spawned tasks leave the
    //   calling thread;
    // - `Handle::current().block_on(..)` or any use of an ambient runtime: these checks are
    //   plain `#[test]`s, there is none, and it panics;
    // - `run_on_workers` with the default worker count: 1 and 3 workers are asked for, on a
    //   machine whose core count is neither;
    // - forgetting `thread_name`: the workers keep tokio's default name;
    // - blocking on the jobs without spawning them (`join_all`, awaiting each in turn) or on a
    //   current-thread runtime: they run on the calling thread, not on the workers;
    // - building the runtime but not blocking on the work (returning early, or spawning and
    //   dropping the runtime): outputs are missing;
    // - a runtime inside a runtime (`block_on` within `block_on`): it panics "Cannot start a
    //   runtime from within a runtime";
    // - a quote written by hand without running the client: the client counts its answers.
    // More in corpus/01_basics/block_on_runtime.toml.
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::thread::{self, ThreadId};
    use tokio::runtime::{Handle, RuntimeFlavor};
    use tokio::time::Instant;

    /// Where a job ran, as seen from inside it.
    #[derive(Debug)]
    struct RanOn {
        job: usize,
        thread_name: Option<String>,
        thread_id: ThreadId,
        workers: usize,
    }

    fn where_am_i(job: usize) -> RanOn {
        RanOn {
            job,
            thread_name: thread::current().name().map(str::to_owned),
            thread_id: thread::current().id(),
            workers: Handle::current().metrics().num_workers(),
        }
    }

    fn jobs(count: usize) -> Vec<impl Future<Output = RanOn> + Send + 'static> {
        (0..count)
            .map(|job| async move {
                // Needs the time driver; the task may wake up on another worker.
                sleep(Duration::from_millis(1)).await;
                where_am_i(job)
            })
            .collect()
    }

    fn check_workers(workers: usize, count: usize) {
        let caller = thread::current().id();
        let ran = run_on_workers(workers, "check-worker", jobs(count));
        let order: Vec<usize> = ran.iter().map(|r| r.job).collect();
        assert_eq!(
            order,
            (0..count).collect::<Vec<_>>(),
            "run_on_workers must return one output per job, in the order of the jobs"
        );
        for r in &ran {
            assert_eq!(
                r.workers, workers,
                "the runtime has {} worker threads, but {workers} were asked for \
                 (Builder::worker_threads)",
                r.workers
            );
            assert_ne!(
                r.thread_id, caller,
                "job {} ran on the calling thread; the jobs must be spawned onto the \
                 workers of a multi-thread runtime",
                r.job
            );
            assert_eq!(
                r.thread_name.as_deref(),
                Some("check-worker"),
                "job {} ran on a thread that is not named as asked (Builder::thread_name)",
                r.job
            );
        }
        let distinct: HashSet<ThreadId> = ran.iter().map(|r| r.thread_id).collect();
        assert!(
            distinct.len() <= workers,
            "the jobs ran on {} different threads, but only {workers} workers were asked for",
            distinct.len()
        );
    }

    #[test]
    fn run_here_runs_everything_on_the_calling_thread() {
        let caller = thread::current().id();
        let (flavor, ran_on, spawned_ran_on) = run_here(async {
            let spawned = tokio::spawn(async { thread::current().id() });
            let spawned_ran_on = spawned.await.expect("the spawned task finished");
            (
                Handle::current().runtime_flavor(),
                thread::current().id(),
                spawned_ran_on,
            )
        });
        assert_eq!(
            flavor,
            RuntimeFlavor::CurrentThread,
            "run_here should build a current-thread runtime (Builder::new_current_thread)"
        );
        assert_eq!(
            ran_on, caller,
            "block_on runs the future on the calling thread"
        );
        assert_eq!(
            spawned_ran_on, caller,
            "on a current-thread runtime even spawned tasks run on the calling thread"
        );
    }

    #[test]
    fn run_here_drives_timers_to_completion() {
        let (elapsed, answer) = run_here(async {
            // Paused time (a current-thread runtime only) makes this 10 s take no real time.
            tokio::time::pause();
            let start = Instant::now();
            sleep(Duration::from_secs(10)).await;
            (start.elapsed(), 42)
        });
        assert_eq!(
            answer, 42,
            "run_here must return the output of the future it ran"
        );
        // Timers tick in whole milliseconds, and the clock was paused between two ticks.
        assert!(
            (Duration::from_secs(10)..=Duration::from_millis(10_001)).contains(&elapsed),
            "the future's 10 s sleep must have run to its end (enable_time, then block_on), \
             but {elapsed:?} passed"
        );
    }

    #[test]
    fn fetch_quote_blocking_works_from_plain_sync_code() {
        let served = QUOTES_SERVED.get();
        assert_eq!(
            fetch_quote_blocking("RUST"),
            Quote {
                symbol: "RUST".into(),
                cents: 400
            }
        );
        assert_eq!(
            QUOTES_SERVED.get() - served,
            1,
            "the quote must come from the async client (`fetch_quote`), run once to completion"
        );
    }

    #[test]
    fn each_call_gets_its_own_runtime_from_any_thread() {
        // One after the other, then from several threads at once: no runtime is shared or
        // nested.
        assert_eq!(fetch_quote_blocking("A").cents, 100);
        assert_eq!(fetch_quote_blocking("AB").cents, 200);
        let threads: Vec<_> = (1..=4)
            .map(|len| thread::spawn(move || fetch_quote_blocking(&"X".repeat(len)).cents))
            .collect();
        let cents: Vec<u64> = threads
            .into_iter()
            .map(|t| {
                t.join()
                    .expect("fetch_quote_blocking panicked on another thread")
            })
            .collect();
        assert_eq!(cents, [100, 200, 300, 400]);
    }

    #[test]
    fn run_on_workers_uses_exactly_one_worker_when_asked_for_one() {
        check_workers(1, 8);
    }

    #[test]
    fn run_on_workers_uses_the_named_workers_asked_for() {
        check_workers(3, 12);
    }

    #[test]
    fn run_on_workers_with_no_jobs_returns_nothing() {
        assert!(run_on_workers(2, "idle-worker", jobs(0)).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any worker count and number of jobs: outputs in order, exactly that many
        /// named workers, never the calling thread.
        #[test]
        fn any_worker_count_is_respected(workers in 1usize..=4, count in 0usize..=12) {
            check_workers(workers, count);
        }
    }
}
