//! # A timeout does not stop a thread: ask the job to stop
//!
//! `tokio::time::timeout(limit, spawn_blocking(job))` gives up *waiting* after `limit`, but
//! the job goes on: a thread cannot be cancelled or killed from outside, and
//! `JoinHandle::abort` does nothing to a blocking task that has started. Give up like that
//! on every slow request and the pool fills with abandoned jobs still holding connections,
//! locks and CPU. The job has to stop itself: it checks a stop flag between its steps, and
//! the caller raises the flag when the deadline passes, then waits for the job to notice and
//! return. The wait is short (one step), and afterwards nothing is left running: what the job
//! did so far comes back with the error.
//! Why in real services: a report that must answer within 2 s or be dropped, an import that
//! a user cancels, a search over a large index with a time budget.
//! (Python: `asyncio.wait_for(loop.run_in_executor(None, job), 2)` raises `TimeoutError` but
//! the thread runs on, exactly the same trap, and `future.cancel()` cannot stop it either;
//! the fix is the same too: a `threading.Event` the job checks. In Rust the flag can be an
//! `AtomicBool` or, as here, a flag the job can also wait on, like `Event.wait(timeout)`.)
//!
//! ## Your job
//! `run_with_timeout` puts a timeout around the job, and when it fires it does not know what
//! to do. Finish it: when the job has not finished within `limit`, raise its stop flag, wait
//! for the job to return, and give back `Err(TimedOut { partial })` with what it returned.
//! A job that finishes in time gives `Ok(value)`; a job that panics panics the caller too.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout.html> (a `&mut JoinHandle` is a future too)
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html> ("cannot be aborted")
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinError.html#method.into_panic>
//! - CHEATSHEET.md, "6. \"Cancelling\" a blocking task"

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Raised by the caller, checked (or waited on) by the job between its steps.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<(Mutex<bool>, Condvar)>);

impl StopFlag {
    /// Asks the job to stop; it does so the next time it checks.
    pub fn stop(&self) {
        let (stopped, changed) = &*self.0;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        changed.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits up to `pause` (a job that sleeps between polls); true if asked to stop.
    pub fn wait(&self, pause: Duration) -> bool {
        let (stopped, changed) = &*self.0;
        let stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = changed
            .wait_timeout_while(stopped, pause, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }
}

/// The job did not finish in time; `partial` is what it returned when told to stop.
#[derive(Debug, PartialEq, Eq)]
pub struct TimedOut<T> {
    pub partial: T,
}

/// Runs `job` on the blocking pool for at most `limit`; past it, stops the job and waits
/// for it, so nothing is left running.
pub async fn run_with_timeout<T, F>(limit: Duration, job: F) -> Result<T, TimedOut<T>>
where
    F: FnOnce(StopFlag) -> T + Send + 'static,
    T: Send + 'static,
{
    let stop = StopFlag::default();
    let flag = stop.clone();
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(move || job(flag))).await {
        Ok(finished) => Ok(finished.expect("the job panicked")),
        // TODO: the caller stops waiting here, but the job goes on running on its thread.
        Err(_elapsed) => todo!("stop the job, wait for it, and return what it did"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Sums 1..=1000, one number per millisecond: about a second of blocking work.
    let slow_sum = |stop: StopFlag| {
        let mut sum = 0u64;
        for n in 1..=1_000 {
            if stop.wait(Duration::from_millis(1)) {
                break;
            }
            sum += n;
        }
        sum
    };
    match run_with_timeout(Duration::from_millis(50), slow_sum).await {
        Ok(sum) => println!("finished in time: {sum}"),
        Err(TimedOut { partial }) => println!("stopped at the deadline, partial sum {partial}"),
    }
    let quick = run_with_timeout(Duration::from_millis(50), |_| 7 * 6).await;
    println!("a quick job: {quick:?}");
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - a timeout that only stops waiting (as shipped, or returning at once without raising
    //   the flag): the job is never told to stop and runs on;
    // - `JoinHandle::abort()` instead of the flag: a started blocking task is not stopped;
    // - raising the flag but not waiting for the job: its partial result cannot come back
    //   (and it may still be running when the caller moves on);
    // - a deadline shorter than `limit`;
    // - the job run on the runtime's thread: the timer cannot even fire;
    // - a panic in the job turned into a value or a `TimedOut`.
    //
    // How: on tokio's paused clock. The clock does not move by itself while a blocking task
    // runs, so the check moves it (`advance`) once the job has started. The test jobs do a
    // few quick steps, then wait for their stop flag; a bound of 500 ms real time turns
    // "never told to stop" into a failure instead of a hang.
    use super::*;
    use std::cell::Cell;
    use std::panic;
    use std::sync::Once;
    use std::thread;
    use tokio::sync::mpsc;
    use tokio::time::advance;

    const STUCK: Duration = Duration::from_millis(500);
    const LIMIT: Duration = Duration::from_millis(100);

    thread_local! {
        static ON_PURPOSE: Cell<bool> = const { Cell::new(false) };
    }

    /// Panics with `message`, reported in one line without a backtrace: on purpose.
    fn panic_on_purpose(message: &'static str) -> ! {
        static QUIET: Once = Once::new();
        QUIET.call_once(|| {
            let report = panic::take_hook();
            panic::set_hook(Box::new(move |info| match ON_PURPOSE.replace(false) {
                true => eprintln!("a job panicked on purpose: {info}"),
                false => report(info),
            }));
        });
        ON_PURPOSE.set(true);
        panic::panic_any(message)
    }

    /// A job that handles items 0, 1 and 2, then is slow on item 3 until told to stop.
    /// It sends its flag to the check once it is stuck.
    fn stuck_on_item_3(
        stuck: mpsc::UnboundedSender<StopFlag>,
    ) -> impl FnOnce(StopFlag) -> Vec<u32> {
        let runtime_thread = thread::current().id();
        move |stop| {
            assert_ne!(
                thread::current().id(),
                runtime_thread,
                "the job ran on the runtime's own thread: run it on the blocking pool"
            );
            let done = vec![0, 1, 2];
            let _ = stuck.send(stop.clone());
            if !stop.wait(STUCK) {
                panic!(
                    "the job was still running 500 ms after its deadline: nobody told it to \
                     stop (a timeout only stops the waiting, and abort() cannot stop a thread)"
                );
            }
            done
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_finishes_in_time_gives_its_value() {
        let result = run_with_timeout(LIMIT, |_stop| 42).await;
        assert_eq!(result, Ok(42));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_deadline_the_job_is_stopped_and_its_partial_work_comes_back() {
        let (stuck, mut stucks) = mpsc::unbounded_channel::<StopFlag>();
        let check = async {
            let flag = stucks.recv().await.expect("the job started");
            advance(LIMIT).await;
            flag
        };
        let (result, flag) = tokio::join!(run_with_timeout(LIMIT, stuck_on_item_3(stuck)), check);
        assert!(
            flag.is_stopped(),
            "the job's stop flag should be raised at the deadline"
        );
        assert_eq!(
            result,
            Err(TimedOut {
                partial: vec![0, 1, 2]
            }),
            "a job stopped at the deadline gives back what it did, items 0 to 2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_job_is_not_stopped_before_its_deadline() {
        let (stuck, mut stucks) = mpsc::unbounded_channel::<StopFlag>();
        let check = async {
            let flag = stucks.recv().await.expect("the job started");
            advance(LIMIT - Duration::from_millis(1)).await;
            tokio::task::yield_now().await;
            assert!(
                !flag.is_stopped(),
                "the job was told to stop before its 100 ms were up"
            );
            advance(Duration::from_millis(1)).await;
        };
        let (result, ()) = tokio::join!(run_with_timeout(LIMIT, stuck_on_item_3(stuck)), check);
        assert!(result.is_err(), "the job ran past its 100 ms");
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "bad row")]
    async fn a_panic_in_the_job_panics_the_caller() {
        let _ = run_with_timeout(LIMIT, |_stop| -> u32 { panic_on_purpose("bad row") }).await;
    }
}
