//! # Errors and panics in blocking work: two layers, each job on its own
//!
//! Work sent to `spawn_blocking` can go wrong in two ways, and the `JoinHandle` keeps them
//! apart. The closure's own error (`Err` of the `Result` it returns) is a value: it comes
//! back as `Ok(Err(e))`. A panic inside the closure does not take down the thread pool or
//! the caller: tokio catches it, and the handle gives `Err(JoinError)` with
//! `is_panic() == true`; `into_panic()` hands over the payload, which holds the message
//! (`&str` for `panic!("literal")`, `String` for a formatted one). `.expect()` on that
//! `JoinError` is the usual mistake: it turns one job's bug back into a panic of the
//! caller, and every other job's result is lost with it.
//! Why in real services: a batch of 500 blocking imports where row 312 hits a bug in a
//! parser; the batch report should say "312 panicked: index out of bounds" next to 499
//! results, not crash the worker.
//! (Python: `await loop.run_in_executor(None, f)` re-raises the job's exception in the
//! caller, and `asyncio.gather(*jobs, return_exceptions=True)` keeps the others; Rust has
//! no exceptions: a returned error and a panic are different things, and `spawn_blocking`
//! reports each in its own layer.)
//!
//! ## Your job
//! `run_all` runs the jobs one after another on the runtime's thread, and the first panic
//! takes everything down. Run each job on the blocking pool, all at once, and report each
//! one's outcome in the order of the jobs: `Done` with its value, `Failed` with its error,
//! or `Panicked` with the panic's message.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinError.html>
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html>
//! - <https://doc.rust-lang.org/std/any/trait.Any.html#method.downcast_ref>
//! - CHEATSHEET.md, "Best practices" (both error layers)

/// A blocking job: its value, or its own error; it may also panic.
pub type Job = Box<dyn FnOnce() -> Result<u64, String> + Send>;

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(u64),
    Failed(String),
    Panicked(String),
}

/// Runs every job at once on the blocking pool; one outcome per job, in order.
pub async fn run_all(jobs: Vec<Job>) -> Vec<Outcome> {
    // TODO: each job holds the runtime's thread, and the first panic takes every outcome down.
    jobs.into_iter()
        .map(|job| match job() {
            Ok(value) => Outcome::Done(value),
            Err(error) => Outcome::Failed(error),
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rows = ["12", "x7", "30", ""];
    let jobs: Vec<Job> = rows
        .iter()
        .map(|row| -> Job {
            let row = row.to_string();
            Box::new(move || {
                let first = row.chars().next().expect("an empty row"); // a bug: it panics
                first
                    .to_digit(10)
                    .ok_or(format!("{row:?} is not a number"))?;
                row.parse::<u64>().map_err(|e| e.to_string())
            })
        })
        .collect();
    for (row, outcome) in rows.iter().zip(run_all(jobs).await) {
        println!("{row:?}: {outcome:?}");
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - running the jobs on the runtime's thread (as shipped), or inside `tokio::spawn`;
    // - `.expect()` / `?` on the `JoinError`: one job's panic panics the caller and the
    //   other outcomes are lost;
    // - a panic reported without its message, or with only `&str` messages kept (a
    //   formatted `panic!("row {n}")` carries a `String`);
    // - a job's own error reported as a panic, or the other way round;
    // - one job after another (one `spawn_blocking` around a loop): not at once;
    // - outcomes in the order the jobs finish rather than the order of the jobs.
    //
    // How: jobs that must run at once meet at a rendezvous (a condition variable) before
    // they return; a bound of 500 ms only turns a rendezvous that can never happen into a
    // failure instead of a hang. The jobs' panics are expected: each prints its message.
    use super::*;
    use std::any::Any;
    use std::cell::Cell;
    use std::panic;
    use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
    use std::thread;
    use std::time::Duration;

    const STUCK: Duration = Duration::from_millis(500);

    thread_local! {
        static ON_PURPOSE: Cell<bool> = const { Cell::new(false) };
    }

    /// Panics with `payload` (a `&str` or a `String`), reported in one line without a
    /// backtrace: the checks' jobs panic on purpose.
    fn panic_on_purpose(payload: impl Any + Send) -> ! {
        static QUIET: Once = Once::new();
        QUIET.call_once(|| {
            let report = panic::take_hook();
            panic::set_hook(Box::new(move |info| match ON_PURPOSE.replace(false) {
                true => eprintln!("a job panicked on purpose: {info}"),
                false => report(info),
            }));
        });
        ON_PURPOSE.set(true);
        panic::panic_any(payload)
    }

    fn job(run: impl FnOnce() -> Result<u64, String> + Send + 'static) -> Job {
        Box::new(run)
    }

    /// Waits until `expected` jobs have arrived; false if they never did.
    fn meet(arrived: &(Mutex<usize>, Condvar), expected: usize) -> bool {
        let (count, changed) = arrived;
        let mut count = count.lock().unwrap_or_else(PoisonError::into_inner);
        *count += 1;
        changed.notify_all();
        let (_count, waited) = changed
            .wait_timeout_while(count, STUCK, |count| *count < expected)
            .unwrap_or_else(PoisonError::into_inner);
        !waited.timed_out()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_job_gets_its_own_outcome_in_order() {
        let row = 3;
        let outcomes = run_all(vec![
            job(|| Ok(7)),
            job(|| Err("no such customer".to_string())),
            job(move || panic_on_purpose(format!("row {row} is malformed"))),
            job(|| panic_on_purpose("bad input")),
            job(|| Ok(8)),
        ])
        .await;
        assert_eq!(
            outcomes,
            vec![
                Outcome::Done(7),
                Outcome::Failed("no such customer".to_string()),
                Outcome::Panicked("row 3 is malformed".to_string()),
                Outcome::Panicked("bad input".to_string()),
                Outcome::Done(8),
            ],
            "a value is Done, a returned error is Failed, a panic is Panicked with its message \
             (formatted or not)"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_jobs_run_at_once_off_the_runtime_and_a_panic_stops_none_of_the_others() {
        let runtime_thread = thread::current().id();
        let arrived = Arc::new((Mutex::new(0), Condvar::new()));
        let jobs = (0..4u64)
            .map(|n| {
                let arrived = Arc::clone(&arrived);
                job(move || {
                    assert_ne!(
                        thread::current().id(),
                        runtime_thread,
                        "job {n} ran on the runtime's own thread: run it on the blocking pool"
                    );
                    if !meet(&arrived, 4) {
                        return Err(format!(
                            "job {n} never met the other 3: they ran one by one"
                        ));
                    }
                    if n == 1 {
                        panic_on_purpose("job 1 hit a bug");
                    }
                    Ok(n * 10)
                })
            })
            .collect();
        let outcomes = run_all(jobs).await;
        assert_eq!(
            outcomes,
            vec![
                Outcome::Done(0),
                Outcome::Panicked("job 1 hit a bug".to_string()),
                Outcome::Done(20),
                Outcome::Done(30),
            ]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn outcomes_follow_the_jobs_not_the_order_they_finish_in() {
        // Job 0 finishes last: it waits until job 1 has finished.
        let (finished, wait) = std::sync::mpsc::channel::<()>();
        let outcomes = run_all(vec![
            job(move || match wait.recv_timeout(STUCK) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    Err("job 1 never finished while job 0 waited".to_string())
                }
                _ => Ok(0),
            }),
            job(move || {
                drop(finished);
                Ok(1)
            }),
        ])
        .await;
        assert_eq!(outcomes, vec![Outcome::Done(0), Outcome::Done(1)]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_jobs_no_outcomes() {
        assert!(run_all(Vec::new()).await.is_empty());
    }
}
