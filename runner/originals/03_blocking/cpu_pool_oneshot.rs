//! # CPU work on a CPU pool, the answer back through a oneshot
//!
//! CPU-heavy work (parsing, hashing, compressing, resizing an image) does not wait: it
//! keeps a core busy. On a runtime worker it stalls every task queued there; on the
//! blocking pool it can start hundreds of threads fighting over a few cores. It belongs on
//! a pool with about one thread per core: rayon's. `rayon::spawn(closure)` runs the closure
//! there and returns nothing, so the answer comes back to async code through a
//! `tokio::sync::oneshot` channel: the closure sends, the task awaits the receiver and gives
//! its worker back meanwhile.
//! A panic is the other half: a closure given to `rayon::spawn` that panics **aborts the
//! whole process** (rayon's default panic handler), and if the sender were simply dropped
//! the caller would learn nothing about why. Catch the panic inside the job
//! (`std::panic::catch_unwind`) and send it back as an error, with its message.
//! Why in real services: a request that renders a PDF, verifies a password hash or parses
//! a large upload; one bad input must fail one request, not kill the server.
//! (Python: `await loop.run_in_executor(ProcessPoolExecutor(), f)` gets CPU work past the
//! GIL in other processes, and an exception comes back raised from the await. Rust has no
//! GIL: threads compute in parallel, so a thread pool sized to the cores does the job of
//! the process pool, without pickling.)
//!
//! ## Your job
//! `run_on_cpu_pool` runs the job right here, on the runtime's thread, and a panic in it
//! unwinds into the caller. Run the job on rayon's pool instead and await its answer: its
//! value as `Ok`, or `Err(JobPanicked)` carrying the panic's message if it panicked. The
//! pool's thread must survive the panic and the process must not abort.
//!
//! ## Read
//! - <https://docs.rs/rayon/latest/rayon/fn.spawn.html> (see "Panics")
//! - <https://docs.rs/tokio/latest/tokio/sync/oneshot/index.html>
//! - <https://doc.rust-lang.org/std/panic/fn.catch_unwind.html>
//! - <https://ryhl.io/blog/async-what-is-blocking/#the-rayon-crate>
//! - CHEATSHEET.md, "rayon (CPU pool) with a `oneshot` back to async code"

use std::fmt;

/// A job panicked; `message` is what it panicked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPanicked {
    pub message: String,
}

impl fmt::Display for JobPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the job panicked: {}", self.message)
    }
}

impl std::error::Error for JobPanicked {}

/// Runs `job` on rayon's pool; its value, or its panic as an error.
pub async fn run_on_cpu_pool<T, F>(job: F) -> Result<T, JobPanicked>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // TODO: this computes on the runtime's thread, and a panic here unwinds into the caller.
    Ok(job())
}

/// Counts the primes below `limit`, the slow way: real CPU work.
fn count_primes(limit: u64) -> usize {
    (2..limit)
        .filter(|n| (2..).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .count()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let heartbeat = tokio::spawn(async {
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(50));
        for beat in 0.. {
            interval.tick().await;
            println!("heartbeat {beat}");
        }
    });
    match run_on_cpu_pool(|| count_primes(3_000_000)).await {
        Ok(primes) => println!("{primes} primes below 3 000 000"),
        Err(error) => println!("{error}"),
    }
    let limit = 0;
    match run_on_cpu_pool(move || count_primes(1_000 / limit)).await {
        Ok(primes) => println!("{primes} primes"),
        Err(error) => println!("{error}"),
    }
    heartbeat.abort();
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - computing on the runtime's thread (as shipped), also inside `tokio::spawn`: the
    //   runtime is busy until the job is done;
    // - `spawn_blocking` or `std::thread::spawn`: not the CPU pool, the job does not run on
    //   rayon's threads;
    // - `rayon::spawn` without catching the panic: rayon aborts the process (these checks
    //   give rayon's pool a panic handler that records the panic instead, so that the
    //   failure is a message, not an abort), and the caller learns no message;
    // - catching the panic but losing its message (`format!("{payload:?}")` prints `Any`),
    //   or keeping only `&str` messages and losing formatted ones (`String`);
    // - blocking the async task on the answer (`blocking_recv`): panics inside the runtime.
    //
    // How: jobs that must overlap something wait at a rendezvous the check controls (a
    // condition variable); a bound of 500 ms only turns a rendezvous that can never
    // happen into a failure instead of a hang, and the check's guard releases it on exit.
    use super::*;
    use std::panic;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
    use std::thread;
    use std::time::Duration;
    use tokio::sync::oneshot;

    const STUCK: Duration = Duration::from_millis(500);

    static UNCAUGHT_PANICS: AtomicUsize = AtomicUsize::new(0);

    /// rayon's global pool, built once per test process with 4 threads and a panic handler
    /// that counts a job's uncaught panic instead of aborting. A job's panic is reported in
    /// one line, without a backtrace: several checks panic on purpose.
    fn rayon_pool() {
        static BUILD: Once = Once::new();
        BUILD.call_once(|| {
            let report = panic::take_hook();
            panic::set_hook(Box::new(move |info| match rayon::current_thread_index() {
                Some(_) => eprintln!("a job panicked on rayon's pool: {info}"),
                None => report(info),
            }));
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(4)
                .panic_handler(|_| {
                    UNCAUGHT_PANICS.fetch_add(1, SeqCst);
                })
                .build_global();
        });
    }

    /// A meeting point for jobs and the check; opens for good when the check opens it or
    /// when any holder lets go of it (a failed check included), so nobody waits forever.
    #[derive(Clone, Default)]
    struct Rendezvous(Arc<(Mutex<(usize, bool)>, Condvar)>);

    impl Rendezvous {
        /// Counts this arrival, then waits until the count reaches `expected` or the
        /// rendezvous is opened.
        fn arrive_and_wait(&self, expected: usize, what: &str) {
            let (state, changed) = &*self.0;
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            state.0 += 1;
            changed.notify_all();
            let (state, waited) = changed
                .wait_timeout_while(state, STUCK, |(arrived, open)| {
                    *arrived < expected && !*open
                })
                .unwrap_or_else(PoisonError::into_inner);
            let arrived = state.0;
            drop(state);
            assert!(!waited.timed_out(), "{what} (only {arrived} arrived)");
        }

        fn open(&self) {
            let (state, changed) = &*self.0;
            state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
            changed.notify_all();
        }
    }

    impl Drop for Rendezvous {
        fn drop(&mut self) {
            self.open();
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_job_runs_on_rayons_pool_and_its_value_comes_back() {
        rayon_pool();
        let runtime_thread = thread::current().id();
        let (sum, rayon_index, job_thread) = run_on_cpu_pool(|| {
            let sum: u64 = (1..=1_000).sum();
            (sum, rayon::current_thread_index(), thread::current().id())
        })
        .await
        .expect("the job does not panic");
        assert_eq!(sum, 500_500, "the job's value comes back as Ok");
        assert_ne!(
            job_thread, runtime_thread,
            "the job ran on the runtime's own thread: CPU work there stalls every task"
        );
        assert!(
            rayon_index.is_some(),
            "the job ran on a thread that is not one of rayon's: CPU work goes to the CPU pool \
             (the blocking pool and fresh threads can outnumber the cores)"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_runtime_stays_free_while_the_job_computes() {
        rayon_pool();
        let runtime_thread = thread::current().id();
        let (started, job_started) = oneshot::channel();
        let release = Rendezvous::default();
        let job_release = release.clone();
        let job = run_on_cpu_pool(move || {
            assert_ne!(
                thread::current().id(),
                runtime_thread,
                "the job ran on the runtime's own thread: CPU work there stalls every task"
            );
            let _ = started.send(());
            // Goes on only once the check, on the runtime's thread, has run meanwhile.
            job_release.arrive_and_wait(
                2,
                "the job waited for the check to run meanwhile, but it never did",
            );
        });
        let check = async {
            job_started.await.expect("the job started");
            release.open();
        };
        let (job, ()) = tokio::join!(job, check);
        assert_eq!(job, Ok(()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn two_jobs_compute_at_the_same_time() {
        rayon_pool();
        let both = Rendezvous::default();
        let job = |both: Rendezvous| {
            move || both.arrive_and_wait(2, "two jobs should run at once on the CPU pool")
        };
        let (a, b) = tokio::join!(
            run_on_cpu_pool(job(both.clone())),
            run_on_cpu_pool(job(both.clone())),
        );
        assert_eq!((a, b), (Ok(()), Ok(())));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_comes_back_as_an_error_with_its_message() {
        rayon_pool();
        let before = UNCAUGHT_PANICS.load(SeqCst);
        let result = run_on_cpu_pool(|| -> u32 { panic!("bad input") }).await;
        assert_eq!(
            UNCAUGHT_PANICS.load(SeqCst),
            before,
            "the panic escaped the job: outside these checks rayon aborts the whole process"
        );
        assert_eq!(
            result,
            Err(JobPanicked {
                message: "bad input".to_string()
            }),
            "a job that panics with \"bad input\" comes back as that error"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_formatted_panic_message_is_kept_too() {
        rayon_pool();
        let row = 7;
        let result = run_on_cpu_pool(move || -> u32 { panic!("row {row} is malformed") }).await;
        assert_eq!(
            result.map_err(|e| e.message),
            Err("row 7 is malformed".to_string()),
            "`panic!(\"row {{row}} is malformed\")` carries a String, not a &str"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_pool_keeps_working_after_a_panic() {
        rayon_pool();
        let jobs = (0..8u64).map(|n| {
            run_on_cpu_pool(move || {
                assert!(n % 3 != 0, "{n} is a multiple of 3");
                n * 2
            })
        });
        let results = futures::future::join_all(jobs).await;
        let values: Vec<_> = results.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(
            values,
            [2, 4, 8, 10, 14],
            "the jobs that did not panic all give their values"
        );
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 3);
    }
}
