//! # Cancellation and graceful shutdown
//!
//! A service being deployed or scaled down gets a signal and should stop *gracefully*:
//! take no new work, finish the work in hand (a half-done payment is worse than a
//! slow restart), release what it holds, and then exit. It should not wait forever
//! either: after a grace period, whatever is still running is cancelled.
//! (Python: an `asyncio.Event` to stop, `try/finally` for cleanup, then
//! `asyncio.wait(tasks, timeout=grace)` and `task.cancel()` for the stragglers.)
//!
//! In tokio, cancelling is dropping: `JoinHandle::abort` / `JoinSet::abort_all` drop the
//! task's future at its next `.await`, so there is no `CancelledError` to catch (or to
//! swallow by mistake). Cleanup that must happen even then belongs in a `Drop` guard.
//! The shutdown signal itself is a `watch` channel: it remembers its value, so a worker
//! that was busy when the signal was sent still sees it later. A worker waits for "a job
//! *or* the signal" with `select!`; it must not wait for the job alone, or an idle
//! worker never hears the signal. The job itself runs *outside* the `select!`, so the
//! signal never cuts it in half.
//!
//! ## Your job
//! Implement `Pool::start`, `worker` and `Pool::shutdown` as their comments describe.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/watch/index.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/watch/struct.Receiver.html#method.wait_for>
//! - <https://docs.rs/tokio/latest/tokio/macro.select.html> (the `biased;` mode)
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinSet.html>
//! - <https://tokio.rs/tokio/topics/shutdown>

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};

/// A unit of work that takes `work` to do.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub id: u32,
    pub work: Duration,
}

/// What the pool did, counted as it happens.
#[derive(Debug, Default)]
pub struct Stats {
    pub started: AtomicUsize,
    pub finished: AtomicUsize,
    /// Jobs dropped half-done (their worker was aborted).
    pub abandoned: AtomicUsize,
    /// Workers whose cleanup ran.
    pub cleaned_up: AtomicUsize,
}

/// Does one job. If this future is dropped before the job is done, the job counts as
/// abandoned.
async fn run_job(job: Job, stats: &Stats) {
    struct Unfinished<'a>(&'a AtomicUsize);
    impl Drop for Unfinished<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    stats.started.fetch_add(1, SeqCst);
    // Records the job on the check's timeline (a failing check draws what ran when).
    let _span = timeline::span(format!("job {}", job.id));
    let unfinished = Unfinished(&stats.abandoned);
    sleep(job.work).await;
    std::mem::forget(unfinished);
    stats.finished.fetch_add(1, SeqCst);
}

/// A worker's cleanup (closing its connections, flushing its buffers...), counted when
/// this guard is dropped: whether the worker returned or was aborted.
struct Cleanup(Arc<Stats>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.cleaned_up.fetch_add(1, SeqCst);
    }
}

/// How a shutdown went.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    /// Workers that stopped by themselves within the grace period.
    pub stopped: usize,
    /// Workers still busy when the grace period ran out, and aborted.
    pub aborted: usize,
}

pub struct Pool {
    stop: watch::Sender<bool>,
    workers: JoinSet<()>,
}

impl Pool {
    /// Starts `size` workers that share the `jobs` queue.
    pub fn start(size: usize, jobs: mpsc::Receiver<Job>, stats: Arc<Stats>) -> Pool {
        // TODO: make the stop signal (a `watch` channel), share the queue between the
        // workers, and spawn `size` of them into a JoinSet.
        todo!()
    }

    /// Signals every worker to stop, waits up to `grace` for them, aborts the ones still
    /// running after that, and returns once every worker is gone.
    pub async fn shutdown(mut self, grace: Duration) -> Report {
        // TODO: give the signal (the workers may all have gone already: that is fine),
        // wait up to `grace` for the workers, then abort the rest and wait until they
        // are gone too.
        todo!()
    }
}

/// Takes jobs from the queue and does them one at a time until the stop signal comes
/// or the queue is closed and empty; finishes the job in hand first.
async fn worker(
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Stats>,
) {
    // TODO: the worker's cleanup must run however it ends (see `Cleanup`). Then, in a
    // loop: wait for the next job or the stop signal, whichever comes first; do the job
    // with `run_job`, so that the signal cannot cut it short.
    todo!()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(16);
    for id in 0..10 {
        tx.send(Job {
            id,
            work: Duration::from_millis(100),
        })
        .await
        .expect("the pool is running");
    }
    let pool = Pool::start(3, rx, stats.clone());
    sleep(Duration::from_millis(150)).await;
    println!("shutting down at 150 ms...");
    let report = pool.shutdown(Duration::from_secs(1)).await;
    println!("{report:?}, {stats:?}");
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - aborting every worker at once: the jobs in hand are abandoned, not finished;
    // - a worker that waits only for the next job and checks the signal between jobs:
    //   an idle worker never hears it, and shutdown takes the whole grace period;
    // - a worker that ignores the signal and a shutdown without a grace period: it never
    //   returns (the checks bound it and fail instead);
    // - not awaiting the workers: shutdown returns before the jobs in hand are done;
    // - cleanup written at the end of the worker instead of in a guard: aborted workers
    //   skip it;
    // - the job run inside the select! (the signal cuts it in half), or a select! that
    //   is not biased (it takes a new job after the signal half of the time: 128 workers
    //   that find the signal and a job both ready leave it a 2^-128 chance);
    // - a signal that can be missed (e.g. `Notify::notify_waiters` before the workers
    //   wait), or `stop.send(true).unwrap()` when the workers are already gone.
    use super::*;
    use timeline::Timeline;
    use tokio::time::Instant;

    async fn bounded<T>(fut: impl Future<Output = T>) -> T {
        timeout(Duration::from_secs(3600), fut).await.expect(
            "shutdown never returned: do the workers hear the signal, and is there a grace period?",
        )
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A queue holding `works` (in ms), and the sender so that the queue stays open.
    fn queue(works: &[u64]) -> (mpsc::Sender<Job>, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(works.len().max(1));
        for (id, &work) in works.iter().enumerate() {
            tx.try_send(Job {
                id: id as u32,
                work: ms(work),
            })
            .unwrap();
        }
        (tx, rx)
    }

    fn counts(stats: &Stats) -> [usize; 4] {
        [
            stats.started.load(SeqCst),
            stats.finished.load(SeqCst),
            stats.abandoned.load(SeqCst),
            stats.cleaned_up.load(SeqCst),
        ]
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_jobs_finish_and_no_new_job_starts_after_the_signal() {
        const EXPECTED: &str =
            "8 jobs at once; those in hand at the signal (150 ms) end at 200 ms, no new one starts";
        let timeline = Timeline::new();
        let _recording = timeline.install();
        let stats = Arc::new(Stats::default());
        let (_tx, rx) = queue(&[100; 40]);
        let pool = Pool::start(8, rx, stats.clone());
        // 8 jobs run from 0 to 100 ms, 8 more from 100 to 200 ms.
        sleep(ms(150)).await;
        let signal = Instant::now();
        timeline.mark("signal");
        let report = bounded(pool.shutdown(Duration::from_secs(1))).await;
        assert_eq!(
            signal.elapsed(),
            ms(50),
            "the jobs in hand end 50 ms after the signal; shutdown should return right then\n{}",
            timeline.picture(EXPECTED)
        );
        assert_eq!(
            report,
            Report {
                stopped: 8,
                aborted: 0
            }
        );
        let [started, finished, abandoned, cleaned_up] = counts(&stats);
        assert_eq!(
            abandoned,
            0,
            "jobs in hand when the signal came were cut short\n{}",
            timeline.picture(EXPECTED)
        );
        assert_eq!(finished, 16, "the 8 jobs in hand at the signal must finish");
        assert_eq!(
            started,
            16,
            "a worker took a new job after the signal\n{}",
            timeline.picture(EXPECTED)
        );
        assert_eq!(
            cleaned_up, 8,
            "every worker's cleanup must have run when shutdown returns"
        );
        sleep(Duration::from_secs(10)).await;
        assert_eq!(
            counts(&stats),
            [16, 16, 0, 8],
            "work went on after shutdown returned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_workers_stop_at_once() {
        let stats = Arc::new(Stats::default());
        let (_tx, rx) = queue(&[]);
        let pool = Pool::start(3, rx, stats.clone());
        sleep(ms(10)).await;
        let signal = Instant::now();
        let report = bounded(pool.shutdown(Duration::from_secs(1))).await;
        assert_eq!(
            signal.elapsed(),
            Duration::ZERO,
            "workers waiting for a job must stop as soon as the signal comes: wait for the job \
             or the signal, whichever comes first"
        );
        assert_eq!(
            report,
            Report {
                stopped: 3,
                aborted: 0
            }
        );
        assert_eq!(counts(&stats), [0, 0, 0, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_signal_is_not_lost_when_workers_have_not_run_yet() {
        // Many workers, each of which finds both the signal and a queued job ready on its
        // first poll: a `select!` that is not `biased;` picks a branch at random, so the
        // chance that all 128 pick the signal is 2^-128.
        const WORKERS: usize = 128;
        let timeline = Timeline::new();
        let _recording = timeline.install();
        let stats = Arc::new(Stats::default());
        let (_tx, rx) = queue(&[100; WORKERS]);
        let pool = Pool::start(WORKERS, rx, stats.clone());
        // No .await in between: no worker has run when the signal is sent.
        let report = bounded(pool.shutdown(Duration::from_secs(1))).await;
        assert_eq!(
            counts(&stats),
            [0, 0, 0, WORKERS],
            "the signal came before any job was taken, so no job may start: [started, finished, \
             abandoned, cleaned up] should be [0, 0, 0, {WORKERS}]. A `select!` that is not \
             `biased;` picks its branch at random, and sometimes takes a job although the \
             signal is there\n{}",
            timeline.picture("no job at all: every worker sees the signal first")
        );
        assert_eq!(
            report,
            Report {
                stopped: WORKERS,
                aborted: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stragglers_past_the_grace_period_are_aborted_and_still_clean_up() {
        let stats = Arc::new(Stats::default());
        let (_tx, rx) = queue(&[100, 5_000]);
        let pool = Pool::start(2, rx, stats.clone());
        sleep(ms(50)).await;
        let signal = Instant::now();
        let report = bounded(pool.shutdown(ms(300))).await;
        assert_eq!(
            signal.elapsed(),
            ms(300),
            "a 5 s job outlives the 300 ms grace period: shutdown must abort it at 300 ms"
        );
        assert_eq!(
            report,
            Report {
                stopped: 1,
                aborted: 1
            }
        );
        let [started, finished, abandoned, cleaned_up] = counts(&stats);
        assert_eq!((started, finished), (2, 1));
        assert_eq!(
            abandoned, 1,
            "the straggler's job should have been dropped by the abort"
        );
        assert_eq!(
            cleaned_up, 2,
            "an aborted worker must still clean up: put the cleanup in a guard that is dropped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_queue_is_drained_and_then_shutdown_has_nothing_to_wait_for() {
        let stats = Arc::new(Stats::default());
        let (tx, rx) = queue(&[100; 5]);
        drop(tx);
        let pool = Pool::start(2, rx, stats.clone());
        sleep(Duration::from_secs(1)).await;
        assert_eq!(
            counts(&stats),
            [5, 5, 0, 2],
            "with the queue closed, the workers do every job and then stop on their own"
        );
        let signal = Instant::now();
        let report = bounded(pool.shutdown(Duration::from_secs(1))).await;
        assert_eq!(signal.elapsed(), Duration::ZERO);
        assert_eq!(
            report,
            Report {
                stopped: 2,
                aborted: 0
            }
        );
    }
}
